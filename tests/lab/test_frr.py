"""FRR as DeviceD: a real RP, PIM neighbour and BFD peer next to the daemon.

FRR 8.4's pimd is the seed's RP (2.2.2.2) and the Source's first-hop router, its bfdd runs
single-hop BFD (100 ms x 3) toward DeviceA and DeviceB, whose sessions learn FRR's
discriminators (`bind peer-ip ... auto`). IPv6 is on in every namespace, so FRR's Hellos
carry an Address List of IPv6 addresses, as FRR sends by default. What is checked: both
sides see each other as PIM neighbours and agree on one DR per link, the routers' (*,G)
Joins reach FRR's RP and multicast flows, their (S,G) Joins follow (the switch to the
Source's tree), the hot-backup failovers keep their bounds with FRR
as the RP, and a killed bfdd is seen Down within the detection time.
"""

from __future__ import annotations

import json
import os
import signal
import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from lab import frr
from lab import scenarios as sc
from lab.supervisor import Lab, LabError
from lab.topology import TOPOLOGIES, load_topology
from tests.lab.conftest import display, in_ns, netns_names, unique, wait_for
from tests.lab.helpers import GROUPS, OUTAGE_MS, hold_groups, pull_restore_die, start_state

__all__ = ["hold_groups"]  # a fixture, used by name

FRR_D = TOPOLOGIES / "igmp-hot-backup-frr" / "topology.yaml"
LINKS = {"DeviceA": ("10.0.12.1", "10.0.12.2", "ge0-1-3", "atod"),
         "DeviceB": ("10.0.23.3", "10.0.23.2", "ge0-1-2", "btod")}
SOURCE = "10.0.5.100"
DETECT_MS = 300.0  # FRR's 100 ms transmit interval x our detect multiplier 3

needs_frr = pytest.mark.skipif(
    bool(frr.missing_binaries(("zebra", "pimd", "bfdd"))),
    reason="FRR is not installed (`make bootstrap` installs frr)")


def vtysh_json(lab, command: str):
    return json.loads(lab.frr("DeviceD").cli(command + " json"))


def frr_neighbors(lab) -> dict[str, set[str]]:
    return {itf: set(nbrs) for itf, nbrs in vtysh_json(lab, "show ip pim neighbor").items()}


def our_session(lab, node: str) -> dict:
    name = LINKS[node][3]
    return next(s for s in display(lab, node, "display bfd session all")["sessions"]
                if s["name"] == name)


def frr_peers_up(lab) -> bool:
    peers = {p["peer"]: p["status"] for p in vtysh_json(lab, "show bfd peers")}
    return peers == {LINKS["DeviceA"][0]: "up", LINKS["DeviceB"][0]: "up"}


def bfdd(lab):
    return next(p for p in lab.state().procs
                if p.node == "DeviceD" and p.argv[0].endswith("/bfdd"))


@needs_frr
def test_frr_as_the_rp_pim_and_bfd_both_ways_and_the_failovers(
        make_lab, hold_groups, tmp_path: Path) -> None:
    lab = make_lab("tfrrd", sc.topology(tmp_path, "hot", base=FRR_D))
    for node in ("DeviceA", "DeviceD"):
        out = in_ns(lab, node, "sysctl", "-n", "net.ipv6.conf.all.disable_ipv6", check=True)
        assert out.stdout.strip() == "0"

    # PIM neighbours both ways, FRR's IPv6 Address List accepted, one DR per link
    want = {"ge0-1-3": {"10.0.12.1"}, "ge0-1-2": {"10.0.23.3"}}
    wait_for(lambda: frr_neighbors(lab) == want | {"ge0-1-1": set(), "lo": set()}, 30,
             "FRR's PIM neighbours")
    for node, (mine, theirs, _, _) in LINKS.items():
        nbrs = display(lab, node, "display pim neighbor")["neighbors"]
        assert theirs in {n["neighbor"] for n in nbrs}, nbrs
        itf = next(i for i in display(lab, node, "display pim interface")
                   if i["address"] == mine)
        assert itf["counters"]["hellos_received"] > 0
        assert itf["dropped_by_reason"] == {}, itf
        dr = max(mine, theirs, key=IPv4Address)  # equal priorities: the higher address
        assert itf["dr"] == dr
        assert vtysh_json(lab, "show ip pim interface")[LINKS[node][2]]["pimDesignatedRouter"] == dr

    # BFD up both ways, the auto sessions hold FRR's discriminators
    wait_for(lambda: frr_peers_up(lab), 30, "FRR's BFD peers up")
    frr_ids = {p["peer"]: p["id"] for p in vtysh_json(lab, "show bfd peers")}
    for node, (mine, _, _, _) in LINKS.items():
        wait_for(lambda n=node: our_session(lab, n)["state"] == "Up", 10, f"{node}'s session")
        assert our_session(lab, node)["remote_discriminator"] == frr_ids[mine]

    # (*,G) Joins from both routers reach FRR's RP; traffic flows through it
    start_state(lab, hold_groups)
    wait_for(lambda: set(vtysh_json(lab, "show ip pim join").get("ge0-1-3", {})) >= GROUPS, 20,
             "DeviceA's (*,G) joins on FRR")
    gaps = pull_restore_die(lab, tmp_path, OUTAGE_MS)
    print(f"\nFRR as DeviceD: outages (ms) {gaps}")
    assert all(g < OUTAGE_MS for g in gaps.values()), gaps
    # both routers switched to the Source's tree: FRR holds their (S,G) Joins too
    joins = vtysh_json(lab, "show ip pim join")
    for node, (_, _, port, _) in LINKS.items():
        assert all(SOURCE in joins[port][g] for g in GROUPS), (node, joins[port])

    # a killed bfdd: both routers' sessions Down within the detection time (generous bound)
    wait_for(lambda: all(our_session(lab, n)["state"] == "Up" for n in LINKS), 10, "BFD up")
    since = time.monotonic()
    os.kill(bfdd(lab).pid, signal.SIGKILL)
    wait_for(lambda: all(our_session(lab, n)["state"] == "Down" for n in LINKS),
             DETECT_MS / 1000 + 2, "BFD down after bfdd was killed")
    downs = {e["node"]: (float(e["mono"]) - since) * 1000
             for e in sc.control_events(lab, since) if e.get("msg") == "bfd session state"
             and e.get("session") in ("atod", "btod") and e.get("new") == "DOWN"}
    print(f"bfdd killed: sessions Down after {downs} ms (detection time {DETECT_MS:.0f} ms)")
    assert set(downs) == set(LINKS)
    # FRR's last packet left at most one interval (100 ms) before the kill
    assert all(DETECT_MS - 150 < ms < DETECT_MS + 300 for ms in downs.values()), downs


@needs_frr
def test_a_broken_frr_conf_stops_the_start_before_anything_is_made(tmp_path: Path) -> None:
    """vtysh's dry run names the line; no namespace, process or state is left behind."""
    topo_path = sc.topology(tmp_path, "hot", base=FRR_D)
    conf = topo_path.parent / "DeviceD.frr"
    conf.write_text(conf.read_text().replace(" ip pim\n", " ip pim hello-everything\n", 1))
    lab = Lab(unique("tfrrbad"))
    before = netns_names()
    try:
        with pytest.raises(LabError, match=r"DeviceD: DeviceD.frr: vtysh rejects it:\n"
                                           r"line 8: % Unknown command"):
            lab.up(load_topology(topo_path))
        assert not lab.exists()
        assert netns_names() == before
    finally:
        lab.down()
