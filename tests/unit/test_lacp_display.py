"""`display eth-trunk` against the seed's outputs; `display lacp statistics`; JSON forms."""

from __future__ import annotations

import json
from dataclasses import replace

from daemon.lacp.codec import PortInfo
from daemon.lacp.display import (
    eth_trunk_json,
    lacp_statistics_json,
    render_eth_trunk,
    render_lacp_statistics,
)
from daemon.lacp.machine import (
    NO_PARTNER,
    MuxState,
    PeriodicState,
    PortSnapshot,
    Role,
    RxState,
    Selected,
    TrunkSnapshot,
)
from tests.unit.test_lacp_machine import SYS_A, SYS_C, pair

SYS_B = bytes.fromhex("00e0fc123456")

# Verbatim from the seed (dual-device-igmp-hot-backup.md), `display eth-trunk` on DeviceA.
SEED_DEVICE_A = """\
Eth-Trunk1's state information is:
(h): high priority
(r): reference port
Local:
LAG ID: 1                       WorkingMode: STATIC
Preempt Delay: Disabled         Hash arithmetic: According to flow
System Priority: 32768          System ID: 00e0-fc12-3455(Local)
Least Active-linknumber: 1      Max Active-linknumber: 16
Operate status: up              Number Of Up Ports In Trunk: 1
Timeout Period: Slow
PortKeyMode: Auto
--------------------------------------------------------------------------------
ActorPortName             Status   PortType PortPri    PortNo   PortKey    PortState   Weight
GigabitEthernet0/1/2 (hr) Selected 1GE      32768       1       305        10111100     1
Partner:
--------------------------------------------------------------------------------
ActorPortName         SysPri   SystemID        PortPri  PortNo   PortKey  PortState
GigabitEthernet0/1/2  32768    00e0-fc12-3455  32768    1        305       10111100"""

# Verbatim from the seed, DeviceB: its column spacing was lost in the document.
SEED_DEVICE_B = """\
Eth-Trunk1's state information is:
(h): high priority
(r): reference port
Local:
LAG ID: 1 WorkingMode: STATIC
Preempt Delay: Disabled Hash arithmetic: According to flow
System Priority: 32768 System ID: 00e0-fc12-3456(Local)
Least Active-linknumber: 1 Max Active-linknumber: 16
Operate status: down Number Of Up Ports In Trunk: 0
Timeout Period: Slow
PortKeyMode: Auto
--------------------------------------------------------------------------------
ActorPortName Status PortType PortPri PortNo PortKey PortState Weight
GigabitEthernet0/1/3(hr) Unselect 1GE 32768 32769 305 10110000 1
Partner:
--------------------------------------------------------------------------------
ActorPortName          SysPri  SystemID        PortPri  PortNo PortKey  PortState
GigabitEthernet0/1/3   32768   00e0-fc12-3456  32768    2      305      10100000"""


def member(
    name: str,
    actor: PortInfo,
    partner: PortInfo,
    mux: MuxState,
    *,
    enabled: bool = True,
    sent: int = 0,
    received: int = 0,
    dropped: dict[str, int] | None = None,
) -> PortSnapshot:
    live = mux is not MuxState.DETACHED
    return PortSnapshot(
        name=name,
        enabled=enabled,
        actor=actor,
        partner=partner,
        selected=Selected.SELECTED if live else Selected.UNSELECTED,
        rx=RxState.CURRENT if enabled else RxState.PORT_DISABLED,
        mux=mux,
        periodic=PeriodicState.SLOW_PERIODIC,
        lacpdus_sent=sent,
        lacpdus_received=received,
        dropped=dropped or {},
    )


def trunk(system: bytes, up: bool, *ports: PortSnapshot, role: Role = Role.MASTER) -> TrunkSnapshot:
    return TrunkSnapshot(
        trunk_id=1,
        system_priority=32768,
        system=system,
        least_active=1,
        max_active=16,
        fast_timeout=False,
        role=role,
        up=up,
        ports=ports,
    )


DEVICE_A = trunk(
    SYS_A,
    True,
    member(
        "GigabitEthernet0/1/2",
        PortInfo(32768, SYS_A, 305, 32768, 1, 0x3D),
        PortInfo(32768, SYS_A, 305, 32768, 1, 0x3D),  # the seed's partner values
        MuxState.DISTRIBUTING,
    ),
)
DEVICE_B = trunk(
    SYS_B,
    False,
    member(
        "GigabitEthernet0/1/3",
        PortInfo(32768, SYS_B, 305, 32768, 32769, 0x0D),
        PortInfo(32768, SYS_B, 305, 32768, 2, 0x05),
        MuxState.ATTACHED,
    ),
    role=Role.BACKUP,
)


def test_device_a_matches_the_seed_line_for_line() -> None:
    assert render_eth_trunk([DEVICE_A]).splitlines() == SEED_DEVICE_A.splitlines()


def test_device_b_backup_shows_unselect_and_down() -> None:
    text = render_eth_trunk([DEVICE_B])
    squeeze = ["".join(line.split()) for line in text.splitlines()]
    assert squeeze == ["".join(line.split()) for line in SEED_DEVICE_B.splitlines()]
    lines = text.splitlines()
    assert lines[8] == "Operate status: down            Number Of Up Ports In Trunk: 0"
    assert lines[13] == (
        "GigabitEthernet0/1/3 (hr) Unselect 1GE      32768   32769       305        10110000     1"
    )


def test_flags_and_port_types_with_several_members() -> None:
    snap = trunk(
        SYS_C,
        True,
        member(
            "GigabitEthernet0/1/2",
            PortInfo(32768, SYS_C, 305, 32768, 1, 0x05),
            NO_PARTNER,
            MuxState.DETACHED,
            enabled=False,
        ),
        member(
            "XGigabitEthernet0/1/3",
            PortInfo(32768, SYS_C, 305, 100, 2, 0x3D),
            PortInfo(32768, SYS_A, 305, 32768, 1, 0x3D),
            MuxState.DISTRIBUTING,
        ),
        member(
            "GigabitEthernet0/1/4",
            PortInfo(32768, SYS_C, 305, 100, 3, 0x3D),
            PortInfo(32768, SYS_A, 305, 32768, 2, 0x3D),
            MuxState.DISTRIBUTING,
        ),
    )
    rows = render_eth_trunk([snap]).splitlines()
    assert rows[13].startswith("GigabitEthernet0/1/2      Unselect 1GE      32768")
    assert rows[14].startswith("XGigabitEthernet0/1/3 (hr) Selected 10GE     100")
    assert rows[15].startswith("GigabitEthernet0/1/4      Selected 1GE      100")
    assert rows[19] == (
        "GigabitEthernet0/1/2  0        0000-0000-0000  0        0        0         00000000"
    )
    assert rows[8].endswith("Number Of Up Ports In Trunk: 2")


def test_no_reference_when_nothing_selected_or_up() -> None:
    port = replace(DEVICE_B.ports[0], enabled=False, mux=MuxState.DETACHED)
    rows = render_eth_trunk([replace(DEVICE_B, ports=(port,))]).splitlines()
    assert rows[13].startswith("GigabitEthernet0/1/3 (h)  Unselect")


def test_several_trunks_are_separated_by_a_blank_line() -> None:
    text = render_eth_trunk([DEVICE_A, replace(DEVICE_B, trunk_id=2)])
    first, second = text.split("\n\n")
    assert first == SEED_DEVICE_A
    assert second.startswith("Eth-Trunk2's state information is:")
    assert render_eth_trunk([]) == ""


def test_live_trunk_renders_its_own_values() -> None:
    lab = pair()
    lab.run_until(5.0)
    text = render_eth_trunk([lab.trunks["A"].snapshot()])
    lines = text.splitlines()
    assert lines[13] == (
        "GigabitEthernet0/1/2 (hr) Selected 1GE      32768       1       305        10111100     1"
    )
    assert lines[17] == (
        "GigabitEthernet0/1/2  32768    00e0-fc12-3457  32768    1        305       10111100"
    )


def test_eth_trunk_json() -> None:
    (doc,) = eth_trunk_json([DEVICE_A])
    json.dumps(doc)  # JSON-ready
    assert doc["operate_status"] == "up" and doc["up_ports"] == 1
    assert doc["system_id"] == "00e0-fc12-3455" and doc["role"] == "master"
    (m,) = doc["members"]
    assert (m["name"], m["flags"], m["status"], m["port_type"]) == (
        "GigabitEthernet0/1/2",
        "hr",
        "Selected",
        "1GE",
    )
    assert m["actor"] == {
        "system_priority": 32768,
        "system_id": "00e0-fc12-3455",
        "port_priority": 32768,
        "port_number": 1,
        "port_key": 305,
        "port_state": "10111100",
    }
    assert m["mux"] == "DISTRIBUTING" and m["partner"]["port_state"] == "10111100"
    (b,) = eth_trunk_json([DEVICE_B])
    assert b["operate_status"] == "down" and b["members"][0]["status"] == "Unselect"


STATS = trunk(
    SYS_C,
    True,
    member(
        "GigabitEthernet0/1/2",
        PortInfo(32768, SYS_C, 305, 32768, 1, 0x3D),
        NO_PARTNER,
        MuxState.DISTRIBUTING,
        sent=46,
        received=45,
        dropped={"not-lacp": 2, "bad-tlv": 1},
    ),
    member(
        "GigabitEthernet0/1/3",
        PortInfo(32768, SYS_C, 305, 32768, 2, 0x05),
        NO_PARTNER,
        MuxState.DETACHED,
        sent=3,
    ),
)


def test_lacp_statistics() -> None:
    assert render_lacp_statistics(STATS).splitlines() == [
        "Eth-Trunk1's PDU statistic is:",
        "-" * 80,
        "Port                       LacpRevPdu  LacpSentPdu  LacpDropPdu",
        "GigabitEthernet0/1/2       45          46           3",
        "GigabitEthernet0/1/3       0           3            0",
        "Dropped LACPDUs by reason:",
        "GigabitEthernet0/1/2       bad-tlv: 1",
        "GigabitEthernet0/1/2       not-lacp: 2",
    ]
    assert "Dropped" not in render_lacp_statistics(replace(STATS, ports=STATS.ports[1:]))
    doc = lacp_statistics_json(STATS)
    json.dumps(doc)
    assert doc["members"][0] == {
        "name": "GigabitEthernet0/1/2",
        "lacpdus_received": 45,
        "lacpdus_sent": 46,
        "lacpdus_dropped": 3,
        "dropped_by_reason": {"bad-tlv": 1, "not-lacp": 2},
    }
