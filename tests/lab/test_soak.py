"""The short failure soak of `make test`: about 60 events of the randomized schedule (a fixed
seed, so a failure replays with `make soak SEED=... EVENTS=60`) with traffic to two
receivers, and every invariant of lab/soak.py strict: no duplicate, never two forwarders,
every outage within what the schedule allows, and the settled end state."""

from __future__ import annotations

from pathlib import Path

from lab.soak import SoakConfig, run

SEED = 2372  # 60 events over 69 s: kills, stops, silences; ends repaired
EVENTS = 60


def test_short_soak_has_no_violation(tmp_path: Path) -> None:
    lines: list[str] = []
    res = run(SoakConfig(SEED, EVENTS, capture=False, outdir=tmp_path, name="tsoak"),
              lines.append)
    assert res["violations"] == [], "\n".join(lines)
    assert res["end_state_problems"] == []
    assert len(res["events_run"]) >= EVENTS
