"""PIM codec: golden bytes, scapy's PIMv2 layers as the oracle, malformed input, fuzz."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.contrib.pim import (
    PIMv2GroupAddrs,
    PIMv2Hdr,
    PIMv2Hello,
    PIMv2HelloDRPriority,
    PIMv2HelloGenerationID,
    PIMv2HelloHoldtime,
    PIMv2HelloLANPruneDelay,
    PIMv2HelloLANPruneDelayValue,
    PIMv2JoinAddrs,
    PIMv2JoinPrune,
    PIMv2PruneAddrs,
)
from scapy.layers.inet import IP
from scapy.packet import Packet, raw

from daemon.pim.codec import (
    INFINITE_ASSERT,
    JP_HEADER_LEN,
    MAX_JP_PAYLOAD,
    Assert,
    AssertMetric,
    GroupEntry,
    Hello,
    JoinPrune,
    LanPruneDelay,
    MsgType,
    Register,
    RegisterStop,
    Source,
    Unsupported,
    checksum,
    decode,
    encode,
    split_join_prune,
)
from daemon.wire import DecodeError

RP = "2.2.2.2"
G = "225.1.1.1"

# DeviceA's Hello on GE0/1/3 with the values the daemon sends (Generation ID fixed here).
GOLDEN_HELLO = bytes.fromhex(
    "20 00 6af9"  # version 2, type 0 (Hello), reserved, checksum
    " 0001 0002 0069"  # Holdtime: 105 s
    " 0002 0004 01f4 09c4"  # LAN Prune Delay: T=0, propagation 500 ms, override 2500 ms
    " 0013 0004 00000001"  # DR Priority: 1
    " 0014 0004 12345678"  # Generation ID
)
HELLO = Hello(105, LanPruneDelay(500, 2500), 1, 0x12345678)

# DeviceA's Join(*,225.1.1.1) to DeviceD (10.0.12.2) with RP 2.2.2.2, holdtime 210 s.
GOLDEN_JOIN = bytes.fromhex(
    "23 00 d5e2"  # version 2, type 3 (Join/Prune), reserved, checksum
    " 01 00 0a000c02"  # upstream neighbor: family IPv4, native encoding, 10.0.12.2
    " 00 01 00d2"  # reserved, 1 group, holdtime 210
    " 01 00 00 20 e1010101"  # group: IPv4, native, B=Z=0, /32, 225.1.1.1
    " 0001 0000"  # 1 joined source, 0 pruned
    " 01 00 07 20 02020202"  # source: S|W|R, /32, the RP 2.2.2.2
)
JOIN = JoinPrune("10.0.12.2", 210, (GroupEntry(G, joins=(Source.rp_tree(RP),)),))


def fix_checksum(data: bytes | bytearray) -> bytes:
    b = bytearray(data)
    b[2:4] = b"\x00\x00"
    struct.pack_into("!H", b, 2, checksum(bytes(b)))
    return bytes(b)


def scapy_payload(pim: Packet) -> bytes:
    """scapy fills in the PIM checksum only under an IP layer."""
    return raw(IP(src="10.0.12.1", dst="224.0.0.13") / pim)[20:]


def reason(data: bytes) -> str:
    with pytest.raises(DecodeError) as e:
        decode(data)
    return e.value.reason


# ---- golden bytes -----------------------------------------------------------------------


def test_golden_hello() -> None:
    assert checksum(GOLDEN_HELLO) == 0
    assert encode(HELLO) == GOLDEN_HELLO
    assert decode(GOLDEN_HELLO) == HELLO


def test_golden_star_g_join() -> None:
    assert checksum(GOLDEN_JOIN) == 0
    assert encode(JOIN) == GOLDEN_JOIN
    assert decode(GOLDEN_JOIN) == JOIN
    assert JOIN.size == len(GOLDEN_JOIN) == 34


# Captured from FRR 8.4.4's pimd (Debian 12) in the lab's igmp-hot-backup-frr topology with
# IPv6 on: tcpdump of IP protocol 103 on the A-D and B-D links, the PIM message as it came
# off the wire (IP header removed).
FRR_HELLO_V6_LIST = bytes.fromhex(
    "20007fc90001000200690002000401f409c400130004000000010014000449619284"
    "001800120200fe80000000000000489868fffe01c7b1")
FRR_STAR_G_JOIN = bytes.fromhex(  # (*,239.1.1.1), RP 1.1.1.1, to 10.0.12.1, holdtime 210
    "2300c9e501000a000c01000100d201000020ef010101000100000100072001010101")
FRR_STAR_G_PRUNE = bytes.fromhex(  # the same group pruned after `no ip igmp join`
    "2300c9e501000a000c01000100d201000020ef010101000000010100072001010101")
FRR_SG_JOIN = bytes.fromhex(  # (10.0.13.50, 232.1.1.2) to 10.0.23.3: S set, W and R clear
    "2300b3b201000a001703000100d201000020e801010200010000010004200a000d32")


def test_frr_hello_with_an_ipv6_address_list() -> None:
    """FRR's default `send-v6-secondary`: its link-local IPv6 address in an Address List.
    The IPv6 entry is skipped, the rest of the Hello is FRR's."""
    assert checksum(FRR_HELLO_V6_LIST) == 0
    assert decode(FRR_HELLO_V6_LIST) == Hello(
        holdtime=105, lan_prune_delay=LanPruneDelay(500, 2500), dr_priority=1,
        generation_id=0x49619284, addresses=())


@pytest.mark.parametrize(("data", "msg"), [
    (FRR_STAR_G_JOIN, JoinPrune("10.0.12.1", 210, (
        GroupEntry("239.1.1.1", joins=(Source.rp_tree("1.1.1.1"),)),))),
    (FRR_STAR_G_PRUNE, JoinPrune("10.0.12.1", 210, (
        GroupEntry("239.1.1.1", prunes=(Source.rp_tree("1.1.1.1"),)),))),
    (FRR_SG_JOIN, JoinPrune("10.0.23.3", 210, (
        GroupEntry("232.1.1.2", joins=(Source("10.0.13.50"),)),))),
])
def test_frr_join_prunes_decode_and_we_encode_them_alike(data: bytes, msg: JoinPrune) -> None:
    assert decode(data) == msg
    assert encode(msg) == data


def test_goodbye_hello_is_holdtime_zero() -> None:
    wire = encode(Hello(holdtime=0, generation_id=7))
    assert wire[4:10] == bytes.fromhex("0001 0002 0000")
    assert decode(wire).holdtime == 0  # type: ignore[union-attr]


# ---- scapy both ways --------------------------------------------------------------------


def scapy_hello() -> Packet:
    return PIMv2Hdr() / PIMv2Hello(
        option=[
            PIMv2HelloHoldtime(holdtime=105),
            PIMv2HelloLANPruneDelay(
                value=[
                    PIMv2HelloLANPruneDelayValue(t=0, propagation_delay=500, override_interval=2500)
                ]
            ),
            PIMv2HelloDRPriority(dr_priority=1),
            PIMv2HelloGenerationID(generation_id=0x12345678),
        ]
    )


def test_scapy_builds_our_hello_and_we_decode_it() -> None:
    wire = scapy_payload(scapy_hello())
    assert wire == GOLDEN_HELLO
    assert decode(wire) == HELLO


def test_scapy_reads_our_hello() -> None:
    hello = Hello(0xFFFF, LanPruneDelay(1000, 3000, tracking=True), 200, 0xCAFEBABE)
    pkt = PIMv2Hdr(encode(hello))
    assert (pkt.version, pkt.type) == (2, 0)
    opts = pkt[PIMv2Hello].option
    assert opts[0].holdtime == 0xFFFF
    lpd = opts[1].value[0]
    assert (lpd.t, lpd.propagation_delay, lpd.override_interval) == (1, 1000, 3000)
    assert opts[2].dr_priority == 200
    assert opts[3].generation_id == 0xCAFEBABE


def scapy_join_prune(joins: list[str], prunes: list[str]) -> Packet:
    groups = [
        PIMv2GroupAddrs(gaddr=g, join_ips=[PIMv2JoinAddrs(src_ip=RP, sparse=1, wildcard=1, rpt=1)])
        for g in joins
    ] + [
        PIMv2GroupAddrs(
            gaddr=g, prune_ips=[PIMv2PruneAddrs(src_ip=RP, sparse=1, wildcard=1, rpt=1)]
        )
        for g in prunes
    ]
    return PIMv2Hdr() / PIMv2JoinPrune(up_neighbor_ip="10.0.23.2", holdtime=210, jp_ips=groups)


def test_scapy_builds_join_prunes_we_decode() -> None:
    wire = scapy_payload(scapy_join_prune(["225.1.1.1", "225.1.1.2"], ["239.0.0.9"]))
    star = (Source.rp_tree(RP),)
    assert decode(wire) == JoinPrune(
        "10.0.23.2",
        210,
        (
            GroupEntry("225.1.1.1", joins=star),
            GroupEntry("225.1.1.2", joins=star),
            GroupEntry("239.0.0.9", prunes=star),
        ),
    )
    assert (
        scapy_payload(scapy_join_prune([G], []))[4:]
        == encode(JoinPrune("10.0.23.2", 210, (GroupEntry(G, joins=star),)))[4:]
    )


def test_scapy_reads_our_join_prune() -> None:
    sg = Source("10.0.5.100", sparse=True)
    jp = JoinPrune(
        "10.0.12.2",
        0xFFFF,
        (
            GroupEntry("225.1.1.1", joins=(Source.rp_tree(RP),), prunes=(sg,)),
            GroupEntry("239.255.0.0", mask_len=16, admin_scope=True, bidir=True),
        ),
    )
    pkt = IP(raw(IP(src="10.0.12.1", dst="224.0.0.13", proto=103) / encode(jp)))
    body = pkt[PIMv2JoinPrune]
    assert (pkt[PIMv2Hdr].type, body.up_neighbor_ip, body.holdtime, body.num_group) == (
        3,
        "10.0.12.2",
        0xFFFF,
        2,
    )
    first, second = body.jp_ips
    assert (first.gaddr, first.num_joins, first.num_prunes) == ("225.1.1.1", 1, 1)
    j, p = first.join_ips[0], first.prune_ips[0]
    assert (j.src_ip, j.sparse, j.wildcard, j.rpt) == (RP, 1, 1, 1)
    assert (p.src_ip, p.sparse, p.wildcard, p.rpt) == ("10.0.5.100", 1, 0, 0)
    assert (second.gaddr, second.mask_len, second.bidirection, second.admin_scope_zone) == (
        "239.255.0.0",
        16,
        1,
        1,
    )
    assert checksum(encode(jp)) == 0


# ---- options and leniency ---------------------------------------------------------------


def test_unknown_options_are_kept_and_address_list_decoded() -> None:
    body = (
        bytes.fromhex("0001 0002 0069")
        + bytes.fromhex("0015 0004 01640000")  # State Refresh (PIM-DM): not ours
        + bytes.fromhex("0018 000c 01 00 0a0d0001 01 00 c0a80001")  # Address List
        + bytes.fromhex("fde9 0000")  # a vendor option, empty
    )
    hello = decode(fix_checksum(bytes.fromhex("2000 0000") + body))
    assert hello == Hello(
        holdtime=105,
        addresses=("10.13.0.1", "192.168.0.1"),
        unknown=((21, bytes.fromhex("01640000")), (0xFDE9, b"")),
    )
    assert decode(encode(hello)) == hello


def test_hello_without_options_and_reserved_octet_ignored() -> None:
    assert decode(fix_checksum(bytes.fromhex("20ff 0000"))) == Hello()


def test_other_types_are_unsupported_not_errors() -> None:
    for kind in (MsgType.BOOTSTRAP, 8, 9, 15):
        assert decode(fix_checksum(bytes([0x20 | kind, 0, 0, 0]) + bytes(8))) == Unsupported(kind)


# an IPv4/UDP packet from 10.0.5.100 to 225.1.1.1 as a source sends it (UDP checksum 0)
INNER = bytes.fromhex("4500001e00004000" "4011" "0000" "0a000564" "e1010101"
                      "138913890000" "0000" "6869")
GOLDEN_REGISTER = bytes.fromhex("2100" "deff" "00000000") + INNER
# checksums and the dummy header as scapy computes them (scapy.utils.checksum, IP())
GOLDEN_NULL_REGISTER = bytes.fromhex(
    "2100" "9eff" "40000000" "4500001400000000" "ff67" "ca1c" "0a000564" "e1010101")
GOLDEN_REGISTER_STOP = bytes.fromhex("2200" "ea78" "01000020e1010101" "01000a000564")


def test_golden_register_null_register_and_register_stop() -> None:
    reg = Register(INNER)
    assert (reg.source, reg.group, reg.null) == ("10.0.5.100", "225.1.1.1", False)
    assert encode(reg) == GOLDEN_REGISTER and decode(GOLDEN_REGISTER) == reg
    assert checksum(GOLDEN_REGISTER[:8]) == 0  # the checksum leaves the data packet out
    null = Register.null_register("10.0.5.100", "225.1.1.1")
    assert encode(null) == GOLDEN_NULL_REGISTER and decode(GOLDEN_NULL_REGISTER) == null
    assert checksum(null.packet) == 0  # the dummy header is a valid IPv4 header
    stop = RegisterStop("225.1.1.1", "10.0.5.100")
    assert encode(stop) == GOLDEN_REGISTER_STOP and decode(GOLDEN_REGISTER_STOP) == stop


# checksums by scapy.utils.checksum: (10.0.5.100, 225.1.1.1) at preference 10, metric 21;
# an AssertCancel for (*,225.1.1.1)
GOLDEN_ASSERT = bytes.fromhex("2500" "e759" "01000020e1010101" "01000a000564" "0000000a"
                              "00000015")
GOLDEN_ASSERT_CANCEL = bytes.fromhex("2500" "f6dc" "01000020e1010101" "010000000000"
                                     "ffffffff" "ffffffff")


def test_golden_asserts_and_their_order() -> None:
    a = Assert("225.1.1.1", "10.0.5.100", AssertMetric(False, 10, 21))
    assert encode(a) == GOLDEN_ASSERT and decode(GOLDEN_ASSERT) == a
    cancel = Assert("225.1.1.1", "0.0.0.0", INFINITE_ASSERT)
    assert encode(cancel) == GOLDEN_ASSERT_CANCEL and decode(GOLDEN_ASSERT_CANCEL) == cancel
    spt, rpt = AssertMetric(False, 110, 50), AssertMetric(True, 0, 0)
    assert spt.key("10.0.0.1") < rpt.key("10.0.0.9")  # the source's tree beats the RP's
    assert AssertMetric(False, 0, 0).key("10.0.0.9") < AssertMetric(False, 0, 0).key(
        "10.0.0.1")  # ties: the higher address wins
    assert reason(fix_checksum(GOLDEN_ASSERT[:2] + b"\0\0" + GOLDEN_ASSERT[4:-1])) == \
        "bad-length"
    with pytest.raises(ValueError):
        AssertMetric(False, 0x80000000, 0)


def test_register_checksum_over_the_header_or_the_whole_message() -> None:
    whole = bytearray(GOLDEN_REGISTER)
    whole[2:4] = b"\0\0"
    whole[2:4] = checksum(bytes(whole)).to_bytes(2, "big")
    assert decode(bytes(whole)) == Register(INNER)
    assert reason(GOLDEN_REGISTER[:3] + b"\x00" + INNER) == "bad-checksum"
    assert reason(bytes.fromhex("2100 0000 00")) == "short"


@pytest.mark.parametrize(("inner", "why"), [
    (b"", "bad-register"),  # no packet
    (INNER[:19], "bad-register"),
    (bytes([0x65]) + INNER[1:], "bad-register"),  # IPv6 version nibble
    (INNER[:16] + bytes([10, 0, 0, 1]) + INNER[20:], "bad-register"),  # unicast destination
])
def test_bad_registers(inner: bytes, why: str) -> None:
    data = bytearray(bytes.fromhex("21000000 00000000") + inner)
    data[2:4] = checksum(bytes(data[:8])).to_bytes(2, "big")
    assert reason(bytes(data)) == why


def test_bad_register_stops() -> None:
    assert reason(fix_checksum(GOLDEN_REGISTER_STOP[:2] + b"\0\0" + GOLDEN_REGISTER_STOP[4:]
                               + b"\0")) == "bad-length"
    v6 = bytearray(GOLDEN_REGISTER_STOP)
    v6[12] = 2  # the source's family
    v6[2:4] = b"\0\0"
    assert reason(fix_checksum(bytes(v6))) == "bad-family"
    with pytest.raises(ValueError):
        RegisterStop("225.1.1.1", "10.0.5")


# ---- malformed --------------------------------------------------------------------------


def test_header_errors() -> None:
    assert reason(b"") == "short"
    assert reason(b"\x20\x00\x00") == "short"
    assert reason(fix_checksum(b"\x10\x00\x00\x00")) == "bad-version"
    assert reason(fix_checksum(b"\x30\x00\x00\x00")) == "bad-version"
    bad = bytearray(GOLDEN_HELLO)
    bad[-1] ^= 1
    assert reason(bytes(bad)) == "bad-checksum"


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ("0001 0004 00690000", "bad-option-length"),  # holdtime must be 2 octets
        ("0013 0002 0001", "bad-option-length"),  # DR priority must be 4
        ("0014 0008 0000000000000000", "bad-option-length"),  # generation ID must be 4
        ("0002 0002 01f4", "bad-option-length"),  # LAN prune delay must be 4
        ("0001 0003 0069", "bad-option-length"),  # overruns the message
        ("0001 00", "bad-length"),  # half an option header
        ("0018 0005 0100 0a0d00", "bad-option-length"),  # not whole encoded addresses
        ("0018 0006 0200 0a0d0001", "bad-option-length"),  # an IPv6 entry is 18 octets
        ("0018 0007 0100 0a0d0001 01", "bad-option-length"),  # half an entry header
        ("0001 0002 0069 0001 0002 0069", "duplicate-option"),
    ],
)
def test_bad_hello_options(options: str, why: str) -> None:
    assert reason(fix_checksum(bytes.fromhex("2000 0000" + options))) == why


V6_LIST = "0018 0024 0200 fe800000000000000000000000000001 0200 20010db8000000000000000000000002"


def hello_from(options: str) -> Hello:
    msg = decode(fix_checksum(bytes.fromhex("2000 0000" + options)))
    assert isinstance(msg, Hello)
    return msg


def test_a_dual_stack_neighbor_lists_ipv4_and_ipv6_addresses() -> None:
    """FRR's default (send-v6-secondary): a second Address List with its IPv6 addresses,
    before or after the IPv4 one; the IPv6 entries are skipped, the Hello is kept."""
    v4 = "0018 000c 0100 0a0d0001 0100 c0a80001"
    for options in (v4 + V6_LIST, V6_LIST + v4):
        h = hello_from("0001 0002 0069" + options)
        assert h.holdtime == 105 and h.addresses == ("10.13.0.1", "192.168.0.1")
    assert hello_from(V6_LIST).addresses == ()
    mixed = "0018 0018 0200 fe800000000000000000000000000001 0100 0a0d0001"
    assert hello_from(mixed).addresses == ("10.13.0.1",)


def test_an_address_of_unknown_family_or_encoding_ends_its_list() -> None:
    assert hello_from("0018 000c 0100 0a0d0001 0101 0a0d0002").addresses == ("10.13.0.1",)
    assert hello_from("0018 000c 0100 0a0d0001 0900 0a0d0002").addresses == ("10.13.0.1",)


def mutate(offset: int, value: int) -> bytes:
    b = bytearray(GOLDEN_JOIN)
    b[offset] = value
    return fix_checksum(b)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (lambda: fix_checksum(GOLDEN_JOIN[: JP_HEADER_LEN - 1]), "bad-length"),
        (lambda: mutate(4, 2), "bad-family"),  # upstream neighbor family IPv6
        (lambda: mutate(5, 1), "bad-encoding"),
        (lambda: mutate(14, 3), "bad-family"),  # group family
        (lambda: mutate(15, 1), "bad-encoding"),  # group encoding
        (lambda: mutate(17, 33), "bad-mask-len"),  # group mask
        (lambda: mutate(26, 0), "bad-family"),  # source family
        (lambda: mutate(27, 1), "bad-encoding"),  # join attributes (RFC 5384)
        (lambda: mutate(29, 40), "bad-mask-len"),  # source mask
        (lambda: mutate(11, 2), "bad-length"),  # two groups announced, one present
        (lambda: mutate(23, 2), "bad-length"),  # two joined sources announced
        (lambda: mutate(25, 1), "bad-length"),  # a pruned source announced
        (lambda: fix_checksum(GOLDEN_JOIN[:-4]), "bad-length"),  # truncated source
        (lambda: fix_checksum(GOLDEN_JOIN + b"\x00\x00"), "bad-length"),  # trailing octets
    ],
)
def test_bad_join_prunes(data: object, why: str) -> None:
    assert callable(data)
    assert reason(data()) == why


def test_reserved_bits_are_ignored() -> None:
    b = bytearray(GOLDEN_JOIN)
    b[1] = 0xFF  # header reserved (RFC 8736 flag bits)
    b[16] |= 0x7E  # group reserved bits between B and Z
    b[28] |= 0xF8  # source reserved bits above S
    b[10] = 0x55  # the reserved octet before the group count
    assert decode(fix_checksum(b)) == JOIN


# ---- splitting --------------------------------------------------------------------------


def test_split_respects_the_size_and_count_limits() -> None:
    star = (Source.rp_tree(RP),)
    groups = [GroupEntry(f"225.1.{i // 256}.{i % 256}", joins=star) for i in range(1000)]
    messages = split_join_prune("10.0.12.2", 210, groups)
    assert [len(m.groups) for m in messages] == [69] * 14 + [34]
    assert all(len(encode(m)) <= MAX_JP_PAYLOAD for m in messages)
    assert [g for m in messages for g in m.groups] == groups
    tiny = split_join_prune("10.0.12.2", 210, groups[:600], limit=100_000)
    assert [len(m.groups) for m in tiny] == [255, 255, 90]
    with pytest.raises(ValueError):
        split_join_prune("10.0.12.2", 210, groups[:1], limit=JP_HEADER_LEN + 19)
    assert split_join_prune("10.0.12.2", 210, []) == []


def test_constructors_reject_what_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        Hello(holdtime=0x10000)
    with pytest.raises(ValueError):
        Hello(unknown=((1, b"\x00\x01"),))  # Holdtime has its own field
    with pytest.raises(ValueError):
        LanPruneDelay(0x8000, 0)
    with pytest.raises(ValueError):
        Source("2.2.2.2", mask_len=33)
    with pytest.raises(ValueError):
        GroupEntry("not-an-address")
    with pytest.raises(ValueError):
        JoinPrune("10.0.12.2", 210, tuple(GroupEntry(G) for _ in range(256)))
    with pytest.raises(TypeError):
        encode(Unsupported(5))  # type: ignore[arg-type]


# ---- properties -------------------------------------------------------------------------

addrs = st.builds(
    lambda n: f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
    st.integers(0, 2**32 - 1),
)
sources = st.builds(Source, addrs, st.booleans(), st.booleans(), st.booleans(), st.integers(0, 32))
entries = st.builds(
    GroupEntry,
    addrs,
    st.lists(sources, max_size=4).map(tuple),
    st.lists(sources, max_size=4).map(tuple),
    st.integers(0, 32),
    st.booleans(),
    st.booleans(),
)
join_prunes = st.builds(
    JoinPrune, addrs, st.integers(0, 0xFFFF), st.lists(entries, max_size=6).map(tuple)
)
hellos = st.builds(
    Hello,
    st.none() | st.integers(0, 0xFFFF),
    st.none()
    | st.builds(LanPruneDelay, st.integers(0, 0x7FFF), st.integers(0, 0xFFFF), st.booleans()),
    st.none() | st.integers(0, 2**32 - 1),
    st.none() | st.integers(0, 2**32 - 1),
    st.lists(addrs, max_size=4).map(tuple),
    st.lists(
        st.tuples(
            st.integers(0, 0xFFFF).filter(lambda t: t not in (1, 2, 19, 20, 24)),
            st.binary(max_size=12),
        ),
        max_size=3,
    ).map(tuple),
)


@given(hellos | join_prunes)
def test_round_trip(msg: Hello | JoinPrune) -> None:
    wire = encode(msg)
    assert checksum(wire) == 0
    assert decode(wire) == msg
    assert encode(decode(wire)) == wire  # type: ignore[arg-type]


@given(st.binary(max_size=80))
def test_fuzz_raw_bytes_raise_only_decode_error(data: bytes) -> None:
    for candidate in (data, fix_checksum(data) if len(data) >= 4 else data):
        with contextlib.suppress(DecodeError):
            decode(candidate)


@given(join_prunes | hellos, st.data())
def test_fuzz_mutated_messages_raise_only_decode_error(
    msg: Hello | JoinPrune, data: st.DataObject
) -> None:
    wire = bytearray(encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(4, len(wire)))
    with contextlib.suppress(DecodeError):
        decode(fix_checksum(wire[:cut]))
