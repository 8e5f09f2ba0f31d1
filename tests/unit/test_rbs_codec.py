"""RBS record codec: golden bytes, round trips, stream reassembly and malformed input."""

from __future__ import annotations

import contextlib
import struct
from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.rbs.codec import (
    HEADER_LEN,
    MAX_PAYLOAD,
    MAX_RECORD,
    Ack,
    BatchEnd,
    BatchStart,
    Entry,
    Error,
    ErrorCode,
    FieldError,
    FilterMode,
    Flags,
    IgmpKey,
    IgmpValue,
    Keepalive,
    Op,
    Open,
    OpenAck,
    ProfileInfo,
    Record,
    RecordType,
    decode,
    decode_all,
    encode,
    encode_entry,
    encode_message,
)
from daemon.wire import DecodeError

KEY = IgmpKey("Eth-Trunk1", IPv4Address("225.1.1.1"))
VALUE = IgmpValue(FilterMode.EXCLUDE, (), IPv4Address("10.0.15.100"), 30)
OPEN = Open("DeviceA", IPv4Address("1.1.1.1"), (ProfileInfo("profile1", 10, ("igmp",)),))

# Written out by hand from docs/protocol.md, not produced by the encoder.
GOLDEN_ENTRY = bytes.fromhex(
    "5242 01 04 0000 0000 00000022 00000007 "  # header: ENTRY, 34 octets, seq 7
    "000a 04 69676d70 01 "  # backup-id 10, service "igmp", ADD
    "0a 4574682d5472756e6b31 e1010101 "  # "Eth-Trunk1", 225.1.1.1
    "02 0a000f64 0000001e 0000 "  # EXCLUDE, reporter 10.0.15.100, 30 s, no sources
)
GOLDEN_OPEN = bytes.fromhex(
    "5242 01 01 0000 0000 0000001f 00000001 "  # header: OPEN, 31 octets, seq 1
    "07 44657669636541 01010101 "  # "DeviceA", source 1.1.1.1
    "0001 08 70726f66696c6531 000a 01 04 69676d70 "  # profile1, 10, ["igmp"]
)


def test_golden_entry() -> None:
    assert encode(Record(7, Entry(10, Op.ADD, KEY, VALUE))) == GOLDEN_ENTRY
    assert encode_entry(7, 10, Op.ADD, KEY, VALUE) == GOLDEN_ENTRY
    assert decode(GOLDEN_ENTRY) == (Record(7, Entry(10, Op.ADD, KEY, VALUE)), len(GOLDEN_ENTRY))


def test_any_bytes_like_input() -> None:
    for buf in (bytearray(GOLDEN_OPEN), memoryview(GOLDEN_OPEN)):
        assert decode(buf) == decode(GOLDEN_OPEN)
        assert decode_all(buf) == [decode(GOLDEN_OPEN)[0]]


def test_golden_open() -> None:
    assert encode_message(OPEN, 1) == GOLDEN_OPEN
    record, end = decode(GOLDEN_OPEN)
    assert (record.type, record.message, end) == (RecordType.OPEN, OPEN, len(GOLDEN_OPEN))


def test_encode_entry_ages_the_uptime() -> None:
    record, _ = decode(encode_entry(3, 10, Op.UPDATE, KEY, VALUE, age=12))
    assert record.message.value == IgmpValue(FilterMode.EXCLUDE, (), IPv4Address("10.0.15.100"), 42)
    assert VALUE.aged(12) == record.message.value


MESSAGES = [
    OPEN,
    Open("DeviceB", IPv4Address("3.3.3.3")),
    OpenAck(),
    BatchStart(10, 10_000),
    Entry(10, Op.ADD, KEY, VALUE),
    Entry(
        65535,
        Op.UPDATE,
        IgmpKey("Eth-Trunk1", "232.1.1.1"),
        IgmpValue(FilterMode.INCLUDE, ("10.0.5.1", "10.0.5.2"), "10.0.15.7", 2**32 - 1),
    ),
    Entry(1, Op.DELETE, KEY),
    BatchEnd(10, 0),
    Ack(2**32 - 1),
    Keepalive(),
    Error(ErrorCode.BACKUP_ID_MISMATCH, 10, "profile1: backup-id 10 here, 11 on DeviceB"),
    Error(ErrorCode.MALFORMED, 0, ""),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(msg: object) -> None:
    data = encode_message(msg, 99, Flags.ACK_REQUEST)
    assert decode(data) == (Record(99, msg, Flags.ACK_REQUEST), len(data))


def test_stream_of_records_cut_anywhere() -> None:
    stream = b"".join(encode_message(m, i + 1) for i, m in enumerate(MESSAGES))
    assert [r.message for r in decode_all(stream)] == MESSAGES
    for cut in range(len(stream)):
        got = decode(stream[:cut])
        first = len(encode_message(MESSAGES[0], 1))
        assert (got is None) == (cut < first)


def bad(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert info.value.reason == reason, info.value


def header(
    rtype: int, length: int, *, flags: int = 0, reserved: int = 0, version: int = 1
) -> bytes:
    return struct.pack("!HBBHHII", 0x5242, version, rtype, flags, reserved, length, 1)


def test_garbage_is_refused_from_the_first_wrong_octets() -> None:
    bad(b"GE", "bad-magic")  # two octets are enough to know
    bad(b"\x52\x42\x02", "bad-version")
    bad(b"\x52\x42\x01\x09", "bad-type")
    bad(b"\x52\x42\x01\x00", "bad-type")
    bad(b"GET / HTTP/1.1\r\n\r\n", "bad-magic")
    assert decode(b"\x52\x42\x01\x04") is None  # a good start: wait for more


def test_header_fields() -> None:
    bad(header(7, 0, flags=4), "bad-flags")
    bad(header(7, 0, reserved=1), "bad-reserved")
    bad(header(4, MAX_PAYLOAD + 1), "oversized")  # refused before the payload arrives
    bad(header(4, 0xFFFFFFFF), "oversized")
    assert decode(header(4, MAX_PAYLOAD)) is None  # the largest legal record: wait for it
    assert HEADER_LEN + MAX_PAYLOAD == MAX_RECORD == 65536


def test_payload_lengths() -> None:
    bad(header(7, 1) + b"\x00", "trailing-bytes")  # KEEPALIVE has no payload
    bad(header(6, 3) + b"\x00\x00\x01", "truncated")  # ACK needs 4
    entry = GOLDEN_ENTRY[HEADER_LEN:]
    bad(header(4, len(entry) - 1) + entry[:-1], "truncated")
    bad(header(4, len(entry) + 2) + entry + b"\x00\x00", "trailing-bytes")
    source_claimed = entry[:-2] + b"\x00\x01"  # one source announced, none present
    bad(header(4, len(source_claimed)) + source_claimed, "truncated")
    with pytest.raises(DecodeError) as info:
        decode_all(GOLDEN_ENTRY + GOLDEN_OPEN[:20])
    assert info.value.reason == "truncated"


def with_entry_payload(payload: bytes) -> bytes:
    return header(4, len(payload)) + payload


ENTRY_PAYLOAD = GOLDEN_ENTRY[HEADER_LEN:]


@pytest.mark.parametrize(
    ("offset", "patch", "reason"),
    [
        (0, b"\x00\x00", "bad-backup-id"),
        (3, b"IGMP", "bad-service"),
        (7, b"\x04", "bad-op"),
        (7, b"\x00", "bad-op"),
        (19, b"\x0a\x01\x01\x01", "bad-group"),  # 10.1.1.1 is no group
        (23, b"\x03", "bad-mode"),
        (9, b"\xff\xfe", "bad-string"),  # not UTF-8
    ],
)
def test_bad_entry_fields(offset: int, patch: bytes, reason: str) -> None:
    payload = ENTRY_PAYLOAD[:offset] + patch + ENTRY_PAYLOAD[offset + len(patch) :]
    bad(with_entry_payload(payload), reason)


def test_bad_sources_and_modes() -> None:
    base = ENTRY_PAYLOAD[:-2]
    bad(with_entry_payload(base + b"\x00\x01" + bytes([225, 0, 0, 1])), "bad-source")
    bad(with_entry_payload(base + b"\x00\x01" + bytes(4)), "bad-source")
    bad(with_entry_payload(base + b"\x00\x02" + bytes([10, 0, 5, 1]) * 2), "bad-source")
    include_empty = ENTRY_PAYLOAD[:23] + b"\x01" + ENTRY_PAYLOAD[24:]
    bad(with_entry_payload(include_empty), "bad-mode")
    delete_with_value = ENTRY_PAYLOAD[:7] + b"\x03" + ENTRY_PAYLOAD[8:]
    bad(with_entry_payload(delete_with_value), "trailing-bytes")
    empty_name = ENTRY_PAYLOAD[:8] + b"\x00" + ENTRY_PAYLOAD[19:]
    bad(with_entry_payload(empty_name), "bad-string")


def test_bad_open_and_error() -> None:
    dup = Open("DeviceA", IPv4Address("1.1.1.1"), (ProfileInfo("p1", 10, ("igmp",)),))
    data = bytearray(encode_message(dup, 1))
    payload = data[HEADER_LEN:]
    # the same profile listed twice
    twice = payload[:12] + b"\x00\x02" + payload[14:] + payload[14:]
    bad(header(1, len(twice)) + twice, "duplicate-profile")
    no_services = payload[:-6] + b"\x00"  # service count 0
    bad(header(1, len(no_services)) + no_services, "bad-count")
    err = encode_message(Error(ErrorCode.PROTOCOL, 0, "x"), 1)
    bad(err[:HEADER_LEN] + b"\x00\x09" + err[HEADER_LEN + 2 :], "bad-error-code")


def test_values_are_checked_when_built() -> None:
    with pytest.raises(FieldError, match="bad-group"):
        IgmpKey("Eth-Trunk1", "10.0.0.1")
    with pytest.raises(FieldError, match="bad-string"):
        IgmpKey("", "225.1.1.1")
    with pytest.raises(FieldError, match="bad-mode"):
        IgmpValue(FilterMode.INCLUDE, ())
    with pytest.raises(FieldError, match="bad-source"):
        IgmpValue(FilterMode.INCLUDE, ("225.0.0.1",))
    with pytest.raises(FieldError, match="bad-backup-id"):
        BatchStart(0, 1)
    with pytest.raises(FieldError, match="bad-op"):
        Entry(10, Op.DELETE, KEY, VALUE)
    with pytest.raises(FieldError, match="bad-op"):
        Entry(10, Op.ADD, KEY)
    with pytest.raises(FieldError, match="duplicate-profile"):
        Open("D", "1.1.1.1", (ProfileInfo("a", 1, ("igmp",)), ProfileInfo("b", 1, ("igmp",))))
    with pytest.raises(FieldError, match="oversized"):
        many = tuple(ProfileInfo(f"p{i}", i + 1, ("x" * 200,)) for i in range(400))
        encode_message(Open("D", "1.1.1.1", many), 1)


def test_largest_source_list_fits_one_record() -> None:
    sources = tuple(IPv4Address(0x0A000001 + i) for i in range(16_000))
    value = IgmpValue(FilterMode.INCLUDE, sources, "10.0.15.7", 1)
    data = encode_entry(1, 10, Op.ADD, KEY, value)
    assert len(data) <= MAX_RECORD
    assert decode(data)[0].message.value == value


addresses = st.integers(0x01000000, 0xDFFFFFFF).map(IPv4Address)
groups = st.integers(0xE0000000, 0xEFFFFFFF).map(IPv4Address)
values = st.builds(
    IgmpValue,
    st.just(FilterMode.INCLUDE),
    st.lists(addresses, min_size=1, max_size=20, unique=True).map(tuple),
    addresses,
    st.integers(0, 2**32 - 1),
) | st.builds(
    IgmpValue,
    st.just(FilterMode.EXCLUDE),
    st.lists(addresses, max_size=20, unique=True).map(tuple),
    addresses,
    st.integers(0, 2**32 - 1),
)
keys = st.builds(IgmpKey, st.text(min_size=1, max_size=60), groups)


@given(st.integers(1, 65535), keys, values, st.integers(0, 2**32 - 1))
def test_entry_round_trip_property(
    backup_id: int, key: IgmpKey, value: IgmpValue, seq: int
) -> None:
    msg = Entry(backup_id, Op.UPDATE, key, value)
    data = encode_message(msg, seq)
    assert decode(data) == (Record(seq, msg), len(data))


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(b"\x52\x42\x01" + data)


@given(st.sampled_from(MESSAGES), st.integers(0, 40), st.binary(min_size=1, max_size=4))
def test_corrupted_records_raise_only_decode_error(msg: object, at: int, junk: bytes) -> None:
    data = bytearray(encode_message(msg, 5))
    at %= len(data)
    data[at : at + len(junk)] = junk
    with contextlib.suppress(DecodeError):
        decode(bytes(data))
