"""E-Trunk hello codec: golden bytes, a scapy layer written from docs/protocol.md as the
independent oracle, every drop reason, fuzz."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import struct
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.fields import (
    ByteEnumField,
    ByteField,
    FieldLenField,
    FlagsField,
    IntField,
    LongField,
    MACField,
    PacketListField,
    ShortField,
    StrFixedLenField,
    XShortField,
)
from scapy.packet import Packet

from daemon.etrunk.codec import (
    DIGEST_LEN,
    HEADER_LEN,
    MAX_LEN,
    MEMBER_LEN,
    MIN_LEN,
    ETrunkState,
    Flags,
    Hello,
    Member,
    MemberRole,
    MessageType,
    WorkMode,
    decode,
    encode,
    format_system_id,
)
from daemon.wire import DecodeError

KEY = b"YsHsjx_202206"
SYS_A = bytes.fromhex("00e0fc123455")

SEED_HELLO = Hello(
    etrunk_id=1,
    priority=100,
    system_id=SYS_A,
    hello_100ms=10,
    fail_100ms=200,
    sequence=0x0123456789ABCDEF,
    state=ETrunkState.MASTER,
    members=(Member(1, True, MemberRole.MASTER, WorkMode.AUTO),),
    flags=Flags.BFD | Flags.REVERT,
)

GOLDEN_BODY = bytes.fromhex(
    "4554524b"  # magic "ETRK"
    " 01 01 03 03"  # version 1, type HELLO, flags BFD|REVERT, state MASTER
    " 004c"  # length 76 = 36 + 8 + 32
    " 0001 64 01"  # E-Trunk 1, priority 100, 1 member
    " 000a 000000c8"  # hello 10 (1 s), fail time 200 (20 s)
    " 00e0fc123455 0000"  # system ID, reserved
    " 0123456789abcdef"  # sequence
    " 0001 01 01 01 00 0000"  # Eth-Trunk 1: up, master, auto, no member flags, reserved
)


def sign(body: bytes, key: bytes = KEY) -> bytes:
    return body + hmac.new(key, body, hashlib.sha256).digest()


GOLDEN = sign(GOLDEN_BODY)


# ---- an independent dissector, from the document ----------------------------------------


class ScapyMember(Packet):
    name = "E-Trunk member"
    fields_desc = [
        ShortField("trunk_id", 0),
        ByteEnumField("phy", 0, {0: "down", 1: "up"}),
        ByteEnumField("role", 1, {1: "master", 2: "backup"}),
        ByteEnumField("mode", 1, {1: "auto", 2: "force-master", 3: "force-backup"}),
        FlagsField("flags", 0, 8, ["ATTACHED"]),
        StrFixedLenField("reserved", b"\x00" * 2, 2),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class ScapyETrunk(Packet):
    name = "E-Trunk"
    fields_desc = [
        StrFixedLenField("magic", b"ETRK", 4),
        ByteField("version", 1),
        ByteEnumField("type", 1, {1: "HELLO", 2: "GOODBYE"}),
        FlagsField("flags", 0, 8, ["BFD", "REVERT"]),
        ByteEnumField("state", 1, {1: "Init", 2: "Backup", 3: "Master"}),
        ShortField("length", None),
        ShortField("etrunk_id", 1),
        ByteField("priority", 100),
        FieldLenField("count", None, count_of="members", fmt="B"),
        ShortField("hello", 10),
        IntField("fail_time", 200),
        MACField("system_id", "00:00:00:00:00:00"),
        XShortField("reserved", 0),
        LongField("sequence", 0),
        PacketListField("members", [], ScapyMember, count_from=lambda p: p.count),
        StrFixedLenField("digest", b"", DIGEST_LEN),
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        body = pkt[:-DIGEST_LEN]  # the digest field is always 32 octets: replace it
        if self.length is None:
            body = body[:8] + struct.pack("!H", len(body) + DIGEST_LEN) + body[10:]
        return sign(body) + pay


# ---- golden bytes -----------------------------------------------------------------------


def test_golden_bytes() -> None:
    assert len(GOLDEN_BODY) == HEADER_LEN + MEMBER_LEN == 44
    assert encode(SEED_HELLO, KEY) == GOLDEN
    assert decode(GOLDEN, KEY) == SEED_HELLO
    assert (HEADER_LEN, MEMBER_LEN, DIGEST_LEN, MIN_LEN, MAX_LEN) == (36, 8, 32, 68, 2108)


def test_goodbye_and_no_members() -> None:
    bye = Hello(
        etrunk_id=16,
        priority=254,
        system_id=SYS_A,
        hello_100ms=5,
        fail_100ms=5000,
        sequence=2**64 - 1,
        state=ETrunkState.BACKUP,
        msg_type=MessageType.GOODBYE,
    )
    data = encode(bye, KEY)
    assert len(data) == MIN_LEN and data[5] == 2 and data[13] == 0
    assert decode(data, KEY) == bye


def test_scapy_dissects_what_we_encode() -> None:
    pkt = ScapyETrunk(encode(SEED_HELLO, KEY))
    assert (pkt.magic, pkt.version, pkt.type, pkt.state, pkt.length) == (b"ETRK", 1, 1, 3, 76)
    assert pkt.flags == 3
    assert (pkt.etrunk_id, pkt.priority, pkt.count, pkt.hello, pkt.fail_time) == (
        1,
        100,
        1,
        10,
        200,
    )
    assert pkt.system_id == "00:e0:fc:12:34:55" and pkt.sequence == 0x0123456789ABCDEF
    (member,) = pkt.members
    assert (member.trunk_id, member.phy, member.role, member.mode) == (1, 1, 1, 1)
    assert pkt.digest == GOLDEN[-32:]


def test_we_decode_what_scapy_builds() -> None:
    pkt = ScapyETrunk(
        type=2,
        flags="BFD",
        state=2,
        etrunk_id=7,
        priority=1,
        hello=100,
        fail_time=100_000,
        system_id="00:e0:fc:12:34:56",
        sequence=42,
        members=[
            ScapyMember(trunk_id=1, phy=0, role=2, mode=3),
            ScapyMember(trunk_id=300, phy=1, role=1, mode=2, flags="ATTACHED"),
        ],
    )
    msg = decode(bytes(pkt), KEY)
    assert msg == Hello(
        etrunk_id=7,
        priority=1,
        system_id=bytes.fromhex("00e0fc123456"),
        hello_100ms=100,
        fail_100ms=100_000,
        sequence=42,
        state=ETrunkState.BACKUP,
        members=(
            Member(1, False, MemberRole.BACKUP, WorkMode.FORCE_BACKUP),
            Member(300, True, MemberRole.MASTER, WorkMode.FORCE_MASTER, attached=True),
        ),
        msg_type=MessageType.GOODBYE,
        flags=Flags.BFD,
    )


def test_reserved_octets_and_unknown_flags_are_ignored() -> None:
    body = bytearray(GOLDEN_BODY)
    body[6] |= 0xF0  # unknown flags
    body[26:28] = b"\xff\xff"  # header reserved
    body[41] |= 0xFE  # unknown member flags
    body[42:44] = b"\xbb\xcc"  # member reserved
    assert decode(sign(bytes(body)), KEY) == SEED_HELLO


def test_format_system_id() -> None:
    assert format_system_id(SYS_A) == "00e0-fc12-3455"


# ---- malformed input --------------------------------------------------------------------


def _patched(offset: int, value: bytes, body: bytes = GOLDEN_BODY) -> bytes:
    """The golden body with `value` written at `offset`, correctly signed."""
    return sign(body[:offset] + value + body[offset + len(value) :])


CASES = [
    ("short", GOLDEN[: MIN_LEN - 1]),
    ("short", b""),
    ("bad-magic", b"ETRX" + GOLDEN[4:]),
    ("bad-version", _patched(4, b"\x02")),
    ("bad-version", _patched(4, b"\x00")),
    ("bad-length", _patched(8, struct.pack("!H", 77))),  # field disagrees with the datagram
    ("bad-length", GOLDEN + b"\x00"),  # trailing octet
    ("bad-length", _patched(13, b"\x02")),  # count says two members, there is room for one
    ("bad-length", sign(GOLDEN_BODY[:8] + b"\x00\x48" + GOLDEN_BODY[10:-4])),  # not whole
    ("bad-digest", GOLDEN[:-1] + bytes([GOLDEN[-1] ^ 1])),
    ("bad-digest", GOLDEN_BODY[:12] + b"\x65" + GOLDEN_BODY[13:] + GOLDEN[-32:]),
    ("bad-digest", sign(GOLDEN_BODY, b"another key")),
    ("bad-type", _patched(5, b"\x00")),
    ("bad-type", _patched(5, b"\x03")),
    ("bad-field", _patched(7, b"\x00")),  # state
    ("bad-field", _patched(7, b"\x04")),
    ("bad-field", _patched(12, b"\x00")),  # priority
    ("bad-field", _patched(12, b"\xff")),
    ("bad-field", _patched(14, b"\x00\x00")),  # hello period
    ("bad-field", _patched(16, b"\x00\x00\x00\x00")),  # fail time
    ("bad-field", _patched(38, b"\x02")),  # member phy
    ("bad-field", _patched(39, b"\x00")),  # member role
    ("bad-field", _patched(39, b"\x03")),
    ("bad-field", _patched(40, b"\x00")),  # member mode
    ("bad-field", _patched(40, b"\x04")),
    (
        "bad-field",  # the same Eth-Trunk twice
        sign(
            GOLDEN_BODY[:8]
            + b"\x00\x54"
            + GOLDEN_BODY[10:13]
            + b"\x02"
            + GOLDEN_BODY[14:]
            + GOLDEN_BODY[36:]
        ),
    ),
]


@pytest.mark.parametrize(
    ("reason", "data"), CASES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(CASES)]
)
def test_malformed_input_is_rejected_with_its_reason(reason: str, data: bytes) -> None:
    with pytest.raises(DecodeError) as exc:
        decode(data, KEY)
    assert exc.value.reason == reason


def test_digest_is_checked_before_type_and_fields() -> None:
    body = bytearray(GOLDEN_BODY)
    body[5] = 9  # bad type
    body[7] = 0  # bad state
    with pytest.raises(DecodeError) as exc:
        decode(bytes(body) + GOLDEN[-32:], KEY)  # the old digest no longer matches
    assert exc.value.reason == "bad-digest"


def test_every_truncation_is_rejected() -> None:
    reasons = Counter()
    for n in range(len(GOLDEN)):
        with pytest.raises(DecodeError) as exc:
            decode(GOLDEN[:n], KEY)
        reasons[exc.value.reason] += 1
    assert set(reasons) == {"short", "bad-length"}


def test_hello_validates_on_construction() -> None:
    good = dict(
        etrunk_id=1,
        priority=100,
        system_id=SYS_A,
        hello_100ms=10,
        fail_100ms=200,
        sequence=0,
        state=ETrunkState.INIT,
    )
    Hello(**good)  # type: ignore[arg-type]
    for bad in (
        {"priority": 0},
        {"priority": 255},
        {"etrunk_id": 65536},
        {"system_id": b"\x00" * 5},
        {"hello_100ms": 0},
        {"fail_100ms": 2**32},
        {"sequence": -1},
        {"sequence": 2**64},
        {"state": 7},
        {"members": (Member(1, True, "master"), Member(1, False, "backup"))},
        {"members": tuple(Member(i, True, "master") for i in range(256))},
    ):
        with pytest.raises(ValueError):
            Hello(**{**good, **bad})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Member(1, True, "primary")  # type: ignore[arg-type]
    assert Member(1, True, "master", "force-backup").mode is WorkMode.FORCE_BACKUP  # type: ignore[arg-type]


# ---- fuzz -------------------------------------------------------------------------------

members_st = st.lists(
    st.builds(
        Member,
        trunk_id=st.integers(0, 0xFFFF),
        phy_up=st.booleans(),
        role=st.sampled_from(MemberRole),
        mode=st.sampled_from(WorkMode),
    ),
    max_size=20,
    unique_by=lambda m: m.trunk_id,
).map(tuple)

hellos_st = st.builds(
    Hello,
    etrunk_id=st.integers(0, 0xFFFF),
    priority=st.integers(1, 254),
    system_id=st.binary(min_size=6, max_size=6),
    hello_100ms=st.integers(1, 0xFFFF),
    fail_100ms=st.integers(1, 2**32 - 1),
    sequence=st.integers(0, 2**64 - 1),
    state=st.sampled_from(ETrunkState),
    members=members_st,
    msg_type=st.sampled_from(MessageType),
    flags=st.sampled_from([Flags(0), Flags.BFD, Flags.REVERT, Flags.BFD | Flags.REVERT]),
)


@given(hellos_st, st.binary(max_size=40))
def test_round_trip(msg: Hello, key: bytes) -> None:
    data = encode(msg, key)
    assert len(data) == MIN_LEN + MEMBER_LEN * len(msg.members)
    assert decode(data, key) == msg


@given(st.binary(max_size=200))
def test_random_bytes_only_raise_decode_error(data: bytes) -> None:
    for candidate in (data, b"ETRK\x01" + data, sign(GOLDEN_BODY[:8] + data)):
        with contextlib.suppress(DecodeError):
            decode(candidate, KEY)


@given(st.binary(min_size=MIN_LEN - DIGEST_LEN, max_size=MIN_LEN - DIGEST_LEN + 3 * MEMBER_LEN))
def test_signed_garbage_with_our_header_only_raises_decode_error(body: bytes) -> None:
    """Authenticated but nonsensical content (a peer bug) must still only be a drop."""
    head = b"ETRK\x01" + body[5:8] + struct.pack("!H", len(body) + DIGEST_LEN) + body[10:]
    with contextlib.suppress(DecodeError):
        decode(sign(head), KEY)


def test_member_attached_flag_is_bit_0_of_the_member_flags() -> None:
    member = Member(1, True, MemberRole.MASTER, WorkMode.AUTO, attached=True)
    data = encode(replace(SEED_HELLO, members=(member,)), KEY)
    assert data[36:44] == bytes.fromhex("0001 01 01 01 01 0000")
    assert decode(data, KEY).members == (member,)
