"""PimRouter under virtual time: Hellos, neighbors, DR, (*,G) downstream and upstream state.

Most tests wire the seed's three routers together (DeviceA - DeviceD - DeviceB, A - B, D the
RP 2.2.2.2) through encode/decode, so every message crosses the real codec.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.pim.codec import (
    ALL_PIM_ROUTERS,
    MAX_JP_PAYLOAD,
    GroupEntry,
    Hello,
    JoinPrune,
    LanPruneDelay,
    Message,
    Source,
    Unsupported,
    decode,
    encode,
)
from daemon.pim.machine import (
    TRANSITIONS,
    UNHEARD_RETRY,
    DownstreamState,
    DrChanged,
    IfState,
    IllegalTransition,
    MemberKind,
    Membership,
    NeighborChanged,
    OifsChanged,
    Output,
    PimConfig,
    PimInterfaceConfig,
    PimRouter,
    SendPim,
    UpstreamState,
    check_transition,
    is_asm_group,
)

GE1, GE2, GE3 = (f"GigabitEthernet0/1/{i}" for i in (1, 2, 3))
ET = "Eth-Trunk1"
RP = "2.2.2.2"
G, G2 = "225.1.1.1", "225.1.1.2"
STAR = (Source.rp_tree(RP),)

ADDR = {
    ("A", GE1): "10.0.13.1",
    ("A", GE3): "10.0.12.1",
    ("A", ET): "10.0.15.1",
    ("B", GE1): "10.0.13.3",
    ("B", GE2): "10.0.23.3",
    ("B", ET): "10.0.35.3",
    ("D", GE1): "10.0.5.2",
    ("D", GE2): "10.0.23.2",
    ("D", GE3): "10.0.12.2",
}
LOOPBACK = {"A": "1.1.1.1", "B": "3.3.3.3", "D": "2.2.2.2"}
WIRES = [(("A", GE3), ("D", GE3)), (("B", GE2), ("D", GE2)), (("A", GE1), ("B", GE1))]
RPF = {"A": (GE3, "10.0.12.2"), "B": (GE2, "10.0.23.2")}


def device(name: str, seed: int) -> PimRouter:
    ifs = tuple(PimInterfaceConfig(i, a) for (n, i), a in ADDR.items() if n == name)
    config = PimConfig(LOOPBACK[name], RP, ifs)
    return PimRouter(config, frozenset({LOOPBACK[name]}), random.Random(seed))


def sent(outs: Iterable[Output], ifname: str | None = None) -> list[Message]:
    return [
        decode(o.payload)
        for o in outs
        if isinstance(o, SendPim) and (ifname is None or o.ifname == ifname)
    ]


def events(outs: Iterable[Output]) -> list[Output]:
    """Everything but the messages sent (timers may send Hellos on any input)."""
    return [o for o in outs if not isinstance(o, SendPim)]


def hellos(outs: Iterable[Output]) -> list[Hello]:
    return [m for m in sent(outs) if isinstance(m, Hello)]


def join_prunes(outs: Iterable[Output]) -> list[JoinPrune]:
    return [m for m in sent(outs) if isinstance(m, JoinPrune)]


def star_g(jp: JoinPrune) -> tuple[list[str], list[str]]:
    """The groups joined and pruned by a Join/Prune of (*,G) entries."""
    joins = [g.group for g in jp.groups if g.joins == STAR]
    prunes = [g.group for g in jp.groups if g.prunes == STAR]
    return joins, prunes


class Lab:
    """Routers wired back to back; messages cross encode/decode at the same virtual time."""

    def __init__(self, names: str = "ABD") -> None:
        self.r = {n: device(n, seed) for seed, n in enumerate(names)}
        self.peer: dict[tuple[str, str], tuple[str, str]] = {}
        for a, b in WIRES:
            if a[0] in self.r and b[0] in self.r:
                self.peer[a], self.peer[b] = b, a
        self.now = 0.0
        self.log: list[tuple[float, str, Output]] = []
        self.blocked: set[tuple[str, str]] = set()  # (router, interface) whose sends are lost

    def feed(self, name: str, outs: Iterable[Output]) -> None:
        """Deliver `name`'s outputs in order, each message's consequences at once (depth
        first, as the same instant on real links)."""
        for o in outs:
            self.log.append((self.now, name, o))
            if not isinstance(o, SendPim):
                continue
            assert o.dst == ALL_PIM_ROUTERS
            peer = self.peer.get((name, o.ifname))
            if peer is None or (name, o.ifname) in self.blocked:
                continue
            msg = decode(o.payload)
            self.feed(peer[0], self.r[peer[0]].packet_received(
                peer[1], ADDR[name, o.ifname], msg, self.now))

    def do(self, name: str, method: str, *args: object) -> None:
        self.feed(name, getattr(self.r[name], method)(*args, self.now))

    def run_until(self, t: float) -> None:
        while True:
            due = [(d, n) for n, r in self.r.items() if (d := r.next_deadline()) is not None]
            if not due or min(due)[0] > t:
                break
            deadline, name = min(due)
            self.now = max(self.now, deadline)
            self.feed(name, self.r[name].tick(self.now))
        self.now = t

    def up(self, *exclude: tuple[str, str]) -> None:
        for name, r in self.r.items():
            for itf in r.config.interfaces:
                if (name, itf.ifname) not in exclude:
                    self.do(name, "interface_up", itf.ifname)
            if name in RPF:
                self.do(name, "rpf_changed", *RPF[name])

    def since(self, t: float) -> list[tuple[float, str, Output]]:
        return [e for e in self.log if e[0] >= t]

    def jps(self, sender: str, ifname: str, since: float = 0.0) -> list[tuple[float, JoinPrune]]:
        return [
            (t, m)
            for t, n, o in self.since(since)
            if n == sender and isinstance(o, SendPim) and o.ifname == ifname
            for m in [decode(o.payload)]
            if isinstance(m, JoinPrune)
        ]

    def oifs_events(self, name: str, group: str = G) -> list[tuple[float, frozenset[str]]]:
        return [
            (t, o.oifs)
            for t, n, o in self.log
            if n == name and isinstance(o, OifsChanged) and o.group == group
        ]


@pytest.fixture
def lab() -> Lab:
    lab = Lab()
    lab.up()
    lab.run_until(10.0)  # every Hello out, every neighbor known
    return lab


# ---- state tables -----------------------------------------------------------------------


def test_transition_tables_are_enforced() -> None:
    assert check_transition(DownstreamState.JOIN, DownstreamState.PRUNE_PENDING)
    with pytest.raises(IllegalTransition):
        check_transition(DownstreamState.NO_INFO, DownstreamState.PRUNE_PENDING)
    with pytest.raises(IllegalTransition):
        check_transition(UpstreamState.JOINED, UpstreamState.JOINED)
    with pytest.raises(IllegalTransition):
        check_transition(IfState.UP, IfState.UP)
    for table in TRANSITIONS.values():
        for old, news in table.items():
            assert all(type(n) is type(old) for n in news)


def test_asm_range() -> None:
    assert is_asm_group("225.1.1.1") and is_asm_group("224.0.1.1")
    assert is_asm_group("239.255.255.255")
    assert not is_asm_group("224.0.0.13")  # link-local
    assert not is_asm_group("232.1.1.1")  # SSM
    assert not is_asm_group("10.0.0.1")


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        PimInterfaceConfig(GE1, "10.0.0.300")
    with pytest.raises(ValueError):
        PimInterfaceConfig(GE1, "10.0.0.1", hello_holdtime=70000)
    with pytest.raises(ValueError):
        PimInterfaceConfig(GE1, "10.0.0.1", propagation_delay=40.0)
    with pytest.raises(ValueError):
        PimConfig("1.1.1.1", RP, (PimInterfaceConfig(GE1, "10.0.0.1"),) * 2)
    with pytest.raises(ValueError):
        PimConfig("1.1.1.1", "2.2.2", ())
    r = device("A", 0)
    with pytest.raises(ValueError):
        r.interface_up("GigabitEthernet9/9/9", 0.0)
    with pytest.raises(ValueError):
        r.local_members(G, "GigabitEthernet9/9/9", True, 0.0)
    with pytest.raises(ValueError):
        r.rpf_changed(GE3, "10.0.12", 0.0)


# ---- Hellos and neighbors (RFC 7761 4.3) ------------------------------------------------

NBR = "10.0.12.2"


def single(seed: int = 7, **kw: object) -> PimRouter:
    itf = PimInterfaceConfig(GE3, "10.0.12.1", **kw)  # type: ignore[arg-type]
    return PimRouter(PimConfig("1.1.1.1", RP, (itf,)), frozenset({"1.1.1.1"}), random.Random(seed))


def run(r: PimRouter, until: float, log: list[tuple[float, Output]]) -> None:
    while (d := r.next_deadline()) is not None and d <= until:
        log += [(d, o) for o in r.tick(d)]


def hello_in(r: PimRouter, now: float, src: str = NBR, **kw: object) -> list[Output]:
    fields: dict[str, object] = {"holdtime": 105, "dr_priority": 1, "generation_id": 1}
    fields.update(kw)
    return r.packet_received(GE3, src, Hello(**fields), now)  # type: ignore[arg-type]


def test_first_hello_within_triggered_hello_delay_with_our_options() -> None:
    firsts = []
    for seed in range(20):
        r = single(seed, dr_priority=5)
        assert r.interface_up(GE3, 0.0) == [DrChanged(GE3, "10.0.12.1")]
        snap = r.snapshot(0.0).interfaces[0]
        assert snap.next_hello is not None and 0.0 <= snap.next_hello <= 5.0
        firsts.append(snap.next_hello)
        log: list[tuple[float, Output]] = []
        run(r, 5.0, log)
        assert [t for t, _ in log] == [snap.next_hello]
        (hello,) = hellos(o for _, o in log)
        assert hello == Hello(105, LanPruneDelay(500, 2500), 5, snap.generation_id)
    assert len(set(firsts)) == 20  # random, not a fixed offset


def test_hello_period_is_exact_and_not_rearmed_by_receives() -> None:
    r = single()
    r.interface_up(GE3, 0.0)
    first = r.snapshot(0.0).interfaces[0].next_hello
    assert first is not None
    log: list[tuple[float, Output]] = []
    t = 50.0
    while t < 400.0:
        run(r, t, log)
        log += [(t, o) for o in hello_in(r, t)]  # a neighbor hello every 7 s
        t += 7.0
    run(r, 400.0, log)
    times = [t for t, o in log if isinstance(o, SendPim)]
    triggered = [t for t in times if 50.0 < t <= 55.0]  # for the new neighbor, once
    assert len(triggered) == 1
    periodic = [t for t in times if t not in triggered]
    assert periodic == pytest.approx([first + 30.0 * k for k in range(14)])


def test_neighbor_expires_at_its_holdtime_and_hellos_refresh_it() -> None:
    r = single()
    r.interface_up(GE3, 0.0)
    out = hello_in(r, 10.0, holdtime=40)
    assert NeighborChanged(GE3, NBR, True, "hello") in out
    assert DrChanged(GE3, NBR) in out  # 10.0.12.2 > 10.0.12.1
    hello_in(r, 30.0, holdtime=40)
    assert not [o for o in r.tick(69.999) if isinstance(o, NeighborChanged)]
    out = r.tick(70.0)
    assert NeighborChanged(GE3, NBR, False, "expired") in out
    assert DrChanged(GE3, "10.0.12.1") in out
    assert r.snapshot(70.0).neighbors == ()


def test_holdtime_zero_goodbye_removes_at_once() -> None:
    r = single()
    r.interface_up(GE3, 0.0)
    hello_in(r, 1.0)
    out = hello_in(r, 2.0, holdtime=0)
    assert out[:2] == [NeighborChanged(GE3, NBR, False, "goodbye"), DrChanged(GE3, "10.0.12.1")]
    out = hello_in(r, 9.0, src="10.0.12.9", holdtime=0)  # unknown: nothing to do
    assert events(out) == [] and r.snapshot(9.0).neighbors == ()


def test_holdtime_forever_never_expires_and_default_holdtime_applies() -> None:
    r = single()
    r.interface_up(GE3, 0.0)
    hello_in(r, 1.0, holdtime=0xFFFF)
    r.packet_received(GE3, "10.0.12.3", Hello(), 1.0)  # no Holdtime option: 105 s
    snap = {n.address: n for n in r.snapshot(2.0).neighbors}
    assert snap[NBR].expires is None
    assert snap["10.0.12.3"].expires == pytest.approx(104.0)
    assert snap["10.0.12.3"].dr_priority is None
    log: list[tuple[float, Output]] = []
    run(r, 10_000.0, log)
    assert [o.neighbor for _, o in log if isinstance(o, NeighborChanged)] == ["10.0.12.3"]


def test_generation_id_change_is_a_restart() -> None:
    r = single()
    r.interface_up(GE3, 0.0)
    run(r, 6.0, [])
    hello_in(r, 10.0, generation_id=1)
    run(r, 16.0, [])  # the triggered hello for the new neighbor went out
    assert hello_in(r, 20.0, generation_id=1) == []
    out = hello_in(r, 30.0, generation_id=2)
    assert out == [NeighborChanged(GE3, NBR, True, "restart")]
    (nbr,) = r.snapshot(31.0).neighbors
    assert (nbr.uptime, nbr.generation_id) == (1.0, 2)
    deadline = r.next_deadline()
    assert deadline is not None and 30.0 <= deadline <= 35.0  # a triggered hello
    assert len(hellos(r.tick(deadline))) == 1


DR_CASES = [
    # (our priority, [(neighbor, priority or None)], expected DR)
    (1, [], "10.0.12.1"),
    (1, [("10.0.12.2", 1)], "10.0.12.2"),  # equal priority: highest address
    (5, [("10.0.12.2", 1)], "10.0.12.1"),  # highest priority wins
    (1, [("10.0.12.2", 1), ("10.0.12.3", 0)], "10.0.12.2"),
    (0, [("10.0.12.0", 7), ("10.0.12.2", 7)], "10.0.12.2"),
    (100, [("10.0.12.2", None)], "10.0.12.2"),  # one without priority: addresses only
    (100, [("10.0.12.0", None), ("10.0.12.2", 1)], "10.0.12.2"),
    (100, [("10.0.12.0", None)], "10.0.12.1"),
    (1, [("10.0.12.100", 0xFFFFFFFF), ("10.0.12.200", 0xFFFFFFFE)], "10.0.12.100"),
]


@pytest.mark.parametrize(("ours", "neighbors", "dr"), DR_CASES)
def test_dr_election(ours: int, neighbors: list[tuple[str, int | None]], dr: str) -> None:
    r = single(dr_priority=ours)
    r.interface_up(GE3, 0.0)
    for addr, priority in neighbors:
        r.packet_received(GE3, addr, Hello(105, None, priority, 1), 1.0)
    assert r.dr(GE3) == dr
    (itf,) = r.snapshot(1.0).interfaces
    assert (itf.dr, itf.is_dr) == (dr, dr == "10.0.12.1")


def test_dr_election_follows_priority_changes_and_departures() -> None:
    r = single()
    r.interface_up(GE3, 0.0)
    hello_in(r, 1.0, dr_priority=1)
    assert events(hello_in(r, 2.0, dr_priority=0)) == [DrChanged(GE3, "10.0.12.1")]
    assert events(hello_in(r, 3.0, dr_priority=2)) == [DrChanged(GE3, NBR)]
    assert events(r.interface_down(GE3, 4.0)) == [
        NeighborChanged(GE3, NBR, False, "interface-down"),
        DrChanged(GE3, None),
    ]


def test_local_members_count_only_where_we_are_dr() -> None:
    lab = Lab("A")
    lab.up()
    lab.do("A", "local_members", G, ET, True)
    assert lab.r["A"].oifs(G) == {ET}
    # a router with a higher address says hello on Eth-Trunk1: it is DR now
    lab.feed("A", lab.r["A"].packet_received(ET, "10.0.15.9", Hello(105, None, 1, 1), 1.0))
    assert lab.r["A"].oifs(G) == frozenset()
    assert lab.oifs_events("A") == [(0.0, frozenset({ET})), (0.0, frozenset())]
    snap = lab.r["A"].snapshot(1.0).groups[0]
    assert (snap.local_members, snap.downstream) == ((ET,), ())
    assert snap.upstream_state is UpstreamState.NOT_JOINED
    lab.do("A", "interface_down", ET)
    lab.do("A", "interface_up", ET)  # alone again: DR, the member counts
    assert lab.r["A"].oifs(G) == {ET}


def test_a_hello_precedes_the_first_join_prune_on_an_interface() -> None:
    r = device("A", 3)
    r.interface_up(GE3, 0.0)
    r.interface_up(ET, 0.0)
    r.rpf_changed(GE3, "10.0.12.2", 0.0)
    out = r.local_members(G, ET, True, 0.1)  # before the first periodic Hello on GE0/1/3
    msgs = sent(out, GE3)
    assert [type(m) for m in msgs] == [Hello, JoinPrune]
    assert r.snapshot(0.1).interfaces[1].next_hello == pytest.approx(30.0)  # period restarts


# ---- the seed's three routers -----------------------------------------------------------


def test_local_member_join_reaches_the_rp(lab: Lab) -> None:
    lab.do("A", "local_members", G, ET, True)
    assert lab.oifs_events("A") == [(10.0, frozenset({ET}))]
    assert lab.oifs_events("D") == [(10.0, frozenset({GE3}))]
    ((t, jp),) = lab.jps("A", GE3)
    assert (t, jp.upstream_neighbor, jp.holdtime, star_g(jp)) == (
        10.0,
        "10.0.12.2",
        210,
        ([G], []),
    )
    d = lab.r["D"].snapshot(10.0)
    (entry,) = d.groups
    assert (entry.rp, entry.rp_is_local, entry.upstream_state) == (
        RP,
        True,
        UpstreamState.NOT_JOINED,
    )
    (down,) = entry.downstream
    assert (down.interface, down.protocol, down.state, down.expires) == (
        GE3,
        "pim-sm",
        DownstreamState.JOIN,
        210.0,
    )
    assert d.interfaces[2].counters.joins_received == 1
    a = lab.r["A"].snapshot(10.0).groups[0]
    assert (a.upstream_state, a.rpf_interface, a.rpf_prime_neighbor, a.join_timer) == (
        UpstreamState.JOINED,
        GE3,
        "10.0.12.2",
        60.0,
    )


def test_periodic_join_refreshes_the_rp(lab: Lab) -> None:
    lab.do("A", "local_members", G, ET, True)
    lab.run_until(400.0)
    assert [t for t, _ in lab.jps("A", GE3)] == [10.0, 70.0, 130.0, 190.0, 250.0, 310.0, 370.0]
    assert lab.oifs_events("D") == [(10.0, frozenset({GE3}))]  # never expired
    (down,) = lab.r["D"].snapshot(400.0).groups[0].downstream
    assert down.expires == pytest.approx(180.0)  # refreshed at 370
    assert down.uptime == 390.0


def test_rp_state_expires_210s_after_the_last_join(lab: Lab) -> None:
    lab.do("A", "local_members", G, ET, True)
    lab.run_until(100.0)
    lab.blocked.add(("A", GE3))  # Joins refreshed at 70 s; nothing reaches D after that
    lab.run_until(500.0)
    assert lab.oifs_events("D") == [(10.0, frozenset({GE3})), (280.0, frozenset())]
    assert lab.r["D"].groups() == []


def test_last_member_leave_prunes_and_the_rp_removes_the_link_at_once(lab: Lab) -> None:
    lab.do("A", "local_members", G, ET, True)
    lab.run_until(30.0)
    lab.do("A", "local_members", G, ET, False)
    assert star_g(lab.jps("A", GE3)[-1][1]) == ([], [G])
    assert lab.oifs_events("A")[-1] == (30.0, frozenset())
    assert lab.oifs_events("D")[-1] == (30.0, frozenset())  # point-to-point: no Prune-Pending
    assert lab.r["A"].groups() == lab.r["D"].groups() == []
    lab.run_until(200.0)
    assert len(lab.jps("A", GE3)) == 2  # no more Joins


def test_backup_members_join_upstream_and_list_the_down_interface() -> None:
    lab = Lab()
    lab.up(("B", ET))  # DeviceB's Eth-Trunk1 is down: it is the E-Trunk backup
    lab.run_until(10.0)
    lab.do("B", "backup_members", G, ET, True)
    assert lab.r["B"].oifs(G) == {ET}
    assert lab.r["D"].oifs(G) == {GE2}
    (entry,) = lab.r["B"].snapshot(10.0).groups
    assert (entry.backup_members, entry.downstream[0].protocol) == ((ET,), "backup")
    assert entry.upstream_state is UpstreamState.JOINED
    # a local member would not count here (down, not DR); the backup one does
    lab.do("B", "local_members", G, ET, True)
    lab.do("B", "backup_members", G, ET, False)
    assert lab.r["B"].oifs(G) == frozenset()
    assert lab.r["D"].oifs(G) == frozenset()
    # switchover: Eth-Trunk1 comes up on B, B is DR there, the local member counts
    lab.do("B", "interface_up", ET)
    assert lab.r["B"].oifs(G) == {ET}
    assert lab.r["D"].oifs(G) == {GE2}


def test_both_devices_joined_while_the_master_also_serves(lab: Lab) -> None:
    lab.do("A", "local_members", G, ET, True)
    lab.do("B", "backup_members", G, ET, True)
    assert lab.r["D"].oifs(G) == {GE2, GE3}
    assert [e.protocol for e in lab.r["D"].snapshot(10.0).groups[0].downstream] == ["pim-sm"] * 2


def test_rpf_change_moves_the_join(lab: Lab) -> None:
    lab.do("A", "local_members", G, ET, True)
    lab.run_until(20.0)
    lab.do("A", "rpf_changed", GE1, "10.0.13.3")  # the way to the RP is via DeviceB now
    (jp_b,) = [jp for _, jp in lab.jps("A", GE1, since=20.0)]
    assert (jp_b.upstream_neighbor, star_g(jp_b)) == ("10.0.13.3", ([G], []))
    (jp_d,) = [jp for _, jp in lab.jps("A", GE3, since=20.0)]
    assert (jp_d.upstream_neighbor, star_g(jp_d)) == ("10.0.12.2", ([], [G]))
    assert lab.r["B"].oifs(G) == {GE1}  # B forwards to A now, and joined D for it
    assert lab.r["D"].oifs(G) == {GE2}
    lab.run_until(200.0)
    assert [t for t, _ in lab.jps("A", GE1)] == [20.0, 80.0, 140.0, 200.0]
    assert lab.jps("A", GE3, since=21.0) == []


def test_a_restarted_rp_gets_the_joins_again_at_once(lab: Lab) -> None:
    lab.do("A", "local_members", G, ET, True)
    lab.do("A", "local_members", G2, ET, True)
    lab.run_until(100.0)
    lab.r["D"] = device("D", 99)  # killed and started again: no goodbye, new Generation ID
    for itf in lab.r["D"].config.interfaces:
        lab.do("D", "interface_up", itf.ifname)
    lab.run_until(106.0)
    restart = [t for t, n, o in lab.log if isinstance(o, NeighborChanged) and o.reason == "restart"]
    assert restart and 100.0 <= restart[0] <= 105.0
    t, jp = lab.jps("A", GE3, since=100.0)[0]
    assert t == restart[0] and star_g(jp) == ([G, G2], [])
    d_oifs = [(tt, o) for tt, n, o in lab.since(100.0) if n == "D" and isinstance(o, OifsChanged)]
    assert d_oifs == [(t, OifsChanged(G, frozenset({GE3}))), (t, OifsChanged(G2, frozenset({GE3})))]


def test_a_new_neighbor_that_is_rpf_gets_the_join_at_once() -> None:
    lab = Lab()
    lab.up(("D", GE3))  # DeviceD's side of the A-D link is not up yet
    lab.do("A", "local_members", G, ET, True)
    assert lab.r["D"].oifs(G) == frozenset()  # sent, but D was not listening
    lab.run_until(50.0)
    lab.do("D", "interface_up", GE3)
    lab.run_until(56.0)
    ((t, oifs),) = lab.oifs_events("D")  # not the 70 s refresh
    assert oifs == frozenset({GE3}) and 50.0 <= t <= 50.0 + UNHEARD_RETRY


def test_joins_toward_an_unheard_rpf_neighbor_are_retried_with_hellos() -> None:
    # While A has not heard D (D's side was down), A repeats its Hello and Join every
    # UNHEARD_RETRY; once D is heard, Joins go back to the periodic refresh.
    lab = Lab()
    lab.up(("D", GE3))
    lab.do("A", "local_members", G, ET, True)
    lab.run_until(1.0)
    sent = [o for t, n, o in lab.log if n == "A" and isinstance(o, SendPim) and o.ifname == GE3]
    assert len(sent) >= 2 * 9  # a Hello and a Join every 0.1 s
    lab.do("D", "interface_up", GE3)
    lab.run_until(70.0)
    assert len(lab.jps("A", GE3, since=10.0)) == 1  # heard: one refresh per period


def test_joins_for_many_groups_share_messages_and_split(lab: Lab) -> None:
    groups = [f"225.2.{i // 250}.{i % 250 + 1}" for i in range(1000)]
    changes = [Membership(MemberKind.LOCAL, g, ET, True) for g in groups]
    lab.do("A", "update_members", changes)
    msgs = [jp for _, jp in lab.jps("A", GE3)]
    assert [len(m.groups) for m in msgs] == [69] * 14 + [34]
    assert all(len(encode(m)) <= MAX_JP_PAYLOAD for m in msgs)
    assert [g for m in msgs for g in star_g(m)[0]] == groups  # in address order
    assert lab.r["D"].groups() == groups
    assert lab.r["A"].snapshot(10.0).interfaces[1].counters.joins_sent == 1000
    lab.run_until(75.0)
    assert len(lab.jps("A", GE3, since=11.0)) == 15  # one refresh: all groups, same slot


def test_a_later_group_refreshes_with_the_others(lab: Lab) -> None:
    lab.do("A", "local_members", G, ET, True)
    lab.run_until(25.0)
    lab.do("A", "local_members", G2, ET, True)  # triggered Join at once
    lab.run_until(200.0)
    times = [(t, star_g(jp)[0]) for t, jp in lab.jps("A", GE3)]
    assert times == [(10.0, [G]), (25.0, [G2]), (70.0, [G, G2]), (130.0, [G, G2]), (190.0, [G, G2])]


def test_shutdown_prunes_then_says_goodbye(lab: Lab) -> None:
    lab.do("A", "local_members", G, ET, True)
    lab.run_until(20.0)
    lab.do("A", "shutdown")
    a_sent = [
        (o.ifname, type(m).__name__)
        for t, n, o in lab.since(20.0)
        if n == "A" and isinstance(o, SendPim)
        for m in [decode(o.payload)]
    ]
    assert a_sent == [(GE3, "JoinPrune"), (GE1, "Hello"), (GE3, "Hello"), (ET, "Hello")]
    assert lab.r["D"].oifs(G) == frozenset()
    assert [
        o.reason for t, n, o in lab.since(20.0) if n == "D" and isinstance(o, NeighborChanged)
    ] == ["goodbye"]
    assert lab.oifs_events("A")[-1] == (20.0, frozenset())
    assert lab.r["A"].stopped and lab.r["A"].next_deadline() is None
    assert lab.r["A"].interface_up(GE3, 21.0) == []
    assert lab.r["A"].shutdown(21.0) == []


def test_interface_down_removes_neighbors_and_downstream_state(lab: Lab) -> None:
    lab.do("A", "local_members", G, ET, True)
    mark = len(lab.log)
    lab.do("D", "interface_down", GE3)
    d_events = events(o for _, n, o in lab.log[mark:] if n == "D")
    assert d_events == [
        NeighborChanged(GE3, "10.0.12.1", False, "interface-down"),
        DrChanged(GE3, None),
        OifsChanged(G, frozenset()),
    ]
    assert lab.r["D"].packet_received(GE3, "10.0.12.1", Hello(), 11.0) == []
    assert lab.r["D"].snapshot(11.0).interfaces[2].dropped == {"down": 1}


def test_rpf_interface_flap_sends_the_joins_again(lab: Lab) -> None:
    lab.do("A", "local_members", G, ET, True)
    lab.do("A", "interface_down", GE3)
    lab.do("D", "interface_down", GE3)
    assert lab.r["D"].oifs(G) == frozenset()
    lab.run_until(30.0)
    assert lab.jps("A", GE3, since=11.0) == []  # not sent on a down interface
    lab.do("D", "interface_up", GE3)
    lab.do("A", "interface_up", GE3)
    assert [type(m) for m in sent((o for t, n, o in lab.since(30.0) if n == "A"), GE3)] == [
        Hello,
        JoinPrune,
    ]
    assert lab.r["D"].oifs(G) == {GE3}


def test_the_rp_never_joins_and_without_rp_nobody_does() -> None:
    lab = Lab("D")
    lab.up()
    lab.do("D", "local_members", G, GE1, True)
    lab.run_until(10.0)
    assert lab.r["D"].oifs(G) == {GE1}
    assert lab.r["D"].is_rp
    assert lab.r["D"].snapshot(10.0).groups[0].upstream_state is UpstreamState.NOT_JOINED
    messages = sent(o for _, _, o in lab.log)
    assert messages and all(isinstance(m, Hello) for m in messages)
    cfg = PimConfig("1.1.1.1", None, (PimInterfaceConfig(ET, "10.0.15.1"),))
    r = PimRouter(cfg, rng=random.Random(1))
    r.interface_up(ET, 0.0)
    r.rpf_changed(ET, "10.0.15.9", 0.0)
    out = r.local_members(G, ET, True, 1.0)
    assert out == [OifsChanged(G, frozenset({ET}))]


def test_groups_outside_the_asm_range_are_ignored(lab: Lab) -> None:
    for group in ("224.0.0.251", "232.1.1.1"):
        lab.do("A", "local_members", group, ET, True)
    assert lab.r["A"].groups() == []
    with pytest.raises(ValueError):
        lab.do("A", "local_members", "225.1.1", ET, True)


# ---- received Join/Prunes that are dropped ----------------------------------------------


def jp_to_d(*groups: GroupEntry, upstream: str = "10.0.12.2") -> JoinPrune:
    return JoinPrune(upstream, 210, groups)


@pytest.mark.parametrize(
    ("src", "msg", "reason"),
    [
        ("10.0.12.77", jp_to_d(GroupEntry(G, joins=STAR)), "not-neighbor"),
        ("10.0.12.1", jp_to_d(GroupEntry(G, joins=(Source.rp_tree("9.9.9.9"),))), "wrong-rp"),
        ("10.0.12.1", jp_to_d(GroupEntry(G, joins=(Source("224.1.1.1"),))), "bad-source"),
        ("10.0.12.1", jp_to_d(GroupEntry(G, joins=(Source("10.0.5.0", mask_len=24),))),
         "bad-source"),
        ("10.0.12.1", jp_to_d(GroupEntry("232.1.1.1", prunes=(Source("10.0.5.1", rpt=True),))),
         "ssm-group"),
        (
            "10.0.12.1",
            jp_to_d(GroupEntry(G, joins=(Source(RP, wildcard=True),))),
            "bad-source-flags",
        ),
        ("10.0.12.1", jp_to_d(GroupEntry("232.1.1.1", joins=STAR)), "ssm-group"),
        ("10.0.12.1", jp_to_d(GroupEntry("224.0.0.5", joins=STAR)), "bad-group"),
        ("10.0.12.1", jp_to_d(GroupEntry("225.0.0.0", STAR, mask_len=8)), "bad-group"),
        ("10.0.12.1", Unsupported(5), "unsupported-type"),
        ("2.2.2.2", Hello(), "own-packet"),
    ],
)
def test_dropped_messages_are_counted(lab: Lab, src: str, msg: Message, reason: str) -> None:
    d = lab.r["D"]
    before = dict(d.snapshot(10.0).interfaces[2].dropped)
    out = d.packet_received(GE3, src, msg, 10.0)
    assert not [o for o in out if isinstance(o, OifsChanged)]
    after = d.snapshot(10.0).interfaces[2].dropped
    assert after.get(reason, 0) == before.get(reason, 0) + 1
    assert d.groups() == []


def test_join_prunes_for_another_upstream_are_not_downstream_state(lab: Lab) -> None:
    d = lab.r["D"]
    d.packet_received(
        GE3, "10.0.12.1", jp_to_d(GroupEntry(G, joins=STAR), upstream="10.0.12.9"), 10.0
    )
    assert d.groups() == []
    d.count_drop(GE3, "bad-checksum")
    d.count_drop("GigabitEthernet9/9/9", "bad-checksum")
    assert d.snapshot(10.0).interfaces[2].dropped == {"bad-checksum": 1}
    assert d.snapshot(10.0).dropped == {"bad-checksum": 1}
    assert d.packet_received("GigabitEthernet9/9/9", "10.0.12.1", Hello(), 10.0) == []
    assert d.snapshot(10.0).dropped == {"bad-checksum": 1, "unknown-interface": 1}


def test_expiry_timer_takes_the_longest_holdtime(lab: Lab) -> None:
    d = lab.r["D"]
    d.packet_received(GE3, "10.0.12.1", JoinPrune("10.0.12.2", 300, (GroupEntry(G, STAR),)), 10.0)
    d.packet_received(GE3, "10.0.12.1", JoinPrune("10.0.12.2", 30, (GroupEntry(G, STAR),)), 20.0)
    assert d.snapshot(20.0).groups[0].downstream[0].expires == 290.0
    d.packet_received(
        GE3, "10.0.12.1", JoinPrune("10.0.12.2", 0xFFFF, (GroupEntry(G, STAR),)), 30.0
    )
    assert d.snapshot(30.0).groups[0].downstream[0].expires is None
    lab.run_until(5000.0)
    assert d.oifs(G) == {GE3}


# ---- a LAN: prune override, PruneEcho, join suppression ---------------------------------

LAN = "GigabitEthernet0/2/0"
US, UP_NBR, OTHER = "10.1.0.2", "10.1.0.1", "10.1.0.3"


def lan_router(seed: int = 5) -> PimRouter:
    config = PimConfig(
        "1.1.1.1", RP, (PimInterfaceConfig(LAN, US), PimInterfaceConfig(ET, "10.0.15.1"))
    )
    r = PimRouter(config, rng=random.Random(seed))
    r.interface_up(LAN, 0.0)
    r.interface_up(ET, 0.0)
    lpd = LanPruneDelay(500, 2500)
    r.packet_received(LAN, UP_NBR, Hello(105, lpd, 1, 1), 0.0)
    r.packet_received(LAN, OTHER, Hello(105, LanPruneDelay(1000, 4000), 1, 2), 0.0)
    r.tick(6.0)
    return r


def jp(upstream: str, joins: Iterable[str] = (), prunes: Iterable[str] = ()) -> JoinPrune:
    entries = [GroupEntry(g, joins=STAR) for g in joins]
    entries += [GroupEntry(g, prunes=STAR) for g in prunes]
    return JoinPrune(upstream, 210, tuple(entries))


def test_lan_prune_waits_for_an_override_then_echoes() -> None:
    r = lan_router()
    (itf,) = [i for i in r.snapshot(6.0).interfaces if i.ifname == LAN]
    assert itf.jp_override_interval == 5.0  # max propagation 1 s + max override 4 s
    r.packet_received(LAN, UP_NBR, jp(US, joins=[G]), 10.0)
    r.packet_received(LAN, OTHER, jp(US, joins=[G]), 10.0)
    assert r.oifs(G) == {LAN}
    r.packet_received(LAN, UP_NBR, jp(US, prunes=[G]), 20.0)
    (down,) = r.snapshot(20.0).groups[0].downstream
    assert (down.state, down.prune_pending_expires) == (DownstreamState.PRUNE_PENDING, 5.0)
    assert r.oifs(G) == {LAN}  # still forwarding while others may override
    r.packet_received(LAN, OTHER, jp(US, joins=[G]), 22.0)  # the override
    assert r.snapshot(22.0).groups[0].downstream[0].state is DownstreamState.JOIN
    assert r.tick(30.0) == []
    r.packet_received(LAN, OTHER, jp(US, prunes=[G]), 40.0)
    assert r.tick(44.999) == []
    out = r.tick(45.0)
    assert OifsChanged(G, frozenset()) in out
    (echo,) = join_prunes(out)  # PruneEcho: a Prune with ourselves as upstream neighbor
    assert (echo.upstream_neighbor, star_g(echo)) == (US, ([], [G]))


def test_lan_join_suppression_and_prune_override_upstream() -> None:
    r = lan_router()
    r.rpf_changed(LAN, UP_NBR, 6.0)
    out = r.local_members(G, ET, True, 10.0)
    (join,) = join_prunes(out)
    assert join.upstream_neighbor == UP_NBR
    assert r.snapshot(10.0).groups[0].join_timer == 60.0
    # another router's Join to our upstream neighbor suppresses ours (t_joinsuppress)
    r.packet_received(LAN, OTHER, jp(UP_NBR, joins=[G]), 20.0)
    timer = r.snapshot(20.0).groups[0].join_timer
    assert timer is not None and 66.0 <= timer <= 84.0
    # a Prune to it makes us override within Effective_Override_Interval (4 s here)
    r.packet_received(LAN, OTHER, jp(UP_NBR, prunes=[G]), 30.0)
    timer = r.snapshot(30.0).groups[0].join_timer
    assert timer is not None and 0.0 <= timer <= 4.0
    out = r.tick(30.0 + timer)
    (override,) = join_prunes(out)
    assert (override.upstream_neighbor, star_g(override)) == (UP_NBR, ([G], []))
    # Join/Prunes to other neighbors, or for groups we have not joined, change nothing
    before = r.snapshot(40.0).groups[0].join_timer
    r.packet_received(LAN, OTHER, jp("10.1.0.9", prunes=[G]), 40.0)
    r.packet_received(LAN, OTHER, jp(UP_NBR, prunes=[G2]), 40.0)
    assert r.snapshot(40.0).groups[0].join_timer == before
    assert r.groups() == [G]


def test_rpf_neighbor_named_by_a_secondary_address() -> None:
    r = lan_router()
    r.packet_received(LAN, UP_NBR, Hello(105, None, 1, 1, ("10.1.9.1",)), 7.0)
    r.rpf_changed(LAN, "10.1.9.1", 8.0)  # the route's next hop is the neighbor's secondary
    (join,) = join_prunes(r.local_members(G, ET, True, 10.0))
    assert join.upstream_neighbor == UP_NBR
    assert r.snapshot(10.0).groups[0].rpf_prime_neighbor == UP_NBR


def test_secondary_addresses_are_listed_and_joined_to() -> None:
    """Our Hellos carry the interface's secondary addresses (4.3.4), so a neighbor whose
    route names one of them sends its Join there, and that Join is for us."""
    secondary = "10.1.0.12"
    config = PimConfig("1.1.1.1", RP, (PimInterfaceConfig(LAN, US, secondary=(secondary,)),))
    r = PimRouter(config, rng=random.Random(3))
    (hello,) = hellos(r.interface_up(LAN, 0.0) + r.tick(5.0))
    assert hello.addresses == (secondary,)
    assert decode(encode(hello)) == hello
    r.packet_received(LAN, OTHER, Hello(105, None, 1, 9), 6.0)
    out = r.packet_received(LAN, OTHER, jp(secondary, joins=[G]), 7.0)
    assert OifsChanged(G, frozenset({LAN})) in out
    with pytest.raises(ValueError, match="secondary"):
        PimInterfaceConfig(LAN, US, secondary=("10.1.0.300",))


# ---- scale ------------------------------------------------------------------------------


def test_a_thousand_groups_are_cheap(lab: Lab) -> None:
    groups = [f"226.{i // 250}.0.{i % 250 + 1}" for i in range(1000)]
    start = time.perf_counter()
    for g in groups:  # one by one, as IGMP reports them
        lab.do("A", "local_members", g, ET, True)
    lab.run_until(10.0 + 3600.0)  # an hour of refreshes and Hellos on three routers
    elapsed = time.perf_counter() - start
    assert lab.r["D"].groups() == sorted(groups, key=lambda g: tuple(map(int, g.split("."))))
    assert len(lab.jps("A", GE3, since=11.0)) == 60 * 15  # 15 messages a minute
    assert elapsed < 10.0  # about 0.5 s here; generous for a loaded machine


# ---- convergence under random input -----------------------------------------------------

_step = st.one_of(
    st.tuples(
        st.sampled_from(["A", "B"]),
        st.sampled_from(["local_members", "backup_members"]),
        st.sampled_from([G, G2, "239.1.2.3"]),
        st.booleans(),
    ),
    st.tuples(st.just("wait"), st.floats(0.0, 400.0)),
    st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(["interface_down", "interface_up"])),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_step, max_size=25))
def test_the_rp_forwards_exactly_where_a_router_wants_the_group(steps: list[tuple]) -> None:
    lab = Lab()
    lab.up()
    lab.run_until(10.0)
    for step in steps:
        if step[0] == "wait":
            lab.run_until(lab.now + step[1])
        elif len(step) == 2:
            lab.do(step[0], step[1], ET)
        else:
            name, method, group, present = step
            lab.do(name, method, group, ET, present)
    for group in (G, G2, "239.1.2.3"):
        wanted = {GE3} if lab.r["A"].oifs(group) else set()
        wanted |= {GE2} if lab.r["B"].oifs(group) else set()
        assert lab.r["D"].oifs(group) == wanted
        for name in "AB":
            entry = [g for g in lab.r[name].snapshot(lab.now).groups if g.group == group]
            joined = bool(entry) and entry[0].upstream_state is UpstreamState.JOINED
            assert joined == bool(lab.r[name].oifs(group))
