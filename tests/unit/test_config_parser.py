"""VRP text -> DeviceConfig: the seed's four files, every command, errors, unknowns, fuzz."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config import (
    ConfigError,
    DeviceConfig,
    InterfaceKind,
    SecurityKey,
    UnknownCommand,
    load,
    parse,
)

# the seed's configuration files exactly as the document gives them (the lab's copies grow
# the BFD sessions of roadmap step 4)
SEED_DIR = Path(__file__).resolve().parent / "data" / "seed"
SEED_CIPHER = "%^%#VQE;E!Dl&Rr]if$F>}w9uk5C>y-4|MS$unQ!#Mb#%^%#"


def seed_text(device: str) -> str:
    return (SEED_DIR / f"Device{device}.cfg").read_text()


def seed(device: str) -> DeviceConfig:
    return load(SEED_DIR / f"Device{device}.cfg")


def strip(obj: Any) -> Any:
    """A comparable form of a model that ignores line numbers, source and unknown commands."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: strip(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if f.name not in ("line", "source", "unknown")
        }
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


def net(text: str) -> IPv4Network:
    return IPv4Network(text)


# --- the seed's configuration files, every field ----------------------------------------


def test_seed_files_keep_the_seed_text() -> None:
    a = seed_text("A")
    assert a.startswith("#\nsysname DeviceA\n#\n")
    assert f" security-key cipher {SEED_CIPHER} \n" in a
    assert "\ninterface NULL0 \n" in seed_text("C")
    assert "\n#               \n" in seed_text("D")
    for device in "ABCD":
        assert seed_text(device).endswith("#\nreturn\n")


@pytest.mark.parametrize("device", "ABCD")
def test_seed_has_no_unknown_commands(device: str) -> None:
    assert seed(device).unknown == []


def test_device_a() -> None:
    cfg = seed("A")
    assert cfg.sysname == "DeviceA"
    assert cfg.source.endswith("DeviceA.cfg")
    assert cfg.vlans == []
    assert cfg.multicast_routing is True
    assert cfg.bfd_enabled is False
    assert cfg.bfd_sessions == {}
    assert cfg.lacp_priority == 100
    assert cfg.lacp_priority_effective == 100
    assert cfg.lacp_etrunk_system_id == "00e0-fc12-3455"
    assert cfg.lacp_etrunk_system_id_bytes == bytes.fromhex("00e0fc123455")
    assert cfg.lacp_etrunk_priority is None
    assert cfg.lacp_etrunk_priority_effective == 32768

    assert list(cfg.etrunks) == [1]
    et = cfg.etrunks[1]
    assert (et.id, et.line) == (1, 6)
    assert et.peer_address == ip("3.3.3.3")
    assert et.source_address == ip("1.1.1.1")
    assert et.security_key is not None
    assert et.security_key.text == SEED_CIPHER
    assert et.security_key.key == SEED_CIPHER.encode()
    assert (et.priority, et.hello_100ms, et.hold_multiplier) == (100, 10, 20)
    assert (et.revert_delay_s, et.revert_enabled, et.track_bfd, et.port) == (120, True, None, 1025)

    rbs = cfg.rbs["service1"]
    assert (rbs.name, rbs.line, rbs.index) == ("service1", 13, 1)
    assert (rbs.peer, rbs.source, rbs.port) == (ip("3.3.3.3"), ip("1.1.1.1"), 1025)

    rbp = cfg.rbp["profile1"]
    assert (rbp.name, rbp.line, rbp.index) == ("profile1", 16, 0x1000)
    assert rbp.service_types == ["igmp"]
    assert (rbp.backup_id, rbp.rbs, rbp.peer_backup) == (10, "service1", "hot")
    assert (rbp.etrunk, rbp.eth_trunk) == (1, 1)

    assert list(cfg.interfaces) == [
        "Eth-Trunk1",
        "GigabitEthernet0/1/1",
        "GigabitEthernet0/1/2",
        "GigabitEthernet0/1/3",
        "Loopback0",
        "NULL0",
    ]
    trunk = cfg.interfaces["Eth-Trunk1"]
    assert (trunk.kind, trunk.line, trunk.shutdown, trunk.admin_up) == (
        InterfaceKind.ETH_TRUNK, 22, None, True,
    )
    assert trunk.address == IPv4Interface("10.0.15.1/24")
    assert trunk.sub_addresses == []
    assert (trunk.pim_sm, trunk.igmp_enable, trunk.igmp_version) == (True, True, None)
    assert trunk.igmp_version_effective == 2
    assert (trunk.trunk_mode, trunk.etrunk, trunk.rbp) == ("lacp-static", 1, "profile1")
    assert (trunk.etrunk_mode, trunk.eth_trunk, trunk.portswitch) == (None, None, False)
    assert (trunk.lacp_timeout_fast, trunk.least_active_links, trunk.max_active_links) == (
        False, None, None,
    )
    assert (trunk.linux_name, trunk.short_name) == ("eth-trunk1", "Eth-Trunk1")

    ge1 = cfg.interfaces["GigabitEthernet0/1/1"]
    assert (ge1.kind, ge1.line, ge1.shutdown, ge1.admin_up) == (InterfaceKind.GE, 30, False, True)
    assert ge1.address == IPv4Interface("10.0.13.1/24")
    assert (ge1.pim_sm, ge1.igmp_enable, ge1.eth_trunk) == (True, False, None)
    assert (ge1.linux_name, ge1.short_name) == ("ge0-1-1", "GE0/1/1")

    member = cfg.interfaces["GigabitEthernet0/1/2"]
    assert (member.shutdown, member.eth_trunk, member.address, member.pim_sm) == (
        False, 1, None, False,
    )
    assert member.lacp_port_priority is None
    assert cfg.eth_trunk_members(1) == [member]
    assert cfg.eth_trunk_members(2) == []

    ge3 = cfg.interfaces["GigabitEthernet0/1/3"]
    assert (ge3.address, ge3.pim_sm) == (IPv4Interface("10.0.12.1/24"), True)

    lo = cfg.interfaces["Loopback0"]
    assert (lo.kind, lo.address, lo.linux_name) == (
        InterfaceKind.LOOPBACK, IPv4Interface("1.1.1.1/32"), "lo",
    )
    assert cfg.loopback_address() == ip("1.1.1.1")

    null = cfg.interfaces["NULL0"]
    assert (null.kind, null.line, null.linux_name, null.admin_up) == (
        InterfaceKind.NULL, 47, None, True,
    )

    assert list(cfg.ospf) == [1]
    ospf = cfg.ospf[1]
    assert (ospf.process, ospf.line, ospf.router_id) == (1, 49, None)
    assert ospf.areas == {
        "0.0.0.0": [
            net("1.1.1.1/32"), net("10.0.12.0/24"), net("10.0.13.0/24"), net("10.0.15.0/24"),
        ]
    }
    assert ospf.covers(ip("10.0.13.3"))
    assert ospf.covers(ip("1.1.1.1"))
    assert not ospf.covers(ip("3.3.3.3"))

    assert cfg.pim is not None
    assert (cfg.pim.line, cfg.pim.static_rps) == (56, [ip("2.2.2.2")])


def test_device_b() -> None:
    cfg = seed("B")
    assert cfg.sysname == "DeviceB"
    assert cfg.multicast_routing is True
    assert cfg.lacp_priority is None
    assert cfg.lacp_priority_effective == 32768
    assert cfg.lacp_etrunk_system_id == "00e0-fc12-3456"
    et = cfg.etrunks[1]
    assert (et.peer_address, et.source_address) == (ip("1.1.1.1"), ip("3.3.3.3"))
    assert et.security_key is not None and et.security_key.text == SEED_CIPHER
    rbs = cfg.rbs["service1"]
    assert (rbs.peer, rbs.source, rbs.port, rbs.index) == (ip("1.1.1.1"), ip("3.3.3.3"), 1025, 1)
    rbp = cfg.rbp["profile1"]
    assert (rbp.service_types, rbp.backup_id, rbp.rbs, rbp.peer_backup) == (
        ["igmp"], 10, "service1", "hot",
    )
    assert (rbp.etrunk, rbp.eth_trunk, rbp.index) == (1, 1, 0x1000)
    trunk = cfg.interface("Eth-Trunk1")
    assert trunk.address == IPv4Interface("10.0.35.3/24")
    assert (trunk.pim_sm, trunk.igmp_enable, trunk.trunk_mode) == (True, True, "lacp-static")
    assert (trunk.etrunk, trunk.rbp) == (1, "profile1")
    assert cfg.interface("GE0/1/1").address == IPv4Interface("10.0.13.3/24")
    assert cfg.interface("GE0/1/2").address == IPv4Interface("10.0.23.3/24")
    assert cfg.interface("GE0/1/2").pim_sm is True
    member = cfg.interface("ge 0/1/3")
    assert (member.eth_trunk, member.shutdown, member.address) == (1, False, None)
    assert cfg.eth_trunk_members(1) == [member]
    assert cfg.loopback_address() == ip("3.3.3.3")
    assert cfg.ospf[1].areas == {
        "0.0.0.0": [
            net("3.3.3.3/32"), net("10.0.13.0/24"), net("10.0.23.0/24"), net("10.0.35.0/24"),
        ]
    }
    assert cfg.pim is not None and cfg.pim.static_rps == [ip("2.2.2.2")]


def test_device_c() -> None:
    cfg = seed("C")
    assert cfg.sysname == "DeviceC"
    assert cfg.vlans == [100]
    assert cfg.multicast_routing is True
    assert cfg.etrunks == {} and cfg.rbs == {} and cfg.rbp == {}
    assert cfg.pim is None
    assert cfg.lacp_priority is None and cfg.lacp_etrunk_system_id is None
    assert cfg.lacp_etrunk_system_id_bytes is None
    trunk = cfg.interface("Eth-Trunk1")
    assert (trunk.portswitch, trunk.link_type, trunk.default_vlan, trunk.trunk_mode) == (
        True, "access", 100, "lacp-static",
    )
    assert (trunk.address, trunk.pim_sm, trunk.igmp_enable, trunk.etrunk) == (
        None, False, False, None,
    )
    ge1 = cfg.interface("GE0/1/1")
    assert (ge1.portswitch, ge1.shutdown, ge1.link_type, ge1.default_vlan) == (
        True, False, "access", 100,
    )
    assert [m.name for m in cfg.eth_trunk_members(1)] == [
        "GigabitEthernet0/1/2",
        "GigabitEthernet0/1/3",
    ]
    assert cfg.interface("NULL0").line == 31
    assert cfg.loopback_address() == ip("5.5.5.5")
    assert cfg.ospf[1].areas == {"0.0.0.0": [net("5.5.5.5/32")]}


def test_device_d() -> None:
    cfg = seed("D")
    assert cfg.sysname == "DeviceD"
    assert cfg.multicast_routing is True
    assert list(cfg.interfaces) == [
        "GigabitEthernet0/1/1",
        "GigabitEthernet0/1/2",
        "GigabitEthernet0/1/3",
        "Loopback0",
        "NULL0",
    ]
    assert cfg.interface("GE0/1/1").line == 6  # after the whitespace-only "#" line
    addresses = {n: i.address for n, i in cfg.interfaces.items()}
    assert addresses == {
        "GigabitEthernet0/1/1": IPv4Interface("10.0.5.2/24"),
        "GigabitEthernet0/1/2": IPv4Interface("10.0.23.2/24"),
        "GigabitEthernet0/1/3": IPv4Interface("10.0.12.2/24"),
        "Loopback0": IPv4Interface("2.2.2.2/32"),
        "NULL0": None,
    }
    assert all(cfg.interface(f"GE0/1/{n}").pim_sm for n in (1, 2, 3))
    assert cfg.ospf[1].areas == {
        "0.0.0.0": [net("2.2.2.2/32"), net("10.0.5.0/24"), net("10.0.12.0/24"), net("10.0.23.0/24")]
    }
    assert cfg.pim is not None and cfg.pim.static_rps == [ip("2.2.2.2")]
    assert cfg.etrunks == {} and cfg.bfd_sessions == {}


def test_both_e_trunk_devices_derive_the_same_key() -> None:
    a, b = seed("A").etrunks[1].security_key, seed("B").etrunks[1].security_key
    assert a is not None and b is not None
    assert a.key == b.key == SEED_CIPHER.encode()
    assert a == b


def test_interface_lookup_by_any_spelling() -> None:
    cfg = seed("A")
    assert cfg.interface("GigabitEthernet0/1/2") is cfg.interface("ge0/1/2")
    assert cfg.interface("eth-trunk 1").name == "Eth-Trunk1"
    assert cfg.interface("LoopBack0").name == "Loopback0"
    with pytest.raises(KeyError):
        cfg.interface("GE0/1/9")
    with pytest.raises(KeyError):
        cfg.interface("not an interface")


# --- every command --------------------------------------------------------------------------

FULL_KEY = SecurityKey.from_clear("S3cret-key")

FULL = f"""#
sysname Full-Device
#
vlan batch 10 100 200 to 210
#
multicast routing-enable
#
bfd
#
e-trunk port 1026
#
e-trunk 1
 peer-address 3.3.3.3 source-address 1.1.1.1
 priority 10
 timer hello 5
 timer hold-on-failure multiplier 3
 timer revert delay 30
 revert disable
 security-key cipher {FULL_KEY.render_cipher()}
 e-trunk track bfd-session session-name to-b
#
e-trunk 2
 peer-address 3.3.3.3 source-address 1.1.1.1
#
lacp priority 100
lacp e-trunk system-id 00e0-fc12-3455
lacp e-trunk priority 200
#
remote-backup-service service1
 peer 3.3.3.3 source 1.1.1.1 port 1025
#
remote-backup-service service2
#
remote-backup-profile profile1
 service-type igmp
 backup-id 10 remote-backup-service service1
 peer-backup hot
 e-trunk 1 eth-trunk 1
#
remote-backup-profile profile2
 peer-backup cold
#
interface Eth-Trunk1
 ip address 10.0.15.1 255.255.255.0
 ip address 10.0.16.1 255.255.255.0 sub
 pim sm
 igmp enable
 igmp version 3
 mode lacp-static
 lacp timeout fast
 least active-linknumber 1
 max active-linknumber 2
 e-trunk 1
 e-trunk mode auto
 remote-backup-profile profile1
#
interface Eth-Trunk2
 portswitch
 shutdown
 port link-type access
 port default vlan 10
 mode manual load-balance
#
interface GigabitEthernet0/1/1
 undo shutdown
 ip address 10.0.13.1 255.255.255.0
 pim sm
#
interface GigabitEthernet0/1/2
 undo shutdown
 eth-trunk 1
 lacp priority 100
#
interface XGigabitEthernet0/0/1
 eth-trunk 2
#
interface Vlanif100
 ip address 192.168.100.1 255.255.255.0
 igmp enable
 remote-backup-profile profile2
#
interface Loopback0
 ip address 1.1.1.1 255.255.255.255
#
interface Loopback1
 ip address 11.11.11.11 255.255.255.255
 pim sm
#
interface NULL0
#
bfd to-b bind peer-ip 3.3.3.3 source-ip 1.1.1.1
 discriminator local 10
 discriminator remote 20
 min-tx-interval 50
 min-rx-interval 60
 detect-multiplier 5
 commit
#
bfd link bind peer-ip 10.0.13.3 interface GigabitEthernet0/1/1
 discriminator local 11
#
ospf 1 router-id 1.1.1.1
 area 0.0.0.0
  network 1.1.1.1 0.0.0.0
  network 10.0.13.0 0.0.0.255
 area 0.0.0.1
  network 10.0.15.0 0.0.0.255
#
ospf 2
#
pim
 static-rp 2.2.2.2
 static-rp 2.2.2.3
 spt-switch-threshold infinity
#
return
"""


def test_every_command() -> None:
    cfg = parse(FULL, "full.cfg")
    assert cfg.unknown == []
    assert cfg.sysname == "Full-Device"
    assert cfg.vlans == [10, 100, *range(200, 211)]
    assert cfg.bfd_enabled and cfg.multicast_routing
    assert cfg.etrunk_port == 1026
    assert (cfg.lacp_priority, cfg.lacp_etrunk_priority) == (100, 200)
    assert cfg.lacp_etrunk_priority_effective == 200

    et = cfg.etrunks[1]
    assert (et.priority, et.hello_100ms, et.hold_multiplier, et.revert_delay_s) == (10, 5, 3, 30)
    assert (et.revert_enabled, et.track_bfd, et.port) == (False, "to-b", 1026)
    assert et.security_key == FULL_KEY
    assert et.security_key.key == b"S3cret-key"
    assert cfg.etrunks[2].port == 1026
    assert cfg.etrunks[2].security_key is None

    assert [r.index for r in cfg.rbs.values()] == [1, 2]
    assert cfg.rbs["service2"].peer is None
    assert [p.index for p in cfg.rbp.values()] == [0x1000, 0x1001]
    assert cfg.rbp["profile2"].peer_backup == "cold"
    assert cfg.rbp["profile2"].service_types == []

    t1 = cfg.interface("Eth-Trunk1")
    assert t1.sub_addresses == [IPv4Interface("10.0.16.1/24")]
    assert (t1.igmp_version, t1.igmp_version_effective) == (3, 3)
    assert (t1.lacp_timeout_fast, t1.least_active_links, t1.max_active_links) == (True, 1, 2)
    assert (t1.etrunk, t1.etrunk_mode) == (1, "auto")
    t2 = cfg.interface("Eth-Trunk2")
    assert (t2.portswitch, t2.shutdown, t2.admin_up, t2.trunk_mode) == (True, True, False, "manual")
    assert (t2.link_type, t2.default_vlan) == ("access", 10)
    assert cfg.interface("GE0/1/2").lacp_port_priority == 100
    xge = cfg.interface("XGE0/0/1")
    assert (xge.kind, xge.eth_trunk, xge.shutdown, xge.admin_up) == (
        InterfaceKind.XGE, 2, None, False,
    )
    assert cfg.eth_trunk_members(2) == [xge]
    vlanif = cfg.interface("Vlanif100")
    assert (vlanif.kind, vlanif.igmp_enable, vlanif.rbp, vlanif.linux_name) == (
        InterfaceKind.VLANIF, True, "profile2", "vlanif100",
    )
    assert cfg.interface("Loopback1").linux_name == "loop1"

    to_b = cfg.bfd_sessions["to-b"]
    assert (to_b.peer_ip, to_b.source_ip, to_b.interface, to_b.multihop) == (
        ip("3.3.3.3"), ip("1.1.1.1"), None, True,
    )
    assert (to_b.discriminator_local, to_b.discriminator_remote, to_b.committed) == (10, 20, True)
    assert (to_b.min_tx_ms, to_b.min_rx_ms, to_b.detect_multiplier) == (50, 60, 5)
    link = cfg.bfd_sessions["link"]
    assert (link.interface, link.multihop, link.committed) == ("GigabitEthernet0/1/1", False, False)
    assert (link.min_tx_ms, link.min_rx_ms, link.detect_multiplier) == (10, 10, 3)

    assert cfg.ospf[1].router_id == ip("1.1.1.1")
    assert cfg.ospf[1].areas == {
        "0.0.0.0": [net("1.1.1.1/32"), net("10.0.13.0/24")],
        "0.0.0.1": [net("10.0.15.0/24")],
    }
    assert cfg.ospf[2].areas == {}
    assert cfg.pim is not None and cfg.pim.static_rps == [ip("2.2.2.2"), ip("2.2.2.3")]
    assert cfg.pim.spt_switch_infinity and cfg.pim.spt_switch_kbps is None
    rate = parse(FULL.replace("spt-switch-threshold infinity", "spt-switch-threshold 1024"))
    assert rate.pim is not None and (rate.pim.spt_switch_kbps, rate.pim.spt_switch_infinity) \
        == (1024, False)


def test_clear_cipher_and_simple_keys() -> None:
    base = seed_text("A")
    cipher = parse(base.replace(SEED_CIPHER, "YsHsjx_202206"))
    simple = parse(base.replace(f"cipher {SEED_CIPHER}", "simple YsHsjx_202206"))
    key = cipher.etrunks[1].security_key
    assert key is not None
    assert key.key == b"YsHsjx_202206"
    assert key.text.startswith("%^%#") and "YsHsjx" not in key.text
    assert "YsHsjx" not in repr(key)
    assert simple.etrunks[1].security_key == key
    # our cipher form decodes back to the clear key
    assert parse(base.replace(SEED_CIPHER, key.text)).etrunks[1].security_key == key


def test_procedure_style_matches_the_configuration_file() -> None:
    procedure = """sysname DeviceA
multicast routing-enable
interface LoopBack0
ip address 1.1.1.1 32
quit
remote-backup-service service1
peer 3.3.3.3 source 1.1.1.1 port 1025
commit
quit
remote-backup-profile profile1
backup-id 10 remote-backup-service service1
service-type igmp
peer-backup hot
e-trunk 1 eth-trunk 1
commit
quit
e-trunk 1
peer-address 3.3.3.3 source-address 1.1.1.1
security-key cipher YsHsjx_202206
commit
quit
lacp e-trunk system-id 00e0-fc12-3455
commit
interface Eth-Trunk 1
ip address 10.0.15.1 24
pim sm
igmp enable
mode lacp-static
e-trunk 1
remote-backup-profile profile1
commit
quit
interface GigabitEthernet0/1/2
undo shutdown
eth-trunk 1
interface GigabitEthernet0/1/1
undo shutdown
ospf 1
area 0
network 1.1.1.1 0.0.0.0
quit
quit
quit
"""
    indented = """#
sysname DeviceA
#
multicast routing-enable
#
e-trunk 1
 peer-address 3.3.3.3 source-address 1.1.1.1
 security-key simple YsHsjx_202206
#
lacp e-trunk system-id 00e0-fc12-3455
#
remote-backup-service service1
 peer 3.3.3.3 source 1.1.1.1 port 1025
#
remote-backup-profile profile1
 service-type igmp
 backup-id 10 remote-backup-service service1
 peer-backup hot
 e-trunk 1 eth-trunk 1
#
interface Loopback0
 ip address 1.1.1.1 255.255.255.255
#
interface Eth-Trunk1
 ip address 10.0.15.1 255.255.255.0
 pim sm
 igmp enable
 mode lacp-static
 e-trunk 1
 remote-backup-profile profile1
#
interface GigabitEthernet0/1/2
 undo shutdown
 eth-trunk 1
#
interface GigabitEthernet0/1/1
 undo shutdown
#
ospf 1
 area 0.0.0.0
  network 1.1.1.1 0.0.0.0
#
return
"""
    got, want = parse(procedure), parse(indented)
    assert got.unknown == []
    assert strip(got) == strip(want)
    assert list(got.interfaces) == ["Loopback0", "Eth-Trunk1", "GigabitEthernet0/1/2",
                                    "GigabitEthernet0/1/1"]


def test_layout_tolerance() -> None:
    """CRLF, stray whitespace, no final return, and '#' inside a cipher key."""
    text = seed_text("A")
    crlf = text.replace("\n", "\r\n")
    assert strip(parse(crlf)) == strip(seed("A"))
    spaced = "\n".join(f"{line}   \t" for line in text.split("\n"))
    assert strip(parse(spaced)) == strip(seed("A"))
    no_return = text.replace("#\nreturn\n", "")
    assert strip(parse(no_return)) == strip(seed("A"))
    trailing = text + "\n#\n   \n#\n"
    assert strip(parse(trailing)) == strip(seed("A"))


def test_quit_and_commit_at_system_level_are_harmless() -> None:
    cfg = parse("quit\ncommit\nsysname X\nquit\n")
    assert cfg.sysname == "X"
    assert cfg.unknown == []


def test_vlan_view_and_batch_ranges() -> None:
    cfg = parse("vlan batch 5 to 7 3\nvlan 300\n description users\n#\nvlan batch 6 4094\n")
    assert cfg.vlans == [3, 5, 6, 7, 300, 4094]
    assert cfg.unknown == [UnknownCommand(3, "description users", "vlan 300")]


def test_every_undo() -> None:
    undone = """#
sysname X
undo sysname
vlan batch 10 to 20
undo vlan batch 15 to 20
vlan 30
undo vlan 10
multicast routing-enable
undo multicast routing-enable
multicast routing-enable
bfd
e-trunk port 2000
undo e-trunk port
lacp priority 5
undo lacp priority
lacp e-trunk system-id 00e0-fc12-3455
undo lacp e-trunk system-id
lacp e-trunk priority 5
undo lacp e-trunk priority 5
#
e-trunk 1
 peer-address 3.3.3.3 source-address 1.1.1.1
 undo peer-address
 security-key simple abc
 undo security-key
 priority 5
 undo priority
 timer hello 20
 undo timer hello
 timer hold-on-failure multiplier 5
 undo timer hold-on-failure multiplier
 timer revert delay 5
 undo timer revert delay
 revert disable
 undo revert disable
 e-trunk track bfd-session session-name nope
 undo e-trunk track bfd-session
#
remote-backup-service s
 peer 3.3.3.3 source 1.1.1.1 port 1025
 undo peer
#
remote-backup-profile p
 service-type igmp
 undo service-type igmp
 backup-id 10 remote-backup-service nope
 undo backup-id
 peer-backup hot
 undo peer-backup
 e-trunk 1 eth-trunk 9
 undo e-trunk
#
interface Eth-Trunk1
 shutdown
 undo shutdown
 ip address 10.0.0.1 24
 ip address 10.0.1.1 24 sub
 undo ip address 10.0.1.1 24 sub
 undo ip address
 pim sm
 undo pim sm
 igmp enable
 undo igmp enable
 igmp version 3
 undo igmp version
 mode lacp-static
 undo mode
 lacp timeout fast
 undo lacp timeout
 least active-linknumber 2
 undo least active-linknumber
 max active-linknumber 2
 undo max active-linknumber
 e-trunk 1
 undo e-trunk
 e-trunk mode force-master
 undo e-trunk mode
 remote-backup-profile nope
 undo remote-backup-profile
 portswitch
 port link-type access
 port default vlan 99
 undo port default vlan
 undo port link-type
 undo portswitch
#
interface GigabitEthernet0/1/1
 eth-trunk 5
 undo eth-trunk
 lacp priority 1
 undo lacp priority
 ip address 10.0.2.1 24
 ip address 10.0.3.1 24 sub
 undo ip address 10.0.2.1 24
#
bfd s bind peer-ip 3.3.3.3
 discriminator local 1
 undo discriminator local
 discriminator remote 2
 undo discriminator remote
 min-tx-interval 100
 undo min-tx-interval
 min-rx-interval 100
 undo min-rx-interval
 detect-multiplier 10
 undo detect-multiplier
#
ospf 1
 area 0
  network 10.0.0.0 0.0.0.255
  undo network 10.0.0.0 0.0.0.255
#
pim
 static-rp 2.2.2.2
 undo static-rp 2.2.2.2
 spt-switch-threshold infinity
 undo spt-switch-threshold
#
return
"""
    bare = """#
vlan batch 11 to 14 30
multicast routing-enable
bfd
e-trunk 1
#
remote-backup-service s
#
remote-backup-profile p
#
interface Eth-Trunk1
 undo shutdown
#
interface GigabitEthernet0/1/1
#
bfd s bind peer-ip 3.3.3.3
#
ospf 1
 area 0.0.0.0
#
pim
#
return
"""
    got = parse(undone)
    assert got.unknown == []
    assert strip(got) == strip(parse(bare))
    assert got.sysname == "HUAWEI"
    assert got.interface("Eth-Trunk1").shutdown is False


def test_undo_bfd_and_undo_unknown() -> None:
    cfg = parse("bfd\nundo bfd\nundo stp enable\nundo\n")
    assert cfg.bfd_enabled is False
    assert [u.text for u in cfg.unknown] == ["undo stp enable", "undo"]


# --- unknown commands -----------------------------------------------------------------------

UNKNOWNS = """#
sysname DeviceA
multicast routing-enable
stp enable
info-center loghost 10.1.1.1
#
user-interface vty 0 4
 authentication-mode aaa
 protocol inbound ssh
#
bfd
 multi-hop min-tx-interval 100
#
interface GigabitEthernet0/1/1
 description to DeviceC
 undo shutdown
 ospf cost 10
 ip address 10.0.13.1 255.255.255.0
#
interface Tunnel0/0/1
 ip address 10.0.13.1 255.255.255.0
 shutdown
#
ospf 1
 import-route direct
 area 0
  authentication-mode md5 1 cipher x
  network 10.0.13.0 0.0.0.255
#
pim
 timer hello 40
#
return
"""


def test_unknown_commands_are_kept_with_line_and_view() -> None:
    cfg = parse(UNKNOWNS)
    assert cfg.unknown == [
        UnknownCommand(4, "stp enable", "system"),
        UnknownCommand(5, "info-center loghost 10.1.1.1", "system"),
        UnknownCommand(7, "user-interface vty 0 4", "system"),
        UnknownCommand(8, "authentication-mode aaa", "user-interface vty 0 4"),
        UnknownCommand(9, "protocol inbound ssh", "user-interface vty 0 4"),
        UnknownCommand(12, "multi-hop min-tx-interval 100", "bfd"),
        UnknownCommand(15, "description to DeviceC", "interface GigabitEthernet0/1/1"),
        UnknownCommand(17, "ospf cost 10", "interface GigabitEthernet0/1/1"),
        UnknownCommand(20, "interface Tunnel0/0/1", "system"),
        UnknownCommand(21, "ip address 10.0.13.1 255.255.255.0", "interface Tunnel0/0/1"),
        UnknownCommand(22, "shutdown", "interface Tunnel0/0/1"),
        UnknownCommand(25, "import-route direct", "ospf 1"),
        UnknownCommand(27, "authentication-mode md5 1 cipher x", "ospf 1 area 0.0.0.0"),
        UnknownCommand(31, "timer hello 40", "pim"),
    ]
    ge = cfg.interface("GE0/1/1")
    assert (ge.shutdown, ge.address) == (False, IPv4Interface("10.0.13.1/24"))
    assert list(cfg.interfaces) == ["GigabitEthernet0/1/1"]
    assert cfg.bfd_enabled
    assert cfg.ospf[1].areas == {"0.0.0.0": [net("10.0.13.0/24")]}


def test_unknown_command_in_procedure_style_stays_in_its_view() -> None:
    cfg = parse("interface GE0/1/1\nstp disable\nundo shutdown\nquit\nstp enable\n")
    assert cfg.unknown == [
        UnknownCommand(2, "stp disable", "interface GigabitEthernet0/1/1"),
        UnknownCommand(5, "stp enable", "system"),
    ]
    assert cfg.interface("GE0/1/1").shutdown is False


# --- malformed variants ---------------------------------------------------------------------

BFD_BASE = seed_text("A").replace(
    "multicast routing-enable\n", "multicast routing-enable\nbfd\n", 1
)

MUTATIONS = [
    # (seed, old, new, line, reason)
    ("A", " ip address 10.0.13.1 255.255.255.0", " ip address 10.0.13.1 255.0.255.0", 32,
     "mask 255.0.255.0 is not contiguous"),
    ("A", " ip address 10.0.13.1 255.255.255.0", " ip address 300.1.1.1 255.255.255.0", 32,
     "bad IPv4 address"),
    ("A", " ip address 10.0.12.1 255.255.255.0", " ip address 10.0.12.0 255.255.255.0", 41,
     "network or broadcast address"),
    ("A", " ip address 10.0.12.1 255.255.255.0", " ip address 224.0.0.1 255.255.255.0", 41,
     "unicast host address"),
    ("A", " ip address 10.0.12.1 255.255.255.0", " ip address 10.0.12.1", 41,
     "wrong arguments, expected 'ip address IP MASK [sub]'"),
    ("A", "\ne-trunk 1\n", "\ne-trunk 17\n", 6, "E-Trunk ID must be an integer 1..16"),
    ("C", "vlan batch 100", "vlan batch 4095", 4, "VLAN ID must be an integer 1..4094"),
    ("C", "vlan batch 100", "vlan batch 100 to 90", 4, "reversed"),
    ("A", " peer-address 3.3.3.3", " priority 0\n peer-address 3.3.3.3", 7,
     "E-Trunk priority must be an integer 1..254, got '0'"),
    ("A", " peer-address 3.3.3.3", " timer hello 0\n peer-address 3.3.3.3", 7,
     "hello interval (x100 ms) must be an integer 5..100"),
    ("A", " peer-address 3.3.3.3", " timer revert delay 3601\n peer-address 3.3.3.3", 7,
     "revert delay (s) must be"),
    ("A", " peer 3.3.3.3 source 1.1.1.1 port 1025", " peer 3.3.3.3 source 1.1.1.1", 14,
     "wrong arguments, expected 'peer IP source IP port PORT'"),
    ("A", " peer 3.3.3.3 source 1.1.1.1 port 1025", " peer 3.3.3.3 source 1.1.1.1 port 0", 14,
     "TCP port must be"),
    ("A", " peer-address 3.3.3.3 source-address 1.1.1.1", " peer-address 3.3.3.3", 7,
     "wrong arguments"),
    ("A", " peer-address 3.3.3.3 source-address 1.1.1.1",
     " peer-address 1.1.1.1 source-address 1.1.1.1", 7, "must differ"),
    ("A", " peer-address 3.3.3.3 source-address 1.1.1.1",
     " peer-address 3.3.3.3 source-address 1.1.1.9", 7,
     "1.1.1.9 is not an address here"),
    ("A", " peer 3.3.3.3 source 1.1.1.1", " peer 3.3.3.3 source 1.1.1.8", 14,
     "1.1.1.8 is not an address here"),
    ("C", " port default vlan 100\n mode", " port default vlan 200\n mode", 11,
     "VLAN 200 is not created"),
    ("A", "\n eth-trunk 1", "\n eth-trunk 2", 37, "no interface Eth-Trunk2"),
    ("A", "\n eth-trunk 1", "\n eth-trunk 0x", 37, "Eth-Trunk ID must be"),
    ("A", "interface NULL0", "interface Eth-Trunk2\n e-trunk 2\n#\ninterface NULL0", 48,
     "no e-trunk 2"),
    ("A", " e-trunk 1\n remote", " remote", 20, "Eth-Trunk1 is not in e-trunk 1"),
    ("A", " remote-backup-profile profile1", " remote-backup-profile nope", 28,
     "no remote-backup-profile nope"),
    ("A", "backup-id 10 remote-backup-service service1", "backup-id 10 remote-backup-service nope",
     18, "no remote-backup-service nope"),
    ("A", "backup-id 10 remote", "backup-id 0 remote", 18, "backup-id must be"),
    ("A", " e-trunk 1 eth-trunk 1", " e-trunk 1 eth-trunk 9", 20, "no interface Eth-Trunk9"),
    ("A", " e-trunk 1 eth-trunk 1", " e-trunk 3 eth-trunk 1", 20, "no e-trunk 3"),
    ("A", " service-type igmp", " service-type bras", 17, "service-type must be one of igmp"),
    ("A", " peer-backup hot", " peer-backup warm", 19, "peer-backup must be one of hot, cold"),
    ("A", " security-key cipher", " e-trunk track bfd-session session-name nope\n security-key "
     "cipher", 8, "no BFD session nope"),
    ("A", "#\nlacp priority 100", "#\ne-trunk 1\n#\nlacp priority 100", 10,
     "e-trunk 1 already defined at line 6"),
    ("A", "interface GigabitEthernet0/1/3", "interface GE0/1/1", 39,
     "interface GigabitEthernet0/1/1 already defined at line 30"),
    ("A", "#\nospf 1", "#\nremote-backup-service service1\n#\nospf 1", 49,
     "service1 already defined at line 13"),
    ("A", "#\nreturn", "#\npim\n#\nreturn", 59, "pim already defined at line 56"),
    ("A", "  network 10.0.15.0 0.0.0.255\n", "  network 10.0.15.0 0.0.0.255\n area 0\n", 55,
     "area 0.0.0.0 already defined at line 50"),
    ("A", "#\npim\n", "#\nospf 1\n#\npim\n", 56, "ospf 1 already defined at line 49"),
    ("A", " ip address 10.0.12.1 255.255.255.0", " ip address 10.0.13.1 255.255.255.0", 41,
     "10.0.13.1/24 conflicts with 10.0.13.1/24 on GigabitEthernet0/1/1"),
    ("A", " ip address 10.0.12.1 255.255.255.0", " ip address 10.0.13.9 255.255.0.0", 41,
     "10.0.13.9/16 conflicts with 10.0.15.1/24 on Eth-Trunk1"),
    ("A", " ip address 10.0.12.1 255.255.255.0",
     " ip address 10.0.12.1 255.255.255.0\n ip address 10.0.12.2 255.255.255.128 sub", 42,
     "conflicts with 10.0.12.1/24 on GigabitEthernet0/1/3"),
    ("A", " ip address 10.0.12.1 255.255.255.0", " ip address 10.0.12.1 255.255.255.0 sub", 41,
     "needs a primary address"),
    ("A", " undo shutdown\n ip address 10.0.13.1",
     " peer-address 3.3.3.3 source-address 1.1.1.1\n ip address 10.0.13.1", 31,
     "'peer-address' is not valid in view 'interface GigabitEthernet0/1/1'"),
    ("A", " static-rp 2.2.2.2", " static-rp 2.2.2.2\n network 2.2.2.2 0.0.0.0", 58,
     "'network' is not valid in view 'pim'"),
    ("A", " static-rp 2.2.2.2", " static-rp 2.2.2.2\n spt-switch-threshold 0", 58,
     "spt-switch-threshold (kbit/s)"),
    ("A", " static-rp 2.2.2.2", " static-rp 2.2.2.2\n spt-switch-threshold 64 group-policy 2000",
     58, "group-policy is not supported"),
    ("A", "#\nlacp priority 100", "#\npim sm\n#\nlacp priority 100", 10,
     "'pim sm' is not valid in view 'system'"),
    ("A", " eth-trunk 1\n#\ninterface GigabitEthernet0/1/3",
     " eth-trunk 1\n ip address 10.9.9.1 255.255.255.0\n#\ninterface GigabitEthernet0/1/3", 38,
     "GigabitEthernet0/1/2 is in Eth-Trunk1"),
    ("A", " undo shutdown\n eth-trunk 1", " pim sm\n eth-trunk 1", 37,
     "GigabitEthernet0/1/2 cannot join Eth-Trunk1"),
    ("A", " ip address 1.1.1.1 255.255.255.255", " eth-trunk 1", 45,
     "'eth-trunk' is not supported on Loopback0"),
    ("A", " eth-trunk 1\n#\ninterface GigabitEthernet0/1/3",
     " mode lacp-static\n#\ninterface GigabitEthernet0/1/3", 37,
     "'mode' is not supported on GigabitEthernet0/1/2"),
    ("A", "interface NULL0", "interface NULL0\n ip address 9.9.9.9 32", 48,
     "'ip address' is not supported on NULL0"),
    ("A", "interface GigabitEthernet0/1/3", "interface GE0/1", 39, "slot/card/port"),
    ("A", " mode lacp-static", " mode lacp-static\n max active-linknumber 2\n"
     " least active-linknumber 3", 28, "least active-linknumber exceeds max (2)"),
    ("A", " mode lacp-static", " mode lacp", 26, "wrong arguments"),
    ("A", " igmp enable", " igmp enable\n igmp version 1", 26, "IGMP version must be"),
    ("A", "#\nlacp priority 100", "#\nundo interface GigabitEthernet0/1/1\n#\nlacp priority 100",
     10, "'undo interface' is not supported"),
    ("A", " area 0.0.0.0", " area", 50, "wrong arguments, expected 'area ID'"),
    ("A", "  network 10.0.12.0 0.0.0.255", "  network 10.0.12.0 0.255.0.255", 52,
     "wildcard mask 0.255.0.255 is not contiguous"),
    ("A", "  network 10.0.13.0 0.0.0.255", "  network 10.0.13.1 0.0.0.255", 53,
     "host bits inside wildcard"),
    ("A", "  network 10.0.13.0 0.0.0.255", "  network 10.0.12.0 0.0.0.255\n area 1\n"
     "  network 10.0.12.0 0.0.0.255", 55, "already in area 0.0.0.0"),
    ("A", "ospf 1", "ospf 70000", 49, "OSPF process ID must be"),
    ("A", " static-rp 2.2.2.2", " static-rp 224.0.0.5", 57, "unicast host address"),
    ("A", "00e0-fc12-3455", "00e0-fc12-345", 11, "system ID must look like"),
    ("A", "00e0-fc12-3455", "01e0-fc12-3455", 11, "unicast, non-zero"),
    ("A", "lacp priority 100", "lacp priority 65536", 10, "LACP system priority must be"),
    ("A", SEED_CIPHER, "%^%#abc", 8, "cipher key must look like"),
    ("A", SEED_CIPHER, "0123456789abcdefg", 8, "clear key must be 1..16"),
    ("A", "cipher " + SEED_CIPHER, "plain x", 8, "security-key mode must be one of"),
    ("A", "sysname DeviceA", "sysname Device A", 2, "wrong arguments, expected 'sysname NAME'"),
    ("A", "sysname DeviceA", "sysname what?", 2, "no '?'"),
    ("A", "multicast routing-enable", "undo multicast routing-enable", 24,
     "needs 'multicast routing-enable'"),
    ("A", "#\nreturn\n", "#\nreturn\nsysname X\n", 60, "text after 'return'"),
    ("C", " portswitch\n undo shutdown", " portswitch\n ip address 10.1.1.1 24", 16,
     "layer-2 (portswitch)"),
    ("C", " portswitch\n undo shutdown", " undo shutdown", 16,
     "'port link-type' needs 'portswitch'"),
    ("C", " port link-type access\n port default vlan 100\n mode",
     " port link-type dot1q\n port default vlan 100\n mode", 10, "link-type must be one of"),
    ("C", " undo shutdown\n eth-trunk 1\n#\ninterface GigabitEthernet0/1/3",
     " portswitch\n eth-trunk 1\n#\ninterface GigabitEthernet0/1/3", 22, "cannot join"),
    ("D", "interface NULL0", "interface NULL1", 24, "NULL number must be 0..0"),
    (BFD_BASE, "#\nospf 1", "#\nbfd s1 bind peer-ip 3.3.3.3\n#\nbfd S1 bind peer-ip 3.3.3.4\n"
     "#\nospf 1", 52, "BFD session S1 already defined at line 50"),
    (BFD_BASE, "#\nospf 1", "#\nbfd a bind peer-ip 3.3.3.3\n discriminator local 5\n#\n"
     "bfd b bind peer-ip 3.3.3.4\n discriminator local 5\n#\nospf 1", 54,
     "local discriminator 5 already used by a"),
    (BFD_BASE, "#\nospf 1", "#\nbfd a bind peer-ip 3.3.3.3\n discriminator local 0\n#\nospf 1",
     51, "local discriminator must be an integer 1..4294967295"),
    (BFD_BASE, "#\nospf 1", "#\nbfd a bind peer-ip 3.3.3.3\n discriminator local 1\n commit\n"
     "#\nospf 1", 52, "commit needs discriminator local and remote (or 'auto' on the bind)"),
    (BFD_BASE, "#\nospf 1", "#\nbfd a bind peer-ip 3.3.3.3 auto\n discriminator remote 7\n"
     " commit\n#\nospf 1", 51, "an auto session negotiates its discriminators"),
    (BFD_BASE, "#\nospf 1", "#\nbfd a bind peer-ip 3.3.3.3 auto source-ip 1.1.1.1\n#\nospf 1",
     50, "wrong arguments"),
    (BFD_BASE, "#\nospf 1", "#\nbfd a bind peer-ip 3.3.3.3 interface GE0/1/9\n#\nospf 1", 50,
     "no interface GigabitEthernet0/1/9"),
    (BFD_BASE, "#\nospf 1", "#\nbfd a bind peer-ip 3.3.3.3 source-ip 9.9.9.9\n#\nospf 1", 50,
     "9.9.9.9 is not an address here"),
    (BFD_BASE, "#\nospf 1", "#\nbfd a bind peer-ip 3.3.3.3 vpn-instance x\n#\nospf 1", 50,
     "wrong arguments"),
    (BFD_BASE, "#\nospf 1", "#\nbfd a bind peer-ip 3.3.3.3\n min-tx-interval 2\n#\nospf 1", 51,
     "min-tx-interval (ms) must be an integer 3..1000"),
    (BFD_BASE, "#\nospf 1", "#\nbfd a bind peer-ip 3.3.3.3\n detect-multiplier 51\n#\nospf 1",
     51, "detect-multiplier must be"),
    (BFD_BASE, "#\nospf 1", "#\nundo bfd a\n#\nospf 1", 50, "'undo bfd NAME' is not supported"),
    ("A", "#\nospf 1", "#\nbfd a bind peer-ip 3.3.3.3\n#\nospf 1", 49,
     "BFD is not enabled"),
]


@pytest.mark.parametrize(("base", "old", "new", "line", "reason"), MUTATIONS)
def test_malformed_variant(base: str, old: str, new: str, line: int, reason: str) -> None:
    text = seed_text(base) if len(base) == 1 else base
    assert old in text
    bad = text.replace(old, new, 1)
    with pytest.raises(ConfigError) as info:
        parse(bad, "Device.cfg")
    err = info.value
    assert reason in err.reason
    assert err.line == line
    assert err.source == "Device.cfg"
    assert err.text == bad.split("\n")[line - 1].strip()
    assert str(err) == f"Device.cfg:{line}: {err.reason}: '{err.text}'"
    assert "\n" not in str(err)


def test_config_error_message() -> None:
    bad = seed_text("A").replace("255.255.255.0\n pim sm\n#\ninterface GigabitEthernet0/1/2",
                                 "255.0.255.0\n pim sm\n#\ninterface GigabitEthernet0/1/2")
    with pytest.raises(ConfigError) as info:
        parse(bad, "DeviceA.cfg")
    assert str(info.value) == (
        "DeviceA.cfg:32: mask 255.0.255.0 is not contiguous: 'ip address 10.0.13.1 255.0.255.0'"
    )


def test_load_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.cfg"
    with pytest.raises(ConfigError) as info:
        load(missing)
    assert (info.value.line, info.value.source) == (0, str(missing))
    assert "cannot read file" in str(info.value)
    binary = tmp_path / "binary.cfg"
    binary.write_bytes(b"#\nsysname A\n\xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load(binary)
    assert (info.value.line, info.value.reason) == (3, "not UTF-8 text")


# --- fuzz: any input gives a model or a ConfigError, never a traceback ------------------------

VOCAB = [
    "#", "quit", "commit", "return", "undo", "interface", "GigabitEthernet0/1/1", "GE0/1/2",
    "Eth-Trunk1", "Eth-Trunk", "Loopback0", "NULL0", "Vlanif100", "Tunnel1", "e-trunk", "1",
    "0", "17", "4095", "99999999999", "-1", "ip", "address", "10.0.0.1", "1.1.1.1", "3.3.3.3",
    "255.255.255.0", "0.0.0.255", "24", "sub", "shutdown", "peer-address", "source-address",
    "security-key", "cipher", "simple", SEED_CIPHER, "%^%#", "%^%#%^%#", "bfd", "bind",
    "peer-ip", "source-ip", "discriminator", "local", "remote", "ospf", "area", "network",
    "router-id", "pim", "sm", "static-rp", "vlan", "batch", "to", "port", "default",
    "link-type", "access", "portswitch", "eth-trunk", "mode", "lacp-static", "manual",
    "remote-backup-service", "remote-backup-profile", "peer", "source", "service-type", "igmp",
    "enable", "version", "backup-id", "peer-backup", "hot", "lacp", "priority", "system-id",
    "00e0-fc12-3455", "timer", "hello", "hold-on-failure", "multiplier", "revert", "delay",
    "disable", "track", "bfd-session", "session-name", "least", "max", "active-linknumber",
    "timeout", "fast", "sysname", "multicast", "routing-enable", "x" * 300, "é", "\x00",
]

_lines = st.tuples(st.integers(0, 3), st.lists(st.sampled_from(VOCAB), min_size=1, max_size=6))
_vocab_text = st.lists(_lines, max_size=30).map(
    lambda lines: "\n".join(" " * indent + " ".join(words) for indent, words in lines)
)


def _parses_or_config_error(text: str) -> None:
    try:
        cfg = parse(text, "fuzz.cfg")
    except ConfigError as err:
        assert err.source == "fuzz.cfg"
        assert 1 <= err.line <= text.count("\n") + 1
        assert "\n" not in str(err)
    else:
        assert isinstance(cfg, DeviceConfig)


@st.composite
def mutated_seed(draw: st.DrawFn) -> str:
    """A seed file (or the all-commands one) with a few random line edits."""
    lines = draw(st.sampled_from([*(seed_text(d) for d in "ABCD"), FULL])).split("\n")
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "token", "indent", "text"]))
        if op == "delete":
            del lines[at]
        elif op == "duplicate":
            lines.insert(at, lines[at])
        elif op == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif op == "token":
            words = lines[at].split() or [""]
            words[draw(st.integers(0, len(words) - 1))] = draw(st.sampled_from(VOCAB))
            lines[at] = " " * draw(st.integers(0, 2)) + " ".join(words)
        elif op == "indent":
            lines[at] = " " * draw(st.integers(0, 3)) + lines[at].strip()
        else:
            lines[at] = draw(st.text(max_size=40))
        if not lines:
            break
    return "\n".join(lines)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_random_text(text: str) -> None:
    _parses_or_config_error(text)


@settings(max_examples=200, deadline=None)
@given(_vocab_text)
def test_fuzz_command_soup(text: str) -> None:
    _parses_or_config_error(text)


@settings(max_examples=200, deadline=None)
@given(mutated_seed())
def test_fuzz_mutated_seeds(text: str) -> None:
    _parses_or_config_error(text)
