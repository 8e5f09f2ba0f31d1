"""Eth-Trunk switchover timing in the seed lab, from the daemons' own event logs.

For N rounds: pull DeviceA-DeviceC at DeviceA's end and time until DeviceC distributes on
its member toward DeviceB; restore it and time (a) until DeviceC distributes toward DeviceA
again and (b) how long DeviceC's Eth-Trunk has no distributing member during that move back.
Baseline, measured in the same run: the kernel's own delay from the pull to DeviceC seeing
carrier loss (the floor below which no daemon can react).

Times use CLOCK_MONOTONIC: the `mono=` field of the daemons' log lines is the same clock.
Run as root: .venv/bin/python scripts/bench_lacp.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from daemon.log import parse_line
from lab import netns
from lab.supervisor import Lab
from lab.topology import DEFAULT_TOPOLOGY, load_topology

TOWARD_A, TOWARD_B = "GigabitEthernet0/1/2", "GigabitEthernet0/1/3"


def events(log: Path, since: float) -> list[dict[str, str]]:
    out = []
    for line in log.read_text().splitlines():
        f = parse_line(line)
        if "mono" in f and float(f["mono"]) >= since:
            out.append(f)
    return out


def wait_event(log: Path, since: float, pred, timeout: float = 10.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for f in events(log, since):
            if pred(f):
                return f
        time.sleep(0.01)
    raise TimeoutError(f"no matching event in {log} after {timeout} s")


def forwarding(members: str):
    return lambda f: f.get("msg") == "trunk forwarding" and f.get("distributing") == members


def summary(values: list[float]) -> dict[str, float]:
    vals = sorted(values)
    p95 = vals[min(len(vals) - 1, round(0.95 * (len(vals) - 1)))]
    return {"n": len(vals), "median_ms": round(statistics.median(vals), 2),
            "p95_ms": round(p95, 2), "max_ms": round(vals[-1], 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--name", default="blacp")
    args = ap.parse_args()
    lab = Lab(args.name)
    lab.up(load_topology(DEFAULT_TOPOLOGY))
    clog = Path(lab.log_path("DeviceC"))
    res: dict[str, list[float]] = {"carrier_baseline": [], "pull": [], "restore": [],
                                   "restore_gap": []}
    try:
        wait_event(clog, 0, forwarding(TOWARD_A), 15)
        time.sleep(2.5)
        for i in range(args.rounds):
            t0 = time.monotonic()
            netns.set_link(lab.ns("DeviceA"), "ge0-1-2", False)
            carrier = wait_event(clog, t0, lambda f: f.get("msg") == "link state"
                                 and f.get("linux") == "ge0-1-2" and f.get("carrier") == "down")
            moved = wait_event(clog, t0, forwarding(TOWARD_B))
            res["carrier_baseline"].append((float(carrier["mono"]) - t0) * 1e3)
            res["pull"].append((float(moved["mono"]) - t0) * 1e3)
            time.sleep(2.5)  # DeviceC's member toward DeviceB now stands by as the only one
            t1 = time.monotonic()
            netns.set_link(lab.ns("DeviceA"), "ge0-1-2", True)
            back = wait_event(clog, t1, forwarding(TOWARD_A))
            gap_start = wait_event(clog, t1, lambda f: f.get("msg") == "trunk forwarding"
                                   and f.get("distributing") != TOWARD_B)
            res["restore"].append((float(back["mono"]) - t1) * 1e3)
            res["restore_gap"].append((float(back["mono"]) - float(gap_start["mono"])) * 1e3)
            print(f"round {i + 1}/{args.rounds}: pull {res['pull'][-1]:.1f} ms, "
                  f"restore {res['restore'][-1]:.1f} ms (gap {res['restore_gap'][-1]:.1f} ms)",
                  flush=True)
            time.sleep(2.5)
    finally:
        lab.down()
    print(json.dumps({k: summary(v) for k, v in res.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
