"""`display pim neighbor / interface / routing-table` rendered from snapshots."""

from __future__ import annotations

import json
import random

from daemon.pim.codec import GroupEntry, Hello, JoinPrune, LanPruneDelay, Source
from daemon.pim.display import (
    pim_interface_json,
    pim_neighbor_json,
    pim_routing_table_json,
    render_pim_interface,
    render_pim_neighbor,
    render_pim_routing_table,
)
from daemon.pim.machine import (
    DownstreamSnapshot,
    DownstreamState,
    InterfaceSnapshot,
    NeighborSnapshot,
    PimConfig,
    PimCounters,
    PimInterfaceConfig,
    PimRouter,
    PimSnapshot,
    StarGSnapshot,
    UpstreamState,
)

GE1, GE2, GE3 = (f"GigabitEthernet0/1/{i}" for i in (1, 2, 3))
ET = "Eth-Trunk1"
RP = "2.2.2.2"
LPD = LanPruneDelay(500, 2500)


def interface(ifname: str, address: str, dr: str | None, neighbors: int) -> InterfaceSnapshot:
    return InterfaceSnapshot(
        ifname=ifname,
        address=address,
        up=dr is not None,
        dr=dr,
        is_dr=dr == address,
        dr_priority=1,
        generation_id=0x1A2B3C4D if dr is not None else None,
        hello_period=30.0,
        hello_holdtime=105.0,
        next_hello=12.5 if dr is not None else None,
        jp_period=60.0,
        jp_holdtime=210.0,
        jp_override_interval=3.0,
        neighbor_count=neighbors,
        counters=PimCounters(10, 9, 3, 4, 5, 6, 1, 2),
        dropped={"bad-checksum": 2, "not-neighbor": 1} if ifname == GE3 else {},
    )


def device_d() -> PimSnapshot:
    """DeviceD, the RP: DeviceA joined over GE0/1/3, DeviceB (backup) over GE0/1/2."""
    return PimSnapshot(
        router_id="2.2.2.2",
        rp=RP,
        is_rp=True,
        rpf_interface=None,
        rpf_neighbor=None,
        interfaces=(
            interface(GE1, "10.0.5.2", "10.0.5.2", 0),
            interface(GE2, "10.0.23.2", "10.0.23.3", 1),
            interface(GE3, "10.0.12.2", "10.0.12.2", 1),
        ),
        neighbors=(
            NeighborSnapshot(GE2, "10.0.23.3", 10250.0, 95.2, 105, 1, 77, LPD, ()),
            NeighborSnapshot(GE3, "10.0.12.1", 826.9, 104.0, 105, 1, 78, LPD, ()),
        ),
        groups=(
            StarGSnapshot(
                group="225.1.1.1",
                rp=RP,
                rp_is_local=True,
                upstream_state=UpstreamState.NOT_JOINED,
                rpf_interface=None,
                rpf_neighbor=None,
                rpf_prime_neighbor=None,
                uptime=826.0,
                join_timer=None,
                downstream=(
                    DownstreamSnapshot(GE2, "pim-sm", DownstreamState.JOIN, 700.0, 150.4, None),
                    DownstreamSnapshot(GE3, "pim-sm", DownstreamState.JOIN, 826.0, 164.0, None),
                ),
                local_members=(),
                backup_members=(),
            ),
        ),
        dropped={},
    )


def device_b() -> PimSnapshot:
    """DeviceB, the E-Trunk backup: Eth-Trunk1 down, the group held for DeviceA."""
    return PimSnapshot(
        router_id="3.3.3.3",
        rp=RP,
        is_rp=False,
        rpf_interface=GE2,
        rpf_neighbor="10.0.23.2",
        interfaces=(
            interface(GE1, "10.0.13.3", "10.0.13.3", 1),
            interface(GE2, "10.0.23.3", "10.0.23.3", 1),
            interface(ET, "10.0.35.3", None, 0),
        ),
        neighbors=(
            NeighborSnapshot(GE1, "10.0.13.1", 90000.0, None, 0xFFFF, None, None, None, ()),
        ),
        groups=(
            StarGSnapshot(
                group="225.1.1.1",
                rp=RP,
                rp_is_local=False,
                upstream_state=UpstreamState.JOINED,
                rpf_interface=GE2,
                rpf_neighbor="10.0.23.2",
                rpf_prime_neighbor="10.0.23.2",
                uptime=700.0,
                join_timer=20.0,
                downstream=(
                    DownstreamSnapshot(ET, "backup", DownstreamState.NO_INFO, 700.0, None, None),
                ),
                local_members=(),
                backup_members=(ET,),
            ),
            StarGSnapshot(
                group="225.1.1.10",
                rp=RP,
                rp_is_local=False,
                upstream_state=UpstreamState.NOT_JOINED,
                rpf_interface=GE2,
                rpf_neighbor="10.0.23.2",
                rpf_prime_neighbor="10.0.23.2",
                uptime=5.0,
                join_timer=None,
                downstream=(),
                local_members=(ET,),
                backup_members=(),
            ),
        ),
        dropped={},
    )


def test_display_pim_neighbor() -> None:
    assert render_pim_neighbor(device_d()) == "\n".join(
        [
            " VPN-Instance: public net",
            " Total Number of Neighbors = 2",
            "",
            " Neighbor        Interface           Uptime   Expires  Dr-Priority",
            " 10.0.23.3       GE0/1/2             02:50:50 00:01:36 1",
            " 10.0.12.1       GE0/1/3             00:13:46 00:01:44 1",
        ]
    )


def test_neighbor_that_never_expires_and_sends_no_priority() -> None:
    text = render_pim_neighbor(device_b(), interface=GE1)
    assert text.splitlines()[1] == " Total Number of Neighbors = 1"
    assert text.splitlines()[-1] == " 10.0.13.1       GE0/1/1             1d01h    never    -"
    assert render_pim_neighbor(device_b(), interface=ET).splitlines()[1].endswith("= 0")


def test_display_pim_routing_table_on_the_rp() -> None:
    assert render_pim_routing_table(device_d()) == "\n".join(
        [
            " VPN-Instance: public net",
            " Total 1 (*, G) entry; 0 (S, G) entry",
            "",
            " (*, 225.1.1.1)",
            "     RP: 2.2.2.2 (local)",
            "     Protocol: pim-sm, Flag: WC",
            "     UpTime: 00:13:46",
            "     Upstream interface: Register",
            "         Upstream neighbor: NULL",
            "         RPF prime neighbor: NULL",
            "     Downstream interface(s) information:",
            "     Total number of downstreams: 2",
            "        1: GigabitEthernet0/1/2",
            "             Protocol: pim-sm, UpTime: 00:11:40, Expires: 00:02:31",
            "        2: GigabitEthernet0/1/3",
            "             Protocol: pim-sm, UpTime: 00:13:46, Expires: 00:02:44",
        ]
    )


def test_display_pim_routing_table_on_the_backup_device() -> None:
    assert render_pim_routing_table(device_b()) == "\n".join(
        [
            " VPN-Instance: public net",
            " Total 2 (*, G) entries; 0 (S, G) entry",
            "",
            " (*, 225.1.1.1)",
            "     RP: 2.2.2.2",
            "     Protocol: pim-sm, Flag: WC",
            "     UpTime: 00:11:40",
            "     Upstream interface: GigabitEthernet0/1/2",
            "         Upstream neighbor: 10.0.23.2",
            "         RPF prime neighbor: 10.0.23.2",
            "     Downstream interface(s) information:",
            "     Total number of downstreams: 1",
            "        1: Eth-Trunk1",
            "             Protocol: backup, UpTime: 00:11:40, Expires: -",
            "",
            " (*, 225.1.1.10)",
            "     RP: 2.2.2.2",
            "     Protocol: pim-sm, Flag: WC",
            "     UpTime: 00:00:05",
            "     Upstream interface: GigabitEthernet0/1/2",
            "         Upstream neighbor: 10.0.23.2",
            "         RPF prime neighbor: 10.0.23.2",
            "     Downstream interface(s) information: None",
        ]
    )
    one = render_pim_routing_table(device_b(), group="225.1.1.10")
    assert one.splitlines()[1] == " Total 1 (*, G) entry; 0 (S, G) entry"
    none = render_pim_routing_table(device_b(), group="239.9.9.9")
    assert none == " VPN-Instance: public net\n Total 0 (*, G) entry; 0 (S, G) entry"


def test_display_pim_interface() -> None:
    assert render_pim_interface(device_b()) == "\n".join(
        [
            " VPN-Instance: public net",
            " Interface           State NbrCnt HelloInt   DR-Pri     DR-Address",
            " GE0/1/1             up    1      30         1          10.0.13.3  (local)",
            " GE0/1/2             up    1      30         1          10.0.23.3  (local)",
            " Eth-Trunk1          down  0      30         1          -",
        ]
    )
    verbose = render_pim_interface(device_d(), interface=GE3, verbose=True)
    assert verbose == "\n".join(
        [
            " VPN-Instance: public net",
            " GigabitEthernet0/1/3 (10.0.12.2):",
            "     PIM version: 2, mode: sparse, state: up",
            "     PIM DR: 10.0.12.2 (local), DR priority: 1",
            "     PIM neighbor count: 1",
            "     PIM hello interval: 30 s, hello holdtime: 105 s, next hello: 00:00:13",
            "     PIM generation ID: 0x1a2b3c4d",
            "     PIM join/prune interval: 60 s, holdtime: 210 s, override interval: 3 s",
            "     Received: hellos 9, join/prunes 4 (6 joins, 2 prunes)",
            "     Sent: hellos 10, join/prunes 3 (5 joins, 1 prunes)",
            "     Dropped: 3 (bad-checksum 2, not-neighbor 1)",
        ]
    )
    down = render_pim_interface(device_b(), interface=ET, verbose=True)
    assert "state: down" in down and "PIM DR: -," in down and "generation ID: -" in down


def test_json_forms() -> None:
    neighbors = pim_neighbor_json(device_d())
    assert [n["neighbor"] for n in neighbors["neighbors"]] == ["10.0.23.3", "10.0.12.1"]
    assert neighbors["neighbors"][0]["expires"] == "00:01:36"
    assert neighbors["neighbors"][0]["propagation_delay_ms"] == 500
    table = pim_routing_table_json(device_b())
    assert (table["star_g_entries"], table["sg_entries"]) == (2, 0)
    first = table["entries"][0]
    assert first["upstream_interface"] == GE2 and first["upstream_state"] == "joined"
    assert first["backup_members"] == [ET]
    assert first["downstream"] == [
        {
            "interface": ET,
            "protocol": "backup",
            "state": "no_info",
            "uptime": "00:11:40",
            "uptime_s": 700.0,
            "expires": "-",
            "expires_s": None,
            "prune_pending_s": None,
        }
    ]
    rp = pim_routing_table_json(device_d())["entries"][0]
    assert (rp["upstream_interface"], rp["rp_is_local"]) == ("Register", True)
    interfaces = pim_interface_json(device_d(), interface=GE3)
    assert interfaces[0]["counters"]["joins_received"] == 6
    assert interfaces[0]["dropped_by_reason"] == {"bad-checksum": 2, "not-neighbor": 1}
    for doc in (neighbors, table, interfaces, pim_neighbor_json(device_b())):
        json.dumps(doc)


def test_live_machine_snapshots_render() -> None:
    config = PimConfig(
        "2.2.2.2",
        RP,
        (PimInterfaceConfig(GE3, "10.0.12.2"), PimInterfaceConfig(GE1, "10.0.5.2")),
    )
    d = PimRouter(config, frozenset({RP}), random.Random(4))
    d.interface_up(GE3, 0.0)
    d.interface_up(GE1, 0.0)
    d.packet_received(GE3, "10.0.12.1", Hello(105, LPD, 1, 9), 1.0)
    join = JoinPrune("10.0.12.2", 210, (GroupEntry("225.1.1.1", (Source.rp_tree(RP),)),))
    d.packet_received(GE3, "10.0.12.1", join, 2.0)
    snap = d.snapshot(62.0)
    assert render_pim_neighbor(snap).splitlines()[-1] == (
        " 10.0.12.1       GE0/1/3             00:01:01 00:00:44 1"
    )
    table = render_pim_routing_table(snap)
    assert "     RP: 2.2.2.2 (local)" in table
    assert "             Protocol: pim-sm, UpTime: 00:01:00, Expires: 00:02:30" in table
    assert " GE0/1/3             up    1      30         1          10.0.12.2" in (
        render_pim_interface(snap)
    )


def test_sources_registers_and_asserts_render() -> None:
    """(S,G) entries with their flags, Register state and Asserts, from live machines."""
    from daemon.pim.codec import Assert, AssertMetric
    from tests.unit.test_pim_register import PACKET, RegLab
    from tests.unit.test_pim_register import S as FHR_SOURCE

    lab = RegLab()
    lab.up()
    lab.run_until(10.0)
    lab.do("B", "local_members", "225.1.1.1", ET, True)
    lab.run_until(11.0)
    lab.do("A", "data_arrived", FHR_SOURCE, "225.1.1.1", ET, True)
    lab.do("A", "whole_packet", PACKET)
    lab.do("D", "data_arrived", FHR_SOURCE, "225.1.1.1", GE3)
    lab.do("A", "whole_packet", PACKET)  # answered with Register-Stop
    lab.feed("D", lab.r["D"].packet_received(
        GE2, "10.0.23.9", Assert("225.1.1.1", FHR_SOURCE, AssertMetric(False, 0, 0)),
        lab.now))
    a_text = render_pim_routing_table(lab.r["A"].snapshot(lab.now))
    assert "Total 0 (*, G) entry; 1 (S, G) entry" in a_text  # the first-hop router
    assert "Register state: prune, Register-Stop timer" in a_text
    d = lab.r["D"].snapshot(lab.now)
    d_text = render_pim_routing_table(d)
    # D lost its only outgoing interface to the Assert: no reason left to stay on S's tree
    assert f" ({FHR_SOURCE}, 225.1.1.1)\n     Protocol: pim-sm, Flag: NIL" in d_text
    assert "Registered by: 10.0.12.1" in d_text
    assert f"  ({FHR_SOURCE}, 225.1.1.1) {GE2}: loser, winner 10.0.23.9 (preference 0, " \
        "metric 0), expires 00:03:00" in d_text
    table = pim_routing_table_json(d)
    json.dumps(table)
    assert table["sg_entries"] == 1 and table["registers"] == {
        "registers-received": 2, "register-stops-sent": 1}
    assert table["asserts"][0]["state"] == "loser"
    sg = next(e for e in table["entries"] if e["source"] == FHR_SOURCE)
    assert (sg["spt_bit"], sg["mfc_input"], sg["registered_by"]) == (False, "Register",
                                                                     "10.0.12.1")
