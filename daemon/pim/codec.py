"""PIMv2 wire format (RFC 7761 4.9): Hello, Join/Prune, Register, Register-Stop and Assert.

`decode(payload)` parses one PIM message, the IP payload as a raw IPPROTO_PIM socket hands it
over once the IPv4 header is stripped; `encode(msg)` builds one with its checksum.

Strict where a wrong value makes the message unusable: the version (2), the checksum (RFC 7761
4.9: over the whole PIM message; for a Register only over its first 8 octets), every length
(Hello options, group and source counts, no octets left over after a Join/Prune), the
encoded-address formats of 4.9.1 (address family 1 = IPv4, encoding type 0 = native, mask
length at most 32); a Register must carry an IPv4 packet to a multicast group
("bad-register"), and one whose checksum covers the whole message is accepted too (4.9.3:
some implementations compute it so). This daemon is IPv4 only, so an IPv6 (family 2) address
in a Join/Prune is "bad-family"; Join Attributes (RFC 5384, encoding type 1) are "bad-encoding". A
duplicated Hello option is "duplicate-option" (which copy would count is not defined),
except the Address List: a dual-stack neighbor sends one per family, and its IPv6 entries
are skipped, not an error.

Lenient where the RFC says so: the header's Reserved octet and the reserved bits of the
encoded group and source addresses are ignored on receipt (RFC 7761 4.9, RFC 8736); unknown
Hello options are kept unparsed as (type, value) so they neither block the neighbor nor get
lost (4.9.2: "Unknown options MUST be ignored"). Other message types (Bootstrap 4,
C-RP-Advertisement 8, the PIM-DM and later types) decode to `Unsupported(type)` once the
checksum is verified: valid PIM, just not ours.

Round trips: `decode(encode(m)) == m` always; `encode(decode(b)) == b` when `b` lists the
known Hello options in our order (Holdtime, LAN Prune Delay, DR Priority, Generation ID,
Address List, then the others) with one IPv4-only Address List.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import TypeAlias

from daemon.wire import DecodeError

IPPROTO_PIM = 103
ALL_PIM_ROUTERS = "224.0.0.13"
PIM_VERSION = 2
HEADER_LEN = 4
HOLDTIME_FOREVER = 0xFFFF  # Hello and Join/Prune holdtime: never time the state out
MAX_JP_PAYLOAD = 1400  # the largest Join/Prune message (PIM header included) we build

AF_IPV4 = 1
AF_IPV6 = 2
ENCODING_NATIVE = 0
_FAMILY_LEN = {AF_IPV4: 4, AF_IPV6: 16}  # octets of an encoded-unicast address's body
ENCODED_UNICAST_LEN = 6
ENCODED_GROUP_LEN = 8
ENCODED_SOURCE_LEN = 8
JP_HEADER_LEN = HEADER_LEN + ENCODED_UNICAST_LEN + 4  # + reserved, num groups, holdtime
JP_GROUP_HEADER_LEN = ENCODED_GROUP_LEN + 4  # + number of joined and pruned sources
MAX_JP_GROUPS = 0xFF

_HEAD = struct.Struct("!BBH")  # version|type, reserved, checksum
_OPTION = struct.Struct("!HH")  # type, length
_UNICAST = struct.Struct("!BB4s")  # family, encoding, address
_GROUP = struct.Struct("!BBBB4s")  # family, encoding, B|reserved|Z, mask length, address
_SOURCE = struct.Struct("!BBBB4s")  # family, encoding, reserved|S|W|R, mask length, address
_JP_FIXED = struct.Struct("!BBH")  # reserved, number of groups, holdtime
_COUNTS = struct.Struct("!HH")  # number of joined sources, number of pruned sources
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_INNER = struct.Struct("!BBHHHBBH4s4s")  # an IPv4 header without options
IPV4_HEADER_LEN = 20
REGISTER_STOP_LEN = HEADER_LEN + ENCODED_GROUP_LEN + ENCODED_UNICAST_LEN
ASSERT_LEN = REGISTER_STOP_LEN + 8
_REGISTER_B = 0x80000000
_REGISTER_N = 0x40000000
_LPD = struct.Struct("!HH")  # T|propagation delay (ms), override interval (ms)

_GROUP_B = 0x80
_GROUP_Z = 0x01
_SOURCE_S = 0x04
_SOURCE_W = 0x02
_SOURCE_R = 0x01


class MsgType(IntEnum):
    """PIM message types (IANA "PIM Message Types"); only HELLO and JOIN_PRUNE are parsed."""

    HELLO = 0
    REGISTER = 1
    REGISTER_STOP = 2
    JOIN_PRUNE = 3
    BOOTSTRAP = 4
    ASSERT = 5
    GRAFT = 6
    GRAFT_ACK = 7
    CANDIDATE_RP_ADVERTISEMENT = 8


class OptionType(IntEnum):
    """The Hello options this codec interprets (RFC 7761 4.9.2)."""

    HOLDTIME = 1
    LAN_PRUNE_DELAY = 2
    DR_PRIORITY = 19
    GENERATION_ID = 20
    ADDRESS_LIST = 24


_KNOWN_OPTIONS = frozenset(int(t) for t in OptionType)
_OPTION_LEN = {
    OptionType.HOLDTIME: 2,
    OptionType.LAN_PRUNE_DELAY: 4,
    OptionType.DR_PRIORITY: 4,
    OptionType.GENERATION_ID: 4,
}


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071); 0 when computed over data that carries a valid one."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _aton(field: str, value: str) -> bytes:
    try:
        return socket.inet_pton(socket.AF_INET, value)
    except (OSError, TypeError):
        raise ValueError(f"{field}: not a dotted-quad IPv4 address: {value!r}") from None


def _check_range(field: str, value: int, high: int) -> None:
    if not 0 <= value <= high:
        raise ValueError(f"{field} out of range 0..{high}: {value}")


# ---- messages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LanPruneDelay:
    """Hello option 2: the sender's propagation delay and override interval, in milliseconds.

    `tracking` is the T bit: the sender can disable Join suppression (RFC 7761 4.3.3).
    """

    propagation_delay_ms: int
    override_interval_ms: int
    tracking: bool = False

    def __post_init__(self) -> None:
        _check_range("propagation_delay_ms", self.propagation_delay_ms, 0x7FFF)
        _check_range("override_interval_ms", self.override_interval_ms, 0xFFFF)


@dataclass(frozen=True)
class Hello:
    """A Hello; None (or empty) for an option the message does not carry.

    `addresses` is the Address List option (the sender's secondary addresses). `unknown`
    holds the options this codec does not interpret, as (type, value), in received order.
    """

    holdtime: int | None = None
    lan_prune_delay: LanPruneDelay | None = None
    dr_priority: int | None = None
    generation_id: int | None = None
    addresses: tuple[str, ...] = ()
    unknown: tuple[tuple[int, bytes], ...] = ()

    def __post_init__(self) -> None:
        if self.holdtime is not None:
            _check_range("holdtime", self.holdtime, 0xFFFF)
        if self.dr_priority is not None:
            _check_range("dr_priority", self.dr_priority, 0xFFFFFFFF)
        if self.generation_id is not None:
            _check_range("generation_id", self.generation_id, 0xFFFFFFFF)
        for a in self.addresses:
            _aton("address list entry", a)
        if len(self.addresses) * ENCODED_UNICAST_LEN > 0xFFFF:
            raise ValueError(f"address list too long: {len(self.addresses)}")
        for kind, value in self.unknown:
            _check_range("option type", kind, 0xFFFF)
            if kind in _KNOWN_OPTIONS:
                raise ValueError(f"option {kind} is interpreted; use its field")
            if len(value) > 0xFFFF:
                raise ValueError(f"option {kind} value of {len(value)} octets")


@dataclass(frozen=True)
class Source:
    """An encoded-source address of a Join/Prune (RFC 7761 4.9.1, 4.9.5.1).

    (*,G) is `Source.rp_tree(rp)`: the RP's address with S, W and R set; (S,G) has W and R
    clear, (S,G,rpt) has R set.
    """

    address: str
    sparse: bool = True
    wildcard: bool = False
    rpt: bool = False
    mask_len: int = 32

    def __post_init__(self) -> None:
        _aton("source", self.address)
        _check_range("source mask_len", self.mask_len, 32)

    @classmethod
    def rp_tree(cls, rp: str) -> Source:
        return cls(rp, sparse=True, wildcard=True, rpt=True)

    @property
    def is_star_g(self) -> bool:
        return self.wildcard and self.rpt


@dataclass(frozen=True)
class GroupEntry:
    """One group of a Join/Prune with its joined and pruned sources."""

    group: str
    joins: tuple[Source, ...] = ()
    prunes: tuple[Source, ...] = ()
    mask_len: int = 32
    bidir: bool = False  # B
    admin_scope: bool = False  # Z

    def __post_init__(self) -> None:
        _aton("group", self.group)
        _check_range("group mask_len", self.mask_len, 32)
        _check_range("joined sources", len(self.joins), 0xFFFF)
        _check_range("pruned sources", len(self.prunes), 0xFFFF)

    @property
    def size(self) -> int:
        """Octets this entry takes in a Join/Prune message."""
        return JP_GROUP_HEADER_LEN + ENCODED_SOURCE_LEN * (len(self.joins) + len(self.prunes))


@dataclass(frozen=True)
class JoinPrune:
    """A Join/Prune: every entry is meant for `upstream_neighbor`, sent to ALL-PIM-ROUTERS."""

    upstream_neighbor: str
    holdtime: int
    groups: tuple[GroupEntry, ...] = ()

    def __post_init__(self) -> None:
        _aton("upstream_neighbor", self.upstream_neighbor)
        _check_range("holdtime", self.holdtime, 0xFFFF)
        _check_range("number of groups", len(self.groups), MAX_JP_GROUPS)

    @property
    def size(self) -> int:
        return JP_HEADER_LEN + sum(g.size for g in self.groups)


@dataclass(frozen=True)
class Unsupported:
    """A valid PIM message of a type this daemon does not implement."""

    msg_type: int


@dataclass(frozen=True)
class Register:
    """A data packet tunnelled by a source's DR to the RP (4.9.3). `packet` is the IPv4
    packet as the source sent it; a Null-Register (N bit) carries only its IP header, to
    probe whether the RP still wants Registers. B (Border) is always clear here."""

    packet: bytes
    null: bool = False
    border: bool = False

    def __post_init__(self) -> None:
        _inner_addresses(self.packet)

    @property
    def source(self) -> str:
        return _inner_addresses(self.packet)[0]

    @property
    def group(self) -> str:
        return _inner_addresses(self.packet)[1]

    @classmethod
    def null_register(cls, source: str, group: str) -> Register:
        """The dummy IP header of a Null-Register: S to G, no payload."""
        header = bytearray(_INNER.pack(0x45, 0, IPV4_HEADER_LEN, 0, 0, 255, IPPROTO_PIM, 0,
                                       _aton("source", source), _aton("group", group)))
        struct.pack_into("!H", header, 10, checksum(bytes(header)))
        return cls(bytes(header), null=True)


@dataclass(frozen=True)
class RegisterStop:
    """The RP's answer to a Register (4.9.4): stop tunnelling S's packets to G. Source
    0.0.0.0 means every source of the group."""

    group: str
    source: str

    def __post_init__(self) -> None:
        _aton("group", self.group)
        _aton("source", self.source)


@dataclass(frozen=True, order=True)
class AssertMetric:
    """What an Assert compares (4.6.3): the RPT bit, the metric preference of the route
    toward the source (or the RP), its metric, then the higher address. `key()` sorts the
    preferred metric first."""

    rpt: bool
    preference: int
    metric: int

    def __post_init__(self) -> None:
        _check_range("metric preference", self.preference, 0x7FFFFFFF)
        _check_range("metric", self.metric, 0xFFFFFFFF)

    @property
    def infinite(self) -> bool:
        """An AssertCancel's metric (4.6.3), whatever its RPT bit."""
        return self.preference == 0x7FFFFFFF and self.metric == 0xFFFFFFFF

    def key(self, address: str) -> tuple[int, int, int, int]:
        return (int(self.rpt), self.preference, self.metric,
                -int.from_bytes(_aton("address", address), "big"))


INFINITE_ASSERT = AssertMetric(True, 0x7FFFFFFF, 0xFFFFFFFF)  # AssertCancel's (4.6.3)


@dataclass(frozen=True)
class Assert:
    """An Assert (4.9.6): `source` 0.0.0.0 with the RPT bit for (*,G)."""

    group: str
    source: str
    metric: AssertMetric

    def __post_init__(self) -> None:
        _aton("group", self.group)
        _aton("source", self.source)


Message: TypeAlias = Hello | JoinPrune | Register | RegisterStop | Assert | Unsupported


def split_join_prune(
    upstream_neighbor: str,
    holdtime: int,
    groups: Iterable[GroupEntry],
    limit: int = MAX_JP_PAYLOAD,
) -> list[JoinPrune]:
    """Pack `groups` in order into as few Join/Prune messages of at most `limit` octets (and
    255 groups) as that order allows; ValueError if one entry alone does not fit."""
    messages: list[JoinPrune] = []
    batch: list[GroupEntry] = []
    size = JP_HEADER_LEN
    for g in groups:
        if JP_HEADER_LEN + g.size > limit:
            raise ValueError(f"group entry of {g.size} octets does not fit in {limit}")
        if batch and (size + g.size > limit or len(batch) == MAX_JP_GROUPS):
            messages.append(JoinPrune(upstream_neighbor, holdtime, tuple(batch)))
            batch, size = [], JP_HEADER_LEN
        batch.append(g)
        size += g.size
    if batch:
        messages.append(JoinPrune(upstream_neighbor, holdtime, tuple(batch)))
    return messages


# ---- encode ------------------------------------------------------------------------------


def _option(kind: int, value: bytes) -> bytes:
    return _OPTION.pack(kind, len(value)) + value


def _encode_hello(h: Hello) -> bytes:
    parts: list[bytes] = []
    if h.holdtime is not None:
        parts.append(_option(OptionType.HOLDTIME, _U16.pack(h.holdtime)))
    if h.lan_prune_delay is not None:
        lpd = h.lan_prune_delay
        word = (0x8000 if lpd.tracking else 0) | lpd.propagation_delay_ms
        parts.append(_option(OptionType.LAN_PRUNE_DELAY, _LPD.pack(word, lpd.override_interval_ms)))
    if h.dr_priority is not None:
        parts.append(_option(OptionType.DR_PRIORITY, _U32.pack(h.dr_priority)))
    if h.generation_id is not None:
        parts.append(_option(OptionType.GENERATION_ID, _U32.pack(h.generation_id)))
    if h.addresses:
        value = b"".join(
            _UNICAST.pack(AF_IPV4, ENCODING_NATIVE, _aton("address", a)) for a in h.addresses
        )
        parts.append(_option(OptionType.ADDRESS_LIST, value))
    parts += [_option(kind, value) for kind, value in h.unknown]
    return b"".join(parts)


def _encode_source(s: Source) -> bytes:
    flags = _SOURCE_S if s.sparse else 0
    flags |= (_SOURCE_W if s.wildcard else 0) | (_SOURCE_R if s.rpt else 0)
    return _SOURCE.pack(AF_IPV4, ENCODING_NATIVE, flags, s.mask_len, _aton("source", s.address))


def _encode_join_prune(jp: JoinPrune) -> bytes:
    parts = [
        _UNICAST.pack(AF_IPV4, ENCODING_NATIVE, _aton("upstream", jp.upstream_neighbor)),
        _JP_FIXED.pack(0, len(jp.groups), jp.holdtime),
    ]
    for g in jp.groups:
        flags = (_GROUP_B if g.bidir else 0) | (_GROUP_Z if g.admin_scope else 0)
        parts.append(_GROUP.pack(AF_IPV4, ENCODING_NATIVE, flags, g.mask_len, _aton("g", g.group)))
        parts.append(_COUNTS.pack(len(g.joins), len(g.prunes)))
        parts += [_encode_source(s) for s in g.joins]
        parts += [_encode_source(s) for s in g.prunes]
    return b"".join(parts)


def encode(msg: Hello | JoinPrune | Register | RegisterStop | Assert) -> bytes:
    """The PIM message (IP payload) with its checksum (a Register's over its first 8 octets)."""
    covered = None
    match msg:
        case Hello():
            kind, body = MsgType.HELLO, _encode_hello(msg)
        case JoinPrune():
            kind, body = MsgType.JOIN_PRUNE, _encode_join_prune(msg)
        case Register():
            flags = (_REGISTER_B if msg.border else 0) | (_REGISTER_N if msg.null else 0)
            kind, body, covered = MsgType.REGISTER, _U32.pack(flags) + msg.packet, 8
        case RegisterStop():
            kind = MsgType.REGISTER_STOP
            body = (_GROUP.pack(AF_IPV4, ENCODING_NATIVE, 0, 32, _aton("group", msg.group))
                    + _UNICAST.pack(AF_IPV4, ENCODING_NATIVE, _aton("source", msg.source)))
        case Assert():
            kind = MsgType.ASSERT
            m = msg.metric
            body = (_GROUP.pack(AF_IPV4, ENCODING_NATIVE, 0, 32, _aton("group", msg.group))
                    + _UNICAST.pack(AF_IPV4, ENCODING_NATIVE, _aton("source", msg.source))
                    + _U32.pack(m.preference | (0x80000000 if m.rpt else 0))
                    + _U32.pack(m.metric))
        case _:
            raise TypeError(f"cannot encode {msg!r}")
    data = bytearray(_HEAD.pack(PIM_VERSION << 4 | kind, 0, 0) + body)
    struct.pack_into("!H", data, 2, checksum(bytes(data[:covered])))
    return bytes(data)


def _inner_addresses(packet: bytes) -> tuple[str, str]:
    """(source, group) of a Register's inner packet; ValueError unless IPv4 to a group."""
    if len(packet) < IPV4_HEADER_LEN or packet[0] >> 4 != 4 or (packet[0] & 0xF) < 5:
        raise ValueError(f"not an IPv4 packet ({len(packet)} octets)")
    if packet[16] >> 4 != 0xE:
        raise ValueError(f"to {socket.inet_ntoa(packet[16:20])}: not a multicast group")
    return socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20])


# ---- decode ------------------------------------------------------------------------------


def _check_format(family: int, encoding: int, what: str) -> None:
    if family != AF_IPV4:
        raise DecodeError("bad-family", f"{what}: address family {family}")
    if encoding != ENCODING_NATIVE:
        raise DecodeError("bad-encoding", f"{what}: encoding type {encoding}")


def _decode_address_list(value: bytes) -> tuple[str, ...]:
    """The IPv4 entries of one Address List option (4.9.2). Entries are encoded-unicast
    addresses of their family's length: IPv6 ones (a dual-stack neighbor such as FRR lists
    its IPv6 addresses too) are skipped, this daemon being IPv4 only. An entry of another
    family or encoding has no length we know, so the rest of the option is ignored; an
    entry cut short by the option's end makes the option malformed."""
    out = []
    off = 0
    while off < len(value):
        if len(value) - off < 2:
            raise DecodeError("bad-option-length", f"address list: {len(value) - off} "
                              "octets left, an encoded address needs more")
        family, encoding = value[off], value[off + 1]
        size = _FAMILY_LEN.get(family)
        if size is None or encoding != ENCODING_NATIVE:
            break
        end = off + 2 + size
        if end > len(value):
            raise DecodeError("bad-option-length", f"address list: family {family} entry "
                              f"of {size} octets cut at {len(value) - off - 2}")
        if family == AF_IPV4:
            out.append(socket.inet_ntoa(value[off + 2 : end]))
        off = end
    return tuple(out)


def _decode_hello(data: bytes) -> Hello:
    n = len(data)
    off = HEADER_LEN
    seen: set[int] = set()
    holdtime: int | None = None
    lan_prune_delay: LanPruneDelay | None = None
    dr_priority: int | None = None
    generation_id: int | None = None
    addresses: tuple[str, ...] = ()
    unknown: list[tuple[int, bytes]] = []
    while off < n:
        if n - off < _OPTION.size:
            raise DecodeError("bad-length", f"{n - off} octets left, an option needs 4")
        kind, length = _OPTION.unpack_from(data, off)
        start = off + _OPTION.size
        if start + length > n:
            raise DecodeError("bad-option-length", f"option {kind} of {length} overruns {n}")
        value = data[start : start + length]
        off = start + length
        if kind not in _KNOWN_OPTIONS:
            unknown.append((kind, value))
            continue
        if kind == OptionType.ADDRESS_LIST:  # may come once per address family (FRR)
            addresses += _decode_address_list(value)
            continue
        if kind in seen:
            raise DecodeError("duplicate-option", f"option {kind}")
        seen.add(kind)
        want = _OPTION_LEN.get(OptionType(kind))
        if want is not None and length != want:
            raise DecodeError("bad-option-length", f"option {kind} of {length} octets, not {want}")
        if kind == OptionType.HOLDTIME:
            holdtime = _U16.unpack(value)[0]
        elif kind == OptionType.LAN_PRUNE_DELAY:
            word, override = _LPD.unpack(value)
            lan_prune_delay = LanPruneDelay(word & 0x7FFF, override, bool(word & 0x8000))
        elif kind == OptionType.DR_PRIORITY:
            dr_priority = _U32.unpack(value)[0]
        else:
            generation_id = _U32.unpack(value)[0]
    return Hello(holdtime, lan_prune_delay, dr_priority, generation_id, addresses, tuple(unknown))


@lru_cache(maxsize=4096)
def _source(raw: bytes) -> Source:
    """One encoded-source address; cached: a Join/Prune repeats the RP's in every group."""
    family, encoding, flags, mask, addr = _SOURCE.unpack(raw)
    _check_format(family, encoding, "source")
    if mask > 32:
        raise DecodeError("bad-mask-len", f"source mask length {mask}")
    return Source(
        socket.inet_ntoa(addr),
        sparse=bool(flags & _SOURCE_S),
        wildcard=bool(flags & _SOURCE_W),
        rpt=bool(flags & _SOURCE_R),
        mask_len=mask,
    )


def _decode_join_prune(data: bytes) -> JoinPrune:
    n = len(data)
    if n < JP_HEADER_LEN:
        raise DecodeError("bad-length", f"join/prune of {n} octets")
    family, encoding, upstream = _UNICAST.unpack_from(data, HEADER_LEN)
    _check_format(family, encoding, "upstream neighbor")
    _, count, holdtime = _JP_FIXED.unpack_from(data, HEADER_LEN + ENCODED_UNICAST_LEN)
    off = JP_HEADER_LEN
    groups = []
    for i in range(count):
        if off + JP_GROUP_HEADER_LEN > n:
            raise DecodeError("bad-length", f"group {i} of {count} starts past {n} octets")
        family, encoding, flags, mask, addr = _GROUP.unpack_from(data, off)
        _check_format(family, encoding, "group")
        if mask > 32:
            raise DecodeError("bad-mask-len", f"group mask length {mask}")
        joined, pruned = _COUNTS.unpack_from(data, off + ENCODED_GROUP_LEN)
        off += JP_GROUP_HEADER_LEN
        end = off + ENCODED_SOURCE_LEN * (joined + pruned)
        if end > n:
            raise DecodeError("bad-length", f"group {i}: {joined}+{pruned} sources overrun {n}")
        step = ENCODED_SOURCE_LEN
        sources = [_source(data[o : o + step]) for o in range(off, end, step)]
        groups.append(
            GroupEntry(
                socket.inet_ntoa(addr),
                tuple(sources[:joined]),
                tuple(sources[joined:]),
                mask_len=mask,
                bidir=bool(flags & _GROUP_B),
                admin_scope=bool(flags & _GROUP_Z),
            )
        )
        off = end
    if off != n:
        raise DecodeError("bad-length", f"{n - off} octets after the last group")
    return JoinPrune(socket.inet_ntoa(upstream), holdtime, tuple(groups))


def decode(payload: bytes) -> Message:
    """Parse one PIM message (the IP payload); raise DecodeError with a reason."""
    data = bytes(payload)
    if len(data) < HEADER_LEN:
        raise DecodeError("short", f"{len(data)} octets")
    version, kind = data[0] >> 4, data[0] & 0x0F
    if version != PIM_VERSION:
        raise DecodeError("bad-version", f"version {version}")
    if kind == MsgType.REGISTER:  # the checksum leaves out the encapsulated data packet
        if len(data) < 8:
            raise DecodeError("short", f"register of {len(data)} octets")
        if checksum(data[:8]) != 0 and checksum(data) != 0:
            raise DecodeError("bad-checksum", f"0x{data[2] << 8 | data[3]:04x}")
        return _decode_register(data)
    if checksum(data) != 0:
        raise DecodeError("bad-checksum", f"0x{data[2] << 8 | data[3]:04x}")
    if kind == MsgType.HELLO:
        return _decode_hello(data)
    if kind == MsgType.JOIN_PRUNE:
        return _decode_join_prune(data)
    if kind == MsgType.REGISTER_STOP:
        return _decode_register_stop(data)
    if kind == MsgType.ASSERT:
        return _decode_assert(data)
    return Unsupported(kind)


def _decode_assert(data: bytes) -> Assert:
    if len(data) != ASSERT_LEN:
        raise DecodeError("bad-length", f"assert of {len(data)} octets")
    family, encoding, _, mask, group = _GROUP.unpack_from(data, HEADER_LEN)
    _check_format(family, encoding, "group")
    if mask > 32:
        raise DecodeError("bad-mask-len", f"group mask length {mask}")
    family, encoding, source = _UNICAST.unpack_from(data, HEADER_LEN + ENCODED_GROUP_LEN)
    _check_format(family, encoding, "source")
    off = HEADER_LEN + ENCODED_GROUP_LEN + ENCODED_UNICAST_LEN
    (word,) = _U32.unpack_from(data, off)
    (metric,) = _U32.unpack_from(data, off + 4)
    return Assert(socket.inet_ntoa(group), socket.inet_ntoa(source),
                  AssertMetric(bool(word & 0x80000000), word & 0x7FFFFFFF, metric))


def _decode_register(data: bytes) -> Register:
    (flags,) = _U32.unpack_from(data, HEADER_LEN)
    try:
        return Register(data[8:], null=bool(flags & _REGISTER_N),
                        border=bool(flags & _REGISTER_B))
    except ValueError as exc:
        raise DecodeError("bad-register", str(exc)) from None


def _decode_register_stop(data: bytes) -> RegisterStop:
    if len(data) != REGISTER_STOP_LEN:
        raise DecodeError("bad-length", f"register-stop of {len(data)} octets")
    family, encoding, _, _, group = _GROUP.unpack_from(data, HEADER_LEN)
    _check_format(family, encoding, "group")
    family, encoding, source = _UNICAST.unpack_from(data, HEADER_LEN + ENCODED_GROUP_LEN)
    _check_format(family, encoding, "source")
    return RegisterStop(socket.inet_ntoa(group), socket.inet_ntoa(source))
