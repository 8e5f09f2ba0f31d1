"""LACP machines under virtual time: trunks wired back to back by a tiny event harness."""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import replace

import pytest

from daemon.lacp.codec import Lacpdu, PortInfo, decode_frame, state_bits
from daemon.lacp.machine import (
    AGGREGATE_WAIT_TIME,
    TRANSITIONS,
    DistributingChanged,
    IllegalTransition,
    LacpTrunk,
    MuxState,
    Output,
    PartnerAttached,
    PeriodicState,
    PortChanged,
    PortConfig,
    Role,
    RxState,
    Selected,
    Transmit,
    TrunkConfig,
    check_transition,
)

LATENCY = 1 / 128  # one-way link delay; a power of two keeps every sum of times exact
SYS_A = bytes.fromhex("00e0fc123455")
SYS_B = bytes.fromhex("00e0fc123456")
SYS_C = bytes.fromhex("00e0fc123457")
GE2, GE3, GE4 = "GigabitEthernet0/1/2", "GigabitEthernet0/1/3", "GigabitEthernet0/1/4"


def make_trunk(
    system: bytes,
    ports: dict[str, int],
    *,
    system_priority: int = 32768,
    port_priority: dict[str, int] | None = None,
    **kw: object,
) -> LacpTrunk:
    """A trunk with members {name: port_number}, key 305 as in the seed."""
    pri = port_priority or {}
    members = tuple(
        PortConfig(
            name=name,
            port_number=number,
            key=305,
            mac=bytes([2, 0, 0, system[-1], number >> 8 & 0xFF, number & 0xFF]),
            port_priority=pri.get(name, 32768),
        )
        for name, number in ports.items()
    )
    config = TrunkConfig(
        trunk_id=1, system_priority=system_priority, system=system, ports=members, **kw
    )
    return LacpTrunk(config)


class Lab:
    """Delivers each Transmit to the wired peer LATENCY later; advances time event by event."""

    def __init__(self, **trunks: LacpTrunk) -> None:
        self.trunks = trunks
        self.wires: dict[tuple[str, str], tuple[str, str]] = {}
        self.muted: set[tuple[str, str]] = set()
        self.inflight: list[tuple[float, int, str, str, bytes]] = []
        self.log: list[tuple[float, str, Output]] = []
        self.now = 0.0
        self._seq = itertools.count()

    def wire(self, a: str, pa: str, b: str, pb: str) -> None:
        """Connect two members and bring carrier up on both at `now`."""
        self.wires[(a, pa)] = (b, pb)
        self.wires[(b, pb)] = (a, pa)
        self.do(a, "port_enabled", pa, True)
        self.do(b, "port_enabled", pb, True)

    def cut(self, a: str, pa: str) -> None:
        """Pull the cable: carrier down on both ends, frames in flight are lost."""
        b, pb = self.wires.pop((a, pa))
        del self.wires[(b, pb)]
        self.inflight = [f for f in self.inflight if (f[2], f[3]) not in {(a, pa), (b, pb)}]
        heapq.heapify(self.inflight)
        self.do(a, "port_enabled", pa, False)
        self.do(b, "port_enabled", pb, False)

    def do(self, dev: str, method: str, *args: object) -> list[Output]:
        outs = getattr(self.trunks[dev], method)(*args, self.now)
        self.feed(dev, outs)
        return outs

    def feed(self, dev: str, outs: list[Output]) -> None:
        for out in outs:
            self.log.append((self.now, dev, out))
            if isinstance(out, Transmit):
                peer = self.wires.get((dev, out.port))
                if peer and (dev, out.port) not in self.muted:
                    item = (self.now + LATENCY, next(self._seq), *peer, out.frame)
                    heapq.heappush(self.inflight, item)

    def run_until(self, t: float) -> None:
        """Process every delivery and timer with time <= t, in time order."""
        while True:
            deadlines = [d for tr in self.trunks.values() if (d := tr.next_deadline()) is not None]
            next_timer = min(deadlines, default=math.inf)
            next_frame = self.inflight[0][0] if self.inflight else math.inf
            if min(next_timer, next_frame) > t:
                break
            if next_frame <= next_timer:
                self.now, _, dev, port, frame = heapq.heappop(self.inflight)
                _, pdu = decode_frame(frame)
                self.feed(dev, self.trunks[dev].pdu_received(port, pdu, self.now))
            else:
                self.now = next_timer
                for name, trunk in self.trunks.items():
                    self.feed(name, trunk.tick(self.now))
        self.now = t

    def sent(self, dev: str, port: str, since: float = -1.0) -> list[tuple[float, Lacpdu]]:
        return [
            (t, decode_frame(o.frame)[1])
            for t, d, o in self.log
            if d == dev and isinstance(o, Transmit) and o.port == port and t >= since
        ]

    def port_changes(self, dev: str, port: str, since: float = -1.0) -> list[PortChanged]:
        return [
            o
            for t, d, o in self.log
            if d == dev and isinstance(o, PortChanged) and o.port == port and t >= since
        ]

    def agg_changes(self, dev: str) -> list[tuple[float, DistributingChanged]]:
        return [(t, o) for t, d, o in self.log if d == dev and isinstance(o, DistributingChanged)]

    def port(self, dev: str, name: str):
        return next(p for p in self.trunks[dev].snapshot().ports if p.name == name)


def pair(**kw_c: object) -> Lab:
    """DeviceA GE0/1/2 <-> DeviceC GE0/1/2, wired at t=0."""
    lab = Lab(A=make_trunk(SYS_A, {GE2: 1}), C=make_trunk(SYS_C, {GE2: 1}, **kw_c))
    lab.wire("A", GE2, "C", GE2)
    return lab


def triangle(role_b: Role = Role.MASTER) -> Lab:
    """The seed's shape: switch C with GE0/1/2 to router A and GE0/1/3 to router B."""
    lab = Lab(
        A=make_trunk(SYS_A, {GE2: 1}),
        B=make_trunk(SYS_B, {GE3: 32769}),
        C=make_trunk(SYS_C, {GE2: 1, GE3: 2}),
    )
    lab.do("B", "set_role", role_b)
    lab.wire("A", GE2, "C", GE2)
    lab.wire("B", GE3, "C", GE3)
    lab.run_until(10.0)
    return lab


def assert_rate_limit(times: list[float]) -> None:
    """No more than three LACPDUs in any one-second window."""
    for i in range(len(times) - 3):
        assert times[i + 3] - times[i] >= 1.0, times[i : i + 4]


# ---- negotiation ------------------------------------------------------------------------


def test_back_to_back_reaches_distributing_after_aggregate_wait() -> None:
    lab = pair()
    lab.run_until(AGGREGATE_WAIT_TIME - LATENCY)
    assert not lab.trunks["A"].distributing() and not lab.trunks["C"].distributing()
    lab.run_until(AGGREGATE_WAIT_TIME + 4 * LATENCY)
    for dev in "AC":
        trunk = lab.trunks[dev]
        assert trunk.distributing() == {GE2}
        assert trunk.is_up()
        port = lab.port(dev, GE2)
        assert state_bits(port.actor.state) == "10111100"
        assert state_bits(port.partner.state) == "10111100"
        assert (port.rx, port.mux, port.selected) == (
            RxState.CURRENT,
            MuxState.DISTRIBUTING,
            Selected.SELECTED,
        )
        assert [o for _, o in lab.agg_changes(dev)][-1] == DistributingChanged(
            frozenset({GE2}), True, frozenset({GE2})
        )
    assert lab.port("C", GE2).partner.system == SYS_A
    lab.run_until(100.0)  # and it stays that way, quietly
    assert lab.trunks["A"].distributing() == {GE2}
    assert len(lab.agg_changes("A")) == 2  # collecting, then distributing + up


def test_two_members_to_one_partner_both_distribute() -> None:
    lab = Lab(A=make_trunk(SYS_A, {GE2: 1, GE3: 2}), C=make_trunk(SYS_C, {GE2: 1, GE3: 2}))
    lab.wire("A", GE2, "C", GE2)
    lab.wire("A", GE3, "C", GE3)
    lab.run_until(3.0)
    assert lab.trunks["A"].distributing() == lab.trunks["C"].distributing() == {GE2, GE3}
    lab.cut("A", GE3)
    assert lab.trunks["A"].distributing() == lab.trunks["C"].distributing() == {GE2}
    assert lab.trunks["C"].is_up()


def test_wait_while_gathers_ports_that_arrive_together() -> None:
    lab = Lab(A=make_trunk(SYS_A, {GE2: 1, GE3: 2}), C=make_trunk(SYS_C, {GE2: 1, GE3: 2}))
    lab.wire("A", GE2, "C", GE2)
    lab.run_until(1.0)
    lab.wire("A", GE3, "C", GE3)  # one second later: the aggregator waits for it too
    lab.run_until(2.5)
    assert not lab.trunks["C"].distributing()
    lab.run_until(3.1)
    assert lab.trunks["C"].distributing() == {GE2, GE3}
    attach = [
        t for t, d, o in lab.log if d == "C" and isinstance(o, PortChanged) and o.mux == "ATTACHED"
    ]
    assert len(set(attach)) == 1  # both attached at the same instant


# ---- timers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fast", "timeout", "defaulted_bits"), [(False, 90.0, "10100010"), (True, 3.0, "11100010")]
)
def test_partner_expires_then_defaults(fast: bool, timeout: float, defaulted_bits: str) -> None:
    lab = pair(fast_timeout=fast)  # C's own TIMEOUT bit sets its current_while
    lab.run_until(10.0)
    assert lab.trunks["C"].distributing() == {GE2}
    lab.muted.add(("A", GE2))  # A keeps its carrier but its LACPDUs stop arriving
    last_rx = lab.sent("A", GE2)[-1][0] + LATENCY
    lab.run_until(last_rx + timeout - LATENCY / 2)
    assert lab.port("C", GE2).rx is RxState.CURRENT
    assert lab.trunks["C"].distributing() == {GE2}
    lab.run_until(last_rx + timeout)
    port = lab.port("C", GE2)
    assert port.rx is RxState.EXPIRED
    assert state_bits(port.actor.state)[7] == "1"  # actor Expired
    assert not lab.trunks["C"].distributing() and not lab.trunks["C"].is_up()
    lab.run_until(last_rx + timeout + 3.0 - LATENCY / 2)
    assert lab.port("C", GE2).rx is RxState.EXPIRED
    lab.run_until(last_rx + timeout + 3.0)
    port = lab.port("C", GE2)
    assert port.rx is RxState.DEFAULTED
    assert port.partner == PortInfo(0, bytes(6), 0, 0, 0, 0)
    assert (port.selected, port.mux) == (Selected.UNSELECTED, MuxState.DETACHED)
    assert state_bits(port.actor.state) == defaulted_bits


@pytest.mark.parametrize(("c_fast", "period"), [(False, 30.0), (True, 1.0)])
def test_periodic_transmit_follows_partner_timeout(c_fast: bool, period: float) -> None:
    lab = pair(fast_timeout=c_fast)  # C's actor TIMEOUT bit decides how often A sends
    lab.run_until(200.0)
    # After convergence (in fast mode the 3-per-second limit delays it to t=3) only
    # periodic LACPDUs remain.
    times = [t for t, _ in lab.sent("A", GE2, since=4.0)]
    assert len(times) >= 5
    assert all(b - a == period for a, b in itertools.pairwise(times))
    c_times = [t for t, _ in lab.sent("C", GE2, since=4.0)]
    assert all(b - a == 30.0 for a, b in itertools.pairwise(c_times))  # A is slow


def test_periodic_not_rearmed_by_receives() -> None:
    lab = pair(fast_timeout=True)
    lab.run_until(5.0)
    phase = [t for t, _ in lab.sent("A", GE2, since=3.0)]
    _, last_from_c = lab.sent("C", GE2)[-1]
    for k in range(1, 40):  # extra, identical LACPDUs at odd times in between
        lab.run_until(5.0 + k * 0.37)
        lab.do("A", "pdu_received", GE2, last_from_c)
    lab.run_until(20.0)
    times = [t for t, _ in lab.sent("A", GE2, since=3.0)]
    assert times[: len(phase)] == phase
    assert times == [phase[0] + k for k in range(len(times))]


def test_ntt_on_state_change_and_rate_limit() -> None:
    lab = pair()
    lab.run_until(40.0)
    before = len(lab.sent("A", GE2))
    lab.run_until(45.0)
    assert len(lab.sent("A", GE2)) == before  # quiet while nothing changes (slow periodic)
    lab.do("A", "set_role", Role.BACKUP)  # one change: one LACPDU at once
    (t0, pdu), *_ = lab.sent("A", GE2, since=45.0)
    assert t0 == 45.0 and state_bits(pdu.actor.state) == "10100000"
    for role in [Role.MASTER, Role.BACKUP, Role.MASTER, Role.BACKUP, Role.MASTER]:
        lab.do("A", "set_role", role)
    burst = lab.sent("A", GE2, since=45.0)
    assert [t for t, _ in burst] == [45.0] * 3  # the limit: three in one second
    lab.run_until(46.0)
    times = [t for t, _ in lab.sent("A", GE2, since=45.0)]
    assert times[:4] == [45.0, 45.0, 45.0, 46.0]  # held NTT goes out when the window allows
    lab.run_until(60.0)
    assert lab.trunks["A"].distributing() == lab.trunks["C"].distributing() == {GE2}
    for dev in "AC":
        assert_rate_limit([t for t, _ in lab.sent(dev, GE2)])
    last_a = lab.sent("A", GE2)[-1][1]
    assert state_bits(last_a.actor.state) == "10111100"  # the final state was sent


# ---- selection between partners ---------------------------------------------------------


def test_switch_picks_lower_system_id_and_fails_over_without_wait() -> None:
    lab = triangle()
    c = lab.trunks["C"]
    assert c.distributing() == {GE2}
    standby = lab.port("C", GE3)  # the other partner stands by, its wait long run out
    assert (standby.selected, standby.mux) == (Selected.STANDBY, MuxState.WAITING)
    b_port = lab.port("B", GE3)
    assert b_port.mux is MuxState.ATTACHED  # B is ready, C does not use it
    assert state_bits(b_port.actor.state) == "10110000"
    assert state_bits(b_port.partner.state) == "10100000"  # as in the seed's DeviceB

    lab.cut("A", GE2)
    assert c.distributing() == frozenset()
    lab.run_until(10.0 + 2 * LATENCY)  # one round trip C -> B -> C
    assert c.distributing() == {GE3} and c.is_up()
    assert lab.trunks["B"].distributing() == {GE3}
    assert next(o.mux for o in lab.port_changes("C", GE3, since=10.0)) == "COLLECTING"

    lab.run_until(20.0)
    lab.wire("A", GE2, "C", GE2)
    lab.run_until(30.0)  # both in sync: the aggregator stays with the partner it has
    assert c.distributing() == {GE3}
    assert lab.port("C", GE2).selected is Selected.STANDBY
    assert "ATTACHED" not in [o.mux for o in lab.port_changes("C", GE2, since=20.0)]

    lab.cut("B", GE3)  # A has stood by for its wait: C moves within one round trip
    lab.run_until(30.0 + 2 * LATENCY)
    assert c.distributing() == {GE2}
    assert lab.trunks["A"].distributing() == {GE2}
    gap = [t for t, o in lab.agg_changes("C") if t >= 30.0]
    assert max(gap) - min(gap) <= 2 * LATENCY


def test_backup_role_stays_out_and_partner_does_not_select_it() -> None:
    lab = triangle(role_b=Role.BACKUP)
    b = lab.port("B", GE3)
    assert (b.selected, b.mux, b.rx) == (Selected.UNSELECTED, MuxState.DETACHED, RxState.CURRENT)
    assert state_bits(b.actor.state) == "10100000"
    assert lab.port("C", GE3).selected is Selected.STANDBY
    assert lab.trunks["C"].distributing() == {GE2}
    received = b.lacpdus_received
    lab.run_until(100.0)  # still speaking LACP, so the switch keeps seeing it
    assert lab.port("B", GE3).lacpdus_received > received
    assert lab.port("B", GE3).lacpdus_sent > 2

    lab.cut("A", GE2)  # only B is left: C takes it, but B stays out until it is master
    lab.run_until(101.0)
    assert lab.port("C", GE3).mux is MuxState.ATTACHED
    assert not lab.trunks["C"].is_up() and not lab.trunks["B"].distributing()
    lab.do("B", "set_role", Role.BACKUP)  # no change, no output
    lab.do("B", "set_role", Role.MASTER)  # E-Trunk switchover: no 2 s wait
    lab.run_until(101.0 + 2 * LATENCY)
    assert lab.trunks["C"].distributing() == lab.trunks["B"].distributing() == {GE3}
    lab.do("B", "set_role", Role.BACKUP)
    assert not lab.trunks["B"].distributing()
    lab.run_until(101.0 + 3 * LATENCY)
    assert not lab.trunks["C"].distributing()


def test_switch_follows_in_sync_partner_even_with_worse_system_id() -> None:
    lab = triangle(role_b=Role.BACKUP)
    lab.do("A", "set_role", Role.BACKUP)
    lab.do("B", "set_role", Role.MASTER)
    lab.run_until(10.0 + 3 * LATENCY)  # B's news reaches C, then one round trip
    assert lab.trunks["C"].distributing() == {GE3}
    assert lab.port("C", GE2).selected is Selected.STANDBY


def test_each_router_hears_whether_the_switch_attached_its_link() -> None:
    # The fact E-Trunk settles a double master with: the switch has one aggregate, so at most
    # one router hears Synchronization from it, and that router keeps hearing it while its
    # own state comes and goes (backup for a moment: the switch keeps the port attached).
    lab = triangle(role_b=Role.BACKUP)

    def attached(dev: str) -> list[bool]:
        return [o.attached for _, d, o in lab.log if d == dev and isinstance(o, PartnerAttached)]

    assert lab.trunks["A"].partner_attached() and not lab.trunks["B"].partner_attached()
    assert (attached("A"), attached("B")) == ([True], [])
    lab.cut("A", GE2)
    lab.run_until(10.0 + 2 * LATENCY)  # C attached its port toward B: B hears it, A is gone
    assert lab.trunks["B"].partner_attached() and not lab.trunks["A"].partner_attached()
    assert (attached("A"), attached("B")) == ([True, False], [True])
    lab.do("B", "set_role", Role.MASTER)
    lab.do("B", "set_role", Role.BACKUP)
    lab.run_until(10.0 + 5 * LATENCY)
    assert lab.trunks["B"].partner_attached() and attached("B") == [True]
    lab.do("B", "shutdown")
    assert not lab.trunks["B"].partner_attached() and attached("B") == [True, False]


# ---- max_active, least_active -----------------------------------------------------------


def test_max_active_uses_priorities_of_the_better_system() -> None:
    ports = {GE2: 1, GE3: 2, GE4: 3}
    lab = Lab(
        A=make_trunk(SYS_A, ports),
        C=make_trunk(SYS_C, ports, system_priority=100, port_priority={GE4: 1}, max_active=2),
    )
    for name in ports:
        lab.wire("A", name, "C", name)
    lab.run_until(5.0)
    # C has the better system ID, so its priorities decide: GE4 (priority 1), then GE2.
    assert lab.trunks["C"].distributing() == lab.trunks["A"].distributing() == {GE2, GE4}
    standby = lab.port("C", GE3)
    assert (standby.selected, standby.mux) == (Selected.STANDBY, MuxState.WAITING)
    assert lab.port("A", GE3).mux is MuxState.ATTACHED

    lab.cut("A", GE4)  # the standby port takes over within a round trip
    lab.run_until(5.0 + 2 * LATENCY)
    assert lab.trunks["C"].distributing() == lab.trunks["A"].distributing() == {GE2, GE3}


def test_max_active_decided_by_partner_with_better_system_id() -> None:
    ports = {GE2: 1, GE3: 2, GE4: 3}
    lab = Lab(
        A=make_trunk(SYS_A, ports, port_priority={GE2: 40000}),
        C=make_trunk(SYS_C, ports, max_active=2),
    )
    for name in ports:
        lab.wire("A", name, "C", name)
    lab.run_until(5.0)
    assert lab.trunks["C"].distributing() == {GE3, GE4}  # by A's port priorities


def test_least_active_sets_trunk_up() -> None:
    lab = Lab(
        A=make_trunk(SYS_A, {GE2: 1, GE3: 2}),
        C=make_trunk(SYS_C, {GE2: 1, GE3: 2}, least_active=2),
    )
    lab.wire("A", GE2, "C", GE2)
    lab.wire("A", GE3, "C", GE3)
    lab.run_until(5.0)
    assert lab.trunks["C"].is_up()
    lab.cut("A", GE3)
    assert lab.trunks["C"].distributing() == {GE2} and not lab.trunks["C"].is_up()
    _, last = lab.agg_changes("C")[-1]
    assert last == DistributingChanged(frozenset({GE2}), False, frozenset({GE2}))
    assert lab.trunks["A"].is_up()  # least_active is per end


# ---- partner identity, drops, shutdown --------------------------------------------------


def test_partner_identity_change_detaches_and_waits_again() -> None:
    lab = pair()
    lab.run_until(10.0)
    _, pdu = lab.sent("A", GE2)[-1]
    impostor = replace(pdu, actor=replace(pdu.actor, system=SYS_B))
    lab.muted.add(("A", GE2))
    lab.do("C", "pdu_received", GE2, impostor)
    port = lab.port("C", GE2)
    assert (port.mux, port.partner.system) == (MuxState.WAITING, SYS_B)
    assert not lab.trunks["C"].distributing()
    lab.run_until(10.0 + AGGREGATE_WAIT_TIME - LATENCY)
    assert lab.port("C", GE2).mux is MuxState.WAITING
    lab.run_until(10.0 + AGGREGATE_WAIT_TIME)  # the new partner claims sync and collecting
    assert lab.port("C", GE2).mux is MuxState.DISTRIBUTING


def test_drops_and_counters() -> None:
    trunk = make_trunk(SYS_C, {GE2: 1})
    lab = pair()
    lab.run_until(10.0)
    _, pdu = lab.sent("A", GE2)[-1]
    assert trunk.pdu_received(GE2, pdu, 0.0) == []  # carrier down: dropped, counted
    trunk.count_drop(GE2, "bad-version")
    trunk.count_drop(GE2, "bad-version")
    port = trunk.snapshot().ports[0]
    assert port.dropped == {"port-disabled": 1, "bad-version": 2}
    assert port.lacpdus_received == 0
    c = lab.port("C", GE2)
    assert c.lacpdus_received == len(lab.sent("A", GE2))
    assert c.lacpdus_sent == len(lab.sent("C", GE2))


def test_port_down_stops_distributing_at_once() -> None:
    lab = pair()
    lab.run_until(10.0)
    outs = lab.do("C", "port_enabled", GE2, False)
    assert DistributingChanged(frozenset(), False, frozenset()) in outs
    port = lab.port("C", GE2)
    assert (port.rx, port.periodic) == (RxState.PORT_DISABLED, PeriodicState.NO_PERIODIC)
    assert not any(isinstance(o, Transmit) for o in outs)


def test_shutdown_says_goodbye_and_partner_detaches_at_once() -> None:
    lab = pair()
    lab.run_until(10.0)
    for role in [Role.BACKUP, Role.MASTER, Role.BACKUP]:
        lab.do("A", "set_role", role)  # use up the rate limit first
    lab.do("A", "set_role", Role.MASTER)
    outs = lab.do("A", "shutdown")
    (goodbye,) = [o for o in outs if isinstance(o, Transmit)]
    assert state_bits(decode_frame(goodbye.frame)[1].actor.state) == "10100000"
    assert DistributingChanged(frozenset(), False, frozenset()) in outs
    a = lab.trunks["A"]
    assert a.next_deadline() is None
    assert a.tick(1000.0) == [] and a.shutdown(1000.0) == []
    assert a.set_role(Role.BACKUP, 1000.0) == [] and a.port_enabled(GE2, False, 1000.0) == []
    lab.run_until(10.0 + LATENCY)
    assert not lab.trunks["C"].distributing()
    assert lab.port("C", GE2).mux is MuxState.ATTACHED


# ---- transition tables ------------------------------------------------------------------


@pytest.mark.parametrize("enum", [RxState, PeriodicState, MuxState])
def test_transition_table_is_enforced(enum: type) -> None:
    table = TRANSITIONS[enum]
    assert set(table) == set(enum)
    for old, new in itertools.product(enum, enum):
        if new in table[old]:
            assert check_transition(old, new) is new
        else:
            with pytest.raises(IllegalTransition):
                check_transition(old, new)


def test_machine_raises_on_illegal_transition() -> None:
    trunk = make_trunk(SYS_C, {GE2: 1})
    port = trunk._ports[GE2]  # a disabled port has no current_while; force one to fire
    with pytest.raises(IllegalTransition, match="PORT_DISABLED -> DEFAULTED"):
        trunk._on_current_while(port, 0.0)


def test_config_validation() -> None:
    member = PortConfig(name=GE2, port_number=1, key=305, mac=bytes(6))
    with pytest.raises(ValueError, match="duplicate"):
        TrunkConfig(trunk_id=1, system_priority=1, system=SYS_A, ports=(member, member))
    with pytest.raises(ValueError, match="least_active"):
        TrunkConfig(trunk_id=1, system_priority=1, system=SYS_A, ports=(), least_active=0)
    with pytest.raises(ValueError, match="port out of range"):
        bad = replace(member, port_number=0x10000)
        TrunkConfig(trunk_id=1, system_priority=1, system=SYS_A, ports=(bad,))


# ---- the aggregate wait counted from the partner's arrival; EXPIRED; Individual partners --


def test_standby_port_waits_only_the_remainder_of_its_wait() -> None:
    lab = Lab(A=make_trunk(SYS_A, {GE2: 1}), B=make_trunk(SYS_B, {GE3: 32769}),
              C=make_trunk(SYS_C, {GE2: 1, GE3: 2}))
    lab.wire("A", GE2, "C", GE2)
    lab.run_until(10.0)
    lab.wire("B", GE3, "C", GE3)  # B's port appears while C aggregates toward A
    lab.run_until(10.5)
    assert lab.port("C", GE3).mux is MuxState.WAITING
    lab.cut("A", GE2)  # half a second into B's wait
    lab.run_until(10.0 + AGGREGATE_WAIT_TIME)
    assert not lab.trunks["C"].distributing()
    lab.run_until(10.0 + AGGREGATE_WAIT_TIME + 4 * LATENCY)  # not 10.5 + 2 s
    assert lab.trunks["C"].distributing() == {GE3}


def test_expired_partner_stays_selected_and_returns_without_a_new_wait() -> None:
    lab = pair(fast_timeout=True)
    lab.run_until(10.0)
    lab.muted.add(("A", GE2))  # A goes quiet, carrier up
    lab.run_until(13.5)
    port = lab.port("C", GE2)
    assert port.rx is RxState.EXPIRED
    assert (port.selected, port.mux) == (Selected.SELECTED, MuxState.ATTACHED)
    assert port.partner.system == SYS_A  # kept, with sync cleared
    assert state_bits(port.partner.state)[3] == "0"  # Synchronization
    assert not lab.trunks["C"].distributing()
    lab.muted.discard(("A", GE2))
    lab.run_until(15.0)  # A's next periodic LACPDU (1 s), then a round trip or two
    assert lab.trunks["C"].distributing() == {GE2}
    assert "WAITING" not in [o.mux for o in lab.port_changes("C", GE2, since=10.0)]


def test_expired_partner_gives_way_to_one_in_sync() -> None:
    lab = Lab(A=make_trunk(SYS_A, {GE2: 1}), B=make_trunk(SYS_B, {GE3: 32769}),
              C=make_trunk(SYS_C, {GE2: 1, GE3: 2}, fast_timeout=True))
    lab.wire("A", GE2, "C", GE2)
    lab.wire("B", GE3, "C", GE3)
    lab.run_until(10.0)
    assert lab.trunks["C"].distributing() == {GE2}
    lab.muted.add(("A", GE2))
    last_rx = lab.sent("A", GE2)[-1][0] + LATENCY
    lab.run_until(last_rx + 3.0 - LATENCY / 2)
    assert lab.trunks["C"].distributing() == {GE2}  # not before the partner timeout
    lab.run_until(last_rx + 3.0 + 2 * LATENCY)  # B stood by long enough: no wait
    assert lab.trunks["C"].distributing() == {GE3}
    assert lab.port("C", GE2).selected is Selected.STANDBY


def individual(pdu: Lacpdu, port: int) -> Lacpdu:
    """An LACPDU as a partner sends it for a link it will not aggregate (Aggregation 0)."""
    actor = replace(pdu.actor, port=port, state=pdu.actor.state & ~0x04)
    return replace(pdu, actor=actor)


def test_individual_partner_is_selected_alone() -> None:
    lab = pair()
    lab.run_until(10.0)
    _, pdu = lab.sent("A", GE2)[-1]
    lab.muted.add(("A", GE2))
    c = make_trunk(SYS_C, {GE2: 1, GE3: 2})
    c.port_enabled(GE2, True, 0.0)
    c.port_enabled(GE3, True, 0.0)
    c.pdu_received(GE2, individual(pdu, 7), 0.0)
    c.pdu_received(GE3, individual(pdu, 8), 0.0)  # same system: still two separate LAGs
    ports = {p.name: p for p in c.snapshot().ports}
    assert (ports[GE2].selected, ports[GE2].mux) == (Selected.SELECTED, MuxState.WAITING)
    assert (ports[GE3].selected, ports[GE3].mux) == (Selected.STANDBY, MuxState.WAITING)
    c.tick(AGGREGATE_WAIT_TIME)  # an Individual partner's sync counts whatever it says of us
    ports = {p.name: p for p in c.snapshot().ports}
    assert ports[GE2].mux is MuxState.DISTRIBUTING and ports[GE3].mux is MuxState.WAITING
    assert c.distributing() == {GE2} and c.is_up()
