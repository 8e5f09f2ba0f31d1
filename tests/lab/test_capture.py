"""A multi-device capture of a link pull and a resync decodes with the project's dissector:
every E-Trunk hello and RBS record is recognised, the decoded values match the daemons' own
displays, and tshark finds nothing malformed in any protocol of the capture."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from lab import scenarios as sc
from lab.capture import Endpoint, MultiCapture
from lab.labctl import main as labctl
from tests.lab.conftest import display, wait_for
from tests.lab.test_igmp_backup import Joiner, groups, remote

ROOT = Path(__file__).resolve().parents[2]
LUA = ROOT / "scripts" / "wireshark" / "ihb.lua"
SEED_KEY = "%^%#VQE;E!Dl&Rr]if$F>}w9uk5C>y-4|MS$unQ!#Mb#%^%#"


def tshark(pcap: Path, *args: str) -> list[list[str]]:
    out = subprocess.run(["tshark", "-r", str(pcap), "-X", f"lua_script:{LUA}", "-o",
                          f"etrunk.key:{SEED_KEY}", *args], capture_output=True, text=True,
                         check=True, env={"HOME": "/nonexistent", "PATH": "/usr/bin:/bin"})
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def test_capture_decodes_with_the_dissector(make_lab, tmp_path: Path) -> None:
    lab = make_lab("tcap")
    pcap = tmp_path / "story.pcapng"
    eps = [Endpoint("DeviceA", "GigabitEthernet0/1/1", "ge0-1-1"),
           Endpoint("DeviceC", "GigabitEthernet0/1/2", "ge0-1-2"),
           Endpoint("DeviceC", "GigabitEthernet0/1/3", "ge0-1-3"),
           Endpoint("DeviceA", "Eth-Trunk1", "eth-trunk1")]
    cap = MultiCapture(lab, eps, pcap)
    cap.start()
    try:
        labctl(["daemon", "restart", "DeviceB", "--name", lab.name])  # RBS OPEN and batch
        wait_for(lambda: display(lab, "DeviceB", "display remote-backup-service")[0]
                 ["tcp_state"] == "connected", 15, "RBS connected")
        # the hosts' unsolicited reports are lost until DeviceC forwards toward DeviceA
        sc.wait_until(lambda: sc.converged(lab), 30, "the start state")
        joiner = Joiner(lab, 3)
        wait_for(lambda: remote(lab, "DeviceB") == groups(3), 15, "groups backed up")
        labctl(["link", "down", "DeviceA", "GE0/1/2", "--name", lab.name])
        time.sleep(2.5)
        joiner.leave()
        time.sleep(0.5)
    finally:
        assert cap.stop() > 0

    names = {r[0] for r in tshark(pcap, "-T", "fields", "-e", "frame.interface_name")}
    assert names == {f"{e.node}:{e.vrp}" for e in eps}
    # nothing malformed, no expert error, in any protocol
    bad = tshark(pcap, "-Y", "_ws.malformed || _ws.expert.severity >= error", "-T", "fields",
                 "-e", "frame.number", "-e", "_ws.col.Protocol", "-e", "_ws.col.Info")
    assert bad == [], bad
    # every UDP 1025 datagram is an E-Trunk hello with a good digest, sequences increase
    udp = tshark(pcap, "-Y", "udp.port == 1025", "-T", "fields", "-e", "ip.src", "-e",
                 "etrunk.seq", "-e", "etrunk.digest.status", "-e", "etrunk.priority", "-e",
                 "etrunk.system_id", "-e", "etrunk.id")
    assert udp and all(r[2] == "1" for r in udp), udp[:3]
    a = display(lab, "DeviceA", "display e-trunk 1")[0]
    from_a = [r for r in udp if r[0] == "1.1.1.1"]
    seqs = [int(r[1]) for r in from_a]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert from_a[-1][3] == str(a["priority"]) and from_a[-1][5] == "1"
    assert from_a[-1][4].replace(":", "").replace("-", "") == \
        a["system_id"].replace("-", "")
    # RBS records: the batch and real-time entries carry exactly the Receiver's groups
    rbs = tshark(pcap, "-Y", "rbs", "-T", "fields", "-e", "rbs.type", "-e", "rbs.entry.group")
    types = {t for r in rbs for t in r[0].split(",")}
    assert {"1", "2", "4", "7"} <= types, types  # OPEN, OPEN_ACK, ENTRY, KEEPALIVE
    entry_groups = {g for r in rbs if len(r) > 1 for g in r[1].split(",") if g}
    assert entry_groups == groups(3)
    # LACP on both of DeviceC's members, DeviceA's and DeviceB's actor system IDs
    lacp = tshark(pcap, "-Y", "lacp", "-T", "fields", "-e", "lacp.actor.sysid")
    assert {"00:e0:fc:12:34:55", "00:e0:fc:12:34:56"} <= {r[0] for r in lacp}
    igmp = tshark(pcap, "-Y", "igmp && frame.interface_name == \"DeviceA:Eth-Trunk1\"",
                  "-T", "fields", "-e", "igmp.type")
    assert igmp
