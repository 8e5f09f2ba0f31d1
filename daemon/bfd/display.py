"""`display bfd session all` and `display bfd session name NAME verbose`, text and JSON.

The seed shows no BFD output, so the layouts follow VRP's: the brief table with its legend,
80-column rules and the `Total UP/DOWN Session Number` footer, and the verbose form's
`Label : value` pairs, two per line where VRP pairs them. Lines VRP has no equivalent for
(remote state and diagnostic, packet counters, drops by reason, transitions, last change)
use the same label style. Addresses and the bound interface are not part of the session
machine, so the caller passes them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

from daemon.bfd.codec import BfdState, Diag
from daemon.bfd.machine import SessionSnapshot

MULTIHOP_PORT = 4784  # RFC 5883
SINGLE_HOP_PORT = 3784  # RFC 5881
TTL = 255

_RULE = "-" * 80
_LEGEND = ["(w): State in WTR", "(*): State is invalid"]

STATE_NAMES = {
    BfdState.ADMIN_DOWN: "AdminDown",
    BfdState.DOWN: "Down",
    BfdState.INIT: "Init",
    BfdState.UP: "Up",
}

DIAG_NAMES: dict[int, str] = {
    Diag.NONE: "No Diagnostic",
    Diag.CONTROL_DETECTION_TIME_EXPIRED: "Control Detection Time Expired",
    Diag.ECHO_FAILED: "Echo Function Failed",
    Diag.NEIGHBOR_SIGNALED_DOWN: "Neighbor Signaled Session Down",
    Diag.FORWARDING_PLANE_RESET: "Forwarding Plane Reset",
    Diag.PATH_DOWN: "Path Down",
    Diag.CONCATENATED_PATH_DOWN: "Concatenated Path Down",
    Diag.ADMIN_DOWN: "Administratively Down",
    Diag.REVERSE_CONCATENATED_PATH_DOWN: "Reverse Concatenated Path Down",
    Diag.MIS_CONNECTIVITY_DEFECT: "Mis-Connectivity Defect",
}

Entry: TypeAlias = tuple[SessionSnapshot, str, str | None]
"""One row of `display bfd session all`: (snapshot, peer IP, bound interface or None)."""


def diag_name(diag: int) -> str:
    return DIAG_NAMES.get(diag, f"Reserved ({int(diag)})")


def session_type(snap: SessionSnapshot, interface: str | None) -> str:
    """VRP's Type column for a static session: multihop, or IP bound to an interface."""
    if snap.multihop:
        return "S_MULTI_HOP"
    return "S_IP_IF" if interface else "S_IP_PEER"


def _remote_disc(snap: SessionSnapshot) -> str:
    return str(snap.remote_disc) if snap.remote_disc else "-"


def _ms(us: int) -> str:
    """Microseconds as VRP's whole milliseconds; '-' when not known yet."""
    if us <= 0:
        return "-"
    return str(us // 1000) if us % 1000 == 0 else f"{us / 1000:g}"


def _totals(snaps: Sequence[SessionSnapshot]) -> tuple[int, int]:
    up = sum(s.state is BfdState.UP for s in snaps)
    return up, len(snaps) - up


def render_session_all(entries: Sequence[Entry]) -> str:
    """`display bfd session all`: one row per session, then the Up/Down totals."""
    lines = [
        *_LEGEND,
        _RULE,
        f"{'Local':<10} {'Remote':<10} {'PeerIpAddr':<15} {'State':<9} {'Type':<11} InterfaceName",
        _RULE,
    ]
    for snap, peer_ip, interface in entries:
        lines.append(
            f"{snap.local_disc:<10} {_remote_disc(snap):<10} {peer_ip:<15} "
            f"{STATE_NAMES[snap.state]:<9} {session_type(snap, interface):<11} "
            f"{interface or '-'}"
        )
    up, down = _totals([e[0] for e in entries])
    lines += [_RULE, f"     Total UP/DOWN Session Number : {up}/{down}"]
    return "\n".join(lines)


def _pair(left: str, lvalue: object, right: str, rvalue: object) -> str:
    return f"  {left:<23}: {lvalue!s:<16}{right:<23}: {rvalue}"


def _one(label: str, value: object) -> str:
    return f"  {label:<23}: {value}"


def _age(at: float | None, now: float | None) -> str:
    """How long ago the last state change was (hh:mm:ss.mmm), or the raw clock reading."""
    if at is None:
        return "-"
    if now is None:
        return f"at {at:.3f}"
    seconds = max(0.0, now - at)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours):02d}:{int(minutes):02d}:{secs:06.3f} ago"


def _drops(snap: SessionSnapshot) -> str:
    if not snap.dropped:
        return "-"
    return ", ".join(f"{reason} {count}" for reason, count in sorted(snap.dropped.items()))


def render_session_verbose(
    snap: SessionSnapshot,
    peer_ip: str,
    source_ip: str | None,
    interface: str | None,
    *,
    now: float | None = None,
) -> str:
    """`display bfd session name NAME verbose`; pass `now` (the machine's clock) to show the
    age of the last state change instead of its clock reading."""
    hop = "Multi Hop" if snap.multihop else "One Hop"
    bind = "Peer IP Address" if snap.multihop or not interface else f"Interface({interface})"
    dropped = sum(snap.dropped.values())
    lines = [
        *_LEGEND,
        _RULE,
        f"  ({hop}) State : {STATE_NAMES[snap.state]:<16} Name : {snap.name}",
        _RULE,
        _pair("Local Discriminator", snap.local_disc, "Remote Discriminator", _remote_disc(snap)),
        _one("Session Detect Mode", "Asynchronous Mode Without Echo Function"),
        _one("BFD Bind Type", bind),
        _one("Bind Session Type", "Static"),
        _one("Bind Peer IP Address", peer_ip),
        _one("Bind Source IP Address", source_ip or "-"),
        _one("Bind Interface", interface or "-"),
        _pair(
            "Min Tx Interval (ms)",
            snap.configured_min_tx_ms,
            "Min Rx Interval (ms)",
            snap.configured_min_rx_ms,
        ),
        _pair(
            "Actual Tx Interval (ms)",
            _ms(snap.tx_interval_us),
            "Actual Rx Interval (ms)",
            _ms(snap.rx_interval_us),
        ),
        _pair(
            "Local Detect Multi",
            snap.local_detect_mult,
            "Detect Interval (ms)",
            _ms(snap.detect_time_us),
        ),
        _one("Active Multi", snap.remote_detect_mult or "-"),
        _pair(
            "Destination Port",
            MULTIHOP_PORT if snap.multihop else SINGLE_HOP_PORT,
            "TTL",
            TTL,
        ),
        _one("Remote State", STATE_NAMES[snap.remote_state]),
        _one("Last Local Diagnostic", diag_name(snap.local_diag)),
        _one("Last Remote Diagnostic", diag_name(snap.remote_diag)),
        _pair("Packets Sent", snap.packets_sent, "Packets Received", snap.packets_received),
        _pair("Packets Dropped", dropped, "Send Errors", snap.tx_errors),
        _one("Dropped By Reason", _drops(snap)),
        _one("Session Up/Down Times", f"{snap.up_transitions}/{snap.down_transitions}"),
        _one("Last State Change", _age(snap.last_change, now)),
        _RULE,
    ]
    return "\n".join(lines)


def _brief_json(snap: SessionSnapshot, peer_ip: str, interface: str | None) -> dict[str, Any]:
    return {
        "name": snap.name,
        "local_discriminator": snap.local_disc,
        "remote_discriminator": snap.remote_disc or None,
        "peer_ip": peer_ip,
        "state": STATE_NAMES[snap.state],
        "type": session_type(snap, interface),
        "interface": interface,
    }


def sessions_json(entries: Sequence[Entry]) -> dict[str, Any]:
    """The same content as render_session_all."""
    up, down = _totals([e[0] for e in entries])
    return {
        "sessions": [_brief_json(s, peer, ifname) for s, peer, ifname in entries],
        "total_up": up,
        "total_down": down,
    }


def session_json(
    snap: SessionSnapshot,
    peer_ip: str,
    source_ip: str | None,
    interface: str | None,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Everything render_session_verbose shows, with intervals in microseconds."""
    return {
        **_brief_json(snap, peer_ip, interface),
        "multihop": snap.multihop,
        "source_ip": source_ip,
        "destination_port": MULTIHOP_PORT if snap.multihop else SINGLE_HOP_PORT,
        "ttl": TTL,
        "static_remote_discriminator": snap.static_remote_disc,
        "remote_state": STATE_NAMES[snap.remote_state],
        "local_diag": {"code": int(snap.local_diag), "name": diag_name(snap.local_diag)},
        "remote_diag": {"code": int(snap.remote_diag), "name": diag_name(snap.remote_diag)},
        "configured_min_tx_ms": snap.configured_min_tx_ms,
        "configured_min_rx_ms": snap.configured_min_rx_ms,
        "desired_min_tx_us": snap.desired_min_tx_us,
        "required_min_rx_us": snap.required_min_rx_us,
        "remote_desired_min_tx_us": snap.remote_desired_min_tx_us,
        "remote_required_min_rx_us": snap.remote_required_min_rx_us,
        "actual_tx_interval_us": snap.tx_interval_us,
        "actual_rx_interval_us": snap.rx_interval_us,
        "detect_time_us": snap.detect_time_us,
        "local_detect_mult": snap.local_detect_mult,
        "remote_detect_mult": snap.remote_detect_mult,
        "polling": snap.polling,
        "remote_demand": snap.remote_demand,
        "packets_sent": snap.packets_sent,
        "packets_received": snap.packets_received,
        "packets_dropped": sum(snap.dropped.values()),
        "dropped_by_reason": dict(sorted(snap.dropped.items())),
        "send_errors": snap.tx_errors,
        "up_transitions": snap.up_transitions,
        "down_transitions": snap.down_transitions,
        "last_change": snap.last_change,
        "last_change_age_s": None
        if snap.last_change is None or now is None
        else max(0.0, now - snap.last_change),
    }
