"""The lab's embedded routing: what OSPF would converge to, computed once from the topology.

Each router advertises the prefixes of its interfaces covered by its `ospf` network
statements; two routers are neighbours over a link when both ends are such interfaces in one
subnet, a link being a veth between them or an Open vSwitch node both are linked to (a
LAN). Every router gets a route to every prefix it does not own through each neighbour that
can reach it without coming back, metric growing with hop count, so alternates sit behind
the best path. With `ignore_routes_with_linkdown` the kernel skips a route whose link
lost carrier, and the next one takes over: a pulled A-B link moves 1.1.1.1 <-> 3.3.3.3
through DeviceD without any routing protocol running.

An FRR node takes part as if it ran OSPF over every addressed interface of its frr.conf and
advertised all of them (its loopback too); the lab installs its routes into the node's
kernel table, where zebra picks them up as kernel routes for pimd's RPF lookups.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from itertools import combinations

from daemon.config import DeviceConfig
from daemon.kernel.links import Route
from lab.topology import Endpoint, Topology

METRIC_PER_HOP = 10


@dataclass(frozen=True)
class Adjacency:
    node: str
    dev: str  # local Linux interface
    neighbour: str
    via: IPv4Address


@dataclass(frozen=True)
class Router:
    """A routing node as the embedded routing sees it: addresses per interface (endpoint
    names), the first one primary, and the ones in OSPF."""

    addresses: dict[str, list[IPv4Interface]]
    routed: frozenset[IPv4Interface]

    @staticmethod
    def of_vrp(cfg: DeviceConfig) -> Router:
        addresses = {itf.name: [a for a in [itf.address, *itf.sub_addresses] if a is not None]
                     for itf in cfg.interfaces.values()}
        routed = frozenset(a for addrs in addresses.values() for a in addrs
                           if any(o.covers(a.ip) for o in cfg.ospf.values()))
        return Router(addresses, routed)

    @staticmethod
    def of_frr(addresses: dict[str, list[IPv4Interface]]) -> Router:
        return Router(addresses, frozenset(a for addrs in addresses.values() for a in addrs))

    def ospf_address(self, ifname: str) -> IPv4Interface | None:
        addrs = self.addresses.get(ifname) or []
        return addrs[0] if addrs and addrs[0] in self.routed else None

    def advertised(self) -> set[IPv4Network]:
        return {a.network for a in self.routed}

    def connected(self) -> set[IPv4Network]:
        return {a.network for addrs in self.addresses.values() for a in addrs}


def routers(topo: Topology) -> dict[str, Router]:
    out = {}
    for name, node in topo.nodes.items():
        if node.config is not None:
            out[name] = Router.of_vrp(node.config)
        elif node.frr is not None:
            out[name] = Router.of_frr(node.frr.interfaces)
    return out


def _router_pairs(topo: Topology) -> list[tuple[Endpoint, Endpoint]]:
    """Router ends that share a link: a veth between them, or an Open vSwitch node both are
    linked to (one LAN: VLAN tags are not looked at)."""
    pairs = list(topo.links)
    lans: dict[str, list[Endpoint]] = {}
    for a, b in topo.links:
        for end, other in ((a, b), (b, a)):
            if topo.nodes[other.node].kind == "ovs" and topo.nodes[end.node].kind != "ovs":
                lans.setdefault(other.node, []).append(end)
    for ends in lans.values():
        pairs += list(combinations(ends, 2))
    return pairs


def adjacencies(topo: Topology) -> list[Adjacency]:
    nodes = routers(topo)
    out = []
    for a, b in _router_pairs(topo):
        ra, rb = nodes.get(a.node), nodes.get(b.node)
        if ra is None or rb is None:
            continue
        ia, ib = ra.ospf_address(a.ifname), rb.ospf_address(b.ifname)
        if ia is None or ib is None or ia.network != ib.network:
            continue
        out.append(Adjacency(a.node, a.linux, b.node, ib.ip))
        out.append(Adjacency(b.node, b.linux, a.node, ia.ip))
    return out


def _hops(adj: list[Adjacency], start: str, excluded: str) -> dict[str, int]:
    """Hop counts from `start` in the router graph with `excluded` removed."""
    dist = {start: 0}
    queue = deque([start])
    while queue:
        cur = queue.popleft()
        for e in adj:
            if e.node == cur and e.neighbour != excluded and e.neighbour not in dist:
                dist[e.neighbour] = dist[cur] + 1
                queue.append(e.neighbour)
    return dist


def compute_routes(topo: Topology) -> dict[str, list[Route]]:
    nodes = routers(topo)
    owners: dict[IPv4Network, set[str]] = {}
    for name, router in nodes.items():
        for prefix in router.advertised():
            owners.setdefault(prefix, set()).add(name)
    adj = adjacencies(topo)
    table: dict[str, list[Route]] = {}
    for name, router in nodes.items():
        connected = router.connected()
        routes = []
        mine = sorted((e for e in adj if e.node == name), key=lambda e: (e.dev, e.via))
        for prefix in sorted(owners):
            if prefix in connected:
                continue
            for order, e in enumerate(mine):
                hops = _hops(adj, e.neighbour, excluded=name)
                best = min((hops[o] for o in owners[prefix] if o in hops), default=None)
                if best is None:
                    continue
                routes.append(Route(prefix, e.via, e.dev,
                                    METRIC_PER_HOP * (best + 1) + order))
        table[name] = routes
    return table
