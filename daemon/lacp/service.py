"""Binds a LacpTrunk to member-port I/O and trio time: the only async part of LACP.

Inputs reach the machine synchronously (no await between reading the clock and feeding the
machine), and its outputs are routed at once: frames into one FIFO queue per port, drained by
that port's sender task, so LACPDUs leave in the order the machine produced them even when a
send blocks; everything else to `on_output`. One timer task sleeps until the machine's next
deadline and is woken early whenever an input may have moved it.
"""

from __future__ import annotations

import errno
import math
from collections.abc import Callable
from typing import Protocol

import trio

from daemon.lacp.codec import decode_frame
from daemon.lacp.machine import LacpTrunk, Output, Role, Transmit
from daemon.log import Log
from daemon.wire import DecodeError

PORT_DOWN_ERRNOS = {errno.ENETDOWN, errno.ENXIO, errno.ENODEV}
GOODBYE_TIMEOUT = 1.0  # how long stop() lets the last LACPDUs drain before giving up


class PortIO(Protocol):
    """One member port's frame I/O (a packet socket in the daemon, a channel in tests)."""

    async def send(self, frame: bytes) -> None: ...

    async def recv(self) -> bytes: ...


class LacpService:
    """Runs one Eth-Trunk's LACP on its member ports until stop()."""

    def __init__(
        self,
        trunk: LacpTrunk,
        ports: dict[str, PortIO],
        on_output: Callable[[Output], None],
        log: Log,
    ) -> None:
        members = {p.name: p.mac for p in trunk.config.ports}
        if set(ports) != set(members):
            raise ValueError(f"ports {sorted(ports)} do not match members {sorted(members)}")
        self._trunk = trunk
        self._ports = ports
        self._macs = members
        self._on_output = on_output
        self._log = log
        self._queues = {name: trio.open_memory_channel[bytes](math.inf) for name in ports}
        self._drained = {name: trio.Event() for name in ports}
        self._io_failed: set[str] = set()
        self._enabled = dict.fromkeys(ports, False)  # carrier, as netlink last said
        self._stale = dict.fromkeys(ports, False)  # the last I/O on the port failed "down"
        self._transient_logged: set[str] = set()
        self._restored = {name: trio.Event() for name in ports}
        self._changed = trio.Event()
        self._cancel: trio.CancelScope | None = None
        self._stopping = False

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until stop(); started() once the receive, send and timer tasks exist."""
        if self._stopping:
            task_status.started()
            return
        async with trio.open_nursery() as nursery:
            self._cancel = nursery.cancel_scope
            for name in self._ports:
                nursery.start_soon(self._receiver, name)
                nursery.start_soon(self._sender, name)
            nursery.start_soon(self._timer)
            task_status.started()

    def port_enabled(self, name: str, up: bool) -> None:
        """Carrier from netlink; carrier up also clears an earlier I/O failure on the port."""
        self._enabled[name] = up
        if up and name in self._io_failed:
            self._io_failed.discard(name)
            self._restored[name].set()
        self._input(self._trunk.port_enabled(name, up, trio.current_time()))

    def set_role(self, role: Role) -> None:
        self._input(self._trunk.set_role(role, trio.current_time()))

    async def stop(self) -> None:
        """Send a goodbye LACPDU on every enabled member, then end run().

        The goodbye has Synchronization, Collecting and Distributing clear, as from an
        administratively removed port, so the partner detaches now and not after 3 s or 90 s.
        """
        if self._stopping:
            return
        self._stopping = True
        self._input(self._trunk.shutdown(trio.current_time()))
        for send, _ in self._queues.values():
            send.close()
        with trio.move_on_after(GOODBYE_TIMEOUT):
            for drained in self._drained.values():
                await drained.wait()
        if self._cancel is not None:
            self._cancel.cancel()

    def _input(self, outs: list[Output]) -> None:
        """Route the outputs of an input, and wake the timer: the deadline may have moved."""
        self._route(outs)
        self._changed.set()

    def _route(self, outs: list[Output]) -> None:
        for out in outs:
            if isinstance(out, Transmit):
                self._queues[out.port][0].send_nowait(out.frame)
            else:
                self._on_output(out)

    def _io_error(self, name: str, op: str, exc: OSError) -> None:
        """Netlink is the authority on a port's carrier; a socket error saying the interface
        is down (ENETDOWN, ENXIO, ENODEV) is only a hint. While netlink says the port is up,
        the first such error is the leftover of an earlier down, which the kernel reports
        once on the socket, possibly after the carrier is back (a link pulled and restored
        within milliseconds): it is counted and the port carries on. A second one with no
        successful I/O in between, or one while netlink agrees, means the interface is gone:
        the port counts as down until netlink says up. Any other error (ENOBUFS when a
        filter or a full queue drops the frame) loses that one frame only."""
        reason = f"{op}-{errno.errorcode.get(exc.errno or 0, 'error')}"
        if exc.errno not in PORT_DOWN_ERRNOS:
            self._trunk.count_drop(name, reason)
            if name not in self._transient_logged:
                self._transient_logged.add(name)
                self._log.warning("lacp frame lost", port=name, op=op, error=exc)
            return
        if self._enabled[name] and not self._stale[name]:
            self._stale[name] = True
            self._trunk.count_drop(name, f"{reason}-stale")
            return
        self._log.warning("lacp port io failed", port=name, op=op, error=exc)
        if name not in self._io_failed:
            self._io_failed.add(name)
            self._restored[name] = trio.Event()
            self._input(self._trunk.port_enabled(name, False, trio.current_time()))

    async def _receiver(self, name: str) -> None:
        io = self._ports[name]
        while True:
            if name in self._io_failed:
                await self._restored[name].wait()
            try:
                frame = await io.recv()
            except OSError as exc:
                self._io_error(name, "recv", exc)
                continue
            self._stale[name] = False
            try:
                src, pdu = decode_frame(frame)
            except DecodeError as exc:
                self._trunk.count_drop(name, exc.reason)
                continue
            if src == self._macs[name]:  # our own frame, e.g. seen by an ETH_P_ALL socket
                self._trunk.count_drop(name, "own-frame")
                continue
            self._input(self._trunk.pdu_received(name, pdu, trio.current_time()))

    async def _sender(self, name: str) -> None:
        io = self._ports[name]
        async with self._queues[name][1] as frames:
            async for frame in frames:
                if name in self._io_failed:
                    continue  # queued before the failure; the port is down now
                try:
                    await io.send(frame)
                except OSError as exc:
                    self._io_error(name, "send", exc)
                else:
                    self._stale[name] = False
        self._drained[name].set()

    async def _timer(self) -> None:
        while True:
            deadline = self._trunk.next_deadline()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._changed.wait()
            self._changed = trio.Event()
            self._route(self._trunk.tick(trio.current_time()))
