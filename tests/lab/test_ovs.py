"""Open vSwitch as the access switch DeviceC, and the shared LACP system ID, with traffic.

A standard switch decides alone which E-Trunk member it forwards on. Open vSwitch (3.1,
userspace datapath, `bond0` of the two members, lacp=active) attaches one partner system
per bond, and keeps a member whose carrier dropped as its choice while it is expired (3 s)
when that member's partner has the better system ID. So:

- with the seed's two system IDs, OVS stays with whichever router's system it attached while
  that router's member is current: a pull of A-C stops multicast until DeviceA's member
  has expired (3 s), and after the revert nothing is forwarded at all (DeviceB, backup again,
  is still attached and out of sync; DeviceA's member is detached);
- with one system ID on both routers, OVS holds one LAG with DeviceB's member attached but
  out of sync, and enables it as soon as DeviceB says it is in sync: a switchover costs
  milliseconds, with OVS as with the project's own DeviceC.

Correctness is checked as strictly as with our own DeviceC: who feeds the Receiver, no
duplicate, every group flowing to the end, the start state again after the revert.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lab import scenarios as sc
from lab.ovs import missing_binaries
from lab.topology import TOPOLOGIES
from tests.lab.conftest import display, wait_for
from tests.lab.helpers import (
    C_PORT,
    OUTAGE_MS,
    clean_stops,
    etrunk,
    hold_groups,
    pull_restore_die,
    start_state,
)

__all__ = ["hold_groups"]  # a fixture, used by name

OVS = TOPOLOGIES / "igmp-hot-backup-ovs" / "topology.yaml"
OVS_SHARED = TOPOLOGIES / "igmp-hot-backup-ovs-shared-id" / "topology.yaml"
SHARED = TOPOLOGIES / "igmp-hot-backup-shared-id" / "topology.yaml"
OVS_EXPIRY_MS = 3000.0  # OVS keeps an expired member 3 x its fast period (lacp.c)

needs_ovs = pytest.mark.skipif(
    bool(missing_binaries()),
    reason="Open vSwitch is not installed (`make bootstrap` installs openvswitch-switch)")


def lacp_members(lab, node: str) -> list[dict]:
    return display(lab, node, "display eth-trunk 1")[0]["members"]


@needs_ovs
def test_ovs_with_the_seeds_two_system_ids_keeps_the_partner_it_attached(
        make_lab, tmp_path: Path) -> None:
    """Why the README says: with a standard switch, one system ID. OVS attaches one partner
    system and keeps it while that partner's member is current (802.1AX: an aggregator
    stays with its LAG); DeviceB as E-Trunk backup keeps sending LACPDUs, out of sync. So
    once OVS has moved to DeviceB (here: A-C pulled, DeviceA's member expired after 3 s),
    the revert leaves no member enabled: DeviceA's is detached, DeviceB's out of sync."""
    lab = make_lab("tovsseed", sc.topology(tmp_path, "hot", base=OVS))
    wait_for(lambda: etrunk(lab, "DeviceA")["members"][0]["state"] == "Master"
             and etrunk(lab, "DeviceB")["members"][0]["state"] == "Backup", 60, "E-Trunk roles")
    time.sleep(3.0)  # both routers' LACPDUs heard by OVS
    for node in ("DeviceA", "DeviceB"):
        stats = display(lab, node, "display lacp statistics eth-trunk 1")
        assert all(m["lacpdus_received"] > 0 and m["lacpdus_dropped"] == 0
                   for m in stats["members"]), stats
    # which system OVS attached first is a race: DeviceB's (nothing forwarded from the
    # start) or DeviceA's (the pull below then costs DeviceA's member's expiry)
    before = sc.c_distributing(lab)
    t_pull = time.monotonic()
    sc.link(lab, "DeviceA", "ge0-1-2", False)
    wait_for(lambda: sc.c_distributing(lab) == [C_PORT["DeviceB"]], OVS_EXPIRY_MS / 1000 + 3,
             "OVS enables DeviceB's member")
    print(f"\nOVS, two system IDs: enabled before the pull {before}; DeviceB's member "
          f"enabled {(time.monotonic() - t_pull) * 1000:.0f} ms after it")
    sc.link(lab, "DeviceA", "ge0-1-2", True)
    wait_for(lambda: etrunk(lab, "DeviceA")["members"][0]["state"] == "Master", 15, "revert")
    time.sleep(2.5)
    lacp = lab.ovs("DeviceC").appctl(["lacp/show", "bond0"])
    assert sc.c_distributing(lab) == [], lacp
    assert "member: ge0-1-2: current detached" in lacp, lacp
    assert "member: ge0-1-3: current attached" in lacp, lacp


@needs_ovs
def test_ovs_with_one_system_id_switches_inside_one_lag(make_lab, hold_groups,
                                                         tmp_path: Path) -> None:
    lab = make_lab("tovsshared", sc.topology(tmp_path, "hot", base=OVS_SHARED))
    start_state(lab, hold_groups)
    lacp = lab.ovs("DeviceC").appctl(["lacp/show", "bond0"])
    assert "00:e0:fc:12:34:56" not in lacp, lacp
    gaps = pull_restore_die(lab, tmp_path, OUTAGE_MS)
    stops = clean_stops(lab, tmp_path)
    print(f"\nOVS, one system ID: outages (ms) {gaps}, clean stops {stops}")
    assert all(g < OUTAGE_MS for g in [*gaps.values(), *stops]), (gaps, stops)


def test_own_devicec_with_one_system_id(make_lab, hold_groups, tmp_path: Path) -> None:
    """The same shared-ID configuration against the project's DeviceC: DeviceB's member is
    attached (one LAG) but not distributing until DeviceB's E-Trunk member is master."""
    lab = make_lab("tsharedid", sc.topology(tmp_path, "hot", base=SHARED))
    start_state(lab, hold_groups)
    members = {m["name"]: m["mux"] for m in lacp_members(lab, "DeviceC")}
    assert members == {C_PORT["DeviceA"]: "DISTRIBUTING", C_PORT["DeviceB"]: "ATTACHED"}
    gaps = pull_restore_die(lab, tmp_path, OUTAGE_MS)
    stops = clean_stops(lab, tmp_path)
    print(f"\nown DeviceC, one system ID: outages (ms) {gaps}, clean stops {stops}")
    assert all(g < OUTAGE_MS for g in [*gaps.values(), *stops]), (gaps, stops)
