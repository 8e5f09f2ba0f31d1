"""The lab's embedded routing: what OSPF would converge to, computed once from the topology.

Each router advertises the prefixes of its interfaces covered by its `ospf` network
statements; two routers are neighbours over a link when both ends are such interfaces in one
subnet. Every router gets a route to every prefix it does not own through each neighbour
that can reach it without coming back, metric growing with hop count, so alternates sit
behind the best path. With `ignore_routes_with_linkdown` the kernel skips a route whose link
lost carrier, and the next one takes over: a pulled A-B link moves 1.1.1.1 <-> 3.3.3.3
through DeviceD without any routing protocol running.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from daemon.config import DeviceConfig
from daemon.kernel.links import Route
from lab.topology import Topology

METRIC_PER_HOP = 10


@dataclass(frozen=True)
class Adjacency:
    node: str
    dev: str  # local Linux interface
    neighbour: str
    via: IPv4Address


def _ospf_covers(cfg: DeviceConfig, addr: IPv4Address) -> bool:
    return any(o.covers(addr) for o in cfg.ospf.values())


def _ospf_address(cfg: DeviceConfig, ifname: str) -> IPv4Interface | None:
    try:
        itf = cfg.interface(ifname)
    except KeyError:
        return None
    if itf.address is None or not _ospf_covers(cfg, itf.address.ip):
        return None
    return itf.address


def advertised(cfg: DeviceConfig) -> set[IPv4Network]:
    return {a.network for itf in cfg.interfaces.values()
            for a in [itf.address, *itf.sub_addresses]
            if a is not None and _ospf_covers(cfg, a.ip)}


def adjacencies(topo: Topology) -> list[Adjacency]:
    out = []
    for a, b in topo.links:
        ca, cb = topo.nodes[a.node].config, topo.nodes[b.node].config
        if ca is None or cb is None:
            continue
        ia, ib = _ospf_address(ca, a.ifname), _ospf_address(cb, b.ifname)
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
    routers = {n: node.config for n, node in topo.nodes.items() if node.config is not None}
    owners: dict[IPv4Network, set[str]] = {}
    for name, cfg in routers.items():
        for prefix in advertised(cfg):
            owners.setdefault(prefix, set()).add(name)
    adj = adjacencies(topo)
    table: dict[str, list[Route]] = {}
    for name, cfg in routers.items():
        connected = {a.network for itf in cfg.interfaces.values()
                     for a in [itf.address, *itf.sub_addresses] if a is not None}
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
