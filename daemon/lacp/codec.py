"""LACPDU wire format (IEEE 802.1AX-2014 clause 6.4.2), encoded and decoded with `struct`.

Decoding is strict where a wrong value means the frame is not a usable LACPDU (destination,
ethertype, subtype, version, TLV types and lengths, total length) and lenient where the
standard says so: reserved octets, including the 50 trailing ones, "shall be ignored on
receipt", and frames longer than 124 octets are accepted because NICs pad. A version 2 (or
later) LACPDU is accepted too: later versions keep the version 1 TLVs at the same offsets and
may put further TLVs after the Collector TLV, which a version 1 receiver ignores; for those the
Terminator is therefore not checked at its version 1 offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntFlag

from daemon.wire import DecodeError

SLOW_PROTOCOLS_MAC = bytes.fromhex("0180c2000002")
SLOW_PROTOCOLS_ETHERTYPE = 0x8809
LACP_SUBTYPE = 1
LACP_VERSION = 1
LACPDU_LEN = 110
ETH_HEADER_LEN = 14
FRAME_LEN = ETH_HEADER_LEN + LACPDU_LEN  # 124: the minimum Ethernet frame without FCS

# Other slow protocols (IEEE 802.3 Annex 57A): Marker, OAM, OSSP. Valid frames, just not ours.
_OTHER_SLOW_SUBTYPES = frozenset({2, 3, 10})

_ETH = struct.Struct("!6s6sH")
# subtype, version | actor TLV | partner TLV | collector TLV | terminator TLV | 50 reserved
_INFO = "BBH6sHHHB3x"
_PDU = struct.Struct(f"!BB{_INFO}{_INFO}BBH12xBB50x")

_ACTOR_TLV = (1, 20)
_PARTNER_TLV = (2, 20)
_COLLECTOR_TLV = (3, 16)
_TERMINATOR_TLV = (0, 0)


class State(IntFlag):
    """Actor_State / Partner_State bits; bit 0 is the least significant."""

    ACTIVITY = 1
    TIMEOUT = 2
    AGGREGATION = 4
    SYNCHRONIZATION = 8
    COLLECTING = 16
    DISTRIBUTING = 32
    DEFAULTED = 64
    EXPIRED = 128


def state_bits(state: int) -> str:
    """Render a state octet bit 0 (Activity) first, as VRP's `display eth-trunk` does."""
    return "".join("1" if state >> bit & 1 else "0" for bit in range(8))


def format_system_id(system: bytes) -> str:
    """VRP's MAC notation: 00e0-fc12-3455."""
    h = system.hex()
    return f"{h[0:4]}-{h[4:8]}-{h[8:12]}"


@dataclass(frozen=True)
class PortInfo:
    """One Actor or Partner Information TLV: who a port is and what state it is in."""

    system_priority: int
    system: bytes
    key: int
    port_priority: int
    port: int
    state: int

    def __post_init__(self) -> None:
        # Validate at construction so encode() can never fail half way through a frame.
        if len(self.system) != 6:
            raise ValueError(f"system must be 6 bytes, got {len(self.system)}")
        for field in ("system_priority", "key", "port_priority", "port"):
            value = getattr(self, field)
            if not 0 <= value <= 0xFFFF:
                raise ValueError(f"{field} out of range: {value}")
        if not 0 <= self.state <= 0xFF:
            raise ValueError(f"state out of range: {self.state}")


@dataclass(frozen=True)
class Lacpdu:
    """A decoded LACPDU: the sender's view of itself (actor) and of us (partner)."""

    actor: PortInfo
    partner: PortInfo
    collector_max_delay: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.collector_max_delay <= 0xFFFF:
            raise ValueError(f"collector_max_delay out of range: {self.collector_max_delay}")


def _info_fields(tlv: tuple[int, int], info: PortInfo) -> tuple[int | bytes, ...]:
    return (
        *tlv,
        info.system_priority,
        info.system,
        info.key,
        info.port_priority,
        info.port,
        info.state,
    )


def encode(pdu: Lacpdu) -> bytes:
    """The 110-octet version 1 LACPDU (slow-protocols payload, subtype onwards)."""
    return _PDU.pack(
        LACP_SUBTYPE,
        LACP_VERSION,
        *_info_fields(_ACTOR_TLV, pdu.actor),
        *_info_fields(_PARTNER_TLV, pdu.partner),
        *_COLLECTOR_TLV,
        pdu.collector_max_delay,
        *_TERMINATOR_TLV,
    )


def encode_frame(src_mac: bytes, pdu: Lacpdu) -> bytes:
    """A complete 124-octet Ethernet frame (no FCS) ready for a packet socket."""
    if len(src_mac) != 6:
        raise ValueError(f"src_mac must be 6 bytes, got {len(src_mac)}")
    return _ETH.pack(SLOW_PROTOCOLS_MAC, src_mac, SLOW_PROTOCOLS_ETHERTYPE) + encode(pdu)


def decode(payload: bytes) -> Lacpdu:
    """Parse a slow-protocols payload; raise DecodeError with a stable reason token."""
    if len(payload) < 2:
        raise DecodeError("short", f"{len(payload)} octets")
    subtype, version = payload[0], payload[1]
    if subtype != LACP_SUBTYPE:
        reason = "not-lacp" if subtype in _OTHER_SLOW_SUBTYPES else "bad-subtype"
        raise DecodeError(reason, f"subtype {subtype}")
    if version < LACP_VERSION:
        raise DecodeError("bad-version", f"version {version}")
    if len(payload) < LACPDU_LEN:
        raise DecodeError("short", f"{len(payload)} octets, need {LACPDU_LEN}")
    f = _PDU.unpack_from(payload)
    tlvs = [(f[2:4], _ACTOR_TLV), (f[10:12], _PARTNER_TLV), (f[18:20], _COLLECTOR_TLV)]
    if version == LACP_VERSION:
        tlvs.append((f[21:23], _TERMINATOR_TLV))
    for got, want in tlvs:
        if got != want:
            raise DecodeError("bad-tlv", f"type/length {got[0]}/{got[1]}, want {want[0]}/{want[1]}")
    return Lacpdu(
        actor=PortInfo(*f[4:10]),
        partner=PortInfo(*f[12:18]),
        collector_max_delay=f[20],
    )


def decode_frame(frame: bytes) -> tuple[bytes, Lacpdu]:
    """Parse an Ethernet frame as received on a packet socket; return (source MAC, PDU)."""
    if len(frame) < ETH_HEADER_LEN:
        raise DecodeError("short", f"{len(frame)} octets")
    dst, src, ethertype = _ETH.unpack_from(frame)
    if dst != SLOW_PROTOCOLS_MAC:
        raise DecodeError("bad-dst", dst.hex())
    if ethertype != SLOW_PROTOCOLS_ETHERTYPE:
        raise DecodeError("bad-ethertype", f"0x{ethertype:04x}")
    return src, decode(frame[ETH_HEADER_LEN:])
