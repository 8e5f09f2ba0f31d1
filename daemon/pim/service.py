"""Binds a PimRouter to PIM I/O and trio time: the only async part of PIM.

Inputs reach the machine synchronously (no await between reading the clock and feeding the
machine), and its outputs are routed at once: PIM messages into one FIFO drained by a sender
task, so they leave in the order the machine produced them (a Hello before the Join/Prune it
must precede) even when a send blocks; everything else to `on_output`. One timer task sleeps
until the machine's next deadline and is woken early whenever an input may have moved it.
The input methods are plain methods so that synchronous event handlers elsewhere in the
device (netlink, IGMP, the backup channel, the route watcher) can call them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Protocol

import trio

from daemon.log import Log
from daemon.pim.codec import decode
from daemon.pim.machine import Membership, Output, PimRouter, PimSnapshot, SendPim
from daemon.wire import DecodeError

RECV_ERROR_BACKOFF = 1.0  # after a failed recv, before trying again (no busy loop)
GOODBYE_TIMEOUT = 1.0  # how long stop() lets the Prunes and goodbye Hellos drain


class Transport(Protocol):
    """PIM I/O of all `pim sm` interfaces: a raw IPPROTO_PIM socket in the daemon."""

    async def send(self, ifname: str | None, dst: str, payload: bytes) -> None:
        """Send a PIM payload on `ifname` to `dst`; the kernel side adds the IP header
        (TTL 1, the interface's address as source). `ifname` None: a unicast the kernel
        routes (Register, Register-Stop)."""
        ...

    async def recv(self) -> tuple[bytes, str, str]:
        """The next PIM payload (IP header removed), its source address, and the VRP name
        of the interface it arrived on."""
        ...


class PimService:
    """Runs the device's PIM until stop()."""

    def __init__(
        self,
        router: PimRouter,
        transport: Transport,
        on_output: Callable[[Output], None],
        log: Log,
    ) -> None:
        self._router = router
        self._transport = transport
        self._on_output = on_output
        self._log = log
        self._send_q, self._recv_q = trio.open_memory_channel[SendPim](math.inf)
        self._drained = trio.Event()
        self._changed = trio.Event()
        self._cancel: trio.CancelScope | None = None
        self._stopping = False
        self._queue_closed = False

    @property
    def router(self) -> PimRouter:
        return self._router

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until stop(); started() once the receive, send and timer tasks exist."""
        if self._stopping:
            task_status.started()
            return
        async with trio.open_nursery() as nursery:
            self._cancel = nursery.cancel_scope
            nursery.start_soon(self._receiver)
            nursery.start_soon(self._sender)
            nursery.start_soon(self._timer)
            task_status.started()

    # ---- inputs (plain methods) ---------------------------------------------------------

    def interface_up(self, ifname: str) -> None:
        self._input(self._router.interface_up(ifname, trio.current_time()))

    def interface_down(self, ifname: str) -> None:
        self._input(self._router.interface_down(ifname, trio.current_time()))

    def local_members(self, group: str, ifname: str, present: bool) -> None:
        self._input(self._router.local_members(group, ifname, present, trio.current_time()))

    def backup_members(self, group: str, ifname: str, present: bool) -> None:
        self._input(self._router.backup_members(group, ifname, present, trio.current_time()))

    def update_members(self, changes: Iterable[Membership]) -> None:
        self._input(self._router.update_members(changes, trio.current_time()))

    def rpf_changed(self, interface: str | None, neighbor: str | None, metric: int = 0) -> None:
        self._input(self._router.rpf_changed(interface, neighbor, trio.current_time(), metric))

    def source_rpf(self, source: str, interface: str | None, neighbor: str | None,
                   metric: int = 0) -> None:
        self._input(self._router.source_rpf(source, interface, neighbor, trio.current_time(),
                                            metric))

    def data_arrived(self, source: str, group: str, ifname: str | None,
                     connected: bool = False) -> None:
        self._input(self._router.data_arrived(source, group, ifname, trio.current_time(),
                                              connected))

    def rate_exceeded(self, source: str, group: str) -> None:
        self._input(self._router.rate_exceeded(source, group, trio.current_time()))

    def whole_packet(self, packet: bytes) -> None:
        self._input(self._router.whole_packet(packet, trio.current_time()))

    def data_seen(self, source: str, group: str) -> None:
        self._input(self._router.data_seen(source, group, trio.current_time()))

    def snapshot(self) -> PimSnapshot:
        return self._router.snapshot(trio.current_time())

    async def stop(self) -> None:
        """Prune joined groups and send goodbye Hellos (holdtime 0), then end run()."""
        if self._stopping:
            return
        self._stopping = True
        self._route(self._router.shutdown(trio.current_time()))
        self._send_q.close()
        self._queue_closed = True
        with trio.move_on_after(GOODBYE_TIMEOUT):
            await self._drained.wait()
        if self._cancel is not None:
            self._cancel.cancel()

    # ---- plumbing -----------------------------------------------------------------------

    def _input(self, outs: list[Output]) -> None:
        """Route the outputs of an input, and wake the timer: the deadline may have moved."""
        self._route(outs)
        self._changed.set()

    def _route(self, outs: list[Output]) -> None:
        for out in outs:
            if isinstance(out, SendPim):
                if not self._queue_closed:  # after stop(): nothing more goes out
                    self._send_q.send_nowait(out)
            else:
                self._on_output(out)

    async def _receiver(self) -> None:
        while True:
            try:
                payload, src, ifname = await self._transport.recv()
            except OSError as exc:
                self._log.warning("pim recv failed", error=exc)
                await trio.sleep(RECV_ERROR_BACKOFF)
                continue
            try:
                msg = decode(payload)
            except DecodeError as exc:
                self._router.count_drop(ifname, exc.reason)
                continue
            self._input(self._router.packet_received(ifname, src, msg, trio.current_time()))

    async def _sender(self) -> None:
        async with self._recv_q as messages:
            async for m in messages:
                try:
                    await self._transport.send(m.ifname, m.dst, m.payload)
                except OSError as exc:
                    self._log.warning("pim send failed", ifname=m.ifname, dst=m.dst, error=exc)
        self._drained.set()

    async def _timer(self) -> None:
        while True:
            deadline = self._router.next_deadline()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._changed.wait()
            self._changed = trio.Event()
            self._route(self._router.tick(trio.current_time()))
