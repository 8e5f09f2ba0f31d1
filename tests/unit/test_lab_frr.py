"""FRR nodes in topology files: what the lab reads from frr.conf, and the embedded routing."""

from __future__ import annotations

from ipaddress import IPv4Interface
from pathlib import Path

import pytest

from lab.frr import FrrError, FrrNode, parse_config
from lab.routes import compute_routes
from lab.topology import DEFAULT_TOPOLOGY, TOPOLOGIES, TopologyError, load_topology

FRR_D = TOPOLOGIES / "igmp-hot-backup-frr" / "topology.yaml"


def write(tmp_path: Path, text: str, name: str = "frr.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_addresses_per_interface_and_the_daemons_the_file_uses(tmp_path: Path) -> None:
    cfg = parse_config(write(tmp_path, """\
! a comment
frr defaults traditional
interface eth0
 ip address 10.0.0.1/24
 ip address 10.0.1.1/24
 ip pim
 ipv6 address 2001:db8::1/64
exit
!
interface lo
 ip address 9.9.9.9/32
!
ip route 10.9.0.0/16 10.0.0.2
bfd
 peer 10.0.0.2 interface eth0
 exit
exit
"""))
    assert cfg.interfaces == {"eth0": [IPv4Interface("10.0.0.1/24"),
                                       IPv4Interface("10.0.1.1/24")],
                              "lo": [IPv4Interface("9.9.9.9/32")]}
    assert cfg.daemons == ("zebra", "staticd", "bfdd", "pimd")  # the start order


def test_only_zebra_for_a_file_without_protocols(tmp_path: Path) -> None:
    assert parse_config(write(tmp_path, "hostname x\n")).daemons == ("zebra",)
    # `ip pim bfd` on an interface needs bfdd too
    cfg = parse_config(write(tmp_path, "interface e\n ip pim\n ip pim bfd\nexit\n"))
    assert cfg.daemons == ("zebra", "bfdd", "pimd")


def test_a_bad_address_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(FrrError, match=r"frr.conf:3: bad address: ip address 10.0.0.300/24"):
        parse_config(write(tmp_path, "!\ninterface e\n ip address 10.0.0.300/24\n"))
    with pytest.raises(FrrError, match="No such file"):
        parse_config(tmp_path / "missing.conf")


def test_daemon_argv_keeps_everything_in_the_node_directory(tmp_path: Path) -> None:
    argv = FrrNode(tmp_path).argv("pimd")
    assert argv[0] == "/usr/lib/frr/pimd"
    for path_opt in ("-z", "--vty_socket", "-i", "-f"):
        assert argv[argv.index(path_opt) + 1].startswith(str(tmp_path))
    assert argv[argv.index("-P") + 1] == "0"  # no TCP vty


def test_frr_variant_endpoints_ipv6_and_the_same_routes_as_the_seed() -> None:
    topo = load_topology(FRR_D)
    assert topo.ipv6 and not load_topology(DEFAULT_TOPOLOGY).ipv6
    end = topo.endpoint("DeviceD", "GigabitEthernet0/1/3")
    assert (end.ifname, end.linux) == ("ge0-1-3", "ge0-1-3")
    assert topo.endpoint("DeviceD", "ge0-1-3") == end
    assert topo.nodes["DeviceD"].frr is not None
    # FRR advertises what the seed's DeviceD advertises through OSPF: the same routes
    seed, frr = compute_routes(load_topology(DEFAULT_TOPOLOGY)), compute_routes(topo)
    assert frr == seed


def test_frr_node_errors(tmp_path: Path) -> None:
    write(tmp_path, "interface e\n ip address nonsense\n", "D.frr")
    bad = write(tmp_path, "nodes:\n  D: {kind: frr, config: D.frr}\n", "t.yaml")
    with pytest.raises(TopologyError, match=r"node D: D\.frr:2: bad address"):
        load_topology(bad)
    noconf = write(tmp_path, "nodes:\n  D: {kind: frr}\n", "t2.yaml")
    with pytest.raises(TopologyError, match="needs 'config'"):
        load_topology(noconf)
    flag = write(tmp_path, "ipv6: maybe\nnodes: {}\n", "t3.yaml")
    with pytest.raises(TopologyError, match="'ipv6' is true or false"):
        load_topology(flag)
