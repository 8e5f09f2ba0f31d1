"""Binds a device's BFD sessions to one datagram transport and trio time.

Inputs reach the session machines synchronously (no await between reading the clock and
feeding a machine) and their outputs are routed at once: packets into one FIFO queue drained
by a sender task, so they leave in the order the machines produced them even when a send
blocks; state changes to `on_state`. One timer task sleeps until the earliest deadline of
all sessions and is woken early whenever an input may have moved one. Received packets are
matched to a session by Your Discriminator when it is non-zero, else by source address
(RFC 5880 6.3); a datagram that fails to decode is counted per reason on the session whose
peer sent it (else on the service), and never ends a task.

The kernel side (daemon/kernel/) supplies the `Transport`. How its sockets must be built,
per RFC 5881 (single hop) and RFC 5883 (multihop); every socket is made in the device's
namespace (`pyroute2.netns.create_socket`) and wrapped with `trio.socket.from_stdlib_socket`:

Multihop, RFC 5883 (the seed's sessions: loopback to loopback, no interface bound)
- Receive: UDP socket bound to (local loopback address, 4784), e.g. ("1.1.1.1", 4784). The
  TTL is not checked for multihop, so `recv` may return ttl None (or set IP_RECVTTL anyway
  for the logs).
- Send: one UDP socket bound to (local loopback address, P) with P a fixed port in
  49152-65535 (RFC 5881 section 4, which RFC 5883 follows: one source port per session,
  kept for its lifetime; bind explicitly, since Linux's ephemeral range starts at 32768),
  IP_TTL 255, destination (peer, 4784). Setting IP_TOS 0xC0 (CS6, network control) is
  customary, not required.

Single hop, RFC 5881 (a session bound to an interface)
- Receive: UDP socket on port 3784, SO_BINDTODEVICE to the interface's Linux name,
  IP_RECVTTL set; read with `recvmsg(bufsize, socket.CMSG_SPACE(4))` and return the TTL from
  the (IPPROTO_IP, IP_TTL) control message (a native-endian int). The session drops any
  packet whose TTL is not 255 ("bad-ttl"); with ttl None it drops too, so always report it.
- Send: UDP socket bound to (interface address, P), P in 49152-65535 as above,
  SO_BINDTODEVICE, IP_TTL 255, destination (peer, 3784).

One `BfdService` serves one transport. If a device runs both kinds of session, either give
the transport both receive sockets and let `send` pick the socket by peer address, or run
one service per kind. `send` must raise OSError (not swallow it) when the kernel refuses, so
the service can count it; `recv` may raise OSError too (counted, retried after a short pause).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Protocol, TypeAlias

import trio

from daemon.bfd.codec import decode
from daemon.bfd.machine import BfdSession, Output, Send, SessionSnapshot, StateChanged
from daemon.log import Log
from daemon.wire import DecodeError

GOODBYE_TIMEOUT = 1.0  # how long admin_down_all() waits for the AdminDown packets to leave
RECV_ERROR_PAUSE = 0.1  # after a failed recv, so a broken socket cannot spin the loop


class Transport(Protocol):
    """Datagram I/O for BFD (UDP sockets in the daemon, memory channels in tests)."""

    async def send(self, data: bytes, peer: str) -> None: ...

    async def recv(self) -> tuple[bytes, str, int | None]:
        """One datagram: (payload, source address, IP TTL or None if not known)."""
        ...


_Item: TypeAlias = tuple[str, bytes, str] | trio.Event  # (session, packet, peer) or a marker


class BfdService:
    """Runs every BFD session of a device until cancelled."""

    def __init__(
        self,
        sessions: Mapping[str, tuple[BfdSession, str]],
        transport: Transport,
        on_state: Callable[[StateChanged], None],
        log: Log,
    ) -> None:
        by_disc: dict[int, str] = {}
        by_peer: dict[str, str] = {}
        for name, (session, peer) in sessions.items():
            if session.name != name:
                raise ValueError(f"session {session.name!r} registered as {name!r}")
            disc = session.config.local_disc
            if disc in by_disc:
                raise ValueError(f"sessions {by_disc[disc]} and {name} share discriminator {disc}")
            by_disc[disc] = name
            by_peer.setdefault(peer, name)  # RFC 5880 6.3: Your Discriminator 0 -> by source
        self._sessions = dict(sessions)
        self._by_disc = by_disc
        self._by_peer = by_peer
        self._transport = transport
        self._on_state = on_state
        self._log = log
        self._queue_in, self._queue_out = trio.open_memory_channel[_Item](math.inf)
        self._changed = trio.Event()
        self._drops: Counter[str] = Counter()
        self._failing: set[str] = set()  # sessions whose last send failed (log once)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every session (its first packet goes out at once) and serve until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._sender)
            nursery.start_soon(self._receiver)
            now = trio.current_time()
            for name, (session, _) in self._sessions.items():
                self._route(name, session.tick(now))
            nursery.start_soon(self._timer)
            task_status.started()

    async def admin_down(self, name: str) -> None:
        """`shutdown` in the session view: AdminDown (diag 7), told to the peer at once."""
        self._input(name, self._sessions[name][0].admin_down(trio.current_time()))

    async def admin_up(self, name: str) -> None:
        """`undo shutdown`: back to Down, and up again with the peer."""
        self._input(name, self._sessions[name][0].admin_up(trio.current_time()))

    async def admin_down_all(self) -> None:
        """The goodbye when the daemon stops cleanly: every session goes AdminDown, and this
        returns once those packets were handed to the transport (or after GOODBYE_TIMEOUT).

        Cancel run() afterwards; until then the sessions keep sending AdminDown packets, so
        the peers stay Down (diag 3) rather than timing out.
        """
        now = trio.current_time()
        for name, (session, _) in self._sessions.items():
            self._input(name, session.admin_down(now))
        sent = trio.Event()
        self._queue_in.send_nowait(sent)
        with trio.move_on_after(GOODBYE_TIMEOUT):
            await sent.wait()

    def snapshots(self) -> list[tuple[SessionSnapshot, str]]:
        """(snapshot, peer address) of every session, in configuration order."""
        return [(session.snapshot(), peer) for session, peer in self._sessions.values()]

    def drops(self) -> dict[str, int]:
        """Datagrams no session could be blamed for, by reason ("no-session", decode
        reasons from unknown sources, "recv-error")."""
        return dict(self._drops)

    # ---- inputs -------------------------------------------------------------------------

    def datagram_received(self, data: bytes, source: str, ttl: int | None) -> None:
        """Decode, demultiplex (RFC 5880 6.3) and feed one received datagram."""
        try:
            pkt = decode(data)
        except DecodeError as exc:
            name = self._by_peer.get(source)
            if name is None:
                self._drops[exc.reason] += 1
            else:
                self._sessions[name][0].count_drop(exc.reason)
            return
        by_disc = pkt.your_disc != 0
        name = self._by_disc.get(pkt.your_disc) if by_disc else self._by_peer.get(source)
        if name is None:
            self._drops["no-session"] += 1
            return
        session = self._sessions[name][0]
        self._input(name, session.packet_received(pkt, trio.current_time(), ttl))

    def _input(self, name: str, outs: list[Output]) -> None:
        """Route the outputs of an input, and wake the timer: a deadline may have moved."""
        self._route(name, outs)
        self._changed.set()

    def _route(self, name: str, outs: list[Output]) -> None:
        for out in outs:
            if isinstance(out, Send):
                self._queue_in.send_nowait((name, out.packet, self._sessions[name][1]))
            else:
                self._log.info(
                    "bfd session state",
                    session=out.name,
                    old=out.old.name,
                    new=out.new.name,
                    diag=out.diag.name,
                    remote_diag=getattr(out.remote_diag, "name", out.remote_diag),
                )
                self._on_state(out)

    # ---- tasks --------------------------------------------------------------------------

    async def _receiver(self) -> None:
        while True:
            try:
                data, source, ttl = await self._transport.recv()
            except OSError as exc:
                self._log.warning("bfd receive failed", error=exc)
                self._drops["recv-error"] += 1
                await trio.sleep(RECV_ERROR_PAUSE)
                continue
            self.datagram_received(data, source, ttl)

    async def _sender(self) -> None:
        async for item in self._queue_out:
            if isinstance(item, trio.Event):
                item.set()
                continue
            name, data, peer = item
            try:
                await self._transport.send(data, peer)
            except OSError as exc:
                self._sessions[name][0].count_tx_error()
                if name not in self._failing:  # log the first failure, not every 10 ms
                    self._failing.add(name)
                    self._log.warning("bfd send failed", session=name, peer=peer, error=exc)
                continue
            if name in self._failing:
                self._failing.discard(name)
                self._log.info("bfd send recovered", session=name, peer=peer)

    async def _timer(self) -> None:
        while True:
            deadlines = (s.next_deadline() for s, _ in self._sessions.values())
            deadline = min((d for d in deadlines if d is not None), default=math.inf)
            with trio.move_on_at(deadline):
                await self._changed.wait()
            self._changed = trio.Event()
            now = trio.current_time()
            for name, (session, _) in self._sessions.items():
                self._route(name, session.tick(now))
