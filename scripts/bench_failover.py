"""The failover benchmark: how long does the Receiver go without multicast when something
fails, with IGMP hot backup and without?

For each configuration (hot: the seed with BFD; no-backup: the RBP without `service-type
igmp`; no-bfd: hello timeout only), topology variant (the seed; one LACP system ID on both
routers; Open vSwitch as DeviceC with either) and scenario (lab/scenarios.py), N runs on one
lab per configuration and variant: traffic at RATE packets/s to 4 groups, the failure at
t=1 s, the recovery (restore, revive) in the middle of the run where the scenario has one,
then back to the start state. Outage = the longest gap between arrivals of new packets of
a group around the event (max over the groups), measured on an ordinary socket in the
Receiver namespace. Control events come from the daemons' logs (CLOCK_MONOTONIC, the clock
of the arrivals).

Writes bench/results/<timestamp>/: results.json (every run), results.md (median, p95 and
max outage per scenario and configuration, with the no-backup/hot ratio), timeline-*.png
(arrivals around the event with control events marked) and outages.png. Progress on stdout.

Run as root: .venv/bin/python scripts/bench_failover.py [-n 10] [--rate 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from lab import scenarios as sc
from lab.capture import Endpoint, MultiCapture
from lab.frr import missing_binaries as frr_missing
from lab.ovs import missing_binaries
from lab.results import machine, stats
from lab.supervisor import Lab
from lab.topology import DEFAULT_TOPOLOGY, TOPOLOGIES, load_topology

ROOT = Path(__file__).resolve().parents[1]
# (config, scenario, runs: a multiple of N, or minus an absolute count, run seconds or None
# for the scenario's own). Runs last long enough to see the slow cases end: relearning
# from fresh reports takes up to the 10 s query response time, the hello fail time is
# 20 s, and LACP's slow partner timeout (silent failure) 90 s.
PLAN: list[tuple[str, str, float, float | None, str]] = [
    ("hot", "pull-ac", 1.0, None, "seed"), ("hot", "a-dies", 0.5, None, "seed"),
    ("hot", "a-crashes", 1.0, None, "seed"), ("hot", "a-stops", 1.0, None, "seed"),
    ("hot", "pull-ab", 1.0, None, "seed"), ("hot", "b-dies", 1.0, None, "seed"),
    ("hot", "silent-a", -1, 100.0, "seed"), ("hot", "flap", -1, 25.0, "seed"),
    ("no-backup", "pull-ac", 0.5, 26.0, "seed"), ("no-backup", "a-stops", 0.3, 14.0, "seed"),
    ("no-bfd", "a-dies", -2, 50.0, "seed"), ("no-bfd", "a-stops", 0.3, None, "seed"),
]
# The access switch and the LACP identity (lab/topologies): the seed's two system IDs or
# one shared ID, toward the project's DeviceC or Open vSwitch. Every failure of DeviceA or
# its link, half as many runs (silent-a needs fast LACP on the switch: seed only). Open
# vSwitch with the seed's two IDs gets one pull: after its revert OVS stays attached to
# DeviceB, out of sync, and the lab never returns to the start state (README). frr: FRR as
# DeviceD (the RP, BFD peer of both routers), IPv6 on, the seed's routers otherwise.
VARIANTS = {"seed": DEFAULT_TOPOLOGY,
            "shared-id": TOPOLOGIES / "igmp-hot-backup-shared-id" / "topology.yaml",
            "ovs": TOPOLOGIES / "igmp-hot-backup-ovs" / "topology.yaml",
            "ovs-shared-id": TOPOLOGIES / "igmp-hot-backup-ovs-shared-id" / "topology.yaml",
            "frr": TOPOLOGIES / "igmp-hot-backup-frr" / "topology.yaml"}
PLAN += [("hot", scen, 0.5, secs, variant) for variant in ("shared-id", "ovs-shared-id", "frr")
         for scen, secs in (("pull-ac", None), ("a-dies", None), ("a-crashes", None),
                            ("a-stops", None), ("pull-ab", None), ("b-dies", None),
                            ("flap", 25.0))]
PLAN += [("hot", "pull-ac", -1, None, "ovs")]


# the endpoints that tell a failover's story in one pcapng: LACP on DeviceC's members,
# E-Trunk/BFD/RBS/PIM between the routers, IGMP on both Eth-Trunk1s
STORY = [Endpoint("DeviceC", "GigabitEthernet0/1/2", "ge0-1-2"),
         Endpoint("DeviceC", "GigabitEthernet0/1/3", "ge0-1-3"),
         Endpoint("DeviceA", "GigabitEthernet0/1/1", "ge0-1-1"),
         Endpoint("DeviceB", "GigabitEthernet0/1/2", "ge0-1-2"),
         Endpoint("DeviceA", "Eth-Trunk1", "eth-trunk1"),
         Endpoint("DeviceB", "Eth-Trunk1", "eth-trunk1")]


def gaps_around(arrivals: dict[str, list[list[int]]], t0_ns: int, t1_ns: int | None,
                end_ns: int, groups: int) -> float:
    """Longest gap (ms) between new-packet arrivals of any group that overlaps [t0, t1); a
    group that stops arriving counts until the sender's end (`end_ns`), one that never
    arrives for the whole window."""
    worst = 0.0
    for rows in arrivals.values():
        seen: set[int] = set()
        prev = t0_ns
        for seq, t in rows:
            if seq in seen:
                continue
            seen.add(seq)
            if t > t0_ns and (t1_ns is None or prev < t1_ns):
                worst = max(worst, (t - prev) / 1e6)
            prev = max(prev, t)
        if prev < (t1_ns or end_ns):
            worst = max(worst, (end_ns - prev) / 1e6)
    if len(arrivals) < groups:
        worst = max(worst, (end_ns - t0_ns) / 1e6)
    return worst


def one_run(lab: Lab, name: str, rate: int, dump: Path, rng: random.Random,
            run_seconds: float | None) -> dict:
    scen = sc.SCENARIOS.get(name)
    sc.wait_until(lambda: sc.converged(lab), 60, "start state")
    time.sleep(2.2)  # DeviceC's member toward DeviceB stands by again (aggregate wait)
    seconds = run_seconds or (scen.run_seconds if scen else 4.0)
    traffic = sc.Traffic(lab, seconds, rate=rate, dump=str(dump))
    traffic.start_receiver()
    groups = set(traffic.groups)
    def learned() -> bool:  # DeviceA has the groups (and DeviceB a copy, where it syncs)
        a = {g["group"] for itf in sc.show(lab, "DeviceA", "display igmp group")["interfaces"]
             for g in itf["groups"]}
        b = {g["group"] for g in sc.show(lab, "DeviceB", "display igmp group")["remote_backup"]}
        return a >= groups and (b >= groups or not synced)

    synced = "igmp" in json.dumps(sc.show(lab, "DeviceB", "display remote-backup-profile"))
    sc.wait_until(learned, 15, "groups learned")
    since = time.monotonic()
    traffic.start_sender()
    try:
        time.sleep(1.0)
        t_act = time.monotonic_ns()
        if scen is not None:
            scen.act(lab)
            t_rec = None
            if scen.measure_recovery:
                time.sleep(seconds / 2 - 0.5)
                t_rec = time.monotonic_ns()
                scen.recover(lab)
        else:  # flap: 10 flaps inside the traffic run; the outage is the worst gap of the run
            sc.flap(lab, 10, rng)
            t_rec = None
        groups_report = traffic.finish()
    finally:
        traffic.kill()
    if scen is not None and not scen.measure_recovery:
        scen.recover(lab)
    arrivals = json.loads(dump.read_text()) if dump.exists() else {}
    end = traffic.start_ns + int(seconds * 1e9)
    events = sc.control_events(lab, since)
    return {
        "t_act_ns": t_act, "t_recover_ns": t_rec,
        "outage_ms": round(gaps_around(arrivals, t_act, t_rec, end, len(groups)), 2),
        "recovery_outage_ms": (round(gaps_around(arrivals, t_rec, None, end, len(groups)), 2)
                               if t_rec else None),
        "lost": sum(g["lost"] for g in groups_report.values()),
        "duplicates": sum(g["duplicates"] for g in groups_report.values()),
        "reordered": sum(g["reordered"] for g in groups_report.values()),
        "events": [{"node": e["node"], "msg": e["msg"], "mono": float(e["mono"]),
                    "detail": " ".join(f"{k}={e[k]}" for k in ("new", "role", "cause",
                                                              "distributing") if k in e)}
                   for e in events],
    }


def plot(outdir: Path, results: dict, timelines: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for scen, per_config in timelines.items():
        fig, axes = plt.subplots(len(per_config), 1, figsize=(10, 3 * len(per_config)),
                                 squeeze=False)
        for ax, (config, (arrivals, run)) in zip(axes[:, 0], per_config.items(), strict=True):
            t0 = run["t_act_ns"]
            for stream, rows in sorted(arrivals.items()):
                ax.plot([(t - t0) / 1e6 for _, t in rows], [s for s, _ in rows], ".",
                        markersize=1, label=f"group {int(stream) + 1}")
            ax.axvline(0, color="red", linewidth=1)
            ax.text(0, ax.get_ylim()[1], " failure", color="red", va="top", fontsize=7)
            for ev in run["events"][:40]:
                x = (ev["mono"] * 1e9 - t0) / 1e6
                ax.axvline(x, color="grey", linewidth=0.5, linestyle=":")
                ax.text(x, ax.get_ylim()[0], f"{ev['node'][-1]}:{ev['msg']} {ev['detail']}",
                        rotation=90, fontsize=5, va="bottom")
            ax.set_title(f"{scen} / {config}: outage {run['outage_ms']} ms", fontsize=9)
            ax.set_xlabel("ms from the failure")
            ax.set_ylabel("sequence number")
            span = (run["t_recover_ns"] - t0) / 1e6 if run["t_recover_ns"] else 0.0
            ax.set_xlim(-300, max(1500.0, run["outage_ms"] * 1.5, span + 4500))
        fig.tight_layout()
        fig.savefig(outdir / f"timeline-{scen}.png", dpi=110)
        plt.close(fig)
    labels, data = [], []
    for key, runs in results.items():
        vals = [r["outage_ms"] for r in runs]
        if vals:
            labels.append(key.replace("/", "\n"))
            data.append(vals)
    fig, ax = plt.subplots(figsize=(max(8, len(labels) * 0.9), 4))
    ax.boxplot(data, tick_labels=labels)
    ax.set_yscale("log")
    ax.set_ylabel("outage (ms, log)")
    ax.set_title("Receiver outage per scenario / configuration")
    ax.tick_params(axis="x", labelsize=6)
    fig.tight_layout()
    fig.savefig(outdir / "outages.png", dpi=110)
    plt.close(fig)


def table(results: dict, machine_info: dict, rate: int) -> str:
    lines = ["# Failover benchmark", "",
             f"Machine: {machine_info['cpus']} CPUs ({machine_info['cpu_model']}), kernel "
             f"{machine_info['kernel']}, load at start {machine_info['loadavg_at_start']}; "
             f"{rate} packets/s per group, 4 groups. Topology: seed = the seed's DeviceC and "
             "two LACP system IDs, shared-id = one system ID on both routers, ovs = Open "
             "vSwitch as DeviceC, frr = FRR as DeviceD (RP and BFD peer, IPv6 on).", "",
             "| scenario | topology | config | runs | median outage ms | p95 | max "
             "| recovery median ms | lost (total) | dups | baseline/hot (median) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    hot = {(k.split("/")[0], k.split("/")[2]): stats([r["outage_ms"] for r in v])
           for k, v in results.items() if k.split("/")[1] == "hot"}
    for key, runs in results.items():
        scen, config, variant = key.split("/")
        s = stats([r["outage_ms"] for r in runs])
        rec = stats([r["recovery_outage_ms"] for r in runs if r["recovery_outage_ms"]])
        if not s:
            lines.append(f"| {scen} | {variant} | {config} | 0 | - | - | - | - | - | - | - |")
            continue
        ratio = "-"
        base = hot.get((scen, variant))
        if config != "hot" and base and base["median"] > 0:
            ratio = f"{s['median'] / base['median']:.1f}x"
        lines.append(f"| {scen} | {variant} | {config} | {s.get('n', 0)} | "
                     f"{s.get('median', '-')} | {s.get('p95', '-')} | {s.get('max', '-')} | "
                     f"{rec.get('median', '-')} | {sum(r['lost'] for r in runs)} | "
                     f"{sum(r['duplicates'] for r in runs)} | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=10, help="runs of the fast scenarios")
    ap.add_argument("--rate", type=int, default=1000, help="packets/s per group")
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--topologies", default=",".join(VARIANTS),
                    help=f"comma-separated topology variants ({', '.join(VARIANTS)})")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--capture", action="store_true",
                    help="also capture each scenario's first run (pcapng in the results)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench: run as root (it builds network namespaces)", file=sys.stderr)
        return 2
    outdir = Path(args.out) / time.strftime("%Y%m%d-%H%M%S")
    outdir.mkdir(parents=True)
    info = machine()
    results: dict[str, list[dict]] = {}
    timelines: dict[str, dict] = {}
    rng = random.Random(1)
    t_start = time.monotonic()
    wanted = args.topologies.split(",")
    if unknown := set(wanted) - set(VARIANTS):
        print(f"bench: unknown topology {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if missing_binaries() and any(v.startswith("ovs") for v in wanted):
        print("bench: Open vSwitch is not installed (make bootstrap): ovs variants skipped",
              flush=True)
        wanted = [v for v in wanted if not v.startswith("ovs")]
    if frr_missing(("zebra", "pimd", "bfdd")) and "frr" in wanted:
        print("bench: FRR is not installed (make bootstrap): the frr variant skipped", flush=True)
        wanted = [v for v in wanted if v != "frr"]
    plan = [p for p in PLAN if (not args.only or p[1] in args.only.split(","))
            and p[4] in wanted]
    with tempfile.TemporaryDirectory() as tmp:
        for config, variant in dict.fromkeys((c, v) for c, _, _, _, v in plan):
            lab = Lab(f"bf-{config}-{variant}"[:24])
            lab.up(load_topology(sc.topology(Path(tmp), config, base=VARIANTS[variant])))
            try:
                for cfg, name, mult, secs, var in plan:
                    if (cfg, var) != (config, variant):
                        continue
                    runs = int(-mult) if mult < 0 else max(1, round(args.n * mult))
                    key = f"{name}/{config}/{variant}"
                    results[key] = []
                    for i in range(runs):
                        dump = Path(tmp) / f"{name}-{config}-{variant}-{i}.json"
                        cap = None
                        if args.capture and i == 0:
                            cap = MultiCapture(lab, STORY,
                                               outdir / f"capture-{name}-{config}-{variant}"
                                                        ".pcapng")
                            cap.start()
                        try:
                            run = one_run(lab, name, args.rate, dump, rng, secs)
                        except (TimeoutError, OSError, ValueError) as exc:
                            print(f"  {key} run {i + 1}: failed ({exc})", flush=True)
                            results[key].append({"outage_ms": float("nan"), "error": str(exc),
                                                 "lost": 0, "duplicates": 0, "reordered": 0,
                                                 "recovery_outage_ms": None, "events": []})
                            continue
                        finally:
                            if cap is not None:
                                cap.stop()
                        results[key].append(run)
                        arrivals = json.loads(dump.read_text()) if dump.exists() else {}
                        best = timelines.setdefault(name, {})
                        label = config if variant == "seed" else f"{config} @ {variant}"
                        if label not in best or i == runs // 2:
                            best[label] = (arrivals, run)
                        print(f"[{time.monotonic() - t_start:6.0f} s] {key} run {i + 1}/{runs}"
                              f": outage {run['outage_ms']} ms"
                              + (f", recovery {run['recovery_outage_ms']} ms"
                                 if run["recovery_outage_ms"] is not None else "")
                              + f", lost {run['lost']}, dups {run['duplicates']}", flush=True)
            finally:
                lab.down()
    for runs in results.values():  # failed runs are reported in results.json only
        runs[:] = [r for r in runs if "error" not in r] or runs[:0]
    (outdir / "results.json").write_text(json.dumps({"machine": info, "rate": args.rate,
                                                     "results": results}, indent=1))
    (outdir / "results.md").write_text(table(results, info, args.rate))
    plot(outdir, results, timelines)
    print(table(results, info, args.rate))
    print(f"results in {outdir} ({time.monotonic() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
