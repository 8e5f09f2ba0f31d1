"""E-Trunk hello wire format (the lab's own, documented in docs/protocol.md), with `struct`.

One UDP datagram is one message: a 36-octet fixed header, 8 octets per member Eth-Trunk, and
an HMAC-SHA256 over everything before it, keyed by the E-Trunk security key. All integers are
big-endian. Decoding is strict: the length field must equal the datagram length and agree
with the member count, every enumerated value must be one this version defines, and the
digest is checked before any field other than magic, version and length is looked at (magic
and version select the format, and so the digest algorithm, of everything after them).
Reserved octets and flag bits are sent as zero and ignored on receipt.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag, StrEnum

from daemon.wire import DecodeError

MAGIC = b"ETRK"
VERSION = 1
DEFAULT_PORT = 1025  # Huawei's default E-Trunk UDP port, both ends

_HEADER = struct.Struct("!4sBBBBHHBBHI6s2xQ")
_MEMBER = struct.Struct("!HBBBB2x")
HEADER_LEN = _HEADER.size  # 36
MEMBER_LEN = _MEMBER.size  # 8
DIGEST_LEN = 32  # HMAC-SHA256
MIN_LEN = HEADER_LEN + DIGEST_LEN  # 68: no members
MAX_MEMBERS = 255
MAX_LEN = MIN_LEN + MAX_MEMBERS * MEMBER_LEN  # 2108
_LENGTH_OFFSET = 8


class MessageType(IntEnum):
    HELLO = 1
    GOODBYE = 2  # the sender is shutting down: take over now, do not wait for the fail time


class ETrunkState(IntEnum):
    """The sender's E-Trunk (device) state; the values are the wire codes."""

    INIT = 1
    BACKUP = 2
    MASTER = 3


class Flags(IntFlag):
    """Informational sender settings; undefined bits are zero on send, ignored on receipt."""

    BFD = 0x01  # the sender's E-Trunk tracks a BFD session to us
    REVERT = 0x02  # the sender has revert enabled


_KNOWN_FLAGS = int(Flags.BFD | Flags.REVERT)
NO_FLAGS = Flags(0)
_ATTACHED = 0x01  # member flags: the switch has the sender's Eth-Trunk in its aggregate


class MemberRole(StrEnum):
    MASTER = "master"
    BACKUP = "backup"


class WorkMode(StrEnum):
    """`e-trunk mode` of a member Eth-Trunk."""

    AUTO = "auto"
    FORCE_MASTER = "force-master"
    FORCE_BACKUP = "force-backup"


_ROLE_CODE = {MemberRole.MASTER: 1, MemberRole.BACKUP: 2}
_MODE_CODE = {WorkMode.AUTO: 1, WorkMode.FORCE_MASTER: 2, WorkMode.FORCE_BACKUP: 3}
_CODE_ROLE = {code: role for role, code in _ROLE_CODE.items()}
_CODE_MODE = {code: mode for mode, code in _MODE_CODE.items()}
_TYPES = frozenset(int(t) for t in MessageType)
_STATES = frozenset(int(s) for s in ETrunkState)


def format_system_id(system: bytes) -> str:
    """VRP's MAC notation: 00e0-fc12-3455."""
    h = system.hex()
    return f"{h[0:4]}-{h[4:8]}-{h[8:12]}"


def _check(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} out of range {low}..{high}: {value}")


@dataclass(frozen=True)
class Member:
    """One member Eth-Trunk as its device advertises it.

    `attached`: the switch has put the sender's Eth-Trunk in its aggregate (its LACPDUs on
    a member say Synchronization); when both devices' members claim master, the one the
    switch is attached to keeps it."""

    trunk_id: int
    phy_up: bool
    role: MemberRole
    mode: WorkMode = WorkMode.AUTO
    attached: bool = False

    def __post_init__(self) -> None:
        _check("trunk_id", self.trunk_id, 0, 0xFFFF)
        object.__setattr__(self, "role", MemberRole(self.role))
        object.__setattr__(self, "mode", WorkMode(self.mode))


@dataclass(frozen=True, kw_only=True)
class Hello:
    """One E-Trunk message (HELLO or GOODBYE: the layout is the same)."""

    etrunk_id: int
    priority: int
    system_id: bytes
    hello_100ms: int
    fail_100ms: int
    sequence: int
    state: ETrunkState
    members: tuple[Member, ...] = ()
    msg_type: MessageType = MessageType.HELLO
    flags: Flags = NO_FLAGS

    def __post_init__(self) -> None:
        # Validate at construction so encode() can never fail half way through a message.
        _check("etrunk_id", self.etrunk_id, 0, 0xFFFF)
        _check("priority", self.priority, 1, 254)
        if len(self.system_id) != 6:
            raise ValueError(f"system_id must be 6 bytes, got {len(self.system_id)}")
        _check("hello_100ms", self.hello_100ms, 1, 0xFFFF)
        _check("fail_100ms", self.fail_100ms, 1, 0xFFFFFFFF)
        _check("sequence", self.sequence, 0, 2**64 - 1)
        object.__setattr__(self, "state", ETrunkState(self.state))
        object.__setattr__(self, "msg_type", MessageType(self.msg_type))
        object.__setattr__(self, "flags", Flags(int(self.flags) & _KNOWN_FLAGS))
        if len(self.members) > MAX_MEMBERS:
            raise ValueError(f"at most {MAX_MEMBERS} members, got {len(self.members)}")
        ids = [m.trunk_id for m in self.members]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate member trunk ids: {ids}")


def digest(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 of `data` (the message up to the digest) keyed by the security key."""
    return hmac.new(key, data, hashlib.sha256).digest()


def encode(msg: Hello, key: bytes) -> bytes:
    """The complete UDP payload, digest included."""
    length = MIN_LEN + MEMBER_LEN * len(msg.members)
    parts = [
        _HEADER.pack(
            MAGIC,
            VERSION,
            msg.msg_type,
            msg.flags,
            msg.state,
            length,
            msg.etrunk_id,
            msg.priority,
            len(msg.members),
            msg.hello_100ms,
            msg.fail_100ms,
            msg.system_id,
            msg.sequence,
        )
    ]
    parts += [
        _MEMBER.pack(m.trunk_id, int(m.phy_up), _ROLE_CODE[m.role], _MODE_CODE[m.mode],
                     _ATTACHED if m.attached else 0)
        for m in msg.members
    ]
    body = b"".join(parts)
    return body + digest(key, body)


def decode(data: bytes, key: bytes) -> Hello:
    """Parse and authenticate one UDP payload; raise DecodeError with a stable reason.

    Reasons: short, bad-magic, bad-version, bad-length, bad-digest, bad-type, bad-field.
    """
    n = len(data)
    if n < MIN_LEN:
        raise DecodeError("short", f"{n} octets, need {MIN_LEN}")
    if data[:4] != MAGIC:
        raise DecodeError("bad-magic", data[:4].hex())
    if data[4] != VERSION:
        raise DecodeError("bad-version", f"version {data[4]}")
    (length,) = struct.unpack_from("!H", data, _LENGTH_OFFSET)
    if length != n:
        raise DecodeError("bad-length", f"length field {length}, datagram {n}")
    body = data[:-DIGEST_LEN]
    if not hmac.compare_digest(digest(key, body), data[-DIGEST_LEN:]):
        raise DecodeError("bad-digest")
    (
        _magic,
        _version,
        msg_type,
        flags,
        state,
        _length,
        etrunk_id,
        priority,
        count,
        hello_100ms,
        fail_100ms,
        system_id,
        sequence,
    ) = _HEADER.unpack_from(data)
    if msg_type not in _TYPES:
        raise DecodeError("bad-type", f"type {msg_type}")
    if MIN_LEN + MEMBER_LEN * count != n:
        raise DecodeError("bad-length", f"{count} members in {n} octets")
    if state not in _STATES:
        raise DecodeError("bad-field", f"state {state}")
    if not 1 <= priority <= 254:
        raise DecodeError("bad-field", f"priority {priority}")
    if hello_100ms == 0 or fail_100ms == 0:
        raise DecodeError("bad-field", f"hello {hello_100ms}, fail time {fail_100ms}")
    members = []
    for trunk_id, phy, role, mode, mflags in _MEMBER.iter_unpack(body[HEADER_LEN:]):
        if phy > 1 or role not in _CODE_ROLE or mode not in _CODE_MODE:
            raise DecodeError("bad-field", f"member {trunk_id}: phy {phy} role {role} mode {mode}")
        members.append(Member(trunk_id, bool(phy), _CODE_ROLE[role], _CODE_MODE[mode],
                              bool(mflags & _ATTACHED)))
    if len({m.trunk_id for m in members}) != len(members):
        raise DecodeError("bad-field", "duplicate member trunk id")
    return Hello(
        etrunk_id=etrunk_id,
        priority=priority,
        system_id=system_id,
        hello_100ms=hello_100ms,
        fail_100ms=fail_100ms,
        sequence=sequence,
        state=ETrunkState(state),
        members=tuple(members),
        msg_type=MessageType(msg_type),
        flags=Flags(flags & _KNOWN_FLAGS),
    )
