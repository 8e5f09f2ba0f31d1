"""BFD Control packet (RFC 5880 section 4.1), encoded and decoded with `struct`.

Decoding applies every reception check of RFC 5880 section 6.8.6 that needs nothing but the
packet itself, in the RFC's order, and raises `DecodeError` with a stable reason token:

| reason             | the packet                                                        |
| ------------------ | ----------------------------------------------------------------- |
| `short`            | datagram shorter than the 24-octet mandatory section              |
| `bad-version`      | version is not 1                                                  |
| `bad-length`       | Length below 24 (below 26 with the A bit set)                     |
| `truncated`        | Length larger than the datagram                                   |
| `zero-detect-mult` | Detect Mult is 0                                                  |
| `multipoint`       | the M bit is set                                                  |
| `zero-my-disc`     | My Discriminator is 0                                             |
| `zero-your-disc`   | Your Discriminator is 0 while State is Init or Up                 |
| `auth-unsupported` | the A bit is set: we configure no authentication (bfd.AuthType 0) |
| `poll-and-final`   | both P and F set ("MUST NOT", RFC 5880 6.5; we drop it)           |

Checks that need session state (which session Your Discriminator selects, the TTL of RFC
5881, a static remote discriminator) belong to the machine and the service.

Lenient where the RFC is: octets after Length (a datagram may be longer) are ignored, and
so is a Length above 24 without the A bit; a Diag value the `Diag` enum does not name (9 and
up) is kept as a plain int, since the RFC does not make it a reason to discard.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from daemon.wire import DecodeError

VERSION = 1
MIN_LEN = 24
MIN_LEN_AUTH = 26  # 24 + the smallest authentication section
MAX_U32 = 0xFFFFFFFF

_PACKET = struct.Struct("!BBBBIIIII")  # vers|diag, sta|flags, mult, length, 5 x u32

_P, _F, _C, _A, _D, _M = 0x20, 0x10, 0x08, 0x04, 0x02, 0x01


class BfdState(IntEnum):
    """Session state (the Sta field; bfd.SessionState)."""

    ADMIN_DOWN = 0
    DOWN = 1
    INIT = 2
    UP = 3


class Diag(IntEnum):
    """Diagnostic codes (RFC 5880 4.1; 9 from RFC 6428 as registered by IANA)."""

    NONE = 0
    CONTROL_DETECTION_TIME_EXPIRED = 1
    ECHO_FAILED = 2
    NEIGHBOR_SIGNALED_DOWN = 3
    FORWARDING_PLANE_RESET = 4
    PATH_DOWN = 5
    CONCATENATED_PATH_DOWN = 6
    ADMIN_DOWN = 7
    REVERSE_CONCATENATED_PATH_DOWN = 8
    MIS_CONNECTIVITY_DEFECT = 9


_KNOWN_DIAGS = frozenset(int(d) for d in Diag)


def as_diag(value: int) -> Diag | int:
    """The Diag member for `value`, or the int itself for an unassigned code (10..31)."""
    return Diag(value) if value in _KNOWN_DIAGS else value


@dataclass(frozen=True, kw_only=True)
class ControlPacket:
    """The mandatory section of a BFD Control packet. Intervals are in microseconds.

    Construction checks only that every field fits its width, so `encode()` cannot fail; it
    does not check protocol validity (a packet with detect_mult 0 can be built, which tests
    use to craft malformed input): that is what `decode` does. `auth` is only the A bit: we
    carry no authentication section, so a packet with it set never decodes.
    """

    diag: Diag | int = Diag.NONE
    state: BfdState = BfdState.DOWN
    poll: bool = False
    final: bool = False
    cpi: bool = False  # C: control plane independent
    auth: bool = False  # A: authentication present
    demand: bool = False  # D
    multipoint: bool = False  # M
    detect_mult: int = 3
    my_disc: int = 0
    your_disc: int = 0
    desired_min_tx_us: int = 1_000_000
    required_min_rx_us: int = 1_000_000
    required_min_echo_rx_us: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.diag <= 31:
            raise ValueError(f"diag out of range: {self.diag}")
        if not 0 <= self.state <= 3:
            raise ValueError(f"state out of range: {self.state}")
        if not 0 <= self.detect_mult <= 0xFF:
            raise ValueError(f"detect_mult out of range: {self.detect_mult}")
        for name in (
            "my_disc",
            "your_disc",
            "desired_min_tx_us",
            "required_min_rx_us",
            "required_min_echo_rx_us",
        ):
            value = getattr(self, name)
            if not 0 <= value <= MAX_U32:
                raise ValueError(f"{name} out of range: {value}")

    def encode(self) -> bytes:
        """The 24-octet packet (Length 24, no authentication section)."""
        flags = (
            (_P if self.poll else 0)
            | (_F if self.final else 0)
            | (_C if self.cpi else 0)
            | (_A if self.auth else 0)
            | (_D if self.demand else 0)
            | (_M if self.multipoint else 0)
        )
        return _PACKET.pack(
            VERSION << 5 | int(self.diag),
            int(self.state) << 6 | flags,
            self.detect_mult,
            MIN_LEN,
            self.my_disc,
            self.your_disc,
            self.desired_min_tx_us,
            self.required_min_rx_us,
            self.required_min_echo_rx_us,
        )


def encode(pkt: ControlPacket) -> bytes:
    return pkt.encode()


def decode(data: bytes) -> ControlPacket:
    """Parse one UDP payload; raise DecodeError (reasons in the module docstring)."""
    if len(data) < MIN_LEN:
        raise DecodeError("short", f"{len(data)} octets")
    b0, b1, mult, length, my, your, tx, rx, echo = _PACKET.unpack_from(data)
    if b0 >> 5 != VERSION:
        raise DecodeError("bad-version", f"version {b0 >> 5}")
    auth = bool(b1 & _A)
    need = MIN_LEN_AUTH if auth else MIN_LEN
    if length < need:
        raise DecodeError("bad-length", f"length {length}, need {need}")
    if length > len(data):
        raise DecodeError("truncated", f"length {length}, datagram {len(data)}")
    if mult == 0:
        raise DecodeError("zero-detect-mult")
    if b1 & _M:
        raise DecodeError("multipoint")
    if my == 0:
        raise DecodeError("zero-my-disc")
    state = BfdState(b1 >> 6)
    if your == 0 and state not in (BfdState.ADMIN_DOWN, BfdState.DOWN):
        raise DecodeError("zero-your-disc", f"state {state.name}")
    if auth:
        raise DecodeError("auth-unsupported")
    if b1 & _P and b1 & _F:
        raise DecodeError("poll-and-final")
    return ControlPacket(
        diag=as_diag(b0 & 0x1F),
        state=state,
        poll=bool(b1 & _P),
        final=bool(b1 & _F),
        cpi=bool(b1 & _C),
        auth=False,
        demand=bool(b1 & _D),
        multipoint=False,
        detect_mult=mult,
        my_disc=my,
        your_disc=your,
        desired_min_tx_us=tx,
        required_min_rx_us=rx,
        required_min_echo_rx_us=echo,
    )
