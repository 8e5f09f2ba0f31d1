"""IGMP wire format (RFC 1112 v1, RFC 2236 v2, RFC 3376 v3), encoded and decoded with `struct`.

`decode(payload)` parses an IGMP message (the IP payload); `decode_ip(datagram)` parses a
whole IPv4 datagram as a raw IPPROTO_IGMP socket delivers it on Linux (header included, total
length in network order) and reports the TTL and whether the Router Alert option (RFC 2113)
was present, because the machine needs both to apply RFC 3376's receive rules.

Strict where a wrong value means the message is unusable: the checksum (always over the whole
IP payload), lengths, counts that must fit, the IPv4 header. Lenient where the RFCs say so:
  - RFC 2236 2.5 and RFC 3376 4.1.10 / 4.2.11: octets after the message proper are covered by
    the checksum and otherwise ignored (so `encode(decode(b))` may be shorter than `b`);
  - RFC 3376 4.1.7: the Query's 4 reserved bits are ignored, and so are the Report's reserved
    fields;
  - RFC 3376 4.2.12: a group record of unknown type is kept (as its integer type), for the
    machine to ignore: one unknown record does not make the other records unusable;
  - a Query's length picks its version (RFC 3376 7.1): 8 octets is v1 (max resp code 0) or
    v2, 12 or more is v3, anything else is invalid ("bad-length").
Semantic checks (is the group multicast, does the destination match, TTL, Router Alert) are
the machine's: the RFCs say to ignore such messages, and the machine counts why.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeAlias

from daemon.wire import DecodeError

IPPROTO_IGMP = 2
ALL_SYSTEMS = "224.0.0.1"  # general queries
ALL_ROUTERS = "224.0.0.2"  # v2 leaves
ALL_V3_ROUTERS = "224.0.0.22"  # v3 reports
ANY = "0.0.0.0"

IGMP_HEADER_LEN = 8
V3_QUERY_MIN_LEN = 12
IPV4_HEADER_LEN = 20
ROUTER_ALERT_OPTION = 148  # RFC 2113: copied flag | class 0 | number 20
IGMP_TOS = 0xC0  # precedence Internetwork Control (RFC 3376 4)

MAX_FLOAT_CODE_VALUE = 0x1F << 10  # 31744, the largest value RFC 3376 4.1.1 can express

_HEAD = struct.Struct("!BBH4s")  # type, code, checksum, group
_V3_QUERY_TAIL = struct.Struct("!BBH")  # resv|S|QRV, QQIC, number of sources
_V3_REPORT_HEAD = struct.Struct("!BBHHH")  # type, reserved, checksum, reserved, records
_RECORD_HEAD = struct.Struct("!BBH4s")  # type, aux data len (words), sources, group
_IP_HEAD = struct.Struct("!BBHHHBBH4s4s")


class MsgType(IntEnum):
    QUERY = 0x11
    V1_REPORT = 0x12
    V2_REPORT = 0x16
    V2_LEAVE = 0x17
    V3_REPORT = 0x22


class RecordType(IntEnum):
    """RFC 3376 4.2.12: current-state (1, 2), filter-mode-change (3, 4), source-list-change."""

    MODE_IS_INCLUDE = 1
    MODE_IS_EXCLUDE = 2
    CHANGE_TO_INCLUDE = 3
    CHANGE_TO_EXCLUDE = 4
    ALLOW_NEW_SOURCES = 5
    BLOCK_OLD_SOURCES = 6


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071); 0 when computed over data that carries a valid one."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def encode_float_code(value: int) -> int:
    """RFC 3376 4.1.1 / 4.1.7: Max Resp Code or QQIC for `value` (tenths of s, or s).

    Values below 128 are literal; larger ones use the 1|exp|mant form and are truncated to
    the nearest representable value below (as common implementations do), so a router never
    advertises longer than it means. Values above 31744 saturate at code 0xFF.
    """
    if value < 0:
        raise ValueError(f"negative time value: {value}")
    if value < 128:
        return value
    if value >= MAX_FLOAT_CODE_VALUE:
        return 0xFF
    exp = value.bit_length() - 8  # so that value >> (exp + 3) has 5 bits: 1mmmm
    return 0x80 | exp << 4 | (value >> (exp + 3)) & 0x0F


def decode_float_code(code: int) -> int:
    """The value a Max Resp Code / QQIC stands for (RFC 3376 4.1.1 / 4.1.7)."""
    if not 0 <= code <= 0xFF:
        raise ValueError(f"code out of range: {code}")
    if code < 128:
        return code
    exp, mant = code >> 4 & 0x07, code & 0x0F
    return (mant | 0x10) << (exp + 3)


def _check_addr(field: str, value: str) -> bytes:
    try:
        return socket.inet_pton(socket.AF_INET, value)
    except (OSError, TypeError):
        raise ValueError(f"{field}: not a dotted-quad IPv4 address: {value!r}") from None


def is_multicast(addr: str) -> bool:
    """224.0.0.0/4, for an address already known to be a valid dotted quad."""
    return 224 <= int(addr.partition(".")[0]) <= 239


@dataclass(frozen=True)
class Query:
    """A Membership Query of any version; `max_resp_code` and `qqic` are the raw wire codes.

    version 1: 8 octets, code 0 (hosts assume 10 s); version 2: 8 octets, code in tenths of a
    second (1..255); version 3: 12 + 4n octets, code in RFC 3376 floating point. Build with
    `Query.v2(...)` / `Query.v3(...)` to work in seconds.
    """

    version: int
    group: str = ANY
    max_resp_code: int = 0
    s_flag: bool = False
    qrv: int = 0
    qqic: int = 0
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_addr("group", self.group)
        for s in self.sources:
            _check_addr("source", s)
        if not 0 <= self.max_resp_code <= 0xFF:
            raise ValueError(f"max_resp_code out of range: {self.max_resp_code}")
        if self.version in (1, 2):
            if self.s_flag or self.qrv or self.qqic or self.sources:
                raise ValueError(f"v{self.version} query has no S, QRV, QQIC or sources")
            if (self.max_resp_code == 0) != (self.version == 1):
                raise ValueError("a v1 query has max resp code 0, a v2 query a nonzero one")
        elif self.version == 3:
            if not 0 <= self.qrv <= 7:
                raise ValueError(f"qrv out of range: {self.qrv}")
            if not 0 <= self.qqic <= 0xFF:
                raise ValueError(f"qqic out of range: {self.qqic}")
            if len(self.sources) > 0xFFFF:
                raise ValueError(f"too many sources: {len(self.sources)}")
        else:
            raise ValueError(f"query version must be 1, 2 or 3, not {self.version}")

    @classmethod
    def v2(cls, max_response: float, group: str = ANY) -> Query:
        return cls(2, group, _tenths(max_response, limit=0xFF))

    @classmethod
    def v3(
        cls,
        max_response: float,
        group: str = ANY,
        *,
        robustness: int = 2,
        query_interval: float = 125,
        s_flag: bool = False,
        sources: tuple[str, ...] = (),
    ) -> Query:
        """QRV is 0 when robustness exceeds 7, as RFC 3376 4.1.6 says."""
        return cls(
            3,
            group,
            encode_float_code(_tenths(max_response, limit=MAX_FLOAT_CODE_VALUE)),
            s_flag,
            robustness if robustness <= 7 else 0,
            encode_float_code(round(query_interval)),
            tuple(sources),
        )

    @property
    def max_response(self) -> float:
        """Seconds; a v1 query means 10 s (RFC 2236 4)."""
        if self.version == 1:
            return 10.0
        if self.version == 2:
            return self.max_resp_code / 10
        return decode_float_code(self.max_resp_code) / 10

    @property
    def qqi(self) -> int:
        """The querier's query interval in seconds (0: not given)."""
        return decode_float_code(self.qqic)

    @property
    def general(self) -> bool:
        return self.group == ANY


def _tenths(seconds: float, limit: int) -> int:
    tenths = round(seconds * 10)
    if not 0 < tenths <= limit:
        raise ValueError(f"max response {seconds} s not encodable (1..{limit} tenths)")
    return tenths


@dataclass(frozen=True)
class V1Report:
    group: str

    def __post_init__(self) -> None:
        _check_addr("group", self.group)


@dataclass(frozen=True)
class V2Report:
    group: str

    def __post_init__(self) -> None:
        _check_addr("group", self.group)


@dataclass(frozen=True)
class V2Leave:
    group: str

    def __post_init__(self) -> None:
        _check_addr("group", self.group)


@dataclass(frozen=True)
class GroupRecord:
    """One group record of a v3 report; `record_type` may be a value RFC 3376 does not know."""

    record_type: int
    group: str
    sources: tuple[str, ...] = ()
    aux: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.record_type <= 0xFF:
            raise ValueError(f"record_type out of range: {self.record_type}")
        _check_addr("group", self.group)
        for s in self.sources:
            _check_addr("source", s)
        if len(self.sources) > 0xFFFF:
            raise ValueError(f"too many sources: {len(self.sources)}")
        if len(self.aux) % 4 or len(self.aux) > 0xFF * 4:
            raise ValueError(f"aux data must be whole 32-bit words, at most 255: {len(self.aux)}")


@dataclass(frozen=True)
class V3Report:
    records: tuple[GroupRecord, ...]

    def __post_init__(self) -> None:
        if len(self.records) > 0xFFFF:
            raise ValueError(f"too many records: {len(self.records)}")


Message: TypeAlias = Query | V1Report | V2Report | V2Leave | V3Report


@dataclass(frozen=True)
class IpIgmp:
    """An IGMP message with what the machine needs from its IPv4 header."""

    src: str
    dst: str
    ttl: int
    router_alert: bool
    message: Message


# ---- encode ------------------------------------------------------------------------------


def _with_checksum(body: bytearray) -> bytes:
    struct.pack_into("!H", body, 2, checksum(bytes(body)))
    return bytes(body)


def _addrs(addrs: tuple[str, ...]) -> bytes:
    return b"".join(socket.inet_pton(socket.AF_INET, a) for a in addrs)


def encode(msg: Message) -> bytes:
    """The IGMP message (IP payload) with its checksum."""
    body = bytearray()
    match msg:
        case Query():
            group = socket.inet_pton(socket.AF_INET, msg.group)
            body += _HEAD.pack(MsgType.QUERY, msg.max_resp_code, 0, group)
            if msg.version == 3:
                flags = (0x08 if msg.s_flag else 0) | msg.qrv
                body += _V3_QUERY_TAIL.pack(flags, msg.qqic, len(msg.sources))
                body += _addrs(msg.sources)
        case V1Report() | V2Report() | V2Leave():
            kind = {
                V1Report: MsgType.V1_REPORT,
                V2Report: MsgType.V2_REPORT,
                V2Leave: MsgType.V2_LEAVE,
            }[type(msg)]
            body += _HEAD.pack(kind, 0, 0, socket.inet_pton(socket.AF_INET, msg.group))
        case V3Report():
            body += _V3_REPORT_HEAD.pack(MsgType.V3_REPORT, 0, 0, 0, len(msg.records))
            for r in msg.records:
                group = socket.inet_pton(socket.AF_INET, r.group)
                body += _RECORD_HEAD.pack(r.record_type, len(r.aux) // 4, len(r.sources), group)
                body += _addrs(r.sources)
                body += r.aux
        case _:
            raise TypeError(f"not an IGMP message: {msg!r}")
    return _with_checksum(body)


def encode_ip(
    src: str,
    dst: str,
    msg: Message | bytes,
    *,
    ttl: int = 1,
    router_alert: bool = True,
    tos: int = IGMP_TOS,
) -> bytes:
    """A whole IPv4 datagram carrying `msg`, as a host would send it (for tests and tools;
    the daemon's kernel side lets Linux build the header)."""
    payload = msg if isinstance(msg, bytes) else encode(msg)
    options = struct.pack("!BBH", ROUTER_ALERT_OPTION, 4, 0) if router_alert else b""
    ihl = (IPV4_HEADER_LEN + len(options)) // 4
    header = bytearray(
        _IP_HEAD.pack(
            0x40 | ihl,
            tos,
            ihl * 4 + len(payload),
            0,
            0,
            ttl,
            IPPROTO_IGMP,
            0,
            _check_addr("src", src),
            _check_addr("dst", dst),
        )
        + options
    )
    struct.pack_into("!H", header, 10, checksum(bytes(header)))
    return bytes(header) + payload


# ---- decode ------------------------------------------------------------------------------


def _sources(data: bytes, offset: int, count: int) -> tuple[str, ...]:
    ntoa = socket.inet_ntoa
    return tuple(ntoa(data[o : o + 4]) for o in range(offset, offset + 4 * count, 4))


def _decode_query(data: bytes, code: int, group: str) -> Query:
    n = len(data)
    if n == IGMP_HEADER_LEN:
        return Query(1 if code == 0 else 2, group, code)
    if n < V3_QUERY_MIN_LEN:
        raise DecodeError("bad-length", f"query of {n} octets (8 is v1/v2, >= 12 is v3)")
    flags, qqic, count = _V3_QUERY_TAIL.unpack_from(data, IGMP_HEADER_LEN)
    if V3_QUERY_MIN_LEN + 4 * count > n:
        raise DecodeError("bad-length", f"{count} sources do not fit in {n} octets")
    return Query(
        3,
        group,
        code,
        bool(flags & 0x08),
        flags & 0x07,
        qqic,
        _sources(data, V3_QUERY_MIN_LEN, count),
    )


def _decode_v3_report(data: bytes) -> V3Report:
    n = len(data)
    _, _, _, _, count = _V3_REPORT_HEAD.unpack_from(data)
    offset = IGMP_HEADER_LEN
    records = []
    for i in range(count):
        if offset + _RECORD_HEAD.size > n:
            raise DecodeError("bad-length", f"record {i} of {count} starts past {n} octets")
        rtype, aux_words, nsrc, group = _RECORD_HEAD.unpack_from(data, offset)
        start = offset + _RECORD_HEAD.size
        end = start + 4 * nsrc + 4 * aux_words
        if end > n:
            raise DecodeError("bad-length", f"record {i} of {count} ends past {n} octets")
        records.append(
            GroupRecord(
                rtype,
                socket.inet_ntoa(group),
                _sources(data, start, nsrc),
                data[start + 4 * nsrc : end],
            )
        )
        offset = end
    return V3Report(tuple(records))


def decode(payload: bytes) -> Message:
    """Parse an IGMP message (the whole IP payload); raise DecodeError with a reason."""
    data = bytes(payload)
    if len(data) < IGMP_HEADER_LEN:
        raise DecodeError("short", f"{len(data)} octets")
    if checksum(data) != 0:
        raise DecodeError("bad-checksum", f"0x{data[2] << 8 | data[3]:04x}")
    kind, code, _, group_raw = _HEAD.unpack_from(data)
    group = socket.inet_ntoa(group_raw)
    if kind == MsgType.QUERY:
        return _decode_query(data, code, group)
    if kind == MsgType.V1_REPORT:
        return V1Report(group)
    if kind == MsgType.V2_REPORT:
        return V2Report(group)
    if kind == MsgType.V2_LEAVE:
        return V2Leave(group)
    if kind == MsgType.V3_REPORT:
        return _decode_v3_report(data)
    raise DecodeError("unknown-type", f"type 0x{kind:02x}")


def _router_alert(options: bytes) -> bool:
    """Walk the IPv4 options (RFC 791); True when Router Alert (RFC 2113) is among them."""
    found = False
    i, n = 0, len(options)
    while i < n:
        kind = options[i]
        if kind == 0:  # end of option list
            break
        if kind == 1:  # no operation
            i += 1
            continue
        if i + 1 >= n or options[i + 1] < 2 or i + options[i + 1] > n:
            raise DecodeError("bad-ip-option", f"option {kind} at offset {i} overruns")
        length = options[i + 1]
        if kind == ROUTER_ALERT_OPTION:
            if length != 4:
                raise DecodeError("bad-ip-option", f"router alert of length {length}")
            found = True
        i += length
    return found


def decode_ip(datagram: bytes) -> IpIgmp:
    """Parse an IPv4 datagram from a raw IPPROTO_IGMP socket (Linux: header included)."""
    data = bytes(datagram)
    if len(data) < IPV4_HEADER_LEN:
        raise DecodeError("short", f"{len(data)} octets, no IPv4 header")
    vihl, _, total, _, frag, ttl, proto, _, src, dst = _IP_HEAD.unpack_from(data)
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4:
        raise DecodeError("bad-ip", f"version {vihl >> 4}")
    if ihl < IPV4_HEADER_LEN or ihl > len(data):
        raise DecodeError("bad-ip", f"header length {ihl} of {len(data)} octets")
    if total < ihl or total > len(data):
        raise DecodeError("bad-ip", f"total length {total}, header {ihl}, have {len(data)}")
    if frag & 0x3FFF:
        raise DecodeError("bad-ip", "fragment")
    if checksum(data[:ihl]) != 0:
        raise DecodeError("bad-ip-checksum", f"header checksum 0x{data[10] << 8 | data[11]:04x}")
    if proto != IPPROTO_IGMP:
        raise DecodeError("not-igmp", f"protocol {proto}")
    router_alert = _router_alert(data[IPV4_HEADER_LEN:ihl])
    return IpIgmp(
        socket.inet_ntoa(src),
        socket.inet_ntoa(dst),
        ttl,
        router_alert,
        decode(data[ihl:total]),
    )
