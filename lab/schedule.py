"""Failure schedules for the soak, and what they allow: pure, so they are unit-tested.

A schedule is a seeded, replayable list of events drawn from the failures users meet: pull
and restore of the A-C, B-C, A-B, A-D and B-D links; kill -9, clean stop and start of
DeviceA's or DeviceB's daemon; silencing DeviceA (everything dropped, carrier up) and
healing it. Spacing runs from 50 ms to 5 s, so events fall inside each other's aggregate
wait, revert delay and BFD detection time.

The outage a schedule allows is derived from the same events (`Timeline.allowed_end`): a gap
in a group's traffic may last as long as no path through DeviceA or DeviceB was *ready*
(its daemon running and heard, its link to DeviceC up, an upstream toward the RP, and the
group state on board), plus what the standards make the switch wait: the remaining LACP
aggregate wait of DeviceC's port toward the path that takes over (802.1AX: 2 s from when
that partner appeared), the partner timeout when the failure was a silent one (nothing tells
DeviceC but its 3 s short timeout: there is no faster standard signal), and the query
response time when both routers had lost the groups (the hosts must be asked again), plus
100 ms for everything else (detection, the E-Trunk, PIM, table reloads); and after a burst
of events, or right after a revert, LACP's transmit limit (at most 3 LACPDUs a second), which
can hold back the one that completes a switch for up to a second.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

LINKS = ("AC", "BC", "AB", "AD", "BD")
ROUTERS = ("A", "B")
AGGREGATE_WAIT = 2.0  # 802.1AX aggregate_wait_time
PARTNER_TIMEOUT = 3.0  # DeviceC's short timeout (`lacp timeout fast`): a silent partner
STATE_SYNC = 1.0  # a started router has the peer's batch within this (RBS connect + batch)
RELEARN = 13.0  # the groups lost on both routers: trunk up (2 s), max response (10 s), 1 s
ETRUNK_FAIL_TIME = 20.0  # hello 1 s x hold-on-failure multiplier 20 (VRP defaults): a router
# that starts without hearing its peer stays in E-Trunk Init that long before it may serve
SLACK = 0.1  # detection, E-Trunk, PIM, data plane reloads
TX_LIMIT_WINDOW = 1.0  # 802.1AX Fast_Periodic_Time: 3 LACPDUs at most in any such window
SILENCE_MATCH = 0.1  # a gap that begins this close to a silence began with it
FAST_PERIODIC = 1.0  # LACPDUs every second toward DeviceC, which asks for the short timeout
REVERT_SPREAD = 2.0  # a revert comes the revert delay after DeviceA's member is back, plus up
# to a hello period (DeviceB hears of it) and STATE_SYNC (it waits until DeviceA holds its groups)
MIN_SPACING, MAX_SPACING = 0.05, 5.0

# restoring kinds are drawn more often, so the lab keeps coming back toward health
_WEIGHTS = {"pull": 1.0, "restore": 3.0, "kill": 0.5, "stop": 0.4, "start": 3.0,
            "silence": 0.3, "heal": 3.0}


@dataclass(frozen=True)
class Event:
    """One failure or repair, `at` seconds after the schedule starts."""

    at: float
    kind: str  # pull restore kill stop start silence heal
    target: str  # a link (AC, BC, AB, AD, BD) or a router (A, B)

    @property
    def name(self) -> str:
        return f"{self.kind} {self.target}"

    def json(self) -> dict:
        return {"at": self.at, "kind": self.kind, "target": self.target}


@dataclass(frozen=True)
class LabState:
    """What the schedule has done to the lab so far."""

    down: frozenset[str] = frozenset()  # pulled links
    stopped: frozenset[str] = frozenset()  # routers whose daemon is not running
    silenced: frozenset[str] = frozenset()

    def possible(self) -> list[tuple[str, str]]:
        """Every event that makes sense now."""
        out = [("restore" if link in self.down else "pull", link) for link in LINKS]
        for r in ROUTERS:
            out += [("start", r)] if r in self.stopped else [("kill", r), ("stop", r)]
        out.append(("heal", "A") if "A" in self.silenced else ("silence", "A"))
        return out

    def apply(self, kind: str, target: str) -> LabState:
        match kind:
            case "pull":
                return replace(self, down=self.down | {target})
            case "restore":
                return replace(self, down=self.down - {target})
            case "kill" | "stop":
                return replace(self, stopped=self.stopped | {target})
            case "start":
                return replace(self, stopped=self.stopped - {target})
            case "silence":
                return replace(self, silenced=self.silenced | {target})
            case "heal":
                return replace(self, silenced=self.silenced - {target})
        raise ValueError(f"unknown event kind {kind!r}")

    def repairs(self) -> list[tuple[str, str]]:
        """What brings the lab back to health, in a sensible order."""
        return ([("heal", r) for r in sorted(self.silenced)]
                + [("start", r) for r in sorted(self.stopped)]
                + [("restore", link) for link in LINKS if link in self.down])


def spacing(rng: random.Random) -> float:
    """50 ms to 5 s, weighted toward the short end where events overlap most."""
    u = rng.random()
    if u < 0.4:
        return rng.uniform(MIN_SPACING, 0.5)
    if u < 0.7:
        return rng.uniform(0.5, 2.5)
    return rng.uniform(2.5, MAX_SPACING)


def generate(seed: int, count: int) -> list[Event]:
    """`count` events, reproducible from `seed` alone."""
    rng = random.Random(seed)
    state, t, events = LabState(), 0.0, []
    for _ in range(count):
        t += spacing(rng)
        choices = state.possible()
        kind, target = rng.choices(choices, [_WEIGHTS[k] for k, _ in choices])[0]
        events.append(Event(round(t, 3), kind, target))
        state = state.apply(kind, target)
    return events


def final_state(events: list[Event]) -> LabState:
    state = LabState()
    for ev in events:
        state = state.apply(ev.kind, ev.target)
    return state


# ---- what a schedule allows -------------------------------------------------------------


@dataclass
class _Snapshot:
    at: float
    state: LabState
    holders: frozenset[str]  # routers that hold the group state
    relearning: dict[str, float]  # running routers without it, relearning since
    init: frozenset[str] = frozenset()  # routers in E-Trunk Init: started, peer not heard


@dataclass
class Timeline:
    """The executed events (actual times, seconds on the monotonic clock) and what they
    imply for each path over time. Build it with `add` as events happen; queries about a
    time t only use events up to t.

    Group state: both routers hold it at the start. A router that stops loses it; one that
    starts gets it from the peer over RBS (within STATE_SYNC, if a holder runs and the two
    can reach each other) or else must relearn it from the hosts, which takes RELEARN once
    it can serve (its trunk up, then the hosts' answers to its query within the maximum
    response time). Relearning is an allowance, not a prediction: such a router counts as a
    holder once it has been usable for RELEARN (a usable router that is not the one serving
    has the groups by then too, from the peer's batch)."""

    start: float
    revert_delay: float = 3.0  # the soak's `timer revert delay`
    snaps: list[_Snapshot] = field(default_factory=list)
    appeared: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in ROUTERS})
    silences: list[float] = field(default_factory=list)
    event_times: list[float] = field(default_factory=list)
    reverts: list[float] = field(default_factory=list)  # earliest time of a possible revert
    _syncing: dict[str, float] = field(default_factory=dict)  # router -> state due at
    _init_until: dict[str, float] = field(default_factory=dict)  # router -> leaves Init at

    def __post_init__(self) -> None:
        self.snaps.append(_Snapshot(self.start, LabState(), frozenset(ROUTERS), {}))
        for r in ROUTERS:
            self.appeared[r].append(-math.inf)

    @property
    def state(self) -> LabState:
        return self.snaps[-1].state

    @staticmethod
    def _connected(st: LabState) -> bool:
        """DeviceA and DeviceB can reach each other (RBS runs between their loopbacks)."""
        if st.stopped or st.silenced:
            return False
        return "AB" not in st.down or not ({"AD", "BD"} & st.down)

    def add(self, at: float, kind: str, target: str) -> None:
        """One executed event at monotonic time `at` (events come in time order)."""
        self._advance(at)
        self.event_times.append(at)
        last = self.snaps[-1]
        state = last.state.apply(kind, target)
        holders, relearning = set(last.holders), dict(last.relearning)
        init = set(last.init)
        if kind in ("kill", "stop"):
            holders.discard(target)
            relearning.pop(target, None)
            self._syncing.pop(target, None)
            init.discard(target)
            self._init_until.pop(target, None)
            if not holders:  # nobody left to sync from: those waiting must relearn
                for r in list(self._syncing):
                    relearning[r] = at
                self._syncing.clear()
        elif kind == "start":
            if holders and self._connected(state):
                self._syncing[target] = at + STATE_SYNC
            else:
                relearning[target] = at
            if not self._connected(state):  # nobody to elect with: Init for the fail time
                init.add(target)
                self._init_until[target] = at + ETRUNK_FAIL_TIME
            self.appeared[target].append(at)
        elif kind == "restore" and target in ("AC", "BC"):
            self.appeared[target[0]].append(at)
        elif kind == "heal":  # no carrier change: DeviceC hears of it with the next LACPDU
            self.appeared[target].append(at + FAST_PERIODIC)
        # DeviceA's member back (its link, or it and DeviceB in touch again): if DeviceB held
        # the role meanwhile, it hands it back the revert delay later
        rejoined = not self._connected(last.state) and self._connected(state)
        if (kind, target) == ("restore", "AC") or (rejoined and (kind, target) != ("start", "B")):
            self.reverts.append(at + self.revert_delay)
        elif kind == "silence":
            self.silences.append(at)
        if self._connected(state):  # the peers hear each other: Init ends in an election
            init.clear()
            self._init_until.clear()
        self.snaps.append(_Snapshot(at, state, frozenset(holders), relearning, frozenset(init)))

    def _advance(self, upto: float) -> None:
        """What happens by `upto` without an event: syncs that completed, relearning that
        has run its time, Init that ran out."""
        while True:
            last = self.snaps[-1]
            due = [(t, r, "sync") for r, t in self._syncing.items() if t <= upto]
            due += [(t, r, "init") for r, t in self._init_until.items() if t <= upto]
            for r, since in last.relearning.items():
                usable = self._since(r, upto, self._usable)
                if usable is not None and max(usable, since) + RELEARN <= upto:
                    due.append((max(usable, since) + RELEARN, r, "relearn"))
            due = [(max(t, last.at), r, what) for t, r, what in due]
            if not due:
                return
            t, r, what = min(due)
            holders, relearning = set(last.holders), dict(last.relearning)
            init = set(last.init)
            if what == "init":
                del self._init_until[r]
                init.discard(r)
            elif what == "sync" and not (holders and self._connected(last.state)):
                del self._syncing[r]
                relearning[r] = t  # the peer went away (or out of reach) before the batch
            else:
                self._syncing.pop(r, None)
                relearning.pop(r, None)
                holders.add(r)
            self.snaps.append(_Snapshot(t, last.state, frozenset(holders), relearning,
                                        frozenset(init)))

    # ---- paths ------------------------------------------------------------------------

    @staticmethod
    def _usable(s: _Snapshot, r: str) -> bool:
        """Router r can carry traffic to DeviceC: running, heard, out of E-Trunk Init, its C
        link up, an upstream."""
        st = s.state
        other = "B" if r == "A" else "A"
        if r in st.stopped or r in st.silenced or f"{r}C" in st.down or r in s.init:
            return False
        upstream_via_other = ("AB" not in st.down and other not in st.stopped
                              and other not in st.silenced and f"{other}D" not in st.down)
        return f"{r}D" not in st.down or upstream_via_other

    def _ready(self, s: _Snapshot, r: str) -> bool:
        return self._usable(s, r) and r in s.holders

    def _since(self, r: str, t: float, test: Callable[[_Snapshot, str], bool]) -> float | None:
        """Start of the stretch of time, ending at t, during which test(snapshot, r) held."""
        snaps = [s for s in self.snaps if s.at <= t]
        if not snaps or not test(snaps[-1], r):
            return None
        since = snaps[-1].at
        for s in reversed(snaps[:-1]):
            if not test(s, r):
                break
            since = s.at
        return since

    def ready_since(self, r: str, t: float) -> float | None:
        """Start of the stretch of time, ending at t, during which path r was ready (no
        event before t may be added after this)."""
        self._advance(t)
        return self._since(r, t, self._ready)

    def unready(self, g0: float, g1: float) -> float:
        """How much of [g0, g1] no router was ready: the part of a gap no protocol could
        have avoided (the rest is what the switch itself cost)."""
        self._advance(g1)
        total = 0.0
        snaps = self.snaps
        for i, snap in enumerate(snaps):
            lo = max(snap.at, g0)
            hi = min(snaps[i + 1].at if i + 1 < len(snaps) else g1, g1)
            if hi > lo and not any(self._ready(snap, r) for r in ROUTERS):
                total += hi - lo
        return total

    def _holders_at(self, t: float) -> frozenset[str]:
        snaps = [s for s in self.snaps if s.at <= t]
        return snaps[-1].holders if snaps else frozenset()

    def _churn(self, t: float) -> bool:
        """Three or more events within a second of t, or a revert less than a second before
        t: the LACPDUs they caused may have used up the budget of the one that completes the
        switch. (A revert alone costs DeviceC's port toward DeviceB up to three: it stops
        distributing, stands by, and answers DeviceB's last word as holder.)"""
        if any(lo <= t <= lo + REVERT_SPREAD + TX_LIMIT_WINDOW for lo in self.reverts):
            return True
        return sum(1 for at in self.event_times if abs(at - t) <= TX_LIMIT_WINDOW) >= 3

    def allowed_end(self, g0: float, g1: float) -> tuple[float, str]:
        """The latest a gap that began at g0 (last arrival) and ended at g1 may end, and why.

        A router counts from when its path was ready: usable (see _usable) with the groups
        on board. To that come the partner timeout if the gap began with a silent failure,
        what is left of the aggregate wait of DeviceC's port toward it, LACP's transmit
        limit after a burst of events (802.1AX 6.4.16: at most 3 LACPDUs a second, so one
        that completes the switch may wait up to a second), and SLACK. Normally the gap must
        end by the earliest of the two routers' times: the other path was there to use.
        After both routers lost the groups (no holder when the gap began) the gap may last
        until the router that serves has them back; which one the E-Trunk picks depends on
        who held the role, so every router that could carry the traffic must be ready."""
        self._advance(g1)
        detect = g0
        if any(abs(ts - g0) <= SILENCE_MATCH for ts in self.silences):
            detect = g0 + PARTNER_TIMEOUT
        ends: list[tuple[float, str]] = []
        lost = not self._holders_at(g0)
        for r in ROUTERS:
            since = self.ready_since(r, g1)
            if since is None:
                if lost and self._since(r, g1, self._usable) is not None:
                    return math.inf, f"the groups were lost; Device{r} has not relearned them"
                continue
            begin = max(since, g0, detect)
            appeared = max(t for t in self.appeared[r] if t <= max(begin, g1))
            wait = max(0.0, appeared + AGGREGATE_WAIT - begin)
            churn = TX_LIMIT_WINDOW if self._churn(begin) else 0.0
            parts = [f"path via Device{r} ready from {since - self.start:.3f} s"]
            if detect > g0:
                parts.append(f"silent failure: partner timeout {PARTNER_TIMEOUT:g} s")
            if wait:
                parts.append(f"remaining aggregate wait {wait:.3f} s")
            if churn:
                parts.append("LACP transmit limit after a burst of events or a revert")
            ends.append((begin + wait + churn + SLACK, ", ".join(parts)))
        if not ends:
            return math.inf, "no path was ready when the gap ended"
        return max(ends) if lost else min(ends)
