"""Kernel multicast forwarding through the seed lab, and what it costs the daemons.

1. Capacity: the Source floods one group as fast as one sender process can for a few
   seconds (unpaced); the Receiver counts what arrives across Source -> DeviceD -> DeviceA ->
   DeviceC -> Receiver. Capacity = packets received per second (also reported: the
   sender's own rate, so a sender-bound result is visible as such).
2. Cost: 10 groups x 1000 packets/s for 20 s; each daemon's CPU time (utime + stime from
   /proc) over that window. The daemons are not on the data path, so this should be ~idle.

Run as root: .venv/bin/python scripts/bench_forwarding.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from daemon.cli.protocol import request
from lab.supervisor import Lab
from lab.topology import DEFAULT_TOPOLOGY, load_topology

ROOT = Path(__file__).resolve().parents[1]
FLOOD = """
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 16)
s.connect((sys.argv[1], 5001))
end = time.monotonic() + float(sys.argv[2])
hdr = struct.Struct("!4sHQQ")
n = errors = 0
t0 = time.monotonic()
while time.monotonic() < end:
    for _ in range(64):
        try:
            s.send(hdr.pack(b"IHBT", 0, n, 0) + bytes(8))
            n += 1
        except OSError:
            errors += 1
print(n, errors, time.monotonic() - t0, flush=True)
"""


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_converged(lab: Lab) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        c = request(lab.control_path("DeviceC"), "display eth-trunk 1", as_json=True)[0]
        if [m["name"] for m in c["members"] if m["mux"] == "DISTRIBUTING"] == [
                "GigabitEthernet0/1/2"]:
            return
        time.sleep(0.1)
    raise TimeoutError("lab did not converge")


def receiver(lab: Lab, groups: list[str], seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(["ip", "netns", "exec", lab.ns("Receiver"), sys.executable, "-m",
                             "lab.traffic", "recv", "--ifname", "eth0", "--duration",
                             str(seconds), *[a for g in groups for a in ("--group", g)]],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    proc.stdout.readline()  # ready
    return proc


def main() -> int:
    lab = Lab("bfwd")
    lab.up(load_topology(DEFAULT_TOPOLOGY))
    result: dict[str, object] = {"cpus": os.cpu_count(), "kernel": os.uname().release}
    try:
        wait_converged(lab)
        # 1. capacity, one group
        recv = receiver(lab, ["239.5.5.5"], 8)
        time.sleep(1.5)
        out = subprocess.run(["ip", "netns", "exec", lab.ns("Source"), sys.executable, "-c",
                              FLOOD, "239.5.5.5", "3"], capture_output=True, text=True,
                             check=True).stdout.split()
        sent, errors, secs = int(out[0]), int(out[1]), float(out[2])
        streams = json.loads(recv.communicate(timeout=30)[0].splitlines()[-1])["streams"]
        got = streams[0]["received"] if streams else 0
        span = ((streams[0]["last_arrival_ns"] - streams[0]["first_arrival_ns"]) / 1e9
                if streams else secs)
        result["capacity"] = {"sender_pps": round(sent / secs), "send_errors": errors,
                              "received_pps": round(got / max(span, 1e-9)),
                              "delivered_fraction": round(got / max(sent, 1), 4)}
        print("capacity", result["capacity"], flush=True)

        # 2. daemon CPU at 10 x 1000 packets/s
        groups = [f"239.6.6.{i}" for i in range(1, 11)]
        recv = receiver(lab, groups, 26)
        time.sleep(1.5)
        pids = {p.node: p.pid for p in lab.state().procs}
        before = {n: cpu_s(p) for n, p in pids.items()}
        t0 = time.monotonic()
        send = subprocess.run(["ip", "netns", "exec", lab.ns("Source"), sys.executable, "-m",
                               "lab.traffic", "send", *groups, "--rate", "1000", "--duration",
                               "20"], capture_output=True, text=True, cwd=ROOT, check=True)
        wall = time.monotonic() - t0
        after = {n: cpu_s(p) for n, p in pids.items()}
        streams = json.loads(recv.communicate(timeout=30)[0].splitlines()[-1])["streams"]
        result["cpu_at_10kpps"] = {
            "seconds": round(wall, 1),
            "daemon_cpu_percent": {n: round(100 * (after[n] - before[n]) / wall, 2)
                                   for n in pids},
            "received": sum(s["received"] for s in streams),
            "sent": sum(json.loads(send.stdout.splitlines()[-1])["sent"].values())}
        print("cpu", result["cpu_at_10kpps"], flush=True)
    finally:
        lab.down()
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
