"""`display remote-backup-service` and `display remote-backup-profile` from live snapshots.

Both layouts are the seed's, line for line: labels padded to one column, `--` for what is
not configured (BFD tracking and SSL are not modelled, so always `--`). The verbose forms
append the channel's counters and each profile's sync state before the closing rule; the
plain profile display appends one `Sync state` line only when something is wrong (a
backup-id mismatch), so a healthy profile renders exactly as in the seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address
from typing import Any

from daemon.rbs.machine import ChannelSnapshot, PeerStatus, ProfileSnapshot

_RBS_RULE = "-" * 58
_RBP_RULE = " " + "-" * 47
_NONE = "--"
_EMPTY = object()
# VRP's RBP shows where the backup device forwards from; with E-Trunk tracking it is the
# slave (backup) device's own forwarding, the only mode the lab models.
FORWARDING = "Slave Forwarding"

_COUNTERS = (
    ("Records sent", "records_sent"),
    ("Records received", "records_received"),
    ("Records acked", "records_acked"),
    ("Bytes sent", "bytes_sent"),
    ("Bytes received", "bytes_received"),
    ("Batches sent", "batches_sent"),
    ("Batches received", "batches_received"),
    ("Connections", "connections"),
    ("Reconnects", "reconnects"),
)


def _text(value: object) -> str:
    return _NONE if value is None or value == "" else str(value)


def _rbs_line(label: str, value: object) -> str:
    return f" {label:<17}: {_text(value)}"


def _rbp_line(label: str, value: object = _EMPTY) -> str:
    if value is _EMPTY:  # a heading whose values follow on their own lines
        return f" {label:<21}:"
    return f" {label:<21}: {_text(value)}"


def render_rbs(
    snap: ChannelSnapshot | None,
    name: str,
    peer: IPv4Address | str | None,
    source: IPv4Address | str | None,
    port: int | None,
    index: int,
    *,
    verbose: bool = False,
) -> str:
    """`display remote-backup-service NAME` (verbose: plus the channel's counters)."""
    connected = snap is not None and snap.tcp_state == "connected"
    lines = [
        _RBS_RULE,
        _rbs_line("Service-Index", index),
        _rbs_line("Service-Name", name),
        _rbs_line("TCP-State", "connected" if connected else "disconnected"),
        _rbs_line("Peer-ip", peer),
        _rbs_line("Source-ip", source),
        _rbs_line("TCP-Port", port),
        _rbs_line("Track-BFD", None),
        _rbs_line("SSL-Policy-Name", None),
        _rbs_line("SSL-State", None),
        _rbs_line("Last up time", snap.last_up if snap else None),
    ]
    if verbose and snap is not None:
        lines += [
            _rbs_line("Channel-State", snap.state.name),
            _rbs_line("TCP-Role", "listen" if snap.listen else "connect"),
            _rbs_line("Peer-device", snap.peer_device),
            _rbs_line("Last down reason", snap.last_down_reason),
        ]
        lines += [_rbs_line(label, snap.counters.get(key, 0)) for label, key in _COUNTERS]
        lines.append(_rbs_line("Errors", sum(snap.errors.values())))
        lines += [f"   {reason:<15}: {n}" for reason, n in sorted(snap.errors.items())]
    lines.append(_RBS_RULE)
    return "\n".join(lines)


def rbs_json(
    snap: ChannelSnapshot | None,
    name: str,
    peer: IPv4Address | str | None,
    source: IPv4Address | str | None,
    port: int | None,
    index: int,
) -> dict[str, Any]:
    connected = snap is not None and snap.tcp_state == "connected"
    return {
        "service_index": index,
        "service_name": name,
        "tcp_state": "connected" if connected else "disconnected",
        "peer_ip": None if peer is None else str(peer),
        "source_ip": None if source is None else str(source),
        "tcp_port": port,
        "track_bfd": None,
        "ssl_policy_name": None,
        "ssl_state": None,
        "last_up_time": snap.last_up if snap else None,
        "channel_state": snap.state.name if snap else None,
        "tcp_role": ("listen" if snap.listen else "connect") if snap else None,
        "peer_device": snap.peer_device if snap else None,
        "last_down_reason": snap.last_down_reason if snap else None,
        "counters": {key: snap.counters.get(key, 0) for _, key in _COUNTERS} if snap else {},
        "errors": dict(sorted(snap.errors.items())) if snap else {},
        "profiles": [_profile_json(p) for p in snap.profiles] if snap else [],
    }


def _profile_json(p: ProfileSnapshot) -> dict[str, Any]:
    return {
        "name": p.name,
        "backup_id": p.backup_id,
        "service_types": list(p.service_types),
        "role": p.role.value,
        "peer_status": p.peer_status.value,
        "mismatch": p.mismatch,
        "local_entries": p.local_entries,
        "remote_entries": p.mirror_entries,
        "unacked": p.unacked,
        "queued": p.queued,
        "batches_sent": p.batches_sent,
        "batches_received": p.batches_received,
        "mirror_aging": p.aging,
    }


def render_rbp(
    name: str,
    index: int,
    service_types: Sequence[str],
    rbs: str | None,
    backup_id: int | None,
    etrunk: int | None,
    eth_trunk: int | None,
    interfaces: Sequence[str],
    peer_backup: str | None,
    snap: ChannelSnapshot | None,
    *,
    verbose: bool = False,
) -> str:
    """`display remote-backup-profile NAME`; `snap` is the bound service's (None if none)."""
    lines = [
        _RBP_RULE,
        _rbp_line("Profile-Index", f"0x{index:x}"),
        _rbp_line("Profile-Name", name),
        _rbp_line("Service", ", ".join(service_types) or None),
        _rbp_line("Remote-backup-service", rbs),
        _rbp_line("Backup-ID", backup_id),
        _rbp_line("track protocol", "E-TRUNK" if etrunk is not None else None),
    ]
    if etrunk is not None:
        lines += [
            _rbp_line("    E-Trunk  ID", etrunk),
            _rbp_line("    Eth-trunk ID", eth_trunk),
        ]
    lines.append(_rbp_line("Interface"))
    lines += [" " * 24 + intf for intf in interfaces]
    lines += [
        _rbp_line("Forwarding Configured", FORWARDING),
        _rbp_line("Backup mode", peer_backup),
        _rbp_line("Slot-Number", None),
        _rbp_line("Card-Number", None),
        _rbp_line("Port-Number", None),
    ]
    prof = snap.profile(name) if snap is not None else None
    if prof is not None and verbose:
        lines += [
            _rbp_line("Sync state", _sync_state(prof)),
            _rbp_line("Sync role", prof.role.value),
            _rbp_line("Local entries", prof.local_entries),
            _rbp_line("Remote entries", prof.mirror_entries),
            _rbp_line("Unacked records", prof.unacked),
            _rbp_line("Queued changes", prof.queued),
            _rbp_line("Batches sent", prof.batches_sent),
            _rbp_line("Batches received", prof.batches_received),
            _rbp_line("Remote entry aging", "yes" if prof.aging else "no"),
        ]
    elif prof is not None and prof.peer_status is PeerStatus.MISMATCH:
        lines.append(_rbp_line("Sync state", _sync_state(prof)))
    return "\n".join(lines)


def _sync_state(p: ProfileSnapshot) -> str:
    if p.peer_status is PeerStatus.MISMATCH:
        return f"mismatch ({p.mismatch})"
    return p.peer_status.value


def rbp_json(
    name: str,
    index: int,
    service_types: Sequence[str],
    rbs: str | None,
    backup_id: int | None,
    etrunk: int | None,
    eth_trunk: int | None,
    interfaces: Sequence[str],
    peer_backup: str | None,
    snap: ChannelSnapshot | None,
) -> dict[str, Any]:
    prof = snap.profile(name) if snap is not None else None
    return {
        "profile_index": f"0x{index:x}",
        "profile_name": name,
        "service": list(service_types),
        "remote_backup_service": rbs,
        "backup_id": backup_id,
        "track_protocol": "E-TRUNK" if etrunk is not None else None,
        "etrunk_id": etrunk,
        "eth_trunk_id": eth_trunk,
        "interfaces": list(interfaces),
        "forwarding_configured": FORWARDING,
        "backup_mode": peer_backup,
        "slot_number": None,
        "card_number": None,
        "port_number": None,
        "sync": _profile_json(prof) if prof is not None else None,
    }
