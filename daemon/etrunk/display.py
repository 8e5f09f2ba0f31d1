"""`display e-trunk N` from a live E-Trunk snapshot, in VRP's layout, and its JSON form.

The caller supplies what the machine does not know: the configured peer and source
addresses, and the bound BFD session's name and state. "--" marks a value that does not
apply (no peer heard, no BFD session bound, revert disabled).
"""

from __future__ import annotations

import math
from typing import Any

from daemon.etrunk.codec import ETrunkState, format_system_id
from daemon.etrunk.machine import ETrunkSnapshot, MemberSnapshot

_RULE = "-" * 80
_NONE = "--"
_RIGHT_COLUMN = 38  # where the right-hand label starts
_RIGHT_LABEL = 24  # right-hand labels are padded to this width before ": "
_MEMBER_COLUMNS = (11, 6, 15, 12, 9, 17)  # Type, ID, LocalPhyState, Work-Mode, State, Causation
_MEMBER_HEADER = ("Type", "ID", "LocalPhyState", "Work-Mode", "State", "Causation", "Remote-ID")
_STATE_NAMES = {s: s.name.capitalize() for s in ETrunkState}


def _pair(left: str, right: tuple[str, str] | None = None) -> str:
    """`left` (already "Label : value"), then the right column at its fixed offset."""
    if right is None:
        return left
    label, value = right
    return f"{left:<{_RIGHT_COLUMN - 1}} {label:<{_RIGHT_LABEL}}: {value}"


def _row(cells: tuple[str, ...]) -> str:
    padded = [f"{cell:<{width - 1}} " for cell, width in zip(cells, _MEMBER_COLUMNS, strict=False)]
    return "".join(padded) + cells[-1]


def _member_cells(m: MemberSnapshot) -> tuple[str, ...]:
    return (
        "Eth-Trunk",
        str(m.trunk_id),
        "Up" if m.phy_up else "Down",
        m.mode.value,
        m.role.value.capitalize(),
        m.cause.value,
        _NONE if m.remote is None else str(m.remote.trunk_id),
    )


def _revert_delay(snap: ETrunkSnapshot) -> str:
    return f"{snap.revert_delay_s:g}" if snap.revert_enabled else _NONE


def render_etrunk(
    snap: ETrunkSnapshot,
    peer_ip: str,
    source_ip: str,
    bfd_session: str | None,
    bfd_state: str | None,
) -> str:
    """`display e-trunk N`."""
    peer = snap.peer
    lines = [
        "                        The E-Trunk information",
        _pair(f"E-TRUNK-ID  : {snap.etrunk_id}", ("Revert-Delay-Time (s)", _revert_delay(snap))),
        _pair(f"Priority    : {snap.priority}", ("System-ID", format_system_id(snap.system_id))),
        _pair(f"Peer-IP     : {peer_ip}", ("Source-IP", source_ip)),
        _pair(f"State       : {_STATE_NAMES[snap.state]}", ("Causation", snap.cause.value)),
        _pair(
            f"Send-Period (100ms)   : {snap.hello_100ms}",
            ("Fail-Time (100ms)", str(snap.fail_100ms)),
        ),
        _pair(f"Receive     : {snap.received}", ("Send", str(snap.sent))),
        _pair(f"RecDrop     : {sum(snap.rec_drop.values())}", ("SndDrop", str(snap.snd_drop))),
        _pair(
            f"Peer-Priority : {_NONE if peer is None else peer.priority}",
            ("Peer-System-ID", _NONE if peer is None else format_system_id(peer.system_id)),
        ),
        _pair(
            f"Peer-Fail-Time (100ms) : {_NONE if peer is None else peer.fail_100ms}",
            ("BFD-Session", bfd_session or _NONE),
        ),
        f"BFD-State   : {bfd_state or _NONE}",
        _RULE,
        "                       The Member information",
        _row(_MEMBER_HEADER),
    ]
    lines += [_row(_member_cells(m)) for m in snap.members]
    return "\n".join(lines)


def _peer_json(snap: ETrunkSnapshot) -> dict[str, Any] | None:
    peer = snap.peer
    if peer is None:
        return None
    return {
        "address": peer.address,
        "priority": peer.priority,
        "system_id": format_system_id(peer.system_id),
        "state": _STATE_NAMES[peer.state],
        "send_period_100ms": peer.hello_100ms,
        "fail_time_100ms": peer.fail_100ms,
        "flags": [f.name.lower() for f in type(peer.flags) if f in peer.flags and f.name],
        "sequence": peer.sequence,
        "heard_at": peer.heard_at,
        "expires_at": peer.expires_at,
    }


def _member_json(m: MemberSnapshot) -> dict[str, Any]:
    remote = m.remote
    return {
        "type": "Eth-Trunk",
        "id": m.trunk_id,
        "local_phy_state": "Up" if m.phy_up else "Down",
        "work_mode": m.mode.value,
        "state": m.role.value.capitalize(),
        "causation": m.cause.value,
        "remote_id": None if remote is None else remote.trunk_id,
        "remote": None
        if remote is None
        else {
            "phy_state": "Up" if remote.phy_up else "Down",
            "state": remote.role.value.capitalize(),
            "work_mode": remote.mode.value,
            "attached": remote.attached,
        },
        "attached": m.attached,
        "waiting_for_peer": m.waiting_for_peer,
        # JSON has no infinity: a hold that never ends (revert disabled) is "forever".
        "revert_at": "forever" if m.revert_at == math.inf else m.revert_at,
    }


def etrunk_json(
    snap: ETrunkSnapshot,
    peer_ip: str,
    source_ip: str,
    bfd_session: str | None,
    bfd_state: str | None,
) -> dict[str, Any]:
    """The same content as render_etrunk, with drops by reason and the peer's details."""
    return {
        "etrunk_id": snap.etrunk_id,
        "revert_enabled": snap.revert_enabled,
        "revert_delay_s": snap.revert_delay_s,
        "priority": snap.priority,
        "system_id": format_system_id(snap.system_id),
        "peer_ip": peer_ip,
        "source_ip": source_ip,
        "state": _STATE_NAMES[snap.state],
        "causation": snap.cause.value,
        "send_period_100ms": snap.hello_100ms,
        "fail_time_100ms": snap.fail_100ms,
        "receive": snap.received,
        "send": snap.sent,
        "rec_drop": sum(snap.rec_drop.values()),
        "rec_drop_by_reason": dict(sorted(snap.rec_drop.items())),
        "snd_drop": snap.snd_drop,
        "peer": _peer_json(snap),
        "bfd_session": bfd_session,
        "bfd_state": bfd_state,
        "upstream": snap.upstream,
        "running": snap.running,
        "members": [_member_json(m) for m in snap.members],
    }
