"""Asserts (RFC 7761 4.6) on a real LAN: two routers forward the Source's packets onto it.

lab/topologies/igmp-hot-backup-assert: an Open vSwitch bridge joins DeviceA, DeviceE (the
Source's first-hop router, DR on the LAN), FRR's DeviceF and Receiver3. DeviceE forwards for
Receiver3's membership, DeviceA for FRR's Joins (its routes go through DeviceA). The first
packets arrive twice on the LAN; the kernels report them (WRONGVIF), both routers assert, and
DeviceE (attached to the Source: preference 0, metric 0) wins against DeviceA (preference 10
and its route's metric). From then on DeviceA sends nothing of the Source onto the LAN, FRR
joins toward DeviceE, and neither receiver gets a packet twice.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import frr, netns
from lab import scenarios as sc
from lab.ovs import missing_binaries
from lab.topology import TOPOLOGIES
from tests.lab.conftest import display, wait_for

ASSERT = TOPOLOGIES / "igmp-hot-backup-assert" / "topology.yaml"
GROUP, SOURCE, E_LAN, A_LAN = "239.7.0.9", "10.0.5.100", "10.0.7.9", "10.0.7.1"
RATE, SECONDS = 200, 6.0


def lan_neighbors(lab) -> set[str]:
    return {n["neighbor"] for n in display(lab, "DeviceA", "display pim neighbor")["neighbors"]
            if n["interface"] == "GigabitEthernet0/1/4"}


def receiver(lab, node: str, dump: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "lab.traffic", "recv", "--ifname", "eth0", "--duration",
            "60", "--group", GROUP, "--dump", str(dump)]
    proc = subprocess.Popen(netns.exec_argv(lab.ns(node), argv), stdout=subprocess.PIPE,
                            text=True, cwd=sc.ROOT)
    assert proc.stdout is not None
    proc.stdout.readline()  # joined
    return proc


def stop(proc: subprocess.Popen) -> dict:
    proc.send_signal(signal.SIGTERM)
    return json.loads(proc.communicate(timeout=30)[0].splitlines()[-1])["streams"][0]


def duplicate_times(dump: Path) -> list[int]:
    """Arrival times (ns) of every copy after the first of a sequence number."""
    seen: set[int] = set()
    dups = []
    for seq, t in next(iter(json.loads(dump.read_text()).values())):
        if seq in seen:
            dups.append(t)
        seen.add(seq)
    return dups


def loser_since(lab) -> float | None:
    """When DeviceA lost the (S,G) Assert on its LAN port (its log's mono= time)."""
    for line in Path(lab.log_path("DeviceA")).read_text().splitlines():
        if "msg=assert" in line and f"source={SOURCE}" in line and "state=loser" in line \
                and f"winner={E_LAN}" in line:
            return float(line.split("mono=")[1].split()[0])
    return None


@pytest.mark.skipif(bool(missing_binaries()) or bool(frr.missing_binaries(("zebra", "pimd"))),
                    reason="needs Open vSwitch and FRR (make bootstrap installs both)")
def test_one_forwarder_on_the_lan_after_the_assert(make_lab, tmp_path: Path) -> None:
    lab = make_lab("tassert", sc.topology(tmp_path, "hot", base=ASSERT))
    wait_for(lambda: lan_neighbors(lab) >= {E_LAN, "10.0.7.2"}, 40,
             "DeviceA's PIM neighbours on the LAN")
    sent_by_a = tmp_path / "a-out.pcap"
    cap = subprocess.Popen(netns.exec_argv(lab.ns("DeviceA"), [
        "tcpdump", "-i", "ge0-1-4", "-Q", "out", "-U", "-n", "-w", str(sent_by_a),
        f"dst {GROUP} or ip proto 103"]), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
    r3 = receiver(lab, "Receiver3", tmp_path / "r3.json")
    r2 = receiver(lab, "Receiver2", tmp_path / "r2.json")
    try:
        time.sleep(2.0)  # Receiver3's report at DeviceE, DeviceF's (*,G) Join at DeviceA
        sender = subprocess.run(netns.exec_argv(lab.ns("Source"), [
            sys.executable, "-m", "lab.traffic", "send", GROUP, "--rate", str(RATE),
            "--duration", str(SECONDS)]), capture_output=True, text=True, cwd=sc.ROOT,
            timeout=SECONDS + 30)
        assert sender.returncode == 0, sender.stderr
        time.sleep(0.5)
        streams = {"Receiver3": stop(r3), "Receiver2": stop(r2)}
    finally:
        for p in (r3, r2):
            if p.poll() is None:
                p.kill()
                p.wait()
        cap.send_signal(signal.SIGINT)
        cap.wait(timeout=10)
    last = int(SECONDS * RATE) - 1
    for node, stream in streams.items():
        assert stream["last_seq"] == last and stream["lost"] <= 5, (node, stream)
        # the first packets may come twice: they are what the Assert is decided on
        assert stream["duplicates"] <= 5, (node, stream)
    lost_at = loser_since(lab)
    assert lost_at is not None, "DeviceA never lost the (S,G) Assert to DeviceE"
    # duplicates only while the Assert was being decided, none after it
    for node, dump in (("Receiver3", "r3.json"), ("Receiver2", "r2.json")):
        late = [t for t in duplicate_times(tmp_path / dump) if t / 1e9 > lost_at + 0.05]
        assert late == [], f"{node}: {len(late)} duplicates after the Assert"
    # DeviceA's own packets onto the LAN: Asserts, and the Source's data only before it lost
    rows = subprocess.run(["tshark", "-r", str(sent_by_a), "-T", "fields", "-E",
                           "separator=|", "-e", "frame.time_epoch", "-e", "pim.type",
                           "-e", "ip.dst"], capture_output=True, text=True, check=True).stdout
    a_asserts = [r for r in rows.splitlines() if r.split("|")[1] == "5"]
    a_data = [float(r.split("|")[0]) for r in rows.splitlines() if r.split("|")[2] == GROUP]
    assert a_asserts, "DeviceA sent no Assert"
    lost_epoch = time.time() - (time.monotonic() - lost_at)
    assert all(t < lost_epoch + 0.05 for t in a_data), \
        f"DeviceA forwarded {sum(t >= lost_epoch + 0.05 for t in a_data)} packets after losing"
    # both routers' and FRR's view of it
    table = sc.show(lab, "DeviceA", "display pim routing-table")
    mine = [a for a in table["asserts"] if a["source"] == SOURCE and a["group"] == GROUP]
    assert [(a["state"], a["winner"], a["winner_preference"]) for a in mine] == [
        ("loser", E_LAN, 0)]
    e_table = sc.show(lab, "DeviceE", "display pim routing-table")
    assert any(a["state"] == "winner" and a["interface"] == "GigabitEthernet0/1/3"
               and a["source"] == SOURCE for a in e_table["asserts"]), e_table["asserts"]
    frr_asserts = lab.frr("DeviceF").cli("show ip pim assert")
    assert E_LAN in frr_asserts and "LOSER" in frr_asserts, frr_asserts
    print(f"\nAssert: DeviceA sent {len(a_data)} of the Source's packets onto the LAN and "
          f"{len(a_asserts)} Asserts; receivers {streams}")
