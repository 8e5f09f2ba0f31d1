"""Binds an ETrunkMachine to a datagram transport and trio time: the only async part.

Inputs reach the machine synchronously (no await between reading the clock and feeding the
machine), so `member_phy` and `bfd_state` are plain methods callable from any callback. Its
outputs are routed at once: messages are encoded with the security key into one FIFO queue,
drained by a sender task so they leave in order even when a send blocks; everything else goes
to `on_output`. One timer task sleeps until the machine's next deadline and is woken early
whenever an input may have moved it.

Received datagrams are dropped, counted by reason in the machine, when they come from an
address other than the configured peer ("unexpected-source") or fail to decode (the codec's
DecodeError reasons, "bad-digest" for a wrong key); the machine adds "replay",
"wrong-etrunk-id" and "same-system-id". The first drop of each reason is logged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import trio

from daemon.etrunk.codec import decode, encode
from daemon.etrunk.machine import ETrunkMachine, Output, Send
from daemon.log import Log
from daemon.wire import DecodeError

GOODBYE_TIMEOUT = 1.0  # how long stop() lets the GOODBYE drain before giving up
RECV_ERROR_BACKOFF = 0.1  # pause after a failed receive, so a persistent error cannot spin


class Transport(Protocol):
    """Datagrams to and from the peer (a UDP socket in the daemon, channels in tests)."""

    async def send(self, data: bytes) -> None:
        """Send one datagram to the configured peer."""
        ...

    async def recv(self) -> tuple[bytes, str]:
        """The next datagram and its source IP address."""
        ...


class ETrunkService:
    """Runs one E-Trunk toward its peer until stop()."""

    def __init__(
        self,
        machine: ETrunkMachine,
        key: bytes,
        peer_ip: str,
        transport: Transport,
        on_output: Callable[[Output], None],
        log: Log,
    ) -> None:
        self._machine = machine
        self._key = key
        self._peer_ip = peer_ip
        self._transport = transport
        self._on_output = on_output
        self._log = log
        self._send_q, self._recv_q = trio.open_memory_channel[bytes](math.inf)
        self._drained = trio.Event()
        self._changed = trio.Event()
        self._cancel: trio.CancelScope | None = None
        self._stopping = False
        self._logged_drops: set[str] = set()
        self._send_failing = False
        self._recv_failing = False

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until stop(); started() once the first hello is queued and the tasks exist."""
        if self._stopping:
            task_status.started()
            return
        async with trio.open_nursery() as nursery:
            self._cancel = nursery.cancel_scope
            nursery.start_soon(self._receiver)
            nursery.start_soon(self._sender)
            nursery.start_soon(self._timer)
            self._input(self._machine.start(trio.current_time()))
            task_status.started()

    def member_phy(self, trunk_id: int, up: bool) -> None:
        """A member Eth-Trunk's state (the aggregator's up/down); sends a hello at once."""
        self._input(self._machine.member_phy(trunk_id, up, trio.current_time()))

    def member_attached(self, trunk_id: int, attached: bool) -> None:
        """The switch put a member Eth-Trunk in its aggregate, or took it out."""
        self._input(self._machine.member_attached(trunk_id, attached, trio.current_time()))

    def handback_ready(self, trunk_id: int, ready: bool) -> None:
        """The peer does (or does not yet) hold the groups this member's traffic needs."""
        self._input(self._machine.handback_ready(trunk_id, ready, trio.current_time()))

    def upstream(self, up: bool) -> None:
        """The device gained or lost its route toward the streams."""
        self._input(self._machine.upstream(up, trio.current_time()))

    def bfd_state(self, up: bool) -> None:
        """The bound BFD session went up or down."""
        self._input(self._machine.bfd_state(up, trio.current_time()))

    async def stop(self) -> None:
        """Send GOODBYE, return once it is sent (or GOODBYE_TIMEOUT passed), end run()."""
        if self._stopping:
            return
        self._stopping = True
        self._input(self._machine.shutdown(trio.current_time()))
        self._send_q.close()
        if self._cancel is not None:
            with trio.move_on_after(GOODBYE_TIMEOUT):
                await self._drained.wait()
            self._cancel.cancel()

    def _input(self, outs: list[Output]) -> None:
        """Route the outputs of an input, and wake the timer: the deadline may have moved."""
        self._route(outs)
        self._changed.set()

    def _route(self, outs: list[Output]) -> None:
        for out in outs:
            if isinstance(out, Send):  # none after shutdown(): the machine is inert then
                self._send_q.send_nowait(encode(out.payload, self._key))
            else:
                self._on_output(out)

    def _drop(self, reason: str, src: str, detail: str = "") -> None:
        self._machine.count_drop(reason)
        if reason not in self._logged_drops:  # once per reason: a wrong key must not flood
            self._logged_drops.add(reason)
            self._log.warning("etrunk packet dropped", reason=reason, src=src, detail=detail)

    async def _receiver(self) -> None:
        while True:
            try:
                data, src = await self._transport.recv()
            except OSError as exc:  # e.g. ECONNREFUSED while the peer's port is closed
                if not self._recv_failing:
                    self._recv_failing = True
                    self._log.warning("etrunk receive failed", error=exc)
                await trio.sleep(RECV_ERROR_BACKOFF)
                continue
            self._recv_failing = False
            if src != self._peer_ip:
                self._drop("unexpected-source", src)
                continue
            try:
                msg = decode(data, self._key)
            except DecodeError as exc:
                self._drop(exc.reason, src, exc.detail)
                continue
            self._input(self._machine.hello_received(msg, src, trio.current_time()))

    async def _sender(self) -> None:
        async with self._recv_q as datagrams:
            async for data in datagrams:
                try:
                    await self._transport.send(data)
                except OSError as exc:  # e.g. no route to the peer's loopback yet
                    self._machine.count_send_drop()
                    if not self._send_failing:
                        self._send_failing = True
                        self._log.warning("etrunk send failed", error=exc)
                    continue
                if self._send_failing:
                    self._send_failing = False
                    self._log.info("etrunk send recovered")
        self._drained.set()

    async def _timer(self) -> None:
        while True:
            deadline = self._machine.next_deadline()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._changed.wait()
            self._changed = trio.Event()
            self._route(self._machine.tick(trio.current_time()))
