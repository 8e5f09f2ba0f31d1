"""Binds an RbsChannel to TCP and trio time: the only async part of RBS.

Inputs reach the machine synchronously (no await between reading the clock and feeding the
machine) and its outputs are routed at once: bytes into the current connection's FIFO queue,
drained by that connection's writer task; Close and Connect act on the connection; the rest
(ChannelState, MirrorChanged, Mismatch) go to `on_output`. One timer task sleeps until the
machine's next deadline and is woken early whenever an input may have moved it.

Connection handling is injectable so tests and the daemon can plug their own transport:
`open_stream(peer, port, local_ip)` makes one connect attempt (default: TCP from `local_ip`),
and `serve(handler, host, port, task_status=...)` listens and runs `handler(stream, peer_ip)`
in a task of its own for every accepted connection (default: trio's TCP listeners on
(local_ip, port)); the handler returns when that connection is over. A listener
accepts only `peer_ip` (anything else is closed at once and counted as "rejected-peer") and
holds one connection at a time: a new connection from the peer replaces the old one. A close
the machine asks for is graceful: what is queued (an ERROR record, say) is written, then the
write side is shut and the connection closed once the peer closes too, or after 1 s.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address
from typing import Any, Protocol

import trio

from daemon.log import Log
from daemon.rbs.codec import Op, ServiceKey, ServiceValue
from daemon.rbs.machine import (
    NORMAL_CLOSE,
    ChannelSnapshot,
    ChannelState,
    Close,
    Connect,
    ConnState,
    Mismatch,
    Output,
    RbsChannel,
    SendBytes,
)

DRAIN_TIMEOUT = 1.0  # how long a closing connection may take to write out and see the FIN
RECEIVE_SIZE = 65536
_IO_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)

Handler = Callable[[trio.abc.Stream, str], Awaitable[None]]
OpenStream = Callable[[str, int, str], Awaitable[trio.abc.Stream]]


class Serve(Protocol):
    async def __call__(
        self, handler: Handler, host: str, port: int, *, task_status: Any = ...
    ) -> None: ...


async def open_tcp(peer: str, port: int, local_ip: str) -> trio.abc.Stream:
    """One TCP connect attempt from local_ip (the RBS source address) to (peer, port)."""
    return await trio.open_tcp_stream(peer, port, local_address=local_ip)


async def serve_tcp(
    handler: Handler,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on (host, port); run `handler` with each accepted stream and its peer address
    (trio closes the stream when the handler returns)."""
    listeners = await trio.open_tcp_listeners(port, host=host)

    async def accepted(stream: trio.SocketStream) -> None:
        try:
            peer_ip = stream.socket.getpeername()[0]
        except OSError:
            await trio.aclose_forcefully(stream)
            return
        await handler(stream, peer_ip)

    await trio.serve_listeners(accepted, listeners, task_status=task_status)


class _Conn:
    """One connection: its stream, the bytes waiting to be written, and its task scope."""

    def __init__(self, stream: trio.abc.Stream, peer_ip: str) -> None:
        self.stream = stream
        self.peer_ip = peer_ip
        self.send, self.recv = trio.open_memory_channel[bytes](math.inf)
        self.scope = trio.CancelScope()
        self.closing = False  # we asked for a graceful close
        self.finished = trio.Event()


class RbsService:
    """Runs one remote-backup-service channel until stop()."""

    def __init__(
        self,
        channel: RbsChannel,
        local_ip: IPv4Address | str,
        peer_ip: IPv4Address | str,
        port: int,
        listen: bool,
        on_output: Callable[[Output], None],
        log: Log,
        open_stream: OpenStream = open_tcp,
        serve: Serve = serve_tcp,
    ) -> None:
        if channel.listen != listen:
            raise ValueError(f"channel listen={channel.listen} but service listen={listen}")
        self._channel = channel
        self._local = str(local_ip)
        self._peer = str(peer_ip)
        self._port = port
        self._listen = listen
        self._on_output = on_output
        self._log = log
        self._open_stream = open_stream
        self._serve = serve
        self._conn: _Conn | None = None
        self._attempt: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._changed = trio.Event()
        self._cancel: trio.CancelScope | None = None
        self._stopping = False

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until stop(); started() once listening (if we listen) and the channel began.

        A listener that cannot bind raises here: the source address must exist first.
        """
        if self._stopping:
            task_status.started()
            return
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._cancel = nursery.cancel_scope
            nursery.start_soon(self._timer)
            if self._listen:
                await nursery.start(self._serve, self._accept, self._local, self._port)
            self._input(self._channel.start(trio.current_time()))
            task_status.started()

    # ---- inputs (synchronous: call from any trio task) -----------------------------------

    def local_change(
        self, profile: str, op: Op, key: ServiceKey, value: ServiceValue | None
    ) -> None:
        self._input(self._channel.local_change(profile, op, key, value, trio.current_time()))

    def set_role(self, profile: str, sender: bool) -> None:
        self._input(self._channel.set_role(profile, sender, trio.current_time()))

    def peer_appeared(self) -> None:
        """The peer was heard by another protocol: reconnect now if waiting (RbsChannel)."""
        self._input(self._channel.peer_appeared(trio.current_time()))

    def hand_over(self, profile: str) -> None:
        """We stopped serving `profile`: keep our entries as the peer's (RbsChannel)."""
        self._input(self._channel.hand_over(profile, trio.current_time()))

    def snapshot(self) -> ChannelSnapshot:
        return self._channel.snapshot()

    def mirror(self, profile: str) -> dict[ServiceKey, ServiceValue]:
        return self._channel.mirror(profile)

    def peer_holds(self, profile: str) -> bool:
        return self._channel.peer_holds(profile)

    async def stop(self) -> None:
        """Close the connection gracefully (the peer sees the FIN at once), then end run()."""
        if self._stopping:
            return
        self._stopping = True
        conn = self._conn
        self._input(self._channel.shutdown(trio.current_time()))
        if conn is not None:
            with trio.move_on_after(DRAIN_TIMEOUT):
                await conn.finished.wait()
        if self._cancel is not None:
            self._cancel.cancel()

    # ---- routing ------------------------------------------------------------------------

    def _input(self, outs: list[Output]) -> None:
        """Route the outputs of an input, and wake the timer: the deadline may have moved."""
        self._route(outs)
        self._changed.set()

    def _route(self, outs: list[Output]) -> None:
        for out in outs:
            if isinstance(out, SendBytes):
                if self._conn is not None:
                    self._conn.send.send_nowait(out.data)
            elif isinstance(out, Close):
                self._log_close(out)
                self._close_current()
            elif isinstance(out, Connect):
                self._start_connect()
            else:
                if isinstance(out, ChannelState):
                    self._log_state(out)
                elif isinstance(out, Mismatch):
                    self._log.warning(
                        "rbs profile mismatch", profile=out.profile, detail=out.detail
                    )
                self._on_output(out)

    def _log_state(self, out: ChannelState) -> None:
        """ESTABLISHED and real closes at info; connect retries and the steps between at debug."""
        retry = out.reason in ("connect-failed", "connect-timeout")
        loud = out.state is ConnState.ESTABLISHED or (out.state is ConnState.CLOSED and not retry)
        log = self._log.info if loud else self._log.debug
        log("rbs channel state", state=out.state.name, reason=out.reason)

    def _log_close(self, out: Close) -> None:
        if out.reason in NORMAL_CLOSE or out.reason == "connect-timeout":
            self._log.debug("rbs closing connection", reason=out.reason, detail=out.detail)
        else:
            self._log.warning("rbs closing connection", reason=out.reason, detail=out.detail)

    def _close_current(self) -> None:
        """The machine closed: abandon a connect attempt, or drain and close the connection."""
        if self._attempt is not None:
            self._attempt.cancel()
            self._attempt = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.closing = True
            conn.scope.deadline = trio.current_time() + DRAIN_TIMEOUT
            conn.send.close()

    def _lost(self, conn: _Conn, reason: str, detail: str = "") -> None:
        """The connection ended under us; tell the machine if it is still the current one."""
        if conn is not self._conn:
            return
        self._conn = None
        conn.send.close()
        conn.scope.cancel()
        level = self._log.info if reason == "peer-closed" else self._log.warning
        level("rbs connection lost", reason=reason, detail=detail, peer=conn.peer_ip)
        self._input(self._channel.closed(reason, trio.current_time(), detail))

    # ---- connections --------------------------------------------------------------------

    async def _adopt(self, stream: trio.abc.Stream, peer_ip: str) -> None:
        """Make `stream` the connection and serve it, in the calling task, until it ends."""
        conn = _Conn(stream, peer_ip)
        self._conn = conn
        self._input(self._channel.connected(trio.current_time()))
        await self._session(conn)

    def _start_connect(self) -> None:
        assert self._nursery is not None
        scope = trio.CancelScope()
        self._attempt = scope
        self._nursery.start_soon(self._connect, scope)

    async def _connect(self, scope: trio.CancelScope) -> None:
        stream = None
        with scope:
            try:
                stream = await self._open_stream(self._peer, self._port, self._local)
            except OSError as exc:
                if self._attempt is scope:
                    self._attempt = None
                    now = trio.current_time()
                    self._input(self._channel.closed("connect-failed", now, str(exc)))
                return
        if stream is None:
            return  # abandoned (connect timeout, stop)
        if self._attempt is not scope or self._stopping:
            await trio.aclose_forcefully(stream)
            return
        self._attempt = None
        await self._adopt(stream, self._peer)

    async def _accept(self, stream: trio.abc.Stream, peer_ip: str) -> None:
        """A connection to our listener: only the configured peer, one at a time."""
        if peer_ip != self._peer or self._stopping:
            if peer_ip != self._peer:
                self._channel.count_error("rejected-peer")
                self._log.warning("rbs connection rejected", peer=peer_ip, expected=self._peer)
            await trio.aclose_forcefully(stream)
            return
        old = self._conn
        if old is not None:
            self._conn = None
            old.send.close()
            old.scope.cancel()
            self._log.info("rbs connection replaced", peer=peer_ip)
            self._input(self._channel.closed("replaced", trio.current_time()))
        await self._adopt(stream, peer_ip)

    async def _session(self, conn: _Conn) -> None:
        try:
            with conn.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, conn)
                    await self._reader(conn)
        finally:
            await trio.aclose_forcefully(conn.stream)
            conn.finished.set()

    async def _reader(self, conn: _Conn) -> None:
        while True:
            try:
                data = await conn.stream.receive_some(RECEIVE_SIZE)
            except _IO_ERRORS as exc:
                self._lost(conn, "io-error", str(exc) or type(exc).__name__)
                return
            if not data:
                self._lost(conn, "peer-closed")
                if conn.closing:
                    conn.scope.cancel()  # both directions done: no need to wait for the writer
                return
            if conn is self._conn:
                self._input(self._channel.data_received(data, trio.current_time()))
            # else: we are closing; read and drop until the peer's FIN

    async def _writer(self, conn: _Conn) -> None:
        try:
            async with conn.recv:
                async for data in conn.recv:
                    await conn.stream.send_all(data)
            if not conn.closing:
                return
            if isinstance(conn.stream, trio.abc.HalfCloseableStream):
                await conn.stream.send_eof()  # the reader waits for the peer's FIN
            else:
                conn.scope.cancel()
        except _IO_ERRORS as exc:
            self._lost(conn, "io-error", str(exc) or type(exc).__name__)
            conn.scope.cancel()

    async def _timer(self) -> None:
        while True:
            deadline = self._channel.next_deadline()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._changed.wait()
            self._changed = trio.Event()
            self._route(self._channel.tick(trio.current_time()))
