"""The failure soak: a randomized, replayable failure schedule run against the seed lab with
multicast flowing the whole time, and the invariants of hot backup checked as it goes.

What it runs: the seed topology with a second Receiver behind DeviceC, a short revert delay
(so reverts happen inside the schedule) and `lacp timeout fast` on DeviceC (a silent DeviceA
is noticed after the 3 s short timeout instead of 90 s: no faster standard signal exists).
Traffic: `groups` groups at `rate` packets/s each from the Source, watched on both Receivers
by `lab.traffic watch` (a packet socket, so each frame's forwarding router is known).

What it checks, continuously: no packet arrives twice; DeviceC never distributes toward both
routers at once; every gap in a group's traffic ends within what the schedule allows
(lab/schedule.py: the time no path was ready, the remaining aggregate wait, the partner
timeout of a silent failure, relearning when both routers lost the groups, 100 ms). After
the schedule, with everything repaired and the lab settled: exactly one master member,
DeviceC aggregating toward it, both routers holding the same group set, MFC entries pointing
at Eth-Trunk1 on both, and every group flowing to both Receivers.

A violation prints the seed, the events before it and the daemons' log lines around it, and
(with `capture`) writes a pcapng of the ten seconds before it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from daemon.cli.protocol import ControlError
from daemon.log import parse_line
from lab import netns
from lab import scenarios as sc
from lab.capture import Endpoint, interrupt, read_pcap, write_pcapng
from lab.schedule import Event, LabState, Timeline, final_state, generate
from lab.supervisor import Lab
from lab.topology import DEFAULT_TOPOLOGY, load_topology

ROOT = Path(__file__).resolve().parents[1]
RECEIVERS = ("Receiver", "Receiver2")
# Where a pull happens: at the end that never restarts (DeviceC, DeviceD), so a restarted
# router cannot bring a pulled cable back by setting its own port up. A-B has two router
# ends: both go down, and a router started meanwhile has its end put down again.
FAR_END = {"AC": ("DeviceC", "ge0-1-2"), "BC": ("DeviceC", "ge0-1-3"),
           "AD": ("DeviceD", "ge0-1-3"), "BD": ("DeviceD", "ge0-1-2")}
AB_ENDS = {"A": ("DeviceA", "ge0-1-1"), "B": ("DeviceB", "ge0-1-1")}
DEVICE = {"A": "DeviceA", "B": "DeviceB"}
CAPTURE = [Endpoint("DeviceC", "GigabitEthernet0/1/2", "ge0-1-2"),
           Endpoint("DeviceC", "GigabitEthernet0/1/3", "ge0-1-3"),
           Endpoint("DeviceA", "GigabitEthernet0/1/1", "ge0-1-1"),
           Endpoint("DeviceD", "GigabitEthernet0/1/3", "ge0-1-3"),
           Endpoint("DeviceD", "GigabitEthernet0/1/2", "ge0-1-2"),
           Endpoint("Receiver", "eth0", "eth0")]

GAP_MS = 30.0  # gaps reported by the watchers (the packets of a group are 5 ms apart)

Progress = Callable[[str], None]


@dataclass
class SoakConfig:
    seed: int
    events: int
    revert_delay: int = 3
    groups: int = 20
    rate: int = 200  # packets/s per group
    capture: bool = True
    outdir: Path | None = None
    name: str = "soak"

    @property
    def group_list(self) -> list[str]:
        return [f"239.9.0.{i}" for i in range(1, self.groups + 1)]


@dataclass
class Violation:
    at: float  # monotonic seconds
    what: str
    detail: str
    pcap: str | None = None
    more: int = 0  # the same violation seen on other groups or receivers

    def json(self, start: float) -> dict:
        return {"t": round(self.at - start, 3), "what": self.what, "detail": self.detail,
                "also_on_other_streams": self.more, "pcap": self.pcap}


# ---- the soak's lab -----------------------------------------------------------------------


def topology(tmp: Path, revert_delay: int) -> Path:
    """The seed topology, a second Receiver on DeviceC GE0/1/4, the soak's timers."""
    out = tmp / "soak-topology"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(DEFAULT_TOPOLOGY.parent, out)
    for dev in ("DeviceA", "DeviceB"):
        cfg = out / f"{dev}.cfg"
        cfg.write_text(cfg.read_text().replace(
            "e-trunk 1\n", f"e-trunk 1\n timer revert delay {revert_delay}\n", 1))
    c = out / "DeviceC.cfg"
    c.write_text(c.read_text().replace(
        " mode lacp-static\n", " mode lacp-static\n lacp timeout fast\n", 1).replace(
        "interface Loopback0\n",
        "interface GigabitEthernet0/1/4\n portswitch\n undo shutdown\n port link-type access\n"
        " port default vlan 100\n#\ninterface Loopback0\n", 1))
    topo = out / "topology.yaml"
    topo.write_text(topo.read_text().replace("links:\n", (
        "  Receiver2:\n    kind: host\n    interfaces:\n"
        "      eth0: [10.0.15.101/24, 10.0.35.101/24]\n"
        "    gateways: [10.0.15.1, 10.0.35.3]\nlinks:\n"), 1)
        + "  - [DeviceC:GigabitEthernet0/1/4, Receiver2:eth0]                 # VLAN 100\n")
    return topo


class Executor:
    """Carries schedule events out on the lab; returns when each is done."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.state = LabState()
        self._stopped_how: dict[str, str] = {}  # router -> "kill" or "stop"

    def apply(self, kind: str, target: str) -> None:
        lab = self.lab
        match kind, target:
            case ("pull" | "restore"), "AB":
                up = kind == "restore"
                for r, (node, ifname) in AB_ENDS.items():
                    # a fail-stopped router's port stays down until its daemon starts
                    if up and r in self.state.stopped and not self._cleanly_stopped(r):
                        continue
                    netns.set_link(lab.ns(node), ifname, up)
            case ("pull" | "restore"), link:
                node, ifname = FAR_END[link]
                netns.set_link(lab.ns(node), ifname, kind == "restore")
            case "kill", r:
                lab.stop_daemon(DEVICE[r], kill=True)
                self._stopped_how[r] = "kill"
            case "stop", r:
                lab.stop_daemon(DEVICE[r])
                self._stopped_how[r] = "stop"
            case "start", r:
                lab.start_daemon(DEVICE[r])
                if "AB" in self.state.down:
                    node, ifname = AB_ENDS[r]
                    netns.set_link(lab.ns(node), ifname, False)
            case ("silence" | "heal"), r:
                sc.silence(lab, DEVICE[r], sc.A_PORTS, kind == "silence")
            case _:
                raise ValueError(f"unknown event {kind} {target}")
        self.state = self.state.apply(kind, target)

    def _cleanly_stopped(self, r: str) -> bool:
        return self._stopped_how.get(r) == "stop"


class Watchers:
    """`lab.traffic watch` on every Receiver; their JSON lines arrive on one queue."""

    def __init__(self, lab: Lab, groups: list[str], gap_ms: float) -> None:
        self.lines: queue.Queue[tuple[str, dict]] = queue.Queue()
        self.procs: dict[str, subprocess.Popen] = {}
        self.threads: list[threading.Thread] = []
        for host in RECEIVERS:
            argv = [sys.executable, "-m", "lab.traffic", "watch", "--ifname", "eth0",
                    "--gap-ms", str(gap_ms)] + [a for g in groups for a in ("--group", g)]
            p = subprocess.Popen(netns.exec_argv(lab.ns(host), argv), stdout=subprocess.PIPE,
                                 text=True, cwd=ROOT)
            self.procs[host] = p
            assert p.stdout is not None
            first = json.loads(p.stdout.readline())
            assert first["ev"] == "ready", first
            t = threading.Thread(target=self._read, args=(host, p), daemon=True)
            t.start()
            self.threads.append(t)

    def _read(self, host: str, p: subprocess.Popen) -> None:
        assert p.stdout is not None
        for line in p.stdout:
            with contextlib.suppress(ValueError):
                self.lines.put((host, json.loads(line)))

    def drain(self) -> list[tuple[str, dict]]:
        out = []
        while True:
            try:
                out.append(self.lines.get_nowait())
            except queue.Empty:
                return out

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for t in self.threads:
            t.join(timeout=5)


class Ring:
    """tcpdump on the story's endpoints into small rotating files (a ring of ~20 s), so a
    violation can be saved with the seconds that led to it."""

    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab = lab
        self.dir = tmp / "ring"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        for i, ep in enumerate(CAPTURE):
            # -Z root: with -C, tcpdump opens each next file after dropping privileges
            argv = ["tcpdump", "-i", ep.linux, "-n", "-U", "-s", "160", "-Z", "root",
                    "--time-stamp-precision=nano",
                    "-C", "3", "-W", "4", "-w", str(self.dir / f"ep{i}.pcap")]
            with open(self.dir / f"ep{i}.err", "w") as err:
                self.procs.append(subprocess.Popen(netns.exec_argv(lab.ns(ep.node), argv),
                                                   stdout=subprocess.DEVNULL, stderr=err))

    def save(self, out: Path, until_mono: float, seconds: float = 10.0) -> int:
        """The `seconds` before `until_mono` (monotonic), every endpoint, as one pcapng."""
        offset = time.time() - time.monotonic()
        lo = int((until_mono - seconds + offset) * 1e9)
        hi = int((until_mono + 0.5 + offset) * 1e9)
        captures = []
        for i, ep in enumerate(CAPTURE):
            pkts, linktype = [], 1
            for f in sorted(self.dir.glob(f"ep{i}.pcap*")):
                with contextlib.suppress(OSError):
                    linktype, got = read_pcap(f)
                    pkts += [p for p in got if lo <= p[0] <= hi]
            captures.append((ep, linktype, pkts))
        return write_pcapng(out, captures)

    def stop(self) -> None:
        interrupt(self.procs)


# ---- the run ------------------------------------------------------------------------------


@dataclass
class Soak:
    cfg: SoakConfig
    lab: Lab
    tmp: Path
    progress: Progress
    schedule: list[Event] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    executed: list[dict] = field(default_factory=list)  # event, planned, t, took
    gaps: list[dict] = field(default_factory=list)
    forwarders: list[dict] = field(default_factory=list)
    ticks: dict[str, dict] = field(default_factory=dict)  # host -> last tick
    ring: Ring | None = None
    watchers: Watchers | None = None
    executor: Executor | None = None
    timeline: Timeline | None = None
    start: float = 0.0
    _stop_poll: threading.Event = field(default_factory=threading.Event)
    _by_key: dict[tuple[str, object], Violation] = field(default_factory=dict)

    # -- checks ----------------------------------------------------------------------------

    def violate(self, at: float, what: str, detail: str, key: object = None) -> None:
        """Record a violation; one that `key` says was already seen (the same outage on
        another group or receiver) only counts."""
        if key is not None:
            seen = self._by_key.get((what, key))
            if seen is not None:
                seen.more += 1
                return
        v = Violation(at, what, detail)
        if key is not None:
            self._by_key[(what, key)] = v
        self.violations.append(v)
        self.progress(f"  VIOLATION at {at - self.start:.3f} s: {what}: {detail}")
        if self.ring is not None and self.cfg.outdir is not None and len(self.violations) <= 5:
            path = self.cfg.outdir / f"violation-{len(self.violations)}.pcapng"
            n = self.ring.save(path, at)
            v.pcap = str(path)
            self.progress(f"    last 10 s: {path} ({n} packets)")
        self.progress(self.context(at))

    NOISY = frozenset({"group event", "mfc entry", "backed-up group", "link removed"})

    def context(self, at: float, before: float = 3.0, after: float = 1.0) -> str:
        """The seed, the events before `at`, and the daemons' log lines around it (merged in
        time order; per-group lines counted, not listed)."""
        lines = [f"    replay: make soak SEED={self.cfg.seed} EVENTS={self.cfg.events}",
                 "    events before it:"]
        for ex in self.executed:
            if at - 10 <= ex["t"] <= at:
                lines.append(f"      {ex['t'] - self.start:9.3f} s  {ex['event']}")
        rows: list[tuple[float, str]] = []
        noisy = 0
        for node in ("DeviceA", "DeviceB", "DeviceC", "DeviceD"):
            with contextlib.suppress(OSError), open(self.lab.log_path(node)) as f:
                for line in f:
                    ev = parse_line(line)
                    t = float(ev.get("mono", 0))
                    if not at - before <= t <= at + after or ev.get("level") == "debug":
                        continue
                    if ev.get("msg") in self.NOISY:
                        noisy += 1
                        continue
                    text = " ".join(f"{k}={v}" for k, v in ev.items()
                                    if k not in ("ts", "mono", "level"))
                    rows.append((t, f"      {t - self.start:9.3f} {text[:200]}"))
        lines.append(f"    daemon log from {before:g} s before to {after:g} s after "
                     f"({noisy} per-group lines left out):")
        lines += [text for _, text in sorted(rows)]
        return "\n".join(lines)

    def handle_traffic(self) -> None:
        assert self.timeline is not None and self.watchers is not None
        for host, ev in self.watchers.drain():
            kind = ev.get("ev")
            if kind == "dup":
                self.violate(ev["t"] / 1e9, "duplicate",
                             f"{host} got {ev['g']} seq {ev['seq']} twice (2nd from {ev['mac']})",
                             key=round(ev["t"] / 1e9, 1))
            elif kind == "gap":
                g0, g1 = ev["from"] / 1e9, ev["to"] / 1e9
                allowed, why = self.timeline.allowed_end(g0, g1)
                row = {"host": host, "group": ev["g"], "from": g0, "to": g1, "ms": ev["ms"],
                       "allowed_ms": round((allowed - g0) * 1e3, 1), "why": why,
                       "unavoidable_ms": round(self.timeline.unready(g0, g1) * 1e3, 1)}
                self.gaps.append(row)
                if g1 > allowed:
                    self.violate(g1, "outage", (
                        f"{host} {ev['g']}: {ev['ms']:.0f} ms from "
                        f"{g0 - self.start:.3f} s, allowed {row['allowed_ms']:.0f} ms ({why})"),
                        key=round(g0, 1))
            elif kind == "fwd":
                self.forwarders.append({"host": host, "group": ev["g"], "mac": ev["mac"],
                                        "t": ev["t"] / 1e9})
            elif kind == "tick":
                self.ticks[host] = ev

    def poll_forwarders(self) -> None:
        """DeviceC must never distribute toward both routers (two aggregations at once)."""
        while not self._stop_poll.wait(0.2):
            with contextlib.suppress(ControlError, OSError, KeyError, IndexError):
                dist = sc.c_distributing(self.lab)
                if len(dist) > 1:
                    self.violate(time.monotonic(), "two forwarders",
                                 f"DeviceC distributes on {', '.join(dist)}")

    # -- phases ----------------------------------------------------------------------------

    def converge(self) -> None:
        sc.wait_until(lambda: sc.converged(self.lab), 60, "the start state")

    def run_schedule(self) -> None:
        ex = self.executor = Executor(self.lab)
        self.start = time.monotonic()
        self.timeline = Timeline(self.start, self.cfg.revert_delay)
        last_report = self.start
        for i, ev in enumerate(self.schedule, 1):
            due = self.start + ev.at
            while (now := time.monotonic()) < due:
                self.handle_traffic()
                time.sleep(min(0.02, due - now))
            t = time.monotonic()
            ex.apply(ev.kind, ev.target)
            took = time.monotonic() - t
            # a start counts from when the daemon answers; everything else from its action
            at = t + took if ev.kind == "start" else t
            self.timeline.add(at, ev.kind, ev.target)
            self.executed.append({"event": ev.name, "planned": ev.at, "t": at,
                                  "took": round(took, 4)})
            self.handle_traffic()
            if time.monotonic() - last_report >= 10 or i == len(self.schedule):
                last_report = time.monotonic()
                self.progress(f"  [{i:4d}/{len(self.schedule)}] {at - self.start:7.1f} s  "
                              f"{ev.name:<12} violations {len(self.violations)}")

    def repair(self) -> None:
        """Everything back to health, as events too (the bounds still apply)."""
        assert self.timeline is not None and self.executor is not None
        for kind, target in self.executor.state.repairs():
            t = time.monotonic()
            self.executor.apply(kind, target)
            at = time.monotonic() if kind == "start" else t
            self.timeline.add(at, kind, target)
            self.executed.append({"event": f"{kind} {target}", "planned": None, "t": at,
                                  "took": round(time.monotonic() - t, 4)})
            self.handle_traffic()

    def settle_checks(self, groups: set[str]) -> list[str]:
        """The end state, after the lab has had the time to settle."""
        lab = self.lab
        deadline = time.monotonic() + 60
        problems: list[str] = ["not settled"]
        while time.monotonic() < deadline:
            self.handle_traffic()
            problems = self._end_state(groups)
            if not problems:
                break
            time.sleep(0.5)
        with contextlib.suppress(ControlError, OSError):
            a = sc.show(lab, "DeviceA", "display e-trunk 1")[0]["members"][0]["state"]
            b = sc.show(lab, "DeviceB", "display e-trunk 1")[0]["members"][0]["state"]
            if sorted([a, b]) != ["Backup", "Master"]:
                problems.append(f"member roles A {a}, B {b}: not exactly one master")
        return problems

    def _end_state(self, groups: set[str]) -> list[str]:
        lab = self.lab
        try:
            problems = [] if sc.converged(lab) else ["not converged to the start state "
                                                     "(A master, C toward A, BFD, RBS)"]
            problems += sc.stuck_state(lab, groups)
        except (ControlError, OSError, KeyError, IndexError) as exc:
            return [f"display failed: {exc}"]
        now = time.monotonic_ns()
        for host in RECEIVERS:
            tick = self.ticks.get(host)
            if tick is None or now - tick["t"] > 2_000_000_000:
                problems.append(f"{host}: no traffic report in the last 2 s")
                continue
            idle = sorted(g for g, n in tick["counts"].items() if n == 0)
            if idle:
                problems.append(f"{host}: no packets in the last second for {idle}")
        return problems


def run(cfg: SoakConfig, progress: Progress = print) -> dict:
    """Build the lab, run the schedule with traffic, check, tear down; the result dict."""
    import tempfile

    schedule = generate(cfg.seed, cfg.events)
    tmp = Path(tempfile.mkdtemp(prefix="ihb-soak-"))
    if cfg.outdir is not None:
        cfg.outdir.mkdir(parents=True, exist_ok=True)
        (cfg.outdir / "schedule.json").write_text(json.dumps(
            {"seed": cfg.seed, "events": [e.json() for e in schedule]}, indent=1))
    span = schedule[-1].at if schedule else 0.0
    progress(f"soak: seed {cfg.seed}, {len(schedule)} events over {span:.0f} s "
             f"(replay: make soak SEED={cfg.seed} EVENTS={cfg.events}); final state "
             f"{final_state(schedule)}")
    lab = Lab(f"{cfg.name}-{os.getpid() % 10000}")
    soak = Soak(cfg, lab, tmp, progress, schedule)
    sender: subprocess.Popen | None = None
    poller: threading.Thread | None = None
    result: dict = {"seed": cfg.seed, "events": len(schedule)}
    try:
        progress(f"lab {lab.name}: building")
        lab.up(load_topology(topology(tmp, cfg.revert_delay)))
        soak.converge()
        time.sleep(2.2)  # DeviceC's port toward DeviceB stands by past its aggregate wait
        groups = cfg.group_list
        soak.watchers = Watchers(lab, groups, gap_ms=GAP_MS)
        sc.wait_until(lambda: set(groups) <= _a_groups(lab), 30, "the groups on DeviceA")
        argv = [sys.executable, "-m", "lab.traffic", "send", *groups, "--rate", str(cfg.rate),
                "--duration", str(span + 600)]
        sender = subprocess.Popen(netns.exec_argv(lab.ns("Source"), argv),
                                  stdout=subprocess.DEVNULL, cwd=ROOT)
        time.sleep(2.0)
        if cfg.capture:
            soak.ring = Ring(lab, tmp)
        poller = threading.Thread(target=soak.poll_forwarders, daemon=True)
        poller.start()
        progress(f"running {len(schedule)} events with {len(groups)} groups x {cfg.rate} "
                 "packets/s to 2 receivers")
        soak.run_schedule()
        progress("repairing, then settling")
        soak.repair()
        problems = soak.settle_checks(set(groups))
        for p in problems:
            soak.violate(time.monotonic(), "end state", p)
        result.update(summarize(soak, problems))
    finally:
        soak._stop_poll.set()
        if poller is not None:
            poller.join(timeout=5)
        if sender is not None and sender.poll() is None:
            sender.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                sender.wait(timeout=5)
            if sender.poll() is None:
                sender.kill()
                sender.wait()
        if soak.watchers is not None:
            soak.watchers.stop()
        if soak.ring is not None:
            soak.ring.stop()
        if cfg.outdir is not None and (lab.dir / "logs").exists():
            shutil.copytree(lab.dir / "logs", cfg.outdir / "logs", dirs_exist_ok=True)
        lab.down()
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def _a_groups(lab: Lab) -> set[str]:
    try:
        out = sc.show(lab, "DeviceA", "display igmp group")
    except (ControlError, OSError):
        return set()
    return {g["group"] for itf in out["interfaces"] for g in itf["groups"]}


def summarize(soak: Soak, problems: list[str]) -> dict:
    """Per event: the longest gap that began between it and the next event."""
    from lab.results import stats

    ex = soak.executed
    outages: dict[str, list[float]] = {}
    costs: dict[str, list[float]] = {}
    per_event = []
    for i, e in enumerate(ex):
        lo = e["t"] - 0.01
        hi = ex[i + 1]["t"] if i + 1 < len(ex) else float("inf")
        mine = [g for g in soak.gaps if lo <= g["from"] < hi]
        worst = max((g["ms"] for g in mine), default=0.0)
        cost = max((g["ms"] - g["unavoidable_ms"] for g in mine), default=0.0)
        outages.setdefault(e["event"], []).append(worst)
        costs.setdefault(e["event"], []).append(max(0.0, cost))
        per_event.append({"t": round(e["t"] - soak.start, 3), "event": e["event"],
                          "outage_ms": worst, "beyond_unavoidable_ms": round(cost, 1),
                          "took_s": e["took"]})
    return {
        "start_monotonic": soak.start,
        "violations": [v.json(soak.start) for v in soak.violations],
        "end_state_problems": problems,
        "outage_by_event": {k: stats(v) for k, v in sorted(outages.items())},
        "beyond_unavoidable_by_event": {k: stats(v) for k, v in sorted(costs.items())},
        "events_run": per_event,
        "gaps": [{**g, "from": round(g["from"] - soak.start, 3),
                  "to": round(g["to"] - soak.start, 3)} for g in soak.gaps],
        "forwarder_changes": len(soak.forwarders),
    }
