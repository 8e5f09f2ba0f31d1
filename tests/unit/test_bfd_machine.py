"""BFD session machines under virtual time: two sessions wired back to back through the codec
by a tiny event harness, and single sessions driven by scripted peer packets."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterable
from dataclasses import replace

import pytest

from daemon.bfd.codec import BfdState, ControlPacket, Diag, decode
from daemon.bfd.machine import (
    SLOW_TX_US,
    TRANSITIONS,
    BfdSession,
    IllegalTransition,
    Output,
    Send,
    SessionConfig,
    StateChanged,
    check_transition,
)

LATENCY = 1 / 1024  # one-way delay (about 1 ms); a power of two keeps sums of times exact
DISC_A, DISC_B = 8191, 8192
EPS = 1e-9

Down, Init, Up, AdminDown = BfdState.DOWN, BfdState.INIT, BfdState.UP, BfdState.ADMIN_DOWN


def make_session(
    name: str = "atob", local: int = DISC_A, *, seed: int = 1, **kw: object
) -> BfdSession:
    """A session with the VRP defaults used in the lab: 10 ms x 3, multihop."""
    params: dict[str, object] = dict(multihop=True) | kw
    config = SessionConfig(name=name, local_disc=local, **params)  # type: ignore[arg-type]
    return BfdSession(config, random.Random(seed))


def pair(**kw_a: object) -> tuple[BfdSession, BfdSession]:
    a = make_session("atob", DISC_A, seed=1, **kw_a)
    b = make_session("btoa", DISC_B, seed=2)
    return a, b


class Wire:
    """Delivers each Send to the other session LATENCY later; advances time event by event."""

    def __init__(self, a: BfdSession, b: BfdSession, latency: float = LATENCY) -> None:
        self.sessions = {"A": a, "B": b}
        self.peer = {"A": "B", "B": "A"}
        self.latency = latency
        self.cut = False  # drop everything, in flight or not (a silent link failure)
        self.inflight: list[tuple[float, int, str, bytes]] = []
        self.log: list[tuple[float, str, Output]] = []
        self.delivered: list[tuple[float, str, ControlPacket]] = []
        self.started: set[str] = set()
        self.now = 0.0
        self._seq = itertools.count()

    def start(self, *names: str) -> None:
        for name in names or ("A", "B"):
            self.started.add(name)
            self.emit(name, self.sessions[name].tick(self.now))

    def emit(self, name: str, outs: Iterable[Output]) -> None:
        for out in outs:
            self.log.append((self.now, name, out))
            if isinstance(out, Send) and not self.cut:
                due = self.now + self.latency
                heapq.heappush(self.inflight, (due, next(self._seq), self.peer[name], out.packet))

    def run_until(self, end: float) -> None:
        while True:
            times = [(t, 0, n) for n in self.started if (t := self.sessions[n].next_deadline())]
            if self.inflight:
                times.append((self.inflight[0][0], -1, ""))
            if not times or min(times)[0] > end:
                self.now = end
                return
            t, kind, name = min(times)
            self.now = t
            if kind == -1:
                _, _, dst, data = heapq.heappop(self.inflight)
                if self.cut or dst not in self.started:
                    continue
                pkt = decode(data)
                self.delivered.append((t, dst, pkt))
                self.emit(dst, self.sessions[dst].packet_received(pkt, t, ttl=255))
            else:
                self.emit(name, self.sessions[name].tick(t))

    def sent(self, name: str, since: float = 0.0) -> list[tuple[float, ControlPacket]]:
        return [
            (t, decode(o.packet))
            for t, n, o in self.log
            if n == name and isinstance(o, Send) and t >= since
        ]

    def changes(self, name: str) -> list[StateChanged]:
        return [o for _, n, o in self.log if n == name and isinstance(o, StateChanged)]

    def path(self, name: str) -> list[BfdState]:
        changes = self.changes(name)
        return [changes[0].old, *(c.new for c in changes)] if changes else []


def up_pair(**kw_a: object) -> Wire:
    wire = Wire(*pair(**kw_a))
    wire.start()
    wire.run_until(0.5)
    assert wire.sessions["A"].state is Up and wire.sessions["B"].state is Up
    return wire


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def peer_packet(state: BfdState = Down, **kw: object) -> ControlPacket:
    """What a peer with discriminator DISC_B and 10 ms x 3 timers would send us."""
    fields: dict[str, object] = dict(
        state=state,
        detect_mult=3,
        my_disc=DISC_B,
        your_disc=0 if state in (Down, AdminDown) else DISC_A,
        desired_min_tx_us=10_000 if state is Up else SLOW_TX_US,
        required_min_rx_us=10_000,
    )
    return ControlPacket(**(fields | kw))  # type: ignore[arg-type]


def sends(outs: Iterable[Output]) -> list[ControlPacket]:
    return [decode(o.packet) for o in outs if isinstance(o, Send)]


def drive(
    session: BfdSession, script: list[tuple[float, ControlPacket]], until: float
) -> list[tuple[float, Output]]:
    """Feed scripted packets at their times and tick at every deadline up to `until`."""
    log: list[tuple[float, Output]] = []
    pending = sorted(script, key=lambda item: item[0])
    while True:
        deadline = session.next_deadline()
        t_pkt = pending[0][0] if pending else None
        candidates = [t for t in (deadline, t_pkt) if t is not None and t <= until]
        if not candidates:
            return log
        now = min(candidates)
        if t_pkt is not None and t_pkt == now:
            log += [(now, o) for o in session.packet_received(pending.pop(0)[1], now)]
        else:
            log += [(now, o) for o in session.tick(now)]


def bring_up_alone(session: BfdSession) -> float:
    """Take `session` to Up against a scripted peer and finish its Poll; return the time."""
    session.tick(0.0)
    session.packet_received(peer_packet(Down), 0.010)
    session.packet_received(peer_packet(Init, desired_min_tx_us=SLOW_TX_US), 0.020)
    assert session.state is Up
    session.packet_received(peer_packet(Up, final=True), 0.021)
    assert not session.snapshot().polling
    return 0.021


# ---- bring-up ---------------------------------------------------------------------------


def test_bring_up_down_init_up_on_both_sides() -> None:
    wire = Wire(*pair())
    wire.start()
    wire.run_until(0.5)
    for name, peer_disc in (("A", DISC_B), ("B", DISC_A)):
        assert wire.path(name) == [Down, Init, Up]
        init, up = wire.changes(name)
        assert (init.at, up.at) == (LATENCY, 2 * LATENCY)  # each step at once, no timer
        assert init.diag is Diag.NONE and up.diag is Diag.NONE
        first, second = wire.sent(name)[:2]
        assert first[0] == 0.0 and first[1].state is Down and first[1].your_disc == 0
        assert second[0] == LATENCY and second[1].state is Init
        assert second[1].your_disc == peer_disc
        snap = wire.sessions[name].snapshot()
        assert snap.remote_disc == peer_disc and snap.remote_state is Up
        assert snap.up_transitions == 1 and snap.down_transitions == 0
        assert snap.last_change == 2 * LATENCY


def test_late_peer_goes_straight_from_down_to_up() -> None:
    wire = Wire(*pair())
    wire.start("A")
    wire.run_until(0.3)
    wire.start("B")
    wire.run_until(1.0)
    assert wire.path("A") == [Down, Init, Up]
    assert wire.path("B") == [Down, Up]  # it heard A's Init first (6.2)
    assert wire.changes("B")[0].at == pytest.approx(0.3 + 2 * LATENCY)


# ---- intervals and the Poll Sequence ----------------------------------------------------


def test_one_second_while_not_up_then_configured_after_poll_and_final() -> None:
    wire = Wire(*pair())
    wire.start("A")
    wire.run_until(5.0)  # A alone: Down, at the slow rate
    alone = wire.sent("A")
    assert len(alone) >= 5
    assert all(0.75 - EPS <= g <= 1.0 + EPS for g in gaps([t for t, _ in alone]))
    for _, pkt in alone:
        assert (pkt.state, pkt.desired_min_tx_us) == (Down, SLOW_TX_US)
        assert pkt.required_min_rx_us == 10_000
        assert not pkt.poll
    snap = wire.sessions["A"].snapshot()
    assert snap.tx_interval_us == SLOW_TX_US and snap.desired_min_tx_us == SLOW_TX_US

    wire.start("B")
    wire.run_until(6.0)
    for name, other in (("A", "B"), ("B", "A")):
        up_at = wire.changes(name)[-1].at
        polls = [(t, p) for t, p in wire.sent(name, since=up_at) if p.poll]
        assert polls and polls[0][1].state is Up and polls[0][1].desired_min_tx_us == 10_000
        assert polls[0][0] - up_at <= 0.010  # the faster rate applied at once (a decrease)
        # the peer answered the Poll with a Final at once, and later packets carry no P
        t_poll = polls[0][0]
        finals = [(t, p) for t, p in wire.sent(other, since=t_poll) if p.final]
        assert finals[0][0] == t_poll + LATENCY and not finals[0][1].poll
        settled = [(t, p) for t, p in wire.sent(name, since=t_poll + 2 * LATENCY) if not p.final]
        assert len(settled) > 50 and not any(p.poll for _, p in settled)
        assert all(0.0075 - EPS <= g <= 0.010 + EPS for g in gaps([t for t, _ in settled]))
    for name in ("A", "B"):
        snap = wire.sessions[name].snapshot()
        assert snap.tx_interval_us == 10_000 and snap.rx_interval_us == 10_000
        assert snap.detect_time_us == 30_000 and not snap.polling
        assert snap.configured_min_tx_ms == 10 and snap.remote_detect_mult == 3


def test_increasing_tx_waits_for_the_final_6_8_3() -> None:
    wire = up_pair()
    a = wire.sessions["A"]
    changed_at = wire.now
    wire.emit("A", a.set_parameters(wire.now, desired_min_tx_ms=100))
    assert not any(t == changed_at for t, _ in wire.sent("A", since=changed_at))  # no extra
    snap = a.snapshot()
    assert snap.desired_min_tx_us == 100_000 and snap.polling
    assert snap.tx_interval_us == 10_000  # still the old rate until the peer has it
    wire.run_until(changed_at + 0.5)
    polls = [(t, p) for t, p in wire.sent("A", since=changed_at) if p.poll]
    assert polls[0][1].desired_min_tx_us == 100_000
    final_at = next(t for t, n, p in wire.delivered if n == "A" and p.final and t > changed_at)
    before = [t for t, _ in wire.sent("A", since=changed_at) if t < final_at]
    assert all(g <= 0.010 + EPS for g in gaps(before))
    later = [t for t, _ in wire.sent("A", since=final_at + 0.2)]
    assert later and all(0.075 - EPS <= g <= 0.100 + EPS for g in gaps(later))
    assert a.snapshot().tx_interval_us == 100_000 and not a.snapshot().polling
    assert wire.sessions["B"].snapshot().detect_time_us == 300_000
    assert a.state is Up and wire.sessions["B"].state is Up


def test_decreasing_rx_waits_for_the_final_6_8_3() -> None:
    a = make_session(required_min_rx_ms=20)
    b = make_session("btoa", DISC_B, seed=2, desired_min_tx_ms=5)
    wire = Wire(a, b)
    wire.start()
    wire.run_until(0.5)
    assert a.snapshot().detect_time_us == 60_000  # 3 x max(20 ms, 5 ms)
    assert b.snapshot().tx_interval_us == 20_000
    wire.emit("A", a.set_parameters(wire.now, required_min_rx_ms=5))
    snap = a.snapshot()
    assert snap.required_min_rx_us == 5_000 and snap.polling
    assert snap.detect_time_us == 60_000  # the old value until the Final
    wire.run_until(wire.now + 0.5)
    assert a.snapshot().detect_time_us == 15_000 and not a.snapshot().polling
    assert b.snapshot().tx_interval_us == 5_000
    assert a.state is Up and b.state is Up


def test_a_poll_is_answered_with_a_final_at_once_outside_the_schedule() -> None:
    a = make_session()
    t0 = bring_up_alone(a)
    before = a.next_deadline()
    assert before is not None
    now = t0 + 0.002
    outs = a.packet_received(peer_packet(Up, poll=True), now)
    (final,) = sends(outs)
    assert final.final and not final.poll and final.state is Up
    # the periodic transmit deadline is where it was; only detection moved
    deadlines = a._deadlines  # the one table of timers
    assert deadlines["transmit"] == before
    assert deadlines["detect"] == pytest.approx(now + 0.030)


def test_a_lower_required_rx_from_the_peer_pulls_the_next_packet_in() -> None:
    a = make_session()
    t0 = bring_up_alone(a)
    a.packet_received(peer_packet(Up, required_min_rx_us=500_000), t0 + 0.001)
    slow_rx = peer_packet(Up, required_min_rx_us=500_000)
    log = drive(a, [(t0 + 0.002 + i * 0.010, slow_rx) for i in range(100)], t0 + 1.0)
    times = [t for t, o in log if isinstance(o, Send)]
    assert a.snapshot().tx_interval_us == 500_000
    assert all(0.375 - EPS <= g <= 0.5 + EPS for g in gaps(times[1:]))
    now = times[-1] + 0.050  # 50 ms after our last packet the peer asks for 10 ms
    filler = [(t0 + 1.002 + i * 0.010, slow_rx) for i in range(10)]
    quiet = drive(a, [(t, p) for t, p in filler if t < now], now - EPS)
    assert not [o for _, o in quiet if isinstance(o, Send)]
    outs = a.packet_received(peer_packet(Up), now)
    assert sends(outs), "the new interval has already passed: send at once (6.8.3)"
    assert a.state is Up and a.snapshot().tx_interval_us == 10_000
    nxt = a.next_deadline()
    assert nxt is not None and nxt <= now + 0.010 + EPS


def test_no_periodic_packets_when_the_peer_wants_none() -> None:
    a = make_session()
    t0 = bring_up_alone(a)
    script = [(t0 + i * 0.010, peer_packet(Up, required_min_rx_us=0)) for i in range(1, 50)]
    log = drive(a, script, t0 + 0.5)
    assert not [o for t, o in log if isinstance(o, Send) and t > t0 + 0.011]
    assert a.state is Up


def test_a_peer_in_demand_mode_stops_our_periodic_packets_but_not_a_poll() -> None:
    a = make_session()
    t0 = bring_up_alone(a)
    script = [(t0 + i * 0.010, peer_packet(Up, demand=True)) for i in range(1, 20)]
    log = drive(a, script, t0 + 0.2)
    assert not [o for t, o in log if isinstance(o, Send) and t > t0 + 0.011]
    a.set_parameters(t0 + 0.2, desired_min_tx_ms=20)
    log = drive(a, [], t0 + 0.25)
    polls = [p for p in sends(o for _, o in log) if p.poll]
    assert polls, "a Poll Sequence is sent periodically even in Demand mode (6.8.7)"


# ---- detection --------------------------------------------------------------------------


def test_detection_time_is_exact_three_times_ten_ms_after_the_last_packet() -> None:
    wire = up_pair()
    wire.run_until(1.0)
    wire.cut = True
    wire.run_until(2.0)
    for name in ("A", "B"):
        last_rx = max(t for t, n, _ in wire.delivered if n == name)
        down = wire.changes(name)[-1]
        assert (down.old, down.new) == (Up, Down)
        assert down.diag is Diag.CONTROL_DETECTION_TIME_EXPIRED
        assert down.at == pytest.approx(last_rx + 0.030, abs=1e-9)
        snap = wire.sessions[name].snapshot()
        assert snap.local_diag is Diag.CONTROL_DETECTION_TIME_EXPIRED
        assert snap.remote_disc == 0 and snap.remote_state is Down  # forgotten (6.8.1)
        assert snap.down_transitions == 1
        after = wire.sent(name, since=down.at)
        assert after[0][0] == down.at and after[0][1].state is Down  # said at once
        assert after[0][1].diag == Diag.CONTROL_DETECTION_TIME_EXPIRED
        assert after[0][1].desired_min_tx_us == SLOW_TX_US and after[0][1].your_disc == 0
        assert all(0.75 - EPS <= g <= 1.0 + EPS for g in gaps([t for t, _ in after[1:]]))


def test_the_link_coming_back_brings_the_session_up_again() -> None:
    wire = up_pair()
    wire.cut = True
    wire.run_until(2.0)
    assert wire.sessions["A"].state is Down
    wire.cut = False
    wire.run_until(5.0)
    assert wire.sessions["A"].state is Up and wire.sessions["B"].state is Up
    assert wire.sessions["A"].snapshot().up_transitions == 2


def test_detection_expiry_in_init_goes_down_and_forgets_the_peer() -> None:
    a = make_session()
    a.tick(0.0)
    outs = a.packet_received(peer_packet(Down), 0.5)
    assert a.state is Init and sends(outs)[0].your_disc == DISC_B
    assert a.snapshot().detect_time_us == 3_000_000  # 3 x the peer's 1 s while not Up
    log = drive(a, [], 4.0)
    (down,) = [o for _, o in log if isinstance(o, StateChanged)]
    assert (down.new, down.at) == (Down, pytest.approx(3.5))
    assert down.diag is Diag.CONTROL_DETECTION_TIME_EXPIRED
    assert all(p.your_disc == 0 for p in sends(o for t, o in log if t >= 3.5))


def test_transmit_schedule_is_not_rearmed_by_receives() -> None:
    """Two identical sessions; one hears the peer ten times as often: same transmit times."""
    quiet, chatty = make_session(seed=7), make_session(seed=7)
    t0 = bring_up_alone(quiet)
    assert bring_up_alone(chatty) == t0
    slow = [(t0 + 0.0013 + i * 0.010, peer_packet(Up)) for i in range(100)]
    fast = [(t0 + 0.0007 + i * 0.001, peer_packet(Up)) for i in range(1000)]
    quiet_tx = [t for t, o in drive(quiet, slow, t0 + 1.0) if isinstance(o, Send)]
    chatty_tx = [t for t, o in drive(chatty, fast, t0 + 1.0) if isinstance(o, Send)]
    assert len(quiet_tx) > 90
    assert quiet_tx == chatty_tx
    assert quiet.state is Up and chatty.state is Up


# ---- jitter -----------------------------------------------------------------------------


@pytest.mark.parametrize(("mult", "low", "high"), [(3, 0.75, 1.0), (1, 0.75, 0.90)])
def test_jitter_bounds_over_many_transmissions(mult: int, low: float, high: float) -> None:
    wire = up_pair(detect_mult=mult)
    wire.run_until(20.0)
    times = [t for t, _ in wire.sent("A", since=0.5)]
    g = gaps(times)
    assert len(g) > 1500
    assert all(0.010 * low - EPS <= x <= 0.010 * high + EPS for x in g)
    # really random over the whole range, not a constant inside it
    assert min(g) < 0.010 * (low + 0.01) and max(g) > 0.010 * (high - 0.01)
    assert sum(g) / len(g) == pytest.approx(0.010 * (low + high) / 2, rel=0.02)
    assert wire.sessions["B"].state is Up and len(wire.changes("B")) == 2


# ---- administrative control -------------------------------------------------------------


def test_admin_down_is_a_goodbye_and_admin_up_comes_back() -> None:
    wire = up_pair()
    a, b = wire.sessions["A"], wire.sessions["B"]
    t = wire.now
    outs = a.admin_down(t)
    wire.emit("A", outs)
    change = next(o for o in outs if isinstance(o, StateChanged))
    assert (change.old, change.new, change.diag) == (Up, AdminDown, Diag.ADMIN_DOWN)
    (goodbye,) = sends(outs)
    assert (goodbye.state, goodbye.diag) == (AdminDown, Diag.ADMIN_DOWN)
    wire.run_until(t + 5.0)
    down = wire.changes("B")[-1]
    assert (down.old, down.new) == (Up, Down)
    assert down.at == t + LATENCY  # at once, not after the detection time
    assert down.diag is Diag.NEIGHBOR_SIGNALED_DOWN
    assert down.remote_diag is Diag.ADMIN_DOWN
    assert b.state is Down and a.state is AdminDown  # and they stay so
    assert len(wire.changes("B")) == 3
    later = wire.sent("A", since=t + 0.1)
    assert later and all(p.state is AdminDown for _, p in later)
    assert all(g <= 1.0 + EPS for g in gaps([x for x, _ in later]))
    assert a.snapshot().down_transitions == 1

    assert a.admin_down(wire.now) == []  # already down: nothing to say
    t2 = wire.now
    wire.emit("A", a.admin_up(t2))
    wire.run_until(t2 + 0.5)
    assert a.state is Up and b.state is Up
    assert wire.path("A")[-3:] == [AdminDown, Down, Up]
    assert wire.changes("A")[-2].diag is Diag.NONE
    assert a.snapshot().up_transitions == 2


def test_admin_down_session_discards_packets() -> None:
    a = make_session()
    bring_up_alone(a)
    a.admin_down(0.1)
    outs = a.packet_received(peer_packet(Down), 0.2)
    assert a.state is AdminDown and not [o for o in outs if isinstance(o, StateChanged)]
    assert a.admin_up(0.3)
    assert a.state is Down
    assert a.admin_up(0.4) == []


# ---- reception checks -------------------------------------------------------------------


def test_wrong_your_discriminator_is_dropped() -> None:
    a = make_session()
    a.tick(0.0)
    outs = a.packet_received(peer_packet(Init, your_disc=4242), 0.1)
    assert outs == [] and a.state is Down
    snap = a.snapshot()
    assert snap.dropped == {"bad-your-disc": 1}
    assert snap.packets_received == 0 and snap.remote_disc == 0


def test_static_remote_discriminator_mismatch_is_dropped() -> None:
    a = make_session(remote_disc=DISC_B)
    (first,) = sends(a.tick(0.0))
    assert first.your_disc == DISC_B  # known from configuration, sent from the start
    assert a.packet_received(peer_packet(Down, my_disc=9999), 0.1) == []
    assert a.snapshot().dropped == {"remote-disc-mismatch": 1}
    a.packet_received(peer_packet(Down), 0.2)
    assert a.state is Init
    a.tick(10.0)  # detection time runs out: a static discriminator is not forgotten
    assert a.state is Down and a.snapshot().remote_disc == DISC_B


def test_single_hop_needs_ttl_255_and_multihop_does_not_check() -> None:
    one = make_session(multihop=False)
    one.tick(0.0)
    one.packet_received(peer_packet(Down), 0.1, ttl=254)
    one.packet_received(peer_packet(Down), 0.2)
    assert one.state is Down
    assert one.snapshot().dropped == {"bad-ttl": 2}
    one.packet_received(peer_packet(Down), 0.3, ttl=255)
    assert one.state is Init
    multi = make_session(multihop=True)
    multi.tick(0.0)
    multi.packet_received(peer_packet(Down), 0.1, ttl=3)
    assert multi.state is Init


def test_neighbor_signaled_down_from_up_and_init() -> None:
    a = make_session()
    t0 = bring_up_alone(a)
    outs = a.packet_received(peer_packet(Down), t0 + 0.001)
    (change,) = [o for o in outs if isinstance(o, StateChanged)]
    assert (change.new, change.diag) == (Down, Diag.NEIGHBOR_SIGNALED_DOWN)
    b = make_session()
    b.tick(0.0)
    b.packet_received(peer_packet(Down), 0.1)
    assert b.state is Init
    b.packet_received(peer_packet(Down), 0.2)  # Down while Init: stay
    assert b.state is Init
    outs = b.packet_received(peer_packet(AdminDown, diag=Diag.ADMIN_DOWN), 0.3)
    assert b.state is Down and b.snapshot().local_diag is Diag.NEIGHBOR_SIGNALED_DOWN
    assert b.packet_received(peer_packet(AdminDown), 0.4) == []  # Down stays Down


def test_counters_and_drops_in_the_snapshot() -> None:
    a = make_session()
    outs = a.tick(0.0)
    a.count_drop("short")
    a.count_drop("short")
    a.count_tx_error()
    a.packet_received(peer_packet(Down), 0.1)
    snap = a.snapshot()
    assert snap.packets_sent == 2 and len(sends(outs)) == 1
    assert snap.packets_received == 1
    assert snap.dropped == {"short": 2} and snap.tx_errors == 1
    assert snap.name == "atob" and snap.multihop


# ---- the state diagram ------------------------------------------------------------------


def test_transition_table_is_rfc_5880_figure_and_enforced() -> None:
    rfc_figure = {
        AdminDown: {Down},
        Down: {AdminDown, Init, Up},
        Init: {AdminDown, Down, Up},
        Up: {AdminDown, Down},
    }
    assert rfc_figure == TRANSITIONS
    for old, new in itertools.product(BfdState, BfdState):
        if new in TRANSITIONS[old]:
            assert check_transition(old, new) is new
        else:
            with pytest.raises(IllegalTransition):
                check_transition(old, new)


def test_the_machine_refuses_an_illegal_transition() -> None:
    a = make_session()
    bring_up_alone(a)
    with pytest.raises(IllegalTransition, match="UP -> INIT"):
        a._set_state(Init, Diag.NONE, 1.0)


def test_config_is_validated() -> None:
    good = SessionConfig(name="s", local_disc=1, multihop=True)
    for bad in (
        dict(local_disc=0),
        dict(local_disc=1 << 32),
        dict(remote_disc=0),
        dict(desired_min_tx_ms=0),
        dict(required_min_rx_ms=0),
        dict(detect_mult=0),
        dict(detect_mult=256),
    ):
        with pytest.raises(ValueError):
            replace(good, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        make_session().set_parameters(0.0, detect_mult=0)
