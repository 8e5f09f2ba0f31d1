"""PIM-SM with a static RP (RFC 7761): neighbors, DR election, (*,G), (S,G) and Register
state, without I/O.

One `PimRouter` is one device's PIM: every `pim sm` interface, its neighbors (4.3), the
downstream (*,G) state per interface (4.5.2) and the upstream (*,G) state toward the RP
(4.5.7), (S,G) and (S,G,rpt) state (4.5.3-4.5.5, 4.5.8) and Registers (4.4). Every input
takes `now` (monotonic seconds) and returns the outputs it caused: `SendPim` (a PIM payload
for the kernel side to send), `OifsChanged` (the outgoing interfaces the MFC should use for
every (S,G) of a group), `SgChanged` (one (S,G) entry's own input and outputs),
`WatchSource` (a source whose route `source_rpf` must report), `NeighborChanged` and
`DrChanged`. Data never passes through here except a source's first packets at its DR
(`whole_packet`, each sent on in a Register); the kernel's upcalls say when data arrives.
Every timer is an absolute deadline in one heap with lazy deletion, so a thousand groups
cost O(log n) per timer and nothing per idle tick.

How an input is processed: due timers fire first; the input then changes neighbor,
downstream and membership state and marks the groups it touched; `_settle` recomputes the
touched groups' outgoing interfaces and JoinDesired(*,G), runs the upstream transitions,
and finally sends every queued Join/Prune packed per (interface, upstream neighbor), many
groups to a message, split to stay within 1400 octets.

Choices the RFC leaves open, or where this differs from it on purpose:
- Join Timers are aligned to one refresh phase: a newly joined group sends its Join at once
  and then refreshes with the groups already joined (so its first refresh may come early,
  never late; the holdtime is 3.5 periods). A thousand groups refresh in 15 messages per
  period instead of a thousand single-group ones.
- An upstream neighbor that restarts (new Generation ID) or appears (first Hello from
  RPF'(*,G)) gets every Join again at once, preceded by a Hello, instead of within a random
  t_override (4.5.7): a restarted RP regains the tree in milliseconds. Likewise a new
  neighbor's triggered Hello waits rand(0, Triggered_Hello_Delay), except where a Join/Prune
  is about to go out: 4.3.1 wants a Hello first, and it goes out at once.
- While RPF'(*,G) has not been heard (no Hello from it since its interface came up), the
  Joins are sent again every UNHEARD_RETRY, each after a Hello, until it is: a neighbor
  whose Hellos were lost (a link that came back while everything on it was dropped) would
  otherwise learn of us, and we of it, only at the next periodic Hello, 30 s away, and
  drop our Joins as "not-neighbor" until then.
- On a LAN the upstream machine implements "see Join/Prune to RPF'(*,G)": a Join from
  another router suppresses ours (Join Timer raised to t_joinsuppress), a Prune makes us
  override (Join Timer lowered to t_override); we never set the T bit, so suppression is on.
  An upstream router whose Prune-Pending timer ends on a LAN sends a PruneEcho. On the
  lab's point-to-point links none of this happens: a Prune removes the interface at once.
- Join/Prune messages from routers we have no Hello from are dropped ("not-neighbor"), as
  common implementations do; 4.3.1's Hello-before-Join/Prune rule means a compliant
  neighbor is always known first.
- Groups outside the ASM range (224.0.0.0/24 link-local, 232/8 SSM) get no (*,G) state:
  received (*,G) and (S,G,rpt) entries for them are dropped ("bad-group", "ssm-group") and
  memberships for them are ignored; (S,G) Joins for SSM groups are kept.
- The SPT bit is set when a packet from S arrives on RPF_interface(S) (the kernel's
  WRONGVIF upcall, MRT_PIM on) while JoinDesired(S,G), or at once when RPF'(S,G) is
  RPF'(*,G): the kernel reports no packet that arrives where the MFC expects it.
- (S,G) Join suppression and Prune override on a LAN (4.5.5's "see Join/Prune") are not
  done: (S,G) Joins are sent as if every upstream link were point-to-point. Downstream,
  (S,G) and (S,G,rpt) Prunes keep the LAN Prune-Pending delay.
- The Keepalive Timer runs on the kernel's per-(S,G) packet counters, read every 10 s by
  the device, not on every packet.
- `shutdown()` prunes every joined group before the goodbye Hellos (holdtime 0), so the
  upstream stops forwarding at once rather than after the Join holdtime.
- Neighbor loss does not remove downstream state (the RFC keys it to the interface and the
  Expiry Timer), and the outgoing interfaces include the RPF interface if a Join arrived on
  it: the MFC side leaves out each (S,G)'s incoming interface.

`backup_members` is the `peer-backup hot` behaviour of VRP's dual-device IGMP hot backup:
the backup device holds the master's groups (synced over RBS), joins toward the RP for them
and lists the E-Trunk interface among the outgoing interfaces although it is not the DR there
and the interface is down, so traffic already arrives and leaves the moment it becomes
master. RFC 7761's pim_include(*,G) (4.1.6) would count local members only where we are DR.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import socket
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import TypeAlias, TypeVar

from daemon.pim.codec import (
    ALL_PIM_ROUTERS,
    HOLDTIME_FOREVER,
    INFINITE_ASSERT,
    MAX_JP_PAYLOAD,
    Assert,
    AssertMetric,
    GroupEntry,
    Hello,
    JoinPrune,
    LanPruneDelay,
    Message,
    Register,
    RegisterStop,
    Source,
    Unsupported,
    encode,
    split_join_prune,
)

TRIGGERED_HELLO_DELAY = 5.0  # RFC 7761 4.11
UNHEARD_RETRY = 0.1  # Joins (each after a Hello) toward an RPF neighbor not heard yet
DEFAULT_HELLO_HOLDTIME = 105  # for a Hello without the Holdtime option
PROPAGATION_DELAY_DEFAULT = 0.5
OVERRIDE_INTERVAL_DEFAULT = 2.5
KEEPALIVE_PERIOD = 210.0  # RFC 7761 4.11: (S,G) state lives this long after its last data
REGISTER_SUPPRESSION_TIME = 60.0  # 4.11: a DR's Registers stay off this long after a Stop
REGISTER_PROBE_TIME = 5.0  # 4.11: a Null-Register this long before Registers resume
RP_KEEPALIVE_PERIOD = 3 * REGISTER_SUPPRESSION_TIME + REGISTER_PROBE_TIME
REGISTER_IF = "Register"  # the register VIF: the MFC output that tunnels, the RP's input
ASSERT_TIME = 180.0  # 4.11: a lost Assert holds this long without a refresh
ASSERT_OVERRIDE_INTERVAL = 3.0  # the winner re-asserts this much sooner
ROUTE_PREFERENCE = 10  # the lab's routes are what OSPF would give: VRP's OSPF preference


class IfState(IntEnum):
    DOWN = 1
    UP = 2


class DownstreamState(IntEnum):
    """RFC 7761 4.5.2: per (*,G) and interface; NO_INFO is not stored."""

    NO_INFO = 1
    JOIN = 2
    PRUNE_PENDING = 3


class UpstreamState(IntEnum):
    """RFC 7761 4.5.7: per (*,G)."""

    NOT_JOINED = 1
    JOINED = 2


class AssertState(IntEnum):
    """RFC 7761 4.6.1/4.6.2: per (S,G) or (*,G) and interface; NO_INFO is not stored."""

    NO_INFO = 1
    WINNER = 2  # we forward onto the LAN, and said so
    LOSER = 3  # another router forwards: the interface leaves our outgoing list


class RegisterState(IntEnum):
    """RFC 7761 4.4.1: a DR's per-(S,G) Register state for a directly connected source."""

    NO_INFO = 1
    JOIN = 2  # every packet tunnelled to the RP
    JOIN_PENDING = 3  # a Null-Register asked whether the RP still says Stop
    PRUNE = 4  # the RP said Register-Stop


_D, _U = DownstreamState, UpstreamState
TRANSITIONS: Mapping[type[IntEnum], Mapping[IntEnum, frozenset[IntEnum]]] = {
    IfState: {
        IfState.DOWN: frozenset({IfState.UP}),
        IfState.UP: frozenset({IfState.DOWN}),
    },
    DownstreamState: {
        _D.NO_INFO: frozenset({_D.JOIN}),
        # JOIN is re-entered on every Join (the Expiry Timer is raised).
        _D.JOIN: frozenset({_D.JOIN, _D.PRUNE_PENDING, _D.NO_INFO}),
        _D.PRUNE_PENDING: frozenset({_D.JOIN, _D.NO_INFO}),
    },
    UpstreamState: {
        _U.NOT_JOINED: frozenset({_U.JOINED}),
        _U.JOINED: frozenset({_U.NOT_JOINED}),
    },
    AssertState: {
        AssertState.NO_INFO: frozenset({AssertState.WINNER, AssertState.LOSER}),
        AssertState.WINNER: frozenset({AssertState.WINNER, AssertState.LOSER,
                                       AssertState.NO_INFO}),
        AssertState.LOSER: frozenset({AssertState.LOSER, AssertState.NO_INFO}),
    },
    RegisterState: {
        RegisterState.NO_INFO: frozenset({RegisterState.JOIN}),
        RegisterState.JOIN: frozenset({RegisterState.PRUNE, RegisterState.NO_INFO}),
        RegisterState.JOIN_PENDING: frozenset(
            {RegisterState.JOIN, RegisterState.PRUNE, RegisterState.NO_INFO}),
        RegisterState.PRUNE: frozenset({RegisterState.JOIN_PENDING, RegisterState.NO_INFO}),
    },
}

_S = TypeVar("_S", bound=IntEnum)


class IllegalTransition(RuntimeError):
    """A transition the state diagram does not have: a bug, never input."""


def check_transition(old: _S, new: _S) -> _S:
    if new not in TRANSITIONS[type(old)][old]:
        raise IllegalTransition(f"{type(old).__name__}: {old.name} -> {new.name}")
    return new


class TimerName(StrEnum):
    HELLO = "hello"  # periodic Hello Timer
    TRIGGERED_HELLO = "triggered_hello"  # one extra Hello for a new or restarted neighbor
    NEIGHBOR = "neighbor"  # Neighbor Liveness Timer
    EXPIRY = "expiry"  # downstream (*,G) Expiry Timer
    PRUNE_PENDING = "prune_pending"  # downstream (*,G) Prune-Pending Timer
    JOIN = "join"  # upstream (*,G) Join Timer
    SG_EXPIRY = "sg_expiry"  # downstream (S,G) Expiry Timer (key "S G")
    SG_PRUNE_PENDING = "sg_prune_pending"  # downstream (S,G) Prune-Pending Timer
    RPT_EXPIRY = "rpt_expiry"  # downstream (S,G,rpt) Prune Expiry Timer
    RPT_PRUNE_PENDING = "rpt_prune_pending"  # downstream (S,G,rpt) Prune-Pending Timer
    SG_JOIN = "sg_join"  # upstream (S,G) Join Timer
    KEEPALIVE = "keepalive"  # (S,G) Keepalive Timer: data from S to G seen lately
    REGISTER_STOP = "register_stop"  # a DR's Register-Stop Timer (4.4.1)
    ASSERT = "assert"  # the (S,G) or (*,G) Assert Timer of an interface (key "S G", "* G")


class MemberKind(StrEnum):
    LOCAL = "local"  # IGMP members, effective where we are DR
    BACKUP = "backup"  # held for the peer device (peer-backup hot), effective everywhere


def _ip_key(addr: str) -> int:
    return int.from_bytes(socket.inet_aton(addr), "big")


def _check_addr(name: str, value: str) -> None:
    try:
        socket.inet_pton(socket.AF_INET, value)
    except (OSError, TypeError):
        raise ValueError(f"{name}: not a dotted-quad IPv4 address: {value!r}") from None


def is_asm_group(group: str) -> bool:
    """A group (*,G) state may exist for: 224/4 less 224.0.0.0/24 and the SSM range 232/8."""
    key = _ip_key(group)
    return key >> 28 == 0xE and key >> 8 != 0xE00000 and key >> 24 != 232


# ---- configuration -----------------------------------------------------------------------


@dataclass(frozen=True)
class PimInterfaceConfig:
    """One `pim sm` interface; times in seconds, defaults are RFC 7761's (and VRP's)."""

    ifname: str
    address: str
    dr_priority: int = 1
    hello_period: float = 30.0
    hello_holdtime: float = 105.0
    jp_period: float = 60.0
    jp_holdtime: float = 210.0
    propagation_delay: float = 0.5
    override_interval: float = 2.5
    secondary: tuple[str, ...] = ()  # sent in the Hello's Address List (4.3.4)

    def __post_init__(self) -> None:
        _check_addr("address", self.address)
        for a in self.secondary:
            _check_addr("secondary", a)
        if not 0 <= self.dr_priority <= 0xFFFFFFFF:
            raise ValueError(f"dr_priority out of range: {self.dr_priority}")
        for name in ("hello_period", "jp_period"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive: {getattr(self, name)}")
        for name in ("hello_holdtime", "jp_holdtime"):
            if not 1 <= round(getattr(self, name)) <= HOLDTIME_FOREVER:
                raise ValueError(f"{name} must be 1..65535 s: {getattr(self, name)}")
        if not 0 <= round(self.propagation_delay * 1000) <= 0x7FFF:
            raise ValueError(f"propagation_delay must be 0..32.767 s: {self.propagation_delay}")
        if not 0 <= round(self.override_interval * 1000) <= 0xFFFF:
            raise ValueError(f"override_interval must be 0..65.535 s: {self.override_interval}")


@dataclass(frozen=True)
class PimConfig:
    """The device's PIM: its router ID, the static RP (None: none configured), interfaces."""

    router_id: str
    rp: str | None
    interfaces: tuple[PimInterfaceConfig, ...]
    spt_switch: bool = True  # a last-hop DR joins the source's tree on the first packet
    spt_threshold_kbps: int | None = None  # ... or once the source sends this fast

    def __post_init__(self) -> None:
        _check_addr("router_id", self.router_id)
        if self.rp is not None:
            _check_addr("rp", self.rp)
        names = [i.ifname for i in self.interfaces]
        if len(set(names)) != len(names):
            raise ValueError(f"interface listed twice: {names}")
        addrs = [i.address for i in self.interfaces]
        if len(set(addrs)) != len(addrs):
            raise ValueError(f"address used twice: {addrs}")


# ---- inputs and outputs ------------------------------------------------------------------


@dataclass(frozen=True)
class Membership:
    """A local (IGMP) or backup member of `group` on `ifname` appeared or went away."""

    kind: MemberKind
    group: str
    ifname: str
    present: bool

    def __post_init__(self) -> None:
        MemberKind(self.kind)
        _check_addr("group", self.group)


@dataclass(frozen=True)
class SendPim:
    """Send PIM `payload` on `ifname` to `dst` (TTL 1, our interface address as source);
    `ifname` None: a unicast (Register, Register-Stop) the kernel routes."""

    ifname: str | None
    dst: str
    payload: bytes


@dataclass(frozen=True)
class OifsChanged:
    """The outgoing interfaces for every (S,G) of `group` (empty: the group has no state)."""

    group: str
    oifs: frozenset[str]


@dataclass(frozen=True)
class NeighborChanged:
    """reason: hello (new), restart (new Generation ID), goodbye, expired, interface-down,
    shutdown."""

    ifname: str
    neighbor: str
    up: bool
    reason: str


@dataclass(frozen=True)
class DrChanged:
    ifname: str
    dr: str | None  # None while the interface is down


@dataclass(frozen=True)
class SgChanged:
    """What the MFC entry of (source, group) should be while (S,G) state exists: `iif` its
    incoming interface (None: as for the group's other sources, toward the RP) and `oifs`.
    `present` False: the (S,G) state is gone, the entry follows its group again."""

    source: str
    group: str
    iif: str | None
    oifs: frozenset[str]
    present: bool = True


@dataclass(frozen=True)
class WatchSource:
    """Tell me the route toward `source` (`source_rpf`), now and whenever it changes;
    `watch` False: no longer needed."""

    source: str
    watch: bool


@dataclass(frozen=True)
class AssertChanged:
    """The Assert state of (source or "*", group) on `ifname`: for the log."""

    source: str
    group: str
    ifname: str
    state: AssertState
    winner: str | None


Output: TypeAlias = (SendPim | OifsChanged | NeighborChanged | DrChanged | SgChanged
                     | WatchSource | AssertChanged)


# ---- snapshots ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PimCounters:
    hellos_sent: int = 0
    hellos_received: int = 0
    jp_messages_sent: int = 0
    jp_messages_received: int = 0
    joins_sent: int = 0  # (*,G) entries
    joins_received: int = 0  # (*,G) entries addressed to us and accepted
    prunes_sent: int = 0
    prunes_received: int = 0
    asserts_sent: int = 0
    asserts_received: int = 0


@dataclass(frozen=True)
class NeighborSnapshot:
    interface: str
    address: str
    uptime: float
    expires: float | None  # seconds left; None: holdtime 0xffff (never)
    holdtime: int
    dr_priority: int | None  # None: the neighbor sends no DR Priority option
    generation_id: int | None
    lan_prune_delay: LanPruneDelay | None
    secondary_addresses: tuple[str, ...]


@dataclass(frozen=True)
class InterfaceSnapshot:
    ifname: str
    address: str
    up: bool
    dr: str | None
    is_dr: bool
    dr_priority: int
    generation_id: int | None
    hello_period: float
    hello_holdtime: float
    next_hello: float | None  # seconds left
    jp_period: float
    jp_holdtime: float
    jp_override_interval: float  # effective, for the Prune-Pending Timer on a LAN
    neighbor_count: int
    counters: PimCounters
    dropped: Mapping[str, int]


@dataclass(frozen=True)
class DownstreamSnapshot:
    """One outgoing interface of a (*,G) entry and why it is one."""

    interface: str
    protocol: str  # "pim-sm" (Join state), "igmp" (local members, we are DR), "backup"
    state: DownstreamState  # NO_INFO when only members put it there
    uptime: float  # in the outgoing interfaces for this long
    expires: float | None  # the Expiry Timer; None: none running (members, or holdtime 0xffff)
    prune_pending_expires: float | None


@dataclass(frozen=True)
class StarGSnapshot:
    group: str
    rp: str | None
    rp_is_local: bool
    upstream_state: UpstreamState
    rpf_interface: str | None
    rpf_neighbor: str | None
    rpf_prime_neighbor: str | None  # RPF'(*,G): the neighbor our Joins name
    uptime: float
    join_timer: float | None  # seconds to the next periodic Join
    downstream: tuple[DownstreamSnapshot, ...]
    local_members: tuple[str, ...]  # interfaces with IGMP members (effective where DR)
    backup_members: tuple[str, ...]

    @property
    def oifs(self) -> frozenset[str]:
        return frozenset(d.interface for d in self.downstream)


@dataclass(frozen=True)
class SgSnapshot:
    source: str
    group: str
    upstream_state: UpstreamState
    spt_bit: bool
    rpf_interface: str | None  # toward the source; None: no route
    rpf_neighbor: str | None  # None: directly connected (or no route)
    uptime: float
    join_timer: float | None
    keepalive: float | None  # seconds left on the Keepalive Timer
    iif: str | None  # the MFC's incoming interface (None: toward the RP)
    oifs: tuple[str, ...]
    joined: tuple[str, ...]  # downstream (S,G) Join state
    rpt_pruned: tuple[str, ...]  # downstream (S,G,rpt) Prune state
    register_state: RegisterState = RegisterState.NO_INFO  # at the source's DR
    register_stop: float | None = None  # seconds left on the Register-Stop Timer
    registered_by: str | None = None  # at the RP: the DR whose Registers arrived


@dataclass(frozen=True)
class AssertSnapshot:
    source: str  # "*" for (*,G)
    group: str
    interface: str
    state: AssertState
    winner: str
    winner_metric: AssertMetric
    expires: float | None


@dataclass(frozen=True)
class PimSnapshot:
    router_id: str
    rp: str | None
    is_rp: bool
    rpf_interface: str | None
    rpf_neighbor: str | None
    interfaces: tuple[InterfaceSnapshot, ...]
    neighbors: tuple[NeighborSnapshot, ...]
    groups: tuple[StarGSnapshot, ...]
    dropped: Mapping[str, int]  # not attributable to an interface (unknown interface)
    sources: tuple[SgSnapshot, ...] = ()
    registers: Mapping[str, int] = field(default_factory=dict)  # Register/Stop counts
    asserts: tuple[AssertSnapshot, ...] = ()


# ---- timers ------------------------------------------------------------------------------

_Key: TypeAlias = tuple[TimerName, str, str]  # (timer, interface, group or neighbor)


class _Timers:
    """Every pending timer as an absolute deadline: a dict for lookup, a heap for order.

    Restarting or stopping a timer only touches the dict; heap entries that no longer match
    are skipped when they reach the top, and the heap is rebuilt when mostly stale.
    """

    def __init__(self) -> None:
        self._due: dict[_Key, tuple[float, int]] = {}
        self._heap: list[tuple[float, int, _Key]] = []
        self._seq = itertools.count()

    def start(self, key: _Key, deadline: float) -> None:
        seq = next(self._seq)
        self._due[key] = (deadline, seq)
        heapq.heappush(self._heap, (deadline, seq, key))
        if len(self._heap) > 2 * len(self._due) + 64:
            self._heap = [(d, s, k) for k, (d, s) in self._due.items()]
            heapq.heapify(self._heap)

    def stop(self, key: _Key) -> None:
        self._due.pop(key, None)

    def deadline(self, key: _Key) -> float | None:
        entry = self._due.get(key)
        return None if entry is None else entry[0]

    def clear(self) -> None:
        self._due.clear()
        self._heap.clear()

    def _drop_stale(self) -> None:
        heap, due = self._heap, self._due
        while heap:
            _, seq, key = heap[0]
            entry = due.get(key)
            if entry is not None and entry[1] == seq:
                return
            heapq.heappop(heap)

    def next_deadline(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> tuple[_Key, float] | None:
        """Remove and return the earliest timer with deadline <= now, if any."""
        self._drop_stale()
        if not self._heap or self._heap[0][0] > now:
            return None
        deadline, _, key = heapq.heappop(self._heap)
        del self._due[key]
        return key, deadline


# ---- internal state ----------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Neighbor:
    address: str
    since: float
    holdtime: int = DEFAULT_HELLO_HOLDTIME
    dr_priority: int | None = None
    generation_id: int | None = None
    lan_prune_delay: LanPruneDelay | None = None
    secondary: tuple[str, ...] = ()


@dataclass(eq=False, slots=True)
class _Interface:
    config: PimInterfaceConfig
    state: IfState = IfState.DOWN
    generation_id: int | None = None
    dr: str | None = None
    hello_sent: bool = False  # a Hello went out since the interface came up
    neighbors: dict[str, _Neighbor] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    drops: Counter[str] = field(default_factory=Counter)

    @property
    def name(self) -> str:
        return self.config.ifname

    @property
    def is_dr(self) -> bool:
        return self.dr is not None and self.dr == self.config.address


@dataclass(eq=False, slots=True)
class _StarG:
    group: str
    created: float
    upstream: UpstreamState = UpstreamState.NOT_JOINED
    downstream: dict[str, DownstreamState] = field(default_factory=dict)  # JOIN / PRUNE_PENDING
    local: set[str] = field(default_factory=set)
    backup: set[str] = field(default_factory=set)
    oifs: frozenset[str] = frozenset()  # as last reported in OifsChanged
    oif_since: dict[str, float] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class _SG:
    """(S,G) state: downstream (S,G) Joins and (S,G,rpt) Prunes per interface (4.5.3,
    4.5.4), the upstream (S,G) state toward the source (4.5.5) and the SPT bit."""

    source: str
    group: str
    created: float
    upstream: UpstreamState = UpstreamState.NOT_JOINED
    downstream: dict[str, DownstreamState] = field(default_factory=dict)
    rpt_pruned: set[str] = field(default_factory=set)
    rpt_pending: set[str] = field(default_factory=set)
    spt_bit: bool = False
    rpt_prune_sent: bool = False  # upstream (S,G,rpt): pruned off the shared tree (4.5.8)
    rpf: tuple[str, str | None] | None = None  # (interface, neighbor; None: connected)
    routed: bool = False  # source_rpf has answered (rpf None then means: no route)
    register: RegisterState = RegisterState.NO_INFO
    registered_by: str | None = None
    metric: int = 0  # of the route toward the source
    joined_to: _Target | None = None  # where the last (S,G) Join went
    sent: tuple[str | None, frozenset[str]] | None = None  # (iif, oifs) last reported

    @property
    def key(self) -> str:
        return f"{self.source} {self.group}"


@dataclass(slots=True)
class _Assert:
    state: AssertState
    winner: str
    metric: AssertMetric


_Target: TypeAlias = tuple[str, str]  # (interface, upstream neighbor address)
_AssertKey: TypeAlias = tuple[str, str, str]  # (source or "*", group, interface)


class PimRouter:
    """PIM-SM neighbors and (*,G) state of one device."""

    def __init__(
        self,
        config: PimConfig,
        local_addresses: frozenset[str] = frozenset(),
        rng: random.Random | None = None,
    ) -> None:
        for a in local_addresses:
            _check_addr("local address", a)
        self.config = config
        self._rng = rng if rng is not None else random.Random()
        self._local = frozenset(local_addresses) | {i.address for i in config.interfaces}
        self._is_rp = config.rp is not None and config.rp in self._local
        self._ifs = {c.ifname: _Interface(c) for c in config.interfaces}
        self._timers = _Timers()
        self._groups: dict[str, _StarG] = {}
        self._dirty: set[str] = set()
        self._jp: dict[_Target, dict[str, bool]] = {}  # queued: group -> join (True) / prune
        self._sgs: dict[tuple[str, str], _SG] = {}
        self._sg_by_group: dict[str, set[str]] = {}  # group -> sources with (S,G) state
        self._dirty_sg: set[tuple[str, str]] = set()
        # queued (S,G) entries: (group, source, rpt) -> join (True) / prune
        self._jp_sg: dict[_Target, dict[tuple[str, str, bool], bool]] = {}
        self._pending: list[Output] = []  # WatchSource, emitted with the next settle
        self._counts: Counter[str] = Counter()  # Registers and Register-Stops, either way
        self._asserts: dict[_AssertKey, _Assert] = {}
        self._rp_metric = 0  # the route toward the RP, for (*,G) Asserts
        self._need_hello: set[str] = set()  # interfaces whose next Join/Prune a Hello precedes
        self._rpf_if: str | None = None
        self._rpf_nbr: str | None = None
        self._anchor: float | None = None  # the Join refresh phase
        self._stopped = False
        self._drops: Counter[str] = Counter()

    # ---- inputs -------------------------------------------------------------------------

    def interface_up(self, ifname: str, now: float) -> list[Output]:
        """The interface is up: new Generation ID, first Hello within Triggered_Hello_Delay."""
        itf = self._itf(ifname)
        if self._stopped or itf.state is IfState.UP:
            return []
        out = self._fire_due(now)
        itf.state = check_transition(itf.state, IfState.UP)
        itf.generation_id = self._rng.getrandbits(32)
        itf.hello_sent = False
        delay = self._rng.uniform(0.0, TRIGGERED_HELLO_DELAY)
        self._timers.start((TimerName.HELLO, ifname, ""), now + delay)
        self._update_dr(itf, out)
        if ifname == self._rpf_if:
            self._rejoin(now)  # the upstream may have lost our state while we were away
        return out + self._settle(now)

    def interface_down(self, ifname: str, now: float) -> list[Output]:
        """The interface is down: its neighbors and downstream (*,G) state go."""
        itf = self._itf(ifname)
        if self._stopped or itf.state is IfState.DOWN:
            return []
        out = self._fire_due(now)
        self._take_down(itf, "interface-down", out)
        return out + self._settle(now)

    def packet_received(self, ifname: str, src: str, msg: Message, now: float) -> list[Output]:
        """A decoded PIM message from `src` arrived on `ifname`."""
        itf = self._ifs.get(ifname)
        if itf is None:
            self._drops["unknown-interface"] += 1
            return []
        if self._stopped:
            return []
        if itf.state is IfState.DOWN:
            itf.drops["down"] += 1
            return []
        out = self._fire_due(now)
        if src in self._local:
            itf.drops["own-packet"] += 1
        else:
            match msg:
                case Hello():
                    self._on_hello(itf, src, msg, now, out)
                case JoinPrune():
                    self._on_join_prune(itf, src, msg, now)
                case Register():
                    self._on_register(src, msg, now, out)
                case RegisterStop():
                    self._on_register_stop(msg, now)
                case Assert():
                    self._on_assert(itf, src, msg, now, out)
                case Unsupported():
                    itf.drops["unsupported-type"] += 1
        return out + self._settle(now)

    def local_members(self, group: str, ifname: str, present: bool, now: float) -> list[Output]:
        """IGMP members of `group` on `ifname` appeared / left (counted where we are DR)."""
        return self.update_members([Membership(MemberKind.LOCAL, group, ifname, present)], now)

    def backup_members(self, group: str, ifname: str, present: bool, now: float) -> list[Output]:
        """`group` is held / no longer held on `ifname` for the peer device (peer-backup hot):
        join upstream for it and list `ifname`, DR or not, up or not."""
        return self.update_members([Membership(MemberKind.BACKUP, group, ifname, present)], now)

    def update_members(self, changes: Iterable[Membership], now: float) -> list[Output]:
        """Many membership changes at once: their Joins and Prunes share messages."""
        changes = list(changes)
        for c in changes:
            self._itf(c.ifname)
        if self._stopped:
            return []
        out = self._fire_due(now)
        for c in changes:
            if not is_asm_group(c.group):
                continue
            g = self._groups.get(c.group)
            if g is None:
                if not c.present:
                    continue
                g = self._groups[c.group] = _StarG(c.group, now)
            members = g.local if c.kind == MemberKind.LOCAL else g.backup
            if c.present:
                members.add(c.ifname)
            else:
                members.discard(c.ifname)
            self._dirty.add(c.group)
        return out + self._settle(now)

    def rpf_changed(self, interface: str | None, neighbor: str | None, now: float,
                    metric: int = 0) -> list[Output]:
        """The route toward the RP changed: Joins go to the new neighbor, Prunes to the old.
        `metric`: the route's, for (*,G) Asserts."""
        self._rp_metric = metric
        self._check_route(interface, neighbor)
        if self._stopped:
            return []
        out = self._fire_due(now)
        old = self._rpf_target()
        self._rpf_if, self._rpf_nbr = interface, neighbor
        new = self._rpf_target()
        if old != new and not self._is_rp:
            self._anchor = None
            joined = [g.group for g in self._groups.values() if g.upstream is UpstreamState.JOINED]
            for target, join in ((new, True), (old, False)):
                if target is not None and joined:
                    queue = self._jp.setdefault(target, {})
                    for name in joined:
                        queue[name] = join
            for name in joined:
                self._restart_join_timer(name, now)
        return out + self._settle(now)

    def source_rpf(self, source: str, interface: str | None, neighbor: str | None,
                   now: float, metric: int = 0) -> list[Output]:
        """The route toward `source` (after WatchSource, or when it changed): interface None
        means no route, neighbor None a directly connected source; `metric` the route's,
        for (S,G) Asserts."""
        _check_addr("source", source)
        self._check_route(interface, neighbor)
        if self._stopped:
            return []
        out = self._fire_due(now)
        rpf = None if interface is None else (interface, neighbor)
        for sg in [sg for (src, _), sg in self._sgs.items() if src == source]:
            sg.routed = True
            sg.metric = metric
            if sg.rpf == rpf:
                self._dirty_sg.add((sg.source, sg.group))
                continue
            old = self._sg_target(sg)
            sg.rpf = rpf
            new = self._sg_target(sg)
            if sg.upstream is UpstreamState.JOINED and old != new:
                if old is not None:
                    self._jp_sg.setdefault(old, {})[(sg.group, sg.source, False)] = False
                if new is not None:
                    self._jp_sg.setdefault(new, {})[(sg.group, sg.source, False)] = True
                sg.spt_bit = False  # data must arrive on the new RPF interface again
            self._dirty_sg.add((sg.source, sg.group))
        return out + self._settle(now)

    def data_arrived(self, source: str, group: str, ifname: str | None, now: float,
                     connected: bool = False) -> list[Output]:
        """A packet from `source` to `group` reached the kernel on `ifname` with no MFC entry
        or on the wrong interface (the kernel's upcalls); `connected`: the source is on that
        interface's subnet. The source's DR starts registering (4.4.1), the RP takes
        decapsulated data (`ifname` REGISTER_IF), a last-hop DR switches to the source's
        tree (CheckSwitchToSpt, 4.5.8), and a packet on the RPF interface toward the
        source sets the SPT bit (Update_SPTbit, 4.2.2)."""
        _check_addr("source", source)
        _check_addr("group", group)
        if self._stopped or not is_asm_group(group):
            return []
        out = self._fire_due(now)
        key = (source, group)
        sg = self._sgs.get(key)
        first_hop = (connected and ifname in self._ifs and self._ifs[ifname].is_dr
                     and self.config.rp is not None and not self._is_rp)
        switch = self._switch_wanted(group) and self.config.spt_threshold_kbps is None
        if first_hop or switch or (ifname == REGISTER_IF and self._is_rp):
            if sg is None:
                sg = self._new_sg(source, group, now)
            self._timers.start((TimerName.KEEPALIVE, "", sg.key), now + KEEPALIVE_PERIOD)
            self._dirty_sg.add(key)
        if (sg is not None and sg.rpf is not None and ifname == sg.rpf[0] and not sg.spt_bit
                and self._sg_join_desired(sg)):
            sg.spt_bit = True
            self._dirty_sg.add(key)
        if ifname in self._ifs:
            self._assert_trigger(source, group, ifname, now, out)
        return out + self._settle(now)

    def rate_exceeded(self, source: str, group: str, now: float) -> list[Output]:
        """S sends to G faster than `spt_threshold_kbps` (the device measures it on the
        kernel's byte counters): a last-hop DR switches to the source's tree now."""
        _check_addr("source", source)
        _check_addr("group", group)
        if self._stopped or not is_asm_group(group):
            return []
        out = self._fire_due(now)
        if self._switch_wanted(group):
            sg = self._sgs.get((source, group)) or self._new_sg(source, group, now)
            self._timers.start((TimerName.KEEPALIVE, "", sg.key), now + KEEPALIVE_PERIOD)
            self._dirty_sg.add((source, group))
        return out + self._settle(now)

    def rate_watched_groups(self) -> set[str]:
        """Groups whose sources' rates decide the switch (a threshold is configured and we
        have receivers for them)."""
        if self.config.spt_threshold_kbps is None:
            return set()
        return {g for g in self._groups if self._switch_wanted(g)}

    def whole_packet(self, packet: bytes, now: float) -> list[Output]:
        """A data packet the kernel handed over for the register VIF: tunnelled to the RP
        in a Register while the (S,G) Register state is Join."""
        if self._stopped:
            return []
        out = self._fire_due(now)
        try:
            reg = Register(packet)
        except ValueError:
            self._drops["bad-whole-packet"] += 1
            return out
        sg = self._sgs.get((reg.source, reg.group))
        if sg is None or sg.register is not RegisterState.JOIN or self.config.rp is None:
            self._drops["not-registering"] += 1
            return out
        out.append(SendPim(None, self.config.rp, encode(reg)))
        self._counts["registers-sent"] += 1
        return out

    def data_seen(self, source: str, group: str, now: float) -> list[Output]:
        """(S,G) traffic is still flowing (the kernel's counters grew): the Keepalive Timer
        restarts if it runs."""
        if self._stopped:
            return []
        out = self._fire_due(now)
        sg = self._sgs.get((source, group))
        key = (TimerName.KEEPALIVE, "", sg.key) if sg is not None else None
        if key is not None and self._timers.deadline(key) is not None:
            self._timers.start(key, now + KEEPALIVE_PERIOD)
        return out + self._settle(now)

    def _check_route(self, interface: str | None, neighbor: str | None) -> None:
        if interface is not None:
            self._itf(interface)
        if neighbor is not None:
            _check_addr("neighbor", neighbor)

    def tick(self, now: float) -> list[Output]:
        """Fire every timer whose deadline is <= now."""
        if self._stopped:
            return []
        out = self._fire_due(now)
        return out + self._settle(now)

    def shutdown(self, now: float) -> list[Output]:
        """Stop: Prune every joined group, send goodbye Hellos (holdtime 0), drop all state."""
        if self._stopped:
            return []
        out = self._fire_due(now)
        target = self._rpf_target()
        for g in self._groups.values():
            if g.upstream is UpstreamState.JOINED:
                g.upstream = check_transition(g.upstream, UpstreamState.NOT_JOINED)
                self._timers.stop((TimerName.JOIN, "", g.group))
                if target is not None:
                    self._jp.setdefault(target, {})[g.group] = False
        for sg in self._sgs.values():
            if sg.upstream is UpstreamState.JOINED:
                sg.upstream = check_transition(sg.upstream, UpstreamState.NOT_JOINED)
                if (sgt := self._sg_target(sg)) is not None:
                    self._jp_sg.setdefault(sgt, {})[(sg.group, sg.source, False)] = False
        out += self._flush(now)
        up = [itf for itf in self._ifs.values() if itf.state is IfState.UP]
        out += [self._hello(itf, holdtime=0) for itf in up]
        for itf in up:
            self._take_down(itf, "shutdown", out)
        for g in self._groups.values():
            g.local.clear()
            g.backup.clear()
            self._dirty.add(g.group)
        self._timers.clear()  # Keepalive Timers too: every (S,G) goes
        self._dirty_sg.update(self._sgs)
        out += self._settle(now)
        self._stopped = True
        return out

    def count_drop(self, ifname: str, reason: str) -> None:
        """Count a message that did not decode (DecodeError.reason)."""
        itf = self._ifs.get(ifname)
        (itf.drops if itf is not None else self._drops)[reason] += 1

    # ---- queries ------------------------------------------------------------------------

    @property
    def is_rp(self) -> bool:
        return self._is_rp

    @property
    def stopped(self) -> bool:
        return self._stopped

    def next_deadline(self) -> float | None:
        return None if self._stopped else self._timers.next_deadline()

    def oifs(self, group: str) -> frozenset[str]:
        g = self._groups.get(group)
        return frozenset() if g is None else g.oifs

    def groups(self) -> list[str]:
        return sorted(self._groups, key=_ip_key)

    def keepalive_sources(self) -> list[tuple[str, str]]:
        """(S,G) whose Keepalive Timer runs: the kernel's counters keep it running."""
        return [k for k, sg in self._sgs.items()
                if self._timers.deadline((TimerName.KEEPALIVE, "", sg.key)) is not None]

    def dr(self, ifname: str) -> str | None:
        return self._itf(ifname).dr

    def snapshot(self, now: float) -> PimSnapshot:
        neighbors = [
            self._neighbor_snapshot(itf, n, now)
            for itf in self._ifs.values()
            for n in sorted(itf.neighbors.values(), key=lambda n: _ip_key(n.address))
        ]
        target = self._rpf_target()
        groups = [self._group_snapshot(self._groups[g], target, now) for g in self.groups()]
        return PimSnapshot(
            router_id=self.config.router_id,
            rp=self.config.rp,
            is_rp=self._is_rp,
            rpf_interface=self._rpf_if,
            rpf_neighbor=self._rpf_nbr,
            interfaces=tuple(self._interface_snapshot(itf, now) for itf in self._ifs.values()),
            neighbors=tuple(neighbors),
            groups=tuple(groups),
            dropped=dict(sorted(self._drops.items())),
            sources=tuple(self._sg_snapshot(self._sgs[k], now) for k in sorted(
                self._sgs, key=lambda k: (_ip_key(k[1]), _ip_key(k[0])))),
            registers=dict(sorted(self._counts.items())),
            asserts=tuple(
                AssertSnapshot(s, g, i, a.state, a.winner, a.metric,
                               self._left((TimerName.ASSERT, i, f"{s} {g}"), now))
                for (s, g, i), a in sorted(self._asserts.items())),
        )

    def _sg_snapshot(self, sg: _SG, now: float) -> SgSnapshot:
        iif, oifs = sg.sent if sg.sent is not None else (None, frozenset())
        return SgSnapshot(
            source=sg.source, group=sg.group, upstream_state=sg.upstream, spt_bit=sg.spt_bit,
            rpf_interface=sg.rpf[0] if sg.rpf else None,
            rpf_neighbor=sg.rpf[1] if sg.rpf else None, uptime=now - sg.created,
            join_timer=self._left((TimerName.SG_JOIN, "", sg.key), now),
            keepalive=self._left((TimerName.KEEPALIVE, "", sg.key), now),
            iif=iif, oifs=tuple(sorted(oifs)), joined=tuple(sorted(sg.downstream)),
            rpt_pruned=tuple(sorted(sg.rpt_pruned)), register_state=sg.register,
            register_stop=self._left((TimerName.REGISTER_STOP, "", sg.key), now),
            registered_by=sg.registered_by)


    def _left(self, key: _Key, now: float) -> float | None:
        d = self._timers.deadline(key)
        return None if d is None else max(0.0, d - now)

    def _neighbor_snapshot(self, itf: _Interface, n: _Neighbor, now: float) -> NeighborSnapshot:
        return NeighborSnapshot(
            interface=itf.name,
            address=n.address,
            uptime=now - n.since,
            expires=self._left((TimerName.NEIGHBOR, itf.name, n.address), now),
            holdtime=n.holdtime,
            dr_priority=n.dr_priority,
            generation_id=n.generation_id,
            lan_prune_delay=n.lan_prune_delay,
            secondary_addresses=n.secondary,
        )

    def _interface_snapshot(self, itf: _Interface, now: float) -> InterfaceSnapshot:
        c, cnt = itf.config, itf.counts
        return InterfaceSnapshot(
            ifname=c.ifname,
            address=c.address,
            up=itf.state is IfState.UP,
            dr=itf.dr,
            is_dr=itf.is_dr,
            dr_priority=c.dr_priority,
            generation_id=itf.generation_id,
            hello_period=c.hello_period,
            hello_holdtime=c.hello_holdtime,
            next_hello=self._left((TimerName.HELLO, c.ifname, ""), now),
            jp_period=c.jp_period,
            jp_holdtime=c.jp_holdtime,
            jp_override_interval=self._jp_override_interval(itf),
            neighbor_count=len(itf.neighbors),
            counters=PimCounters(
                hellos_sent=cnt["hellos-sent"],
                hellos_received=cnt["hellos-received"],
                jp_messages_sent=cnt["jp-sent"],
                jp_messages_received=cnt["jp-received"],
                joins_sent=cnt["joins-sent"],
                joins_received=cnt["joins-received"],
                prunes_sent=cnt["prunes-sent"],
                prunes_received=cnt["prunes-received"],
                asserts_sent=cnt["asserts-sent"],
                asserts_received=cnt["asserts-received"],
            ),
            dropped=dict(sorted(itf.drops.items())),
        )

    def _group_snapshot(self, g: _StarG, target: _Target | None, now: float) -> StarGSnapshot:
        downstream = []
        for ifname in sorted(g.oifs):
            state = g.downstream.get(ifname, DownstreamState.NO_INFO)
            if state is not DownstreamState.NO_INFO:
                protocol = "pim-sm"
            elif ifname in g.local and self._ifs[ifname].is_dr:
                protocol = "igmp"
            else:
                protocol = "backup"
            downstream.append(
                DownstreamSnapshot(
                    interface=ifname,
                    protocol=protocol,
                    state=state,
                    uptime=now - g.oif_since.get(ifname, now),
                    expires=self._left((TimerName.EXPIRY, ifname, g.group), now),
                    prune_pending_expires=self._left(
                        (TimerName.PRUNE_PENDING, ifname, g.group), now
                    ),
                )
            )
        upstream = not self._is_rp
        return StarGSnapshot(
            group=g.group,
            rp=self.config.rp,
            rp_is_local=self._is_rp,
            upstream_state=g.upstream,
            rpf_interface=self._rpf_if if upstream else None,
            rpf_neighbor=self._rpf_nbr if upstream else None,
            rpf_prime_neighbor=target[1] if upstream and target is not None else None,
            uptime=now - g.created,
            join_timer=self._left((TimerName.JOIN, "", g.group), now),
            downstream=tuple(downstream),
            local_members=tuple(sorted(g.local)),
            backup_members=tuple(sorted(g.backup)),
        )

    # ---- interfaces, Hellos and neighbors (RFC 7761 4.3) --------------------------------

    def _itf(self, ifname: str) -> _Interface:
        itf = self._ifs.get(ifname)
        if itf is None:
            raise ValueError(f"not a PIM interface: {ifname!r}")
        return itf

    def _take_down(self, itf: _Interface, reason: str, out: list[Output]) -> None:
        for n in list(itf.neighbors.values()):
            self._remove_neighbor(itf, n, reason, out)
        itf.state = check_transition(itf.state, IfState.DOWN)
        itf.generation_id = None
        itf.hello_sent = False
        self._timers.stop((TimerName.HELLO, itf.name, ""))
        self._timers.stop((TimerName.TRIGGERED_HELLO, itf.name, ""))
        self._update_dr(itf, out)
        for g in self._groups.values():
            if itf.name in g.downstream:
                self._downstream_no_info(g, itf.name)
        for sg in self._sgs.values():
            if itf.name in sg.downstream:
                self._sg_no_info(sg, itf.name)
            self._rpt_clear(sg, itf.name)
        for key in [k for k in self._asserts if k[2] == itf.name]:
            self._assert_gone(key)

    def _hello(self, itf: _Interface, holdtime: int | None = None) -> SendPim:
        c = itf.config
        hello = Hello(
            holdtime=round(c.hello_holdtime) if holdtime is None else holdtime,
            lan_prune_delay=LanPruneDelay(
                round(c.propagation_delay * 1000), round(c.override_interval * 1000)
            ),
            dr_priority=c.dr_priority,
            generation_id=itf.generation_id,
            addresses=c.secondary,
        )
        itf.counts["hellos-sent"] += 1
        itf.hello_sent = True
        self._timers.stop((TimerName.TRIGGERED_HELLO, itf.name, ""))
        return SendPim(itf.name, ALL_PIM_ROUTERS, encode(hello))

    def _trigger_hello(self, itf: _Interface, now: float) -> None:
        """A Hello within rand(0, Triggered_Hello_Delay); the periodic one keeps its phase."""
        key = (TimerName.TRIGGERED_HELLO, itf.name, "")
        at = now + self._rng.uniform(0.0, TRIGGERED_HELLO_DELAY)
        current = self._timers.deadline(key)
        if current is None or at < current:
            self._timers.start(key, at)

    def _on_hello_timer(self, itf: _Interface, deadline: float, now: float) -> SendPim:
        period = itf.config.hello_period
        nxt = deadline + period
        while nxt <= now:  # woken late: skip missed slots, keep the phase
            nxt += period
        self._timers.start((TimerName.HELLO, itf.name, ""), nxt)
        return self._hello(itf)

    def _on_hello(
        self, itf: _Interface, src: str, hello: Hello, now: float, out: list[Output]
    ) -> None:
        itf.counts["hellos-received"] += 1
        holdtime = DEFAULT_HELLO_HOLDTIME if hello.holdtime is None else hello.holdtime
        n = itf.neighbors.get(src)
        if holdtime == 0:  # goodbye
            if n is not None:
                self._remove_neighbor(itf, n, "goodbye", out)
                self._update_dr(itf, out)
            return
        fresh = False
        if n is None:
            n = itf.neighbors[src] = _Neighbor(src, now)
            out.append(NeighborChanged(itf.name, src, True, "hello"))
            fresh = True
        elif (
            hello.generation_id is not None
            and n.generation_id is not None
            and hello.generation_id != n.generation_id
        ):
            n.since = now
            out.append(NeighborChanged(itf.name, src, True, "restart"))
            fresh = True
        n.holdtime = holdtime
        n.dr_priority = hello.dr_priority
        n.generation_id = hello.generation_id
        n.lan_prune_delay = hello.lan_prune_delay
        n.secondary = hello.addresses
        key = (TimerName.NEIGHBOR, itf.name, src)
        if holdtime == HOLDTIME_FOREVER:
            self._timers.stop(key)
        else:
            self._timers.start(key, now + holdtime)
        self._update_dr(itf, out)
        if fresh:
            self._trigger_hello(itf, now)
            if self._is_rpf_neighbor(itf, n):
                self._need_hello.add(itf.name)
                self._rejoin(now)
            for sg in self._sgs.values():
                if sg.upstream is UpstreamState.JOINED and \
                        self._sg_target(sg) == (itf.name, n.address):
                    self._need_hello.add(itf.name)
                    self._jp_sg.setdefault((itf.name, n.address), {})[
                        (sg.group, sg.source, False)] = True

    def _remove_neighbor(
        self, itf: _Interface, n: _Neighbor, reason: str, out: list[Output]
    ) -> None:
        del itf.neighbors[n.address]
        self._timers.stop((TimerName.NEIGHBOR, itf.name, n.address))
        out.append(NeighborChanged(itf.name, n.address, False, reason))

    def _elect_dr(self, itf: _Interface) -> str | None:
        """RFC 7761 4.3.2: highest DR priority, then highest address; addresses only when a
        neighbor does not send the DR Priority option."""
        if itf.state is IfState.DOWN:
            return None
        by_priority = all(n.dr_priority is not None for n in itf.neighbors.values())
        candidates = [(itf.config.dr_priority, itf.config.address)]
        candidates += [(n.dr_priority or 0, n.address) for n in itf.neighbors.values()]
        if by_priority:
            return max(candidates, key=lambda c: (c[0], _ip_key(c[1])))[1]
        return max(candidates, key=lambda c: _ip_key(c[1]))[1]

    def _update_dr(self, itf: _Interface, out: list[Output]) -> None:
        dr = self._elect_dr(itf)
        if dr == itf.dr:
            return
        itf.dr = dr
        out.append(DrChanged(itf.name, dr))
        for g in self._groups.values():
            if itf.name in g.local:
                self._dirty.add(g.group)

    def _effective_delays(self, itf: _Interface) -> tuple[float, float]:
        """RFC 7761 4.3.3: Effective_Propagation_Delay(I), Effective_Override_Interval(I)."""
        lpds = [n.lan_prune_delay for n in itf.neighbors.values()]
        if any(lpd is None for lpd in lpds):
            return PROPAGATION_DELAY_DEFAULT, OVERRIDE_INTERVAL_DEFAULT
        delay, override = itf.config.propagation_delay, itf.config.override_interval
        for lpd in lpds:
            assert lpd is not None
            delay = max(delay, lpd.propagation_delay_ms / 1000)
            override = max(override, lpd.override_interval_ms / 1000)
        return delay, override

    def _jp_override_interval(self, itf: _Interface) -> float:
        return sum(self._effective_delays(itf))

    # ---- downstream (*,G) (RFC 7761 4.5.2) ----------------------------------------------

    def _on_join_prune(self, itf: _Interface, src: str, jp: JoinPrune, now: float) -> None:
        itf.counts["jp-received"] += 1
        if jp.upstream_neighbor not in (itf.config.address, *itf.config.secondary):
            self._see_join_prune(itf, jp, now)
            return
        if src not in itf.neighbors:
            itf.drops["not-neighbor"] += 1
            return
        for entry in jp.groups:
            reason = self._check_group(entry)
            if reason is not None:
                itf.drops[reason] += 1
                continue
            star_join, rpt_pruned = False, set()
            for join, sources in ((True, entry.joins), (False, entry.prunes)):
                for s in sources:
                    kind, reason = self._classify(entry.group, s)
                    if reason is not None:
                        itf.drops[reason] += 1
                        continue
                    itf.counts["joins-received" if join else "prunes-received"] += 1
                    if kind == "*" and join:
                        star_join = True
                        self._downstream_join(itf, entry.group, jp.holdtime, now)
                    elif kind == "*":
                        self._downstream_prune(itf, entry.group, now)
                    elif kind == "sg" and join:
                        self._sg_downstream_join(itf, s.address, entry.group, jp.holdtime, now)
                    elif kind == "sg":
                        self._sg_downstream_prune(itf, s.address, entry.group, now)
                    elif join:
                        self._rpt_join(itf, s.address, entry.group)
                    else:
                        rpt_pruned.add(s.address)
                        self._rpt_prune(itf, s.address, entry.group, jp.holdtime, now)
            if star_join:  # 4.5.4 End of Message: a (*,G) Join ends rpt prunes it omits
                for source in list(self._sg_by_group.get(entry.group, ())):
                    if source not in rpt_pruned:
                        self._rpt_join(itf, source, entry.group)

    @staticmethod
    def _check_group(entry: GroupEntry) -> str | None:
        if entry.mask_len != 32 or entry.bidir:
            return "bad-group"
        key = _ip_key(entry.group)
        if key >> 28 != 0xE or key >> 8 == 0xE00000:  # not multicast, or link-local
            return "bad-group"
        return None

    def _check_star_g(self, s: Source) -> str | None:
        if not s.wildcard:
            return "not-star-g"
        if not s.rpt:
            return "bad-source-flags"  # W without R has no meaning (RFC 7761 4.9.5.1)
        if s.address != self.config.rp:
            return "wrong-rp"  # RFC 7761 4.5.2: not our RP(G), drop silently
        return None

    def _classify(self, group: str, s: Source) -> tuple[str, str | None]:
        """("*" | "sg" | "rpt", drop reason or None) of one encoded source."""
        if s.wildcard:
            if not is_asm_group(group):
                return "*", "ssm-group"
            return "*", self._check_star_g(s)
        if s.mask_len != 32:
            return "sg", "bad-source"
        key = _ip_key(s.address)
        if key >> 28 >= 0xE or key >> 24 in (0, 127):
            return "sg", "bad-source"
        if s.rpt:
            return "rpt", None if is_asm_group(group) else "ssm-group"
        return "sg", None

    def _downstream_join(self, itf: _Interface, group: str, holdtime: int, now: float) -> None:
        g = self._groups.get(group)
        if g is None:
            g = self._groups[group] = _StarG(group, now)
        ifname = itf.name
        et = (TimerName.EXPIRY, ifname, group)
        deadline = None if holdtime == HOLDTIME_FOREVER else now + holdtime
        state = g.downstream.get(ifname, DownstreamState.NO_INFO)
        if state is DownstreamState.NO_INFO:
            if deadline is not None:
                self._timers.start(et, deadline)
        else:
            # Expiry Timer = max(its current value, holdtime); stop the Prune-Pending Timer
            self._timers.stop((TimerName.PRUNE_PENDING, ifname, group))
            current = self._timers.deadline(et)
            if current is not None:
                if deadline is None:
                    self._timers.stop(et)
                elif deadline > current:
                    self._timers.start(et, deadline)
        g.downstream[ifname] = check_transition(state, DownstreamState.JOIN)
        self._dirty.add(group)

    def _downstream_prune(self, itf: _Interface, group: str, now: float) -> None:
        g = self._groups.get(group)
        if g is None or g.downstream.get(itf.name) is not DownstreamState.JOIN:
            return  # NoInfo and Prune-Pending: nothing to do
        g.downstream[itf.name] = check_transition(
            DownstreamState.JOIN, DownstreamState.PRUNE_PENDING
        )
        if len(itf.neighbors) > 1:  # others on the LAN may override
            at = now + self._jp_override_interval(itf)
            self._timers.start((TimerName.PRUNE_PENDING, itf.name, group), at)
        else:  # Prune-Pending Timer 0: point-to-point, the prune takes effect at once
            self._downstream_no_info(g, itf.name)

    def _downstream_no_info(self, g: _StarG, ifname: str) -> None:
        state = g.downstream.pop(ifname)
        check_transition(state, DownstreamState.NO_INFO)
        self._timers.stop((TimerName.EXPIRY, ifname, g.group))
        self._timers.stop((TimerName.PRUNE_PENDING, ifname, g.group))
        self._dirty.add(g.group)

    def _on_prune_pending_timer(self, ifname: str, group: str) -> None:
        g = self._groups[group]
        self._downstream_no_info(g, ifname)
        itf = self._ifs[ifname]
        if len(itf.neighbors) > 1:  # PruneEcho(*,G): a Prune to ourselves
            self._jp.setdefault((ifname, itf.config.address), {})[group] = False

    # ---- (S,G) and (S,G,rpt) downstream (RFC 7761 4.5.3, 4.5.4) -------------------------

    def _new_sg(self, source: str, group: str, now: float) -> _SG:
        sibling = next((sg for (src, _), sg in self._sgs.items() if src == source), None)
        sg = self._sgs[(source, group)] = _SG(source, group, now)
        self._sg_by_group.setdefault(group, set()).add(source)
        if sibling is None:
            self._pending.append(WatchSource(source, True))
        else:  # the source is watched already: its route is known (or about to be)
            sg.rpf, sg.routed, sg.metric = sibling.rpf, sibling.routed, sibling.metric
        return sg

    def _sg_downstream_join(self, itf: _Interface, source: str, group: str, holdtime: int,
                            now: float) -> None:
        sg = self._sgs.get((source, group)) or self._new_sg(source, group, now)
        et = (TimerName.SG_EXPIRY, itf.name, sg.key)
        deadline = None if holdtime == HOLDTIME_FOREVER else now + holdtime
        state = sg.downstream.get(itf.name, DownstreamState.NO_INFO)
        self._timers.stop((TimerName.SG_PRUNE_PENDING, itf.name, sg.key))
        current = self._timers.deadline(et)
        if deadline is None:
            self._timers.stop(et)
        elif state is DownstreamState.NO_INFO or (current is not None and deadline > current):
            self._timers.start(et, deadline)
        sg.downstream[itf.name] = check_transition(state, DownstreamState.JOIN)
        self._dirty_sg.add((source, group))

    def _sg_downstream_prune(self, itf: _Interface, source: str, group: str,
                             now: float) -> None:
        sg = self._sgs.get((source, group))
        if sg is None or sg.downstream.get(itf.name) is not DownstreamState.JOIN:
            return
        sg.downstream[itf.name] = check_transition(
            DownstreamState.JOIN, DownstreamState.PRUNE_PENDING)
        if len(itf.neighbors) > 1:
            at = now + self._jp_override_interval(itf)
            self._timers.start((TimerName.SG_PRUNE_PENDING, itf.name, sg.key), at)
        else:
            self._sg_no_info(sg, itf.name)

    def _sg_no_info(self, sg: _SG, ifname: str) -> None:
        check_transition(sg.downstream.pop(ifname), DownstreamState.NO_INFO)
        self._timers.stop((TimerName.SG_EXPIRY, ifname, sg.key))
        self._timers.stop((TimerName.SG_PRUNE_PENDING, ifname, sg.key))
        self._dirty_sg.add((sg.source, sg.group))

    def _rpt_prune(self, itf: _Interface, source: str, group: str, holdtime: int,
                   now: float) -> None:
        """Prune(S,G,rpt): `itf` leaves S's share of the (*,G) tree, at once on a
        point-to-point link, after the override interval on a LAN."""
        sg = self._sgs.get((source, group)) or self._new_sg(source, group, now)
        if holdtime != HOLDTIME_FOREVER:
            self._timers.start((TimerName.RPT_EXPIRY, itf.name, sg.key), now + holdtime)
        if itf.name in sg.rpt_pruned:
            return
        if len(itf.neighbors) > 1:
            if itf.name not in sg.rpt_pending:
                sg.rpt_pending.add(itf.name)
                self._timers.start((TimerName.RPT_PRUNE_PENDING, itf.name, sg.key),
                                   now + self._jp_override_interval(itf))
        else:
            sg.rpt_pruned.add(itf.name)
        self._dirty_sg.add((source, group))

    def _rpt_join(self, itf: _Interface, source: str, group: str) -> None:
        sg = self._sgs.get((source, group))
        if sg is not None:
            self._rpt_clear(sg, itf.name)

    def _rpt_clear(self, sg: _SG, ifname: str) -> None:
        if ifname in sg.rpt_pruned or ifname in sg.rpt_pending:
            sg.rpt_pruned.discard(ifname)
            sg.rpt_pending.discard(ifname)
            self._timers.stop((TimerName.RPT_EXPIRY, ifname, sg.key))
            self._timers.stop((TimerName.RPT_PRUNE_PENDING, ifname, sg.key))
            self._dirty_sg.add((sg.source, sg.group))

    # ---- upstream (S,G) (RFC 7761 4.5.5, 4.5.8) ------------------------------------------

    def _switch_wanted(self, group: str) -> bool:
        """SwitchToSptDesired with local receivers: members where we are DR, or held for
        the peer device (peer-backup hot), and an SPT switch not disabled."""
        g = self._groups.get(group)
        if not self.config.spt_switch or self._is_rp or g is None:
            return False
        return bool(g.backup) or any(self._ifs[i].is_dr for i in g.local)

    def _sg_target(self, sg: _SG) -> _Target | None:
        """(RPF interface, RPF'(S,G)): the next hop toward S, or a neighbor listing it."""
        if sg.rpf is None or sg.rpf[1] is None:
            return None
        ifname, nbr = sg.rpf
        lost = self._asserts.get((sg.source, sg.group, ifname))
        if lost is not None and lost.state is AssertState.LOSER:
            return ifname, lost.winner  # RPF'(S,G) is the Assert winner (4.5.5)
        for n in self._ifs[ifname].neighbors.values():
            if nbr in n.secondary:
                return ifname, n.address
        return ifname, nbr

    def _sg_olists_before_asserts(self, sg: _SG) -> tuple[frozenset[str], frozenset[str]]:
        """(joins(S,G), joins(*,G) and members less the (S,G,rpt) Prunes)."""
        g = self._groups.get(sg.group)
        inherited = self._olist(g) - sg.rpt_pruned if g is not None else frozenset()
        return frozenset(sg.downstream), frozenset(inherited)

    def _sg_olists(self, sg: _SG) -> tuple[frozenset[str], frozenset[str]]:
        """(immediate_olist(S,G), inherited_olist(S,G,rpt)) as 4.1.6 defines them."""
        immediate, inherited = self._sg_olists_before_asserts(sg)
        lost = self._lost(sg.source, sg.group)
        won = {k[2] for k, a in self._asserts.items()
               if k[:2] == (sg.source, sg.group) and a.state is AssertState.WINNER}
        inherited -= self._lost("*", sg.group) - won  # an (S,G) win overrides a (*,G) loss
        return immediate - lost, inherited - lost

    def _sg_join_desired(self, sg: _SG) -> bool:
        immediate, inherited = self._sg_olists(sg)
        kat = self._timers.deadline((TimerName.KEEPALIVE, "", sg.key)) is not None
        return bool(immediate) or (kat and bool(inherited | immediate))

    def _settle_sg(self, key: tuple[str, str], now: float, out: list[Output]) -> None:
        sg = self._sgs.get(key)
        if sg is None:
            return
        immediate, inherited = self._sg_olists(sg)
        target = self._sg_target(sg)
        connected = sg.rpf is not None and sg.rpf[1] is None
        desired = self._sg_join_desired(sg) and not connected  # no upstream at the source
        if desired and not sg.spt_bit and target is not None and target == self._rpf_target():
            # Update_SPTbit (4.2.2): S's packets arrive where the shared tree's do, from the
            # same neighbor; the kernel reports no packet there, its MFC input is right
            sg.spt_bit = True
        name = (sg.group, sg.source, False)
        if desired and sg.upstream is UpstreamState.NOT_JOINED:
            sg.upstream = check_transition(sg.upstream, UpstreamState.JOINED)
            if target is not None:
                self._jp_sg.setdefault(target, {})[name] = True
        elif not desired and sg.upstream is UpstreamState.JOINED:
            sg.upstream = check_transition(sg.upstream, UpstreamState.NOT_JOINED)
            sg.spt_bit = False
            if target is not None:
                self._jp_sg.setdefault(target, {})[name] = False
        iif = sg.rpf[0] if sg.rpf is not None and (sg.spt_bit or connected) else None
        if self._is_rp and not sg.spt_bit and not connected:
            iif = REGISTER_IF  # decapsulated Registers until the source's tree delivers
        self._update_register(sg, connected)
        oifs = immediate | inherited
        if sg.register is RegisterState.JOIN:
            oifs |= {REGISTER_IF}
        if sg.routed and (iif, oifs) != sg.sent:
            sg.sent = (iif, oifs)
            out.append(SgChanged(sg.source, sg.group, iif, oifs))
        if sg.upstream is UpstreamState.JOINED and target is not None and \
                target != sg.joined_to:  # RPF'(S,G) moved (an Assert winner): Join it now
            self._jp_sg.setdefault(target, {})[name] = True
        sg.joined_to = target if sg.upstream is UpstreamState.JOINED else None
        jt = (TimerName.SG_JOIN, "", sg.key)
        if sg.upstream is UpstreamState.JOINED and target is not None:
            if self._timers.deadline(jt) is None:
                self._timers.start(jt, now + self._ifs[target[0]].config.jp_period)
        else:
            self._timers.stop(jt)
        g = self._groups.get(sg.group)
        star = self._rpf_target()
        prune_rpt = (g is not None and g.upstream is UpstreamState.JOINED and star is not None
                     and (not inherited or (sg.spt_bit and target != star)))
        if prune_rpt != sg.rpt_prune_sent and star is not None:
            sg.rpt_prune_sent = prune_rpt
            self._jp_sg.setdefault(star, {})[(sg.group, sg.source, True)] = not prune_rpt
        if (not sg.downstream and not sg.rpt_pruned and not sg.rpt_pending
                and sg.upstream is UpstreamState.NOT_JOINED
                and not any(k[:2] == key for k in self._asserts)
                and self._timers.deadline((TimerName.KEEPALIVE, "", sg.key)) is None):
            self._delete_sg(sg, out)

    def _delete_sg(self, sg: _SG, out: list[Output]) -> None:
        del self._sgs[(sg.source, sg.group)]
        sources = self._sg_by_group[sg.group]
        sources.discard(sg.source)
        if not sources:
            del self._sg_by_group[sg.group]
        for name in (TimerName.SG_JOIN, TimerName.KEEPALIVE, TimerName.REGISTER_STOP):
            self._timers.stop((name, "", sg.key))
        if sg.sent is not None:
            out.append(SgChanged(sg.source, sg.group, None, frozenset(), present=False))
        if not any(src == sg.source for src, _ in self._sgs):
            out.append(WatchSource(sg.source, False))

    # ---- Registers (RFC 7761 4.4) --------------------------------------------------------

    def _update_register(self, sg: _SG, connected: bool) -> None:
        """CouldRegister(S,G) (4.4.1): DR on the source's subnet, data lately, an RP that is
        not us. Join when it starts to hold, NoInfo when it stops."""
        could = (connected and sg.rpf is not None and self._ifs[sg.rpf[0]].is_dr
                 and self.config.rp is not None and not self._is_rp
                 and self._timers.deadline((TimerName.KEEPALIVE, "", sg.key)) is not None)
        if could and sg.register is RegisterState.NO_INFO:
            sg.register = check_transition(sg.register, RegisterState.JOIN)
        elif not could and sg.register is not RegisterState.NO_INFO:
            sg.register = check_transition(sg.register, RegisterState.NO_INFO)
            self._timers.stop((TimerName.REGISTER_STOP, "", sg.key))

    def _on_register(self, src: str, reg: Register, now: float, out: list[Output]) -> None:
        """At the RP (4.4.2): keep (S,G) alive and join toward the source; say Stop once the
        source's tree delivers or nobody wants G. The kernel decapsulates the data itself."""
        self._counts["registers-received"] += 1
        group, source = reg.group, reg.source
        if not is_asm_group(group) or not self._is_rp or reg.border:
            self._register_stop(src, group, source, out)
            return
        sg = self._sgs.get((source, group)) or self._new_sg(source, group, now)
        sg.registered_by = src
        immediate, inherited = self._sg_olists(sg)
        stop = sg.spt_bit or not (immediate | inherited)
        if stop:
            self._register_stop(src, group, source, out)
        period = RP_KEEPALIVE_PERIOD if stop else KEEPALIVE_PERIOD
        self._timers.start((TimerName.KEEPALIVE, "", sg.key), now + period)
        self._dirty_sg.add((source, group))

    def _register_stop(self, dst: str, group: str, source: str, out: list[Output]) -> None:
        self._counts["register-stops-sent"] += 1
        out.append(SendPim(None, dst, encode(RegisterStop(group, source))))

    def _on_register_stop(self, stop: RegisterStop, now: float) -> None:
        """At the DR: Registers off for Register_Suppression_Time (+-50%, less the probe)."""
        self._counts["register-stops-received"] += 1
        for src in list(self._sg_by_group.get(stop.group, ())):
            if stop.source not in (src, "0.0.0.0"):
                continue
            sg = self._sgs[(src, stop.group)]
            if sg.register in (RegisterState.JOIN, RegisterState.JOIN_PENDING):
                sg.register = check_transition(sg.register, RegisterState.PRUNE)
                at = now + self._rng.uniform(0.5, 1.5) * REGISTER_SUPPRESSION_TIME \
                    - REGISTER_PROBE_TIME
                self._timers.start((TimerName.REGISTER_STOP, "", sg.key), at)
                self._dirty_sg.add((src, stop.group))

    def _on_register_stop_timer(self, sg: _SG, now: float) -> None:
        if sg.register is RegisterState.PRUNE:  # probe: does the RP still say Stop?
            sg.register = check_transition(sg.register, RegisterState.JOIN_PENDING)
            self._timers.start((TimerName.REGISTER_STOP, "", sg.key), now + REGISTER_PROBE_TIME)
            if self.config.rp is not None:
                self._counts["null-registers-sent"] += 1
                self._pending.append(SendPim(None, self.config.rp, encode(
                    Register.null_register(sg.source, sg.group))))
        elif sg.register is RegisterState.JOIN_PENDING:  # no Stop came back: register again
            sg.register = check_transition(sg.register, RegisterState.JOIN)

    # ---- Asserts (RFC 7761 4.6) ----------------------------------------------------------

    def _lost(self, source: str, group: str) -> frozenset[str]:
        """Interfaces where we lost the (source, group) Assert ("*" for (*,G))."""
        if not self._asserts:
            return frozenset()
        return frozenset(k[2] for k, a in self._asserts.items()
                         if k[:2] == (source, group) and a.state is AssertState.LOSER)

    def _my_metric(self, source: str, group: str, ifname: str) -> AssertMetric:
        """my_assert_metric (4.6.3): the source's tree's if we forward S on `ifname` from
        it, else the RP's tree's if we forward G there, else infinite."""
        sg = self._sgs.get((source, group)) if source != "*" else None
        if (sg is not None and sg.rpf is not None and sg.rpf[0] != ifname
                and (sg.spt_bit or sg.rpf[1] is None)):
            immediate, inherited = self._sg_olists_before_asserts(sg)
            if ifname in immediate | inherited:
                preference = 0 if sg.rpf[1] is None else ROUTE_PREFERENCE
                return AssertMetric(False, preference, min(sg.metric, 0xFFFFFFFF))
        g = self._groups.get(group)
        if g is not None and ifname in self._olist(g):
            if self._is_rp:
                return AssertMetric(True, 0, 0)  # the RP's own tree
            if ifname != self._rpf_if:
                return AssertMetric(True, ROUTE_PREFERENCE, min(self._rp_metric, 0xFFFFFFFF))
        return INFINITE_ASSERT

    def _send_assert(self, itf: _Interface, source: str, group: str, metric: AssertMetric,
                     out: list[Output]) -> None:
        itf.counts["asserts-sent"] += 1
        wire_source = "0.0.0.0" if source == "*" else source
        out.append(SendPim(itf.name, ALL_PIM_ROUTERS, encode(Assert(group, wire_source,
                                                                    metric))))

    def _assert_trigger(self, source: str, group: str, ifname: str, now: float,
                        out: list[Output]) -> None:
        """A packet of (S,G) arrived on an interface we forward it onto: another router
        forwards there too. We assert, with our metric, and hold as winner meanwhile."""
        sg = self._sgs.get((source, group))
        if sg is not None and sg.rpf is not None and ifname == sg.rpf[0]:
            return  # S's packets come in here: upstream, not a second forwarder
        if sg is not None and (sg.spt_bit or (sg.rpf is not None and sg.rpf[1] is None)):
            metric = self._my_metric(source, group, ifname)  # CouldAssert(S,G,I) only
            if metric.rpt:
                return
        else:  # on the RP's tree: the (*,G) Assert (4.6.2)
            metric = self._my_metric("*", group, ifname)
        if metric.infinite:
            return
        key = (source if not metric.rpt else "*", group, ifname)
        if key in self._asserts:
            return  # the Assert Timer refreshes a standing state
        itf = self._ifs[ifname]
        self._send_assert(itf, source, group, metric, out)
        self._set_assert(key, _Assert(AssertState.WINNER, itf.config.address, metric))
        self._timers.start((TimerName.ASSERT, ifname, f"{key[0]} {group}"),
                           now + ASSERT_TIME - ASSERT_OVERRIDE_INTERVAL)

    def _on_assert(self, itf: _Interface, src: str, msg: Assert, now: float,
                   out: list[Output]) -> None:
        """4.6.1/4.6.2: the better metric (then the higher address) forwards; the loser
        takes the interface out of its outgoing list and sends its Joins to the winner."""
        itf.counts["asserts-received"] += 1
        if not is_asm_group(msg.group) and not msg.group.startswith("232."):
            itf.drops["bad-group"] += 1
            return
        rpt = msg.metric.rpt
        if not rpt and msg.source == "0.0.0.0":
            itf.drops["bad-source"] += 1
            return
        if rpt and msg.source != "0.0.0.0":
            self._answer_for_source(itf, msg.source, msg.group, now, out)
        source = "*" if rpt else msg.source
        key = (source, msg.group, itf.name)
        mine = self._my_metric(source, msg.group, itf.name)
        theirs = msg.metric.key(src)
        better = theirs < mine.key(itf.config.address)
        current = self._asserts.get(key)
        timer = (TimerName.ASSERT, itf.name, f"{source} {msg.group}")
        self._dirty_assert(source, msg.group)
        if current is not None and current.state is AssertState.LOSER:
            if src == current.winner:
                if msg.metric.infinite or not better:  # AssertCancel, or worse
                    self._assert_gone(key)
                else:
                    current.metric = msg.metric
                    self._timers.start(timer, now + ASSERT_TIME)
            elif theirs < current.metric.key(current.winner):
                self._set_assert(key, _Assert(AssertState.LOSER, src, msg.metric))
                self._timers.start(timer, now + ASSERT_TIME)
            return
        if msg.metric.infinite:
            return  # an AssertCancel from a router we had not lost to
        if better or mine.infinite:
            state = current.state if current is not None else AssertState.NO_INFO
            check_transition(state, AssertState.LOSER)
            self._set_assert(key, _Assert(AssertState.LOSER, src, msg.metric))
            self._timers.start(timer, now + ASSERT_TIME)
            if source != "*" and (source, msg.group) not in self._sgs:
                self._new_sg(source, msg.group, now)  # the MFC entry must leave it out
                self._dirty_assert(source, msg.group)
        else:  # ours is better: say so, and forward
            self._send_assert(itf, msg.source if not rpt else "*", msg.group, mine, out)
            self._set_assert(key, _Assert(AssertState.WINNER, itf.config.address, mine))
            self._timers.start(timer, now + ASSERT_TIME - ASSERT_OVERRIDE_INTERVAL)

    def _answer_for_source(self, itf: _Interface, source: str, group: str, now: float,
                           out: list[Output]) -> None:
        """4.6.1 "Receive Assert with RPTbit set and CouldAssert(S,G,I)": a (*,G) Assert
        naming S where we forward S from its own tree. Our (S,G) Assert beats any RPT one."""
        mine = self._my_metric(source, group, itf.name)
        key = (source, group, itf.name)
        if mine.rpt or mine.infinite or key in self._asserts:
            return
        self._send_assert(itf, source, group, mine, out)
        self._set_assert(key, _Assert(AssertState.WINNER, itf.config.address, mine))
        self._timers.start((TimerName.ASSERT, itf.name, f"{source} {group}"),
                           now + ASSERT_TIME - ASSERT_OVERRIDE_INTERVAL)

    def _on_assert_timer(self, ifname: str, key: str, now: float, out: list[Output]) -> None:
        source, group = key.split(" ")
        akey = (source, group, ifname)
        state = self._asserts.get(akey)
        if state is None:
            return
        if state.state is AssertState.WINNER:
            metric = self._my_metric(source, group, ifname)
            if not metric.infinite:
                self._send_assert(self._ifs[ifname], source, group, metric, out)
                state.metric = metric
                self._timers.start((TimerName.ASSERT, ifname, key),
                                   now + ASSERT_TIME - ASSERT_OVERRIDE_INTERVAL)
                return
        self._assert_gone(akey)

    def _set_assert(self, key: _AssertKey, state: _Assert) -> None:
        old = self._asserts.get(key)
        if old is None or (old.state, old.winner) != (state.state, state.winner):
            self._pending.append(AssertChanged(*key, state.state, state.winner))
        self._asserts[key] = state

    def _assert_gone(self, key: _AssertKey) -> None:
        del self._asserts[key]
        self._pending.append(AssertChanged(*key, AssertState.NO_INFO, None))
        self._timers.stop((TimerName.ASSERT, key[2], f"{key[0]} {key[1]}"))
        self._dirty_assert(key[0], key[1])

    def _dirty_assert(self, source: str, group: str) -> None:
        if source == "*":
            self._dirty.add(group)
        elif (source, group) in self._sgs:
            self._dirty_sg.add((source, group))

    def _cancel_asserts(self, out: list[Output]) -> None:
        """A winner that stops forwarding says AssertCancel (4.6.1), so the losers do not
        wait out their Assert Timer."""
        for key, state in list(self._asserts.items()):
            if (state.state is AssertState.WINNER
                    and self._my_metric(key[0], key[1], key[2]).infinite):
                cancel = AssertMetric(key[0] == "*", INFINITE_ASSERT.preference,
                                      INFINITE_ASSERT.metric)
                self._send_assert(self._ifs[key[2]], key[0], key[1], cancel, out)
                self._assert_gone(key)

    def _on_sg_join_timer(self, key: str, now: float) -> None:
        source, group = key.split(" ")
        sg = self._sgs.get((source, group))
        target = self._sg_target(sg) if sg is not None else None
        if sg is None or target is None or sg.upstream is not UpstreamState.JOINED:
            return
        self._jp_sg.setdefault(target, {})[(group, source, False)] = True
        self._timers.start((TimerName.SG_JOIN, "", key),
                           now + self._ifs[target[0]].config.jp_period)

    # ---- upstream (*,G) (RFC 7761 4.5.7) ------------------------------------------------

    def _rpf_target(self) -> _Target | None:
        """(RPF interface, RPF'(*,G)): the next hop, or the neighbor listing it as secondary."""
        if self._rpf_if is None or self._rpf_nbr is None:
            return None
        for n in self._ifs[self._rpf_if].neighbors.values():
            if self._rpf_nbr in n.secondary:
                return self._rpf_if, n.address
        return self._rpf_if, self._rpf_nbr

    def _is_rpf_neighbor(self, itf: _Interface, n: _Neighbor) -> bool:
        target = self._rpf_target()
        return target is not None and target == (itf.name, n.address)

    def _next_slot(self, now: float) -> float:
        assert self._rpf_if is not None
        period = self._ifs[self._rpf_if].config.jp_period
        if self._anchor is None:
            self._anchor = now
        slot = self._anchor + (math.floor((now - self._anchor) / period) + 1) * period
        while slot <= now:
            slot += period
        return slot

    def _rpf_heard(self) -> bool:
        target = self._rpf_target()
        return target is not None and target[1] in self._ifs[target[0]].neighbors

    def _restart_join_timer(self, group: str, now: float) -> None:
        key = (TimerName.JOIN, "", group)
        if self._rpf_target() is None:
            self._timers.stop(key)
        elif not self._rpf_heard():
            self._timers.start(key, now + UNHEARD_RETRY)
        else:
            self._timers.start(key, self._next_slot(now))

    def _rejoin(self, now: float) -> None:
        """Send every joined group's Join to RPF'(*,G) now (it restarted or just appeared)."""
        target = self._rpf_target()
        if target is None or self._is_rp:
            return
        for g in self._groups.values():
            if g.upstream is UpstreamState.JOINED:
                self._jp.setdefault(target, {})[g.group] = True
                self._restart_join_timer(g.group, now)

    def _on_join_timer(self, group: str, now: float) -> None:
        target = self._rpf_target()
        if target is not None:
            self._jp.setdefault(target, {})[group] = True
            if not self._rpf_heard():
                self._need_hello.add(target[0])
            self._restart_join_timer(group, now)

    def _see_join_prune(self, itf: _Interface, jp: JoinPrune, now: float) -> None:
        """Another router's Join/Prune to our RPF'(*,G): suppress our Join, or override."""
        target = self._rpf_target()
        if target is None or target[0] != itf.name:
            return
        upstream = jp.upstream_neighbor
        n = itf.neighbors.get(target[1])
        if upstream != target[1] and (n is None or upstream not in n.secondary):
            return
        period = itf.config.jp_period
        for entry in jp.groups:
            g = self._groups.get(entry.group)
            if g is None or g.upstream is not UpstreamState.JOINED:
                continue
            if self._check_group(entry) is not None:
                continue
            key = (TimerName.JOIN, "", g.group)
            current = self._timers.deadline(key)
            if current is None:
                continue
            if any(self._check_star_g(s) is None for s in entry.joins):
                suppress = self._rng.uniform(1.1 * period, 1.4 * period)
                if jp.holdtime != HOLDTIME_FOREVER:
                    suppress = min(suppress, float(jp.holdtime))
                if current < now + suppress:
                    self._timers.start(key, now + suppress)
                    current = now + suppress
            if any(self._check_star_g(s) is None for s in entry.prunes):
                override = now + self._rng.uniform(0.0, self._effective_delays(itf)[1])
                if current > override:
                    self._timers.start(key, override)

    # ---- settling: outgoing interfaces, JoinDesired, sending Join/Prunes ----------------

    def _olist(self, g: _StarG) -> frozenset[str]:
        """immediate_olist(*,G): joins(*,G) + pim_include(*,G), plus backup members."""
        oifs = set(g.downstream)
        oifs.update(i for i in g.local if self._ifs[i].is_dr)
        oifs.update(g.backup)
        return frozenset(oifs)

    def _settle(self, now: float) -> list[Output]:
        out: list[Output] = []
        for name in sorted(self._dirty, key=_ip_key):
            g = self._groups.get(name)
            if g is None:
                continue
            oifs = self._olist(g) - self._lost("*", name)
            if oifs != g.oifs:
                for i in oifs - g.oifs:
                    g.oif_since[i] = now
                for i in g.oifs - oifs:
                    del g.oif_since[i]
                g.oifs = oifs
                out.append(OifsChanged(name, oifs))
            desired = bool(oifs) and self.config.rp is not None and not self._is_rp
            target = self._rpf_target()
            if desired and g.upstream is UpstreamState.NOT_JOINED:
                g.upstream = check_transition(g.upstream, UpstreamState.JOINED)
                if target is not None:
                    self._jp.setdefault(target, {})[name] = True
                self._restart_join_timer(name, now)
            elif not desired and g.upstream is UpstreamState.JOINED:
                g.upstream = check_transition(g.upstream, UpstreamState.NOT_JOINED)
                if target is not None:
                    self._jp.setdefault(target, {})[name] = False
                self._timers.stop((TimerName.JOIN, "", name))
            if (
                not g.downstream
                and not g.local
                and not g.backup
                and g.upstream is UpstreamState.NOT_JOINED
            ):
                del self._groups[name]
        for name in self._dirty:
            self._dirty_sg.update((src, name) for src in self._sg_by_group.get(name, ()))
        self._dirty.clear()
        out += self._pending
        self._pending = []
        while self._dirty_sg:
            for key in sorted(self._dirty_sg, key=lambda k: (_ip_key(k[1]), _ip_key(k[0]))):
                self._dirty_sg.discard(key)
                self._settle_sg(key, now, out)
        self._cancel_asserts(out)
        return out + self._flush(now)

    def _flush(self, now: float) -> list[Output]:
        """Send the queued Joins and Prunes, packed per (interface, upstream neighbor)."""
        out: list[Output] = []
        rp = self.config.rp
        for target in dict.fromkeys([*self._jp, *self._jp_sg]):
            ifname, upstream = target
            itf = self._ifs[ifname]
            per_group = self._entries(target, rp)
            if itf.state is IfState.DOWN or not per_group:
                continue
            if not itf.hello_sent:  # RFC 7761 4.3.1: a Hello before any Join/Prune
                self._timers.start((TimerName.HELLO, ifname, ""), now + itf.config.hello_period)
                out.append(self._hello(itf))
            elif ifname in self._need_hello:
                out.append(self._hello(itf))
            groups = [GroupEntry(g, joins=tuple(j), prunes=tuple(p))
                      for g, (j, p) in sorted(per_group.items(), key=lambda e: _ip_key(e[0]))]
            itf.counts["joins-sent"] += sum(len(e.joins) for e in groups)
            itf.counts["prunes-sent"] += sum(len(e.prunes) for e in groups)
            holdtime = round(itf.config.jp_holdtime)
            for jp in split_join_prune(upstream, holdtime, groups, MAX_JP_PAYLOAD):
                itf.counts["jp-sent"] += 1
                out.append(SendPim(ifname, ALL_PIM_ROUTERS, encode(jp)))
        self._jp.clear()
        self._jp_sg.clear()
        self._need_hello.clear()
        return out

    def _entries(self, target: _Target, rp: str | None) -> dict[str, tuple[list, list]]:
        """Group -> (joined, pruned sources) queued for `target`. A (*,G) Join carries the
        Prune(S,G,rpt) of every source pruned off the shared tree (4.5.8)."""
        per_group: dict[str, tuple[list, list]] = {}
        if rp is not None:
            wildcard = Source.rp_tree(rp)
            for g, join in self._jp.get(target, {}).items():
                joins, prunes = per_group.setdefault(g, ([], []))
                (joins if join else prunes).append(wildcard)
                if join:
                    for src in sorted(self._sg_by_group.get(g, ()), key=_ip_key):
                        if self._sgs[(src, g)].rpt_prune_sent and \
                                (g, src, True) not in self._jp_sg.get(target, {}):
                            prunes.append(Source(src, rpt=True))
        for (g, src, rpt), join in self._jp_sg.get(target, {}).items():
            if rpt and rp is None:
                continue
            joins, prunes = per_group.setdefault(g, ([], []))
            (joins if join else prunes).append(Source(src, rpt=rpt))
        return per_group

    # ---- timers -------------------------------------------------------------------------

    def _fire_due(self, now: float) -> list[Output]:
        out: list[Output] = []
        while (due := self._timers.pop_due(now)) is not None:
            (name, ifname, key), deadline = due
            if name is TimerName.HELLO:
                out.append(self._on_hello_timer(self._ifs[ifname], deadline, now))
            elif name is TimerName.TRIGGERED_HELLO:
                out.append(self._hello(self._ifs[ifname]))
            elif name is TimerName.NEIGHBOR:
                itf = self._ifs[ifname]
                self._remove_neighbor(itf, itf.neighbors[key], "expired", out)
                self._update_dr(itf, out)
            elif name is TimerName.EXPIRY:
                self._downstream_no_info(self._groups[key], ifname)
            elif name is TimerName.PRUNE_PENDING:
                self._on_prune_pending_timer(ifname, key)
            elif name is TimerName.JOIN:
                self._on_join_timer(key, now)
            elif name is TimerName.ASSERT:
                self._on_assert_timer(ifname, key, now, out)
            else:
                self._fire_sg_timer(name, ifname, key, now)
        return out

    def _fire_sg_timer(self, name: TimerName, ifname: str, key: str, now: float) -> None:
        source, group = key.split(" ")
        sg = self._sgs.get((source, group))
        if sg is None:
            return
        self._dirty_sg.add((source, group))
        if name is TimerName.SG_EXPIRY:
            self._sg_no_info(sg, ifname)
        elif name is TimerName.SG_PRUNE_PENDING:
            self._sg_no_info(sg, ifname)
            itf = self._ifs[ifname]
            if len(itf.neighbors) > 1:  # PruneEcho(S,G)
                self._jp_sg.setdefault((ifname, itf.config.address), {})[
                    (group, source, False)] = False
        elif name is TimerName.RPT_EXPIRY:
            self._rpt_clear(sg, ifname)
        elif name is TimerName.RPT_PRUNE_PENDING:
            sg.rpt_pending.discard(ifname)
            sg.rpt_pruned.add(ifname)
        elif name is TimerName.SG_JOIN:
            self._on_sg_join_timer(key, now)
        elif name is TimerName.REGISTER_STOP:
            self._on_register_stop_timer(sg, now)
