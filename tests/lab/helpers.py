"""Shared by the failover and failure-sequence lab tests: the start state, measured traffic
around an event, and what a user would check (who feeds the Receiver, the gaps)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import netns
from lab import scenarios as sc
from tests.lab.conftest import display, in_ns, wait_for

RATE = 500  # packets/s per group
GROUPS = set(sc.GROUPS)
C_PORT = {"DeviceA": "GigabitEthernet0/1/2", "DeviceB": "GigabitEthernet0/1/3"}
MEMBER = {"DeviceA": "ge0-1-2", "DeviceB": "ge0-1-3"}  # each router's port toward DeviceC
OUTAGE_MS = 2000.0

HOLD = """
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
idx = socket.if_nametoindex("eth0")
for g in sys.argv[1:]:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4si", socket.inet_aton(g), b"\\0" * 4, idx))
print("joined", flush=True)
sys.stdin.read()
"""


# ----- helpers ------------------------------------------------------------------------

@pytest.fixture
def hold_groups() -> Iterator:
    """A Receiver process holding the scenario groups for the whole test, so the start state
    (groups on DeviceA, backed up on DeviceB) is checkable after a Traffic run has ended."""
    procs: list[subprocess.Popen] = []

    def hold(lab) -> subprocess.Popen:
        p = subprocess.Popen(netns.exec_argv(lab.ns("Receiver"),
                                             [sys.executable, "-c", HOLD, *sc.GROUPS]),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "joined"
        return p

    yield hold
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def a_groups(lab) -> set[str]:
    return {g["group"] for itf in display(lab, "DeviceA", "display igmp group")["interfaces"]
            for g in itf["groups"]}


def b_remote(lab) -> set[str]:
    return {g["group"] for g in display(lab, "DeviceB", "display igmp group")["remote_backup"]}


def etrunk(lab, node: str) -> dict:
    return display(lab, node, "display e-trunk 1")[0]


def rbs_connected(lab) -> bool:
    return display(lab, "DeviceB", "display remote-backup-service")[0]["tcp_state"] == "connected"


def start_state(lab, hold) -> None:
    """Converged, the Receiver's groups held (on DeviceA and backed up on DeviceB), and
    DeviceC's member toward DeviceB standing by again (its aggregate wait has passed)."""
    sc.wait_until(lambda: sc.converged(lab), 60, "start state")
    time.sleep(2.2)
    hold(lab)
    sc.wait_until(lambda: a_groups(lab) >= GROUPS and b_remote(lab) >= GROUPS, 20,
                  "the groups on DeviceA and backed up on DeviceB")


def back_to_start(lab, timeout: float = 30) -> None:
    """Recovery: the start state again, with no stuck entries (as lists, for the message)
    within 15 s of converging (DeviceB's copy follows DeviceA's batch)."""
    sc.wait_until(lambda: sc.converged(lab), timeout, "the start state after recovery")
    problems: list[str] = []

    def clean() -> bool:
        nonlocal problems
        problems = sc.stuck_state(lab, GROUPS)
        return not problems

    with contextlib.suppress(TimeoutError):
        sc.wait_until(clean, 15, "no stuck state")
    assert problems == []


def begin(lab, tmp_path: Path, seconds: float) -> sc.Traffic:
    """Receiver up and joined (its groups on DeviceA and DeviceB), then the sender."""
    traffic = sc.Traffic(lab, seconds, rate=RATE, dump=str(tmp_path / "arrivals.json"))
    traffic.start_receiver()
    sc.wait_until(lambda: a_groups(lab) >= GROUPS and b_remote(lab) >= GROUPS, 20,
                  "the receiver's groups on DeviceA and DeviceB")
    traffic.start_sender()
    time.sleep(1.0)
    return traffic


def still_running(traffic: sc.Traffic) -> None:
    """The scenario finished while traffic was still flowing (a slow machine must not cut a
    measurement short)."""
    left = traffic.start_ns / 1e9 + traffic.seconds - time.monotonic_ns() / 1e9
    assert left > 0.5, f"the run ended {-left:.1f} s before the scenario did: lengthen it"


def arrivals(traffic: sc.Traffic) -> dict[str, list[list[int]]]:
    assert traffic.dump is not None
    return json.loads(Path(traffic.dump).read_text())


def gap_ms(traffic: sc.Traffic, t0_ns: int, t1_ns: int | None = None) -> float:
    """Longest gap (ms) between new-packet arrivals of any group that ends after t0 and
    starts before t1: the outage around an event in [t0, t1)."""
    return max(((end - start) / 1e6 for start, end in gaps(traffic, 0.0)
                if end > t0_ns and (t1_ns is None or start < t1_ns)), default=0.0)


def assert_delivered(report: dict, traffic: sc.Traffic, lossless: bool = False) -> None:
    """Still flowing at the end (the last packet of every group arrived), nothing twice."""
    last = int(traffic.seconds * RATE) - 1
    for g, r in report.items():
        assert r["duplicates"] == 0, (g, r)
        assert r["last_seq"] == last, (g, r)
        if lossless:
            assert (r["received"], r["lost"]) == (r["sent"], 0), (g, r)


def tx_packets(lab, node: str, ifname: str) -> int:
    out = in_ns(lab, node, "ip", "-s", "-j", "link", "show", "dev", ifname, check=True).stdout
    return json.loads(out)[0]["stats64"]["tx"]["packets"]


def assert_fed_by(lab, node: str, window: float = 0.5) -> None:
    """DeviceC distributes on `node`'s member and that router's member port carries the
    streams (the other's carries at most LACP/IGMP control frames)."""
    assert sc.c_distributing(lab) == [C_PORT[node]]
    before = {n: tx_packets(lab, n, p) for n, p in MEMBER.items()}
    time.sleep(window)
    pps = {n: (tx_packets(lab, n, p) - before[n]) / window for n, p in MEMBER.items()}
    other = "DeviceB" if node == "DeviceA" else "DeviceA"
    assert pps[node] > 0.5 * len(GROUPS) * RATE, pps
    assert pps[other] < 40, pps


def lacp_fast_on_c(topology: Path) -> Path:
    """`lacp timeout fast` on DeviceC's Eth-Trunk1: a silent partner is dropped after 3 s."""
    cfg = topology.parent / "DeviceC.cfg"
    text = cfg.read_text()
    assert " mode lacp-static\n" in text
    cfg.write_text(text.replace(" mode lacp-static\n", " mode lacp-static\n lacp timeout fast\n",
                                1))
    return topology


def gaps(traffic: sc.Traffic, min_ms: float = 150.0) -> list[tuple[int, int]]:
    """Every (start, end) in ns between arrivals of new packets of any group longer than
    min_ms."""
    out = []
    for rows in arrivals(traffic).values():
        seen: set[int] = set()
        prev = None
        for seq, t in rows:
            if seq in seen:
                continue
            seen.add(seq)
            if prev is not None and (t - prev) / 1e6 > min_ms:
                out.append((prev, t))
            prev = t
    return sorted(out)


def pull_restore_die(lab, tmp_path: Path, pull_bound_ms: float) -> dict[str, float]:
    """Pull A-C, restore it (revert after 3 s), then DeviceA dies and comes back; returns
    each event's outage. Both switchovers must end with DeviceB feeding the Receiver, both
    reverts with DeviceA, nothing twice, every group to the end."""
    traffic = begin(lab, tmp_path, 26.0)
    try:
        t_pull = time.monotonic_ns()
        sc.link(lab, "DeviceA", "ge0-1-2", False)
        wait_for(lambda: sc.c_distributing(lab) == [C_PORT["DeviceB"]],
                 pull_bound_ms / 1000 + 1, "C toward B")
        assert_fed_by(lab, "DeviceB")
        time.sleep(0.5)
        t_restore = time.monotonic_ns()
        sc.link(lab, "DeviceA", "ge0-1-2", True)
        wait_for(lambda: sc.c_distributing(lab) == [C_PORT["DeviceA"]], 10, "revert to A")
        assert_fed_by(lab, "DeviceA")
        time.sleep(2.5)  # OVS's member toward DeviceB stands by again
        t_kill = time.monotonic_ns()
        sc.kill_a_and_links(lab)
        wait_for(lambda: sc.c_distributing(lab) == [C_PORT["DeviceB"]],
                 pull_bound_ms / 1000 + 1, "C toward B after DeviceA died")
        assert etrunk(lab, "DeviceB")["state"] == "Master"
        assert_fed_by(lab, "DeviceB")
        t_revive = time.monotonic_ns()
        sc.revive_a(lab)
        wait_for(lambda: sc.c_distributing(lab) == [C_PORT["DeviceA"]], 15, "revert to A")
        assert_fed_by(lab, "DeviceA")
        still_running(traffic)
        report = traffic.finish()
    finally:
        traffic.kill()
    assert_delivered(report, traffic)
    back_to_start(lab)
    return {"pull": gap_ms(traffic, t_pull, t_restore),
            "restore": gap_ms(traffic, t_restore, t_kill),
            "dies": gap_ms(traffic, t_kill, t_revive), "revives": gap_ms(traffic, t_revive)}


def clean_stops(lab, tmp_path: Path, rounds: int = 3) -> list[float]:
    """DeviceA's daemon stops cleanly (goodbyes) with traffic flowing, then starts again,
    `rounds` times: with both members in one aggregate the switch delivers whatever either
    router forwards, so DeviceA must stop forwarding before DeviceB starts (no duplicate)."""
    outages = []
    for _ in range(rounds):
        sc.wait_until(lambda: sc.converged(lab), 60, "the start state")
        time.sleep(2.2)
        traffic = begin(lab, tmp_path, 4.0)
        try:
            t_stop = time.monotonic_ns()
            lab.stop_daemon("DeviceA")
            wait_for(lambda: sc.c_distributing(lab) == [C_PORT["DeviceB"]], 3, "C toward B")
            still_running(traffic)
            report = traffic.finish()
        finally:
            traffic.kill()
        assert_delivered(report, traffic)
        outages.append(gap_ms(traffic, t_stop))
        lab.start_daemon("DeviceA")
    back_to_start(lab)
    return outages
