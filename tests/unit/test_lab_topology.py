from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lab.ovs import enabled_members, parse_config
from lab.routes import adjacencies, compute_routes
from lab.topology import DEFAULT_TOPOLOGY, TOPOLOGIES, TopologyError, load_topology, materialize


def test_seed_topology_wiring() -> None:
    topo = load_topology(DEFAULT_TOPOLOGY)
    assert set(topo.nodes) == {"DeviceA", "DeviceB", "DeviceC", "DeviceD", "Source", "Receiver"}
    pairs = {frozenset((str(a), str(b))) for a, b in topo.links}
    assert frozenset(("DeviceA:GigabitEthernet0/1/2", "DeviceC:GigabitEthernet0/1/2")) in pairs
    assert frozenset(("DeviceB:GigabitEthernet0/1/3", "DeviceC:GigabitEthernet0/1/3")) in pairs
    assert topo.endpoint("DeviceA", "GE0/1/2").linux == "ge0-1-2"
    assert topo.endpoint("Receiver", "eth0").linux == "eth0"
    with pytest.raises(TopologyError, match="not a link endpoint"):
        topo.endpoint("DeviceA", "GE0/1/9")
    with pytest.raises(TopologyError, match="no node"):
        topo.endpoint("DeviceZ", "GE0/1/1")


def _routes(node: str) -> dict[IPv4Network, list[tuple[IPv4Address, str, int]]]:
    table = compute_routes(load_topology(DEFAULT_TOPOLOGY))
    out: dict[IPv4Network, list[tuple[IPv4Address, str, int]]] = {}
    for r in sorted(table[node], key=lambda r: r.metric):
        out.setdefault(r.dst, []).append((r.via, r.dev, r.metric))
    return out


def test_seed_adjacencies_follow_ospf_statements() -> None:
    adj = {(a.node, a.neighbour) for a in adjacencies(load_topology(DEFAULT_TOPOLOGY))}
    assert adj == {("DeviceA", "DeviceB"), ("DeviceB", "DeviceA"), ("DeviceA", "DeviceD"),
                   ("DeviceD", "DeviceA"), ("DeviceB", "DeviceD"), ("DeviceD", "DeviceB")}


def test_loopback_routes_have_an_alternate_through_devicd() -> None:
    a = _routes("DeviceA")
    best, alt = a[IPv4Network("3.3.3.3/32")]
    assert (best[0], best[1]) == (IPv4Address("10.0.13.3"), "ge0-1-1")
    assert (alt[0], alt[1]) == (IPv4Address("10.0.12.2"), "ge0-1-3")
    assert best[2] < alt[2]
    b = _routes("DeviceB")
    assert [v for v, _, _ in b[IPv4Network("1.1.1.1/32")]] == [IPv4Address("10.0.13.1"),
                                                              IPv4Address("10.0.23.2")]
    # connected prefixes are never routed; the source subnet is reachable from A and B
    assert IPv4Network("10.0.13.0/24") not in a
    assert IPv4Network("10.0.5.0/24") in a and IPv4Network("10.0.5.0/24") in b
    # Eth-Trunk1 subnets are advertised (both routers' networks include them)
    assert IPv4Network("10.0.35.0/24") in a and IPv4Network("10.0.15.0/24") in b
    d = _routes("DeviceD")
    assert d[IPv4Network("1.1.1.1/32")][0][0] == IPv4Address("10.0.12.1")
    assert compute_routes(load_topology(DEFAULT_TOPOLOGY))["DeviceC"] == []


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("nodes: [1, 2]", "expected a mapping"),
    ("nodes: {A: {kind: router}}", "'kind' must be one of"),
    ("nodes: {A: {kind: vrp}}", "needs 'config'"),
    ("nodes: {A: {kind: vrp, config: missing.cfg}}", "missing.cfg"),
    ("nodes: {H: {kind: host}}\nlinks: [[H:eth0]]", "expected [Node:Interface"),
    ("nodes: {H: {kind: host}}\nlinks: [[H:eth0, X:eth0]]", "unknown node"),
    ("nodes: {H: {kind: host}, G: {kind: host}}\nlinks: [[H:eth0, G:eth0], [H:eth0, G:eth1]]",
     "used by two links"),
    ("nodes: {H: {kind: host}, G: {kind: host}}\nlinks: [[H:a/b, G:eth0]]",
     "not a valid Linux interface name"),
    ("nodes: {H: {kind: host, interfaces: {eth0: [10.0.0.300/24]}}}", "10.0.0.300"),
    ("nodes: {H: {kind: host}}\nlinks: [\n", "while parsing"),
])
def test_bad_topologies_name_the_problem(tmp_path: Path, yaml_text: str, message: str) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(yaml_text)
    with pytest.raises(TopologyError) as err:
        load_topology(f)
    assert message in str(err.value)


def test_vrp_endpoint_names_are_checked(tmp_path: Path) -> None:
    cfg = tmp_path / "R.cfg"
    cfg.write_text("#\nsysname R\n#\nreturn\n")
    f = tmp_path / "t.yaml"
    f.write_text("nodes: {R: {kind: vrp, config: R.cfg}, H: {kind: host}}\n"
                 "links: [[R:Foo0/1, H:eth0]]\n")
    with pytest.raises(TopologyError, match="link 1"):
        load_topology(f)
    f.write_text("nodes: {R: {kind: vrp, config: R.cfg}, H: {kind: host}}\n"
                 "links: [[R:LoopBack0, H:eth0]]\n")
    with pytest.raises(TopologyError, match="cannot be a link endpoint"):
        load_topology(f)


VARIANTS = sorted(TOPOLOGIES.glob("*/topology.yaml"))


@pytest.mark.parametrize("path", VARIANTS, ids=[p.parent.name for p in VARIANTS])
def test_every_shipped_topology_loads(path: Path) -> None:
    topo = load_topology(path)
    assert topo.links


def test_ovs_variant_names_ports_like_the_seed() -> None:
    """The OVS DeviceC takes the seed's endpoints: VRP names become the Linux port names its
    ovs-vsctl lines use, so scenarios address both DeviceCs alike."""
    topo = load_topology(TOPOLOGIES / "igmp-hot-backup-ovs" / "topology.yaml")
    c = topo.nodes["DeviceC"]
    assert c.kind == "ovs" and c.config is None
    assert topo.endpoint("DeviceC", "GE0/1/2").linux == "ge0-1-2"
    ports = {w for line in c.ovs_config for w in line.args if w.startswith("ge0-")}
    assert ports == {e.linux for a, b in topo.links for e in (a, b) if e.node == "DeviceC"}
    # only the routers' configurations feed the embedded routing
    assert "DeviceC" not in compute_routes(topo)


def test_shared_id_variant_differs_from_the_seed_only_in_devicebs_lacp_identity() -> None:
    seed = load_topology(DEFAULT_TOPOLOGY).nodes
    shared = load_topology(TOPOLOGIES / "igmp-hot-backup-shared-id" / "topology.yaml").nodes
    a, b = shared["DeviceA"].config, shared["DeviceB"].config
    assert a is not None and b is not None
    # an E-Trunk's Eth-Trunks present `lacp e-trunk priority` (default on both), not
    # `lacp priority` (DeviceA's 100 is for its other Eth-Trunks)
    assert (b.lacp_etrunk_priority_effective, b.lacp_etrunk_system_id) == (
        a.lacp_etrunk_priority_effective, a.lacp_etrunk_system_id)
    old = seed["DeviceB"].config
    assert old is not None and old.lacp_etrunk_system_id != a.lacp_etrunk_system_id


def test_materialize_copies_shared_files_for_editing(tmp_path: Path) -> None:
    src = TOPOLOGIES / "igmp-hot-backup-ovs-shared-id" / "topology.yaml"
    path = materialize(src, tmp_path / "copy")
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "DeviceA.cfg", "DeviceB.cfg", "DeviceC.ovs", "DeviceD.cfg", "topology.yaml"]
    copy, orig = load_topology(path), load_topology(src)
    assert [(a, b) for a, b in copy.links] == [(a, b) for a, b in orig.links]
    assert (copy.nodes["DeviceB"].config_path.read_text()  # type: ignore[union-attr]
            == orig.nodes["DeviceB"].config_path.read_text())  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "message"), [
    ("add-br br0 'unterminated\n", "t.ovs:1: No closing quotation"),
    ("# ok\n--db=unix:/x show\n", "t.ovs:2: global options belong to the lab"),
])
def test_bad_ovs_configurations_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "t.ovs").write_text(text)
    f = tmp_path / "t.yaml"
    f.write_text("nodes: {S: {kind: ovs, config: t.ovs}}\n")
    with pytest.raises(TopologyError, match=message):
        load_topology(f)
    f.write_text("nodes: {S: {kind: ovs}}\n")
    with pytest.raises(TopologyError, match="needs 'config'"):
        load_topology(f)


def test_ovs_configuration_lines_keep_their_numbers() -> None:
    lines = parse_config("# c\n\nadd-br br0 -- set bridge br0 datapath_type=netdev\n"
                         "add-port br0 p1 tag=100  # access\n", "x.ovs")
    assert [(ln.number, ln.args) for ln in lines] == [
        (3, ["add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev"]),
        (4, ["add-port", "br0", "p1", "tag=100"])]


def test_enabled_members_from_bond_show() -> None:
    text = ("---- bond0 ----\nbond_mode: active-backup\nlacp_status: negotiated\n\n"
            "member ge0-1-2: disabled\n  may_enable: false\n\n"
            "member ge0-1-3: enabled\n  active member\n  may_enable: true\n")
    assert enabled_members(text) == ["ge0-1-3"]
    assert enabled_members("") == []
