"""RBS backup-channel records: the lab's own TCP wire format (docs/protocol.md, "RBS backup
channel"), encoded and decoded with `struct`.

The channel is a TCP byte stream of records. Every record is a 16-octet header (magic, version,
type, flags, reserved, payload length, sequence number) and a typed payload; all integers are
big-endian. Decoding is strict: a wrong magic, version, type, flag or reserved value, a record
over MAX_RECORD octets, a payload shorter or longer than its fields, or a field out of range
raises `DecodeError` with a short stable reason, and the caller closes the connection.

Service records are generic: an ENTRY names its service ("igmp" is the one defined) and carries
that service's key and value as plain values (`IgmpKey`, `IgmpValue`); nothing here knows IGMP
beyond the field layout.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from ipaddress import IPv4Address
from typing import ClassVar, TypeAlias

from daemon.wire import DecodeError

MAGIC = 0x5242  # "RB"
VERSION = 1
HEADER = struct.Struct("!HBBHHII")  # magic, version, type, flags, reserved, length, sequence
HEADER_LEN = HEADER.size  # 16
MAX_RECORD = 64 * 1024  # header + payload
MAX_PAYLOAD = MAX_RECORD - HEADER_LEN
SEQ_MOD = 1 << 32
MAX_NAME = 255  # str8 fields
IGMP = "igmp"
_BROADCAST = IPv4Address("255.255.255.255")
NO_REPORTER = IPv4Address(0)

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_BATCH = struct.Struct("!HI")  # backup-id, count
_ERROR = struct.Struct("!HH")  # code, backup-id
_ENTRY_HEAD = struct.Struct("!H")  # backup-id (then service str8, op u8)
_IGMP_VALUE = struct.Struct("!B4sIH")  # mode, last reporter, uptime, source count


class RecordType(IntEnum):
    OPEN = 1
    OPEN_ACK = 2
    BATCH_START = 3
    ENTRY = 4
    BATCH_END = 5
    ACK = 6
    KEEPALIVE = 7
    ERROR = 8


class Flags(IntFlag):
    """Header flags. ACK_REQUEST: acknowledge this record at once (set on BATCH_END).
    HOLDINGS: a batch record of what the sender holds *for* the addressee (its copy of the
    addressee's entries), not of what it serves; only on BATCH_START, ENTRY and BATCH_END."""

    ACK_REQUEST = 0x0001
    HOLDINGS = 0x0002


_KNOWN_FLAGS = int(Flags.ACK_REQUEST | Flags.HOLDINGS)
NO_FLAGS = Flags(0)
_FLAGS = {f: Flags(f) for f in range(_KNOWN_FLAGS + 1)}


class Op(IntEnum):
    ADD = 1
    UPDATE = 2
    DELETE = 3


class FilterMode(IntEnum):
    INCLUDE = 1
    EXCLUDE = 2


_MODES = {int(m): m for m in FilterMode}
_OPS = {int(o): o for o in Op}


class ErrorCode(IntEnum):
    MALFORMED = 1  # a record failed to decode; text is the DecodeError reason
    PROTOCOL = 2  # a valid record not allowed here (state, sequence, batch); text says which
    BACKUP_ID_MISMATCH = 3  # profile-scoped: the backup-id field names the addressee's profile
    PEER_MISMATCH = 4  # the OPEN's source address is not the configured peer


class FieldError(ValueError):
    """A value that cannot be put on the wire; `reason` is the DecodeError reason on decode."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _check_name(value: str, what: str) -> None:
    if not isinstance(value, str):
        raise FieldError("bad-string", f"{what} must be a str")
    if not 1 <= len(value.encode()) <= MAX_NAME:
        raise FieldError("bad-string", f"{what} must be 1..{MAX_NAME} octets: {value!r}")


def _check_backup_id(value: int) -> None:
    if not 1 <= value <= 0xFFFF:
        raise FieldError("bad-backup-id", f"backup-id {value} not in 1..65535")


def _addr(value: IPv4Address | str) -> IPv4Address:
    return value if isinstance(value, IPv4Address) else IPv4Address(value)


# ---- service records: the "igmp" service ------------------------------------------------


@dataclass(frozen=True)
class IgmpKey:
    """An IGMP group entry's identity: the interface it was learned on and the group."""

    interface: str
    group: IPv4Address
    _hash: int = field(init=False, repr=False, compare=False)

    service: ClassVar[str] = IGMP

    def __post_init__(self) -> None:
        _check_name(self.interface, "interface")
        group = _addr(self.group)
        object.__setattr__(self, "group", group)
        if not group.is_multicast:
            raise FieldError("bad-group", f"{group} is not a multicast address")
        # Keys are looked up several times per record: hash once.
        object.__setattr__(self, "_hash", hash((self.interface, group)))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True)
class IgmpValue:
    """An IGMP group entry's state. `uptime_s` is the entry's age when the value was given."""

    mode: FilterMode
    sources: tuple[IPv4Address, ...] = ()
    last_reporter: IPv4Address = NO_REPORTER
    uptime_s: int = 0

    def __post_init__(self) -> None:
        mode = _MODES.get(self.mode)
        if mode is None:
            raise FieldError("bad-mode", f"filter mode {self.mode}")
        sources = tuple(_addr(s) for s in self.sources)
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "last_reporter", _addr(self.last_reporter))
        if mode is FilterMode.INCLUDE and not sources:
            raise FieldError("bad-mode", "INCLUDE with no sources (that is a DELETE)")
        if len(set(sources)) != len(sources):
            raise FieldError("bad-source", "duplicate source")
        for s in sources:
            if s.is_multicast or s.is_unspecified or s == _BROADCAST:
                raise FieldError("bad-source", f"{s} is not a unicast source")
        if len(sources) > (MAX_PAYLOAD - 300) // 4:
            raise FieldError("oversized", f"{len(sources)} sources")
        if not 0 <= self.uptime_s < SEQ_MOD:
            raise FieldError("bad-uptime", f"uptime {self.uptime_s}")

    def aged(self, seconds: int) -> IgmpValue:
        """The same state `seconds` later (uptime saturates at the u32 limit)."""
        if seconds <= 0:
            return self
        return IgmpValue(
            self.mode, self.sources, self.last_reporter, min(self.uptime_s + seconds, SEQ_MOD - 1)
        )


ServiceKey: TypeAlias = IgmpKey
ServiceValue: TypeAlias = IgmpValue
SERVICES: frozenset[str] = frozenset({IGMP})


def _encode_igmp_key(key: IgmpKey) -> bytes:
    name = key.interface.encode()
    return bytes((len(name),)) + name + key.group.packed


def _encode_igmp_value(value: IgmpValue, age: int) -> bytes:
    uptime = min(value.uptime_s + max(age, 0), SEQ_MOD - 1)
    head = _IGMP_VALUE.pack(value.mode, value.last_reporter.packed, uptime, len(value.sources))
    return head + b"".join(s.packed for s in value.sources)


# ---- messages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileInfo:
    """One remote-backup-profile a device serves on the channel (in its OPEN)."""

    name: str
    backup_id: int
    service_types: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_name(self.name, "profile name")
        _check_backup_id(self.backup_id)
        object.__setattr__(self, "service_types", tuple(self.service_types))
        if not 1 <= len(self.service_types) <= 255:
            raise FieldError("bad-count", f"{len(self.service_types)} service types")
        for s in self.service_types:
            _check_name(s, "service type")
        if len(set(self.service_types)) != len(self.service_types):
            raise FieldError("bad-service", f"duplicate service type in {self.service_types}")


@dataclass(frozen=True)
class Open:
    """First record each side sends: who it is and which profiles it serves."""

    device: str
    source: IPv4Address
    profiles: tuple[ProfileInfo, ...] = ()

    def __post_init__(self) -> None:
        _check_name(self.device, "device name")
        object.__setattr__(self, "source", _addr(self.source))
        object.__setattr__(self, "profiles", tuple(self.profiles))
        if len(self.profiles) > 0xFFFF:
            raise FieldError("bad-count", f"{len(self.profiles)} profiles")
        names = [p.name for p in self.profiles]
        ids = [p.backup_id for p in self.profiles]
        if len(set(names)) != len(names) or len(set(ids)) != len(ids):
            raise FieldError("duplicate-profile", "profile names and backup-ids must be unique")


@dataclass(frozen=True)
class OpenAck:
    """The peer's OPEN was accepted."""


@dataclass(frozen=True)
class BatchStart:
    backup_id: int
    count: int

    def __post_init__(self) -> None:
        _check_backup_id(self.backup_id)
        if not 0 <= self.count < SEQ_MOD:
            raise FieldError("bad-count", f"count {self.count}")


@dataclass(frozen=True)
class Entry:
    """One service record: add, update or delete `key` in the profile `backup_id`."""

    backup_id: int
    op: Op
    key: ServiceKey
    value: ServiceValue | None = None

    def __post_init__(self) -> None:
        _check_backup_id(self.backup_id)
        op = _OPS.get(self.op)
        if op is None:
            raise FieldError("bad-op", f"op {self.op}")
        object.__setattr__(self, "op", op)
        if not isinstance(self.key, IgmpKey):
            raise FieldError("bad-service", f"no service for key {self.key!r}")
        if (op is Op.DELETE) != (self.value is None):
            raise FieldError("bad-op", f"{op.name} {'with' if self.value else 'without'} value")
        if self.value is not None and not isinstance(self.value, IgmpValue):
            raise FieldError("bad-service", f"value {self.value!r} is not an igmp value")


@dataclass(frozen=True)
class BatchEnd:
    backup_id: int
    count: int

    def __post_init__(self) -> None:
        _check_backup_id(self.backup_id)
        if not 0 <= self.count < SEQ_MOD:
            raise FieldError("bad-count", f"count {self.count}")


@dataclass(frozen=True)
class Ack:
    """Every record up to and including sequence `seq` has been applied."""

    seq: int

    def __post_init__(self) -> None:
        if not 0 <= self.seq < SEQ_MOD:
            raise FieldError("bad-seq", f"seq {self.seq}")


@dataclass(frozen=True)
class Keepalive:
    pass


@dataclass(frozen=True)
class Error:
    """A complaint; backup_id 0 means the whole channel (the sender closes after it)."""

    code: ErrorCode
    backup_id: int = 0
    text: str = ""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "code", ErrorCode(self.code))
        except ValueError:
            raise FieldError("bad-error-code", f"code {self.code}") from None
        if not 0 <= self.backup_id <= 0xFFFF:
            raise FieldError("bad-backup-id", f"backup-id {self.backup_id}")
        if len(self.text.encode()) > 1024:
            raise FieldError("bad-string", "error text over 1024 octets")


Message: TypeAlias = Open | OpenAck | BatchStart | Entry | BatchEnd | Ack | Keepalive | Error

_TYPES: dict[type, RecordType] = {
    Open: RecordType.OPEN,
    OpenAck: RecordType.OPEN_ACK,
    BatchStart: RecordType.BATCH_START,
    Entry: RecordType.ENTRY,
    BatchEnd: RecordType.BATCH_END,
    Ack: RecordType.ACK,
    Keepalive: RecordType.KEEPALIVE,
    Error: RecordType.ERROR,
}


@dataclass(frozen=True)
class Record:
    """A decoded record: its header's sequence number and flags, and the message."""

    seq: int
    message: Message
    flags: Flags = NO_FLAGS

    @property
    def type(self) -> RecordType:
        return _TYPES[type(self.message)]


# ---- encoding ---------------------------------------------------------------------------


def _str8(text: str) -> bytes:
    raw = text.encode()
    return bytes((len(raw),)) + raw


def _frame(rtype: RecordType, seq: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise FieldError("oversized", f"{rtype.name} payload of {len(payload)} octets")
    if flags & ~_KNOWN_FLAGS:
        raise FieldError("bad-flags", f"0x{flags:04x}")
    return HEADER.pack(MAGIC, VERSION, rtype, flags, 0, len(payload), seq % SEQ_MOD) + payload


def _payload(msg: Message) -> bytes:
    match msg:
        case Open(device, source, profiles):
            parts = [_str8(device), source.packed, _U16.pack(len(profiles))]
            for p in profiles:
                parts += [_str8(p.name), _U16.pack(p.backup_id), bytes((len(p.service_types),))]
                parts += [_str8(s) for s in p.service_types]
            return b"".join(parts)
        case BatchStart(backup_id, count) | BatchEnd(backup_id, count):
            return _BATCH.pack(backup_id, count)
        case Entry(backup_id, op, key, value):
            return _entry_payload(backup_id, op, key, value, 0)
        case Ack(seq):
            return _U32.pack(seq)
        case Error(code, backup_id, text):
            raw = text.encode()
            return _ERROR.pack(code, backup_id) + _U16.pack(len(raw)) + raw
        case OpenAck() | Keepalive():
            return b""
    raise TypeError(f"not an RBS message: {msg!r}")


def _entry_payload(
    backup_id: int, op: Op, key: ServiceKey, value: ServiceValue | None, age: int
) -> bytes:
    head = _ENTRY_HEAD.pack(backup_id) + _str8(key.service) + bytes((op,))
    body = _encode_igmp_key(key)
    if value is not None:
        body += _encode_igmp_value(value, age)
    return head + body


def encode(record: Record) -> bytes:
    """One record, header and payload, ready for the stream."""
    return _frame(record.type, record.seq, record.flags, _payload(record.message))


def encode_message(msg: Message, seq: int, flags: int = 0) -> bytes:
    return _frame(_TYPES[type(msg)], seq, flags, _payload(msg))


def encode_entry(
    seq: int,
    backup_id: int,
    op: Op,
    key: ServiceKey,
    value: ServiceValue | None,
    *,
    age: int = 0,
    flags: int = 0,
) -> bytes:
    """The fast path for ENTRY: no Entry object, and the value's uptime advanced by `age` s.

    The arguments must be valid (a key and value built through their classes); this only
    checks that a DELETE has no value and the others have one.
    """
    if (op is Op.DELETE) != (value is None):
        raise FieldError("bad-op", f"{Op(op).name} and value {value!r}")
    return _frame(RecordType.ENTRY, seq, flags, _entry_payload(backup_id, op, key, value, age))


def encode_all(records: Iterable[Record]) -> bytes:
    return b"".join(encode(r) for r in records)


# ---- decoding ---------------------------------------------------------------------------


class _Reader:
    """Walks one payload; running out of octets is "truncated", octets left over "trailing"."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes, pos: int, end: int) -> None:
        self.buf = buf
        self.pos = pos
        self.end = end

    def take(self, n: int) -> int:
        start = self.pos
        if start + n > self.end:
            raise DecodeError("truncated", f"need {n} octets at payload offset {start}")
        self.pos = start + n
        return start

    def u8(self) -> int:
        return self.buf[self.take(1)]

    def u16(self) -> int:
        return _U16.unpack_from(self.buf, self.take(2))[0]

    def u32(self) -> int:
        return _U32.unpack_from(self.buf, self.take(4))[0]

    def raw(self, n: int) -> bytes:
        start = self.take(n)
        return self.buf[start : start + n]

    def addr(self) -> IPv4Address:
        return IPv4Address(self.raw(4))

    def text(self, n: int, what: str) -> str:
        try:
            return self.raw(n).decode()
        except UnicodeDecodeError:
            raise DecodeError("bad-string", f"{what} is not UTF-8") from None

    def str8(self, what: str) -> str:
        n = self.u8()
        if n == 0:
            raise DecodeError("bad-string", f"empty {what}")
        return self.text(n, what)

    def done(self) -> None:
        if self.pos != self.end:
            raise DecodeError("trailing-bytes", f"{self.end - self.pos} octets after the fields")


def _decode_open(r: _Reader) -> Open:
    device = r.str8("device name")
    source = r.addr()
    profiles = []
    for _ in range(r.u16()):
        name = r.str8("profile name")
        backup_id = r.u16()
        services = tuple(r.str8("service type") for _ in range(r.u8()))
        profiles.append(ProfileInfo(name, backup_id, services))
    return Open(device, source, tuple(profiles))


def _decode_entry(r: _Reader) -> Entry:
    backup_id = r.u16()
    service = r.str8("service")
    if service != IGMP:
        raise DecodeError("bad-service", f"service {service!r}")
    op_raw = r.u8()
    op = _OPS.get(op_raw)
    if op is None:
        raise DecodeError("bad-op", f"op {op_raw}")
    key = IgmpKey(r.str8("interface"), r.addr())
    value = None
    if op is not Op.DELETE:
        start = r.take(_IGMP_VALUE.size)
        mode, reporter, uptime, count = _IGMP_VALUE.unpack_from(r.buf, start)
        raw = r.raw(4 * count)
        sources = tuple(IPv4Address(raw[i : i + 4]) for i in range(0, len(raw), 4))
        value = IgmpValue(mode, sources, IPv4Address(reporter), uptime)
    return Entry(backup_id, op, key, value)


def _decode_payload(rtype: int, r: _Reader) -> Message:
    msg: Message
    if rtype == RecordType.ENTRY:
        msg = _decode_entry(r)
    elif rtype == RecordType.OPEN:
        msg = _decode_open(r)
    elif rtype in (RecordType.BATCH_START, RecordType.BATCH_END):
        backup_id, count = _BATCH.unpack_from(r.buf, r.take(_BATCH.size))
        cls = BatchStart if rtype == RecordType.BATCH_START else BatchEnd
        msg = cls(backup_id, count)
    elif rtype == RecordType.ACK:
        msg = Ack(r.u32())
    elif rtype == RecordType.ERROR:
        code, backup_id = _ERROR.unpack_from(r.buf, r.take(_ERROR.size))
        text = r.text(r.u16(), "error text")
        msg = Error(code, backup_id, text)
    elif rtype == RecordType.OPEN_ACK:
        msg = OpenAck()
    else:
        msg = Keepalive()
    r.done()
    return msg


def check_header(buf: bytes, pos: int = 0) -> int | None:
    """Validate the header at `pos` as far as it has arrived; return the payload length once
    the whole header is there, None before. Garbage is refused from its first wrong octet."""
    have = len(buf) - pos
    if have >= 2 and (buf[pos] << 8 | buf[pos + 1]) != MAGIC:
        raise DecodeError("bad-magic", f"0x{buf[pos]:02x}{buf[pos + 1]:02x}")
    if have >= 3 and buf[pos + 2] != VERSION:
        raise DecodeError("bad-version", f"version {buf[pos + 2]}")
    if have >= 4 and not RecordType.OPEN <= buf[pos + 3] <= RecordType.ERROR:
        raise DecodeError("bad-type", f"type {buf[pos + 3]}")
    if have < HEADER_LEN:
        return None
    _, _, _, flags, reserved, length, _ = HEADER.unpack_from(buf, pos)
    if flags & ~_KNOWN_FLAGS:
        raise DecodeError("bad-flags", f"0x{flags:04x}")
    if reserved:
        raise DecodeError("bad-reserved", f"0x{reserved:04x}")
    if length > MAX_PAYLOAD:
        raise DecodeError("oversized", f"record of {HEADER_LEN + length} octets")
    return length


def decode(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[Record, int] | None:
    """Decode the record starting at `pos`: (record, position after it), or None while it is
    incomplete. Raises DecodeError as soon as what has arrived is wrong."""
    if not isinstance(buf, bytes):
        buf = bytes(buf)  # bytearray or memoryview: fields are built from bytes
    length = check_header(buf, pos)
    if length is None or len(buf) - pos < HEADER_LEN + length:
        return None
    _, _, rtype, flags, _, _, seq = HEADER.unpack_from(buf, pos)
    start = pos + HEADER_LEN
    end = start + length
    try:
        msg = _decode_payload(rtype, _Reader(buf, start, end))
    except FieldError as exc:
        raise DecodeError(exc.reason, exc.detail) from None
    return Record(seq, msg, _FLAGS[flags]), end


def decode_all(buf: bytes | bytearray | memoryview) -> list[Record]:
    """Every record of a complete buffer; a partial record at the end is "truncated"."""
    buf = bytes(buf)
    records, pos = [], 0
    while pos < len(buf):
        got = decode(buf, pos)
        if got is None:
            raise DecodeError("truncated", f"{len(buf) - pos} octets of an unfinished record")
        record, pos = got
        records.append(record)
    return records
