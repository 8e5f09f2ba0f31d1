"""BfdService under trio's MockClock, two devices joined by an in-memory transport pair."""

from __future__ import annotations

import io
import itertools
import math
import random

import pytest
import trio
import trio.testing

from daemon.bfd.codec import BfdState, ControlPacket, Diag, decode
from daemon.bfd.machine import BfdSession, SessionConfig, StateChanged
from daemon.bfd.service import BfdService
from daemon.log import Log, parse_line

A_IP, B_IP = "1.1.1.1", "3.3.3.3"
DISC_A, DISC_B = 8191, 8192

Datagram = tuple[bytes, str, int | None]


class MemTransport:
    """One end of an in-memory UDP path; can be cut silently or made to fail sends."""

    def __init__(self, address: str, inbox: trio.MemoryReceiveChannel[Datagram]) -> None:
        self.address = address
        self.inbox = inbox
        self.peers: dict[str, trio.MemorySendChannel[Datagram]] = {}
        self.sent: list[tuple[float, ControlPacket]] = []
        self.cut = False
        self.fail_send = False

    async def send(self, data: bytes, peer: str) -> None:
        if self.fail_send:
            raise OSError(101, "Network is unreachable")
        self.sent.append((trio.current_time(), decode(data)))
        if not self.cut:
            await self.peers[peer].send((data, self.address, 255))

    async def recv(self) -> Datagram:
        return await self.inbox.receive()


class Device:
    """One device's BFD: one session to the other loopback, its service and its events."""

    def __init__(self, name: str, session: BfdSession, peer: str, transport: MemTransport):
        self.session = session
        self.transport = transport
        self.events: list[StateChanged] = []
        self.logbuf = io.StringIO()
        self.service = BfdService(
            {session.name: (session, peer)},
            transport,
            self.events.append,
            Log(name, "bfd", stream=self.logbuf),
        )

    def log_lines(self) -> list[dict[str, str]]:
        return [parse_line(line) for line in self.logbuf.getvalue().splitlines()]


def make_pair() -> tuple[Device, Device, trio.MemorySendChannel[Datagram]]:
    to_a_send, to_a_recv = trio.open_memory_channel[Datagram](math.inf)
    to_b_send, to_b_recv = trio.open_memory_channel[Datagram](math.inf)
    ta, tb = MemTransport(A_IP, to_a_recv), MemTransport(B_IP, to_b_recv)
    ta.peers[B_IP], tb.peers[A_IP] = to_b_send, to_a_send
    a = Device(
        "DeviceA",
        BfdSession(SessionConfig(name="atob", local_disc=DISC_A, multihop=True), random.Random(1)),
        B_IP,
        ta,
    )
    b = Device(
        "DeviceB",
        BfdSession(SessionConfig(name="btoa", local_disc=DISC_B, multihop=True), random.Random(2)),
        A_IP,
        tb,
    )
    return a, b, to_b_send


async def start_pair(
    nursery: trio.Nursery,
) -> tuple[Device, Device, trio.MemorySendChannel[Datagram]]:
    a, b, inject_to_b = make_pair()
    for dev in (a, b):
        await nursery.start(dev.service.run)
    await trio.sleep(1.0)
    assert a.session.state is BfdState.UP and b.session.state is BfdState.UP
    return a, b, inject_to_b


async def test_two_services_come_up(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        a, b, _ = await start_pair(nursery)
        for dev in (a, b):
            assert [(e.old, e.new) for e in dev.events] == [
                (BfdState.DOWN, BfdState.INIT),
                (BfdState.INIT, BfdState.UP),
            ]
            assert all(e.at == 0.0 for e in dev.events)  # no latency in memory: at once
            assert dev.transport.sent[0] == (0.0, dev.transport.sent[0][1])  # first at start
            times = [t for t, p in dev.transport.sent if t > 0.1]
            gaps = [y - x for x, y in itertools.pairwise(times)]
            assert len(gaps) > 80 and all(0.0075 - 1e-9 <= g <= 0.010 + 1e-9 for g in gaps)
            snap = dev.session.snapshot()
            assert snap.detect_time_us == 30_000 and snap.tx_interval_us == 10_000
            ((snap_svc, peer),) = dev.service.snapshots()
            assert snap_svc.state is BfdState.UP and peer in (A_IP, B_IP)
            up_logs = [f for f in dev.log_lines() if f["msg"] == "bfd session state"]
            assert [f["new"] for f in up_logs] == ["INIT", "UP"]
        nursery.cancel_scope.cancel()


async def test_cutting_the_transport_brings_both_down_after_the_detection_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        a, b, _ = await start_pair(nursery)
        cut_at = trio.current_time()
        a.transport.cut = b.transport.cut = True
        await trio.sleep(0.5)
        for dev, peer in ((a, b), (b, a)):
            last_heard = max(t for t, _ in peer.transport.sent if t < cut_at)
            down = dev.events[-1]
            assert (down.old, down.new) == (BfdState.UP, BfdState.DOWN)
            assert down.diag is Diag.CONTROL_DETECTION_TIME_EXPIRED
            assert down.at == pytest.approx(last_heard + 0.030, abs=1e-9)
            assert cut_at < down.at <= cut_at + 0.030 + 1e-9
        a.transport.cut = b.transport.cut = False
        await trio.sleep(3.0)  # the slow rate brings them back within a second or two
        assert a.session.state is BfdState.UP and b.session.state is BfdState.UP
        nursery.cancel_scope.cancel()


async def test_garbage_datagrams_are_counted_not_fatal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        a, b, inject = await start_pair(nursery)
        stranger = ControlPacket(state=BfdState.DOWN, my_disc=77, your_disc=0).encode()
        await inject.send((b"\x00" * 5, A_IP, 255))  # from the peer's address: its session
        await inject.send((b"\x40" + b"\x00" * 23, A_IP, 255))  # version 2
        await inject.send((b"junk", "9.9.9.9", 255))  # from nobody we know
        await inject.send((ControlPacket(my_disc=5, your_disc=4242).encode(), A_IP, 255))
        await inject.send((stranger, "9.9.9.9", 64))
        await trio.sleep(0.5)
        assert b.session.snapshot().dropped == {"short": 1, "bad-version": 1}
        assert b.service.drops() == {"short": 1, "no-session": 2}
        assert b.session.state is BfdState.UP and a.session.state is BfdState.UP
        assert [e.new for e in b.events] == [BfdState.INIT, BfdState.UP]
        nursery.cancel_scope.cancel()


async def test_admin_down_all_is_a_goodbye(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        a, b, _ = await start_pair(nursery)
        t = trio.current_time()
        await a.service.admin_down_all()
        assert trio.current_time() == t  # returned as soon as it was sent
        _, goodbye = a.transport.sent[-1]
        assert (goodbye.state, goodbye.diag) == (BfdState.ADMIN_DOWN, Diag.ADMIN_DOWN)
        await trio.testing.wait_all_tasks_blocked()
        assert b.session.state is BfdState.DOWN
        assert trio.current_time() == t  # at once, not after the detection time
        assert (b.events[-1].diag, b.events[-1].remote_diag) == (
            Diag.NEIGHBOR_SIGNALED_DOWN,
            Diag.ADMIN_DOWN,
        )
        assert a.events[-1].new is BfdState.ADMIN_DOWN
        await trio.sleep(5.0)
        assert b.session.state is BfdState.DOWN  # kept down by AdminDown packets
        await a.service.admin_up("atob")
        await trio.sleep(0.1)
        assert a.session.state is BfdState.UP and b.session.state is BfdState.UP
        nursery.cancel_scope.cancel()


async def test_send_errors_are_counted_and_logged_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        a, b, _ = await start_pair(nursery)
        a.transport.fail_send = True
        await trio.sleep(0.2)
        assert a.session.snapshot().tx_errors >= 3  # then B says Down: A slows to 1 s
        assert b.session.state is BfdState.DOWN  # A's packets no longer arrive
        a.transport.fail_send = False
        await trio.sleep(3.0)
        assert a.session.state is BfdState.UP and b.session.state is BfdState.UP
        msgs = [f["msg"] for f in a.log_lines() if f["msg"].startswith("bfd send")]
        assert msgs == ["bfd send failed", "bfd send recovered"]
        nursery.cancel_scope.cancel()


async def test_admin_down_all_without_run_gives_up_after_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, _, _ = make_pair()
    await a.service.admin_down_all()
    assert trio.current_time() == 1.0
    assert a.session.state is BfdState.ADMIN_DOWN


def test_sessions_are_checked() -> None:
    _, _, _ = make_pair()
    s1 = BfdSession(SessionConfig(name="x", local_disc=1, multihop=True), random.Random())
    s2 = BfdSession(SessionConfig(name="y", local_disc=1, multihop=True), random.Random())
    log = Log("d", stream=io.StringIO())
    transport = MemTransport("1.1.1.1", trio.open_memory_channel[Datagram](0)[1])
    with pytest.raises(ValueError, match="registered as"):
        BfdService({"z": (s1, "2.2.2.2")}, transport, lambda e: None, log)
    with pytest.raises(ValueError, match="share discriminator"):
        BfdService({"x": (s1, "2.2.2.2"), "y": (s2, "3.3.3.3")}, transport, lambda e: None, log)
