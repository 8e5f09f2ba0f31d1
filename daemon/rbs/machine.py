"""The RBS backup channel of one remote-backup-service, and the profile sync over it, without I/O.

`RbsChannel` owns one TCP connection's protocol: it is told when the connection is up or gone
and what bytes arrived, and answers with outputs (bytes to write, close, connect, mirror
changes, state changes). It owns the reassembly buffer, every timer (as absolute deadlines in
one table; `tick(now)` fires those due) and one `_Profile` per remote-backup-profile bound to
the service. Every input takes `now` (monotonic seconds) and returns the outputs it caused.
The connection state's transitions are checked against TRANSITIONS.

Who connects (see docs/protocol.md): the device whose source address is numerically higher
listens on (source, port) and accepts only its configured peer; the lower one connects from
its source address to (peer, port), retrying after 0.1 s, doubling to 5 s, reset once a
connection reaches ESTABLISHED. A connect attempt that takes longer than 3 s is abandoned.
Both sides send OPEN at once; each answers the other's OPEN with OPEN_ACK; a side is
ESTABLISHED when it has the peer's OPEN_ACK. KEEPALIVE goes out every 1 s from the connection
on (fixed deadlines, never re-armed by other traffic), and 3.5 s without a received record
closes the connection ("dead-peer").

Profiles. OPEN lists (name, backup-id, service types) of every profile a side serves. A
profile is SYNCED when the peer serves one of the same name with the same backup-id and
service types; MISMATCH when the peer has the name with another backup-id or services, or the
backup-id under another name (an ERROR BACKUP_ID_MISMATCH goes to the peer and a `Mismatch`
output to the device, and nothing is synced for it); ABSENT when the peer has neither.

Roles. `set_role(profile, sender)` follows our E-Trunk member: the master's side is SENDER.
A SENDER profile keeps the local table fed by `local_change`; on ESTABLISHED, and whenever it
becomes SENDER while established, it sends a batch (BATCH_START, one ENTRY ADD per entry,
BATCH_END asking for an ACK), then one ENTRY per change. Changes wait in a queue keyed by
entry while `window` records of the profile are unacknowledged; a queued change is coalesced
with later ones, and what goes out is the entry's state when it leaves, relative to what the
peer was last told: a join and a leave that meet in the queue send nothing. When the
connection drops, the queue and the send window are dropped too: the next connection starts
with a batch. A RECEIVER profile applies the peer's records to its mirror; a batch replaces
the mirror (entries the batch did not carry are removed at BATCH_END). Records are applied
whatever our role (they describe what the peer holds); the device decides what to do with
`MirrorChanged`. The receiver acknowledges after `ack_every` records, at once when asked, and
otherwise within `ack_delay_s`.

Mirror aging. Mirror entries do not age while the channel is ESTABLISHED, the profile is
SYNCED and our role is RECEIVER (the peer is the sender and tells us about every change).
From the moment one of those stops being true (the channel drops, we become SENDER, or a
mismatch appears), each entry is kept until `mirror_expiry_s` (default 260 s, VRP's IGMP
group membership interval) after that moment, or after its last update if later, and is then
removed with a `MirrorChanged(DELETE, cause="expired")`. Aging stops again (nothing expires)
when all three hold once more; the peer's next batch then replaces the mirror.

Uptime. An entry's `uptime_s` is its age when the value was given; the sender adds the
seconds since then when it encodes the entry, so a batch sent later carries the right age.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum, StrEnum
from ipaddress import IPv4Address
from typing import TypeAlias

from daemon.rbs.codec import (
    HEADER_LEN,
    IGMP,
    SEQ_MOD,
    Ack,
    BatchEnd,
    BatchStart,
    Entry,
    Error,
    ErrorCode,
    Flags,
    Keepalive,
    Message,
    Op,
    Open,
    OpenAck,
    ProfileInfo,
    Record,
    ServiceKey,
    ServiceValue,
    check_header,
    decode,
    encode_entry,
    encode_message,
)
from daemon.wire import DecodeError

KEEPALIVE_TIME = 1.0
DEAD_TIME = 3.5
CONNECT_TIMEOUT = 3.0
BACKOFF_INITIAL = 0.1
BACKOFF_MAX = 5.0
MIRROR_EXPIRY = 260.0  # VRP's IGMP group membership interval: 2 x 125 s + 10 s
WINDOW = 1024  # unacknowledged records per profile before changes queue
ACK_EVERY = 64
ACK_DELAY = 0.05

NORMAL_CLOSE = frozenset({"peer-closed", "replaced", "shutdown"})
"""Close reasons that are not errors; every other reason is counted under errors."""

_ACK_REQUEST = int(Flags.ACK_REQUEST)
_HOLDINGS = int(Flags.HOLDINGS)
_HALF = SEQ_MOD // 2


def should_listen(source: IPv4Address | str, peer: IPv4Address | str) -> bool:
    """The documented rule: the numerically higher source address listens."""
    return int(IPv4Address(source)) > int(IPv4Address(peer))


def _serial_lt(a: int, b: int) -> bool:
    """a < b in 32-bit serial number arithmetic (RFC 1982)."""
    return a != b and (b - a) % SEQ_MOD < _HALF


class ConnState(IntEnum):
    IDLE = 1  # not started, or shut down
    CONNECTING = 2  # a connect attempt is under way (connecting side)
    LISTENING = 3  # waiting for the peer to connect (listening side)
    OPEN_SENT = 4  # TCP up, our OPEN sent, the peer's OPEN / OPEN_ACK awaited
    ESTABLISHED = 5
    CLOSED = 6  # a connection ended; the connecting side waits out its backoff here


_C = ConnState
TRANSITIONS: Mapping[ConnState, frozenset[ConnState]] = {
    _C.IDLE: frozenset({_C.CONNECTING, _C.LISTENING}),
    _C.CONNECTING: frozenset({_C.OPEN_SENT, _C.CLOSED}),
    _C.LISTENING: frozenset({_C.OPEN_SENT, _C.IDLE}),
    _C.OPEN_SENT: frozenset({_C.ESTABLISHED, _C.CLOSED}),
    _C.ESTABLISHED: frozenset({_C.CLOSED}),
    _C.CLOSED: frozenset({_C.CONNECTING, _C.LISTENING, _C.IDLE}),
}


class IllegalTransition(RuntimeError):
    """The machine tried a transition its state diagram does not have: a bug, never input."""


def check_transition(old: ConnState, new: ConnState) -> ConnState:
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"ConnState: {old.name} -> {new.name}")
    return new


class Role(StrEnum):
    SENDER = "sender"  # our E-Trunk member is master: we send our entries
    RECEIVER = "receiver"  # backup: we mirror the peer's


class PeerStatus(StrEnum):
    UNKNOWN = "unknown"  # no OPEN from the peer on the current connection
    SYNCED = "synced"
    ABSENT = "absent"
    MISMATCH = "mismatch"


class TimerName(StrEnum):
    BACKOFF = "backoff"
    CONNECT = "connect"
    KEEPALIVE = "keepalive"
    DEAD = "dead"
    ACK = "ack"
    EXPIRY = "expiry"  # per profile: the next mirror entry to age out


# ---- configuration, outputs, snapshots --------------------------------------------------


@dataclass(frozen=True)
class ProfileSpec:
    """One remote-backup-profile bound to the service (plain values from the config)."""

    name: str
    backup_id: int
    service_types: tuple[str, ...] = (IGMP,)


@dataclass(frozen=True)
class SendBytes:
    """Write `data` to the current connection."""

    data: bytes


@dataclass(frozen=True)
class Close:
    """Close the current connection (or abandon the connect attempt): `reason` is a token."""

    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Connect:
    """Start a connect attempt from our source address to (peer, port)."""


@dataclass(frozen=True)
class MirrorChanged:
    """A remote entry appeared, changed or went away; `cause` is peer (a change as it
    happened), batch (in or at the end of a batch), expired, handover (our own entries, kept
    as the peer's when we stopped serving) or holdings (the peer's copy of ours, back)."""

    profile: str
    op: Op
    key: ServiceKey
    value: ServiceValue | None
    cause: str = "peer"


@dataclass(frozen=True)
class ChannelState:
    state: ConnState
    reason: str = ""


@dataclass(frozen=True)
class Mismatch:
    """A profile is configured differently on the peer: nothing is synced for it."""

    profile: str
    detail: str


@dataclass(frozen=True)
class PeerHolds:
    """Whether the peer holds everything we serve for `profile`: we are the sender on an
    established, synced connection, and every record we sent (the batch included) is
    acknowledged with nothing queued. Reported when it changes. Handing the traffic back to
    the peer before this is true would have it serve an old or empty copy."""

    profile: str
    holds: bool


@dataclass(frozen=True)
class HoldingsReceived:
    """The peer's copy of our entries for `profile` (sent by a peer that does not serve it,
    when the connection came up). If we serve the profile, the entries we lack are groups
    we served before a restart: serve them again. (A receiver also merges them into its
    mirror; this output comes either way, once per HOLDINGS batch.)"""

    profile: str
    entries: Mapping[ServiceKey, ServiceValue]


Output: TypeAlias = (SendBytes | Close | Connect | MirrorChanged | ChannelState | Mismatch
                     | PeerHolds | HoldingsReceived)


@dataclass(frozen=True)
class ProfileSnapshot:
    name: str
    backup_id: int
    service_types: tuple[str, ...]
    role: Role
    peer_status: PeerStatus
    mismatch: str | None
    local_entries: int
    mirror_entries: int
    unacked: int
    queued: int
    batches_sent: int
    batches_received: int
    aging: bool  # mirror entries are counting down to expiry
    ever_synced: bool  # the peer has served this profile too, on some connection


@dataclass(frozen=True)
class ChannelSnapshot:
    name: str
    device: str
    source: IPv4Address
    peer: IPv4Address
    listen: bool
    state: ConnState
    tcp_state: str  # "connected" / "disconnected", as VRP's TCP-State
    peer_device: str | None
    last_up: str | None  # wall clock, "2018-05-29 03:21:36"
    last_down_reason: str | None
    counters: Mapping[str, int]
    errors: Mapping[str, int]
    profiles: tuple[ProfileSnapshot, ...]

    def profile(self, name: str) -> ProfileSnapshot | None:
        return next((p for p in self.profiles if p.name == name), None)


# ---- internals --------------------------------------------------------------------------


class _ProtocolError(Exception):
    def __init__(self, reason: str, detail: str = "", code: ErrorCode = ErrorCode.PROTOCOL):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.code = code


class _Timers:
    """Every pending timer as an absolute deadline keyed by (timer, profile or "")."""

    def __init__(self) -> None:
        self._deadlines: dict[tuple[TimerName, str], float] = {}

    def start(self, timer: TimerName, deadline: float, profile: str = "") -> None:
        self._deadlines[(timer, profile)] = deadline

    def stop(self, timer: TimerName, profile: str = "") -> None:
        self._deadlines.pop((timer, profile), None)

    def pending(self, timer: TimerName, profile: str = "") -> bool:
        return (timer, profile) in self._deadlines

    def clear(self) -> None:
        self._deadlines.clear()

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def pop_due(self, now: float) -> tuple[TimerName, str, float] | None:
        key = min(self._deadlines, key=self._deadlines.__getitem__, default=None)
        if key is None or self._deadlines[key] > now:
            return None
        return key[0], key[1], self._deadlines.pop(key)


@dataclass(eq=False)
class _Profile:
    spec: ProfileSpec
    role: Role = Role.RECEIVER
    status: PeerStatus = PeerStatus.UNKNOWN
    mismatch: str | None = None
    # sender side: our entries (value, when given), what the peer holds per what we sent on
    # this connection, changes waiting for the window, and our unacknowledged sequences
    local: dict[ServiceKey, tuple[ServiceValue, float]] = field(default_factory=dict)
    peer_view: set[ServiceKey] = field(default_factory=set)
    queue: dict[ServiceKey, None] = field(default_factory=dict)
    unacked: deque[int] = field(default_factory=deque)
    # receiver side: the peer's entries (value, when last updated), a batch being received
    mirror: dict[ServiceKey, tuple[ServiceValue, float]] = field(default_factory=dict)
    batch: set[ServiceKey] | None = None
    batch_expected: int = 0
    aging_from: float | None = None
    batches_sent: int = 0
    batches_received: int = 0
    peer_served: bool = False  # the peer sent entries while we were the sender
    reported_holds: bool = False  # the last PeerHolds output
    holdings: dict[ServiceKey, ServiceValue] | None = None  # a HOLDINGS batch being received
    holdings_expected: int = 0
    ever_synced: bool = False  # some connection found the peer serving this profile too

    @property
    def name(self) -> str:
        return self.spec.name

    def reset_connection(self) -> None:
        self.peer_view = set()
        self.queue.clear()
        self.unacked.clear()
        self.batch = None
        self.holdings = None


def _same_state(a: ServiceValue, b: ServiceValue) -> bool:
    """Equal but for the age: an update that only moves uptime is not reported."""
    return a.mode == b.mode and a.sources == b.sources and a.last_reporter == b.last_reporter


def format_wall(t: float) -> str:
    """VRP's time of day, local time: 2018-05-29 03:21:36."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


class RbsChannel:
    """One remote-backup-service: the connection machine and its profiles' sync."""

    def __init__(
        self,
        name: str,
        device: str,
        source: IPv4Address | str,
        peer: IPv4Address | str,
        profiles: Iterable[ProfileSpec] = (),
        *,
        listen: bool | None = None,
        keepalive_s: float = KEEPALIVE_TIME,
        dead_s: float = DEAD_TIME,
        connect_timeout_s: float = CONNECT_TIMEOUT,
        backoff_initial_s: float = BACKOFF_INITIAL,
        backoff_max_s: float = BACKOFF_MAX,
        mirror_expiry_s: float = MIRROR_EXPIRY,
        window: int = WINDOW,
        ack_every: int = ACK_EVERY,
        ack_delay_s: float = ACK_DELAY,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.device = device
        self.source = IPv4Address(source)
        self.peer = IPv4Address(peer)
        if self.source == self.peer:
            raise ValueError("source and peer must differ")
        self.listen = should_listen(self.source, self.peer) if listen is None else listen
        specs = tuple(profiles)
        # Building our OPEN validates names, backup-ids and service types, and uniqueness.
        self._open = Open(
            device,
            self.source,
            tuple(ProfileInfo(s.name, s.backup_id, tuple(s.service_types)) for s in specs),
        )
        if window < 1 or ack_every < 1:
            raise ValueError("window and ack_every must be >= 1")
        self._keepalive_s = keepalive_s
        self._dead_s = dead_s
        self._connect_timeout_s = connect_timeout_s
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._expiry_s = mirror_expiry_s
        self._window = window
        self._ack_every = ack_every
        self._ack_delay_s = ack_delay_s
        self._wall_clock = wall_clock

        self._profiles = {s.name: _Profile(s) for s in specs}
        self._by_id = {p.spec.backup_id: p for p in self._profiles.values()}
        self._state = ConnState.IDLE
        self._stopped = False
        self._timers = _Timers()
        self._backoff = backoff_initial_s
        self._counters: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._last_up: str | None = None
        self._last_down: str | None = None
        # per connection
        self._conn_id = 0
        self._buf = bytearray()  # the start of a record not yet complete
        self._need = 0  # its full length, once its header is in
        self._tx: list[bytes] = []
        self._tx_seq = 1
        self._rx_seq = 0
        self._peer_acked = 0
        self._peer_open: Open | None = None
        self._ack_pending = 0
        self._ack_now = False

    # ---- inputs -------------------------------------------------------------------------

    def start(self, now: float) -> list[Output]:
        """Begin: listen, or make the first connect attempt at once."""
        if self._stopped or self._state is not ConnState.IDLE:
            return []
        out = self._fire_due(now)
        if self.listen:
            self._to(ConnState.LISTENING, out)
        else:
            self._begin_connect(out, now)
        return self._finish(out)

    def connected(self, now: float) -> list[Output]:
        """A TCP connection to the peer is up (accepted, or our attempt succeeded)."""
        if self._stopped or self._state not in (ConnState.CONNECTING, ConnState.LISTENING):
            return [Close("unexpected-connection")]
        self._timers.stop(TimerName.CONNECT)  # it succeeded, even if the timeout is due now
        out: list[Output] = []
        self._to(ConnState.OPEN_SENT, out)
        self._buf, self._need = bytearray(), 0
        self._tx_seq, self._rx_seq, self._peer_acked = 1, 0, 0
        self._peer_open = None
        self._ack_pending, self._ack_now = 0, False
        self._send(self._open)
        self._timers.start(TimerName.KEEPALIVE, now + self._keepalive_s)
        self._timers.start(TimerName.DEAD, now + self._dead_s)
        out += self._fire_due(now)
        return self._finish(out)

    def closed(self, reason: str, now: float, detail: str = "") -> list[Output]:
        """The connection (or the connect attempt) ended under us: reset, or an I/O error."""
        out = self._fire_due(now)
        live = (ConnState.CONNECTING, ConnState.OPEN_SENT, ConnState.ESTABLISHED)
        if not self._stopped and self._state in live:
            self._down(out, reason, detail, now, send_close=False)
        return self._finish(out)

    def data_received(self, data: bytes, now: float) -> list[Output]:
        """Bytes from the stream, cut anywhere: complete records are handled in order."""
        out = self._fire_due(now)
        if self._state not in (ConnState.OPEN_SENT, ConnState.ESTABLISHED) or not data:
            return self._finish(out)
        self._counters["bytes_received"] += len(data)
        if self._buf or len(data) < self._need:
            self._buf += data
            if len(self._buf) < self._need:  # the record under way is still incomplete
                return self._finish(out)
            buf = bytes(self._buf)
        else:
            buf = bytes(data)
        pos = 0
        conn = self._conn_id
        try:
            while (got := decode(buf, pos)) is not None:
                record, pos = got
                self._receive(record, now, out)
                if self._conn_id != conn:  # the record closed the connection
                    return self._finish(out)
        except DecodeError as exc:
            self._fail(out, now, ErrorCode.MALFORMED, exc.reason, exc.detail)
            return self._finish(out)
        except _ProtocolError as exc:
            self._fail(out, now, exc.code, exc.reason, exc.detail)
            return self._finish(out)
        rest = buf[pos:]
        self._buf = bytearray(rest)
        # The header of a partial record is known good: wait for all of it before decoding.
        self._need = HEADER_LEN + (check_header(rest) or 0) if len(rest) >= HEADER_LEN else 0
        self._ack_policy(now)
        return self._finish(out)

    def local_change(
        self, profile: str, op: Op, key: ServiceKey, value: ServiceValue | None, now: float
    ) -> list[Output]:
        """Our own entry changed (ADD and UPDATE both mean "is now `value`")."""
        p = self._profile(profile)
        op = Op(op)
        if key.service not in p.spec.service_types:
            raise ValueError(f"profile {profile} does not back up service {key.service}")
        if (op is Op.DELETE) != (value is None):
            raise ValueError(f"{op.name} needs {'no ' if op is Op.DELETE else ''}value")
        out = self._fire_due(now)
        if self._stopped:
            return self._finish(out)
        if value is None:
            p.local.pop(key, None)
        else:
            p.local[key] = (value, now)
        if self._syncing(p):
            p.queue[key] = None
            self._drain(p, now)
        return self._finish(out)

    def set_role(self, profile: str, sender: bool, now: float) -> list[Output]:
        """Our E-Trunk member for this profile became master (sender) or backup."""
        p = self._profile(profile)
        out = self._fire_due(now)
        role = Role.SENDER if sender else Role.RECEIVER
        if self._stopped or p.role is role:
            return self._finish(out)
        p.role = role
        if role is Role.SENDER:
            p.peer_served = False  # (kept on the way back: hand_over reads it)
        p.queue.clear()
        if self._syncing(p):
            self._send_batch(p, now)
        self._update_aging(p, now)
        return self._finish(out)

    def peer_appeared(self, now: float) -> list[Output]:
        """Another protocol (the E-Trunk) has just heard the peer again: a connecting side
        waiting out its backoff (up to 5 s after a long outage) connects now, with the
        backoff reset, so a restarted peer gets its batch in milliseconds."""
        out = self._fire_due(now)
        if not self._stopped and not self.listen and self._state is ConnState.CLOSED:
            self._timers.stop(TimerName.BACKOFF)
            self._backoff = self._backoff_initial
            self._begin_connect(out, now)
        return self._finish(out)

    def hand_over(self, profile: str, now: float) -> list[Output]:
        """We stopped serving `profile`: what we served is what the peer serves next (it
        mirrors our entries and adopts them when it takes over), so our entries join our
        mirror, quietly, until the peer's next batch replaces it. A switchover back to us
        before the peer has said anything then serves what we served, not an older copy (or
        an aged-out one) of what the peer served before us. Call it after set_role(receiver)
        and before the local entries are withdrawn.

        Except when the peer sent us entries while we were the sender: then it was serving
        at the same time (a partition), we yield because the switch uses the peer (E-Trunk),
        and the hosts' groups are what the peer sent, not our stale ones."""
        p = self._profile(profile)
        out = self._fire_due(now)
        if p.peer_served:
            return self._finish(out)
        for key, (value, at) in p.local.items():
            old = p.mirror.get(key)
            aged = replace(value, uptime_s=min(value.uptime_s + int(now - at), SEQ_MOD - 1))
            p.mirror[key] = (aged, now)
            if old is None:
                out.append(MirrorChanged(p.name, Op.ADD, key, aged, "handover"))
            elif not _same_state(old[0], aged):
                out.append(MirrorChanged(p.name, Op.UPDATE, key, aged, "handover"))
        if p.aging_from is not None:
            self._arm_expiry(p)
        return self._finish(out)

    def tick(self, now: float) -> list[Output]:
        """Fire every timer whose deadline is <= now."""
        return self._finish(self._fire_due(now))

    def shutdown(self, now: float) -> list[Output]:
        """Close the connection (TCP FIN is the goodbye) and stop; the machine is inert after."""
        if self._stopped:
            return []
        out = self._fire_due(now)
        self._stopped = True
        if self._state in (ConnState.CONNECTING, ConnState.OPEN_SENT, ConnState.ESTABLISHED):
            self._down(out, "shutdown", "", now, send_close=True)
        if self._state is not ConnState.IDLE:
            self._to(ConnState.IDLE, out, "shutdown")
        self._timers.clear()
        return self._finish(out)

    def count_error(self, reason: str) -> None:
        """Count an event the service saw outside the machine (e.g. "rejected-peer")."""
        self._errors[reason] += 1

    # ---- queries ------------------------------------------------------------------------

    @property
    def state(self) -> ConnState:
        return self._state

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    def mirror(self, profile: str) -> dict[ServiceKey, ServiceValue]:
        """The peer's entries as last received for `profile`."""
        return {k: v for k, (v, _) in self._profile(profile).mirror.items()}

    def local(self, profile: str) -> dict[ServiceKey, ServiceValue]:
        """Our own entries for `profile`, as given to local_change."""
        return {k: v for k, (v, _) in self._profile(profile).local.items()}

    def snapshot(self) -> ChannelSnapshot:
        up = self._state is ConnState.ESTABLISHED
        return ChannelSnapshot(
            name=self.name,
            device=self.device,
            source=self.source,
            peer=self.peer,
            listen=self.listen,
            state=self._state,
            tcp_state="connected" if up else "disconnected",
            peer_device=self._peer_open.device if self._peer_open else None,
            last_up=self._last_up,
            last_down_reason=self._last_down,
            counters=dict(self._counters),
            errors=dict(self._errors),
            profiles=tuple(
                ProfileSnapshot(
                    name=p.name,
                    backup_id=p.spec.backup_id,
                    service_types=tuple(p.spec.service_types),
                    role=p.role,
                    peer_status=p.status,
                    mismatch=p.mismatch,
                    local_entries=len(p.local),
                    mirror_entries=len(p.mirror),
                    unacked=len(p.unacked),
                    queued=len(p.queue),
                    batches_sent=p.batches_sent,
                    batches_received=p.batches_received,
                    aging=p.aging_from is not None and bool(p.mirror),
                    ever_synced=p.ever_synced,
                )
                for p in self._profiles.values()
            ),
        )

    # ---- connection ---------------------------------------------------------------------

    def _profile(self, name: str) -> _Profile:
        try:
            return self._profiles[name]
        except KeyError:
            raise ValueError(f"profile {name} is not bound to {self.name}") from None

    def _to(self, new: ConnState, out: list[Output], reason: str = "") -> None:
        self._state = check_transition(self._state, new)
        out.append(ChannelState(new, reason))

    def _begin_connect(self, out: list[Output], now: float) -> None:
        self._to(ConnState.CONNECTING, out)
        out.append(Connect())
        self._timers.start(TimerName.CONNECT, now + self._connect_timeout_s)

    def _fail(
        self, out: list[Output], now: float, code: ErrorCode, reason: str, detail: str
    ) -> None:
        """Tell the peer why (ERROR), then close: a bad record is never applied."""
        text = f"{reason}: {detail}" if detail else reason
        self._send(Error(code, 0, text.encode()[:1024].decode(errors="ignore")))
        self._down(out, reason, detail, now, send_close=True)

    def _down(
        self, out: list[Output], reason: str, detail: str, now: float, send_close: bool
    ) -> None:
        if self._buf and not send_close:
            self._errors["truncated"] += 1  # the peer went away in the middle of a record
        if reason not in NORMAL_CLOSE:
            self._errors[reason] += 1
        if send_close:
            self._flush(out)
            out.append(Close(reason, detail))
        else:
            self._tx.clear()  # nowhere to send it
        self._to(ConnState.CLOSED, out, reason)
        self._conn_id += 1
        self._last_down = f"{reason}: {detail}" if detail else reason
        for timer in (TimerName.CONNECT, TimerName.KEEPALIVE, TimerName.DEAD, TimerName.ACK):
            self._timers.stop(timer)
        self._buf, self._need = bytearray(), 0
        self._peer_open = None
        for p in self._profiles.values():
            p.reset_connection()
            if p.status is not PeerStatus.MISMATCH:
                p.status = PeerStatus.UNKNOWN
            self._update_aging(p, now)
        if self._stopped:
            return
        if self.listen:
            self._to(ConnState.LISTENING, out)
        else:
            self._timers.start(TimerName.BACKOFF, now + self._backoff)
            self._backoff = min(self._backoff * 2, self._backoff_max)

    def _established(self, out: list[Output], now: float) -> None:
        self._to(ConnState.ESTABLISHED, out)
        self._backoff = self._backoff_initial
        self._last_up = format_wall(self._wall_clock())
        self._counters["connections"] += 1
        if self._counters["connections"] > 1:
            self._counters["reconnects"] += 1
        for p in self._profiles.values():
            self._update_aging(p, now)
            if self._syncing(p):
                self._send_batch(p, now)
            elif p.role is Role.RECEIVER and p.status is PeerStatus.SYNCED and p.mirror:
                self._send_holdings(p, now)

    # ---- sending ------------------------------------------------------------------------

    def _next_seq(self) -> int:
        seq = self._tx_seq
        self._tx_seq = (seq + 1) % SEQ_MOD
        return seq

    def _send_raw(self, data: bytes) -> None:
        self._tx.append(data)
        self._counters["records_sent"] += 1
        self._counters["bytes_sent"] += len(data)

    def _send(self, msg: Message, flags: int = 0) -> int:
        seq = self._next_seq()
        self._send_raw(encode_message(msg, seq, flags))
        return seq

    def _flush(self, out: list[Output]) -> None:
        if self._tx:
            out.append(SendBytes(b"".join(self._tx)))
            self._tx.clear()

    def _finish(self, out: list[Output]) -> list[Output]:
        self._flush(out)
        for p in self._profiles.values():
            holds = self.peer_holds(p.name)
            if holds != p.reported_holds:
                p.reported_holds = holds
                out.append(PeerHolds(p.name, holds))
        return out

    def peer_holds(self, profile: str) -> bool:
        """See PeerHolds."""
        p = self._profile(profile)
        return self._syncing(p) and not p.unacked and not p.queue

    def _syncing(self, p: _Profile) -> bool:
        return (
            self._state is ConnState.ESTABLISHED
            and p.role is Role.SENDER
            and p.status is PeerStatus.SYNCED
        )

    def _send_batch(self, p: _Profile, now: float) -> None:
        """The whole local table as one batch; realtime changes continue after it."""
        bid = p.spec.backup_id
        p.queue.clear()
        p.peer_view = set(p.local)
        unacked = p.unacked
        unacked.append(self._send(BatchStart(bid, len(p.local))))
        add = Op.ADD
        for key, (value, at) in p.local.items():
            seq = self._next_seq()
            self._send_raw(encode_entry(seq, bid, add, key, value, age=int(now - at)))
            unacked.append(seq)
        unacked.append(self._send(BatchEnd(bid, len(p.local)), _ACK_REQUEST))
        p.batches_sent += 1
        self._counters["batches_sent"] += 1

    def _send_holdings(self, p: _Profile, now: float) -> None:
        """Our mirror back to the peer, as a HOLDINGS batch: a peer that restarted empty gets
        back the groups it served, before it serves again (or as soon as it does)."""
        bid, h = p.spec.backup_id, int(Flags.HOLDINGS)
        self._send(BatchStart(bid, len(p.mirror)), h)
        for key, (value, at) in p.mirror.items():
            self._send_raw(encode_entry(self._next_seq(), bid, Op.ADD, key, value,
                                        age=int(now - at), flags=h))
        self._send(BatchEnd(bid, len(p.mirror)), h | _ACK_REQUEST)
        self._counters["holdings_sent"] += 1

    def _drain(self, p: _Profile, now: float) -> None:
        """Send queued changes while the window allows, each as the entry is now."""
        if not self._syncing(p):
            return
        bid = p.spec.backup_id
        while p.queue and len(p.unacked) < self._window:
            key = next(iter(p.queue))
            del p.queue[key]
            entry = p.local.get(key)
            if entry is None:
                if key not in p.peer_view:
                    continue  # joined and left while queued: the peer never knew
                p.peer_view.discard(key)
                seq = self._next_seq()
                data = encode_entry(seq, bid, Op.DELETE, key, None)
            else:
                op = Op.UPDATE if key in p.peer_view else Op.ADD
                p.peer_view.add(key)
                value, at = entry
                seq = self._next_seq()
                data = encode_entry(seq, bid, op, key, value, age=int(now - at))
            self._send_raw(data)
            p.unacked.append(seq)

    def _send_ack(self) -> None:
        self._timers.stop(TimerName.ACK)
        if self._ack_pending:
            self._send(Ack(self._rx_seq))
            self._counters["acks_sent"] += 1
            self._ack_pending = 0
        self._ack_now = False

    def _ack_policy(self, now: float) -> None:
        if self._state is not ConnState.ESTABLISHED or not self._ack_pending:
            return
        if self._ack_now or self._ack_pending >= self._ack_every:
            self._send_ack()
        elif not self._timers.pending(TimerName.ACK):
            self._timers.start(TimerName.ACK, now + self._ack_delay_s)

    # ---- receiving ----------------------------------------------------------------------

    def _receive(self, record: Record, now: float, out: list[Output]) -> None:
        expected = (self._rx_seq + 1) % SEQ_MOD
        if record.seq != expected:
            raise _ProtocolError("bad-sequence", f"got {record.seq}, expected {expected}")
        self._rx_seq = record.seq
        self._counters["records_received"] += 1
        self._timers.start(TimerName.DEAD, now + self._dead_s)
        msg = record.message
        if record.flags & _HOLDINGS:
            self._on_holdings(msg, now, out)
        elif isinstance(msg, Entry):
            self._on_entry(msg, now, out)
        elif isinstance(msg, BatchStart):
            p = self._sync_profile(msg.backup_id)
            if p.role is Role.SENDER:
                p.peer_served = True
            if p.batch is not None or p.holdings is not None:
                raise _ProtocolError("nested-batch", f"backup-id {p.spec.backup_id}")
            p.batch = set()
            p.batch_expected = msg.count
        elif isinstance(msg, BatchEnd):
            self._on_batch_end(msg, out)
        else:
            self._on_control(msg, now, out)
            return
        # BATCH_START, ENTRY and BATCH_END are acknowledged
        self._ack_pending += 1
        if record.flags & _ACK_REQUEST:
            self._ack_now = True

    def _on_control(
        self, msg: Open | OpenAck | Ack | Keepalive | Error, now: float, out: list[Output]
    ) -> None:
        if isinstance(msg, Ack):
            if self._state is not ConnState.ESTABLISHED:
                raise _ProtocolError("unexpected-record", "ACK before ESTABLISHED")
            self._on_ack(msg.seq, now)
        elif isinstance(msg, Keepalive):
            if self._peer_open is None:
                raise _ProtocolError("unexpected-record", "KEEPALIVE before OPEN")
        elif isinstance(msg, Open):
            self._on_open(msg, out)
        elif isinstance(msg, OpenAck):
            if self._state is not ConnState.OPEN_SENT or self._peer_open is None:
                raise _ProtocolError("unexpected-record", "OPEN_ACK out of order")
            self._established(out, now)
        else:
            self._on_error(msg, now, out)

    def _sync_profile(self, backup_id: int) -> _Profile:
        if self._state is not ConnState.ESTABLISHED:
            raise _ProtocolError("unexpected-record", "service record before ESTABLISHED")
        p = self._by_id.get(backup_id)
        if p is None:
            raise _ProtocolError("unknown-backup-id", f"backup-id {backup_id}")
        if p.status is not PeerStatus.SYNCED:
            raise _ProtocolError("not-synced", f"profile {p.name} is {p.status}")
        return p

    def _on_holdings(self, msg: Message, now: float, out: list[Output]) -> None:
        """A HOLDINGS batch: the peer's copy of our entries. A receiver merges the ones its
        mirror lacks; either way the whole batch is reported (HoldingsReceived)."""
        if isinstance(msg, BatchStart):
            p = self._sync_profile(msg.backup_id)
            if p.batch is not None or p.holdings is not None:
                raise _ProtocolError("nested-batch", f"backup-id {p.spec.backup_id}")
            p.holdings, p.holdings_expected = {}, msg.count
        elif isinstance(msg, Entry):
            p = self._sync_profile(msg.backup_id)
            if p.holdings is None or msg.op is not Op.ADD or msg.value is None:
                raise _ProtocolError("bad-holdings", "a HOLDINGS entry is an ADD in its batch")
            if msg.key.service not in p.spec.service_types:
                raise _ProtocolError("bad-service", f"{msg.key.service} not in {p.name}")
            if msg.key in p.holdings or len(p.holdings) >= p.holdings_expected:
                raise _ProtocolError("batch-count", f"holdings beyond {p.holdings_expected}")
            p.holdings[msg.key] = msg.value
            if p.role is Role.RECEIVER and msg.key not in p.mirror:
                self._apply(p, Op.ADD, msg.key, msg.value, now, out, "holdings")
        elif isinstance(msg, BatchEnd):
            p = self._sync_profile(msg.backup_id)
            if p.holdings is None or not msg.count == p.holdings_expected == len(p.holdings):
                raise _ProtocolError("batch-count", "HOLDINGS batch end does not match")
            entries, p.holdings = p.holdings, None
            out.append(HoldingsReceived(p.name, entries))
            self._counters["holdings_received"] += 1
        else:
            raise _ProtocolError("bad-flags", "HOLDINGS on a record that is not a batch")

    def _on_entry(self, msg: Entry, now: float, out: list[Output]) -> None:
        p = self._sync_profile(msg.backup_id)
        if p.role is Role.SENDER:
            p.peer_served = True
        key = msg.key
        if key.service not in p.spec.service_types:
            raise _ProtocolError("bad-service", f"{key.service} not in profile {p.name}")
        if p.batch is not None:
            if msg.op is not Op.ADD:
                raise _ProtocolError("bad-batch-entry", f"{msg.op.name} inside a batch")
            if key in p.batch:
                raise _ProtocolError("duplicate-entry", f"{key} twice in a batch")
            if len(p.batch) >= p.batch_expected:
                raise _ProtocolError("batch-count", f"more than {p.batch_expected} entries")
            p.batch.add(key)
        self._apply(p, msg.op, key, msg.value, now, out,
                    "peer" if p.batch is None else "batch")

    def _on_batch_end(self, msg: BatchEnd, out: list[Output]) -> None:
        p = self._sync_profile(msg.backup_id)
        if p.batch is None:
            raise _ProtocolError("unexpected-record", "BATCH_END without BATCH_START")
        if not msg.count == p.batch_expected == len(p.batch):
            raise _ProtocolError(
                "batch-count",
                f"start said {p.batch_expected}, end says {msg.count}, got {len(p.batch)}",
            )
        seen, p.batch = p.batch, None
        for key in [k for k in p.mirror if k not in seen]:
            del p.mirror[key]
            out.append(MirrorChanged(p.name, Op.DELETE, key, None, "batch"))
        p.batches_received += 1
        self._counters["batches_received"] += 1

    def _apply(
        self,
        p: _Profile,
        op: Op,
        key: ServiceKey,
        value: ServiceValue | None,
        now: float,
        out: list[Output],
        cause: str,
    ) -> None:
        if value is None:
            if p.mirror.pop(key, None) is not None:
                out.append(MirrorChanged(p.name, Op.DELETE, key, None, cause))
            return
        old = p.mirror.get(key)
        p.mirror[key] = (value, now)
        if old is None:
            out.append(MirrorChanged(p.name, Op.ADD, key, value, cause))
        elif not _same_state(old[0], value):
            out.append(MirrorChanged(p.name, Op.UPDATE, key, value, cause))
        if p.aging_from is not None and not self._timers.pending(TimerName.EXPIRY, p.name):
            self._arm_expiry(p)

    def _on_ack(self, seq: int, now: float) -> None:
        last_sent = (self._tx_seq - 1) % SEQ_MOD
        if _serial_lt(last_sent, seq) or _serial_lt(seq, self._peer_acked):
            raise _ProtocolError("bad-ack", f"ack {seq}, sent up to {last_sent}")
        self._peer_acked = seq
        acked = 0
        for p in self._profiles.values():
            unacked = p.unacked
            while unacked and not _serial_lt(seq, unacked[0]):
                unacked.popleft()
                acked += 1
        self._counters["records_acked"] += acked
        for p in self._profiles.values():
            self._drain(p, now)

    def _on_open(self, msg: Open, out: list[Output]) -> None:
        if self._state is not ConnState.OPEN_SENT or self._peer_open is not None:
            raise _ProtocolError("unexpected-record", "second OPEN")
        if msg.source != self.peer:
            raise _ProtocolError(
                "peer-mismatch",
                f"OPEN from {msg.device} says source {msg.source}, configured peer {self.peer}",
                ErrorCode.PEER_MISMATCH,
            )
        self._peer_open = msg
        by_name = {pi.name: pi for pi in msg.profiles}
        by_id = {pi.backup_id: pi for pi in msg.profiles}
        for p in self._profiles.values():
            ours = p.spec
            theirs = by_name.get(ours.name) or by_id.get(ours.backup_id)
            if theirs is None:
                p.status, p.mismatch = PeerStatus.ABSENT, None
                continue
            if (
                theirs.name == ours.name
                and theirs.backup_id == ours.backup_id
                and set(theirs.service_types) == set(ours.service_types)
            ):
                p.status, p.mismatch = PeerStatus.SYNCED, None
                p.ever_synced = True
                continue
            detail = (
                f"profile {ours.name} backup-id {ours.backup_id} service "
                f"{','.join(ours.service_types)} on {self.device}, but profile {theirs.name} "
                f"backup-id {theirs.backup_id} service {','.join(theirs.service_types)} "
                f"on {msg.device}"
            )
            p.status, p.mismatch = PeerStatus.MISMATCH, detail
            out.append(Mismatch(p.name, detail))
            self._errors["backup-id-mismatch"] += 1
            self._send(Error(ErrorCode.BACKUP_ID_MISMATCH, theirs.backup_id, detail[:1024]))
        self._send(OpenAck())

    def _on_error(self, msg: Error, now: float, out: list[Output]) -> None:
        if msg.code is ErrorCode.BACKUP_ID_MISMATCH and msg.backup_id:
            self._errors["peer-error"] += 1
            p = self._by_id.get(msg.backup_id)
            if p is not None and p.status is not PeerStatus.MISMATCH:
                p.status, p.mismatch = PeerStatus.MISMATCH, f"peer reports: {msg.text}"
                p.reset_connection()
                out.append(Mismatch(p.name, p.mismatch))
                self._update_aging(p, now)
            return
        self._down(out, "peer-error", f"{msg.code.name}: {msg.text}", now, send_close=True)

    # ---- mirror aging -------------------------------------------------------------------

    def _update_aging(self, p: _Profile, now: float) -> None:
        frozen = (
            self._state is ConnState.ESTABLISHED
            and p.role is Role.RECEIVER
            and p.status is PeerStatus.SYNCED
        )
        if frozen:
            p.aging_from = None
            self._timers.stop(TimerName.EXPIRY, p.name)
        elif p.aging_from is None:
            p.aging_from = now
            self._arm_expiry(p)

    def _arm_expiry(self, p: _Profile) -> None:
        if p.aging_from is None or not p.mirror:
            self._timers.stop(TimerName.EXPIRY, p.name)
            return
        start = p.aging_from
        newest_first = min(max(start, t) for _, t in p.mirror.values())
        self._timers.start(TimerName.EXPIRY, newest_first + self._expiry_s, p.name)

    def _on_expiry(self, p: _Profile, now: float, out: list[Output]) -> None:
        start = p.aging_from
        if start is None:
            return
        limit = now - self._expiry_s
        due = [k for k, (_, t) in p.mirror.items() if max(start, t) <= limit]
        for key in due:
            del p.mirror[key]
            out.append(MirrorChanged(p.name, Op.DELETE, key, None, "expired"))
        self._counters["entries_expired"] += len(due)
        self._arm_expiry(p)

    # ---- timers -------------------------------------------------------------------------

    def _fire_due(self, now: float) -> list[Output]:
        out: list[Output] = []
        while (due := self._timers.pop_due(now)) is not None:
            timer, profile, deadline = due
            if timer is TimerName.KEEPALIVE:
                self._send(Keepalive())
                self._counters["keepalives_sent"] += 1
                nxt = deadline + self._keepalive_s
                while nxt <= now:  # woken late: skip missed slots, keep the phase
                    nxt += self._keepalive_s
                self._timers.start(TimerName.KEEPALIVE, nxt)
            elif timer is TimerName.DEAD:
                self._down(out, "dead-peer", f"nothing received for {self._dead_s} s", now, True)
            elif timer is TimerName.ACK:
                self._send_ack()
            elif timer is TimerName.EXPIRY:
                self._on_expiry(self._profiles[profile], now, out)
            elif timer is TimerName.CONNECT:
                self._down(out, "connect-timeout", "", now, send_close=True)
            elif timer is TimerName.BACKOFF and self._state is ConnState.CLOSED:
                self._begin_connect(out, now)
        return out
