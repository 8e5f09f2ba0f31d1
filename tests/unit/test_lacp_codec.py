"""LACPDU codec: golden bytes, scapy as the independent oracle, malformed input, fuzz."""

from __future__ import annotations

import contextlib
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.contrib.lacp import LACP, MarkerProtocol, SlowProtocol
from scapy.layers.l2 import Dot1Q, Ether

from daemon.lacp.codec import (
    FRAME_LEN,
    LACPDU_LEN,
    Lacpdu,
    PortInfo,
    State,
    decode,
    decode_frame,
    encode,
    encode_frame,
    format_system_id,
    state_bits,
)
from daemon.lacp.machine import LacpTrunk, PortConfig, TrunkConfig
from daemon.wire import DecodeError

SYS_A = bytes.fromhex("00e0fc123455")
SYS_C = bytes.fromhex("00e0fc123457")
SRC = bytes.fromhex("00e0fc120102")

# The seed's DeviceA member: sys prio 32768, 00e0-fc12-3455, key 305, port 1, "10111100".
SEED_ACTOR = PortInfo(32768, SYS_A, 305, 32768, 1, 0x3D)
SEED_PARTNER = PortInfo(32768, SYS_C, 305, 32768, 1, 0x3D)
SEED_PDU = Lacpdu(SEED_ACTOR, SEED_PARTNER, 0)

GOLDEN_PDU = bytes.fromhex(
    "01 01"  # subtype LACP, version 1
    " 01 14 8000 00e0fc123455 0131 8000 0001 3d 000000"  # actor: type, len, prio, system, ...
    " 02 14 8000 00e0fc123457 0131 8000 0001 3d 000000"  # partner
    " 03 10 0000 000000000000000000000000"  # collector: max delay 0, 12 reserved
    " 00 00"  # terminator
    f"{' 00' * 50}"  # reserved
)
GOLDEN_FRAME = bytes.fromhex("0180c2000002 00e0fc120102 8809") + GOLDEN_PDU  # dst, src, type


def scapy_frame(**fields: object) -> Ether:
    return Ether(dst="01:80:c2:00:00:02", src="00:e0:fc:12:01:02") / SlowProtocol() / LACP(**fields)


SEED_SCAPY_FIELDS = dict(
    actor_system_priority=32768,
    actor_system="00:e0:fc:12:34:55",
    actor_key=305,
    actor_port_priority=32768,
    actor_port_number=1,
    actor_state=0x3D,
    partner_system_priority=32768,
    partner_system="00:e0:fc:12:34:57",
    partner_key=305,
    partner_port_priority=32768,
    partner_port_number=1,
    partner_state=0x3D,
)


# ---- golden bytes -----------------------------------------------------------------------


def test_state_bits_bit0_first_as_in_the_seed() -> None:
    assert state_bits(0x3D) == "10111100"
    seed = State.ACTIVITY | State.AGGREGATION | State.SYNCHRONIZATION
    seed |= State.COLLECTING | State.DISTRIBUTING
    assert seed == 0x3D
    assert state_bits(State.ACTIVITY | State.AGGREGATION | State.SYNCHRONIZATION) == "10110000"
    assert state_bits(State.EXPIRED) == "00000001"
    assert format_system_id(SYS_A) == "00e0-fc12-3455"


def test_encode_golden_bytes() -> None:
    assert len(GOLDEN_PDU) == LACPDU_LEN == 110
    assert encode(SEED_PDU) == GOLDEN_PDU
    frame = encode_frame(SRC, SEED_PDU)
    assert frame == GOLDEN_FRAME
    assert len(frame) == FRAME_LEN == 124


def test_decode_golden_bytes() -> None:
    assert decode(GOLDEN_PDU) == SEED_PDU
    assert decode_frame(GOLDEN_FRAME) == (SRC, SEED_PDU)


def test_scapy_builds_the_same_bytes() -> None:
    assert bytes(scapy_frame(**SEED_SCAPY_FIELDS)) == GOLDEN_FRAME


# ---- scapy round trips ------------------------------------------------------------------

u16 = st.integers(0, 0xFFFF)
port_infos = st.builds(
    PortInfo, u16, st.binary(min_size=6, max_size=6), u16, u16, u16, st.integers(0, 0xFF)
)


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


@given(actor=port_infos, partner=port_infos, delay=u16)
def test_scapy_decodes_what_we_encode(actor: PortInfo, partner: PortInfo, delay: int) -> None:
    pkt = Ether(encode_frame(SRC, Lacpdu(actor, partner, delay)))
    lacp = pkt[LACP]
    assert pkt.type == 0x8809 and pkt[SlowProtocol].subtype == 1 and lacp.version == 1
    for prefix, info in (("actor", actor), ("partner", partner)):
        assert getattr(lacp, f"{prefix}_system_priority") == info.system_priority
        assert getattr(lacp, f"{prefix}_system") == _mac(info.system)
        assert getattr(lacp, f"{prefix}_key") == info.key
        assert getattr(lacp, f"{prefix}_port_priority") == info.port_priority
        assert getattr(lacp, f"{prefix}_port_number") == info.port
        assert getattr(lacp, f"{prefix}_state") == info.state
    assert lacp.collector_max_delay == delay
    assert (lacp.actor_length, lacp.partner_length, lacp.collector_length) == (20, 20, 16)


@given(actor=port_infos, partner=port_infos, delay=u16)
def test_we_decode_what_scapy_builds(actor: PortInfo, partner: PortInfo, delay: int) -> None:
    fields = {"collector_max_delay": delay}
    for prefix, info in (("actor", actor), ("partner", partner)):
        fields |= {
            f"{prefix}_system_priority": info.system_priority,
            f"{prefix}_system": _mac(info.system),
            f"{prefix}_key": info.key,
            f"{prefix}_port_priority": info.port_priority,
            f"{prefix}_port_number": info.port,
            f"{prefix}_state": info.state,
        }
    assert decode_frame(bytes(scapy_frame(**fields))) == (SRC, Lacpdu(actor, partner, delay))


# ---- what is accepted -------------------------------------------------------------------


def test_padding_and_reserved_octets_are_ignored() -> None:
    assert decode_frame(GOLDEN_FRAME + bytes(40))[1] == SEED_PDU  # NIC padding
    noisy = bytearray(GOLDEN_PDU)
    for off in (19, 20, 21, 39, 40, 41, 46, 57, 62, 109):  # TLV reserved and trailing 50
        noisy[off] = 0xA5
    assert decode(bytes(noisy)) == SEED_PDU
    noisy_scapy = scapy_frame(**SEED_SCAPY_FIELDS, actor_reserved=b"\xff" * 3, reserved=b"x" * 50)
    assert decode_frame(bytes(noisy_scapy))[1] == SEED_PDU


def test_later_versions_keep_version1_fields_and_may_extend() -> None:
    v2 = bytearray(GOLDEN_PDU)
    v2[1] = 2
    v2[58:62] = bytes([4, 4, 0xAB, 0xCD])  # a version 2 TLV where v1 has its terminator
    assert decode(bytes(v2)) == SEED_PDU


# ---- malformed input, counted by reason -------------------------------------------------


def _patched(offset: int, value: int) -> bytes:
    frame = bytearray(GOLDEN_FRAME)
    frame[offset] = value
    return bytes(frame)


MARKER = bytes(
    Ether(dst="01:80:c2:00:00:02", src="00:e0:fc:12:01:02") / SlowProtocol() / MarkerProtocol()
)
TAGGED = bytes(
    Ether(dst="01:80:c2:00:00:02", src="00:e0:fc:12:01:02")
    / Dot1Q(vlan=100, type=0x8809)
    / SlowProtocol()
    / LACP()
)
MALFORMED: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "short"),
    "half-header": (GOLDEN_FRAME[:13], "short"),
    "header-only": (GOLDEN_FRAME[:14], "short"),
    "subtype-only": (GOLDEN_FRAME[:15], "short"),
    "truncated": (GOLDEN_FRAME[:-1], "short"),
    "unicast-dst": (bytes.fromhex("00e0fc123457") + GOLDEN_FRAME[6:], "bad-dst"),
    "lldp-dst": (bytes.fromhex("0180c200000e") + GOLDEN_FRAME[6:], "bad-dst"),
    "ipv4": (GOLDEN_FRAME[:12] + b"\x08\x00" + GOLDEN_FRAME[14:], "bad-ethertype"),
    "vlan-tagged": (TAGGED, "bad-ethertype"),
    "marker": (MARKER, "not-lacp"),
    "oam": (_patched(14, 3), "not-lacp"),
    "ossp": (_patched(14, 10), "not-lacp"),
    "subtype-0": (_patched(14, 0), "bad-subtype"),
    "subtype-99": (_patched(14, 99), "bad-subtype"),
    "version-0": (_patched(15, 0), "bad-version"),
    "actor-type": (_patched(16, 2), "bad-tlv"),
    "actor-length": (_patched(17, 19), "bad-tlv"),
    "partner-type": (_patched(36, 1), "bad-tlv"),
    "partner-length": (_patched(37, 21), "bad-tlv"),
    "collector-type": (_patched(56, 4), "bad-tlv"),
    "collector-length": (_patched(57, 20), "bad-tlv"),
    "terminator-type": (_patched(72, 5), "bad-tlv"),
    "terminator-length": (_patched(73, 1), "bad-tlv"),
}


@pytest.mark.parametrize(("frame", "reason"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frame_raises_with_reason(frame: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_frame(frame)
    assert info.value.reason == reason


def test_malformed_frames_counted_by_reason() -> None:
    port = PortConfig(name="GigabitEthernet0/1/2", port_number=1, key=305, mac=SRC)
    trunk = LacpTrunk(TrunkConfig(trunk_id=1, system_priority=1, system=SYS_A, ports=(port,)))
    for frame, _ in MALFORMED.values():
        try:
            decode_frame(frame)
        except DecodeError as exc:
            trunk.count_drop(port.name, exc.reason)
    assert trunk.snapshot().ports[0].dropped == Counter(r for _, r in MALFORMED.values())
    assert trunk.snapshot().ports[0].dropped == {
        "short": 5,
        "bad-dst": 2,
        "bad-ethertype": 2,
        "not-lacp": 3,
        "bad-subtype": 2,
        "bad-version": 1,
        "bad-tlv": 8,
    }


def test_decode_error_is_a_value_error_with_detail() -> None:
    with pytest.raises(ValueError, match="bad-version: version 0"):
        decode(_patched(15, 0)[14:])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"system": bytes(5)},
        {"key": -1},
        {"port": 0x10000},
        {"system_priority": 0x10000},
        {"state": 0x100},
    ],
)
def test_port_info_rejects_out_of_range(kwargs: dict[str, object]) -> None:
    fields = dict(vars(SEED_ACTOR)) | kwargs
    with pytest.raises(ValueError):
        PortInfo(**fields)  # type: ignore[arg-type]


def test_encode_rejects_bad_source_and_delay() -> None:
    with pytest.raises(ValueError):
        encode_frame(bytes(5), SEED_PDU)
    with pytest.raises(ValueError):
        Lacpdu(SEED_ACTOR, SEED_PARTNER, 0x10000)


# ---- fuzz -------------------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_fuzz_random_bytes_only_decode_error(data: bytes) -> None:
    for func in (decode, decode_frame):
        with contextlib.suppress(DecodeError):
            func(data)


@given(st.binary(max_size=200), st.integers(0, 125))
def test_fuzz_lacp_prefix_only_decode_error(tail: bytes, cut: int) -> None:
    """Valid header and subtype, then anything: reaches the deep checks."""
    with contextlib.suppress(DecodeError):
        decode_frame(GOLDEN_FRAME[:cut] + tail)


@given(st.lists(st.tuples(st.integers(14, FRAME_LEN - 1), st.integers(0, 255)), max_size=6))
def test_fuzz_mutated_frames_decode_or_raise_decode_error(edits: list[tuple[int, int]]) -> None:
    frame = bytearray(GOLDEN_FRAME)
    for offset, value in edits:
        frame[offset] = value
    try:
        _, pdu = decode_frame(bytes(frame))
    except DecodeError:
        return
    if frame[15] == 1:  # a version 1 frame that decoded re-encodes to itself but reserved
        again = bytearray(encode(pdu))
        for off in (*range(19, 22), *range(39, 42), *range(46, 58), *range(60, 110)):
            again[off] = frame[14 + off]
        assert bytes(again) == bytes(frame[14:])
