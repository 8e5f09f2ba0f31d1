"""IgmpInterface under virtual time: querier election, queries, RFC 3376 tables, compatibility."""

from __future__ import annotations

import heapq
import itertools
import time

import pytest

from daemon.igmp.codec import (
    GroupRecord,
    IpIgmp,
    Query,
    RecordType,
    V1Report,
    V2Leave,
    V2Report,
    V3Report,
    decode,
)
from daemon.igmp.machine import (
    MAX_QUERY_SOURCES,
    TRANSITIONS,
    AdoptedGroup,
    EventKind,
    FilterMode,
    GroupEvent,
    IfState,
    IgmpConfig,
    IgmpInterface,
    IllegalTransition,
    Output,
    SendQuery,
    check_transition,
)

IF = "Eth-Trunk1"
A = "10.0.15.1"  # DeviceA's Eth-Trunk1
B = "10.0.15.3"
HOST = "10.0.15.100"
HOST2 = "10.0.15.101"
G = "225.1.1.1"
S1, S2, S3, S4, S5 = (f"10.1.1.{i}" for i in range(1, 6))
IS_IN, IS_EX = RecordType.MODE_IS_INCLUDE, RecordType.MODE_IS_EXCLUDE
TO_IN, TO_EX = RecordType.CHANGE_TO_INCLUDE, RecordType.CHANGE_TO_EXCLUDE
ALLOW, BLOCK = RecordType.ALLOW_NEW_SOURCES, RecordType.BLOCK_OLD_SOURCES


def make(version: int = 2, address: str = A, **kw: object) -> IgmpInterface:
    return IgmpInterface(IgmpConfig(ifname=IF, address=address, version=version, **kw))


def v1_report(group: str = G, src: str = HOST) -> IpIgmp:
    return IpIgmp(src, group, 1, False, V1Report(group))


def v2_report(group: str = G, src: str = HOST) -> IpIgmp:
    return IpIgmp(src, group, 1, True, V2Report(group))


def v2_leave(group: str = G, src: str = HOST) -> IpIgmp:
    return IpIgmp(src, "224.0.0.2", 1, True, V2Leave(group))


def rec(rtype: int, group: str = G, *sources: str) -> GroupRecord:
    return GroupRecord(rtype, group, sources)


def v3(*records: GroupRecord, src: str = HOST, ttl: int = 1, ra: bool = True) -> IpIgmp:
    return IpIgmp(src, "224.0.0.22", ttl, ra, V3Report(records))


def query_from(src: str, q: Query) -> IpIgmp:
    return IpIgmp(src, "224.0.0.1" if q.general else q.group, 1, True, q)


def queries(outs: list[Output]) -> list[tuple[str, Query]]:
    found = []
    for o in outs:
        if isinstance(o, SendQuery):
            q = decode(o.payload)
            assert isinstance(q, Query)
            found.append((o.dst, q))
    return found


def events(outs: list[Output]) -> list[tuple[EventKind, str, str, frozenset[str]]]:
    return [(o.kind, o.group, o.mode, o.sources) for o in outs if isinstance(o, GroupEvent)]


def advance(m: IgmpInterface, until: float) -> list[tuple[float, Output]]:
    """Fire the machine's timers one deadline at a time up to `until`."""
    out: list[tuple[float, Output]] = []
    while (d := m.next_deadline()) is not None and d <= until:
        out += [(d, o) for o in m.tick(d)]
    return out


def query_times(timed: list[tuple[float, Output]]) -> list[float]:
    return [t for t, o in timed if isinstance(o, SendQuery)]


def started(version: int = 3, **kw: object) -> IgmpInterface:
    m = make(version, **kw)
    m.start(0.0)
    return m


def group_state(m: IgmpInterface, now: float, group: str = G) -> dict[str, object]:
    snap = m.snapshot(now)
    (g,) = [g for g in snap.groups if g.group == group]
    return {
        "mode": str(g.mode),
        "sources": {s.source: s.expires for s in g.sources},
        "group_timer": g.expires if g.mode is FilterMode.EXCLUDE else None,
    }


# ---- configuration and states -----------------------------------------------------------


def test_config_defaults_follow_vrp_and_the_rfcs() -> None:
    c = IgmpConfig(ifname=IF, address=A)
    assert (c.version, c.robustness, c.query_interval, c.max_response) == (2, 2, 60.0, 10.0)
    assert (c.startup_query_count, c.startup_query_interval) == (2, 15.0)
    assert (c.last_member_query_interval, c.last_member_query_count) == (1.0, 2)
    assert c.other_querier_present_interval == 125.0  # VRP's "Timer other-querier-present"
    assert c.group_membership_interval == c.older_host_present_interval == 130.0
    c3 = IgmpConfig(ifname=IF, address=A, robustness=3, query_interval=125, other_querier_timeout=9)
    assert (c3.startup_query_count, c3.group_membership_interval) == (3, 385.0)
    assert c3.other_querier_present_interval == 9


@pytest.mark.parametrize(
    "kw",
    [
        {"address": "10.0.15"},
        {"version": 1},
        {"version": 4},
        {"robustness": 0},
        {"max_response": 25.6},  # v2 max resp time is one octet of tenths
        {"max_response": 0},
        {"max_response": 60.0},  # must be below the query interval
        {"last_member_query_interval": 0.01},
        {"query_interval": 40000, "version": 3},
        {"other_querier_timeout": 0},
    ],
)
def test_config_rejects_bad_values(kw: dict[str, object]) -> None:
    args: dict[str, object] = {"ifname": IF, "address": A, **kw}
    with pytest.raises(ValueError):
        IgmpConfig(**args)  # type: ignore[arg-type]


def test_v3_allows_long_max_response() -> None:
    assert IgmpConfig(ifname=IF, address=A, version=3, max_response=25.6).max_response == 25.6


def test_transition_table_is_enforced() -> None:
    assert check_transition(IfState.DOWN, IfState.QUERIER) is IfState.QUERIER
    with pytest.raises(IllegalTransition):
        check_transition(IfState.DOWN, IfState.NON_QUERIER)
    for old, allowed in TRANSITIONS.items():
        assert old not in allowed  # no self loops: a state change is always a change


# ---- general queries --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("robustness", "expected"),
    [
        (2, [0.0, 15.0, 75.0, 135.0, 195.0]),
        (3, [0.0, 15.0, 30.0, 90.0, 150.0]),
    ],
)
def test_startup_queries_then_periodic(robustness: int, expected: list[float]) -> None:
    m = make(robustness=robustness)
    first = m.start(0.0)
    timed = [(0.0, o) for o in first] + advance(m, 200.0)
    assert query_times(timed) == expected
    for dst, q in queries([o for _, o in timed]):
        assert (dst, q) == ("224.0.0.1", Query.v2(10.0))
    assert m.snapshot(200.0).counters.general_queries_sent == len(expected)
    assert m.start(201.0) == []  # already running


def test_v3_general_query_carries_qrv_and_qqic() -> None:
    m = make(3, robustness=3, query_interval=125, max_response=20)
    ((dst, q),) = queries(m.start(0.0))
    assert dst == "224.0.0.1"
    assert (q.version, q.general, q.max_response, q.qrv, q.qqi, q.s_flag) == (
        3,
        True,
        20.0,
        3,
        125,
        False,
    )


def test_late_tick_keeps_the_query_phase() -> None:
    m = make()
    m.start(0.0)
    advance(m, 15.0)
    assert len(queries(m.tick(100.0))) == 1  # due at 75, woken at 100: one query, not two
    assert m.next_deadline() == 135.0


# ---- querier election -------------------------------------------------------------------

LATENCY = 1 / 128


class Lan:
    """Machines on one segment: every query one sends reaches the others LATENCY later."""

    def __init__(self, *machines: IgmpInterface) -> None:
        self.machines = machines
        self.inflight: list[tuple[float, int, int, IpIgmp]] = []
        self.log: list[tuple[float, str, Output]] = []
        self.now = 0.0
        self._seq = itertools.count()

    def feed(self, m: IgmpInterface, outs: list[Output]) -> None:
        for o in outs:
            self.log.append((self.now, m.config.address, o))
            if isinstance(o, SendQuery):
                pkt = IpIgmp(m.config.address, o.dst, 1, True, decode(o.payload))
                for i, other in enumerate(self.machines):
                    if other is not m:
                        heapq.heappush(self.inflight, (self.now + LATENCY, next(self._seq), i, pkt))

    def start(self, m: IgmpInterface) -> None:
        self.feed(m, m.start(self.now))

    def stop(self, m: IgmpInterface) -> None:
        self.feed(m, m.stop(self.now))

    def run(self, until: float) -> None:
        while True:
            deadlines = [
                (d, i) for i, m in enumerate(self.machines) if (d := m.next_deadline()) is not None
            ]
            nxt_timer = min(deadlines, default=(float("inf"), -1))
            nxt_pkt = self.inflight[0][0] if self.inflight else float("inf")
            if min(nxt_timer[0], nxt_pkt) > until:
                self.now = until
                return
            if nxt_pkt <= nxt_timer[0]:
                self.now, _, i, pkt = heapq.heappop(self.inflight)
                self.feed(self.machines[i], self.machines[i].packet_received(pkt, self.now))
            else:
                self.now, i = nxt_timer
                self.feed(self.machines[i], self.machines[i].tick(self.now))

    def query_senders(self, since: float) -> set[str]:
        return {src for t, src, o in self.log if t >= since and isinstance(o, SendQuery)}


@pytest.mark.parametrize("a_first", [True, False])
def test_lowest_address_becomes_querier(a_first: bool) -> None:
    a, b = make(address=A), make(address=B)
    lan = Lan(a, b)
    for m in (a, b) if a_first else (b, a):
        lan.start(m)
        lan.run(lan.now + 1.0)
    lan.run(400.0)
    assert (a.state, b.state) == (IfState.QUERIER, IfState.NON_QUERIER)
    assert a.snapshot(lan.now).querier_address == b.snapshot(lan.now).querier_address == A
    assert lan.query_senders(since=5.0) == {A}  # B went quiet once it heard A
    # A started first: it heard B's startup query and stayed; B first: B heard A's and yielded
    assert a.snapshot(lan.now).counters.queries_received == (1 if a_first else 0)
    assert b.snapshot(lan.now).counters.queries_received >= 7


def test_non_querier_takes_over_after_other_querier_present_interval() -> None:
    a, b = make(address=A), make(address=B)
    lan = Lan(a, b)
    lan.start(a)
    lan.start(b)
    lan.run(100.0)
    last_from_a = max(t for t, src, o in lan.log if src == A and isinstance(o, SendQuery))
    lan.stop(a)
    lan.run(last_from_a + LATENCY + 125.0 - 0.001)
    assert b.state is IfState.NON_QUERIER
    assert b.snapshot(lan.now).other_querier_expires == pytest.approx(0.001)
    lan.run(last_from_a + LATENCY + 125.0)
    assert b.state is IfState.QUERIER
    assert b.snapshot(lan.now).querier_address == B
    takeover = [t for t, src, o in lan.log if src == B and isinstance(o, SendQuery)]
    assert takeover[-1] == last_from_a + LATENCY + 125.0  # a general query at once
    lan.run(takeover[-1] + 60.0)
    assert max(t for t, src, o in lan.log if src == B) == takeover[-1] + 60.0  # then every 60 s


def test_query_from_zero_address_is_ignored() -> None:
    m = started(address=B)
    assert m.packet_received(query_from("0.0.0.0", Query.v3(10)), 1.0) == []
    snap = m.snapshot(1.0)
    assert snap.state is IfState.QUERIER and snap.dropped == {"query-from-zero": 1}
    assert snap.counters.queries_received == 0


def test_higher_address_query_does_not_unseat_the_querier() -> None:
    m = started(address=A)
    m.packet_received(query_from(B, Query.v3(10)), 1.0)
    assert m.state is IfState.QUERIER
    assert m.snapshot(1.0).other_querier_expires is None


def test_own_packets_are_dropped() -> None:
    m = started(address=A)
    m.packet_received(query_from(A, Query.v3(10)), 1.0)
    assert m.snapshot(1.0).dropped == {"own-packet": 1}


def test_version_mismatch_is_counted_but_the_election_still_runs() -> None:
    m = started(3, address=B)
    m.packet_received(query_from(A, Query.v2(10)), 1.0)
    snap = m.snapshot(1.0)
    assert snap.counters.version_mismatches == 1
    assert snap.state is IfState.NON_QUERIER


def test_non_querier_adopts_the_queriers_qrv_and_qqi() -> None:
    m = started(3, address=B)
    m.packet_received(query_from(A, Query.v3(10, robustness=3, query_interval=30)), 1.0)
    snap = m.snapshot(1.0)
    assert (snap.robustness, snap.query_interval) == (3, 30)
    assert (snap.configured_robustness, snap.configured_query_interval) == (2, 60.0)
    assert snap.group_membership_interval == 3 * 30 + 10
    assert snap.other_querier_expires == 3 * 30 + 5
    m.packet_received(v3(rec(IS_EX, G)), 2.0)
    assert m.snapshot(2.0).groups[0].expires == 100.0
    advance(m, 96.0)  # the querier is gone: back to our own values
    snap = m.snapshot(96.0)
    assert snap.state is IfState.QUERIER
    assert (snap.robustness, snap.query_interval) == (2, 60.0)


# ---- v2 membership ----------------------------------------------------------------------


@pytest.mark.parametrize(("robustness", "lmqi"), [(2, 1.0), (3, 0.5)])
def test_v2_join_and_leave_with_exact_last_member_query_timing(
    robustness: int, lmqi: float
) -> None:
    m = make(robustness=robustness, last_member_query_interval=lmqi)
    m.start(0.0)
    assert events(m.packet_received(v2_report(), 1.0)) == [
        (EventKind.JOIN, G, "exclude", frozenset())
    ]
    out = m.packet_received(v2_leave(), 20.0)
    timed = [(20.0, o) for o in out] + advance(m, 40.0)
    sent = [(t, dst, q) for t, o in timed for dst, q in queries([o])]
    group_queries = [(t, dst, q) for t, dst, q in sent if not q.general]
    assert [t for t, _, _ in group_queries] == [20.0 + i * lmqi for i in range(robustness)]
    for _, dst, q in group_queries:
        assert (dst, q) == (G, Query.v2(lmqi, G))
    leave = [(t, o) for t, o in timed if isinstance(o, GroupEvent)]
    assert leave == [
        (
            20.0 + robustness * lmqi,
            GroupEvent(
                EventKind.LEAVE, IF, G, "include", frozenset(), HOST, 20.0 + robustness * lmqi
            ),
        )
    ]
    snap = m.snapshot(40.0)
    assert snap.groups == ()
    assert (snap.counters.leaves_received, snap.counters.group_queries_sent) == (1, robustness)


def test_report_during_last_member_queries_keeps_the_group() -> None:
    m = started()
    m.packet_received(v3(rec(TO_EX, G)), 1.0)
    out = m.packet_received(v3(rec(TO_IN, G)), 10.0)  # the last v3 host leaves
    ((dst, q),) = queries(out)
    assert (dst, q.group, q.s_flag, q.max_response) == (G, G, False, 1.0)
    m.packet_received(v3(rec(IS_EX, G), src=HOST2), 10.5)  # another member answers
    ((_, q),) = queries(m.tick(11.0))
    assert q.s_flag  # the timer is above LMQT again: other routers must not lower theirs
    assert events([o for _, o in advance(m, 100.0)]) == []
    assert m.snapshot(100.0).groups[0].reporter == HOST2


def test_a_repeated_leave_does_not_restart_the_last_member_queries() -> None:
    m = make()
    m.start(0.0)
    m.packet_received(v2_report(), 1.0)
    first = m.packet_received(v2_leave(), 20.0)
    again = m.packet_received(v2_leave(src=HOST2), 20.5)
    assert [q.group for _, q in queries(first)] == ["0.0.0.0", G]  # the 15 s one was due
    assert queries(again) == []
    timed = advance(m, 30.0)
    assert [t for t, o in timed if isinstance(o, SendQuery)] == [21.0]
    assert [(t, o.kind) for t, o in timed if isinstance(o, GroupEvent)] == [(22.0, EventKind.LEAVE)]


def test_leave_for_an_unknown_group_does_nothing() -> None:
    m = started(2)
    assert m.packet_received(v2_leave(), 1.0) == []
    assert m.snapshot(1.0).counters.leaves_received == 1


def test_group_expires_after_the_membership_interval() -> None:
    m = make()
    m.start(0.0)
    m.packet_received(v2_report(), 1.0)
    timed = [(t, o) for t, o in advance(m, 200.0) if isinstance(o, GroupEvent)]
    assert [(t, o.kind) for t, o in timed] == [(131.0, EventKind.LEAVE)]
    m.packet_received(v2_report(), 201.0)
    m.packet_received(v2_report(), 300.0)  # a refresh restarts the timer
    timed = [(t, o) for t, o in advance(m, 500.0) if isinstance(o, GroupEvent)]
    assert [(t, o.kind) for t, o in timed] == [(430.0, EventKind.LEAVE)]


def test_refresh_events_are_rate_limited_per_group() -> None:
    m = started(2)
    kinds = []
    for t in (1.0, 1.2, 1.9, 2.0, 2.5, 3.0, 3.5):
        for g in (G, "225.1.1.2"):
            kinds += [(t, k, grp) for k, grp, _, _ in events(m.packet_received(v2_report(g), t))]
    assert kinds == [
        (1.0, EventKind.JOIN, G),
        (1.0, EventKind.JOIN, "225.1.1.2"),
        (2.0, EventKind.REFRESH, G),
        (2.0, EventKind.REFRESH, "225.1.1.2"),
        (3.0, EventKind.REFRESH, G),
        (3.0, EventKind.REFRESH, "225.1.1.2"),
    ]


# ---- RFC 3376 6.4 tables ----------------------------------------------------------------

# The router state at t=10 before the record:
#   INCLUDE (A): A = {S1, S2}, both source timers at 135 (125 s left).
#   EXCLUDE (X, Y): X = {S1, S2} at 135 (125 s left), Y = {S3, S4}, group timer 130 (120 left).
# The record arrives at t=10, so GMI means 130 s left and LMQT 2 s. None is a timer of 0.
# queried: (group query?, sources of the group-and-source query), all with S clear.
TABLE = [
    # INCLUDE (A) + record (B = {S2, S3})
    ("include", IS_IN, (S2, S3), "include", {S1: 125, S2: 130, S3: 130}, None, [], "sources"),
    ("include", ALLOW, (S2, S3), "include", {S1: 125, S2: 130, S3: 130}, None, [], "sources"),
    ("include", BLOCK, (S2, S3), "include", {S1: 125, S2: 2}, None, [(False, {S2})], None),
    ("include", TO_EX, (S2, S3), "exclude", {S2: 2, S3: None}, 130, [(False, {S2})], "sources"),
    ("include", IS_EX, (S2, S3), "exclude", {S2: 125, S3: None}, 130, [], "sources"),
    (
        "include",
        TO_IN,
        (S2, S3),
        "include",
        {S1: 2, S2: 130, S3: 130},
        None,
        [(False, {S1})],
        "sources",
    ),
    # EXCLUDE (X, Y) + record (A = {S2, S3, S5})
    (
        "exclude",
        IS_IN,
        (S2, S3, S5),
        "exclude",
        {S1: 125, S2: 130, S3: 130, S4: None, S5: 130},
        120,
        [],
        "sources",
    ),
    (
        "exclude",
        ALLOW,
        (S2, S3, S5),
        "exclude",
        {S1: 125, S2: 130, S3: 130, S4: None, S5: 130},
        120,
        [],
        "sources",
    ),
    (
        "exclude",
        IS_EX,
        (S2, S3, S5),
        "exclude",
        {S2: 125, S3: None, S5: 130},
        130,
        [],
        "sources",
    ),
    (
        "exclude",
        TO_EX,
        (S2, S3, S5),
        "exclude",
        {S2: 2, S3: None, S5: 2},  # S5 took the group timer (120), then Q(G,A-Y) lowered it
        130,
        [(False, {S2, S5})],
        "sources",
    ),
    (
        "exclude",
        BLOCK,
        (S2, S3, S5),
        "exclude",
        {S1: 125, S2: 2, S3: None, S4: None, S5: 2},
        120,
        [(False, {S2, S5})],
        None,
    ),
    (
        "exclude",
        TO_IN,
        (S2, S3, S5),
        "exclude",
        {S1: 2, S2: 130, S3: 130, S4: None, S5: 130},
        2,  # Send Q(G) lowered the group timer to LMQT
        [(True, set()), (False, {S1})],
        "sources",
    ),
]


def _prepare(mode: str) -> IgmpInterface:
    m = started(3)
    if mode == "include":
        m.packet_received(v3(rec(IS_IN, G, S1, S2)), 5.0)
    else:
        m.packet_received(v3(rec(IS_EX, G, S3, S4)), 0.0)
        m.packet_received(v3(rec(ALLOW, G, S1, S2)), 5.0)
    return m


@pytest.mark.parametrize(
    ("before", "rtype", "sources", "mode", "timers", "group_timer", "queried", "event"),
    TABLE,
    ids=[f"{row[0]}-{row[1].name}" for row in TABLE],
)
def test_rfc3376_tables(
    before: str,
    rtype: RecordType,
    sources: tuple[str, ...],
    mode: str,
    timers: dict[str, float | None],
    group_timer: float | None,
    queried: list[tuple[bool, set[str]]],
    event: str | None,
) -> None:
    m = _prepare(before)
    out = m.packet_received(v3(rec(rtype, G, *sources)), 10.0)
    assert group_state(m, 10.0) == {"mode": mode, "sources": timers, "group_timer": group_timer}
    got = [(not q.sources, set(q.sources)) for _, q in queries(out)]
    assert got == queried
    for dst, q in queries(out):
        assert (dst, q.group, q.s_flag, q.max_response, q.version) == (G, G, False, 1.0, 3)
    assert [str(k) for k, *_ in events(out)] == ([event] if event else [])


def test_records_for_a_group_without_state() -> None:
    m = started(3)
    for rtype in (IS_IN, TO_IN, BLOCK, ALLOW):
        assert m.packet_received(v3(rec(rtype, G)), 1.0) == []  # INCLUDE({}): no state
    assert m.snapshot(1.0).groups == ()
    assert events(m.packet_received(v3(rec(ALLOW, G, S1)), 2.0)) == [
        (EventKind.JOIN, G, "include", frozenset({S1}))
    ]
    assert events(m.packet_received(v3(rec(TO_EX, "225.1.1.2", S2)), 2.0)) == [
        (EventKind.JOIN, "225.1.1.2", "exclude", frozenset({S2}))
    ]


def test_several_records_for_one_group_give_one_event_and_one_query_round() -> None:
    m = started(3)
    m.packet_received(v3(rec(IS_IN, G, S1, S2)), 1.0)
    out = m.packet_received(v3(rec(ALLOW, G, S3), rec(BLOCK, G, S1), rec(BLOCK, G, S2)), 5.0)
    assert events(out) == [(EventKind.SOURCES, G, "include", frozenset({S1, S2, S3}))]
    ((_, q),) = queries(out)
    assert set(q.sources) == {S1, S2}
    assert m.snapshot(5.0).groups[0].sources[0].expires == 2.0


# ---- group-and-source-specific queries, RFC 3376 6.6.3.2 ---------------------------------


def test_source_queries_are_retransmitted_with_the_s_flag_split() -> None:
    m = _prepare("include")
    ((_, q),) = queries(m.packet_received(v3(rec(BLOCK, G, S1, S2)), 10.0))
    assert (set(q.sources), q.s_flag) == ({S1, S2}, False)
    m.packet_received(v3(rec(ALLOW, G, S1), src=HOST2), 10.5)  # S1 still wanted
    sent = queries(m.tick(11.0))
    assert [(q.sources, q.s_flag) for _, q in sent] == [((S1,), True), ((S2,), False)]
    timed = advance(m, 20.0)
    assert [(t, e.kind, e.sources) for t, e in timed if isinstance(e, GroupEvent)] == [
        (12.0, EventKind.SOURCES, frozenset({S1}))
    ]
    assert query_times(timed) == [15.0]  # only the next startup general query
    snap = m.snapshot(20.0)
    assert snap.counters.source_queries_sent == 3


def test_large_source_queries_are_split_to_fit_a_frame() -> None:
    m = started(3)
    many = tuple(f"10.2.{i // 256}.{i % 256}" for i in range(400))
    m.packet_received(v3(rec(IS_IN, G, *many)), 1.0)
    sent = queries(m.packet_received(v3(rec(BLOCK, G, *many)), 2.0))
    assert [len(q.sources) for _, q in sent] == [MAX_QUERY_SOURCES, 400 - MAX_QUERY_SOURCES]
    assert all(q.s_flag is False and dst == G for dst, q in sent)


# ---- timers switching filter mode, RFC 3376 6.3 and 6.5 ----------------------------------


def test_group_timer_expiry_switches_exclude_to_include_with_the_requested_sources() -> None:
    m = _prepare("exclude")  # X = {S1, S2} until 135, Y = {S3, S4}, group timer 130
    timed = advance(m, 131.0)
    evs = [(t, o.kind, o.mode, o.sources) for t, o in timed if isinstance(o, GroupEvent)]
    assert evs == [(130.0, EventKind.SOURCES, "include", frozenset({S1, S2}))]
    assert group_state(m, 131.0) == {
        "mode": "include",
        "sources": {S1: 4, S2: 4},
        "group_timer": None,
    }
    timed = advance(m, 140.0)
    evs = [(t, o.kind, o.sources) for t, o in timed if isinstance(o, GroupEvent)]
    assert evs == [  # both source timers run out at 135, one after the other
        (135.0, EventKind.SOURCES, frozenset({S2})),
        (135.0, EventKind.LEAVE, frozenset()),
    ]


def test_exclude_source_timer_expiry_moves_the_source_to_the_exclude_list() -> None:
    m = started(3)
    m.packet_received(v3(rec(IS_EX, G, S3)), 0.0)
    m.packet_received(v3(rec(ALLOW, G, S1)), 5.0)  # X = {S1} until 135
    m.packet_received(v3(rec(IS_EX, G, S1, S3)), 100.0)  # group timer to 230, S1 stays in X
    timed = advance(m, 136.0)
    evs = [(t, o.kind, o.mode, o.sources) for t, o in timed if isinstance(o, GroupEvent)]
    assert evs == [(135.0, EventKind.SOURCES, "exclude", frozenset({S1, S3}))]


def test_include_group_goes_when_its_last_source_expires() -> None:
    m = started(3)
    m.packet_received(v3(rec(IS_IN, G, S1)), 1.0)
    timed = advance(m, 200.0)
    assert [(t, o.kind) for t, o in timed if isinstance(o, GroupEvent)] == [
        (131.0, EventKind.LEAVE)
    ]


# ---- older version compatibility, RFC 3376 7.3.2 ----------------------------------------


def test_v2_host_puts_the_group_in_v2_compatibility_mode() -> None:
    m = started(3)
    m.packet_received(v3(rec(IS_IN, G, S1)), 1.0)
    out = m.packet_received(v2_report(), 2.0)  # a v2 host: IS_EX({}), INCLUDE -> EXCLUDE
    assert events(out) == [(EventKind.SOURCES, G, "exclude", frozenset())]
    assert m.snapshot(2.0).groups[0].compat == 2
    assert m.packet_received(v3(rec(BLOCK, G, S1)), 3.0) == []  # BLOCK ignored
    m.packet_received(v3(rec(TO_EX, G, S2)), 4.0)  # TO_EX(S) taken as TO_EX({})
    assert group_state(m, 4.0)["sources"] == {}
    sent = queries(m.packet_received(v3(rec(TO_IN, G)), 5.0))  # TO_IN({}) is a leave
    assert [(q.group, q.sources) for _, q in sent] == [(G, ())]
    timed = advance(m, 10.0)
    assert [(t, o.kind) for t, o in timed if isinstance(o, GroupEvent)] == [(7.0, EventKind.LEAVE)]
    assert m.snapshot(10.0).dropped == {"v2-compat": 1}


def test_compatibility_mode_returns_to_v3_after_the_older_host_present_interval() -> None:
    m = started(3)
    m.packet_received(v2_report(), 1.0)
    m.packet_received(v3(rec(IS_EX, G)), 100.0)  # v3 hosts keep the group alive
    assert m.snapshot(130.0).groups[0].compat == 2
    advance(m, 131.0)
    snap = m.snapshot(131.0).groups[0]
    assert (snap.compat, snap.v2_host_expires) == (3, None)
    sent = queries(m.packet_received(v3(rec(BLOCK, G, S1)), 132.0))  # BLOCK acted on again
    assert [q.sources for _, q in sent] == [(S1,)]
    assert group_state(m, 132.0)["sources"] == {S1: 2.0}


@pytest.mark.parametrize("version", [2, 3])
def test_v1_host_present_ignores_leaves(version: int) -> None:
    m = started(version)
    m.packet_received(v1_report(), 1.0)  # no Router Alert: fine for v1/v2 messages
    assert m.snapshot(1.0).groups[0].compat == 1
    assert m.packet_received(v2_leave(), 2.0) == []
    assert m.packet_received(v3(rec(TO_IN, G)), 3.0) == []
    assert m.snapshot(3.0).dropped == {"v1-compat": 2}
    assert [t for t, o in advance(m, 500.0) if isinstance(o, GroupEvent)] == [131.0]


def test_v2_router_serves_v3_hosts_as_joins_and_leaves() -> None:
    m = started(2)
    assert events(m.packet_received(v3(rec(TO_EX, G)), 1.0)) == [
        (EventKind.JOIN, G, "exclude", frozenset())
    ]
    assert events(m.packet_received(v3(rec(IS_IN, "225.1.1.2", S1)), 1.0)) == [
        (EventKind.JOIN, "225.1.1.2", "exclude", frozenset())  # sources mean nothing in v2
    ]
    assert m.packet_received(v3(rec(BLOCK, G, S1)), 2.0) == []
    assert m.packet_received(v3(rec(ALLOW, "225.1.1.3")), 2.0) == []
    sent = queries(m.packet_received(v3(rec(TO_IN, G)), 10.0))
    assert sent == [(G, Query.v2(1.0, G))]
    timed = advance(m, 13.0)
    assert [(t, o.kind, o.group) for t, o in timed if isinstance(o, GroupEvent)] == [
        (12.0, EventKind.LEAVE, G)
    ]
    snap = m.snapshot(13.0)
    assert [g.group for g in snap.groups] == ["225.1.1.2"]
    assert snap.groups[0].compat == 2
    assert snap.dropped == {"v2-mode-block": 1}


# ---- receive rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pkt", "reason"),
    [
        (v3(rec(TO_EX, G), ra=False), "no-router-alert"),
        (v3(rec(TO_EX, G), ttl=2), "bad-ttl"),
        (v3(rec(TO_EX, "10.1.1.1")), "bad-group"),
        (v3(rec(9, G)), "unknown-record-type"),
        (v2_report("10.1.1.1"), "bad-group"),
        (IpIgmp(HOST, "225.9.9.9", 1, True, V2Report(G)), "dst-mismatch"),
        (IpIgmp(HOST, "225.9.9.9", 1, True, V1Report(G)), "dst-mismatch"),
        (v2_leave("10.1.1.1"), "bad-group"),
        (query_from(HOST, Query.v2(1.0, "10.1.1.1")), "bad-group"),
    ],
)
def test_off_spec_messages_are_dropped_with_a_reason(pkt: IpIgmp, reason: str) -> None:
    m = started(3)
    assert m.packet_received(pkt, 1.0) == []
    snap = m.snapshot(1.0)
    assert snap.dropped == {reason: 1} and snap.groups == ()


def test_an_unknown_record_does_not_spoil_the_others() -> None:
    m = started(3)
    out = m.packet_received(v3(rec(9, G), rec(TO_EX, "225.1.1.2")), 1.0)
    assert [g for _, g, _, _ in events(out)] == ["225.1.1.2"]
    assert m.snapshot(1.0).dropped == {"unknown-record-type": 1}


def test_v1_and_v2_reports_without_router_alert_or_with_ttl_are_accepted() -> None:
    m = started(3)
    out = m.packet_received(IpIgmp(HOST, G, 4, False, V2Report(G)), 1.0)
    assert [k for k, *_ in events(out)] == [EventKind.JOIN]


def test_packets_while_down_are_counted() -> None:
    m = make()
    assert m.packet_received(v2_report(), 1.0) == []
    assert m.tick(5.0) == [] and m.next_deadline() is None
    m.count_drop("bad-checksum")
    assert m.snapshot(5.0).dropped == {"bad-checksum": 1, "down": 1}


# ---- non-querier ------------------------------------------------------------------------


def test_non_querier_keeps_membership_ignores_leaves_and_follows_the_queriers_queries() -> None:
    m = started(2, address=B)
    m.packet_received(query_from(A, Query.v2(10.0)), 1.0)
    assert m.state is IfState.NON_QUERIER
    assert [k for k, *_ in events(m.packet_received(v2_report(), 2.0))] == [EventKind.JOIN]
    assert m.packet_received(v2_leave(), 10.0) == []  # no query: the querier sends them
    assert m.snapshot(10.0).groups[0].expires == 122.0  # and no lowering of its own
    m.packet_received(query_from(A, Query.v2(1.0, G)), 10.0)  # the querier's Q(G)
    assert m.snapshot(10.0).groups[0].expires == 2.0  # LMQC x the query's max resp time
    m.packet_received(query_from(A, Query.v2(1.0, G)), 11.0)
    timed = advance(m, 20.0)
    assert [(t, o.kind) for t, o in timed if isinstance(o, GroupEvent)] == [(12.0, EventKind.LEAVE)]
    assert query_times(timed) == []


def test_non_querier_ignores_queries_with_the_s_flag() -> None:
    m = started(3, address=B)
    m.packet_received(query_from(A, Query.v3(10, query_interval=60)), 1.0)
    m.packet_received(v3(rec(IS_EX, G), rec(IS_IN, "225.1.1.2", S1)), 2.0)
    m.packet_received(query_from(A, Query.v3(1.0, G, s_flag=True)), 3.0)
    assert m.snapshot(3.0).groups[0].expires == 129.0
    m.packet_received(query_from(A, Query.v3(1.0, "225.1.1.2", sources=(S1,))), 3.0)
    assert group_state(m, 3.0, "225.1.1.2")["sources"] == {S1: 2.0}


def test_becoming_non_querier_stops_last_member_queries() -> None:
    m = started(2, address=B)
    m.packet_received(v2_report(), 1.0)
    assert len(queries(m.packet_received(v2_leave(), 5.0))) == 1
    m.packet_received(query_from(A, Query.v2(10.0)), 5.5)
    assert query_times(advance(m, 100.0)) == []


# ---- adopting groups from the backup peer -----------------------------------------------


def test_adopt_installs_groups_with_fresh_timers_and_queries_at_once() -> None:
    m = make(3, robustness=3)
    m.start(0.0)  # startup query 1 of 3; the next would be at 15
    entries = [
        AdoptedGroup(G, "exclude", frozenset(), HOST),
        AdoptedGroup("232.1.1.1", "include", frozenset({S1}), HOST2),
    ]
    out = m.adopt(entries, 1.0)
    assert events(out) == [
        (EventKind.JOIN, G, "exclude", frozenset()),
        (EventKind.JOIN, "232.1.1.1", "include", frozenset({S1})),
    ]
    assert [(dst, q.general) for dst, q in queries(out)] == [("224.0.0.1", True)]
    snap = m.snapshot(1.0)
    assert snap.startup_queries_left == 1  # the adopt query counted as a startup query
    assert [(g.group, g.reporter, g.expires) for g in snap.groups] == [
        (G, HOST, 190.0),
        ("232.1.1.1", HOST2, 190.0),  # GMI = 3 x 60 + 10
    ]
    assert query_times(advance(m, 100.0)) == [16.0, 76.0]  # the last startup query, then QI


def test_adopt_refreshes_known_groups_and_keeps_the_periodic_schedule() -> None:
    m = started(2)
    m.packet_received(v2_report(), 1.0)
    advance(m, 90.0)
    out = m.adopt([AdoptedGroup(G, "exclude", reporter=HOST2)], 100.0)
    assert events(out) == [(EventKind.REFRESH, G, "exclude", frozenset())]
    assert len(queries(out)) == 1
    snap = m.snapshot(100.0)
    assert [(g.group, g.reporter, g.expires, g.uptime) for g in snap.groups] == [
        (G, HOST2, 130.0, 99.0)
    ]
    assert snap.next_general_query == 35.0  # still 135: the extra query moved nothing


def test_adopt_in_v2_mode_is_a_join_and_while_down_is_ignored() -> None:
    m = make(2)
    entry = AdoptedGroup("232.1.1.1", "include", frozenset({S1}), HOST)
    assert m.adopt([entry], 0.0) == []
    m.start(0.0)
    assert events(m.adopt([entry], 1.0)) == [(EventKind.JOIN, "232.1.1.1", "exclude", frozenset())]
    assert m.adopt([AdoptedGroup(G, "include")], 2.0) == []  # INCLUDE({}) is no state


def test_adopted_group_validates() -> None:
    with pytest.raises(ValueError):
        AdoptedGroup("10.1.1.1", "exclude")
    with pytest.raises(ValueError):
        AdoptedGroup(G, "both")
    with pytest.raises(ValueError):
        AdoptedGroup(G, "include", frozenset({"1.2.3"}))


# ---- interface up and down --------------------------------------------------------------


def test_stop_forgets_every_group_with_a_leave_and_start_begins_again() -> None:
    m = started(2)
    m.packet_received(v2_report(), 1.0)
    m.packet_received(v2_report("225.1.1.2"), 1.0)
    out = m.stop(5.0)
    assert events(out) == [
        (EventKind.LEAVE, G, "include", frozenset()),
        (EventKind.LEAVE, "225.1.1.2", "include", frozenset()),
    ]
    snap = m.snapshot(5.0)
    assert (snap.state, snap.up, snap.groups, snap.querier_address) == (
        IfState.DOWN,
        False,
        (),
        None,
    )
    assert m.next_deadline() is None and m.stop(6.0) == []
    assert len(queries(m.start(10.0))) == 1
    assert m.next_deadline() == 25.0


# ---- snapshot ---------------------------------------------------------------------------


def test_snapshot_reports_groups_sources_and_timers() -> None:
    m = started(3)
    m.packet_received(v3(rec(IS_EX, "225.1.1.10", S3)), 1.0)
    m.packet_received(v3(rec(ALLOW, "225.1.1.10", S1)), 2.0)
    m.packet_received(v2_report("225.1.1.9", src=HOST2), 3.0)
    snap = m.snapshot(10.0)
    assert [g.group for g in snap.groups] == ["225.1.1.9", "225.1.1.10"]  # numeric order
    g9, g10 = snap.groups
    assert (g9.mode, g9.reporter, g9.uptime, g9.expires, g9.compat) == (
        FilterMode.EXCLUDE,
        HOST2,
        7.0,
        123.0,
        2,
    )
    assert g9.v2_host_expires == 123.0 and g9.v1_host_expires is None
    assert [(s.source, s.expires) for s in g10.sources] == [(S1, 122.0), (S3, None)]
    assert (g10.uptime, g10.expires, g10.compat) == (9.0, 121.0, 3)
    assert snap.querier and snap.querier_address == A
    assert snap.counters.v3_reports_received == 2 and snap.counters.v2_reports_received == 1


# ---- scale ------------------------------------------------------------------------------


def test_ten_thousand_groups_join_and_expire_cheaply() -> None:
    m = started(2)
    groups = [f"225.{i // 256}.{i % 256}.1" for i in range(10_000)]
    reports = [v2_report(g) for g in groups]
    began = time.perf_counter()
    joins = 0
    for i, pkt in enumerate(reports):
        joins += len(events(m.packet_received(pkt, 1.0 + i * 1e-5)))
    mid = m.snapshot(2.0)
    timed = advance(m, 200.0)
    elapsed = time.perf_counter() - began
    leaves = [t for t, o in timed if isinstance(o, GroupEvent) and o.kind is EventKind.LEAVE]
    assert joins == 10_000 and len(mid.groups) == 10_000
    assert len(leaves) == 10_000 and 131.0 <= min(leaves) <= max(leaves) < 131.1
    assert m.snapshot(200.0).groups == ()
    assert elapsed < 1.0, f"{elapsed:.3f} s"


def test_timer_heap_stays_bounded_under_constant_refreshes() -> None:
    m = started(2)
    for i in range(10_000):
        m.packet_received(v2_report(), 1.0 + i * 0.001)
    assert len(m._timers._heap) < 200
