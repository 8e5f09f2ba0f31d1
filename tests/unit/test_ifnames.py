"""The VRP <-> Linux interface name mapping (daemon.config.ifnames)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config import ifnames, load
from daemon.config.ifnames import InterfaceKind

SEED_DIR = Path(__file__).resolve().parents[2] / "lab" / "topologies" / "igmp-hot-backup"


@pytest.mark.parametrize(
    ("spelled", "full"),
    [
        ("GigabitEthernet0/1/2", "GigabitEthernet0/1/2"),
        ("GE0/1/2", "GigabitEthernet0/1/2"),
        ("ge 0/1/2", "GigabitEthernet0/1/2"),
        ("gigabitethernet 0/1/2", "GigabitEthernet0/1/2"),
        ("  GE0/1/2  ", "GigabitEthernet0/1/2"),
        ("XGigabitEthernet0/0/1", "XGigabitEthernet0/0/1"),
        ("XGE0/0/1", "XGigabitEthernet0/0/1"),
        ("xge 0/0/1", "XGigabitEthernet0/0/1"),
        ("Eth-Trunk1", "Eth-Trunk1"),
        ("Eth-Trunk 1", "Eth-Trunk1"),
        ("eth-trunk1", "Eth-Trunk1"),
        ("ETH-TRUNK 0", "Eth-Trunk0"),
        ("LoopBack0", "Loopback0"),
        ("Loopback0", "Loopback0"),
        ("loopback 7", "Loopback7"),
        ("NULL0", "NULL0"),
        ("null 0", "NULL0"),
        ("Vlanif100", "Vlanif100"),
        ("vlanif 4094", "Vlanif4094"),
        ("GE0/01/002", "GigabitEthernet0/1/2"),
    ],
)
def test_canonical_accepts_every_spelling(spelled: str, full: str) -> None:
    assert ifnames.canonical(spelled) == full


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("GE0/1", "slot/card/port"),
        ("GE0//2", "slot/card/port"),
        ("GE0/1/2/3", "slot/card/port"),
        ("GE256/0/0", "above 255"),
        ("Eth-Trunk", "number missing"),
        ("Eth-Trunk0x", "not an interface name"),
        ("Eth-Trunk1/0", "single number"),
        ("Eth-Trunk1024", "0..1023"),
        ("Tunnel0/0/1", "unknown interface type"),
        ("Ethernet0/0/1", "unknown interface type"),
        ("NULL1", "0..0"),
        ("Vlanif0", "1..4094"),
        ("Vlanif4095", "1..4094"),
        ("Loopback2147483648", "0..2147483647"),
        ("GigabitEthernet0/1/2.100", "not an interface name"),
        ("", "not an interface name"),
        ("0/1/2", "not an interface name"),
        ("GE-0/1/2", "unknown interface type"),
    ],
)
def test_canonical_rejects(bad: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        ifnames.canonical(bad)


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("GigabitEthernet0/1/2", "GE0/1/2"),
        ("ge 0/1/2", "GE0/1/2"),
        ("XGigabitEthernet0/0/1", "XGE0/0/1"),
        ("Eth-Trunk 1", "Eth-Trunk1"),
        ("LoopBack0", "Loopback0"),
        ("NULL0", "NULL0"),
        ("Vlanif100", "Vlanif100"),
    ],
)
def test_short(name: str, short: str) -> None:
    assert ifnames.short(name) == short


@pytest.mark.parametrize(
    ("name", "linux"),
    [
        ("GigabitEthernet0/1/2", "ge0-1-2"),
        ("GE0/1/1", "ge0-1-1"),
        ("XGigabitEthernet0/0/1", "xge0-0-1"),
        ("Eth-Trunk1", "eth-trunk1"),
        ("Loopback0", "lo"),
        ("LoopBack1", "loop1"),
        ("Vlanif100", "vlanif100"),
    ],
)
def test_to_linux_and_back(name: str, linux: str) -> None:
    assert ifnames.to_linux(name) == linux
    assert ifnames.from_linux(linux) == ifnames.canonical(name)


def test_null_has_no_linux_device() -> None:
    assert ifnames.to_linux("NULL0") is None


@pytest.mark.parametrize(
    "name",
    ["XGigabitEthernet255/255/255", "Loopback2147483647", "Eth-Trunk1023", "Vlanif4094"],
)
def test_longest_names_fit_linux(name: str) -> None:
    linux = ifnames.to_linux(name)
    assert linux is not None
    assert len(linux) <= 15
    assert "/" not in linux
    assert ifnames.from_linux(linux) == name


@pytest.mark.parametrize(
    "linux",
    ["eth0", "loop0", "ge00-1-2", "ge0-1", "ge0-1-2-3", "null0", "GE0-1-2", "", "lo0", "ge256-0-0",
     "vlanif0", "eth-trunk1024", "xge0-0-1 "],
)
def test_from_linux_rejects(linux: str) -> None:
    with pytest.raises(ValueError, match="not a Linux name"):
        ifnames.from_linux(linux)


def test_every_seed_interface_maps_both_ways() -> None:
    seen = set()
    for device in "ABCD":
        cfg = load(SEED_DIR / f"Device{device}.cfg")
        for name, intf in cfg.interfaces.items():
            assert ifnames.canonical(name) == name
            assert intf.short_name == ifnames.short(name)
            if intf.linux_name is None:
                assert intf.kind is InterfaceKind.NULL
                continue
            assert ifnames.from_linux(intf.linux_name) == name
            seen.add((name, intf.linux_name, intf.short_name))
    assert seen == {
        ("Eth-Trunk1", "eth-trunk1", "Eth-Trunk1"),
        ("GigabitEthernet0/1/1", "ge0-1-1", "GE0/1/1"),
        ("GigabitEthernet0/1/2", "ge0-1-2", "GE0/1/2"),
        ("GigabitEthernet0/1/3", "ge0-1-3", "GE0/1/3"),
        ("Loopback0", "lo", "Loopback0"),
    }


@pytest.mark.parametrize(
    ("name", "kind", "physical"),
    [
        ("GE0/1/1", InterfaceKind.GE, True),
        ("XGE0/0/1", InterfaceKind.XGE, True),
        ("Eth-Trunk1", InterfaceKind.ETH_TRUNK, False),
        ("Loopback0", InterfaceKind.LOOPBACK, False),
        ("NULL0", InterfaceKind.NULL, False),
        ("Vlanif1", InterfaceKind.VLANIF, False),
    ],
)
def test_kind(name: str, kind: InterfaceKind, physical: bool) -> None:
    assert ifnames.kind(name) is kind
    assert kind.physical is physical


@pytest.mark.parametrize(
    ("name", "known"),
    [("GE0/1", True), ("Eth-Trunk0x", True), ("Tunnel1", False), ("", False), ("1", False)],
)
def test_known_type(name: str, known: bool) -> None:
    assert ifnames.known_type(name) is known


_names = st.one_of(
    st.tuples(
        st.sampled_from(["GigabitEthernet", "XGigabitEthernet"]),
        st.lists(st.integers(0, 255), min_size=3, max_size=3),
    ).map(lambda t: t[0] + "/".join(map(str, t[1]))),
    st.integers(0, 1023).map(lambda n: f"Eth-Trunk{n}"),
    st.integers(0, 2147483647).map(lambda n: f"Loopback{n}"),
    st.integers(1, 4094).map(lambda n: f"Vlanif{n}"),
)


@settings(max_examples=200, deadline=None)
@given(_names)
def test_mapping_is_a_bijection(name: str) -> None:
    linux = ifnames.to_linux(name)
    assert linux is not None
    assert len(linux) <= 15
    assert "/" not in linux
    assert ifnames.from_linux(linux) == name
    assert ifnames.canonical(ifnames.short(name)) == name


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_random_text_is_a_name_or_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert ifnames.canonical(text) == ifnames.canonical(ifnames.canonical(text))
    with contextlib.suppress(ValueError):
        assert ifnames.to_linux(ifnames.from_linux(text)) == text
