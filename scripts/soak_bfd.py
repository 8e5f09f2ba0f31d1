"""BFD false-flap soak: the seed lab for N minutes with every core kept busy.

Starts the lab, loads each CPU with a busy loop (nice 0, like any competing job), and counts
BFD session state changes and E-Trunk role changes on DeviceA and DeviceB after the lab
converged. With nothing failing, every change is a false flap (target: 0). Also reports the
daemons' CPU time over the soak. Run as root: .venv/bin/python scripts/soak_bfd.py --minutes 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from daemon.log import parse_line
from lab.supervisor import Lab
from lab.topology import DEFAULT_TOPOLOGY, load_topology

BUSY = "while True: pass"


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--name", default="bsoak")
    args = ap.parse_args()
    lab = Lab(args.name)
    lab.up(load_topology(DEFAULT_TOPOLOGY))
    hogs = []
    try:
        time.sleep(5)  # converge
        t0 = time.monotonic()
        cpu0 = {p.node: cpu_seconds(p.pid) for p in lab.state().procs}
        hogs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(os.cpu_count() or 2)]
        end = t0 + args.minutes * 60
        while time.monotonic() < end:
            time.sleep(min(30.0, end - time.monotonic()))
            print(f"{(time.monotonic() - t0) / 60:.1f} of {args.minutes} min", flush=True)
        cpu = {p.node: round(cpu_seconds(p.pid) - cpu0[p.node], 2) for p in lab.state().procs}
        flaps: dict[str, list[str]] = {}
        for node in ("DeviceA", "DeviceB"):
            with open(lab.log_path(node)) as f:
                events = [parse_line(x) for x in f]
            flaps[node] = [f"{e['msg']} {e.get('new', e.get('role', ''))}" for e in events
                           if float(e.get("mono", 0)) >= t0 and e.get("msg") in
                           ("bfd session state", "e-trunk state", "member role")]
        load = os.getloadavg()
    finally:
        for h in hogs:
            h.kill()
            h.wait()
        lab.down()
    print(json.dumps({"minutes": args.minutes, "cpus": os.cpu_count(), "busy_loops": len(hogs),
                      "loadavg_1_5_15": load, "false_flaps": {k: len(v) for k, v in
                                                              flaps.items()},
                      "events": flaps, "daemon_cpu_s": cpu}, indent=1))
    return 0 if not any(flaps.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
