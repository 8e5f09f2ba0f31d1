"""IGMP hot-backup sync numbers in the seed lab.

1. Join-to-backup latency: the Receiver joins N groups one at a time (ordinary socket, every
   50 ms); for each, the time from the join until DeviceB logs the entry as backed up
   (its `mono=` log field and the joiner's clock are both CLOCK_MONOTONIC).
2. Scale: the Receiver joins M groups at once; DeviceA's and DeviceB's daemon memory (RSS)
   before and after; then DeviceB restarts and the batch after the reconnect restores all M:
   time from DeviceB's channel coming up to the last entry applied.

Run as root: .venv/bin/python scripts/bench_igmp_sync.py [--joins 200] [--groups 10000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from daemon.cli.protocol import request
from daemon.log import parse_line
from lab.supervisor import Lab
from lab.topology import DEFAULT_TOPOLOGY, load_topology

ROOT = Path(__file__).resolve().parents[1]
JOIN_PACED = """
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
idx = socket.if_nametoindex("eth0")
for i in range(int(sys.argv[1])):
    g = f"239.3.{i // 250}.{i % 250 + 1}"
    t = time.monotonic()
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4si", socket.inet_aton(g), b"\\0" * 4, idx))
    print(g, t, flush=True)
    time.sleep(0.05)
print("done", flush=True)
sys.stdin.read()
"""
JOIN_ALL = """
import socket, struct, sys
idx = socket.if_nametoindex("eth0")
socks = []
for i in range(int(sys.argv[1])):
    if i % 500 == 0:  # memberships use socket option memory (net.core.optmem_max)
        socks.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    s = socks[-1]
    g = f"239.4.{i // 250}.{i % 250 + 1}"
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4si", socket.inet_aton(g), b"\\0" * 4, idx))
print("done", flush=True)
sys.stdin.read()
"""


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def remote_count(lab: Lab) -> int:
    out = request(lab.control_path("DeviceB"), "display igmp group", as_json=True, timeout=30)
    return len(out["remote_backup"])


def percentile(vals: list[float], q: float) -> float:
    vals = sorted(vals)
    return vals[min(len(vals) - 1, round(q * (len(vals) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--joins", type=int, default=200)
    ap.add_argument("--groups", type=int, default=10000)
    ap.add_argument("--name", default="bsync")
    args = ap.parse_args()
    lab = Lab(args.name)
    lab.up(load_topology(DEFAULT_TOPOLOGY))
    py = sys.executable
    result: dict[str, object] = {}
    procs: list[subprocess.Popen] = []
    try:
        time.sleep(4)
        # 1. latency
        joiner = subprocess.Popen(["ip", "netns", "exec", lab.ns("Receiver"), py, "-c",
                                   JOIN_PACED, str(args.joins)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        procs.append(joiner)
        joined: dict[str, float] = {}
        assert joiner.stdout is not None
        for line in joiner.stdout:
            if line.strip() == "done":
                break
            g, t = line.split()
            joined[g] = float(t)
        time.sleep(1)
        added: dict[str, float] = {}
        with open(lab.log_path("DeviceB")) as f:
            for line in f:
                ev = parse_line(line)
                if ev.get("msg") == "backed-up group" and ev.get("op") == "ADD":
                    added.setdefault(ev["group"], float(ev["mono"]))
        learned: dict[str, float] = {}
        with open(lab.log_path("DeviceA")) as f:
            for line in f:
                ev = parse_line(line)
                if ev.get("msg") == "group event" and ev.get("kind") == "JOIN":
                    learned.setdefault(ev["group"], float(ev["mono"]))
        lat = [(added[g] - t) * 1e3 for g, t in joined.items() if g in added]
        host = [(learned[g] - t) * 1e3 for g, t in joined.items() if g in learned]
        sync = [(added[g] - learned[g]) * 1e3 for g in joined if g in added and g in learned]
        result["join_to_devicea_ms"] = {"median": round(statistics.median(host), 2),
                                        "p99": round(percentile(host, 0.99), 2)}
        result["devicea_to_deviceb_ms"] = {"median": round(statistics.median(sync), 2),
                                           "p99": round(percentile(sync, 0.99), 2)}
        result["join_to_backup_ms"] = {
            "n": len(lat), "missing": len(joined) - len(lat),
            "median": round(statistics.median(lat), 2), "p99": round(percentile(lat, 0.99), 2),
            "max": round(max(lat), 2)}
        print("latency", result["join_to_backup_ms"], "of which host+A",
              result["join_to_devicea_ms"], "A->B", result["devicea_to_deviceb_ms"], flush=True)

        # 2. scale: memory and batch
        pids = {n: lab.daemon(n).pid for n in ("DeviceA", "DeviceB")}
        before = {n: rss_mb(p) for n, p in pids.items()}
        bulk = subprocess.Popen(["ip", "netns", "exec", lab.ns("Receiver"), py, "-c", JOIN_ALL,
                                 str(args.groups)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        procs.append(bulk)
        assert bulk.stdout is not None and bulk.stdout.readline().strip() == "done"
        want = args.groups + args.joins
        t0 = time.monotonic()
        while remote_count(lab) < want:
            if time.monotonic() - t0 > 120:
                raise TimeoutError(f"only {remote_count(lab)} of {want} groups backed up")
            time.sleep(0.5)
        result["learn_and_sync_s"] = round(time.monotonic() - t0, 2)
        after = {n: rss_mb(p) for n, p in pids.items()}
        result["rss_mb"] = {n: {"before": round(before[n], 1), "after": round(after[n], 1),
                                "growth": round(after[n] - before[n], 1)} for n in pids}
        print("memory", result["rss_mb"], flush=True)
        t_restart = time.monotonic()
        lab.stop_daemon("DeviceB")
        lab.start_daemon("DeviceB")
        while remote_count(lab) < want:
            if time.monotonic() - t_restart > 120:
                raise TimeoutError("batch did not restore every group")
            time.sleep(0.05)
        done = time.monotonic()
        up = None
        with open(lab.log_path("DeviceB")) as f:
            for line in f:
                ev = parse_line(line)
                if (ev.get("msg") == "rbs channel state" and ev.get("state") == "ESTABLISHED"
                        and float(ev["mono"]) >= t_restart):
                    up = float(ev["mono"])
                    break
        result["batch_restore_s"] = {"groups": want,
                                     "from_channel_up": round(done - up, 3) if up else None,
                                     "from_restart": round(done - t_restart, 3)}
        print("batch", result["batch_restore_s"], flush=True)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        lab.down()
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
