"""Links, addresses and routes of the daemon's own namespace, through rtnetlink.

Quick calls use pyroute2's synchronous IPRoute (they take microseconds); link events come from
a raw netlink socket wrapped for trio, because pyroute2's async API is asyncio-only and its
sync bind()/get() pattern delivers each event one call late (LINUX-NOTES.md).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import trio
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTMGRP_LINK
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTNH_F_ONLINK = 4


@dataclass(frozen=True)
class LinkState:
    """What the kernel says about one interface."""

    ifname: str
    index: int
    admin_up: bool
    carrier: bool
    mac: bytes
    mtu: int = 1500
    rx_errors: int = 0
    tx_errors: int = 0

    @property
    def oper_up(self) -> bool:
        return self.admin_up and self.carrier


RTM_F_FIB_MATCH = 0x2000  # route get: the matching FIB entry, with its metric


@dataclass(frozen=True)
class Route:
    """A unicast route the lab computed for this device (see lab/routes.py)."""

    dst: IPv4Network
    via: IPv4Address
    dev: str
    metric: int


def _mac(text: str | None) -> bytes:
    return bytes.fromhex(text.replace(":", "")) if text else b"\0" * 6


def _link_state(msg) -> LinkState | None:
    name = msg.get("ifname")
    if not name:
        return None
    flags = msg["flags"]
    stats = msg.get("stats64") or {}
    return LinkState(
        ifname=name,
        index=msg["index"],
        admin_up=bool(flags & IFF_UP),
        carrier=bool(flags & IFF_LOWER_UP),
        mac=_mac(msg.get("address")),
        mtu=msg.get("mtu") or 1500,
        rx_errors=stats.get("rx_errors", 0) if stats else 0,
        tx_errors=stats.get("tx_errors", 0) if stats else 0,
    )


class Netlink:
    """Synchronous rtnetlink calls in the current namespace."""

    def __init__(self) -> None:
        self.ipr = IPRoute()
        self._names: dict[int, str] = {}  # ifindex -> name, refreshed by links()

    def close(self) -> None:
        self.ipr.close()

    def links(self) -> dict[str, LinkState]:
        out = {}
        for msg in self.ipr.get_links():
            st = _link_state(msg)
            if st:
                out[st.ifname] = st
        self._names = {st.index: name for name, st in out.items()}
        return out

    def index(self, ifname: str) -> int | None:
        found = self.ipr.link_lookup(ifname=ifname)
        return found[0] if found else None

    def set_admin(self, ifname: str, up: bool) -> None:
        idx = self.index(ifname)
        if idx is None:
            raise LookupError(f"no interface {ifname}")
        self.ipr.link("set", index=idx, state="up" if up else "down")

    def addresses(self, ifname: str) -> list[IPv4Interface]:
        idx = self.index(ifname)
        if idx is None:
            return []
        return [
            IPv4Interface(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}")
            for a in self.ipr.get_addr(family=socket.AF_INET, index=idx)
        ]

    def sync_addresses(self, ifname: str, wanted: Iterable[IPv4Interface],
                       keep: Iterable[IPv4Interface] = ()) -> None:
        """Make the interface's IPv4 addresses exactly `wanted` (plus `keep`, e.g. 127.0.0.1)."""
        idx = self.index(ifname)
        if idx is None:
            raise LookupError(f"no interface {ifname}")
        wanted = list(wanted)
        have = self.addresses(ifname)
        for addr in have:
            if addr not in wanted and addr not in keep:
                self.ipr.addr("del", index=idx, address=str(addr.ip),
                              prefixlen=addr.network.prefixlen)
        for addr in wanted:
            if addr not in have:
                self.ipr.addr("add", index=idx, address=str(addr.ip),
                              prefixlen=addr.network.prefixlen)

    def route_get(self, dst: IPv4Address) -> tuple[str, IPv4Address | None, int] | None:
        """The kernel's choice toward `dst`: (outgoing interface, gateway or None if
        connected, the route's metric), or None without a usable route. This is the RPF
        lookup."""
        try:
            found = self.ipr.route("get", dst=str(dst))
        except NetlinkError:
            return None
        if not found:
            return None
        msg = found[0]
        oif = msg.get("RTA_OIF")
        name = self._names.get(oif) if oif else None
        if name is None and oif:
            links = self.ipr.get_links(oif)
            name = links[0].get("ifname") if links else None
        if name is None:
            return None
        gw = msg.get("RTA_GATEWAY")
        return name, IPv4Address(gw) if gw else None, self._metric(dst)

    def _metric(self, dst: IPv4Address) -> int:
        """The metric of the route a lookup of `dst` matches: only a FIB-match lookup
        (RTM_F_FIB_MATCH) reports it; 0 for a connected route."""
        try:
            found = self.ipr.route("get", dst=str(dst), flags=RTM_F_FIB_MATCH)
        except NetlinkError:
            return 0
        return (found[0].get("RTA_PRIORITY") or 0) if found else 0

    def replace_route(self, route: Route) -> None:
        """Install or refresh one route; `onlink` lets it go in while the link has no carrier."""
        idx = self.index(route.dev)
        if idx is None:
            raise LookupError(f"no interface {route.dev}")
        self.ipr.route("replace", dst=str(route.dst), gateway=str(route.via), oif=idx,
                       priority=route.metric, flags=RTNH_F_ONLINK)


class LinkWatcher:
    """Delivers RTM_NEWLINK/RTM_DELLINK events as LinkState (or a name and None on delete)."""

    def __init__(self) -> None:
        raw = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        raw.bind((0, RTMGRP_LINK))
        self._raw = raw
        self.sock = trio.socket.from_stdlib_socket(raw)
        self.marshal = MarshalRtnl()

    def close(self) -> None:
        self.sock.close()

    def _drain(self) -> None:
        while True:
            try:
                self._raw.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise

    async def run(self, on_event: Callable[[str, LinkState | None], Awaitable[None]],
                  on_resync: Callable[[str], Awaitable[None]]) -> None:
        """Loop forever; when events were lost (ENOBUFS) call `on_resync("overflow")` so the
        caller re-reads the links.

        What queued up before the loop started (the socket opens before the caller's first
        dump, so nothing is missed) describes states older than the caller's own start-up
        work: replayed, it would take a port the caller has just set up down and up again.
        So the backlog is discarded and `on_resync("start")` re-reads the links instead."""
        self._drain()
        await on_resync("start")
        while True:
            try:
                data = await self.sock.recv(1 << 20)
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    await on_resync("overflow")
                    continue
                raise
            for msg in self.marshal.parse(data):
                if msg.get("family", 0) != socket.AF_UNSPEC:
                    continue  # AF_BRIDGE port notices: a DELLINK there is a port leaving a
                kind = msg["header"]["type"]  # bridge, not an interface going away
                st = _link_state(msg)
                if st is None:
                    continue
                if kind == RTM_DELLINK:
                    await on_event(st.ifname, None)
                elif kind == RTM_NEWLINK:
                    await on_event(st.ifname, st)


__all__ = ["LinkState", "LinkWatcher", "Netlink", "NetlinkError", "Route"]
