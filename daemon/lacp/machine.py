"""IEEE 802.1AX-2014 LACP (clause 6.4) for one Eth-Trunk in static LACP mode, without I/O.

One `LacpTrunk` is one aggregator and its member ports. Per port it runs the standard's
Receive, Periodic Transmit, Mux (independent control) and Transmit machines; Selection is
trunk-wide. Every input takes `now` (monotonic seconds) and returns the outputs it caused;
every timer is an absolute deadline in one table, and `tick(now)` fires those that are due.
States are IntEnums whose transitions are checked against an explicit table, so a logic error
raises instead of silently producing a state the standard does not have.

Where this differs from the standard's model, on purpose:
- One aggregator per trunk, as on VRP: ports aggregate only with one partner system (system
  priority, system ID, key); ports to any other partner stand by (STANDBY, in WAITING). The
  partner is chosen among in-sync links (see `LacpTrunk._select`), so a DeviceC-style switch
  facing an E-Trunk pair follows the master.
- Static LACP needs LACPDUs: a port whose partner information is defaulted is never selected
  (the standard would aggregate it with the administrative partner values).
- wait_while counts from when the port's partner became known (CURRENT with this partner
  identity, kept through EXPIRED), not from the moment the mux enters WAITING: a port that
  has already been seen for the aggregate wait time attaches at once, one seen for less waits
  the remainder (see `LacpTrunk._wait_deadline`). An E-Trunk BACKUP role keeps every port
  UNSELECTED.
- port_moved is not modelled (a partner port cannot move between our ports within one
  process), and LACP is always enabled on a static LACP member, so LACP_DISABLED is never
  entered; the state is listed so the names match the standard.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum, StrEnum
from typing import TypeAlias, TypeVar

from daemon.lacp.codec import Lacpdu, PortInfo, State, encode_frame

AGGREGATE_WAIT_TIME = 2.0
FAST_PERIODIC_TIME = 1.0
SLOW_PERIODIC_TIME = 30.0
SHORT_TIMEOUT_TIME = 3.0
LONG_TIMEOUT_TIME = 90.0
TX_LIMIT = 3  # LACPDUs per FAST_PERIODIC_TIME on one port (802.1AX-2014 6.4.16)
COLLECTOR_MAX_DELAY = 0

_ACTIVITY = int(State.ACTIVITY)
_TIMEOUT = int(State.TIMEOUT)
_AGGREGATION = int(State.AGGREGATION)
_SYNC = int(State.SYNCHRONIZATION)
_COLLECTING = int(State.COLLECTING)
_DISTRIBUTING = int(State.DISTRIBUTING)
_DEFAULTED = int(State.DEFAULTED)
_EXPIRED = int(State.EXPIRED)
# update_NTT compares only these bits of what the partner says about us (6.4.9).
_NTT_BITS = _ACTIVITY | _TIMEOUT | _SYNC | _AGGREGATION

NO_PARTNER = PortInfo(0, bytes(6), 0, 0, 0, 0)
"""Partner administrative defaults: all zero, so a defaulted partner displays as none."""


class RxState(IntEnum):
    INITIALIZE = 1
    PORT_DISABLED = 2
    EXPIRED = 3
    LACP_DISABLED = 4
    DEFAULTED = 5
    CURRENT = 6


class PeriodicState(IntEnum):
    NO_PERIODIC = 1
    FAST_PERIODIC = 2
    SLOW_PERIODIC = 3
    PERIODIC_TX = 4


class MuxState(IntEnum):
    DETACHED = 1
    WAITING = 2
    ATTACHED = 3
    COLLECTING = 4
    DISTRIBUTING = 5


class Selected(IntEnum):
    UNSELECTED = 1
    SELECTED = 2
    STANDBY = 3


class Role(Enum):
    """E-Trunk role of the Eth-Trunk: only a MASTER trunk's ports may be selected."""

    MASTER = "master"
    BACKUP = "backup"


class TimerName(StrEnum):
    CURRENT_WHILE = "current_while"
    PERIODIC = "periodic"
    WAIT_WHILE = "wait_while"
    TX_HOLDOFF = "tx_holdoff"  # when the rate limit lets a pending NTT go out


_R, _P, _M = RxState, PeriodicState, MuxState
TRANSITIONS: Mapping[type[IntEnum], Mapping[IntEnum, frozenset[IntEnum]]] = {
    RxState: {
        _R.INITIALIZE: frozenset({_R.PORT_DISABLED}),
        _R.PORT_DISABLED: frozenset({_R.EXPIRED}),
        _R.EXPIRED: frozenset({_R.CURRENT, _R.DEFAULTED, _R.PORT_DISABLED}),
        _R.LACP_DISABLED: frozenset(),
        _R.DEFAULTED: frozenset({_R.CURRENT, _R.PORT_DISABLED}),
        # CURRENT is re-entered on every LACPDU (recordPDU, restart current_while).
        _R.CURRENT: frozenset({_R.CURRENT, _R.EXPIRED, _R.PORT_DISABLED}),
    },
    PeriodicState: {
        _P.NO_PERIODIC: frozenset({_P.FAST_PERIODIC}),
        _P.FAST_PERIODIC: frozenset({_P.SLOW_PERIODIC, _P.PERIODIC_TX, _P.NO_PERIODIC}),
        _P.SLOW_PERIODIC: frozenset({_P.PERIODIC_TX, _P.NO_PERIODIC}),
        _P.PERIODIC_TX: frozenset({_P.FAST_PERIODIC, _P.SLOW_PERIODIC}),
    },
    MuxState: {
        _M.DETACHED: frozenset({_M.WAITING}),
        _M.WAITING: frozenset({_M.DETACHED, _M.ATTACHED}),
        _M.ATTACHED: frozenset({_M.DETACHED, _M.COLLECTING}),
        _M.COLLECTING: frozenset({_M.ATTACHED, _M.DISTRIBUTING}),
        _M.DISTRIBUTING: frozenset({_M.COLLECTING}),
    },
}


_S = TypeVar("_S", bound=IntEnum)


class IllegalTransition(RuntimeError):
    """A machine tried a transition its state diagram does not have: a bug, never input."""


def check_transition(old: _S, new: _S) -> _S:
    """Return `new` if the state diagram allows old -> new, else raise IllegalTransition."""
    if new not in TRANSITIONS[type(old)][old]:
        raise IllegalTransition(f"{type(old).__name__}: {old.name} -> {new.name}")
    return new


@dataclass(frozen=True, kw_only=True)
class PortConfig:
    """One member port as configured; the caller derives port_number and key (VRP rules)."""

    name: str
    port_number: int
    key: int
    mac: bytes
    port_priority: int = 32768


@dataclass(frozen=True, kw_only=True)
class TrunkConfig:
    """One Eth-Trunk in `mode lacp-static`."""

    trunk_id: int
    system_priority: int
    system: bytes
    ports: tuple[PortConfig, ...]
    least_active: int = 1
    max_active: int = 16
    fast_timeout: bool = False

    def __post_init__(self) -> None:
        names = [p.name for p in self.ports]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate member ports: {names}")
        if not 1 <= self.least_active <= self.max_active:
            raise ValueError(f"need 1 <= least_active <= max_active, got {self}")
        # Build one PortInfo per member now so bad numbers fail at configuration time.
        for p in self.ports:
            PortInfo(self.system_priority, self.system, p.key, p.port_priority, p.port_number, 0)
            if len(p.mac) != 6:
                raise ValueError(f"{p.name}: mac must be 6 bytes")


@dataclass(frozen=True)
class Transmit:
    """Send `frame` (a complete Ethernet frame) on member `port`."""

    port: str
    frame: bytes


@dataclass(frozen=True)
class DistributingChanged:
    """The aggregator changed: program the data plane and the Eth-Trunk carrier from it.

    `ports` are the DISTRIBUTING members (frames go out one of them), `collecting` the members
    whose received frames must be accepted (a superset), `up` whether >= least_active ports
    distribute (the Eth-Trunk's logical carrier).
    """

    ports: frozenset[str]
    up: bool
    collecting: frozenset[str]


@dataclass(frozen=True)
class PortChanged:
    """A member's selection, mux state or actor/partner state octet changed (for logs)."""

    port: str
    selected: str
    mux: str
    actor_state: int
    partner_state: int


@dataclass(frozen=True)
class PartnerAttached:
    """Whether the partner has one of our links in its aggregate (a port whose partner
    reports Synchronization: 802.1AX sets it once the partner's mux has attached the link,
    after its aggregate wait). A switch facing two devices has one aggregate, so at most one
    of them hears it: the one the switch uses, or can use the moment it is in sync too."""

    attached: bool


Output: TypeAlias = Transmit | DistributingChanged | PortChanged | PartnerAttached


@dataclass(frozen=True)
class PortSnapshot:
    name: str
    enabled: bool
    actor: PortInfo
    partner: PortInfo
    selected: Selected
    rx: RxState
    mux: MuxState
    periodic: PeriodicState
    lacpdus_sent: int
    lacpdus_received: int
    dropped: Mapping[str, int]


@dataclass(frozen=True)
class TrunkSnapshot:
    trunk_id: int
    system_priority: int
    system: bytes
    least_active: int
    max_active: int
    fast_timeout: bool
    role: Role
    up: bool
    ports: tuple[PortSnapshot, ...]


_Identity: TypeAlias = tuple[int, bytes, int, int, int, bool]


def _identity(info: PortInfo) -> _Identity:
    """The fields update_Selected compares: a change means a different partner port."""
    return (
        info.system_priority,
        info.system,
        info.key,
        info.port_priority,
        info.port,
        bool(info.state & _AGGREGATION),
    )


def _lag_key(info: PortInfo) -> tuple[int, ...] | tuple[int, bytes, int]:
    """What ports must share to aggregate together; ordered by preference (lowest first).

    An Individual partner port (Aggregation clear) is a LAG of its own: its port identity is
    part of the key, so it never shares an aggregator with another link."""
    key = (info.system_priority, info.system, info.key)
    if info.state & _AGGREGATION:
        return key
    return (*key, info.port_priority, info.port)


_ATTACHED = frozenset({MuxState.ATTACHED, MuxState.COLLECTING, MuxState.DISTRIBUTING})


class _Timers:
    """Every pending timer of a trunk, as an absolute deadline keyed by (port, timer)."""

    def __init__(self) -> None:
        self._deadlines: dict[tuple[str, TimerName], float] = {}

    def start(self, port: str, timer: TimerName, deadline: float) -> None:
        self._deadlines[(port, timer)] = deadline

    def stop(self, port: str, timer: TimerName) -> None:
        self._deadlines.pop((port, timer), None)

    def pending(self, port: str, timer: TimerName) -> bool:
        return (port, timer) in self._deadlines

    def clear(self) -> None:
        self._deadlines.clear()

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def pop_due(self, now: float) -> tuple[str, TimerName, float] | None:
        """Remove and return the earliest timer with deadline <= now, if any."""
        key = min(self._deadlines, key=self._deadlines.__getitem__, default=None)
        if key is None or self._deadlines[key] > now:
            return None
        return key[0], key[1], self._deadlines.pop(key)


@dataclass(eq=False)
class _Port:
    """One member's per-port variables (802.1AX-2014 6.4.7) plus counters."""

    cfg: PortConfig
    enabled: bool = False
    rx: RxState = RxState.INITIALIZE
    periodic: PeriodicState = PeriodicState.NO_PERIODIC
    mux: MuxState = MuxState.DETACHED
    selected: Selected = Selected.UNSELECTED
    partner: PortInfo = NO_PARTNER
    defaulted: bool = True
    current_since: float | None = None  # this partner known (CURRENT/EXPIRED) since
    attached_to: _Identity | None = None  # partner identity when the mux left DETACHED
    ntt: bool = False
    actor_state: int = 0  # last computed, to detect changes (NTT)
    reported: tuple[Selected, MuxState, int, int] | None = None  # last PortChanged
    tx_times: deque[float] = field(default_factory=lambda: deque(maxlen=TX_LIMIT))
    sent: int = 0
    received: int = 0
    drops: Counter[str] = field(default_factory=Counter)


class LacpTrunk:
    """The LACP machines of one Eth-Trunk (aggregator) and its member ports."""

    def __init__(self, config: TrunkConfig) -> None:
        self.config = config
        self._role = Role.MASTER
        self._stopped = False
        self._timers = _Timers()
        self._ports = {pc.name: _Port(pc) for pc in config.ports}
        for p in self._ports.values():
            self._rx_to(p, RxState.PORT_DISABLED)  # INITIALIZE's unconditional exit
            p.actor_state = self._actor_state(p)
            p.reported = (p.selected, p.mux, p.actor_state, p.partner.state)
        self._reported_agg = (frozenset[str](), False, frozenset[str]())
        self._reported_attached = False

    # ---- inputs -------------------------------------------------------------------------

    def port_enabled(self, name: str, up: bool, now: float) -> list[Output]:
        """Carrier of member `name` went up or down (port_enabled in the standard)."""
        p = self._ports[name]
        if self._stopped:
            return []
        out = self._fire_due(now)
        if up == p.enabled:
            return out
        p.enabled = up
        if up:
            self._enter_expired(p, now)
        else:
            self._enter_port_disabled(p)
        return out + self._settle(now)

    def pdu_received(self, name: str, pdu: Lacpdu, now: float) -> list[Output]:
        """A valid LACPDU arrived on member `name`."""
        p = self._ports[name]
        if self._stopped:
            return []
        out = self._fire_due(now)
        if not p.enabled:
            p.drops["port-disabled"] += 1
            return out
        p.received += 1
        self._enter_current(p, pdu, now)
        return out + self._settle(now)

    def set_role(self, role: Role, now: float) -> list[Output]:
        """E-Trunk decided this trunk's role; BACKUP keeps every port UNSELECTED."""
        if self._stopped:
            return []
        out = self._fire_due(now)
        if role is self._role:
            return out
        self._role = role
        return out + self._settle(now)

    def tick(self, now: float) -> list[Output]:
        """Fire every timer whose deadline is <= now."""
        return [] if self._stopped else self._fire_due(now)

    def shutdown(self, now: float) -> list[Output]:
        """Detach every port and say so at once (no rate limit); the trunk is inert after.

        802.1AX has no goodbye PDU: a last LACPDU with Synchronization, Collecting and
        Distributing clear is what an administratively removed port sends, and makes the
        partner stop using the link now instead of after its timeout.
        """
        if self._stopped:
            return []
        out = self._fire_due(now)
        self._stopped = True
        for p in self._ports.values():
            p.ntt = p.enabled
        out += self._settle(now)
        self._timers.clear()
        return out

    def count_drop(self, name: str, reason: str) -> None:
        """Count a frame received on `name` that did not decode (DecodeError.reason)."""
        self._ports[name].drops[reason] += 1

    # ---- queries ------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    def distributing(self) -> frozenset[str]:
        return frozenset(n for n, p in self._ports.items() if p.mux is MuxState.DISTRIBUTING)

    def collecting(self) -> frozenset[str]:
        return frozenset(
            n
            for n, p in self._ports.items()
            if p.mux in (MuxState.COLLECTING, MuxState.DISTRIBUTING)
        )

    def is_up(self) -> bool:
        return len(self.distributing()) >= self.config.least_active

    def partner_attached(self) -> bool:
        """Some enabled member's partner, heard and current, says Synchronization."""
        return not self._stopped and any(
            p.enabled and p.rx is RxState.CURRENT and p.partner.state & _SYNC
            for p in self._ports.values()
        )

    def snapshot(self) -> TrunkSnapshot:
        c = self.config
        return TrunkSnapshot(
            trunk_id=c.trunk_id,
            system_priority=c.system_priority,
            system=c.system,
            least_active=c.least_active,
            max_active=c.max_active,
            fast_timeout=c.fast_timeout,
            role=self._role,
            up=self.is_up(),
            ports=tuple(
                PortSnapshot(
                    name=p.cfg.name,
                    enabled=p.enabled,
                    actor=self._actor_info(p),
                    partner=p.partner,
                    selected=p.selected,
                    rx=p.rx,
                    mux=p.mux,
                    periodic=p.periodic,
                    lacpdus_sent=p.sent,
                    lacpdus_received=p.received,
                    dropped=dict(p.drops),
                )
                for p in self._ports.values()
            ),
        )

    # ---- receive machine ----------------------------------------------------------------

    def _rx_to(self, p: _Port, new: RxState) -> None:
        p.rx = check_transition(p.rx, new)

    def _enter_port_disabled(self, p: _Port) -> None:
        self._rx_to(p, RxState.PORT_DISABLED)
        p.partner = replace(p.partner, state=p.partner.state & ~_SYNC)
        p.current_since = None
        p.ntt = False  # the Transmit machine's NO_TX
        self._timers.stop(p.cfg.name, TimerName.CURRENT_WHILE)
        self._timers.stop(p.cfg.name, TimerName.TX_HOLDOFF)

    def _enter_expired(self, p: _Port, now: float) -> None:
        """Partner silent (or link just up): out of sync, and ask it to speed up."""
        self._rx_to(p, RxState.EXPIRED)
        p.partner = replace(p.partner, state=(p.partner.state & ~_SYNC) | _TIMEOUT)
        self._timers.start(p.cfg.name, TimerName.CURRENT_WHILE, now + SHORT_TIMEOUT_TIME)

    def _enter_current(self, p: _Port, pdu: Lacpdu, now: float) -> None:
        """update_Selected, update_NTT and recordPDU (6.4.9), restart current_while."""
        actor = self._actor_info(p)
        if p.current_since is None or _identity(pdu.actor) != _identity(p.partner):
            p.current_since = now  # a new partner (or the first since the link came up)
        if (
            _identity(pdu.partner) != _identity(actor)
            or (pdu.partner.state ^ actor.state) & _NTT_BITS
        ):
            p.ntt = True
        individual = not pdu.actor.state & _AGGREGATION
        matched = individual or _identity(pdu.partner) == _identity(actor)
        sync = _SYNC if matched and pdu.actor.state & _SYNC else 0
        p.partner = replace(pdu.actor, state=(pdu.actor.state & ~_SYNC) | sync)
        p.defaulted = False
        timeout = SHORT_TIMEOUT_TIME if self.config.fast_timeout else LONG_TIMEOUT_TIME
        self._timers.start(p.cfg.name, TimerName.CURRENT_WHILE, now + timeout)
        self._rx_to(p, RxState.CURRENT)

    def _on_current_while(self, p: _Port, now: float) -> None:
        if p.rx is RxState.CURRENT:
            self._enter_expired(p, now)
        else:  # EXPIRED ran out too: recordDefault
            self._rx_to(p, RxState.DEFAULTED)
            p.partner = NO_PARTNER
            p.defaulted = True
            p.current_since = None

    # ---- periodic transmit machine ------------------------------------------------------

    def _periodic_to(self, p: _Port, new: PeriodicState, start: float) -> None:
        """Enter `new`; FAST/SLOW_PERIODIC arm the periodic timer one period after `start`."""
        p.periodic = check_transition(p.periodic, new)
        if new is PeriodicState.FAST_PERIODIC:
            self._timers.start(p.cfg.name, TimerName.PERIODIC, start + FAST_PERIODIC_TIME)
        elif new is PeriodicState.SLOW_PERIODIC:
            self._timers.start(p.cfg.name, TimerName.PERIODIC, start + SLOW_PERIODIC_TIME)
        elif new is PeriodicState.PERIODIC_TX:
            p.ntt = True
        else:
            self._timers.stop(p.cfg.name, TimerName.PERIODIC)

    def _run_periodic(self, p: _Port, now: float) -> None:
        """Follow port_enabled and the partner's timeout bit; receives never re-arm the timer."""
        if not p.enabled:
            if p.periodic is not PeriodicState.NO_PERIODIC:
                self._periodic_to(p, PeriodicState.NO_PERIODIC, now)
            return
        if p.periodic is PeriodicState.NO_PERIODIC:
            self._periodic_to(p, PeriodicState.FAST_PERIODIC, now)
        short = bool(p.partner.state & _TIMEOUT)
        if p.periodic is PeriodicState.FAST_PERIODIC and not short:
            self._periodic_to(p, PeriodicState.SLOW_PERIODIC, now)
        elif p.periodic is PeriodicState.SLOW_PERIODIC and short:
            self._periodic_to(p, PeriodicState.PERIODIC_TX, now)
            self._periodic_to(p, PeriodicState.FAST_PERIODIC, now)

    def _on_periodic(self, p: _Port, deadline: float, now: float) -> None:
        """PERIODIC_TX, then re-arm from the deadline (not from now) so the period is exact."""
        self._periodic_to(p, PeriodicState.PERIODIC_TX, now)
        if p.partner.state & _TIMEOUT:
            nxt, period = PeriodicState.FAST_PERIODIC, FAST_PERIODIC_TIME
        else:
            nxt, period = PeriodicState.SLOW_PERIODIC, SLOW_PERIODIC_TIME
        start = deadline
        while start + period <= now:  # woken late: skip missed slots, keep the phase
            start += period
        self._periodic_to(p, nxt, start)

    # ---- selection logic ----------------------------------------------------------------

    def _select(self) -> bool:
        """Choose one partner system and the ports to it; return whether anything changed.

        A port is a candidate when enabled and its partner known: CURRENT, or EXPIRED (the
        partner went quiet but its information is kept, sync cleared, as in the standard,
        so it returns without a new wait). Partners whose LACPDUs show Synchronization are
        preferred: an E-Trunk backup keeps its ports out of sync, so a switch facing the pair
        follows the master, and moves to the other device at once when the chosen one's
        links all fail or expire. With no partner in sync, any candidate will do (someone has
        to go first). Among the pool, the partner the aggregator is attached to keeps it (an
        aggregator belongs to the LAG of its attached ports until they leave, 802.1AX 6.4.14):
        a partner that claims sync later does not pull the trunk away from working links.
        Otherwise the lowest partner system priority, system ID, key wins. A partner port that
        says Individual (Aggregation clear) is a LAG of its own and aggregates alone. At most
        max_active ports to the chosen partner are SELECTED; every other candidate is STANDBY
        and waits in WAITING, so its wait_while has run when it is needed.
        """
        wanted = dict.fromkeys(self._ports.values(), Selected.UNSELECTED)
        if self._role is Role.MASTER and not self._stopped:
            eligible = [
                p
                for p in self._ports.values()
                if p.enabled and not p.defaulted and p.rx in (RxState.CURRENT, RxState.EXPIRED)
            ]
            pool = {_lag_key(p.partner) for p in eligible if p.partner.state & _SYNC}
            pool = pool or {_lag_key(p.partner) for p in eligible}
            if pool:
                attached = {_lag_key(p.partner) for p in eligible if p.mux in _ATTACHED}
                chosen = min(pool & attached or pool)
                members = sorted(
                    (p for p in eligible if _lag_key(p.partner) == chosen),
                    key=self._activation_order,
                )
                for p in eligible:
                    wanted[p] = Selected.STANDBY
                for p in members[: self.config.max_active]:
                    wanted[p] = Selected.SELECTED
        changed = False
        for p, sel in wanted.items():
            if p.selected is not sel:
                p.selected = sel
                changed = True
        return changed

    def _activation_order(self, p: _Port) -> tuple[int, int]:
        """Which ports are active is decided by the system with the better system ID (6.7.1),
        using that system's port priorities, so both ends pick the same max_active ports."""
        ours = (self.config.system_priority, self.config.system)
        if ours <= (p.partner.system_priority, p.partner.system):
            return (p.cfg.port_priority, p.cfg.port_number)
        return (p.partner.port_priority, p.partner.port)

    # ---- mux machine (independent control) ----------------------------------------------

    def _wait_deadline(self, p: _Port, now: float) -> float:
        """When wait_while runs out for a port entering WAITING at `now`.

        The wait exists so that every port about to join one aggregator is gathered before
        it attaches, and a partner that just appeared gets time to show its whole link set.
        It is counted from when the port's partner became known (current_since), so a port
        that has stood by, healthy, for the aggregate wait time attaches at once when
        selected, and one that appeared a moment ago waits only the remainder, as a STANDBY
        port that entered WAITING with it would in the standard. A new partner identity, a
        link that came back or a defaulted partner start the count again.
        """
        since = now if p.current_since is None else p.current_since
        return max(now, since + AGGREGATE_WAIT_TIME)

    def _ready(self) -> bool:
        """The aggregator's Ready: every SELECTED port in WAITING has run out wait_while."""
        return not any(
            p.mux is MuxState.WAITING
            and p.selected is Selected.SELECTED
            and self._timers.pending(p.cfg.name, TimerName.WAIT_WHILE)
            for p in self._ports.values()
        )

    def _mux_next(self, p: _Port, now: float) -> MuxState | None:
        sel = p.selected
        if p.attached_to is not None and p.attached_to != _identity(p.partner):
            sel = Selected.UNSELECTED  # update_Selected: the partner port changed under us
        sync = bool(p.partner.state & _SYNC)
        collecting = bool(p.partner.state & _COLLECTING)
        match p.mux:
            case MuxState.DETACHED:
                if sel is not Selected.UNSELECTED:
                    return MuxState.WAITING
            case MuxState.WAITING:
                if sel is Selected.UNSELECTED:
                    return MuxState.DETACHED
                if sel is Selected.SELECTED and self._ready():
                    return MuxState.ATTACHED
            case MuxState.ATTACHED:
                if sel is not Selected.SELECTED:
                    return MuxState.DETACHED
                if sync:
                    return MuxState.COLLECTING
            case MuxState.COLLECTING:
                if sel is not Selected.SELECTED or not sync:
                    return MuxState.ATTACHED
                if collecting:
                    return MuxState.DISTRIBUTING
            case MuxState.DISTRIBUTING:
                if sel is not Selected.SELECTED or not (sync and collecting):
                    return MuxState.COLLECTING
        return None

    def _run_mux(self, p: _Port, now: float) -> bool:
        changed = False
        while (new := self._mux_next(p, now)) is not None:
            old, p.mux = p.mux, check_transition(p.mux, new)
            changed = True
            if new is MuxState.DETACHED:
                p.attached_to = None
                self._timers.stop(p.cfg.name, TimerName.WAIT_WHILE)
            elif old is MuxState.DETACHED:
                p.attached_to = _identity(p.partner)
            if new is MuxState.WAITING and (deadline := self._wait_deadline(p, now)) > now:
                self._timers.start(p.cfg.name, TimerName.WAIT_WHILE, deadline)
            elif new is MuxState.ATTACHED:
                self._timers.stop(p.cfg.name, TimerName.WAIT_WHILE)
        return changed

    # ---- actor state and transmit machine -----------------------------------------------

    def _actor_state(self, p: _Port) -> int:
        state = _ACTIVITY | _AGGREGATION  # static LACP is active and aggregatable
        if self.config.fast_timeout:
            state |= _TIMEOUT
        if p.mux in (MuxState.ATTACHED, MuxState.COLLECTING, MuxState.DISTRIBUTING):
            state |= _SYNC
        if p.mux in (MuxState.COLLECTING, MuxState.DISTRIBUTING):
            state |= _COLLECTING
        if p.mux is MuxState.DISTRIBUTING:
            state |= _DISTRIBUTING
        if p.defaulted:
            state |= _DEFAULTED
        if p.rx is RxState.EXPIRED:
            state |= _EXPIRED
        return state

    def _actor_info(self, p: _Port) -> PortInfo:
        c = self.config
        return PortInfo(
            c.system_priority,
            c.system,
            p.cfg.key,
            p.cfg.port_priority,
            p.cfg.port_number,
            self._actor_state(p),
        )

    def _transmit(self, p: _Port, now: float) -> list[Output]:
        """Send if NTT, at most TX_LIMIT per FAST_PERIODIC_TIME (goodbyes are exempt)."""
        if not (p.ntt and p.enabled):
            return []
        if (
            not self._stopped
            and len(p.tx_times) == TX_LIMIT
            and now < p.tx_times[0] + FAST_PERIODIC_TIME
        ):
            # NTT stays set; retry when the oldest of the last three leaves the window.
            self._timers.start(p.cfg.name, TimerName.TX_HOLDOFF, p.tx_times[0] + FAST_PERIODIC_TIME)
            return []
        p.ntt = False
        p.tx_times.append(now)
        p.sent += 1
        pdu = Lacpdu(self._actor_info(p), p.partner, COLLECTOR_MAX_DELAY)
        return [Transmit(p.cfg.name, encode_frame(p.cfg.mac, pdu))]

    # ---- evaluation ---------------------------------------------------------------------

    def _fire_due(self, now: float) -> list[Output]:
        out: list[Output] = []
        while (due := self._timers.pop_due(now)) is not None:
            name, timer, deadline = due
            p = self._ports[name]
            if timer is TimerName.CURRENT_WHILE:
                self._on_current_while(p, now)
            elif timer is TimerName.PERIODIC:
                self._on_periodic(p, deadline, now)
            # WAIT_WHILE and TX_HOLDOFF: their expiry is the event; _settle looks at it.
            out += self._settle(now)
        return out

    def _settle(self, now: float) -> list[Output]:
        """Run selection and mux to a fixed point, then periodic and transmit; emit outputs."""
        # Selection reads only whether ports are attached, and no port attaches to a partner
        # that is not chosen, so three rounds always suffice.
        for _ in range(4):
            changed = self._select()
            for p in self._ports.values():
                changed |= self._run_mux(p, now)
            if not changed:
                break
        else:
            raise RuntimeError("LACP selection and mux machines did not settle")
        out: list[Output] = []
        for p in self._ports.values():
            self._run_periodic(p, now)
            state = self._actor_state(p)
            if state != p.actor_state:
                p.actor_state = state
                p.ntt = p.enabled
            view = (p.selected, p.mux, state, p.partner.state)
            if view != p.reported:
                p.reported = view
                out.append(
                    PortChanged(p.cfg.name, p.selected.name, p.mux.name, state, p.partner.state)
                )
        agg = (self.distributing(), self.is_up(), self.collecting())
        if agg != self._reported_agg:
            self._reported_agg = agg
            out.append(DistributingChanged(*agg))
        attached = self.partner_attached()
        if attached != self._reported_attached:
            self._reported_attached = attached
            out.append(PartnerAttached(attached))
        for p in self._ports.values():
            out += self._transmit(p, now)
        return out
