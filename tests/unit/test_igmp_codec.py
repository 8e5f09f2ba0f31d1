"""IGMP codec: golden bytes, scapy as the independent oracle, malformed input, fuzz."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.igmp import (
    IGMP,
    IGMP_MQ,
    IGMP_MR,
    IGMPv2_LG,
    IGMPv2_MR,
    IGMPv3_MQ,
    IGMPv3_MR,
    IGMPv3_MR_Group,
)
from scapy.layers.inet import IP, UDP, IPOption_NOP, IPOption_Router_Alert
from scapy.packet import Raw

from daemon.igmp.codec import (
    MAX_FLOAT_CODE_VALUE,
    GroupRecord,
    IpIgmp,
    Query,
    RecordType,
    V1Report,
    V2Leave,
    V2Report,
    V3Report,
    checksum,
    decode,
    decode_float_code,
    decode_ip,
    encode,
    encode_float_code,
    encode_ip,
    is_multicast,
)
from daemon.wire import DecodeError

# A Linux host joining 239.1.1.1: IGMPv3 report to 224.0.0.22, one CHANGE_TO_EXCLUDE record,
# no sources. The brief quoted checksum f9fa; the Internet checksum of these octets is e9fb
# (computed here, by scapy, and by hand: 0x2200 + 0x0001 + 0x0400 + 0xef01 + 0x0101).
GOLDEN_JOIN = bytes.fromhex(
    "22 00 e9fb"  # type v3 report, reserved, checksum
    " 0000 0001"  # reserved, one record
    " 04 00 0000 ef010101"  # CHANGE_TO_EXCLUDE, no aux data, no sources, 239.1.1.1
)
BRIEF_JOIN = bytes.fromhex("2200f9fa000000010400 0000ef010101")
JOIN_MSG = V3Report((GroupRecord(RecordType.CHANGE_TO_EXCLUDE, "239.1.1.1"),))

GOLDEN_V2_QUERY = bytes.fromhex("11 64 ee9b 00000000")  # general, max resp 10.0 s
GOLDEN_V2_LEAVE = bytes.fromhex("17 00 06fd e1010101")  # leave 225.1.1.1 (to 224.0.0.2)


def with_checksum(body: bytes) -> bytes:
    b = bytearray(body)
    b[2:4] = b"\x00\x00"
    struct.pack_into("!H", b, 2, checksum(bytes(b)))
    return bytes(b)


# ---- golden bytes -----------------------------------------------------------------------


def test_golden_linux_join() -> None:
    assert checksum(GOLDEN_JOIN) == 0
    assert decode(GOLDEN_JOIN) == JOIN_MSG
    assert encode(JOIN_MSG) == GOLDEN_JOIN
    assert bytes(IGMPv3_MR(records=[IGMPv3_MR_Group(rtype=4, maddr="239.1.1.1")])) == GOLDEN_JOIN


def test_the_briefs_checksum_is_wrong_and_rejected() -> None:
    with pytest.raises(DecodeError) as e:
        decode(BRIEF_JOIN)
    assert e.value.reason == "bad-checksum"
    assert "f9fa" in e.value.detail


def test_golden_v2_query_and_leave() -> None:
    assert encode(Query.v2(10.0)) == GOLDEN_V2_QUERY
    assert decode(GOLDEN_V2_QUERY) == Query(2, "0.0.0.0", 100)
    assert encode(V2Leave("225.1.1.1")) == GOLDEN_V2_LEAVE
    assert decode(GOLDEN_V2_LEAVE) == V2Leave("225.1.1.1")


def test_query_version_is_chosen_by_length_and_code() -> None:
    v1 = decode(with_checksum(bytes.fromhex("11 00 0000 00000000")))
    assert v1 == Query(1) and v1.max_response == 10.0
    v2 = decode(with_checksum(bytes.fromhex("11 c8 0000 e1010101")))
    assert v2 == Query(2, "225.1.1.1", 200) and v2.max_response == 20.0
    v3 = decode(with_checksum(bytes.fromhex("11 00 0000 00000000 00 00 0000")))
    assert v3 == Query(3) and v3.max_response == 0.0
    for n in (9, 10, 11):
        with pytest.raises(DecodeError) as e:
            decode(with_checksum(bytes.fromhex("11 64 0000 00000000") + bytes(n - 8)))
        assert e.value.reason == "bad-length"


def test_v3_query_fields() -> None:
    q = Query.v3(
        1.0,
        "232.1.1.1",
        robustness=3,
        query_interval=60,
        s_flag=True,
        sources=("10.0.0.1", "10.0.0.2"),
    )
    wire = encode(q)
    assert wire.hex() == (
        "110a" + wire[2:4].hex() + "e8010101" + "0b" + "3c" + "0002" + "0a000001" + "0a000002"
    )
    assert decode(wire) == q
    assert (q.max_response, q.qqi, q.qrv, q.s_flag) == (1.0, 60, 3, True)
    # reserved bits are ignored on receipt; QRV 0 when robustness > 7
    assert decode(with_checksum(wire[:8] + bytes([0xFB]) + wire[9:])) == q
    assert Query.v3(10, robustness=8).qrv == 0


# ---- RFC 3376 4.1.1 / 4.1.7 floating point ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (0, 0x00),
        (100, 0x64),
        (127, 0x7F),
        (128, 0x80),
        (136, 0x81),
        (248, 0x8F),
        (256, 0x90),
        (1000, 0xAF),  # 992 after truncation
        (MAX_FLOAT_CODE_VALUE, 0xFF),
        (MAX_FLOAT_CODE_VALUE + 1, 0xFF),
    ],
)
def test_float_code_encoding(value: int, code: int) -> None:
    assert encode_float_code(value) == code


def test_float_code_every_code_round_trips() -> None:
    for code in range(256):
        assert encode_float_code(decode_float_code(code)) == code
    assert decode_float_code(0xFF) == MAX_FLOAT_CODE_VALUE
    assert decode_float_code(0x80) == 128


@given(st.integers(0, MAX_FLOAT_CODE_VALUE))
def test_float_code_truncates_never_rounds_up(value: int) -> None:
    got = decode_float_code(encode_float_code(value))
    assert got <= value
    assert value - got < max(1, value / 16)  # 4 mantissa bits: under 1/16 relative error


def test_float_code_matches_scapy() -> None:
    for value in (5, 127, 128, 250, 1000, 3174, 31744):
        assert encode_float_code(value) == bytes(IGMPv3_MQ(mrcode=value))[1]


def test_float_code_range_errors() -> None:
    with pytest.raises(ValueError):
        encode_float_code(-1)
    with pytest.raises(ValueError):
        decode_float_code(256)


# ---- scapy as the oracle ----------------------------------------------------------------


def test_scapy_decodes_what_we_encode() -> None:
    q2 = IGMP(encode(Query.v2(2.5, "225.1.1.1")))
    assert isinstance(q2, IGMP_MQ) and (q2.mrcode, q2.gaddr) == (25, "225.1.1.1")
    q3 = IGMP(encode(Query.v3(12.5, "225.1.1.1", query_interval=60, sources=("1.1.1.1",))))
    assert isinstance(q3, IGMPv3_MQ)
    assert (q3.mrcode, q3.gaddr, q3.qrv, q3.qqic, q3.srcaddrs) == (
        125,
        "225.1.1.1",
        2,
        60,
        ["1.1.1.1"],
    )
    for msg, cls in ((V1Report("225.1.1.2"), IGMP_MR), (V2Report("225.1.1.2"), IGMPv2_MR)):
        pkt = IGMP(encode(msg))
        assert isinstance(pkt, cls) and pkt.gaddr == "225.1.1.2"
    rep = V3Report(
        (
            GroupRecord(RecordType.MODE_IS_INCLUDE, "232.1.1.1", ("10.0.0.1", "10.0.0.2")),
            GroupRecord(RecordType.BLOCK_OLD_SOURCES, "232.1.1.2", ("10.0.0.3",)),
        )
    )
    pkt = IGMP(encode(rep))
    assert isinstance(pkt, IGMPv3_MR) and pkt.numgrp == 2
    assert [(r.rtype, r.maddr, r.srcaddrs) for r in pkt.records] == [
        (1, "232.1.1.1", ["10.0.0.1", "10.0.0.2"]),
        (6, "232.1.1.2", ["10.0.0.3"]),
    ]
    for wire in (encode(rep), encode(Query.v2(1, "225.1.1.1")), encode(V2Leave("225.1.1.1"))):
        assert IGMP(wire).chksum == struct.unpack("!H", wire[2:4])[0]
        again = IGMP(wire)
        again.chksum = None
        assert bytes(again) == wire  # scapy computes the same checksum


def test_we_decode_what_scapy_builds() -> None:
    assert decode(bytes(IGMP_MQ(mrcode=0))) == Query(1)
    assert decode(bytes(IGMP_MQ(mrcode=100, gaddr="225.1.1.1"))) == Query(2, "225.1.1.1", 100)
    assert decode(bytes(IGMP_MR(gaddr="225.1.1.1"))) == V1Report("225.1.1.1")
    assert decode(bytes(IGMPv2_MR(gaddr="225.1.1.1"))) == V2Report("225.1.1.1")
    assert decode(bytes(IGMPv2_LG(gaddr="225.1.1.1"))) == V2Leave("225.1.1.1")
    q = decode(bytes(IGMPv3_MQ(mrcode=200, gaddr="225.1.1.1", s=1, qrv=3, qqic=125)))
    assert q == Query(3, "225.1.1.1", 0x89, True, 3, 125)  # 200 = 0x19 << 3
    assert (q.max_response, q.qqi) == (20.0, 125)
    records = [
        IGMPv3_MR_Group(rtype=t, maddr=f"232.1.1.{t}", srcaddrs=[f"10.0.0.{i}" for i in range(t)])
        for t in range(1, 7)
    ]
    got = decode(bytes(IGMPv3_MR(records=records)))
    assert got == V3Report(
        tuple(
            GroupRecord(t, f"232.1.1.{t}", tuple(f"10.0.0.{i}" for i in range(t)))
            for t in range(1, 7)
        )
    )


addrs = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
records = st.builds(
    GroupRecord,
    record_type=st.integers(1, 6),
    group=addrs,
    sources=st.lists(addrs, max_size=5).map(tuple),
)


@given(st.lists(records, max_size=5))
def test_v3_report_round_trip_with_scapy(recs: list[GroupRecord]) -> None:
    msg = V3Report(tuple(recs))
    wire = encode(msg)
    assert decode(wire) == msg
    pkt = IGMPv3_MR(
        records=[
            IGMPv3_MR_Group(rtype=r.record_type, maddr=r.group, srcaddrs=list(r.sources))
            for r in recs
        ]
    )
    assert bytes(pkt) == wire


@given(
    mrc=st.integers(0, 255),
    group=addrs,
    s=st.booleans(),
    qrv=st.integers(0, 7),
    qqic=st.integers(0, 255),
    sources=st.lists(addrs, max_size=5),
)
def test_v3_query_round_trip_with_scapy(
    mrc: int, group: str, s: bool, qrv: int, qqic: int, sources: list[str]
) -> None:
    msg = Query(3, group, mrc, s, qrv, qqic, tuple(sources))
    wire = encode(msg)
    assert decode(wire) == msg
    pkt = IGMPv3_MQ(
        mrcode=decode_float_code(mrc), gaddr=group, s=int(s), qrv=qrv, qqic=qqic, srcaddrs=sources
    )
    assert bytes(pkt) == wire
    assert bytes(IGMPv3_MQ(wire)) == wire


# ---- v3 report details ------------------------------------------------------------------


def test_aux_data_is_honoured() -> None:
    aux = bytes(range(8))
    msg = V3Report(
        (
            GroupRecord(RecordType.MODE_IS_EXCLUDE, "225.1.1.1", ("10.0.0.1",), aux),
            GroupRecord(RecordType.ALLOW_NEW_SOURCES, "225.1.1.2", ("10.0.0.2",)),
        )
    )
    wire = encode(msg)
    assert wire[8:12] == bytes([2, 2, 0, 1])  # type 2, 2 words of aux data, 1 source
    assert wire[20:28] == aux
    assert decode(wire) == msg


def test_unknown_record_type_is_kept_for_the_machine() -> None:
    wire = encode(V3Report((GroupRecord(9, "225.1.1.1"), GroupRecord(2, "225.1.1.2"))))
    got = decode(wire)
    assert isinstance(got, V3Report)
    assert [r.record_type for r in got.records] == [9, 2]


def test_trailing_octets_are_checksummed_and_ignored() -> None:
    for msg in (JOIN_MSG, Query.v3(10), V2Report("225.1.1.1")):
        wire = with_checksum(encode(msg) + b"\x01\x02\x03")
        assert decode(wire) == msg


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", "short"),
        (bytes.fromhex("16 00 0000"), "short"),
        (bytes.fromhex("13 00 0000 00000000"), "unknown-type"),  # DVMRP
        (bytes.fromhex("1e 00 0000 00000000"), "unknown-type"),  # mtrace response
        (bytes.fromhex("11 64 0000 00000000 02 3c 0002 0a000001"), "bad-length"),
        (bytes.fromhex("22 00 0000 0000 0001 04 00 0000 ef01"), "bad-length"),
        (bytes.fromhex("22 00 0000 0000 0002 04 00 0000 ef010101"), "bad-length"),
        (bytes.fromhex("22 00 0000 0000 0001 02 00 0001 ef010101"), "bad-length"),
        (bytes.fromhex("22 00 0000 0000 0001 02 01 0000 ef010101 0000"), "bad-length"),
    ],
)
def test_malformed_messages(wire: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as e:
        decode(with_checksum(wire) if len(wire) >= 4 else wire)
    assert e.value.reason == reason


def test_corrupted_checksum() -> None:
    for wire in (GOLDEN_JOIN, GOLDEN_V2_QUERY, GOLDEN_V2_LEAVE):
        for i in range(len(wire)):
            bad = bytearray(wire)
            bad[i] ^= 0x10
            with pytest.raises(DecodeError) as e:
                decode(bytes(bad))
            assert e.value.reason == "bad-checksum"


def test_constructors_validate() -> None:
    with pytest.raises(ValueError):
        Query(2, max_resp_code=0)  # that is a v1 query
    with pytest.raises(ValueError):
        Query(1, max_resp_code=5)
    with pytest.raises(ValueError):
        Query(2, max_resp_code=10, sources=("1.1.1.1",))
    with pytest.raises(ValueError):
        Query(3, qrv=8)
    with pytest.raises(ValueError):
        Query(4)
    with pytest.raises(ValueError):
        V2Report("225.1.1")
    with pytest.raises(ValueError):
        GroupRecord(1, "225.1.1.1", aux=b"abc")
    with pytest.raises(ValueError):
        GroupRecord(1, "225.1.1.1", ("1.1.1.256",))
    with pytest.raises(ValueError):
        Query.v2(25.6)
    with pytest.raises(TypeError):
        encode("not a message")  # type: ignore[arg-type]
    assert is_multicast("224.0.0.1") and is_multicast("239.255.255.255")
    assert not is_multicast("223.255.255.255") and not is_multicast("240.0.0.1")


# ---- IP level ---------------------------------------------------------------------------


def test_decode_ip_from_scapy() -> None:
    pkt = IP(src="10.0.15.100", dst="224.0.0.22") / IGMPv3_MR(
        records=[IGMPv3_MR_Group(rtype=4, maddr="239.1.1.1")]
    )
    raw = bytes(pkt)
    assert raw[20:24] == bytes([148, 4, 0, 0])  # scapy adds Router Alert, TTL 1
    assert decode_ip(raw) == IpIgmp("10.0.15.100", "224.0.0.22", 1, True, JOIN_MSG)
    plain = IP(src="10.0.15.100", dst="225.1.1.1", ttl=3, proto=2) / Raw(
        encode(V2Report("225.1.1.1"))
    )
    got = decode_ip(bytes(plain))
    assert (got.router_alert, got.ttl, got.message) == (False, 3, V2Report("225.1.1.1"))
    padded = IP(
        src="10.0.15.100",
        dst="224.0.0.2",
        options=[*[IPOption_NOP()] * 4, IPOption_Router_Alert()],
    ) / IGMPv2_LG(gaddr="225.1.1.1")
    assert decode_ip(bytes(padded)).router_alert is True


def test_encode_ip_is_what_scapy_reads() -> None:
    raw = encode_ip("10.0.15.100", "224.0.0.22", JOIN_MSG)
    pkt = IP(raw)
    assert (pkt.src, pkt.dst, pkt.ttl, pkt.tos, pkt.proto, pkt.ihl) == (
        "10.0.15.100",
        "224.0.0.22",
        1,
        0xC0,
        2,
        6,
    )
    assert pkt.options[0].option == 20  # Router Alert's option number
    again = IP(raw)
    again.chksum = None
    assert bytes(again) == raw
    assert decode_ip(raw).message == JOIN_MSG
    # Ethernet padding after the total length is not part of the message
    assert decode_ip(raw + bytes(10)).message == JOIN_MSG


def _ip(**kw: object) -> bytes:
    return bytes(IP(src="10.0.15.100", dst="224.0.0.22", **kw) / IGMPv2_MR(gaddr="225.1.1.1"))


def _patch(raw: bytes, offset: int, value: bytes, fix_checksum: bool = True) -> bytes:
    b = bytearray(raw)
    b[offset : offset + len(value)] = value
    if fix_checksum:
        ihl = (b[0] & 0x0F) * 4
        b[10:12] = b"\x00\x00"
        struct.pack_into("!H", b, 10, checksum(bytes(b[:ihl])))
    return bytes(b)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda r: r[:19], "short"),
        (lambda r: _patch(r, 0, b"\x66"), "bad-ip"),  # version 6
        (lambda r: _patch(r, 0, b"\x44"), "bad-ip"),  # IHL 4
        (lambda r: _patch(r, 0, b"\x4f"), "bad-ip"),  # IHL beyond the datagram
        (lambda r: _patch(r, 2, struct.pack("!H", 200)), "bad-ip"),  # truncated
        (lambda r: _patch(r, 2, struct.pack("!H", 16)), "bad-ip"),  # shorter than header
        (lambda r: _patch(r, 6, b"\x20\x00"), "bad-ip"),  # more fragments
        (lambda r: _patch(r, 6, b"\x00\x10"), "bad-ip"),  # fragment offset
        (lambda r: _patch(r, 10, b"\xde\xad", fix_checksum=False), "bad-ip-checksum"),
        (lambda r: _patch(r, 9, b"\x11"), "not-igmp"),
        (lambda r: _patch(r, 20, bytes([148, 6, 0, 0])), "bad-ip-option"),
        (lambda r: _patch(r, 20, bytes([7, 9, 0, 0])), "bad-ip-option"),
        (lambda r: _patch(r, 20, bytes([1, 1, 1, 7])), "bad-ip-option"),
        (lambda r: _patch(r, 24, b"\x00\x00\x00\x00"), "bad-checksum"),
    ],
)
def test_malformed_datagrams(mangle: object, reason: str) -> None:
    raw = _ip()
    with pytest.raises(DecodeError) as e:
        decode_ip(mangle(raw))  # type: ignore[operator]
    assert e.value.reason == reason


def test_end_of_options_and_no_op_options() -> None:
    raw = _patch(_ip(), 20, bytes([0, 0, 0, 0]))  # end of list: no Router Alert
    assert decode_ip(raw).router_alert is False
    raw = _patch(_ip(), 20, bytes([1, 1, 1, 1]))
    assert decode_ip(raw).router_alert is False


def test_not_igmp_is_reported_as_such() -> None:
    raw = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP())
    with pytest.raises(DecodeError) as e:
        decode_ip(raw)
    assert e.value.reason == "not-igmp"


# ---- fuzz -------------------------------------------------------------------------------


@given(st.binary(max_size=200))
def test_decode_raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(data)


@given(st.binary(max_size=200))
def test_decode_with_valid_checksum_raises_only_decode_error(data: bytes) -> None:
    if len(data) >= 4:
        data = with_checksum(data)
    with contextlib.suppress(DecodeError):
        decode(data)


@given(st.binary(max_size=120))
def test_decode_ip_raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_ip(data)


@given(st.lists(st.tuples(st.integers(0, 43), st.integers(0, 255)), max_size=6))
def test_mutated_datagrams_raise_only_decode_error(edits: list[tuple[int, int]]) -> None:
    raw = bytearray(encode_ip("10.0.15.100", "224.0.0.22", JOIN_MSG))
    for offset, value in edits:
        raw[offset % len(raw)] = value
    with contextlib.suppress(DecodeError):
        decode_ip(bytes(raw))
