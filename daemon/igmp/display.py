"""`display igmp group` and `display igmp interface` from live interface snapshots.

Layouts follow VRP's documented outputs (public network instance only: the lab has no VPN
instances). Groups learned from the backup peer over RBS, which the device keeps but which
are not (yet) local IGMP state, get a section of their own headed "Interface group report
information of remote backup", so nobody mistakes them for groups this router heard.
Times are HH:MM:SS; an expiry rounds up, so a timer still running never shows 00:00:00.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from daemon.igmp.machine import GroupSnapshot, IfState, IgmpSnapshot

VPN_INSTANCE = "public net"
_GROUP_HEADER = "   Group Address   Last Reporter   Uptime      Expires"
_REMOTE_HEADER = "   Group Address   Last Reporter   Uptime      Mode"


@dataclass(frozen=True)
class RemoteGroup:
    """A group entry the device holds from the backup peer (not local IGMP state)."""

    ifname: str
    group: str
    reporter: str
    uptime_s: float
    mode: str = "exclude"
    sources: frozenset[str] = frozenset()


def _hms(seconds: float, *, up: bool = False) -> str:
    whole = math.ceil(seconds) if up else math.floor(seconds)
    whole = max(0, whole)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _timer(seconds: float | None) -> str:
    return "off" if seconds is None else _hms(seconds, up=True)


def _secs(value: float) -> str:
    return f"{value:g} s"


def _total(n: int, what: str) -> str:
    return f"Total {n} IGMP {'Group' if n == 1 else 'Groups'} {what}"


def _addr_key(addr: str) -> tuple[int, ...]:
    return tuple(int(part) for part in addr.split("."))


def _group_row(g: GroupSnapshot) -> str:
    return f"   {g.group:<15} {g.reporter:<15} {_hms(g.uptime):<11} {_hms(g.expires, up=True)}"


def _group_verbose(g: GroupSnapshot) -> list[str]:
    lines = [
        f"   Group: {g.group}",
        f"     Uptime: {_hms(g.uptime)}",
        f"     Expires: {_hms(g.expires, up=True)}",
        f"     Last reporter: {g.reporter}",
        f"     Last-member-query-counter: {g.last_member_queries_left}",
        f"     Group mode: {g.mode}",
        f"     Compatibility mode: IGMPv{g.compat}",
        f"     Version1-host-present-timer-expiry: {_timer(g.v1_host_expires)}",
        f"     Version2-host-present-timer-expiry: {_timer(g.v2_host_expires)}",
    ]
    if g.sources:
        lines.append("     Source list:")
        lines += [f"       {s.source:<15} Expires: {_timer(s.expires)}" for s in g.sources]
    return lines


def _select(snaps: Iterable[IgmpSnapshot], interface: str | None) -> list[IgmpSnapshot]:
    return [s for s in snaps if interface is None or s.ifname == interface]


def _select_remote(
    remote: Iterable[RemoteGroup] | None, interface: str | None
) -> list[RemoteGroup]:
    chosen = [r for r in remote or () if interface is None or r.ifname == interface]
    return sorted(chosen, key=lambda r: (r.ifname, _addr_key(r.group)))


def render_igmp_group(
    snaps: Iterable[IgmpSnapshot],
    remote: Iterable[RemoteGroup] | None = None,
    *,
    interface: str | None = None,
    verbose: bool = False,
) -> str:
    """`display igmp group [interface X] [verbose]`; interfaces without groups are left out."""
    lines = [f"Interface group report information of VPN-Instance: {VPN_INSTANCE}"]
    for snap in _select(snaps, interface):
        if not snap.groups:
            continue
        lines += [f" {snap.ifname}({snap.address}):", "  " + _total(len(snap.groups), "reported")]
        if verbose:
            for g in snap.groups:
                lines += _group_verbose(g)
        else:
            lines.append(_GROUP_HEADER)
            lines += [_group_row(g) for g in snap.groups]
    remote_groups = _select_remote(remote, interface)
    if remote_groups:
        lines += ["", "Interface group report information of remote backup"]
        by_if: dict[str, list[RemoteGroup]] = {}
        for r in remote_groups:
            by_if.setdefault(r.ifname, []).append(r)
        for ifname, entries in by_if.items():
            lines += [f" {ifname}:", "  " + _total(len(entries), "learned from the backup peer")]
            lines.append(_REMOTE_HEADER)
            for r in entries:
                lines.append(f"   {r.group:<15} {r.reporter:<15} {_hms(r.uptime_s):<11} {r.mode}")
                if verbose and r.sources:
                    lines += [f"     Source: {s}" for s in sorted(r.sources, key=_addr_key)]
    return "\n".join(lines)


def _group_json(g: GroupSnapshot) -> dict[str, Any]:
    return {
        "group": g.group,
        "last_reporter": g.reporter,
        "uptime": _hms(g.uptime),
        "uptime_s": g.uptime,
        "expires": _hms(g.expires, up=True),
        "expires_s": g.expires,
        "mode": str(g.mode),
        "compat_version": g.compat,
        "v1_host_expires_s": g.v1_host_expires,
        "v2_host_expires_s": g.v2_host_expires,
        "last_member_queries_left": g.last_member_queries_left,
        "sources": [{"source": s.source, "expires_s": s.expires} for s in g.sources],
    }


def igmp_group_json(
    snaps: Iterable[IgmpSnapshot],
    remote: Iterable[RemoteGroup] | None = None,
    *,
    interface: str | None = None,
) -> dict[str, Any]:
    """The same content as render_igmp_group, with the details of verbose and raw seconds."""
    return {
        "vpn_instance": VPN_INSTANCE,
        "interfaces": [
            {
                "interface": s.ifname,
                "address": s.address,
                "groups": [_group_json(g) for g in s.groups],
            }
            for s in _select(snaps, interface)
        ],
        "remote_backup": [
            {
                "interface": r.ifname,
                "group": r.group,
                "last_reporter": r.reporter,
                "uptime": _hms(r.uptime_s),
                "uptime_s": r.uptime_s,
                "mode": r.mode,
                "sources": sorted(r.sources, key=_addr_key),
            }
            for r in _select_remote(remote, interface)
        ],
    }


def _querier(snap: IgmpSnapshot) -> str:
    if snap.querier_address is None:
        return "-"
    if snap.querier:
        return f"{snap.querier_address} (this router)"
    return snap.querier_address


def _negotiated(snap: IgmpSnapshot) -> str:
    """The querier's QQI when we follow another querier that announced a different one."""
    if snap.state is IfState.NON_QUERIER and snap.query_interval != snap.configured_query_interval:
        return _secs(snap.query_interval)
    return "-"


def _interface_lines(snap: IgmpSnapshot, verbose: bool) -> list[str]:
    oq = snap.other_querier_expires
    lines = [
        f" {snap.ifname}({snap.address}):",
        "   IGMP is enabled",
        f"   Current IGMP version is {snap.version}",
        f"   IGMP state: {'up' if snap.up else 'down'}",
        "   IGMP group policy: none",
        "   IGMP limit: -",
        f"   Value of query interval for IGMP (negotiated): {_negotiated(snap)}",
        "   Value of query interval for IGMP (configured): "
        + _secs(snap.configured_query_interval),
        f"   Value of other querier timeout for IGMP: {0 if oq is None else math.ceil(oq)} s",
        f"   Value of maximum query response time for IGMP: {_secs(snap.max_response)}",
        f"   Querier for IGMP: {_querier(snap)}",
    ]
    if verbose:
        c = snap.counters
        drops = sum(snap.dropped.values())
        by_reason = ", ".join(f"{r} {n}" for r, n in snap.dropped.items())
        lines += [
            f"   Value of robustness for IGMP: {snap.robustness}"
            f" (configured {snap.configured_robustness})",
            f"   Value of startup query interval for IGMP: {_secs(snap.startup_query_interval)}",
            f"   Value of startup query count for IGMP: {snap.startup_query_count}",
            "   Value of last member query interval for IGMP: "
            + _secs(snap.last_member_query_interval),
            f"   Value of last member query count for IGMP: {snap.last_member_query_count}",
            "   Value of other querier present interval for IGMP: "
            + _secs(snap.other_querier_present_interval),
            "   Value of group membership interval for IGMP: "
            + _secs(snap.group_membership_interval),
            f"   General query timer expiry: {_timer(snap.next_general_query)}",
            f"   Other querier present timer expiry: {_timer(snap.other_querier_expires)}",
            f"   Startup queries left: {snap.startup_queries_left}",
            f"   Received: queries {c.queries_received}, v1 reports {c.v1_reports_received},"
            f" v2 reports {c.v2_reports_received}, v3 reports {c.v3_reports_received},"
            f" leaves {c.leaves_received}",
            f"   Sent: general queries {c.general_queries_sent},"
            f" group-specific queries {c.group_queries_sent},"
            f" group-and-source-specific queries {c.source_queries_sent}",
            f"   Queries of another IGMP version: {c.version_mismatches}",
            f"   Dropped: {drops}" + (f" ({by_reason})" if drops else ""),
        ]
    lines.append("  " + _total(len(snap.groups), "reported"))
    return lines


def render_igmp_interface(
    snaps: Iterable[IgmpSnapshot], *, interface: str | None = None, verbose: bool = False
) -> str:
    """`display igmp interface [X] [verbose]`."""
    lines = [f"Interface information of VPN-Instance: {VPN_INSTANCE}"]
    for snap in _select(snaps, interface):
        lines += _interface_lines(snap, verbose)
    return "\n".join(lines)


def igmp_interface_json(
    snaps: Iterable[IgmpSnapshot], *, interface: str | None = None
) -> list[dict[str, Any]]:
    result = []
    for s in _select(snaps, interface):
        result.append(
            {
                "interface": s.ifname,
                "address": s.address,
                "state": "up" if s.up else "down",
                "role": s.state.name.lower(),
                "version": s.version,
                "querier": s.querier_address,
                "this_router_is_querier": s.querier,
                "robustness": s.robustness,
                "configured_robustness": s.configured_robustness,
                "query_interval_s": s.query_interval,
                "configured_query_interval_s": s.configured_query_interval,
                "max_response_s": s.max_response,
                "last_member_query_interval_s": s.last_member_query_interval,
                "last_member_query_count": s.last_member_query_count,
                "startup_query_interval_s": s.startup_query_interval,
                "startup_query_count": s.startup_query_count,
                "other_querier_present_interval_s": s.other_querier_present_interval,
                "group_membership_interval_s": s.group_membership_interval,
                "older_host_present_interval_s": s.older_host_present_interval,
                "next_general_query_s": s.next_general_query,
                "other_querier_expires_s": s.other_querier_expires,
                "startup_queries_left": s.startup_queries_left,
                "groups": len(s.groups),
                "counters": {
                    "queries_received": s.counters.queries_received,
                    "v1_reports_received": s.counters.v1_reports_received,
                    "v2_reports_received": s.counters.v2_reports_received,
                    "v3_reports_received": s.counters.v3_reports_received,
                    "leaves_received": s.counters.leaves_received,
                    "general_queries_sent": s.counters.general_queries_sent,
                    "group_queries_sent": s.counters.group_queries_sent,
                    "source_queries_sent": s.counters.source_queries_sent,
                    "version_mismatches": s.counters.version_mismatches,
                },
                "dropped_by_reason": dict(s.dropped),
            }
        )
    return result
