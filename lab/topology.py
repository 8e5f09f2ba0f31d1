"""Topology files (YAML, in the spirit of containerlab): nodes and links between endpoints.

A link endpoint is `Node:Interface`; for VRP nodes the interface is any VRP form
(`DeviceA:GigabitEthernet0/1/2`, `DeviceA:GE0/1/2`), for hosts a Linux name (`Source:eth0`),
for Open vSwitch and FRR nodes either (a VRP name becomes its Linux form, `ge0-1-2`, the
name the node's ovs-vsctl or frr.conf configuration uses).

`ipv6: true` at the top leaves IPv6 on in every namespace (the lab turns it off by default,
so captures carry no router solicitations or MLD): real peers such as FRR send IPv6 in
their own protocols (PIM Hellos list IPv6 secondary addresses) and the daemon must cope.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import yaml

from daemon.config import ConfigError, DeviceConfig, load
from daemon.config.ifnames import canonical, to_linux
from lab.frr import FrrConfig, FrrError
from lab.frr import parse_config as parse_frr
from lab.ovs import ConfigLine, OvsError, parse_config

TOPOLOGIES = Path(__file__).parent / "topologies"
DEFAULT_TOPOLOGY = TOPOLOGIES / "igmp-hot-backup" / "topology.yaml"
KINDS = ("vrp", "host", "ovs", "frr")
LINUX_NAMED = ("ovs", "frr")  # kinds whose ports are Linux names (VRP names mapped)


class TopologyError(Exception):
    """A topology file that cannot be built; the message names the file and the problem."""


@dataclass(frozen=True)
class Endpoint:
    node: str
    ifname: str  # VRP canonical name on a VRP node, Linux name on a host
    linux: str

    def __str__(self) -> str:
        return f"{self.node}:{self.ifname}"


@dataclass
class Node:
    name: str
    kind: str
    config_path: Path | None = None
    config: DeviceConfig | None = None
    host_interfaces: dict[str, list[IPv4Interface]] = field(default_factory=dict)
    gateways: list[IPv4Address] = field(default_factory=list)
    ovs_config: list[ConfigLine] = field(default_factory=list)
    frr: FrrConfig | None = None


@dataclass
class Topology:
    name: str
    path: Path
    nodes: dict[str, Node]
    links: list[tuple[Endpoint, Endpoint]]
    ipv6: bool = False

    def endpoint(self, node: str, ifname: str) -> Endpoint:
        """Find a link end by node and any interface name form (`GE0/1/2`, `eth0`)."""
        if node not in self.nodes:
            raise TopologyError(f"no node {node!r} (nodes: {', '.join(self.nodes)})")
        want = _ifname(self.nodes[node], ifname, f"{node}:{ifname}")
        for a, b in self.links:
            for end in (a, b):
                if end.node == node and end.ifname == want:
                    return end
        raise TopologyError(f"{node}:{ifname} is not a link endpoint in {self.path.name}")


def _ifname(node: Node, name: str, where: str) -> str:
    if node.kind == "host" or (node.kind in LINUX_NAMED and not _vrp_name(name)):
        return name
    try:
        vrp = canonical(name)
    except ValueError as exc:
        raise TopologyError(f"{where}: {exc}") from exc
    return (to_linux(vrp) or name) if node.kind == "frr" else vrp


def _vrp_name(name: str) -> bool:
    try:
        canonical(name)
    except ValueError:
        return False
    return True


def _linux(node: Node, ifname: str, where: str) -> str:
    if node.kind == "host" or (node.kind in LINUX_NAMED and not _vrp_name(ifname)):
        linux = ifname
    else:
        linux = to_linux(ifname) or ""
        if not linux or linux == "lo":
            raise TopologyError(f"{where}: {ifname} cannot be a link endpoint")
    if not 0 < len(linux) <= 15 or "/" in linux or " " in linux:
        raise TopologyError(f"{where}: {linux!r} is not a valid Linux interface name")
    return linux


def load_topology(path: str | Path = DEFAULT_TOPOLOGY) -> Topology:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TopologyError(f"{path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict):
        raise TopologyError(f"{path}: expected a mapping with 'nodes' and 'links'")
    nodes: dict[str, Node] = {}
    for name, spec in data["nodes"].items():
        nodes[str(name)] = _node(path, str(name), spec)
    links: list[tuple[Endpoint, Endpoint]] = []
    used: set[tuple[str, str]] = set()
    for i, pair in enumerate(data.get("links") or [], 1):
        where = f"{path.name}: link {i}"
        if not (isinstance(pair, list) and len(pair) == 2):
            raise TopologyError(f"{where}: expected [Node:Interface, Node:Interface]")
        ends = []
        for text in pair:
            node_name, sep, ifname = str(text).partition(":")
            if not sep or node_name not in nodes:
                raise TopologyError(f"{where}: bad endpoint {text!r} (unknown node or no ':')")
            node = nodes[node_name]
            canon = _ifname(node, ifname, where)
            if (node_name, canon) in used:
                raise TopologyError(f"{where}: {node_name}:{canon} is used by two links")
            used.add((node_name, canon))
            ends.append(Endpoint(node_name, canon, _linux(node, canon, where)))
        links.append((ends[0], ends[1]))
    ipv6 = data.get("ipv6", False)
    if not isinstance(ipv6, bool):
        raise TopologyError(f"{path}: 'ipv6' is true or false")
    return Topology(str(data.get("name") or path.parent.name), path, nodes, links, ipv6)


def _node(path: Path, name: str, spec: object) -> Node:
    where = f"{path.name}: node {name}"
    if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
        raise TopologyError(f"{where}: 'kind' must be one of {', '.join(KINDS)}")
    if len(name) > 20 or not name.replace("-", "").isalnum():
        raise TopologyError(f"{where}: node names are letters, digits and '-' (<= 20)")
    needs = {"vrp": "a VRP configuration", "ovs": "ovs-vsctl commands",
             "frr": "an integrated frr.conf"}
    if spec["kind"] in needs:
        if not spec.get("config"):
            raise TopologyError(f"{where}: a {spec['kind']} node needs 'config' "
                                f"({needs[spec['kind']]})")
        cfg_path = (path.parent / str(spec["config"])).resolve()
        try:
            if spec["kind"] == "vrp":
                return Node(name, "vrp", cfg_path, load(cfg_path))
            if spec["kind"] == "ovs":
                return Node(name, "ovs", cfg_path, ovs_config=parse_config(
                    cfg_path.read_text(), cfg_path.name))
            return Node(name, "frr", cfg_path, frr=parse_frr(cfg_path))
        except (ConfigError, OSError, OvsError, FrrError) as exc:
            raise TopologyError(f"{where}: {exc}") from exc
    try:
        ifs = {str(k): [IPv4Interface(a) for a in (v or [])]
               for k, v in (spec.get("interfaces") or {}).items()}
        gws = [IPv4Address(g) for g in spec.get("gateways") or []]
    except ValueError as exc:
        raise TopologyError(f"{where}: {exc}") from exc
    return Node(name, "host", host_interfaces=ifs, gateways=gws)


def materialize(src: Path, out: Path) -> Path:
    """A self-contained copy of a topology in `out`: every node's config file copied in
    (variants share files with `../`), so a test or benchmark may edit its copies."""
    try:
        data = yaml.safe_load(src.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TopologyError(f"{src}: {exc}") from exc
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    taken: set[str] = set()
    for name, spec in (data.get("nodes") or {}).items():
        if isinstance(spec, dict) and spec.get("config"):
            cfg = (src.parent / str(spec["config"])).resolve()
            target = cfg.name if cfg.name not in taken else f"{name}-{cfg.name}"
            taken.add(target)
            shutil.copyfile(cfg, out / target)
            spec["config"] = target
    dst = out / "topology.yaml"
    dst.write_text(f"# materialized from {src}\n" + yaml.safe_dump(data, sort_keys=False))
    return dst
