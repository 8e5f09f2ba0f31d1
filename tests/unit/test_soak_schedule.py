"""The soak's failure schedules and the outage each allows (lab/schedule.py): pure, no lab."""

from __future__ import annotations

import itertools
import math

import pytest

from lab.schedule import (
    AGGREGATE_WAIT,
    ETRUNK_FAIL_TIME,
    MAX_SPACING,
    MIN_SPACING,
    PARTNER_TIMEOUT,
    RELEARN,
    SLACK,
    LabState,
    Timeline,
    final_state,
    generate,
)


def test_a_seed_replays_the_same_schedule() -> None:
    assert generate(7, 200) == generate(7, 200)
    assert generate(7, 200) != generate(8, 200)


def test_every_event_is_possible_when_drawn_and_spacing_is_bounded() -> None:
    events = generate(11, 2000)
    state, last = LabState(), 0.0
    for ev in events:
        assert (ev.kind, ev.target) in state.possible()
        assert MIN_SPACING - 1e-3 <= ev.at - last <= MAX_SPACING + 1e-3
        state, last = state.apply(ev.kind, ev.target), ev.at
    assert state == final_state(events)
    kinds = {ev.kind for ev in events}
    assert kinds == {"pull", "restore", "kill", "stop", "start", "silence", "heal"}
    short = sum(1 for a, b in itertools.pairwise(events) if b.at - a.at < 0.5)
    assert short > len(events) // 4  # events inside each other's waits and detection times


def test_repairs_bring_the_lab_back() -> None:
    state = LabState(down=frozenset({"AC", "AB"}), stopped=frozenset({"B"}),
                     silenced=frozenset({"A"}))
    for kind, target in state.repairs():
        state = state.apply(kind, target)
    assert state == LabState()


def timeline(*events: tuple[float, str, str]) -> Timeline:
    tl = Timeline(0.0)
    for at, kind, target in events:
        tl.add(at, kind, target)
    return tl


def test_a_pull_with_the_other_port_standing_by_allows_the_slack() -> None:
    tl = timeline((10.0, "pull", "AC"))
    end, why = tl.allowed_end(10.0, 10.03)
    assert end == pytest.approx(10.0 + SLACK) and "DeviceB" in why


def test_the_remaining_aggregate_wait_is_allowed() -> None:
    tl = timeline((5.0, "pull", "BC"), (9.6, "restore", "BC"), (10.0, "pull", "AC"))
    end, why = tl.allowed_end(10.0, 11.0)
    assert end == pytest.approx(9.6 + AGGREGATE_WAIT + SLACK)
    assert "remaining aggregate wait 1.600" in why


def test_a_silence_allows_the_partner_timeout() -> None:
    tl = timeline((10.0, "silence", "A"))
    end, why = tl.allowed_end(10.0, 11.0)
    assert end == pytest.approx(10.0 + PARTNER_TIMEOUT + SLACK) and "silent" in why


def test_no_ready_path_allows_everything_until_one_is() -> None:
    tl = timeline((10.0, "pull", "AC"), (10.5, "pull", "BC"), (20.0, "restore", "BC"))
    assert tl.allowed_end(10.5, 15.0)[0] == math.inf  # still none when the gap ended
    end, _ = tl.allowed_end(10.5, 22.0)
    assert end == pytest.approx(20.0 + AGGREGATE_WAIT + SLACK)


def test_upstream_through_the_peer_counts_and_an_isolated_router_does_not() -> None:
    tl = timeline((10.0, "pull", "AD"))  # A reaches the RP through B
    assert tl.ready_since("A", 11.0) == 0.0
    tl.add(12.0, "pull", "AB")  # now A has no way to the RP: only B is ready
    assert tl.ready_since("A", 13.0) is None
    assert tl.ready_since("B", 13.0) == 0.0


def test_a_started_router_gets_the_groups_from_its_peer_or_relearns_them() -> None:
    tl = timeline((10.0, "kill", "A"), (20.0, "start", "A"))
    assert tl.ready_since("A", 20.5) is None  # the batch is on its way
    assert tl.ready_since("A", 22.0) is not None
    # both gone: A starts alone, waits out E-Trunk Init, then relearns from the hosts
    both = timeline((10.0, "kill", "A"), (11.0, "kill", "B"), (20.0, "start", "A"))
    ready = 20.0 + ETRUNK_FAIL_TIME + RELEARN
    assert both.ready_since("A", ready - 0.1) is None
    assert both.ready_since("A", ready + 0.1) is not None


def test_a_burst_of_events_allows_lacps_transmit_limit() -> None:
    tl = timeline((9.3, "restore", "AC"), (9.9, "restore", "BD"), (10.0, "pull", "BC"))
    end, why = tl.allowed_end(10.0, 10.5)
    assert end == pytest.approx(9.3 + AGGREGATE_WAIT + 1.0 + SLACK) and "transmit limit" in why


def test_the_unavoidable_part_of_a_gap() -> None:
    tl = timeline((10.0, "pull", "AC"), (10.5, "pull", "BC"), (12.5, "restore", "BC"))
    assert tl.unready(10.0, 15.0) == pytest.approx(2.0)  # no router ready 10.5 - 12.5
    assert tl.unready(10.0, 10.4) == 0.0


def test_a_failure_right_after_a_revert_allows_lacps_transmit_limit() -> None:
    # The revert 3 s after A-C came back spent DeviceC's LACPDUs toward DeviceB; DeviceA
    # crashing 0.2 s later moves the traffic back, and the PDU that completes it may wait.
    tl = timeline((10.0, "pull", "AC"), (12.0, "restore", "AC"), (15.2, "kill", "A"))
    end, why = tl.allowed_end(15.2, 15.5)
    assert end == pytest.approx(15.2 + 1.0 + SLACK) and "revert" in why
    # long after the revert, only the slack
    tl = timeline((10.0, "pull", "AC"), (12.0, "restore", "AC"), (19.0, "kill", "A"))
    assert tl.allowed_end(19.0, 19.5)[0] == pytest.approx(19.0 + SLACK)
    # DeviceB starting does not make a revert (DeviceA kept the member)
    tl = timeline((10.0, "stop", "B"), (12.0, "start", "B"), (15.2, "kill", "A"))
    assert tl.allowed_end(15.2, 15.5)[0] == pytest.approx(15.2 + SLACK)
