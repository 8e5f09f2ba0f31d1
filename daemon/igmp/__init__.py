"""IGMP router side (RFC 2236 v2, RFC 3376 v3, v1 hosts) for `igmp enable` interfaces.

`codec` and `machine` are pure (no I/O, time passed in as `now`); `service` binds one
interface to a raw IGMP socket under trio; `display` renders `display igmp group` and
`display igmp interface`.
"""

from daemon.igmp.codec import (
    GroupRecord,
    IpIgmp,
    Message,
    Query,
    RecordType,
    V1Report,
    V2Leave,
    V2Report,
    V3Report,
    decode,
    decode_ip,
    encode,
    encode_ip,
)
from daemon.igmp.display import (
    RemoteGroup,
    igmp_group_json,
    igmp_interface_json,
    render_igmp_group,
    render_igmp_interface,
)
from daemon.igmp.machine import (
    AdoptedGroup,
    EventKind,
    FilterMode,
    GroupEvent,
    GroupSnapshot,
    IfState,
    IgmpConfig,
    IgmpInterface,
    IgmpSnapshot,
    Output,
    SendQuery,
)
from daemon.igmp.service import IgmpService, Transport

__all__ = [
    "AdoptedGroup",
    "EventKind",
    "FilterMode",
    "GroupEvent",
    "GroupRecord",
    "GroupSnapshot",
    "IfState",
    "IgmpConfig",
    "IgmpInterface",
    "IgmpService",
    "IgmpSnapshot",
    "IpIgmp",
    "Message",
    "Output",
    "Query",
    "RecordType",
    "RemoteGroup",
    "SendQuery",
    "Transport",
    "V1Report",
    "V2Leave",
    "V2Report",
    "V3Report",
    "decode",
    "decode_ip",
    "encode",
    "encode_ip",
    "igmp_group_json",
    "igmp_interface_json",
    "render_igmp_group",
    "render_igmp_interface",
]
