"""BFD (RFC 5880 asynchronous mode; RFC 5881 single hop, RFC 5883 multihop).

`codec` and `machine` are pure (no I/O, time passed in as `now`); `service` binds the
sessions of a device to a datagram transport under trio; `display` renders
`display bfd session all` and `display bfd session name NAME verbose` (text and JSON).
"""

from daemon.bfd.codec import BfdState, ControlPacket, Diag, decode, encode
from daemon.bfd.machine import (
    BfdSession,
    IllegalTransition,
    Output,
    Send,
    SessionConfig,
    SessionSnapshot,
    StateChanged,
)

__all__ = [
    "BfdSession",
    "BfdState",
    "ControlPacket",
    "Diag",
    "IllegalTransition",
    "Output",
    "Send",
    "SessionConfig",
    "SessionSnapshot",
    "StateChanged",
    "decode",
    "encode",
]
