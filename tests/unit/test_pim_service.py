"""PimService under trio's MockClock, with in-memory links between DeviceA and DeviceD."""

from __future__ import annotations

import io
import math
import random

import pytest
import trio
import trio.testing

from daemon.log import Log, parse_line
from daemon.pim.codec import Hello, JoinPrune, Message, decode, encode
from daemon.pim.machine import (
    DrChanged,
    MemberKind,
    Membership,
    NeighborChanged,
    OifsChanged,
    Output,
    PimConfig,
    PimInterfaceConfig,
    PimRouter,
)
from daemon.pim.service import RECV_ERROR_BACKOFF, PimService

GE1, GE3, ET = "GigabitEthernet0/1/1", "GigabitEthernet0/1/3", "Eth-Trunk1"
RP = "2.2.2.2"
G = "225.1.1.1"
ADDR = {("A", GE3): "10.0.12.1", ("A", ET): "10.0.15.1", ("D", GE3): "10.0.12.2"}
ADDR[("D", GE1)] = "10.0.5.2"
WIRE = {("A", GE3): ("D", GE3), ("D", GE3): ("A", GE3)}


class Port:
    """One device's Transport: sends cross the fabric to the peer's inbox."""

    def __init__(self, fabric: Fabric, name: str) -> None:
        self.fabric = fabric
        self.name = name
        self._to_me, self._inbox = trio.open_memory_channel[tuple[bytes, str, str]](math.inf)
        self.sent: list[tuple[float, str, Message]] = []
        self.fail_send = 0
        self.fail_recv = 0

    async def send(self, ifname: str, dst: str, payload: bytes) -> None:
        if self.fail_send:
            self.fail_send -= 1
            raise OSError(105, "No buffer space available")
        assert dst == "224.0.0.13"
        self.sent.append((trio.current_time(), ifname, decode(payload)))
        self.fabric.carry(self.name, ifname, payload)

    async def recv(self) -> tuple[bytes, str, str]:
        if self.fail_recv:
            self.fail_recv -= 1
            raise OSError(100, "Network is down")
        return await self._inbox.receive()

    def inject(self, payload: bytes, src: str, ifname: str) -> None:
        self._to_me.send_nowait((payload, src, ifname))

    def times(self, kind: type, ifname: str = GE3) -> list[float]:
        return [t for t, i, m in self.sent if isinstance(m, kind) and i == ifname]


class Fabric:
    def __init__(self) -> None:
        self.ports: dict[str, Port] = {}
        self.cut = False

    def port(self, name: str) -> Port:
        self.ports[name] = Port(self, name)
        return self.ports[name]

    def carry(self, name: str, ifname: str, payload: bytes) -> None:
        peer = WIRE.get((name, ifname))
        if peer is not None and not self.cut and peer[0] in self.ports:
            self.ports[peer[0]].inject(payload, ADDR[name, ifname], peer[1])


class Device:
    def __init__(self, fabric: Fabric, name: str, seed: int) -> None:
        ifs = tuple(PimInterfaceConfig(i, a) for (n, i), a in ADDR.items() if n == name)
        loopback = {"A": "1.1.1.1", "D": RP}[name]
        router = PimRouter(PimConfig(loopback, RP, ifs), frozenset({loopback}), random.Random(seed))
        self.port = fabric.port(name)
        self.outputs: list[tuple[float, Output]] = []
        self.logbuf = io.StringIO()
        self.service = PimService(
            router, self.port, self._record, Log(f"Device{name}", "pim", stream=self.logbuf)
        )
        self.ifnames = [i.ifname for i in ifs]

    def _record(self, out: Output) -> None:
        self.outputs.append((trio.current_time(), out))

    def of(self, kind: type) -> list[tuple[float, Output]]:
        return [(t, o) for t, o in self.outputs if isinstance(o, kind)]

    async def start(self, nursery: trio.Nursery) -> None:
        await nursery.start(self.service.run)
        for ifname in self.ifnames:
            self.service.interface_up(ifname)


async def two_devices(nursery: trio.Nursery) -> tuple[Device, Device, Fabric]:
    fabric = Fabric()
    a, d = Device(fabric, "A", 1), Device(fabric, "D", 2)
    await a.start(nursery)
    await d.start(nursery)
    a.service.rpf_changed(GE3, "10.0.12.2")
    return a, d, fabric


async def test_hellos_keep_their_period_and_neighbors_form(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        a, d, _ = await two_devices(nursery)
        await trio.sleep(100.0)
        first = a.port.times(Hello)[0]
        assert 0.0 <= first <= 5.0
        times = a.port.times(Hello)
        assert len(times) == 5  # 4 periodic, 1 triggered by the new neighbor DeviceD
        grid = [first + 30.0 * k for k in range(4)]
        periodic = [t for t in times if any(abs(t - g) < 1e-6 for g in grid)]
        assert periodic == pytest.approx(grid)
        assert [o for _, o in a.of(NeighborChanged)] == [
            NeighborChanged(GE3, "10.0.12.2", True, "hello")
        ]
        assert [o for _, o in a.of(DrChanged)] == [
            DrChanged(GE3, "10.0.12.1"),
            DrChanged(ET, "10.0.15.1"),
            DrChanged(GE3, "10.0.12.2"),
        ]
        snap = d.service.snapshot()
        assert [n.address for n in snap.neighbors] == ["10.0.12.1"]
        await a.service.stop()
        await d.service.stop()


async def test_a_member_on_a_reaches_d_and_is_refreshed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        a, d, _ = await two_devices(nursery)
        await trio.sleep(10.0)
        a.service.local_members(G, ET, True)
        await trio.testing.wait_all_tasks_blocked()
        assert a.of(OifsChanged) == [(10.0, OifsChanged(G, frozenset({ET})))]
        assert d.of(OifsChanged) == [(10.0, OifsChanged(G, frozenset({GE3})))]
        await trio.sleep(200.0)
        assert a.port.times(JoinPrune) == [10.0, 70.0, 130.0, 190.0]
        (entry,) = d.service.snapshot().groups
        assert entry.downstream[0].expires == 210.0 - 20.0
        a.service.update_members([Membership(MemberKind.LOCAL, G, ET, False)])
        await trio.testing.wait_all_tasks_blocked()
        assert d.of(OifsChanged)[-1] == (210.0, OifsChanged(G, frozenset()))
        await a.service.stop()
        await d.service.stop()


async def test_backup_members_and_rpf_changes_reach_the_machine(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        a, d, _ = await two_devices(nursery)
        await trio.sleep(10.0)
        a.service.interface_down(ET)
        a.service.backup_members(G, ET, True)  # held for the peer, trunk down
        await trio.testing.wait_all_tasks_blocked()
        assert d.service.router.oifs(G) == {GE3}
        a.service.rpf_changed(None, None)  # the RP became unreachable: Prune to D
        await trio.testing.wait_all_tasks_blocked()
        assert d.service.router.oifs(G) == frozenset()
        a.service.interface_up(ET)
        assert a.service.router.oifs(G) == {ET}
        await a.service.stop()
        await d.service.stop()


async def test_stop_prunes_and_says_goodbye_then_run_ends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fabric = Fabric()
    a, d = Device(fabric, "A", 1), Device(fabric, "D", 2)
    async with trio.open_nursery() as outer:
        await d.start(outer)
        async with trio.open_nursery() as nursery:
            await a.start(nursery)
            a.service.rpf_changed(GE3, "10.0.12.2")
            await trio.sleep(10.0)
            a.service.local_members(G, ET, True)
            await trio.sleep(5.0)
            assert d.service.router.oifs(G) == {GE3}
            await a.service.stop()  # run() returns: the inner nursery closes by itself
        assert trio.current_time() == 15.0
        await trio.testing.wait_all_tasks_blocked()
        prune, goodbye_ge3 = [m for t, i, m in a.port.sent if t == 15.0 and i == GE3]
        assert isinstance(prune, JoinPrune) and isinstance(goodbye_ge3, Hello)
        assert [(e.group, e.joins, len(e.prunes)) for e in prune.groups] == [(G, (), 1)]
        assert goodbye_ge3.holdtime == 0
        goodbye = [m for t, i, m in a.port.sent if isinstance(m, Hello) and m.holdtime == 0]
        assert len(goodbye) == 2  # on GE0/1/3 and Eth-Trunk1
        assert d.service.router.oifs(G) == frozenset()
        assert [o.reason for _, o in d.of(NeighborChanged) if not o.up] == ["goodbye"]
        a.service.local_members(G, ET, True)  # inputs after stop do nothing
        await a.service.stop()
        await d.service.stop()


async def test_garbage_is_counted_and_never_fatal(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        a, d, _ = await two_devices(nursery)
        good = bytearray(encode(Hello(105, None, 1, 5)))
        bad = bytes(good[:-1]) + bytes([good[-1] ^ 1])
        for payload in (b"", b"\x10\x00\x00\x00", bad):
            d.port.inject(payload, "10.0.12.1", GE3)
        d.port.inject(bytes(good), "10.0.12.9", "GigabitEthernet9/9/9")
        await trio.testing.wait_all_tasks_blocked()
        snap = d.service.snapshot()
        assert snap.interfaces[0].dropped == {"bad-checksum": 1, "bad-version": 1, "short": 1}
        assert snap.dropped == {"unknown-interface": 1}
        await trio.sleep(10.0)
        assert [n.address for n in d.service.snapshot().neighbors] == ["10.0.12.1"]
        await a.service.stop()
        await d.service.stop()


async def test_io_errors_are_logged_and_not_fatal(autojump_clock: trio.testing.MockClock) -> None:
    fabric = Fabric()
    a, d = Device(fabric, "A", 1), Device(fabric, "D", 2)
    a.port.fail_recv = 1
    d.port.fail_send = 1
    async with trio.open_nursery() as nursery:
        await a.start(nursery)
        await d.start(nursery)
        await trio.sleep(40.0)
        msgs = sorted(
            parse_line(x)["msg"] for x in (a.logbuf.getvalue() + d.logbuf.getvalue()).splitlines()
        )
        assert msgs == ["pim recv failed", "pim send failed"]
        assert [n.address for n in a.service.snapshot().neighbors] == ["10.0.12.2"]
        assert [n.address for n in d.service.snapshot().neighbors] == ["10.0.12.1"]
        await a.service.stop()
        await d.service.stop()


async def test_stop_before_run_returns_at_once(autojump_clock: trio.testing.MockClock) -> None:
    fabric = Fabric()
    a = Device(fabric, "A", 1)
    await a.service.stop()
    await a.service.stop()
    async with trio.open_nursery() as nursery:
        await nursery.start(a.service.run)
        a.service.interface_up(GE3)  # after stop: ignored, nothing sent
    assert a.port.sent == [] and a.outputs == []
    assert RECV_ERROR_BACKOFF == 1.0
