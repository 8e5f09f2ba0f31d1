"""PIM-SM (RFC 7761) with a static RP, for `pim sm` interfaces.

`codec` and `machine` are pure (no I/O, time passed in as `now`); `service` binds a
`PimRouter` to a raw IPPROTO_PIM transport under trio; `display` renders
`display pim neighbor`, `display pim interface` and `display pim routing-table`.

What is here: Hellos, neighbors and DR election (4.3); (*,G) Join/Prune state downstream
(4.5.2) and upstream (4.5.7) toward the static RP, with LAN prune override, join suppression
and PruneEcho; (S,G) and (S,G,rpt) state (4.5.3-4.5.5, 4.5.8): downstream (S,G) Joins and
Prune(S,G,rpt), the upstream (S,G) Join toward the source, the Keepalive Timer, the SPT bit
and the switch of a last-hop DR to the source's tree on the first packet (VRP's default;
`spt-switch-threshold infinity` keeps it on the RP's tree), with Prune(S,G,rpt) toward the RP
when the two trees part; Registers (4.4): a source's DR tunnels its packets to the RP until
the RP says Register-Stop, probes with Null-Registers after the suppression time, and the RP
joins toward the source, taking the kernel's decapsulated packets from the register VIF
until the source's tree delivers. Outgoing interfaces per group and per (S,G) go to the MFC
(daemon/mfib.py); the `peer-backup hot` exception of VRP's dual-device IGMP hot backup
(`PimRouter.backup_members`, see `machine`).

Asserts (4.6): two routers forwarding onto one LAN (the kernel reports the other's packets
arriving on an outgoing interface, WRONGVIF) elect one by (RPT bit, metric preference,
metric, address); the loser takes the interface out of its outgoing list until the Assert
Timer ends or the winner cancels, and a downstream router sends its (S,G) Joins to the
winner.

What is left out, and why:
- A rate for the SPT switch (`spt-switch-threshold RATE`): only "immediately" (no command)
  and `infinity` are modelled.
- (*,G) Assert winners as RPF'(*,G) for our own Joins (a downstream router of ours on a LAN
  with two upstream routers keeps joining its unicast next hop for (*,G); (S,G) Joins follow
  the winner), and (S,G) Join suppression / Prune override upstream on LANs.
- Bootstrap/BSR and C-RP advertisements (the RP is static), IPv6, Join attributes, the
  Border bit of Registers, and PIM-DM's message types; all are decoded as `Unsupported` (or
  rejected by the codec) and counted.
"""

from daemon.pim.codec import (
    ALL_PIM_ROUTERS,
    IPPROTO_PIM,
    GroupEntry,
    Hello,
    JoinPrune,
    LanPruneDelay,
    Message,
    Source,
    Unsupported,
    decode,
    encode,
    split_join_prune,
)
from daemon.pim.display import (
    pim_interface_json,
    pim_neighbor_json,
    pim_routing_table_json,
    render_pim_interface,
    render_pim_neighbor,
    render_pim_routing_table,
)
from daemon.pim.machine import (
    REGISTER_IF,
    AssertChanged,
    DownstreamSnapshot,
    DownstreamState,
    DrChanged,
    InterfaceSnapshot,
    MemberKind,
    Membership,
    NeighborChanged,
    NeighborSnapshot,
    OifsChanged,
    Output,
    PimConfig,
    PimCounters,
    PimInterfaceConfig,
    PimRouter,
    PimSnapshot,
    SendPim,
    SgChanged,
    SgSnapshot,
    StarGSnapshot,
    UpstreamState,
    WatchSource,
)
from daemon.pim.service import PimService, Transport

__all__ = [
    "ALL_PIM_ROUTERS",
    "IPPROTO_PIM",
    "REGISTER_IF",
    "AssertChanged",
    "DownstreamSnapshot",
    "DownstreamState",
    "DrChanged",
    "GroupEntry",
    "Hello",
    "InterfaceSnapshot",
    "JoinPrune",
    "LanPruneDelay",
    "MemberKind",
    "Membership",
    "Message",
    "NeighborChanged",
    "NeighborSnapshot",
    "OifsChanged",
    "Output",
    "PimConfig",
    "PimCounters",
    "PimInterfaceConfig",
    "PimRouter",
    "PimService",
    "PimSnapshot",
    "SendPim",
    "SgChanged",
    "SgSnapshot",
    "Source",
    "StarGSnapshot",
    "Transport",
    "Unsupported",
    "UpstreamState",
    "WatchSource",
    "decode",
    "encode",
    "pim_interface_json",
    "pim_neighbor_json",
    "pim_routing_table_json",
    "render_pim_interface",
    "render_pim_neighbor",
    "render_pim_routing_table",
    "split_join_prune",
]
