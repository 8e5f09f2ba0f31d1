"""`display igmp group` / `display igmp interface` rendered from live machine snapshots."""

from __future__ import annotations

import json

from daemon.igmp.codec import GroupRecord, IpIgmp, Query, RecordType, V2Report, V3Report
from daemon.igmp.display import (
    RemoteGroup,
    igmp_group_json,
    igmp_interface_json,
    render_igmp_group,
    render_igmp_interface,
)
from daemon.igmp.machine import IgmpConfig, IgmpInterface, IgmpSnapshot


def report(group: str, src: str) -> IpIgmp:
    return IpIgmp(src, group, 1, True, V2Report(group))


def device_a(now: float = 146.0) -> IgmpSnapshot:
    """DeviceA's Eth-Trunk1 as in the seed, with two hosts behind DeviceC."""
    m = IgmpInterface(IgmpConfig(ifname="Eth-Trunk1", address="10.0.15.1"))
    m.start(0.0)
    m.packet_received(report("225.1.1.1", "10.0.15.100"), 0.0)
    m.packet_received(report("225.1.1.2", "10.0.15.101"), 100.0)
    m.packet_received(report("225.1.1.1", "10.0.15.100"), 110.0)
    m.tick(now)
    return m.snapshot(now)


def other_interface(now: float = 146.0) -> IgmpSnapshot:
    m = IgmpInterface(IgmpConfig(ifname="GigabitEthernet0/1/1", address="10.0.13.1", version=3))
    m.start(0.0)
    rec = GroupRecord(RecordType.MODE_IS_INCLUDE, "232.1.1.1", ("10.0.5.100",))
    m.packet_received(IpIgmp("10.0.13.9", "224.0.0.22", 1, True, V3Report((rec,))), 140.0)
    return m.snapshot(now)


REMOTE = [
    RemoteGroup("Eth-Trunk1", "225.1.1.10", "10.0.15.102", 3605.0),
    RemoteGroup("Eth-Trunk1", "225.1.1.3", "10.0.15.100", 59.9, "include", frozenset({"10.0.5.2"})),
]


def test_display_igmp_group_matches_vrp_layout() -> None:
    assert render_igmp_group([device_a()]) == "\n".join(
        [
            "Interface group report information of VPN-Instance: public net",
            " Eth-Trunk1(10.0.15.1):",
            "  Total 2 IGMP Groups reported",
            "   Group Address   Last Reporter   Uptime      Expires",
            "   225.1.1.1       10.0.15.100     00:02:26    00:01:34",
            "   225.1.1.2       10.0.15.101     00:00:46    00:01:24",
        ]
    )


def test_remote_backup_groups_get_their_own_section() -> None:
    text = render_igmp_group([device_a()], REMOTE)
    assert text.endswith(
        "\n".join(
            [
                "   225.1.1.2       10.0.15.101     00:00:46    00:01:24",
                "",
                "Interface group report information of remote backup",
                " Eth-Trunk1:",
                "  Total 2 IGMP Groups learned from the backup peer",
                "   Group Address   Last Reporter   Uptime      Mode",
                "   225.1.1.3       10.0.15.100     00:00:59    include",
                "   225.1.1.10      10.0.15.102     01:00:05    exclude",
            ]
        )
    )


def test_backup_device_with_its_trunk_down_shows_only_remote_groups() -> None:
    down = IgmpInterface(IgmpConfig(ifname="Eth-Trunk1", address="10.0.35.3")).snapshot(5.0)
    text = render_igmp_group([down], REMOTE[:1])
    assert text.splitlines() == [
        "Interface group report information of VPN-Instance: public net",
        "",
        "Interface group report information of remote backup",
        " Eth-Trunk1:",
        "  Total 1 IGMP Group learned from the backup peer",
        "   Group Address   Last Reporter   Uptime      Mode",
        "   225.1.1.10      10.0.15.102     01:00:05    exclude",
    ]


def test_interface_filter_applies_to_local_and_remote_groups() -> None:
    snaps = [device_a(), other_interface()]
    text = render_igmp_group(snaps, REMOTE, interface="GigabitEthernet0/1/1")
    assert text.splitlines() == [
        "Interface group report information of VPN-Instance: public net",
        " GigabitEthernet0/1/1(10.0.13.1):",
        "  Total 1 IGMP Group reported",
        "   Group Address   Last Reporter   Uptime      Expires",
        "   232.1.1.1       10.0.13.9       00:00:06    00:02:04",
    ]


def test_verbose_group_shows_mode_sources_and_timers() -> None:
    text = render_igmp_group([other_interface()], REMOTE, verbose=True)
    assert (
        "\n".join(
            [
                "   Group: 232.1.1.1",
                "     Uptime: 00:00:06",
                "     Expires: 00:02:04",
                "     Last reporter: 10.0.13.9",
                "     Last-member-query-counter: 0",
                "     Group mode: include",
                "     Compatibility mode: IGMPv3",
                "     Version1-host-present-timer-expiry: off",
                "     Version2-host-present-timer-expiry: off",
                "     Source list:",
                "       10.0.5.100      Expires: 00:02:04",
            ]
        )
        in text
    )
    assert "   225.1.1.3       10.0.15.100     00:00:59    include\n     Source: 10.0.5.2" in text


def test_display_igmp_interface_querier() -> None:
    assert render_igmp_interface([device_a()]) == "\n".join(
        [
            "Interface information of VPN-Instance: public net",
            " Eth-Trunk1(10.0.15.1):",
            "   IGMP is enabled",
            "   Current IGMP version is 2",
            "   IGMP state: up",
            "   IGMP group policy: none",
            "   IGMP limit: -",
            "   Value of query interval for IGMP (negotiated): -",
            "   Value of query interval for IGMP (configured): 60 s",
            "   Value of other querier timeout for IGMP: 0 s",
            "   Value of maximum query response time for IGMP: 10 s",
            "   Querier for IGMP: 10.0.15.1 (this router)",
            "  Total 2 IGMP Groups reported",
        ]
    )


def non_querier() -> IgmpSnapshot:
    m = IgmpInterface(IgmpConfig(ifname="Eth-Trunk1", address="10.0.15.3", version=3))
    m.start(0.0)
    q = Query.v3(10, query_interval=30)
    m.packet_received(IpIgmp("10.0.15.1", "224.0.0.1", 1, True, q), 1.0)
    m.count_drop("bad-checksum")
    m.count_drop("bad-checksum")
    m.count_drop("short")
    return m.snapshot(10.5)


def test_display_igmp_interface_non_querier_and_down() -> None:
    down = IgmpInterface(IgmpConfig(ifname="Eth-Trunk2", address="10.0.16.1")).snapshot(0.0)
    lines = render_igmp_interface([non_querier(), down]).splitlines()
    assert lines[1:14] == [
        " Eth-Trunk1(10.0.15.3):",
        "   IGMP is enabled",
        "   Current IGMP version is 3",
        "   IGMP state: up",
        "   IGMP group policy: none",
        "   IGMP limit: -",
        "   Value of query interval for IGMP (negotiated): 30 s",
        "   Value of query interval for IGMP (configured): 60 s",
        "   Value of other querier timeout for IGMP: 56 s",  # 2 x 30 + 5 - 9.5, rounded up
        "   Value of maximum query response time for IGMP: 10 s",
        "   Querier for IGMP: 10.0.15.1",
        "  Total 0 IGMP Groups reported",
        " Eth-Trunk2(10.0.16.1):",
    ]
    assert "   IGMP state: down" in lines
    assert "   Querier for IGMP: -" in lines
    only = render_igmp_interface([non_querier(), down], interface="Eth-Trunk2")
    assert "Eth-Trunk1" not in only


def test_display_igmp_interface_verbose_shows_timers_counters_and_drops() -> None:
    text = render_igmp_interface([non_querier()], verbose=True)
    for line in [
        "   Value of robustness for IGMP: 2 (configured 2)",
        "   Value of startup query interval for IGMP: 15 s",
        "   Value of last member query interval for IGMP: 1 s",
        "   Value of other querier present interval for IGMP: 65 s",
        "   Value of group membership interval for IGMP: 70 s",
        "   General query timer expiry: off",
        "   Other querier present timer expiry: 00:00:56",
        "   Received: queries 1, v1 reports 0, v2 reports 0, v3 reports 0, leaves 0",
        "   Sent: general queries 1, group-specific queries 0, group-and-source-specific queries 0",
        "   Dropped: 3 (bad-checksum 2, short 1)",
    ]:
        assert line in text.splitlines(), line


def test_json_forms_carry_the_same_content() -> None:
    groups = igmp_group_json([device_a(), other_interface()], REMOTE, interface="Eth-Trunk1")
    json.dumps(groups)  # plain data
    assert [i["interface"] for i in groups["interfaces"]] == ["Eth-Trunk1"]
    g1 = groups["interfaces"][0]["groups"][0]
    assert {k: g1[k] for k in ("group", "last_reporter", "uptime", "expires", "mode")} == {
        "group": "225.1.1.1",
        "last_reporter": "10.0.15.100",
        "uptime": "00:02:26",
        "expires": "00:01:34",
        "mode": "exclude",
    }
    assert [r["group"] for r in groups["remote_backup"]] == ["225.1.1.3", "225.1.1.10"]
    assert groups["remote_backup"][0]["sources"] == ["10.0.5.2"]
    (intf,) = igmp_interface_json([non_querier()])
    json.dumps(intf)
    assert (intf["role"], intf["querier"], intf["this_router_is_querier"]) == (
        "non_querier",
        "10.0.15.1",
        False,
    )
    assert intf["query_interval_s"] == 30 and intf["configured_query_interval_s"] == 60
    assert intf["dropped_by_reason"] == {"bad-checksum": 2, "short": 1}
    assert intf["counters"]["queries_received"] == 1
