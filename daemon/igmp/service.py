"""Binds an IgmpInterface to a raw IGMP socket and trio time: the only async part of IGMP.

Inputs reach the machine synchronously (no await between reading the clock and feeding the
machine), and outputs are routed at once: queries into one FIFO drained by a sender task, so
they leave in the order the machine produced them even when a send blocks; group events to
`on_event`. One timer task sleeps until the machine's next deadline and is woken early
whenever an input may have moved it. `start()`, `stop()` and `adopt()` are plain methods so
that synchronous event handlers elsewhere in the device can call them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Protocol

import trio

from daemon.igmp.codec import decode_ip
from daemon.igmp.machine import (
    AdoptedGroup,
    GroupEvent,
    IgmpInterface,
    IgmpSnapshot,
    Output,
    SendQuery,
)
from daemon.log import Log
from daemon.wire import DecodeError

RECV_ERROR_BACKOFF = 1.0  # after a failed recv, before trying again (no busy loop)
CLOSE_TIMEOUT = 1.0  # how long close() lets queued queries drain


class Transport(Protocol):
    """The interface's IGMP I/O: a raw IPPROTO_IGMP socket in the daemon, memory in tests."""

    async def send(self, dst: str, payload: bytes) -> None:
        """Send an IGMP payload; the kernel side adds TTL 1, Router Alert and our source."""
        ...

    async def recv(self) -> bytes:
        """The next whole IPv4 datagram (header included), as Linux raw sockets deliver it."""
        ...


class IgmpService:
    """Runs one interface's IGMP until close(); start()/stop() follow the interface state."""

    def __init__(
        self,
        machine: IgmpInterface,
        transport: Transport,
        on_event: Callable[[GroupEvent], None],
        log: Log,
    ) -> None:
        self._machine = machine
        self._transport = transport
        self._on_event = on_event
        self._log = log
        self._send_q, self._recv_q = trio.open_memory_channel[SendQuery](math.inf)
        self._drained = trio.Event()
        self._changed = trio.Event()
        self._cancel: trio.CancelScope | None = None
        self._closed = False

    @property
    def machine(self) -> IgmpInterface:
        return self._machine

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until close(); started() once the receive, send and timer tasks exist."""
        if self._closed:
            task_status.started()
            return
        async with trio.open_nursery() as nursery:
            self._cancel = nursery.cancel_scope
            nursery.start_soon(self._receiver)
            nursery.start_soon(self._sender)
            nursery.start_soon(self._timer)
            task_status.started()

    def start(self) -> None:
        """The interface is up: run the machine (startup queries)."""
        self._input(self._machine.start(trio.current_time()))

    def stop(self) -> None:
        """The interface is down: forget its groups (LEAVE events)."""
        self._input(self._machine.stop(trio.current_time()))

    def adopt(self, entries: Iterable[AdoptedGroup]) -> None:
        """Install groups learned from the backup peer (see IgmpInterface.adopt)."""
        self._input(self._machine.adopt(list(entries), trio.current_time()))

    def snapshot(self) -> IgmpSnapshot:
        return self._machine.snapshot(trio.current_time())

    async def close(self) -> None:
        """Let queued queries go out (up to CLOSE_TIMEOUT), then end run()."""
        if self._closed:
            return
        self._closed = True
        self._send_q.close()
        with trio.move_on_after(CLOSE_TIMEOUT):
            await self._drained.wait()
        if self._cancel is not None:
            self._cancel.cancel()

    def _input(self, outs: list[Output]) -> None:
        """Route the outputs of an input, and wake the timer: the deadline may have moved."""
        self._route(outs)
        self._changed.set()

    def _route(self, outs: list[Output]) -> None:
        for out in outs:
            if isinstance(out, SendQuery):
                if not self._closed:
                    self._send_q.send_nowait(out)
            else:
                self._on_event(out)

    async def _receiver(self) -> None:
        while True:
            try:
                datagram = await self._transport.recv()
            except OSError as exc:
                self._log.warning("igmp recv failed", ifname=self._machine.config.ifname, error=exc)
                await trio.sleep(RECV_ERROR_BACKOFF)
                continue
            try:
                msg = decode_ip(datagram)
            except DecodeError as exc:
                self._machine.count_drop(exc.reason)
                continue
            self._input(self._machine.packet_received(msg, trio.current_time()))

    async def _sender(self) -> None:
        async with self._recv_q as queries:
            async for q in queries:
                try:
                    await self._transport.send(q.dst, q.payload)
                except OSError as exc:
                    self._log.warning(
                        "igmp send failed",
                        ifname=self._machine.config.ifname,
                        dst=q.dst,
                        error=exc,
                    )
        self._drained.set()

    async def _timer(self) -> None:
        while True:
            deadline = self._machine.next_deadline()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._changed.wait()
            self._changed = trio.Event()
            self._route(self._machine.tick(trio.current_time()))
