"""E-Trunk: two devices backing up each other's member Eth-Trunks toward one switch.

`codec` (the lab's own hello format, docs/protocol.md) and `machine` are pure (no I/O, time
passed in as `now`); `service` binds one E-Trunk to a UDP-like transport under trio;
`display` renders `display e-trunk N`.
"""

from daemon.etrunk.codec import (
    ETrunkState,
    Flags,
    Hello,
    Member,
    MemberRole,
    MessageType,
    WorkMode,
    decode,
    encode,
)
from daemon.etrunk.machine import (
    Cause,
    ETrunkConfig,
    ETrunkMachine,
    ETrunkSnapshot,
    MemberCause,
    MemberConfig,
    MemberRoleChanged,
    MemberSnapshot,
    Output,
    PeerSnapshot,
    Send,
    StateChanged,
    member_role,
    sequence_origin,
)

__all__ = [
    "Cause",
    "ETrunkConfig",
    "ETrunkMachine",
    "ETrunkSnapshot",
    "ETrunkState",
    "Flags",
    "Hello",
    "Member",
    "MemberCause",
    "MemberConfig",
    "MemberRole",
    "MemberRoleChanged",
    "MemberSnapshot",
    "MessageType",
    "Output",
    "PeerSnapshot",
    "Send",
    "StateChanged",
    "WorkMode",
    "decode",
    "encode",
    "member_role",
    "sequence_origin",
]
