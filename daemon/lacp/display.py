"""`display eth-trunk` and `display lacp statistics eth-trunk` from live trunk snapshots.

The eth-trunk layout is the seed's DeviceA output, column for column (the seed's DeviceB
output lost its spacing in the document, so DeviceA's alignment is the reference). Columns
keep at least one space between them when a value is wider than the seed's.
"""

from __future__ import annotations

from typing import Any

from daemon.lacp.codec import PortInfo, format_system_id, state_bits
from daemon.lacp.machine import MuxState, PortSnapshot, TrunkSnapshot

_RULE = "-" * 80
_MEMBER_HEADER = (
    "ActorPortName             Status   PortType PortPri    PortNo   PortKey    PortState   Weight"
)
_PARTNER_HEADER = (
    "ActorPortName         SysPri   SystemID        PortPri  PortNo   PortKey  PortState"
)
_PORT_TYPES = (("XGigabitEthernet", "10GE"), ("GigabitEthernet", "1GE"))
_WEIGHT = 1  # no `distribute-weight` configured


def _port_type(name: str) -> str:
    return next((kind for prefix, kind in _PORT_TYPES if name.startswith(prefix)), "-")


def _status(port: PortSnapshot) -> str:
    """VRP says Selected only for a member that carries traffic."""
    live = port.mux in (MuxState.COLLECTING, MuxState.DISTRIBUTING)
    return "Selected" if live else "Unselect"


def _flags(snap: TrunkSnapshot) -> dict[str, str]:
    """(h): the best port priority (then lowest number); (r): the reference port.

    The reference port is the first Selected member; with none (a backup trunk, as in the
    seed's DeviceB) it is the best-priority member whose link is up, as VRP picks it.
    """
    flags = dict.fromkeys((p.name for p in snap.ports), "")
    if not snap.ports:
        return flags

    def rank(p: PortSnapshot) -> tuple[int, int]:
        return (p.actor.port_priority, p.actor.port)

    flags[min(snap.ports, key=rank).name] += "h"
    selected = [p for p in snap.ports if _status(p) == "Selected"]
    enabled = sorted((p for p in snap.ports if p.enabled), key=rank)
    reference = (selected or enabled)[:1]
    for p in reference:
        flags[p.name] += "r"
    return flags


def _pair(left: str, right: str) -> str:
    return f"{left:<31} {right}"


def _member_row(name: str, status: str, port: PortInfo, kind: str) -> str:
    return (
        f"{name:<25} {status:<8} {kind:<8} {port.port_priority:<7} {port.port:>5}       "
        f"{port.key:<10} {state_bits(port.state):<8}{_WEIGHT:>6}"
    )


def _partner_row(name: str, partner: PortInfo) -> str:
    return (
        f"{name:<21} {partner.system_priority:<8} {format_system_id(partner.system):<15} "
        f"{partner.port_priority:<8} {partner.port:<8} {partner.key:<9} "
        f"{state_bits(partner.state)}"
    )


def _render_one(snap: TrunkSnapshot) -> list[str]:
    flags = _flags(snap)
    up_ports = sum(p.mux is MuxState.DISTRIBUTING for p in snap.ports)
    lines = [
        f"Eth-Trunk{snap.trunk_id}'s state information is:",
        "(h): high priority",
        "(r): reference port",
        "Local:",
        _pair(f"LAG ID: {snap.trunk_id}", "WorkingMode: STATIC"),
        _pair("Preempt Delay: Disabled", "Hash arithmetic: According to flow"),
        _pair(
            f"System Priority: {snap.system_priority}",
            f"System ID: {format_system_id(snap.system)}(Local)",
        ),
        _pair(
            f"Least Active-linknumber: {snap.least_active}",
            f"Max Active-linknumber: {snap.max_active}",
        ),
        _pair(
            f"Operate status: {'up' if snap.up else 'down'}",
            f"Number Of Up Ports In Trunk: {up_ports}",
        ),
        f"Timeout Period: {'Fast' if snap.fast_timeout else 'Slow'}",
        "PortKeyMode: Auto",
        _RULE,
        _MEMBER_HEADER,
    ]
    for p in snap.ports:
        name = f"{p.name} ({flags[p.name]})" if flags[p.name] else p.name
        lines.append(_member_row(name, _status(p), p.actor, _port_type(p.name)))
    lines += ["Partner:", _RULE, _PARTNER_HEADER]
    lines += [_partner_row(p.name, p.partner) for p in snap.ports]
    return lines


def render_eth_trunk(snaps: list[TrunkSnapshot]) -> str:
    """`display eth-trunk` for the given trunks (pass one for `display eth-trunk N`)."""
    return "\n\n".join("\n".join(_render_one(s)) for s in snaps)


def _info_json(info: PortInfo) -> dict[str, Any]:
    return {
        "system_priority": info.system_priority,
        "system_id": format_system_id(info.system),
        "port_priority": info.port_priority,
        "port_number": info.port,
        "port_key": info.key,
        "port_state": state_bits(info.state),
    }


def eth_trunk_json(snaps: list[TrunkSnapshot]) -> list[dict[str, Any]]:
    """The same content as render_eth_trunk, plus the machine states behind it."""
    result = []
    for snap in snaps:
        flags = _flags(snap)
        result.append(
            {
                "trunk_id": snap.trunk_id,
                "working_mode": "STATIC",
                "system_priority": snap.system_priority,
                "system_id": format_system_id(snap.system),
                "least_active_linknumber": snap.least_active,
                "max_active_linknumber": snap.max_active,
                "operate_status": "up" if snap.up else "down",
                "up_ports": sum(p.mux is MuxState.DISTRIBUTING for p in snap.ports),
                "timeout_period": "Fast" if snap.fast_timeout else "Slow",
                "role": snap.role.value,
                "members": [
                    {
                        "name": p.name,
                        "flags": flags[p.name],
                        "status": _status(p),
                        "port_type": _port_type(p.name),
                        "weight": _WEIGHT,
                        "enabled": p.enabled,
                        "selected": p.selected.name,
                        "rx": p.rx.name,
                        "mux": p.mux.name,
                        "periodic": p.periodic.name,
                        "actor": _info_json(p.actor),
                        "partner": _info_json(p.partner),
                    }
                    for p in snap.ports
                ],
            }
        )
    return result


def render_lacp_statistics(snap: TrunkSnapshot) -> str:
    """`display lacp statistics eth-trunk N`: LACPDUs per member, and drops by reason."""
    lines = [
        f"Eth-Trunk{snap.trunk_id}'s PDU statistic is:",
        _RULE,
        f"{'Port':<26} {'LacpRevPdu':<11} {'LacpSentPdu':<12} LacpDropPdu",
    ]
    for p in snap.ports:
        dropped = sum(p.dropped.values())
        lines.append(f"{p.name:<26} {p.lacpdus_received:<11} {p.lacpdus_sent:<12} {dropped}")
    drops = [(p.name, r, n) for p in snap.ports for r, n in sorted(p.dropped.items())]
    if drops:
        lines += ["Dropped LACPDUs by reason:"]
        lines += [f"{name:<26} {reason}: {count}" for name, reason, count in drops]
    return "\n".join(lines)


def lacp_statistics_json(snap: TrunkSnapshot) -> dict[str, Any]:
    return {
        "trunk_id": snap.trunk_id,
        "members": [
            {
                "name": p.name,
                "lacpdus_received": p.lacpdus_received,
                "lacpdus_sent": p.lacpdus_sent,
                "lacpdus_dropped": sum(p.dropped.values()),
                "dropped_by_reason": dict(sorted(p.dropped.items())),
            }
            for p in snap.ports
        ],
    }
