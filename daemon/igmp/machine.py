"""The router side of IGMP (RFC 2236 v2, RFC 3376 v3, v1 hosts) on one interface, without I/O.

One `IgmpInterface` is one `igmp enable` interface. It elects a querier (lowest address wins,
RFC 3376 6.6.2), sends startup, periodic general, group-specific and group-and-source-specific
queries, and keeps per-group state as RFC 3376 section 6 describes it: a filter mode, a group
timer, source records with source timers, and older-host-present timers for v1/v2 hosts
(7.3.2). Every input takes `now` (monotonic seconds) and returns the outputs it caused:
`SendQuery` (an IGMP payload for the kernel side to send with TTL 1 and Router Alert) and
`GroupEvent` (JOIN, REFRESH, SOURCES, LEAVE: what the rest of the device, PIM and the backup
channel, needs). Every timer is an absolute deadline in one heap with lazy deletion, so ten
thousand groups cost O(log n) per timer and nothing per idle tick.

Choices the RFCs leave open, or where this differs from them on purpose:
- `version 2` (VRP's default) makes this an RFC 2236 router: v2 queries, membership per group
  only. v3 reports are still accepted, reduced to what a v2 router can act on: IS_EX/TO_EX
  (any sources) and IS_IN/ALLOW/TO_IN with sources are a join (a host that wants some
  sources needs the group), TO_IN({}) is a leave, BLOCK is ignored (as RFC 3376 7.3.2 does in
  v2 compatibility mode). Linux hosts send v3 reports on join until they hear our v2 query,
  so without this a new receiver would wait for the next query to be served.
- A router in v3 mode treats a v2 leave for a group in v3 compatibility mode as TO_IN({})
  (the RFC lists the translation only for v2 compatibility mode; the effect is a
  group-specific query, which costs nothing if members remain).
- While a group's last-member queries are running, another leave does not restart them: the
  leave latency stays LMQC x LMQI from the first leave. New source queries do start at once.
- Group events carry the group's state after the event: INCLUDE with the sources to forward,
  or EXCLUDE with the sources not to forward (RFC 3376 6.3's "exclude list", Y); LEAVE
  carries INCLUDE with no sources. REFRESH goes out at most once per group per
  REFRESH_HOLDDOWN, and only for records that assert membership.
- A non-querier adopts the querier's QRV and QQI (RFC 3376 4.1.6, 4.1.7) and lowers timers
  on its group-specific queries to LMQC x the query's max response time (RFC 2236 6).
"""

from __future__ import annotations

import heapq
import itertools
import socket
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import TypeAlias

from daemon.igmp.codec import (
    ALL_SYSTEMS,
    ANY,
    MAX_FLOAT_CODE_VALUE,
    GroupRecord,
    IpIgmp,
    Query,
    RecordType,
    V1Report,
    V2Leave,
    V2Report,
    V3Report,
    encode,
    is_multicast,
)

REFRESH_HOLDDOWN = 1.0  # at most one REFRESH event per group per second
# A v3 query must fit one Ethernet frame: 1500 - 24 (IPv4 + Router Alert) - 12, / 4.
MAX_QUERY_SOURCES = 366


class IfState(IntEnum):
    DOWN = 1
    QUERIER = 2
    NON_QUERIER = 3


TRANSITIONS: Mapping[IfState, frozenset[IfState]] = {
    IfState.DOWN: frozenset({IfState.QUERIER}),  # every router starts as querier
    IfState.QUERIER: frozenset({IfState.NON_QUERIER, IfState.DOWN}),
    IfState.NON_QUERIER: frozenset({IfState.QUERIER, IfState.DOWN}),
}


class IllegalTransition(RuntimeError):
    """A transition the state diagram does not have: a bug, never input."""


def check_transition(old: IfState, new: IfState) -> IfState:
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"IfState: {old.name} -> {new.name}")
    return new


class FilterMode(StrEnum):
    INCLUDE = "include"
    EXCLUDE = "exclude"


class EventKind(StrEnum):
    JOIN = "join"
    REFRESH = "refresh"
    SOURCES = "sources"
    LEAVE = "leave"


class TimerName(StrEnum):
    GENERAL_QUERY = "general_query"
    OTHER_QUERIER = "other_querier"
    GROUP = "group"
    SOURCE = "source"
    V1_HOST = "v1_host"
    V2_HOST = "v2_host"
    RETRANSMIT = "retransmit"  # the next last-member (group or source) query


@dataclass(frozen=True, kw_only=True)
class IgmpConfig:
    """One `igmp enable` interface; defaults are VRP's (query interval 60 s, not RFC's 125)."""

    ifname: str
    address: str
    version: int = 2
    robustness: int = 2
    query_interval: float = 60.0
    max_response: float = 10.0
    last_member_query_interval: float = 1.0
    other_querier_timeout: float | None = None  # VRP `igmp timer other-querier-present`

    def __post_init__(self) -> None:
        try:
            socket.inet_pton(socket.AF_INET, self.address)
        except OSError:
            raise ValueError(f"address: not an IPv4 address: {self.address!r}") from None
        if self.version not in (2, 3):
            raise ValueError(f"IGMP version must be 2 or 3, not {self.version}")
        if not 1 <= self.robustness <= 255:
            raise ValueError(f"robustness out of range: {self.robustness}")
        max_tenths = 0xFF if self.version == 2 else MAX_FLOAT_CODE_VALUE
        for name, value in (
            ("max_response", self.max_response),
            ("last_member_query_interval", self.last_member_query_interval),
        ):
            if not 0 < round(value * 10) <= max_tenths:
                raise ValueError(f"{name} {value} s not encodable in a v{self.version} query")
        if not self.max_response < self.query_interval <= MAX_FLOAT_CODE_VALUE:
            raise ValueError("need max_response < query_interval <= 31744 s")
        if self.other_querier_timeout is not None and self.other_querier_timeout <= 0:
            raise ValueError(f"other_querier_timeout must be positive: {self}")

    @property
    def startup_query_count(self) -> int:
        return self.robustness

    @property
    def startup_query_interval(self) -> float:
        return self.query_interval / 4

    @property
    def last_member_query_count(self) -> int:
        return self.robustness

    @property
    def other_querier_present_interval(self) -> float:
        if self.other_querier_timeout is not None:
            return self.other_querier_timeout
        return self.robustness * self.query_interval + self.max_response / 2

    @property
    def group_membership_interval(self) -> float:
        return self.robustness * self.query_interval + self.max_response

    @property
    def older_host_present_interval(self) -> float:
        return self.robustness * self.query_interval + self.max_response


def _check_addr(name: str, value: str) -> None:
    try:
        socket.inet_pton(socket.AF_INET, value)
    except (OSError, TypeError):
        raise ValueError(f"{name}: not a dotted-quad IPv4 address: {value!r}") from None


@dataclass(frozen=True)
class AdoptedGroup:
    """A group learned from the backup peer, to be installed as live local state."""

    group: str
    mode: str  # "include" | "exclude"
    sources: frozenset[str] = frozenset()
    reporter: str = ANY

    def __post_init__(self) -> None:
        _check_addr("group", self.group)
        if not is_multicast(self.group):
            raise ValueError(f"group is not multicast: {self.group}")
        FilterMode(self.mode)  # raises ValueError for anything else
        for s in self.sources:
            _check_addr("source", s)
        _check_addr("reporter", self.reporter)


@dataclass(frozen=True)
class GroupEvent:
    """A group's state changed or was confirmed; `mode`/`sources` are the state after it."""

    kind: EventKind
    ifname: str
    group: str
    mode: str
    sources: frozenset[str]
    reporter: str
    at: float


@dataclass(frozen=True)
class SendQuery:
    """Send IGMP `payload` to `dst` on the interface (TTL 1, Router Alert, our source)."""

    dst: str
    payload: bytes


Output: TypeAlias = GroupEvent | SendQuery


@dataclass(frozen=True)
class IgmpCounters:
    queries_received: int = 0
    v1_reports_received: int = 0
    v2_reports_received: int = 0
    v3_reports_received: int = 0
    leaves_received: int = 0
    general_queries_sent: int = 0
    group_queries_sent: int = 0
    source_queries_sent: int = 0
    version_mismatches: int = 0  # queries of another IGMP version (a configuration error)


@dataclass(frozen=True)
class SourceSnapshot:
    source: str
    expires: float | None  # seconds left; None: timer 0 (an EXCLUDE-mode "do not forward")


@dataclass(frozen=True)
class GroupSnapshot:
    group: str
    mode: FilterMode
    sources: tuple[SourceSnapshot, ...]
    reporter: str
    uptime: float
    expires: float  # EXCLUDE: the group timer; INCLUDE: the longest source timer
    compat: int  # group compatibility mode: 1, 2 or 3
    v1_host_expires: float | None
    v2_host_expires: float | None
    last_member_queries_left: int


@dataclass(frozen=True)
class IgmpSnapshot:
    ifname: str
    address: str
    state: IfState
    version: int
    querier_address: str | None
    robustness: int  # in use: our own as querier, the querier's QRV otherwise
    query_interval: float  # likewise (QQIC)
    configured_robustness: int
    configured_query_interval: float
    max_response: float
    last_member_query_interval: float
    last_member_query_count: int
    startup_query_interval: float
    startup_query_count: int
    other_querier_present_interval: float
    group_membership_interval: float
    older_host_present_interval: float
    next_general_query: float | None  # seconds left
    other_querier_expires: float | None  # seconds left
    startup_queries_left: int
    counters: IgmpCounters
    dropped: Mapping[str, int]
    groups: tuple[GroupSnapshot, ...]

    @property
    def up(self) -> bool:
        return self.state is not IfState.DOWN

    @property
    def querier(self) -> bool:
        return self.state is IfState.QUERIER


_Key: TypeAlias = tuple[TimerName, str, str]  # (timer, group, source); "" where not used


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

    def lower(self, key: _Key, deadline: float) -> None:
        """Move a running timer earlier to `deadline` (RFC 3376 "lowered to", never raised)."""
        entry = self._due.get(key)
        if entry is not None and entry[0] > deadline:
            self.start(key, deadline)

    def stop(self, key: _Key) -> None:
        self._due.pop(key, None)

    def deadline(self, key: _Key) -> float | None:
        entry = self._due.get(key)
        return None if entry is None else entry[0]

    def __contains__(self, key: _Key) -> bool:
        return key in self._due

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


@dataclass(eq=False, slots=True)
class _Group:
    """One group record (RFC 3376 6.2.1); its timers live in `IgmpInterface._timers`.

    In INCLUDE mode every source has a running timer. In EXCLUDE mode the sources with a
    running timer are the "requested list" X and those without the "exclude list" Y.
    """

    addr: str
    mode: FilterMode = FilterMode.INCLUDE
    sources: set[str] = field(default_factory=set)
    reporter: str = ANY
    joined_at: float = 0.0
    reported: tuple[FilterMode, frozenset[str]] | None = None  # state in the last event
    last_event_at: float = float("-inf")
    group_queries_left: int = 0
    source_queries_left: dict[str, int] = field(default_factory=dict)


_R = RecordType
_KNOWN_RECORDS = frozenset(int(t) for t in RecordType)
_ASSERTING = frozenset({_R.MODE_IS_EXCLUDE, _R.CHANGE_TO_EXCLUDE})
_WITH_SOURCES_ASSERTING = frozenset(
    {_R.MODE_IS_INCLUDE, _R.ALLOW_NEW_SOURCES, _R.CHANGE_TO_INCLUDE}
)
_NONE: frozenset[str] = frozenset()


def _ip_key(addr: str) -> int:
    return int.from_bytes(socket.inet_aton(addr), "big")


def _chunks(items: list[str], size: int) -> Iterable[tuple[str, ...]]:
    for i in range(0, len(items), size):
        yield tuple(items[i : i + size])


class IgmpInterface:
    """IGMP querier and group membership state of one interface."""

    def __init__(self, config: IgmpConfig) -> None:
        self.config = config
        self._state = IfState.DOWN
        self._addr_key = _ip_key(config.address)
        self._querier: str | None = None
        self._robustness = config.robustness
        self._query_interval = config.query_interval
        self._startup_left = 0
        self._timers = _Timers()
        self._groups: dict[str, _Group] = {}
        self._counts: Counter[str] = Counter()
        self._drops: Counter[str] = Counter()

    # ---- inputs -------------------------------------------------------------------------

    def start(self, now: float) -> list[Output]:
        """The interface came up: become querier and send the startup queries."""
        if self._state is not IfState.DOWN:
            return []
        self._set_state(IfState.QUERIER)
        self._querier = self.config.address
        self._robustness = self.config.robustness
        self._query_interval = self.config.query_interval
        self._startup_left = self.config.startup_query_count
        out = self._general_query(now)
        self._schedule_general_query(now)
        return out

    def stop(self, now: float) -> list[Output]:
        """The interface went down: forget every group (a LEAVE each) and every timer."""
        if self._state is IfState.DOWN:
            return []
        out: list[Output] = [self._event(EventKind.LEAVE, g, now) for g in self._groups.values()]
        self._groups.clear()
        self._timers.clear()
        self._set_state(IfState.DOWN)
        self._querier = None
        self._startup_left = 0
        return out

    def packet_received(self, msg: IpIgmp, now: float) -> list[Output]:
        """A decoded IGMP message arrived on the interface."""
        if self._state is IfState.DOWN:
            self._drops["down"] += 1
            return []
        out = self._fire_due(now)
        if msg.src == self.config.address:
            self._drops["own-packet"] += 1
            return out
        match msg.message:
            case Query() as q:
                out += self._on_query(msg, q, now)
            case V1Report() | V2Report() as r:
                out += self._on_old_report(msg, r, now)
            case V2Leave() as leave:
                out += self._on_leave(leave, now)
            case V3Report() as r:
                out += self._on_v3_report(msg, r, now)
        return out

    def tick(self, now: float) -> list[Output]:
        """Fire every timer whose deadline is <= now."""
        return [] if self._state is IfState.DOWN else self._fire_due(now)

    def adopt(self, entries: Iterable[AdoptedGroup], now: float) -> list[Output]:
        """Install groups learned from the backup peer as if their hosts had just reported.

        Each entry is applied as a current-state record (IS_IN / IS_EX with its sources; in
        v2 mode a plain join), so a new group gets fresh timers (GMI) and a JOIN, and a known
        one is refreshed in place. Then, if we are querier, a general query goes out at once
        so the hosts confirm the entries; during startup it counts as one startup query.
        Ignored while the interface is down (stop() would have forgotten them anyway).
        """
        if self._state is IfState.DOWN:
            return []
        out = self._fire_due(now)
        adopted = False
        for e in entries:
            if self.config.version == 2:
                if e.mode == FilterMode.INCLUDE and not e.sources:
                    continue
                rtype, sources = _R.MODE_IS_EXCLUDE, _NONE
            else:
                mode = FilterMode(e.mode)
                if mode is FilterMode.INCLUDE and not e.sources:
                    continue
                rtype = _R.MODE_IS_INCLUDE if mode is FilterMode.INCLUDE else _R.MODE_IS_EXCLUDE
                sources = frozenset(e.sources)
            g = self._group(e.group)
            self._apply(g, rtype, sources, now)  # current-state records send no query
            g.reporter = e.reporter
            out += self._commit(g, now, refreshed=True)
            adopted = True
        if adopted and self._state is IfState.QUERIER:
            in_startup = self._startup_left > 0
            out += self._general_query(now)
            if in_startup:
                self._schedule_general_query(now)
        return out

    def count_drop(self, reason: str) -> None:
        """Count a datagram that did not decode (DecodeError.reason)."""
        self._drops[reason] += 1

    # ---- queries ------------------------------------------------------------------------

    @property
    def state(self) -> IfState:
        return self._state

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    def group_addresses(self) -> list[str]:
        return list(self._groups)

    def snapshot(self, now: float) -> IgmpSnapshot:
        c = self.config
        t = self._timers

        def left(key: _Key) -> float | None:
            d = t.deadline(key)
            return None if d is None else max(0.0, d - now)

        groups = [self._group_snapshot(g, now) for g in self._groups.values()]
        groups.sort(key=lambda gs: _ip_key(gs.group))
        cnt = self._counts
        return IgmpSnapshot(
            ifname=c.ifname,
            address=c.address,
            state=self._state,
            version=c.version,
            querier_address=self._querier,
            robustness=self._robustness,
            query_interval=self._query_interval,
            configured_robustness=c.robustness,
            configured_query_interval=c.query_interval,
            max_response=c.max_response,
            last_member_query_interval=c.last_member_query_interval,
            last_member_query_count=self._robustness,
            startup_query_interval=c.startup_query_interval,
            startup_query_count=c.startup_query_count,
            other_querier_present_interval=self._oqpi,
            group_membership_interval=self._gmi,
            older_host_present_interval=self._gmi,
            next_general_query=left((TimerName.GENERAL_QUERY, "", "")),
            other_querier_expires=left((TimerName.OTHER_QUERIER, "", "")),
            startup_queries_left=self._startup_left,
            counters=IgmpCounters(
                queries_received=cnt["queries-received"],
                v1_reports_received=cnt["v1-reports-received"],
                v2_reports_received=cnt["v2-reports-received"],
                v3_reports_received=cnt["v3-reports-received"],
                leaves_received=cnt["leaves-received"],
                general_queries_sent=cnt["general-queries-sent"],
                group_queries_sent=cnt["group-queries-sent"],
                source_queries_sent=cnt["source-queries-sent"],
                version_mismatches=cnt["version-mismatch"],
            ),
            dropped=dict(sorted(self._drops.items())),
            groups=tuple(groups),
        )

    def _group_snapshot(self, g: _Group, now: float) -> GroupSnapshot:
        t = self._timers
        sources = []
        for s in sorted(g.sources, key=_ip_key):
            d = t.deadline((TimerName.SOURCE, g.addr, s))
            sources.append(SourceSnapshot(s, None if d is None else max(0.0, d - now)))
        if g.mode is FilterMode.EXCLUDE:
            expiry = t.deadline((TimerName.GROUP, g.addr, ""))
        else:
            expiry = max((d for s in g.sources if (d := t.deadline(self._src(g, s)))), default=None)
        v1 = t.deadline((TimerName.V1_HOST, g.addr, ""))
        v2 = t.deadline((TimerName.V2_HOST, g.addr, ""))
        return GroupSnapshot(
            group=g.addr,
            mode=g.mode,
            sources=tuple(sources),
            reporter=g.reporter,
            uptime=now - g.joined_at,
            expires=0.0 if expiry is None else max(0.0, expiry - now),
            compat=self._compat(g),
            v1_host_expires=None if v1 is None else max(0.0, v1 - now),
            v2_host_expires=None if v2 is None else max(0.0, v2 - now),
            last_member_queries_left=g.group_queries_left,
        )

    # ---- derived intervals (the querier's QRV/QQI when we are not querier) ---------------

    @property
    def _gmi(self) -> float:
        """Group membership interval, also the older host present interval (RFC 3376 8.4)."""
        return self._robustness * self._query_interval + self.config.max_response

    @property
    def _oqpi(self) -> float:
        if self.config.other_querier_timeout is not None:
            return self.config.other_querier_timeout
        return self._robustness * self._query_interval + self.config.max_response / 2

    @property
    def _lmqt(self) -> float:
        return self._robustness * self.config.last_member_query_interval

    # ---- querier election and general queries -------------------------------------------

    def _set_state(self, new: IfState) -> None:
        self._state = check_transition(self._state, new)

    def _query_payload(
        self,
        group: str,
        max_response: float,
        s_flag: bool = False,
        sources: tuple[str, ...] = (),
    ) -> bytes:
        if self.config.version == 2:
            return encode(Query.v2(max_response, group))
        return encode(
            Query.v3(
                max_response,
                group,
                robustness=self._robustness,
                query_interval=self._query_interval,
                s_flag=s_flag,
                sources=sources,
            )
        )

    def _general_query(self, now: float) -> list[Output]:
        """Send one general query; during startup it is one of the startup queries."""
        self._counts["general-queries-sent"] += 1
        if self._startup_left > 0:
            self._startup_left -= 1
        return [SendQuery(ALL_SYSTEMS, self._query_payload(ANY, self.config.max_response))]

    def _query_period(self) -> float:
        c = self.config
        return c.startup_query_interval if self._startup_left > 0 else c.query_interval

    def _schedule_general_query(self, now: float) -> None:
        self._timers.start((TimerName.GENERAL_QUERY, "", ""), now + self._query_period())

    def _on_general_query_timer(self, deadline: float, now: float) -> list[Output]:
        out = self._general_query(now)
        period = self._query_period()
        nxt = deadline + period
        while nxt <= now:  # woken late: skip missed slots, keep the phase
            nxt += period
        self._timers.start((TimerName.GENERAL_QUERY, "", ""), nxt)
        return out

    def _on_other_querier_timer(self, now: float) -> list[Output]:
        """The other querier went quiet: take over (RFC 2236 7, RFC 3376 6.6.2)."""
        self._set_state(IfState.QUERIER)
        self._querier = self.config.address
        self._robustness = self.config.robustness
        self._query_interval = self.config.query_interval
        self._startup_left = 0
        out = self._general_query(now)
        self._schedule_general_query(now)
        return out

    def _on_query(self, ip: IpIgmp, q: Query, now: float) -> list[Output]:
        if ip.src == ANY:
            self._drops["query-from-zero"] += 1  # RFC 3376 6.6.2: not a querier candidate
            return []
        if not (q.general or is_multicast(q.group)):
            self._drops["bad-group"] += 1
            return []
        self._counts["queries-received"] += 1
        if q.version != self.config.version:
            self._counts["version-mismatch"] += 1  # RFC 3376 7.3.1: an administrative error
        if _ip_key(ip.src) < self._addr_key:
            if self._state is IfState.QUERIER:
                self._become_non_querier()
            self._querier = ip.src
            if q.version == 3:
                self._robustness = q.qrv or self._robustness
                self._query_interval = q.qqi or self._query_interval
            self._timers.start((TimerName.OTHER_QUERIER, "", ""), now + self._oqpi)
        if (
            self._state is IfState.NON_QUERIER
            and ip.src == self._querier
            and not q.general
            and not q.s_flag
        ):
            self._lower_from_query(q, now)
        return []

    def _become_non_querier(self) -> None:
        """A lower address queries: stop querying, including any last-member queries."""
        self._set_state(IfState.NON_QUERIER)
        self._startup_left = 0
        self._timers.stop((TimerName.GENERAL_QUERY, "", ""))
        for g in self._groups.values():
            if g.group_queries_left or g.source_queries_left:
                g.group_queries_left = 0
                g.source_queries_left.clear()
                self._timers.stop((TimerName.RETRANSMIT, g.addr, ""))

    def _lower_from_query(self, q: Query, now: float) -> None:
        """RFC 3376 6.6.1: the querier's Q(G) / Q(G,A) lowers our group / source timers."""
        g = self._groups.get(q.group)
        if g is None:
            return
        count = q.qrv if q.version == 3 and q.qrv else self._robustness
        at = now + count * q.max_response
        if q.sources:
            for s in q.sources:
                self._timers.lower(self._src(g, s), at)
        elif g.mode is FilterMode.EXCLUDE:
            self._timers.lower((TimerName.GROUP, g.addr, ""), at)

    # ---- reports ------------------------------------------------------------------------

    def _group(self, addr: str) -> _Group:
        """The group's record, or a fresh INCLUDE({}) one (not stored until _commit)."""
        g = self._groups.get(addr)
        return _Group(addr) if g is None else g

    def _compat(self, g: _Group) -> int:
        if (TimerName.V1_HOST, g.addr, "") in self._timers:
            return 1
        if (TimerName.V2_HOST, g.addr, "") in self._timers:
            return 2
        return self.config.version

    def _on_old_report(self, ip: IpIgmp, r: V1Report | V2Report, now: float) -> list[Output]:
        """v1/v2 report: IS_EX({}) and the older-host-present timer (RFC 3376 7.3.2)."""
        if not is_multicast(r.group):
            self._drops["bad-group"] += 1
            return []
        if ip.dst != r.group:
            self._drops["dst-mismatch"] += 1
            return []
        v1 = isinstance(r, V1Report)
        self._counts["v1-reports-received" if v1 else "v2-reports-received"] += 1
        g = self._group(r.group)
        self._apply(g, _R.MODE_IS_EXCLUDE, _NONE, now)  # IS_EX sends no query
        g.reporter = ip.src
        out = self._commit(g, now, refreshed=True)
        if v1:
            self._timers.start((TimerName.V1_HOST, g.addr, ""), now + self._gmi)
        elif self.config.version == 3:
            self._timers.start((TimerName.V2_HOST, g.addr, ""), now + self._gmi)
        return out

    def _on_leave(self, leave: V2Leave, now: float) -> list[Output]:
        """v2 leave: TO_IN({}), ignored while v1 hosts are present (RFC 3376 7.3.2)."""
        if not is_multicast(leave.group):
            self._drops["bad-group"] += 1
            return []
        self._counts["leaves-received"] += 1
        g = self._groups.get(leave.group)
        if g is None:
            return []
        if self._compat(g) == 1:
            self._drops["v1-compat"] += 1
            return []
        armed = self._apply(g, _R.CHANGE_TO_INCLUDE, _NONE, now)
        out = self._commit(g, now, refreshed=False)
        return out + self._send_pending(g, now) if armed else out

    def _on_v3_report(self, ip: IpIgmp, r: V3Report, now: float) -> list[Output]:
        if not ip.router_alert:
            self._drops["no-router-alert"] += 1  # RFC 3376 9.2
            return []
        if ip.ttl != 1:
            self._drops["bad-ttl"] += 1
            return []
        self._counts["v3-reports-received"] += 1
        touched: dict[str, tuple[_Group, bool]] = {}  # group -> (record, asserted)
        armed: dict[str, _Group] = {}
        out: list[Output] = []
        for rec in r.records:
            if rec.record_type not in _KNOWN_RECORDS:
                self._drops["unknown-record-type"] += 1  # RFC 3376 4.2.12: ignore the record
                continue
            if not is_multicast(rec.group):
                self._drops["bad-group"] += 1
                continue
            g, asserted = touched.get(rec.group) or (self._group(rec.group), False)
            rtype, sources = self._translate(g, rec)
            if rtype is None:
                continue
            if self._apply(g, rtype, sources, now):
                armed[rec.group] = g
            asserts = rtype in _ASSERTING or (bool(sources) and rtype in _WITH_SOURCES_ASSERTING)
            if asserts:
                g.reporter = ip.src
            touched[rec.group] = (g, asserted or asserts)
        for g, asserted in touched.values():
            out += self._commit(g, now, refreshed=asserted)
        for g in armed.values():  # one round per group, whatever the number of records
            out += self._send_pending(g, now)
        return out

    def _translate(self, g: _Group, rec: GroupRecord) -> tuple[RecordType | None, frozenset[str]]:
        """The record as this router acts on it: v2 mode, and v1/v2 compatibility (7.3.2)."""
        rtype, sources = RecordType(rec.record_type), frozenset(rec.sources)
        if self.config.version == 2:
            if rtype is _R.BLOCK_OLD_SOURCES:
                self._drops["v2-mode-block"] += 1
                return None, _NONE
            if rtype in _ASSERTING or (sources and rtype in _WITH_SOURCES_ASSERTING):
                return _R.MODE_IS_EXCLUDE, _NONE  # a join
            if rtype is _R.CHANGE_TO_INCLUDE:  # TO_IN({}): a leave
                if self._compat(g) == 1:
                    self._drops["v1-compat"] += 1
                    return None, _NONE
                return rtype, _NONE
            return None, _NONE  # IS_IN({}) / ALLOW({}): nothing to act on
        compat = self._compat(g)
        if compat < 3:
            if rtype is _R.BLOCK_OLD_SOURCES or (compat == 1 and rtype is _R.CHANGE_TO_INCLUDE):
                self._drops[f"v{compat}-compat"] += 1
                return None, _NONE
            if rtype is _R.CHANGE_TO_EXCLUDE:
                sources = _NONE
        return rtype, sources

    # ---- RFC 3376 6.4: the router's reaction to a record --------------------------------

    def _src(self, g: _Group, s: str) -> _Key:
        return (TimerName.SOURCE, g.addr, s)

    def _set_source(self, g: _Group, s: str, deadline: float) -> None:
        g.sources.add(s)
        self._timers.start(self._src(g, s), deadline)

    def _zero_source(self, g: _Group, s: str) -> None:
        g.sources.add(s)
        self._timers.stop(self._src(g, s))
        g.source_queries_left.pop(s, None)

    def _delete_source(self, g: _Group, s: str) -> None:
        g.sources.discard(s)
        self._timers.stop(self._src(g, s))
        g.source_queries_left.pop(s, None)

    def _apply(self, g: _Group, rtype: RecordType, b: frozenset[str], now: float) -> bool:
        """RFC 3376 6.4.1 (current state) and 6.4.2 (state change) tables, row by row.

        For INCLUDE (A) the record's sources are B; for EXCLUDE (X, Y) they are A. Sources
        are visited in sorted order so equal deadlines fire in a reproducible order. "Send Q"
        actions only arm the queries (and lower timers); the caller sends the round once all
        records of a message are applied. Returns whether any query was armed.
        """
        gmi_at = now + self._gmi
        group_key = (TimerName.GROUP, g.addr, "")
        if g.mode is FilterMode.INCLUDE:
            a = set(g.sources)
            if rtype in (_R.MODE_IS_INCLUDE, _R.ALLOW_NEW_SOURCES, _R.CHANGE_TO_INCLUDE):
                for s in sorted(b):  # INCLUDE (A+B); (B)=GMI
                    self._set_source(g, s, gmi_at)
                if rtype is _R.CHANGE_TO_INCLUDE:
                    return self._arm_source_queries(g, a - b, now)  # Send Q(G,A-B)
                return False
            if rtype is _R.BLOCK_OLD_SOURCES:  # INCLUDE (A); Send Q(G,A*B)
                return self._arm_source_queries(g, a & b, now)
            # IS_EX / TO_EX: EXCLUDE (A*B, B-A); (B-A)=0; Delete (A-B); Group Timer=GMI
            g.mode = FilterMode.EXCLUDE
            for s in sorted(a - b):
                self._delete_source(g, s)
            for s in sorted(b - a):
                self._zero_source(g, s)
            self._timers.start(group_key, gmi_at)
            if rtype is _R.CHANGE_TO_EXCLUDE:
                return self._arm_source_queries(g, a & b, now)  # Send Q(G,A*B)
            return False
        x = {s for s in g.sources if self._src(g, s) in self._timers}
        y = g.sources - x
        if rtype in (_R.MODE_IS_INCLUDE, _R.ALLOW_NEW_SOURCES, _R.CHANGE_TO_INCLUDE):
            for s in sorted(b):  # EXCLUDE (X+A, Y-A); (A)=GMI
                self._set_source(g, s, gmi_at)
            if rtype is _R.CHANGE_TO_INCLUDE:  # Send Q(G,X-A); Send Q(G)
                armed = self._arm_source_queries(g, x - b, now)
                return self._arm_group_query(g, now) or armed
            return False
        group_at = self._timers.deadline(group_key) or gmi_at
        if rtype is _R.BLOCK_OLD_SOURCES:
            for s in sorted(b - x - y):  # EXCLUDE (X+(A-Y), Y); (A-X-Y)=Group Timer
                self._set_source(g, s, group_at)
            return self._arm_source_queries(g, b - y, now)  # Send Q(G,A-Y)
        # IS_EX / TO_EX: EXCLUDE (A-Y, Y*A); Delete (X-A), (Y-A); Group Timer=GMI
        for s in sorted(g.sources - b):
            self._delete_source(g, s)
        new_at = gmi_at if rtype is _R.MODE_IS_EXCLUDE else group_at  # (A-X-Y)=GMI | Group T.
        for s in sorted(b - x - y):
            self._set_source(g, s, new_at)
        self._timers.start(group_key, gmi_at)
        if rtype is _R.CHANGE_TO_EXCLUDE:
            return self._arm_source_queries(g, b - y, now)  # Send Q(G,A-Y)
        return False

    # ---- RFC 3376 6.6.3: last-member queries --------------------------------------------

    def _arm_group_query(self, g: _Group, now: float) -> bool:
        """Send Q(G): lower the group timer to LMQT, query LMQC times every LMQI."""
        if self._state is not IfState.QUERIER:
            return False
        self._timers.lower((TimerName.GROUP, g.addr, ""), now + self._lmqt)
        if g.group_queries_left:
            return False  # already running: a repeated leave does not restart it
        g.group_queries_left = self._robustness
        return True

    def _arm_source_queries(self, g: _Group, sources: Iterable[str], now: float) -> bool:
        """Send Q(G,S): sources with timer > LMQT get it lowered and LMQC queries."""
        if self._state is not IfState.QUERIER:
            return False
        at = now + self._lmqt
        armed = False
        for s in sources:
            key = self._src(g, s)
            d = self._timers.deadline(key)
            if d is not None and d > at:
                self._timers.start(key, at)
                g.source_queries_left[s] = self._robustness
                armed = True
        return armed

    def _send_pending(self, g: _Group, now: float) -> list[Output]:
        """One round of g's last-member queries, then schedule the next round if any.

        The group query has S set when the group timer is above LMQT again (a report came
        in); source queries go in two messages, S set for sources whose timers are above
        LMQT and clear for the rest, the S-set one omitted when a group query goes out too.
        """
        out: list[Output] = []
        lmqi = self.config.last_member_query_interval
        lmqt_at = now + self._lmqt
        if g.group_queries_left:
            d = self._timers.deadline((TimerName.GROUP, g.addr, ""))
            s_flag = d is not None and d > lmqt_at
            out.append(SendQuery(g.addr, self._query_payload(g.addr, lmqi, s_flag)))
            self._counts["group-queries-sent"] += 1
            g.group_queries_left -= 1
        if g.source_queries_left:
            high: list[str] = []
            low: list[str] = []
            for s, left in list(g.source_queries_left.items()):
                d = self._timers.deadline(self._src(g, s))
                (high if d is not None and d > lmqt_at else low).append(s)
                if left > 1:
                    g.source_queries_left[s] = left - 1
                else:
                    del g.source_queries_left[s]
            for s_flag, srcs in ((True, [] if out else high), (False, low)):
                for chunk in _chunks(sorted(srcs, key=_ip_key), MAX_QUERY_SOURCES):
                    payload = self._query_payload(g.addr, lmqi, s_flag, chunk)
                    out.append(SendQuery(g.addr, payload))
                    self._counts["source-queries-sent"] += 1
        retransmit = (TimerName.RETRANSMIT, g.addr, "")
        if g.group_queries_left or g.source_queries_left:
            self._timers.start(retransmit, now + lmqi)
        else:
            self._timers.stop(retransmit)
        return out

    # ---- group lifecycle and events -----------------------------------------------------

    def _forwarding(self, g: _Group) -> frozenset[str]:
        """INCLUDE: the sources to forward; EXCLUDE: those not to (timer 0, RFC 3376 6.3)."""
        if g.mode is FilterMode.INCLUDE:
            return frozenset(g.sources)
        if not g.sources:
            return _NONE
        return frozenset(s for s in g.sources if self._src(g, s) not in self._timers)

    def _event(self, kind: EventKind, g: _Group, now: float) -> GroupEvent:
        if kind is EventKind.LEAVE:
            mode, sources = FilterMode.INCLUDE, _NONE
        else:
            mode, sources = g.mode, self._forwarding(g)
            g.reported = (mode, sources)
        g.last_event_at = now
        return GroupEvent(kind, self.config.ifname, g.addr, str(mode), sources, g.reporter, now)

    def _commit(self, g: _Group, now: float, refreshed: bool) -> list[Output]:
        """Store, delete or keep g after records were applied, and say what happened."""
        stored = g.addr in self._groups
        if g.mode is FilterMode.INCLUDE and not g.sources:
            return [self._delete(g, now)] if stored else []
        if not stored:
            self._groups[g.addr] = g
            g.joined_at = now
            return [self._event(EventKind.JOIN, g, now)]
        if (g.mode, self._forwarding(g)) != g.reported:
            return [self._event(EventKind.SOURCES, g, now)]
        if refreshed and now - g.last_event_at >= REFRESH_HOLDDOWN:
            return [self._event(EventKind.REFRESH, g, now)]
        return []

    def _delete(self, g: _Group, now: float) -> GroupEvent:
        del self._groups[g.addr]
        for name in (TimerName.GROUP, TimerName.V1_HOST, TimerName.V2_HOST, TimerName.RETRANSMIT):
            self._timers.stop((name, g.addr, ""))
        for s in g.sources:
            self._timers.stop(self._src(g, s))
        return self._event(EventKind.LEAVE, g, now)

    def _on_group_timer(self, g: _Group, now: float) -> list[Output]:
        """RFC 3376 6.5: EXCLUDE group timer out: INCLUDE with X if any, else no group."""
        for s in [s for s in g.sources if self._src(g, s) not in self._timers]:
            self._delete_source(g, s)  # Y goes
        g.mode = FilterMode.INCLUDE
        g.group_queries_left = 0
        return self._commit(g, now, refreshed=False)

    def _on_source_timer(self, g: _Group, s: str, now: float) -> list[Output]:
        """RFC 3376 6.3: INCLUDE drops the source; EXCLUDE keeps it as "do not forward"."""
        g.source_queries_left.pop(s, None)
        if g.mode is FilterMode.INCLUDE:
            g.sources.discard(s)
        return self._commit(g, now, refreshed=False)

    def _fire_due(self, now: float) -> list[Output]:
        out: list[Output] = []
        while (due := self._timers.pop_due(now)) is not None:
            (name, group, source), deadline = due
            if name is TimerName.GENERAL_QUERY:
                out += self._on_general_query_timer(deadline, now)
            elif name is TimerName.OTHER_QUERIER:
                out += self._on_other_querier_timer(now)
            elif name is TimerName.GROUP:
                out += self._on_group_timer(self._groups[group], now)
            elif name is TimerName.SOURCE:
                out += self._on_source_timer(self._groups[group], source, now)
            elif name is TimerName.RETRANSMIT:
                out += self._send_pending(self._groups[group], now)
            # V1_HOST / V2_HOST: their expiry is the event; _compat reads them.
        return out
