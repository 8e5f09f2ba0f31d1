"""E-Trunk failover timing in the seed lab: BFD detection and DeviceA's death.

Per round, with the lab converged (DeviceA master, DeviceC distributing toward it):
  bfd    SIGKILL DeviceA's daemon only (links stay up, so nothing but BFD can tell): time
         until DeviceB's BFD session goes Down (10 ms x 3: detection time 30 ms after the
         last packet received) and until DeviceB's member becomes master;
  death  SIGKILL DeviceA's daemon and take all its links down at once: time until DeviceC
         distributes on its member toward DeviceB. Baseline in the same round: DeviceC
         seeing carrier loss (the kernel's floor).
DeviceA is then restarted and the lab converges again (1 s revert delay in this run).
Times are CLOCK_MONOTONIC, the clock of the daemons' `mono=` log fields.

Run as root: .venv/bin/python scripts/bench_etrunk.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from daemon.cli.protocol import ControlError, request
from daemon.log import parse_line
from lab import netns
from lab.supervisor import Lab
from lab.topology import DEFAULT_TOPOLOGY, load_topology

A_PORTS = ("ge0-1-1", "ge0-1-2", "ge0-1-3")


def first(log: str, since: float, timeout: float = 10.0, **match: str) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log) as f:
            for line in f:
                ev = parse_line(line)
                if float(ev.get("mono", 0)) >= since and all(
                        ev.get(k) == v for k, v in match.items()):
                    return float(ev["mono"])
        time.sleep(0.01)
    raise TimeoutError(f"{log}: no {match} within {timeout} s")


def converged(lab: Lab) -> bool:
    try:
        c = request(lab.control_path("DeviceC"), "display eth-trunk 1", as_json=True)[0]
        a = request(lab.control_path("DeviceA"), "display e-trunk 1", as_json=True)[0]
        b = request(lab.control_path("DeviceB"), "display e-trunk 1", as_json=True)[0]
    except ControlError:
        return False
    dist = [m["name"] for m in c["members"] if m["mux"] == "DISTRIBUTING"]
    return (dist == ["GigabitEthernet0/1/2"] and a["members"][0]["state"] == "Master"
            and b["members"][0]["state"] == "Backup" and a["bfd_state"] == "Up")


def wait_converged(lab: Lab, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not converged(lab):
        if time.monotonic() > deadline:
            raise TimeoutError("lab did not converge")
        time.sleep(0.05)
    time.sleep(2.5)  # let DeviceC's member toward DeviceB stand by again


def quick_revert_topology(tmp: Path) -> Path:
    out = tmp / "topology"
    shutil.copytree(DEFAULT_TOPOLOGY.parent, out)
    for dev in ("DeviceA", "DeviceB"):
        cfg = out / f"{dev}.cfg"
        cfg.write_text(cfg.read_text().replace("e-trunk 1\n", "e-trunk 1\n timer revert delay 1\n",
                                               1))
    return out / "topology.yaml"


def summary(values: list[float]) -> dict[str, float]:
    vals = sorted(values)
    p95 = vals[min(len(vals) - 1, round(0.95 * (len(vals) - 1)))]
    return {"n": len(vals), "median_ms": round(statistics.median(vals), 2),
            "p95_ms": round(p95, 2), "max_ms": round(vals[-1], 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--name", default="betrunk")
    args = ap.parse_args()
    res: dict[str, list[float]] = {"bfd_detect": [], "bfd_to_member_master": [],
                                   "death_carrier_baseline": [], "death_to_c_on_b": []}
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(args.name)
        lab.up(load_topology(quick_revert_topology(Path(tmp))))
        blog, clog = lab.log_path("DeviceB"), lab.log_path("DeviceC")
        try:
            for i in range(args.rounds):
                wait_converged(lab)
                t0 = time.monotonic()
                lab.stop_daemon("DeviceA", kill=True)
                down = first(blog, t0, msg="bfd session state", new="DOWN")
                master = first(blog, t0, msg="member role", role="master")
                res["bfd_detect"].append((down - t0) * 1e3)
                res["bfd_to_member_master"].append((master - down) * 1e3)
                lab.start_daemon("DeviceA")
                wait_converged(lab)

                with netns.ipr(lab.ns("DeviceA")) as ipr:  # opened before the clock starts
                    indexes = [ipr.link_lookup(ifname=n)[0] for n in A_PORTS]
                    pid = lab.daemon("DeviceA").pid
                    t0 = time.monotonic()
                    os.kill(pid, signal.SIGKILL)
                    for idx in indexes:
                        ipr.link("set", index=idx, state="down")
                lab.stop_daemon("DeviceA")  # reaps it
                carrier = first(clog, t0, msg="link state", linux="ge0-1-2", carrier="down")
                moved = first(clog, t0, msg="trunk forwarding",
                              distributing="GigabitEthernet0/1/3")
                res["death_carrier_baseline"].append((carrier - t0) * 1e3)
                res["death_to_c_on_b"].append((moved - t0) * 1e3)
                for ifname in A_PORTS:
                    netns.set_link(lab.ns("DeviceA"), ifname, True)
                lab.start_daemon("DeviceA")
                print(f"round {i + 1}/{args.rounds}: BFD detect {res['bfd_detect'][-1]:.1f} ms,"
                      f" member master +{res['bfd_to_member_master'][-1]:.2f} ms; death -> C on"
                      f" B {res['death_to_c_on_b'][-1]:.1f} ms (carrier"
                      f" {res['death_carrier_baseline'][-1]:.1f} ms)", flush=True)
        finally:
            lab.down()
    print(json.dumps({k: summary(v) for k, v in res.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
