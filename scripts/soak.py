"""The failure soak (`make soak`): a randomized, replayable failure schedule against the seed
lab with multicast flowing, hot backup's invariants checked throughout (lab/soak.py).

Writes bench/results/soak-<timestamp>/: schedule.json (the seed and every event, for replay),
results.json (every event with the outage that followed it, every gap with what the schedule
allowed, violations, the end state), results.md (the outage distribution by event kind) and
outages.png. A violation also leaves violation-N.pcapng (the 10 s before it). Exits 1 when
anything was violated.

Run as root: .venv/bin/python scripts/soak.py [--seed S] [--events 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from lab.results import machine
from lab.soak import SoakConfig, run

ROOT = Path(__file__).resolve().parents[1]


def table(res: dict, cfg: SoakConfig, took_s: float, info: dict) -> str:
    lines = [
        f"# Failure soak, seed {cfg.seed}",
        "",
        f"{res['events']} events (+ repairs), {cfg.groups} groups x {cfg.rate} packets/s to 2 "
        f"receivers, revert delay {cfg.revert_delay} s, `lacp timeout fast` on DeviceC; "
        f"{took_s:.0f} s in all. Machine: {info['cpus']} CPUs {info['cpu_model']}, kernel "
        f"{info['kernel']}, load average at start {info['loadavg_at_start'][0]:.2f}.",
        "",
        f"**Violations: {len(res['violations'])}** "
        f"(replay: `make soak SEED={cfg.seed} EVENTS={cfg.events}`)",
        "",
        "Outage after each event (ms): the longest gap of any group at either receiver that",
        "began between the event and the next one (0 when no gap passed 30 ms); and of it,",
        "what the switch cost beyond the time no router had a working path with the groups",
        "(that part no protocol can avoid).",
        "",
        "| event | n | outage median | p95 | max | beyond unavoidable median | p95 | max |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind, st in res["outage_by_event"].items():
        c = res["beyond_unavoidable_by_event"][kind]
        lines.append(f"| {kind} | {st['n']} | {st['median']} | {st['p95']} | {st['max']} | "
                     f"{c['median']} | {c['p95']} | {c['max']} |")
    if res["violations"]:
        lines += ["", "## Violations", ""]
        lines += [f"- {v['t']:.3f} s {v['what']}: {v['detail']}" for v in res["violations"]]
    lines += ["", "## End state", ""]
    lines += [f"- {p}" for p in res["end_state_problems"]] or [
        "- one master member, DeviceC toward it, the same groups on both routers, MFC on "
        "Eth-Trunk1, every group flowing to both receivers"]
    return "\n".join(lines) + "\n"


def plot(outdir: Path, res: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted(res["outage_by_event"])
    rows = res["events_run"]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(kinds) + 1.5))
    rng = random.Random(0)
    for i, kind in enumerate(kinds):
        mine = [r for r in rows if r["event"] == kind]
        for key, color, label in (("outage_ms", "tab:blue", "outage"),
                                  ("beyond_unavoidable_ms", "tab:red",
                                   "beyond the time no router was ready")):
            vals = [max(r[key], 1.0) for r in mine]
            ax.scatter(vals, [i + rng.uniform(-0.25, 0.25) for _ in vals], s=9, alpha=0.5,
                       color=color, label=label if i == 0 else None)
    ax.set_yticks(range(len(kinds)), kinds)
    ax.set_xscale("log")
    ax.axvline(30, color="grey", lw=0.8, ls=":")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("after the event (ms, log; 1 = no gap above the 30 ms threshold)")
    ax.set_title(f"Failure soak, seed {res['seed']}: {res['events']} events, "
                 f"{len(res['violations'])} violations")
    fig.tight_layout()
    fig.savefig(outdir / "outages.png", dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, help="schedule seed (default: a new random one)")
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--revert-delay", type=int, default=3)
    ap.add_argument("--groups", type=int, default=20)
    ap.add_argument("--rate", type=int, default=200, help="packets/s per group")
    ap.add_argument("--no-capture", action="store_true", help="no pcapng ring for violations")
    ap.add_argument("--out", type=Path, help="results directory")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**9)
    out = args.out or ROOT / "bench" / "results" / time.strftime(f"soak-%Y%m%d-%H%M%S-{seed}")
    cfg = SoakConfig(seed, args.events, args.revert_delay, args.groups, args.rate,
                     capture=not args.no_capture, outdir=out)
    info = machine()
    t0 = time.monotonic()
    res = run(cfg, lambda msg: print(msg, flush=True))
    took = time.monotonic() - t0
    res["machine"] = info
    res["config"] = {"revert_delay_s": cfg.revert_delay, "groups": cfg.groups,
                     "rate": cfg.rate}
    (out / "results.json").write_text(json.dumps(res, indent=1))
    (out / "results.md").write_text(table(res, cfg, took, info))
    plot(out, res)
    print(table(res, cfg, took, info))
    print(f"results in {out}")
    return 1 if res["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
