"""BFD Control packet codec: golden bytes, scapy as the independent oracle, malformed input,
fuzz."""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.contrib.bfd import BFD, OptionalAuth

from daemon.bfd.codec import MIN_LEN, BfdState, ControlPacket, Diag, as_diag, decode, encode
from daemon.wire import DecodeError

# DeviceA's side of an Up multihop session at 10 ms, polling after coming Up.
UP_POLL = ControlPacket(
    diag=Diag.NONE,
    state=BfdState.UP,
    poll=True,
    detect_mult=3,
    my_disc=8191,
    your_disc=8192,
    desired_min_tx_us=10_000,
    required_min_rx_us=10_000,
    required_min_echo_rx_us=0,
)
GOLDEN_UP_POLL = bytes.fromhex(
    "20"  # version 1, diag 0
    " e0"  # state Up (3 << 6), P
    " 03"  # detect mult
    " 18"  # length 24
    " 00001fff"  # my discriminator 8191
    " 00002000"  # your discriminator 8192
    " 00002710"  # desired min tx 10000 us
    " 00002710"  # required min rx 10000 us
    " 00000000"  # required min echo rx: no echo
)

# The goodbye: AdminDown, diag 7, the slow rate, Final answering the peer's Poll.
ADMIN_DOWN_FINAL = ControlPacket(
    diag=Diag.ADMIN_DOWN,
    state=BfdState.ADMIN_DOWN,
    final=True,
    detect_mult=3,
    my_disc=8191,
    your_disc=8192,
    desired_min_tx_us=1_000_000,
    required_min_rx_us=10_000,
)
GOLDEN_ADMIN_DOWN_FINAL = bytes.fromhex("27 10 03 18 00001fff 00002000 000f4240 00002710 00000000")


def raw(
    *,
    vers: int = 1,
    diag: int = 0,
    state: int = 1,
    flags: int = 0,
    mult: int = 3,
    length: int = 24,
    my: int = 1,
    your: int = 0,
    tx: int = 1_000_000,
    rx: int = 10_000,
    echo: int = 0,
) -> bytes:
    """Hand-packed bytes, for values our encoder never produces."""
    return struct.pack(
        "!BBBBIIIII", vers << 5 | diag, state << 6 | flags, mult, length, my, your, tx, rx, echo
    )


def scapy_fields(pkt: BFD) -> dict[str, object]:
    flags = pkt.flags
    return {
        "diag": pkt.diag,
        "state": pkt.sta,
        "poll": bool(flags.P),
        "final": bool(flags.F),
        "cpi": bool(flags.C),
        "auth": bool(flags.A),
        "demand": bool(flags.D),
        "multipoint": bool(flags.M),
        "detect_mult": pkt.detect_mult,
        "my_disc": pkt.my_discriminator,
        "your_disc": pkt.your_discriminator,
        "desired_min_tx_us": pkt.min_tx_interval,
        "required_min_rx_us": pkt.min_rx_interval,
        "required_min_echo_rx_us": pkt.echo_rx_interval,
    }


FIELDS = (
    "diag",
    "state",
    "poll",
    "final",
    "cpi",
    "auth",
    "demand",
    "multipoint",
    "detect_mult",
    "my_disc",
    "your_disc",
    "desired_min_tx_us",
    "required_min_rx_us",
    "required_min_echo_rx_us",
)


def our_fields(pkt: ControlPacket) -> dict[str, object]:
    return {name: getattr(pkt, name) for name in FIELDS}


# ---- golden bytes -----------------------------------------------------------------------


def test_golden_bytes_encode_and_decode() -> None:
    assert UP_POLL.encode() == GOLDEN_UP_POLL
    assert encode(UP_POLL) == GOLDEN_UP_POLL
    assert decode(GOLDEN_UP_POLL) == UP_POLL
    assert ADMIN_DOWN_FINAL.encode() == GOLDEN_ADMIN_DOWN_FINAL
    assert decode(GOLDEN_ADMIN_DOWN_FINAL) == ADMIN_DOWN_FINAL
    assert len(GOLDEN_UP_POLL) == MIN_LEN


def test_every_flag_bit_has_its_rfc_position() -> None:
    bits = {"poll": 0x20, "final": 0x10, "cpi": 0x08, "auth": 0x04, "demand": 0x02}
    bits["multipoint"] = 0x01
    for name, bit in bits.items():
        assert ControlPacket(**{name: True}).encode()[1] == BfdState.DOWN << 6 | bit
    for state in BfdState:
        assert ControlPacket(state=state).encode()[1] == state << 6


def test_decoded_types() -> None:
    pkt = decode(GOLDEN_ADMIN_DOWN_FINAL)
    assert type(pkt.state) is BfdState
    assert type(pkt.diag) is Diag
    assert pkt.diag is Diag.ADMIN_DOWN


# ---- scapy as the oracle ----------------------------------------------------------------


@pytest.mark.parametrize("pkt", [UP_POLL, ADMIN_DOWN_FINAL])
def test_scapy_decodes_what_we_encode(pkt: ControlPacket) -> None:
    theirs = BFD(pkt.encode())
    assert theirs.version == 1
    assert theirs.len == 24
    assert scapy_fields(theirs) == our_fields(pkt)


@pytest.mark.parametrize(
    "fields",
    [
        dict(sta=1, flags="", my_discriminator=7, your_discriminator=0),
        dict(sta=0, diag=7, flags="", my_discriminator=7, your_discriminator=0),
        dict(sta=2, flags="P", my_discriminator=1, your_discriminator=2, detect_mult=1),
        dict(sta=3, diag=3, flags="FC", my_discriminator=0xFFFFFFFF, your_discriminator=9),
        dict(sta=3, flags="D", min_tx_interval=0, min_rx_interval=0, echo_rx_interval=50_000),
    ],
)
def test_we_decode_what_scapy_builds(fields: dict[str, object]) -> None:
    theirs = BFD(**fields)
    ours = decode(bytes(theirs))
    assert our_fields(ours) == scapy_fields(BFD(bytes(theirs)))
    assert ours.encode() == bytes(theirs)  # and we would put the same octets on the wire


def test_unassigned_diag_is_kept_as_an_int() -> None:
    pkt = decode(raw(diag=17))
    assert pkt.diag == 17 and not isinstance(pkt.diag, Diag)
    assert as_diag(9) is Diag.MIS_CONNECTIVITY_DEFECT
    assert pkt.encode() == raw(diag=17)


def test_trailing_octets_after_length_are_ignored() -> None:
    assert decode(GOLDEN_UP_POLL + b"\x00" * 8) == UP_POLL
    longer = bytearray(GOLDEN_UP_POLL + b"\x00\x00")
    longer[3] = 26  # Length 26 without the A bit: nothing defined there, ignored
    assert decode(bytes(longer)) == UP_POLL


# ---- malformed input --------------------------------------------------------------------

MALFORMED = {
    "short": [b"", GOLDEN_UP_POLL[:23], b"\x20"],
    "bad-version": [raw(vers=0), raw(vers=2), raw(vers=7)],
    "bad-length": [raw(length=0), raw(length=23), raw(flags=0x04, length=24)],
    "truncated": [raw(length=25), raw(length=255)],
    "zero-detect-mult": [raw(mult=0)],
    "multipoint": [raw(flags=0x01)],
    "zero-my-disc": [raw(my=0)],
    "zero-your-disc": [raw(state=2, your=0), raw(state=3, your=0)],
    "auth-unsupported": [
        raw(flags=0x04, length=26) + b"\x01\x02",
        bytes(
            BFD(
                sta=1,
                flags="A",
                my_discriminator=1,
                your_discriminator=0,
                optional_auth=OptionalAuth(auth_type=1, auth_keyid=1, auth_key=b"secret"),
            )
        ),
    ],
    "poll-and-final": [raw(flags=0x30)],
}


@pytest.mark.parametrize(
    ("reason", "data"), [(r, d) for r, datas in MALFORMED.items() for d in datas]
)
def test_malformed_is_rejected_with_its_reason(reason: str, data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert info.value.reason == reason


def test_checks_run_in_rfc_order() -> None:
    """6.8.6 order: version, length, detect mult, M, My Disc, Your Disc/State, A."""
    with pytest.raises(DecodeError, match="bad-version"):
        decode(raw(vers=2, mult=0, my=0))
    with pytest.raises(DecodeError, match="zero-detect-mult"):
        decode(raw(mult=0, flags=0x01, my=0))
    with pytest.raises(DecodeError, match="zero-my-disc"):
        decode(raw(my=0, state=3, your=0))
    with pytest.raises(DecodeError, match="zero-your-disc"):
        decode(raw(state=3, your=0, flags=0x04, length=26) + b"\x00\x00")


def test_zero_your_disc_is_fine_while_down_or_admin_down() -> None:
    assert decode(raw(state=1, your=0)).state is BfdState.DOWN
    assert decode(raw(state=0, your=0)).state is BfdState.ADMIN_DOWN


def test_constructor_rejects_values_that_do_not_fit() -> None:
    for bad in (
        dict(diag=32),
        dict(detect_mult=256),
        dict(my_disc=-1),
        dict(your_disc=1 << 32),
        dict(desired_min_tx_us=1 << 32),
        dict(state=4),
    ):
        with pytest.raises(ValueError):
            replace(UP_POLL, **bad)


# ---- fuzz -------------------------------------------------------------------------------


@given(st.binary(max_size=64))
def test_decode_raises_only_decode_error(data: bytes) -> None:
    try:
        pkt = decode(data)
    except DecodeError:
        return
    assert pkt.encode()[:3] == data[:3]  # what decodes re-encodes to the same header
    assert pkt.encode()[4:] == data[4:24]


@given(
    st.builds(
        ControlPacket,
        diag=st.integers(0, 31).map(as_diag),
        state=st.sampled_from(BfdState),
        poll=st.booleans(),
        cpi=st.booleans(),
        demand=st.booleans(),
        detect_mult=st.integers(1, 255),
        my_disc=st.integers(1, 0xFFFFFFFF),
        your_disc=st.integers(1, 0xFFFFFFFF),
        desired_min_tx_us=st.integers(0, 0xFFFFFFFF),
        required_min_rx_us=st.integers(0, 0xFFFFFFFF),
        required_min_echo_rx_us=st.integers(0, 0xFFFFFFFF),
    )
)
def test_valid_packets_round_trip(pkt: ControlPacket) -> None:
    assert decode(pkt.encode()) == pkt
    assert scapy_fields(BFD(pkt.encode())) == our_fields(pkt)


@given(st.binary(min_size=24, max_size=24))
def test_fuzzed_headers_agree_with_scapy_when_valid(data: bytes) -> None:
    try:
        ours = decode(data)
    except DecodeError:
        return
    assert our_fields(ours) == scapy_fields(BFD(data))
