"""IEEE 802.1AX LACP in static mode (VRP `mode lacp-static`): codec, machine, service.

`codec` and `machine` are pure (no I/O, time passed in as `now`); `service` binds a trunk
to member-port I/O under trio; `display` renders `display eth-trunk` and LACP statistics.
"""

from daemon.lacp.codec import Lacpdu, PortInfo, State, decode_frame, encode_frame, state_bits
from daemon.lacp.machine import (
    DistributingChanged,
    LacpTrunk,
    Output,
    PartnerAttached,
    PortChanged,
    PortConfig,
    PortSnapshot,
    Role,
    Transmit,
    TrunkConfig,
    TrunkSnapshot,
)

__all__ = [
    "DistributingChanged",
    "LacpTrunk",
    "Lacpdu",
    "Output",
    "PartnerAttached",
    "PortChanged",
    "PortConfig",
    "PortInfo",
    "PortSnapshot",
    "Role",
    "State",
    "Transmit",
    "TrunkConfig",
    "TrunkSnapshot",
    "decode_frame",
    "encode_frame",
    "state_bits",
]
