"""A source behind a first-hop router that is not the RP: Register, Register-Stop, then native
forwarding, read off the wire with tshark on the DeviceE-DeviceD link.

Three pairings (lab/topologies/igmp-hot-backup-fhr*): the daemon on both ends; the daemon
registering to FRR's RP; FRR registering to the daemon's RP. In each, every group reaches the
Receiver with nothing twice, DeviceE tunnels each group's first packets to 2.2.2.2, the RP
answers each group with a Register-Stop to DeviceE, and after it the packets cross the link
natively while no more (non-null) Registers do.
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
from lab.capture import Endpoint, MultiCapture
from lab.topology import TOPOLOGIES
from tests.lab.helpers import (
    GROUPS,
    OUTAGE_MS,
    assert_delivered,
    begin,
    hold_groups,
    pull_restore_die,
    start_state,
)

__all__ = ["hold_groups"]  # a fixture, used by name

E_ADDRS, RP = {"10.0.45.4", "10.0.5.1", "4.4.4.4"}, "2.2.2.2"  # any of DeviceE's may source
FRR_MISSING = bool(frr.missing_binaries(("zebra", "pimd")))
VARIANTS = [
    pytest.param("igmp-hot-backup-fhr", "tregown", id="daemon-both"),
    pytest.param("igmp-hot-backup-fhr-frr-rp", "tregfrrrp", id="frr-rp",
                 marks=pytest.mark.skipif(FRR_MISSING, reason="FRR is not installed")),
    pytest.param("igmp-hot-backup-fhr-frr-dr", "tregfrrdr", id="frr-dr",
                 marks=pytest.mark.skipif(FRR_MISSING, reason="FRR is not installed")),
]


def pim_and_data(pcap: Path) -> list[dict]:
    """Every PIM Register/Register-Stop and UDP datagram to a group on the link, in order:
    time, PIM type (None for native data), outer source/destination, inner group."""
    fields = ["frame.time_epoch", "pim.type", "ip.src", "ip.dst", "udp.dstport"]
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "pim.type == 1 || pim.type == 2 || "
         "(udp && ip.dst >= 224.0.0.0 && !pim)", "-T", "fields", "-E", "separator=|",
         "-E", "aggregator=,", *[a for f in fields for a in ("-e", f)]],
        capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        t, kind, src, dst, _ = line.split("|")
        srcs, dsts = src.split(","), dst.split(",")
        rows.append({"t": float(t), "type": int(kind) if kind else None,
                     "src": srcs[0], "dst": dsts[0], "inner": dsts[-1]})
    return rows


def register_stop_groups(pcap: Path, to: set[str]) -> dict[float, str]:
    """Register-Stops, each to an address Registers came from: time -> its group."""
    out = subprocess.run(["tshark", "-r", str(pcap), "-Y", "pim.type == 2", "-T", "fields",
                          "-e", "frame.time_epoch", "-e", "pim.group", "-e", "ip.dst"],
                         capture_output=True, text=True, check=True).stdout
    stops = {}
    for line in out.splitlines():
        t, group, dst = line.split("\t")
        assert dst in to, line  # to the DR that registered
        stops[float(t)] = group.split(",")[0].split("/")[0]
    return stops


@pytest.mark.parametrize(("variant", "prefix"), VARIANTS)
def test_register_register_stop_then_native(make_lab, hold_groups, tmp_path: Path,
                                            variant: str, prefix: str) -> None:
    lab = make_lab(prefix, sc.topology(tmp_path, "hot", base=TOPOLOGIES / variant /
                                       "topology.yaml"))
    start_state(lab, hold_groups)
    pcap = tmp_path / "e-d.pcapng"
    cap = MultiCapture(lab, [Endpoint("DeviceD", "GigabitEthernet0/1/1", "ge0-1-1")], pcap)
    cap.start()
    try:
        traffic = begin(lab, tmp_path, 6.0)
        try:
            report = traffic.finish()
        finally:
            traffic.kill()
        end_epoch = time.time() - (time.monotonic_ns() - traffic.start_ns) / 1e9 \
            + traffic.seconds  # when the sender stopped, on the capture's clock
        time.sleep(0.5)
    finally:
        cap.stop()
    assert_delivered(report, traffic)
    rows = pim_and_data(pcap)
    registers = [r for r in rows if r["type"] == 1 and r["inner"] in GROUPS]
    assert {r["inner"] for r in registers} == GROUPS, "a Register for every group"
    assert {r["src"] for r in registers} <= E_ADDRS and {r["dst"] for r in registers} == {RP}
    stops = register_stop_groups(pcap, {r["src"] for r in registers})
    assert set(stops.values()) == GROUPS, "a Register-Stop for every group"
    tunnelled_ms = {}
    for group in GROUPS:
        stop_t = min(t for t, g in stops.items() if g == group)
        first_reg = min(r["t"] for r in registers if r["inner"] == group)
        native = [r["t"] for r in rows if r["type"] is None and r["dst"] == group]
        assert first_reg < stop_t
        tunnelled_ms[group] = round((stop_t - first_reg) * 1000, 1)
        assert native and min(native) < stop_t + 0.5, "native forwarding from the stop on"
        late = [r["t"] for r in registers if r["inner"] == group and r["t"] > stop_t + 0.5]
        assert late == [], f"{group}: Registers {len(late)} after the Register-Stop"
        assert max(native) > end_epoch - 1.0, "natively to the end"
    print(f"\n{variant}: {len(registers)} Registers, {len(stops)} Register-Stops, first "
          f"Register to Register-Stop (ms) {tunnelled_ms}, "
          f"{sum(r['type'] is None for r in rows)} native packets on E-D, lost "
          f"{ {g: r['lost'] for g, r in report.items()} }")


LHR = TOPOLOGIES / "igmp-hot-backup-fhr-frr-lhr" / "topology.yaml"


def a_source_state(lab, group: str) -> dict | None:
    entries = sc.show(lab, "DeviceA", "display pim routing-table")["entries"]
    return next((e for e in entries if e["source"] != "*" and e["group"] == group), None)


def source_state(lab, node: str, group: str) -> dict | None:
    entries = sc.show(lab, node, "display pim routing-table")["entries"]
    return next((e for e in entries if e["source"] != "*" and e["group"] == group), None)


@pytest.mark.skipif(FRR_MISSING, reason="FRR is not installed")
def test_frr_last_hop_switches_to_the_source_tree_and_prunes_it_off_ours(
        make_lab, hold_groups, tmp_path: Path) -> None:
    """FRR's DeviceF reaches the RP through DeviceA and the Source through DeviceE: after its
    switch to the Source's tree, DeviceE feeds it (an (S,G) Join) and its Prune(S,G,rpt)
    takes the Source's packets off DeviceA's link to it, while the (*,G) Join and the main
    Receiver's share stay. Both receivers get every packet once."""
    lab = make_lab("tregfrrlhr", sc.topology(tmp_path, "hot", base=LHR))
    start_state(lab, hold_groups)
    group = sorted(GROUPS)[0]
    pcap = tmp_path / "a-f.pcapng"
    cap = MultiCapture(lab, [Endpoint("DeviceF", "ge0-1-1", "ge0-1-1")], pcap)
    cap.start()
    r2 = subprocess.Popen(
        netns.exec_argv(lab.ns("Receiver2"), [sys.executable, "-m", "lab.traffic", "recv",
                                               "--ifname", "eth0", "--duration", "60",
                                               "--group", group]),
        stdout=subprocess.PIPE, text=True, cwd=sc.ROOT)
    traffic = sc.Traffic(lab, 10.0, rate=200, groups=(group,))
    try:
        assert r2.stdout is not None
        r2.stdout.readline()  # joined
        traffic.start_receiver()
        time.sleep(2.0)  # DeviceF's (*,G) Join reaches DeviceA
        traffic.start_sender()
        sc.wait_until(lambda: (st := source_state(lab, "DeviceA", group)) is not None
                      and st["rpt_pruned"] == ["GigabitEthernet0/1/4"], 8,
                      "DeviceF's Prune(S,G,rpt) on DeviceA")
        pruned_at = time.time()
        a = source_state(lab, "DeviceA", group)
        e = source_state(lab, "DeviceE", group)
        report = traffic.finish()
        r2.send_signal(signal.SIGTERM)
        second = json.loads(r2.communicate(timeout=30)[0].splitlines()[-1])["streams"][0]
    finally:
        traffic.kill()
        if r2.poll() is None:
            r2.kill()
            r2.wait()
        cap.stop()
    assert a is not None and [d["interface"] for d in a["downstream"]] == ["Eth-Trunk1"]
    assert e is not None and {"interface": "GigabitEthernet0/1/3", "protocol": "pim-sm"} \
        in e["downstream"]
    last = int(traffic.seconds * traffic.rate) - 1
    assert (report[group]["duplicates"], report[group]["last_seq"]) == (0, last), report
    assert (second["duplicates"], second["last_seq"]) == (0, last), second
    on_af = [r["t"] for r in pim_and_data(pcap) if r["type"] is None and r["dst"] == group]
    assert on_af, "the shared tree fed DeviceF first"
    assert max(on_af) < pruned_at + 0.5, "DeviceA still sends the Source's packets to DeviceF"
    print(f"\nFRR last hop: {len(on_af)} packets on A-F before the Prune(S,G,rpt); "
          f"Receiver2 {second}")


@pytest.mark.parametrize(("variant", "prefix"), [
    pytest.param(*p.values[:1], p.values[1] + "fo", id=p.id, marks=p.marks) for p in VARIANTS])
def test_hot_backup_failovers_with_the_source_behind_its_own_router(
        make_lab, hold_groups, tmp_path: Path, variant: str, prefix: str) -> None:
    """The seed's failovers (pull A-C, its revert, DeviceA dies and returns) with the stream
    registered by DeviceE and switched to the Source's tree: the same bounds, the same
    strict delivery checks as the seed's."""
    lab = make_lab(prefix, sc.topology(tmp_path, "hot", base=TOPOLOGIES / variant /
                                       "topology.yaml"))
    start_state(lab, hold_groups)
    gaps = pull_restore_die(lab, tmp_path, OUTAGE_MS)
    print(f"\n{variant}: outages (ms) {gaps}")
    assert all(g < OUTAGE_MS for g in gaps.values()), gaps
