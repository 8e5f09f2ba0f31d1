"""RBS: the remote-backup-service TCP channel and remote-backup-profile sync (IGMP entries).

`codec` and `machine` are pure (no I/O, time passed in as `now`); `service` binds a channel to
TCP under trio; `display` renders `display remote-backup-service` and
`display remote-backup-profile`. The wire format is in docs/protocol.md.
"""

from daemon.rbs.codec import FilterMode, IgmpKey, IgmpValue, Op
from daemon.rbs.machine import (
    ChannelSnapshot,
    ChannelState,
    Close,
    Connect,
    ConnState,
    HoldingsReceived,
    MirrorChanged,
    Mismatch,
    Output,
    PeerHolds,
    PeerStatus,
    ProfileSnapshot,
    ProfileSpec,
    RbsChannel,
    Role,
    SendBytes,
    should_listen,
)

__all__ = [
    "ChannelSnapshot",
    "ChannelState",
    "Close",
    "ConnState",
    "Connect",
    "FilterMode",
    "HoldingsReceived",
    "IgmpKey",
    "IgmpValue",
    "MirrorChanged",
    "Mismatch",
    "Op",
    "Output",
    "PeerHolds",
    "PeerStatus",
    "ProfileSnapshot",
    "ProfileSpec",
    "RbsChannel",
    "Role",
    "SendBytes",
    "should_listen",
]
