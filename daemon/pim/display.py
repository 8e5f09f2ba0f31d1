"""`display pim neighbor`, `display pim interface` and `display pim routing-table`.

Layouts follow VRP's documented outputs for the public network instance (the lab has no VPN
instances). The neighbor and interface tables use short interface names (`GE0/1/3`), the
routing table full ones, as VRP does. Times are HH:MM:SS (a day or more: `1d02h`); an expiry
rounds up, so a timer still running never shows 00:00:00. The routing table lists (*,G)
entries only: this PIM keeps no (S,G) state (the MFC's (S,G) entries are in
`display multicast routing-table`). A downstream interface's Protocol says why it is there:
`pim-sm` (a downstream Join), `igmp` (local members, this router is DR) or `backup` (held
for the peer device by `peer-backup hot`).
"""

from __future__ import annotations

import math
from typing import Any

from daemon.pim.machine import (
    DownstreamSnapshot,
    InterfaceSnapshot,
    NeighborSnapshot,
    PimSnapshot,
    RegisterState,
    SgSnapshot,
    StarGSnapshot,
)

VPN_INSTANCE = "public net"
_NEIGHBOR_HEADER = " Neighbor        Interface           Uptime   Expires  Dr-Priority"
_INTERFACE_HEADER = " Interface           State NbrCnt HelloInt   DR-Pri     DR-Address"


_SHORT_PREFIXES = (("XGigabitEthernet", "XGE"), ("GigabitEthernet", "GE"))


def _short(ifname: str) -> str:
    """`GigabitEthernet0/1/3` -> `GE0/1/3` (the config's canonical names; others as they are)."""
    for long, short in _SHORT_PREFIXES:
        if ifname.startswith(long):
            return short + ifname[len(long) :]
    return ifname


def _addr_key(addr: str) -> tuple[int, ...]:
    return tuple(int(part) for part in addr.split("."))


def _hms(seconds: float, *, up: bool = False) -> str:
    whole = max(0, math.ceil(seconds) if up else math.floor(seconds))
    days, rest = divmod(whole, 86400)
    if days:
        return f"{days}d{rest // 3600:02d}h"
    return f"{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"


def _expires(seconds: float | None, none: str = "never") -> str:
    return none if seconds is None else _hms(seconds, up=True)


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


# ---- display pim neighbor -----------------------------------------------------------------


def _select_neighbors(snap: PimSnapshot, interface: str | None) -> list[NeighborSnapshot]:
    return [n for n in snap.neighbors if interface is None or n.interface == interface]


def render_pim_neighbor(snap: PimSnapshot, *, interface: str | None = None) -> str:
    """`display pim neighbor [interface X]`."""
    neighbors = _select_neighbors(snap, interface)
    lines = [
        f" VPN-Instance: {VPN_INSTANCE}",
        f" Total Number of Neighbors = {len(neighbors)}",
        "",
        _NEIGHBOR_HEADER,
    ]
    for n in neighbors:
        priority = "-" if n.dr_priority is None else str(n.dr_priority)
        lines.append(
            f" {n.address:<15} {_short(n.interface):<19} {_hms(n.uptime):<8} "
            f"{_expires(n.expires):<8} {priority}"
        )
    return "\n".join(lines)


def pim_neighbor_json(snap: PimSnapshot, *, interface: str | None = None) -> dict[str, Any]:
    return {
        "vpn_instance": VPN_INSTANCE,
        "neighbors": [
            {
                "neighbor": n.address,
                "interface": n.interface,
                "uptime": _hms(n.uptime),
                "uptime_s": n.uptime,
                "expires": _expires(n.expires),
                "expires_s": n.expires,
                "holdtime_s": n.holdtime,
                "dr_priority": n.dr_priority,
                "generation_id": n.generation_id,
                "propagation_delay_ms": (
                    None if n.lan_prune_delay is None else n.lan_prune_delay.propagation_delay_ms
                ),
                "override_interval_ms": (
                    None if n.lan_prune_delay is None else n.lan_prune_delay.override_interval_ms
                ),
                "secondary_addresses": list(n.secondary_addresses),
            }
            for n in _select_neighbors(snap, interface)
        ],
    }


# ---- display pim interface ----------------------------------------------------------------


def _select_interfaces(snap: PimSnapshot, interface: str | None) -> list[InterfaceSnapshot]:
    return [i for i in snap.interfaces if interface is None or i.ifname == interface]


def _interface_verbose(i: InterfaceSnapshot) -> list[str]:
    c = i.counters
    drops = sum(i.dropped.values())
    by_reason = ", ".join(f"{r} {n}" for r, n in i.dropped.items())
    genid = "-" if i.generation_id is None else f"0x{i.generation_id:08x}"
    return [
        f" {i.ifname} ({i.address}):",
        f"     PIM version: 2, mode: sparse, state: {'up' if i.up else 'down'}",
        f"     PIM DR: {i.dr or '-'}{' (local)' if i.is_dr else ''}, DR priority: {i.dr_priority}",
        f"     PIM neighbor count: {i.neighbor_count}",
        f"     PIM hello interval: {i.hello_period:g} s, hello holdtime: {i.hello_holdtime:g} s,"
        f" next hello: {_expires(i.next_hello, '-')}",
        f"     PIM generation ID: {genid}",
        f"     PIM join/prune interval: {i.jp_period:g} s, holdtime: {i.jp_holdtime:g} s,"
        f" override interval: {i.jp_override_interval:g} s",
        f"     Received: hellos {c.hellos_received}, join/prunes {c.jp_messages_received}"
        f" ({c.joins_received} joins, {c.prunes_received} prunes)",
        f"     Sent: hellos {c.hellos_sent}, join/prunes {c.jp_messages_sent}"
        f" ({c.joins_sent} joins, {c.prunes_sent} prunes)",
        f"     Dropped: {drops}" + (f" ({by_reason})" if drops else ""),
    ]


def render_pim_interface(
    snap: PimSnapshot, *, interface: str | None = None, verbose: bool = False
) -> str:
    """`display pim interface [X] [verbose]`."""
    chosen = _select_interfaces(snap, interface)
    lines = [f" VPN-Instance: {VPN_INSTANCE}"]
    if verbose:
        for i in chosen:
            lines += _interface_verbose(i)
        return "\n".join(lines)
    lines.append(_INTERFACE_HEADER)
    for i in chosen:
        dr = (i.dr or "-") + ("  (local)" if i.is_dr else "")
        lines.append(
            f" {_short(i.ifname):<19} {'up' if i.up else 'down':<5} {i.neighbor_count:<6} "
            f"{i.hello_period:<10g} {i.dr_priority:<10} {dr}"
        )
    return "\n".join(lines)


def pim_interface_json(snap: PimSnapshot, *, interface: str | None = None) -> list[dict[str, Any]]:
    out = []
    for i in _select_interfaces(snap, interface):
        c = i.counters
        out.append(
            {
                "interface": i.ifname,
                "address": i.address,
                "state": "up" if i.up else "down",
                "dr": i.dr,
                "is_dr": i.is_dr,
                "dr_priority": i.dr_priority,
                "generation_id": i.generation_id,
                "neighbor_count": i.neighbor_count,
                "hello_period_s": i.hello_period,
                "hello_holdtime_s": i.hello_holdtime,
                "next_hello_s": i.next_hello,
                "jp_period_s": i.jp_period,
                "jp_holdtime_s": i.jp_holdtime,
                "jp_override_interval_s": i.jp_override_interval,
                "counters": {
                    "hellos_sent": c.hellos_sent,
                    "hellos_received": c.hellos_received,
                    "jp_messages_sent": c.jp_messages_sent,
                    "jp_messages_received": c.jp_messages_received,
                    "joins_sent": c.joins_sent,
                    "joins_received": c.joins_received,
                    "prunes_sent": c.prunes_sent,
                    "prunes_received": c.prunes_received,
                    "asserts_sent": c.asserts_sent,
                    "asserts_received": c.asserts_received,
                },
                "dropped_by_reason": dict(i.dropped),
            }
        )
    return out


# ---- display pim routing-table ------------------------------------------------------------


def _select_groups(snap: PimSnapshot, group: str | None) -> list[StarGSnapshot]:
    return [g for g in snap.groups if group is None or g.group == group]


def _rp(g: StarGSnapshot) -> str:
    if g.rp is None:
        return "NULL"
    return f"{g.rp} (local)" if g.rp_is_local else g.rp


def _upstream(g: StarGSnapshot) -> tuple[str, str, str]:
    if g.rp_is_local:  # the RP's (*,G) has no upstream: sources would register to it
        return "Register", "NULL", "NULL"
    return g.rpf_interface or "NULL", g.rpf_neighbor or "NULL", g.rpf_prime_neighbor or "NULL"


def _downstream_lines(i: int, d: DownstreamSnapshot) -> list[str]:
    expires = _expires(d.expires, "-")
    return [
        f"        {i}: {d.interface}",
        f"             Protocol: {d.protocol}, UpTime: {_hms(d.uptime)}, Expires: {expires}",
    ]


def _entry_lines(g: StarGSnapshot) -> list[str]:
    ifname, neighbor, prime = _upstream(g)
    lines = [
        f" (*, {g.group})",
        f"     RP: {_rp(g)}",
        "     Protocol: pim-sm, Flag: WC",
        f"     UpTime: {_hms(g.uptime)}",
        f"     Upstream interface: {ifname}",
        f"         Upstream neighbor: {neighbor}",
        f"         RPF prime neighbor: {prime}",
    ]
    if not g.downstream:
        return [*lines, "     Downstream interface(s) information: None"]
    lines += [
        "     Downstream interface(s) information:",
        f"     Total number of downstreams: {len(g.downstream)}",
    ]
    for i, d in enumerate(g.downstream, 1):
        lines += _downstream_lines(i, d)
    return lines


def _entries(n: int, kind: str) -> str:
    """VRP counts "0 (S, G) entry", "1 ... entry", "2 ... entries"."""
    return f"{n} {kind} entr{'ies' if n > 1 else 'y'}"


def _select_sources(snap: PimSnapshot, group: str | None) -> list[SgSnapshot]:
    return [s for s in snap.sources if group is None or s.group == group]


def _state(state: RegisterState) -> str:
    return state.name.lower().replace("_", "-")


def _sg_flags(s: SgSnapshot) -> list[str]:
    """VRP's flags: SPT (on the source's tree), RPT (pruned off the shared tree here)."""
    return [f for f, on in (("SPT", s.spt_bit), ("RPT", bool(s.rpt_pruned))) if on] or ["NIL"]


def _sg_lines(s: SgSnapshot) -> list[str]:
    lines = [
        f" ({s.source}, {s.group})",
        f"     Protocol: pim-sm, Flag: {' '.join(_sg_flags(s))}",
        f"     UpTime: {_hms(s.uptime)}",
        f"     Upstream interface: {s.rpf_interface or 'NULL'}",
        f"         Upstream neighbor: {s.rpf_neighbor or 'NULL'}",
    ]
    if s.register_state is not RegisterState.NO_INFO:
        stop = f", Register-Stop timer {_hms(s.register_stop)}" if s.register_stop else ""
        lines.append(f"     Register state: {_state(s.register_state)}{stop}")
    if s.registered_by:
        lines.append(f"     Registered by: {s.registered_by}")
    if not s.oifs:
        return [*lines, "     Downstream interface(s) information: None"]
    lines += ["     Downstream interface(s) information:",
              f"     Total number of downstreams: {len(s.oifs)}"]
    for i, ifname in enumerate(s.oifs, 1):
        how = "pim-sm" if ifname in s.joined else "inherited"
        lines.append(f"        {i}: {ifname}")
        lines.append(f"             Protocol: {how}")
    return lines


def render_pim_routing_table(snap: PimSnapshot, *, group: str | None = None) -> str:
    """`display pim routing-table [group G]`."""
    groups = _select_groups(snap, group)
    sources = _select_sources(snap, group)
    lines = [
        f" VPN-Instance: {VPN_INSTANCE}",
        f" Total {_entries(len(groups), '(*, G)')}; {_entries(len(sources), '(S, G)')}",
    ]
    for g in groups:
        lines += ["", *_entry_lines(g)]
    for s in sources:
        lines += ["", *_sg_lines(s)]
    asserts = [a for a in snap.asserts if group is None or a.group == group]
    if asserts:
        lines += ["", " Assert state:"]
        for a in asserts:
            m = a.winner_metric
            lines.append(f"  ({a.source}, {a.group}) {a.interface}: {a.state.name.lower()}, "
                         f"winner {a.winner} (preference {m.preference}, metric {m.metric}"
                         f"{', RPT' if m.rpt else ''}), expires {_expires(a.expires, '-')}")
    return "\n".join(lines)


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def pim_routing_table_json(snap: PimSnapshot, *, group: str | None = None) -> dict[str, Any]:
    entries = []
    for g in _select_groups(snap, group):
        ifname, neighbor, prime = _upstream(g)
        entries.append(
            {
                "source": "*",
                "group": g.group,
                "rp": g.rp,
                "rp_is_local": g.rp_is_local,
                "protocol": "pim-sm",
                "flags": ["WC"],
                "uptime": _hms(g.uptime),
                "uptime_s": g.uptime,
                "upstream_state": g.upstream_state.name.lower(),
                "upstream_interface": ifname,
                "upstream_neighbor": neighbor,
                "rpf_prime_neighbor": prime,
                "join_timer_s": _seconds(g.join_timer),
                "local_members": list(g.local_members),
                "backup_members": list(g.backup_members),
                "downstream": [
                    {
                        "interface": d.interface,
                        "protocol": d.protocol,
                        "state": d.state.name.lower(),
                        "uptime": _hms(d.uptime),
                        "uptime_s": d.uptime,
                        "expires": _expires(d.expires, "-"),
                        "expires_s": _seconds(d.expires),
                        "prune_pending_s": _seconds(d.prune_pending_expires),
                    }
                    for d in g.downstream
                ],
            }
        )
    star_g = len(entries)
    for s in _select_sources(snap, group):
        entries.append({
            "source": s.source,
            "group": s.group,
            "protocol": "pim-sm",
            "flags": _sg_flags(s),
            "uptime": _hms(s.uptime),
            "uptime_s": s.uptime,
            "upstream_state": s.upstream_state.name.lower(),
            "spt_bit": s.spt_bit,
            "upstream_interface": s.rpf_interface,
            "upstream_neighbor": s.rpf_neighbor,
            "join_timer_s": _seconds(s.join_timer),
            "keepalive_s": _seconds(s.keepalive),
            "mfc_input": s.iif,
            "downstream": [{"interface": i, "protocol": "pim-sm" if i in s.joined
                            else "inherited"} for i in s.oifs],
            "rpt_pruned": list(s.rpt_pruned),
            "register_state": _state(s.register_state),
            "register_stop_s": _seconds(s.register_stop),
            "registered_by": s.registered_by,
        })
    return {
        "vpn_instance": VPN_INSTANCE,
        "star_g_entries": star_g,
        "sg_entries": len(entries) - star_g,
        "registers": dict(snap.registers),
        "entries": entries,
        "asserts": [{"source": a.source, "group": a.group, "interface": a.interface,
                     "state": a.state.name.lower(), "winner": a.winner,
                     "winner_preference": a.winner_metric.preference,
                     "winner_metric": a.winner_metric.metric, "winner_rpt": a.winner_metric.rpt,
                     "expires_s": _seconds(a.expires)}
                    for a in snap.asserts if group is None or a.group == group],
    }
