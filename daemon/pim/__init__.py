"""PIM-SM (RFC 7761) with a static RP, for `pim sm` interfaces: the shared tree only.

`codec` and `machine` are pure (no I/O, time passed in as `now`); `service` binds a
`PimRouter` to a raw IPPROTO_PIM transport under trio; `display` renders
`display pim neighbor`, `display pim interface` and `display pim routing-table`.

What is here: Hellos, neighbors and DR election (4.3), (*,G) Join/Prune state downstream
(4.5.2) and upstream (4.5.7) toward one static RP, with LAN prune override, join suppression
and PruneEcho; outgoing interfaces per group for the MFC; the `peer-backup hot` exception of
VRP's dual-device IGMP hot backup (`PimRouter.backup_members`, see `machine`).

What is left out, and why this topology does not need it (DeviceD is the RP, 2.2.2.2, and
the multicast Source sits on DeviceD's GE0/1/1; DeviceA and DeviceB are last-hop routers):
- Registers (4.4; message types 1 and 2). A source's first-hop router (the DR on the
  source's LAN) unicasts the source's packets, encapsulated in Register messages, to the RP
  until the RP has joined toward the source and answers with Register-Stop; that is how the
  RP learns of sources it is not connected to. Here the first-hop router is the RP itself:
  D receives the data natively on GE0/1/1 and forwards it down the (*,G) tree. A topology
  with the Source behind any other router (say behind DeviceA, or behind a fifth router
  hanging off D), or with the RP moved off DeviceD, needs Registers.
- SPT switchover ((S,G) and (S,G,rpt) state, 4.5.4-4.5.9, the SPTbit). Last-hop routers
  join the source's shortest-path tree once traffic flows, and prune the source off the
  shared tree, when the RP is not on the shortest path. Here every path from A or B to the
  Source runs through D, the RP, so the shared tree already is the shortest path. A topology
  where the Source's router reaches A or B without passing the RP (a source behind DeviceB
  with the RP on D, say) needs it. (S,G) entries in received Join/Prunes are counted as
  "unsupported-sg" and ignored.
- Asserts (4.6; type 5). When two routers can forward the same group onto one multi-access
  LAN, Asserts elect a single forwarder so receivers get no duplicates. The only LAN with two
  PIM routers here is VLAN 100 behind DeviceC (A's and B's Eth-Trunk1), and E-Trunk keeps
  the backup's Eth-Trunk1 down, so only one of them ever forwards there. A topology with
  both trunks active (dual-active E-Trunk) or with several routers on a shared transit LAN
  needs Asserts.
- Also left out: Bootstrap/BSR and C-RP advertisements (the RP is static), the SSM range,
  IPv6, Join attributes, and PIM-DM's message types; all are decoded as `Unsupported` (or
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
