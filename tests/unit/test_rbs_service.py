"""RbsService under trio's MockClock over in-memory streams, and once over real loopback TCP."""

from __future__ import annotations

import io
import socket
from typing import Any

import pytest
import trio
import trio.testing

from daemon.log import Log, parse_line
from daemon.rbs.codec import Keepalive, Op, Open, decode_all
from daemon.rbs.machine import (
    ChannelState,
    ConnState,
    MirrorChanged,
    Output,
    ProfileSpec,
    RbsChannel,
)
from daemon.rbs.service import Handler, RbsService
from tests.unit.test_rbs_machine import P1, key, make, value


class FakeNet:
    """Listeners by (host, port); connections are trio.testing.memory_stream_pair()s."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.listeners: dict[tuple[str, int], Handler] = {}
        self.pairs: list[tuple[trio.abc.Stream, trio.abc.Stream]] = []
        self.refuse = False

    async def serve(
        self,
        handler: Handler,
        host: str,
        port: int,
        *,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        self.listeners[(host, port)] = handler
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            del self.listeners[(host, port)]

    async def open_stream(self, host: str, port: int, local_ip: str) -> trio.abc.Stream:
        await trio.sleep(0.001)  # a round trip
        handler = self.listeners.get((host, port))
        if handler is None or self.refuse:
            raise ConnectionRefusedError(111, "Connection refused")
        client, server = trio.testing.memory_stream_pair()
        self.pairs.append((client, server))
        self.nursery.start_soon(handler, server, local_ip)
        return client

    async def cut(self) -> None:
        """Every connection breaks (both ends closed under their owners)."""
        for client, server in self.pairs:
            await trio.aclose_forcefully(client)
            await trio.aclose_forcefully(server)
        self.pairs.clear()


class Device:
    def __init__(self, side: str, net: FakeNet) -> None:
        self.channel = make(side)
        self.outputs: list[tuple[float, Output]] = []
        self.logbuf = io.StringIO()
        ch = self.channel
        self.service = RbsService(
            ch,
            ch.source,
            ch.peer,
            1025,
            ch.listen,
            self._record,
            Log(ch.device, "rbs", stream=self.logbuf),
            open_stream=net.open_stream,
            serve=net.serve,
        )

    def _record(self, out: Output) -> None:
        self.outputs.append((trio.current_time(), out))

    def states(self) -> list[ConnState]:
        return [o.state for _, o in self.outputs if isinstance(o, ChannelState)]

    def logs(self) -> list[dict[str, str]]:
        return [parse_line(line) for line in self.logbuf.getvalue().splitlines()]


async def start_pair(nursery: trio.Nursery, entries: int = 3) -> tuple[FakeNet, Device, Device]:
    net = FakeNet(nursery)
    a, b = Device("A", net), Device("B", net)
    await nursery.start(b.service.run)
    await nursery.start(a.service.run)
    for n in range(entries):
        a.service.local_change(P1, Op.ADD, key(n), value(n))
    a.service.set_role(P1, True)
    await trio.sleep(0.1)
    return net, a, b


async def test_sync_across_the_pair(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        _, a, b = await start_pair(nursery)
        for d in (a, b):
            assert d.service.snapshot().tcp_state == "connected"
        assert b.service.mirror(P1) == a.channel.local(P1)
        assert len(b.service.mirror(P1)) == 3
        a.service.local_change(P1, Op.DELETE, key(1), None)
        await trio.testing.wait_all_tasks_blocked()
        assert key(1) not in b.service.mirror(P1)
        changes = [(o.op, o.key) for _, o in b.outputs if isinstance(o, MirrorChanged)]
        assert changes == [(Op.ADD, key(n)) for n in range(3)] + [(Op.DELETE, key(1))]
        await trio.sleep(30.0)  # keepalives hold the connection with nothing else to say
        assert a.states()[-1] is b.states()[-1] is ConnState.ESTABLISHED
        assert a.service.snapshot().counters["keepalives_sent"] == 30
        assert any(
            f["msg"] == "rbs channel state" and f["state"] == "ESTABLISHED" for f in a.logs()
        )
        await a.service.stop()
        await b.service.stop()


async def test_connector_started_first_retries_until_the_listener_is_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        net = FakeNet(nursery)
        a, b = Device("A", net), Device("B", net)
        await nursery.start(a.service.run)
        await trio.sleep(10.0)
        assert a.service.snapshot().errors["connect-failed"] >= 5
        await nursery.start(b.service.run)
        await trio.sleep(5.1)  # the backoff is capped at 5 s
        assert a.service.snapshot().tcp_state == b.service.snapshot().tcp_state == "connected"
        await a.service.stop()
        await b.service.stop()


async def test_drop_and_return_resyncs(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        net, a, b = await start_pair(nursery)
        net.refuse = True
        await net.cut()
        await trio.testing.wait_all_tasks_blocked()
        for d in (a, b):
            assert d.service.snapshot().tcp_state == "disconnected"
        a.service.local_change(P1, Op.DELETE, key(0), None)
        a.service.local_change(P1, Op.ADD, key(7), value(7))
        await trio.sleep(2.0)
        assert len(b.service.mirror(P1)) == 3  # kept while down (aging: 260 s)
        net.refuse = False
        await trio.sleep(5.0)
        assert set(b.service.mirror(P1)) == {key(1), key(2), key(7)}
        assert b.service.mirror(P1)[key(7)] == value(7).aged(3)  # sent 3 s after it was given
        deleted = [o for _, o in b.outputs if isinstance(o, MirrorChanged) and o.op is Op.DELETE]
        assert [(o.key, o.cause) for o in deleted] == [(key(0), "batch")]
        for d in (a, b):
            assert d.service.snapshot().counters["reconnects"] == 1
        await a.service.stop()
        await b.service.stop()


async def test_wrong_address_is_rejected(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        net, a, b = await start_pair(nursery)
        intruder = await net.open_stream("3.3.3.3", 1025, "9.9.9.9")
        assert await intruder.receive_some(100) == b""  # closed at once, nothing said
        assert b.service.snapshot().errors == {"rejected-peer": 1}
        (line,) = [f for f in b.logs() if f["msg"] == "rbs connection rejected"]
        assert line["peer"] == "9.9.9.9"
        await trio.sleep(5.0)
        assert b.service.snapshot().tcp_state == "connected"  # A's connection is untouched
        assert b.service.snapshot().counters["connections"] == 1
        await a.service.stop()
        await b.service.stop()


async def test_new_connection_from_the_peer_replaces_the_old(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        net, a, b = await start_pair(nursery)
        await a.service.stop()  # A goes away without B noticing anything but the FIN...
        await trio.testing.wait_all_tasks_blocked()
        assert b.states()[-1] is ConnState.LISTENING
        # ...then "A" (a raw client from 1.1.1.1) connects twice; the second one wins
        first = await net.open_stream("3.3.3.3", 1025, "1.1.1.1")
        second = await net.open_stream("3.3.3.3", 1025, "1.1.1.1")
        await trio.testing.wait_all_tasks_blocked()
        assert await first.receive_some(65536)  # B's OPEN on the first ...
        assert await first.receive_some(65536) == b""  # ... then it was closed
        (record,) = decode_all(await second.receive_some(65536))
        assert isinstance(record.message, Open) and record.message.device == "DeviceB"
        assert any(f["msg"] == "rbs connection replaced" for f in b.logs())
        # the raw client never answers: dead after 3.5 s
        closed_at = trio.current_time() + 3.5
        rest = b""
        while chunk := await second.receive_some(65536):
            rest += chunk
        assert trio.current_time() == pytest.approx(closed_at)
        assert all(isinstance(r.message, Keepalive) for r in decode_all(rest))
        assert b.service.snapshot().errors == {"dead-peer": 1}
        await b.service.stop()


async def test_stop_tells_the_peer_at_once(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        _, a, b = await start_pair(nursery)
        t = trio.current_time()
        await b.service.stop()
        await trio.testing.wait_all_tasks_blocked()
        closed = next(
            (u, o)
            for u, o in a.outputs
            if isinstance(o, ChannelState) and o.state is ConnState.CLOSED
        )
        assert closed == (t, ChannelState(ConnState.CLOSED, "peer-closed"))
        assert b.channel.state is ConnState.IDLE
        await a.service.stop()


def test_listen_must_match_the_channel() -> None:
    ch = make("A")
    with pytest.raises(ValueError, match="listen"):
        RbsService(ch, ch.source, ch.peer, 1025, True, print, Log("x", stream=io.StringIO()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_real_tcp_on_loopback() -> None:
    """The default open_stream/serve: 127.0.0.1 connects to 127.0.0.2 (the higher, listening)."""
    port = free_port()
    outputs: list[Output] = []
    chans = {
        ip: RbsChannel("service1", f"D{ip[-1]}", ip, peer, [ProfileSpec(P1, 10)])
        for ip, peer in (("127.0.0.1", "127.0.0.2"), ("127.0.0.2", "127.0.0.1"))
    }
    services = {
        ip: RbsService(
            ch, ip, ch.peer, port, ch.listen, outputs.append, Log(ip, stream=io.StringIO())
        )
        for ip, ch in chans.items()
    }
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(services["127.0.0.2"].run)
            await nursery.start(services["127.0.0.1"].run)
            for n in range(50):
                services["127.0.0.1"].local_change(P1, Op.ADD, key(n), value(n))
            services["127.0.0.1"].set_role(P1, True)
            while len(services["127.0.0.2"].mirror(P1)) < 50:
                await trio.sleep(0.01)
            assert services["127.0.0.2"].mirror(P1) == chans["127.0.0.1"].local(P1)
            assert services["127.0.0.2"].snapshot().tcp_state == "connected"
            for s in services.values():
                await s.stop()
