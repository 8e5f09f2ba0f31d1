"""E-Trunk (multi-chassis Eth-Trunk backup) for one `e-trunk N`, without I/O.

Two devices exchange hellos (codec.Hello) over UDP. Each elects a device state: with the peer
known, the lower (priority, system ID) is MASTER and the other BACKUP (cause PRI); with the
peer lost it is MASTER (cause PEER_TIMEOUT, BFD_DOWN or PEER_GOODBYE); at start it is INIT
until the peer is heard or our own fail time passes in silence (MASTER, cause TIMEOUT).

Each member Eth-Trunk then gets a role from `member_role` (see there for the rule and why it
never leaves both members master, or both backup, while both are up). Member roles are what
the rest of the device acts on: a MASTER member's LACP may aggregate, a BACKUP one may not.

Every input takes `now` (monotonic seconds) and returns the outputs it caused; every timer is
an absolute deadline in one table, and `tick(now)` fires those that are due. Hellos go out
every hello period from the start, never re-armed by a receive, plus one at once whenever
something the peer sees changes (device state, a member's phy state or role) or the peer
(re)appears. The device state's transitions are checked against an explicit table.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from daemon.etrunk.codec import (
    NO_FLAGS,
    ETrunkState,
    Flags,
    Hello,
    Member,
    MemberRole,
    MessageType,
    WorkMode,
)

SEQUENCE_LIMIT = 2**64
# How long a member reported down by a peer that just appeared is not taken over (rule 5):
# long enough for a starting device's ports to show carrier (the kernel's link watch can
# take tens of ms), short enough to hide inside the switch's 2 s aggregate wait for a port
# that has just come up.
PEER_SETTLE_S = 0.5


def sequence_origin(unix_time: float) -> int:
    """First sequence number of a daemon run: wall-clock milliseconds << 16.

    A restarted peer thus continues above everything it sent before (it would have to send
    65536 messages per millisecond to catch up with the clock), so its hellos are accepted,
    while a recorded (replayed) hello never is. Fits 64 bits until the year 10889.
    """
    return int(unix_time * 1000) << 16


class Cause(StrEnum):
    """Why the device state is what it is (VRP's `Causation`)."""

    INIT = "INIT"
    PRI = "PRI"  # elected on priority, then system ID
    TIMEOUT = "TIMEOUT"  # no hello from the peer within our fail time since start
    PEER_TIMEOUT = "PEER_TIMEOUT"  # the peer's advertised fail time passed without a hello
    BFD_DOWN = "BFD_DOWN"  # the tracked BFD session went down
    PEER_GOODBYE = "PEER_GOODBYE"  # the peer said it is shutting down


class MemberCause(StrEnum):
    """Why a member has its role. VRP's member causes, plus some of ours (marked)."""

    ETRUNK_INIT = "ETRUNK_INIT"
    ETRUNK_MASTER = "ETRUNK_MASTER"
    ETRUNK_BACKUP = "ETRUNK_BACKUP"
    FORCE_MASTER = "FORCE_MASTER"
    FORCE_BACKUP = "FORCE_BACKUP"
    NO_PEER_MEMBER = "NO_PEER_MEMBER"
    PEER_MEMBER_DOWN = "PEER_MEMBER_DOWN"
    LOCAL_MEMBER_DOWN = "LOCAL_MEMBER_DOWN"  # ours: our member's phy is down
    PEER_FORCE_BACKUP = "PEER_FORCE_BACKUP"  # ours: the peer's member is force-backup
    PEER_MEMBER_MASTER = "PEER_MEMBER_MASTER"  # ours: the peer's member is master and up
    REVERT_DELAY = "REVERT_DELAY"  # ours: master held for the revert delay before handing back
    NO_UPSTREAM = "NO_UPSTREAM"  # ours: peer lost and this device has no route to the streams
    PEER_STARTING = "PEER_STARTING"  # ours: the peer appeared a moment ago, member not up yet


class TimerName(StrEnum):
    HELLO = "hello"  # periodic transmit
    INIT = "init"  # start-up: our own fail time without hearing the peer
    PEER = "peer"  # the peer's advertised fail time since its last valid hello
    REVERT = "revert"  # per member: the revert delay
    SETTLE = "settle"  # PEER_SETTLE_S after the peer appeared


TRANSITIONS: Mapping[ETrunkState, frozenset[ETrunkState]] = {
    ETrunkState.INIT: frozenset({ETrunkState.BACKUP, ETrunkState.MASTER}),
    ETrunkState.BACKUP: frozenset({ETrunkState.MASTER}),
    ETrunkState.MASTER: frozenset({ETrunkState.BACKUP}),
}


class IllegalTransition(RuntimeError):
    """The machine tried a transition its state diagram does not have: a bug, never input."""


def check_transition(old: ETrunkState, new: ETrunkState) -> ETrunkState:
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"ETrunkState: {old.name} -> {new.name}")
    return new


def member_role(
    *,
    mode: WorkMode,
    local_up: bool,
    current: MemberRole,
    state: ETrunkState,
    peer_known: bool,
    remote: Member | None,
    attached: bool = False,
    upstream: bool = True,
    peer_starting: bool = False,
) -> tuple[MemberRole, MemberCause]:
    """The role one member should have now, from our side's view; pure, so both sides agree.

    `remote` is the peer's entry for the same Eth-Trunk ID in its last hello (its
    `attached` says whether the switch has the peer's Eth-Trunk in its aggregate).
    `attached`: the switch has ours in its aggregate (LACP partner in sync: its aggregate
    wait is over and it uses our link, or will the moment we are in sync too); `upstream`:
    our device has a route toward the streams it would forward (the RP); `peer_starting`:
    the peer appeared, just started (in Init), less than PEER_SETTLE_S ago, and its member
    has not been up since.
    In order:

    1. force-master / force-backup: as configured.
    2. E-Trunk INIT: backup (ETRUNK_INIT); nobody forwards before we know about the peer.
    3. No peer (lost, so we are MASTER): master (ETRUNK_MASTER), unless our device has no
       upstream: then backup (NO_UPSTREAM), so that the switch uses the peer, which may
       still have one. (With the peer known this never matters: a device that reaches its
       peer reaches the streams through it unless neither can.)
    4. The peer has no such member: master (NO_PEER_MEMBER).
    5. The peer's member is down: master (PEER_MEMBER_DOWN); ours down: backup. Except that
       a backup member does not take the role from a peer that has just started (its first
       hello in Init, a moment ago) and whose member has not been up yet (PEER_STARTING): a
       device that just started reports its member before the kernel has signalled its
       ports' carrier, and a member taken then would be held for the revert delay (7b)
       although both came up together. A member that was up before and went down, or one
       reported down by a peer that was already running (a healed partition, our own
       restart), is taken over at once.
    6. Both up, the peer's member forced: the other role.
    7. Both up, both auto: the E-Trunk master's member is the master, except that
       a. a member that is backup stays backup while the peer's is master (and up);
       b. a member that is master, on the E-Trunk backup, while the peer's is backup, holds
          the role (REVERT_DELAY): it hands back when the revert delay has run out (the
          caller times that, and never ends it with revert disabled). Whatever LACP has
          reached: the switch may still be waiting out its aggregate wait on our port, and a
          returning link must not pull the traffic into a second wait on the peer's. This
          holds however the member became master (the peer's member failed, went down before
          we heard of it, or the peer was lost). The hand-back is break before make: it yields
          (ETRUNK_BACKUP) and the peer, seeing backup, takes over by the base rule, so both are
          backup for one one-way delay, never both master;
       c. if both are master (updates crossed in flight, a false BFD alarm, a healed
          partition), the member the switch is attached to keeps it: the E-Trunk backup's
          member keeps it (REVERT_DELAY) if attached, and the E-Trunk master's yields when
          the peer's says it is attached; otherwise the E-Trunk master's keeps it and the
          backup's yields at once. Both sides judge by the same fact (whether the E-Trunk
          backup's member is attached), so they agree; the E-Trunk master's own view is left
          out because after a partition it is the stale one. Attached, not distributing: the
          switch has one aggregate, so it is attached to one side only, and it stays so
          through the moments a distributing state comes and goes (a side a millisecond
          short of distributing must not lose the traffic to a port still in its wait).

    With both up and both auto the rule is symmetric and monotone: a side becomes master only
    when the peer is backup (7a), a master yields only to rule 7b's delay or 7c's tie break,
    and two backups always resolve to the E-Trunk master's side. The function is idempotent
    (applying it to its own result gives the same result).
    """
    if mode is WorkMode.FORCE_MASTER:
        return MemberRole.MASTER, MemberCause.FORCE_MASTER
    if mode is WorkMode.FORCE_BACKUP:
        return MemberRole.BACKUP, MemberCause.FORCE_BACKUP
    if state is ETrunkState.INIT:
        return MemberRole.BACKUP, MemberCause.ETRUNK_INIT
    if not peer_known:
        if not upstream:
            return MemberRole.BACKUP, MemberCause.NO_UPSTREAM
        return MemberRole.MASTER, MemberCause.ETRUNK_MASTER
    if remote is None:
        return MemberRole.MASTER, MemberCause.NO_PEER_MEMBER
    if not remote.phy_up:
        if peer_starting and current is MemberRole.BACKUP:
            return MemberRole.BACKUP, MemberCause.PEER_STARTING
        return MemberRole.MASTER, MemberCause.PEER_MEMBER_DOWN
    if not local_up:
        return MemberRole.BACKUP, MemberCause.LOCAL_MEMBER_DOWN
    if remote.mode is WorkMode.FORCE_MASTER:
        return MemberRole.BACKUP, MemberCause.PEER_MEMBER_MASTER
    if remote.mode is WorkMode.FORCE_BACKUP:
        return MemberRole.MASTER, MemberCause.PEER_FORCE_BACKUP
    winner = state is ETrunkState.MASTER
    yielded = MemberCause.PEER_MEMBER_MASTER if winner else MemberCause.ETRUNK_BACKUP
    if current is MemberRole.BACKUP:
        if remote.role is MemberRole.MASTER or not winner:
            return MemberRole.BACKUP, yielded
        return MemberRole.MASTER, MemberCause.ETRUNK_MASTER
    if remote.role is MemberRole.MASTER:  # 7c
        if winner:
            if remote.attached:
                return MemberRole.BACKUP, yielded
            return MemberRole.MASTER, MemberCause.ETRUNK_MASTER
        if attached:
            return MemberRole.MASTER, MemberCause.REVERT_DELAY
        return MemberRole.BACKUP, yielded
    if winner:
        return MemberRole.MASTER, MemberCause.ETRUNK_MASTER
    return MemberRole.MASTER, MemberCause.REVERT_DELAY  # 7b


# ---- configuration ----------------------------------------------------------------------


@dataclass(frozen=True)
class MemberConfig:
    """One member Eth-Trunk (`interface Eth-TrunkN` / `e-trunk M` / `e-trunk mode X`)."""

    trunk_id: int
    mode: WorkMode = WorkMode.AUTO

    def __post_init__(self) -> None:
        if not 0 <= self.trunk_id <= 0xFFFF:
            raise ValueError(f"trunk_id out of range: {self.trunk_id}")
        object.__setattr__(self, "mode", WorkMode(self.mode))


@dataclass(frozen=True, kw_only=True)
class ETrunkConfig:
    """One `e-trunk N` block, as plain values (device.py maps the config model to it)."""

    etrunk_id: int
    priority: int = 100
    system_id: bytes
    hello_100ms: int = 10
    hold_multiplier: int = 20
    revert_delay_s: float = 120
    revert_enabled: bool = True
    members: tuple[MemberConfig, ...] = ()
    track_bfd: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.etrunk_id <= 0xFFFF:
            raise ValueError(f"etrunk_id out of range: {self.etrunk_id}")
        if not 1 <= self.priority <= 254:
            raise ValueError(f"priority out of range 1..254: {self.priority}")
        if len(self.system_id) != 6:
            raise ValueError(f"system_id must be 6 bytes, got {len(self.system_id)}")
        if not 1 <= self.hello_100ms <= 0xFFFF:
            raise ValueError(f"hello_100ms out of range: {self.hello_100ms}")
        if not 1 <= self.fail_100ms <= 0xFFFFFFFF:
            raise ValueError(f"fail time out of range: {self.hello_100ms} x {self.hold_multiplier}")
        if not 0 <= self.revert_delay_s < math.inf:
            raise ValueError(f"revert_delay_s out of range: {self.revert_delay_s}")
        ids = [m.trunk_id for m in self.members]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate member trunk ids: {ids}")
        if len(ids) > 255:
            raise ValueError("at most 255 members")

    @property
    def fail_100ms(self) -> int:
        """Huawei's fail time: hello period x hold-on-failure multiplier."""
        return self.hello_100ms * self.hold_multiplier


# ---- outputs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send `payload` to the peer (the service encodes it with the security key)."""

    payload: Hello


@dataclass(frozen=True)
class StateChanged:
    """The device state or its cause changed (`old` == `new` when only the cause did)."""

    old: ETrunkState
    new: ETrunkState
    cause: Cause
    at: float


@dataclass(frozen=True)
class MemberRoleChanged:
    """A member's role or cause changed; start() reports every member's initial role."""

    trunk_id: int
    role: MemberRole
    cause: MemberCause
    at: float


Output: TypeAlias = Send | StateChanged | MemberRoleChanged


# ---- snapshots --------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerSnapshot:
    """What the peer said in its last accepted hello."""

    address: str
    priority: int
    system_id: bytes
    hello_100ms: int
    fail_100ms: int
    state: ETrunkState
    flags: Flags
    sequence: int
    members: tuple[Member, ...]
    heard_at: float
    expires_at: float


@dataclass(frozen=True)
class MemberSnapshot:
    trunk_id: int
    mode: WorkMode
    phy_up: bool
    role: MemberRole
    cause: MemberCause
    remote: Member | None  # the peer's entry for this Eth-Trunk (Remote-ID), if any
    revert_at: float | None  # end of a running revert hold; math.inf with revert disabled
    attached: bool  # the switch has our Eth-Trunk in its aggregate (advertised as ATTACHED)
    waiting_for_peer: bool  # the revert delay ran out; the peer does not hold our groups yet


@dataclass(frozen=True)
class ETrunkSnapshot:
    etrunk_id: int
    priority: int
    system_id: bytes
    hello_100ms: int
    fail_100ms: int
    revert_delay_s: float
    revert_enabled: bool
    track_bfd: bool
    bfd_up: bool | None  # last bfd_state() input; None before the first
    upstream: bool  # last upstream() input
    running: bool
    state: ETrunkState
    cause: Cause
    received: int  # messages accepted from the peer
    sent: int  # messages handed to the service (snd_drop of them failed to go out)
    rec_drop: Mapping[str, int]  # by reason
    snd_drop: int
    next_sequence: int
    peer: PeerSnapshot | None  # None while the peer is unknown or lost
    members: tuple[MemberSnapshot, ...]


# ---- the machine ------------------------------------------------------------------------

_TimerKey: TypeAlias = tuple[TimerName, int]  # (timer, member trunk id or -1)
_DEVICE = -1


class _Timers:
    """Every pending timer, as an absolute deadline keyed by (timer, member)."""

    def __init__(self) -> None:
        self._deadlines: dict[_TimerKey, float] = {}

    def start(self, timer: TimerName, deadline: float, member: int = _DEVICE) -> None:
        self._deadlines[(timer, member)] = deadline

    def stop(self, timer: TimerName, member: int = _DEVICE) -> None:
        self._deadlines.pop((timer, member), None)

    def get(self, timer: TimerName, member: int = _DEVICE) -> float | None:
        return self._deadlines.get((timer, member))

    def clear(self) -> None:
        self._deadlines.clear()

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def pop_due(self, now: float) -> tuple[TimerName, int, float] | None:
        """Remove and return the earliest timer with deadline <= now, if any."""
        key = min(self._deadlines, key=self._deadlines.__getitem__, default=None)
        if key is None or self._deadlines[key] > now:
            return None
        return key[0], key[1], self._deadlines.pop(key)


@dataclass(eq=False)
class _Member:
    cfg: MemberConfig
    phy_up: bool = False
    role: MemberRole = MemberRole.BACKUP
    cause: MemberCause = MemberCause.ETRUNK_INIT
    attached: bool = False  # the switch has our Eth-Trunk in its aggregate (LACP)
    holding: bool = False  # a revert hold is running (timer pending, or forever)
    revert_done: bool = False  # the revert delay ran out: yield at this evaluation
    handback_ready: bool = True  # the peer holds what we serve (the device's verdict)
    reported: tuple[MemberRole, MemberCause] | None = None


class ETrunkMachine:
    """The E-Trunk protocol of one `e-trunk N` toward its one peer."""

    def __init__(self, config: ETrunkConfig, *, sequence_start: int) -> None:
        if not 0 <= sequence_start < SEQUENCE_LIMIT:
            raise ValueError(f"sequence_start out of range: {sequence_start}")
        self.config = config
        self._state = ETrunkState.INIT
        self._cause = Cause.INIT
        self._members = {m.trunk_id: _Member(m) for m in config.members}
        self._timers = _Timers()
        self._running = False
        self._stopped = False
        self._peer: PeerSnapshot | None = None
        self._peer_members: dict[int, Member] = {}
        self._peer_starting: set[int] = set()  # peer members not up since it appeared
        self._last_seq: int | None = None
        self._next_seq = sequence_start
        self._bfd_up: bool | None = None
        self._upstream = True
        self._received = 0
        self._sent = 0
        self._rec_drop: Counter[str] = Counter()
        self._snd_drop = 0
        self._ntt = False
        self._advertised: tuple[object, ...] | None = None
        self._out: list[Output] = []

    # ---- inputs -------------------------------------------------------------------------

    def start(self, now: float) -> list[Output]:
        """Begin: the first hello now, the periodic ones from now, INIT for our fail time.

        Reports every member's initial role (BACKUP, ETRUNK_INIT unless forced), so the
        caller can hold its LACP back until the roles are decided.
        """
        if self._running or self._stopped:
            return []
        self._running = True
        self._timers.start(TimerName.HELLO, now + self.config.hello_100ms / 10)
        self._timers.start(TimerName.INIT, now + self.config.fail_100ms / 10)
        self._ntt = True
        return self._flush(now)

    def hello_received(self, msg: Hello, src: str, now: float) -> list[Output]:
        """A message that decoded and authenticated, from the configured peer address."""
        if not self._running:
            self._rec_drop["not-running"] += 1
            return []
        self._fire_due(now)
        if msg.etrunk_id != self.config.etrunk_id:
            self._rec_drop["wrong-etrunk-id"] += 1
        elif msg.system_id == self.config.system_id:
            self._rec_drop["same-system-id"] += 1  # our own, looped back, or a twin config
        elif self._last_seq is not None and msg.sequence <= self._last_seq:
            self._rec_drop["replay"] += 1
        else:
            self._last_seq = msg.sequence
            self._received += 1
            if msg.msg_type is MessageType.GOODBYE:
                self._lose_peer(Cause.PEER_GOODBYE, now)
            else:
                self._peer_heard(msg, src, now)
        return self._flush(now)

    def member_phy(self, trunk_id: int, up: bool, now: float) -> list[Output]:
        """A member Eth-Trunk went up or down (recorded even before start)."""
        m = self._members[trunk_id]
        m.phy_up = up
        if not self._running:
            return []
        self._fire_due(now)
        return self._flush(now)

    def member_attached(self, trunk_id: int, attached: bool, now: float) -> list[Output]:
        """Whether the switch has a member Eth-Trunk in its aggregate (LACP partner in sync):
        advertised, and it settles rule 7c."""
        self._members[trunk_id].attached = attached
        if not self._running:
            return []
        self._fire_due(now)
        return self._flush(now)

    def handback_ready(self, trunk_id: int, ready: bool, now: float) -> list[Output]:
        """Whether the peer holds what this member's traffic needs (the backed-up groups):
        a revert delay that ran out hands the role back only once it does, so the peer
        serves every group at once instead of an old copy."""
        self._members[trunk_id].handback_ready = ready
        if not self._running:
            return []
        self._fire_due(now)
        return self._flush(now)

    def upstream(self, up: bool, now: float) -> list[Output]:
        """Whether this device has a route toward the streams (for rule 3 of member_role)."""
        self._upstream = up
        if not self._running:
            return []
        self._fire_due(now)
        return self._flush(now)

    def bfd_state(self, up: bool, now: float) -> list[Output]:
        """The bound BFD session's state. Down loses a known peer at once; up restores nothing
        (the next valid hello does). Ignored unless the config tracks BFD."""
        self._bfd_up = up
        if not self._running:
            return []
        self._fire_due(now)
        if not up and self.config.track_bfd:
            self._lose_peer(Cause.BFD_DOWN, now)
        return self._flush(now)

    def tick(self, now: float) -> list[Output]:
        """Fire every timer whose deadline is <= now."""
        if not self._running:
            return []
        self._fire_due(now)
        return self._flush(now)

    def shutdown(self, now: float) -> list[Output]:
        """Say GOODBYE (the peer takes over at once); the machine is inert afterwards."""
        if not self._running:
            self._stopped = True
            return []
        self._fire_due(now)
        out = self._flush(now)
        out.append(self._send(MessageType.GOODBYE))
        self._running = False
        self._stopped = True
        self._timers.clear()
        return out

    def count_drop(self, reason: str) -> None:
        """Count a received packet dropped before the machine saw it (by the service)."""
        self._rec_drop[reason] += 1

    def count_send_drop(self) -> None:
        """The service failed to send a message this machine produced."""
        self._snd_drop += 1

    # ---- queries ------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    @property
    def state(self) -> ETrunkState:
        return self._state

    def role(self, trunk_id: int) -> MemberRole:
        return self._members[trunk_id].role

    def snapshot(self) -> ETrunkSnapshot:
        c = self.config
        members = []
        for m in self._members.values():
            revert_at = self._timers.get(TimerName.REVERT, m.cfg.trunk_id)
            if m.holding and revert_at is None:
                revert_at = math.inf
            members.append(
                MemberSnapshot(
                    trunk_id=m.cfg.trunk_id,
                    mode=m.cfg.mode,
                    phy_up=m.phy_up,
                    role=m.role,
                    cause=m.cause,
                    remote=self._peer_members.get(m.cfg.trunk_id),
                    revert_at=revert_at,
                    attached=m.attached and m.phy_up,
                    waiting_for_peer=m.holding and m.revert_done and not m.handback_ready,
                )
            )
        return ETrunkSnapshot(
            etrunk_id=c.etrunk_id,
            priority=c.priority,
            system_id=c.system_id,
            hello_100ms=c.hello_100ms,
            fail_100ms=c.fail_100ms,
            revert_delay_s=c.revert_delay_s,
            revert_enabled=c.revert_enabled,
            track_bfd=c.track_bfd,
            bfd_up=self._bfd_up,
            upstream=self._upstream,
            running=self._running,
            state=self._state,
            cause=self._cause,
            received=self._received,
            sent=self._sent,
            rec_drop=dict(self._rec_drop),
            snd_drop=self._snd_drop,
            next_sequence=self._next_seq,
            peer=self._peer,
            members=tuple(members),
        )

    # ---- device state -------------------------------------------------------------------

    def _set_state(self, new: ETrunkState, cause: Cause, now: float) -> None:
        if (new, cause) == (self._state, self._cause):
            return
        old = self._state
        if new is not old:
            check_transition(old, new)
        self._state, self._cause = new, cause
        self._out.append(StateChanged(old, new, cause, now))

    def _elect(self, peer: PeerSnapshot) -> ETrunkState:
        ours = (self.config.priority, self.config.system_id)
        if ours < (peer.priority, peer.system_id):
            return ETrunkState.MASTER
        return ETrunkState.BACKUP

    def _peer_heard(self, msg: Hello, src: str, now: float) -> None:
        expires = now + msg.fail_100ms / 10
        if self._peer is None:
            self._ntt = True  # (re)appeared: let it hear from us now, not next period
            if msg.state is ETrunkState.INIT:  # it has just started (not a healed partition)
                self._peer_starting = set(self._members)
                self._timers.start(TimerName.SETTLE, now + PEER_SETTLE_S)
        self._peer_starting -= {m.trunk_id for m in msg.members if m.phy_up}
        self._peer = PeerSnapshot(
            address=src,
            priority=msg.priority,
            system_id=msg.system_id,
            hello_100ms=msg.hello_100ms,
            fail_100ms=msg.fail_100ms,
            state=msg.state,
            flags=msg.flags,
            sequence=msg.sequence,
            members=msg.members,
            heard_at=now,
            expires_at=expires,
        )
        self._peer_members = {m.trunk_id: m for m in msg.members}
        self._timers.stop(TimerName.INIT)
        self._timers.start(TimerName.PEER, expires)
        self._set_state(self._elect(self._peer), Cause.PRI, now)

    def _lose_peer(self, cause: Cause, now: float) -> None:
        """The peer is gone (timeout, BFD, goodbye): we are MASTER. The last accepted sequence
        number is kept, so recorded hellos cannot bring a dead peer back."""
        if self._peer is None and not (
            self._state is ETrunkState.INIT and cause is Cause.PEER_GOODBYE
        ):
            return  # nothing to lose (a goodbye in INIT still ends the wait for the peer)
        self._peer = None
        self._peer_members = {}
        self._peer_starting = set()
        self._timers.stop(TimerName.SETTLE)
        self._timers.stop(TimerName.PEER)
        self._timers.stop(TimerName.INIT)
        self._set_state(ETrunkState.MASTER, cause, now)

    # ---- timers -------------------------------------------------------------------------

    def _fire_due(self, now: float) -> None:
        while (due := self._timers.pop_due(now)) is not None:
            timer, member, deadline = due
            if timer is TimerName.HELLO:
                self._ntt = True
                period = self.config.hello_100ms / 10
                nxt = deadline + period
                while nxt <= now:  # woken late: skip missed slots, keep the phase
                    nxt += period
                self._timers.start(TimerName.HELLO, nxt)
            elif timer is TimerName.INIT:
                self._set_state(ETrunkState.MASTER, Cause.TIMEOUT, now)
            elif timer is TimerName.PEER:
                self._lose_peer(Cause.PEER_TIMEOUT, now)
            elif timer is TimerName.SETTLE:
                self._peer_starting = set()
            else:  # REVERT
                self._members[member].revert_done = True

    # ---- members and transmit -----------------------------------------------------------

    def _decide(self, m: _Member, now: float) -> bool:
        """Apply member_role (and the revert hold) to one member; return whether it moved."""
        remote = self._peer_members.get(m.cfg.trunk_id)
        role, cause = member_role(
            mode=m.cfg.mode,
            local_up=m.phy_up,
            current=m.role,
            state=self._state,
            peer_known=self._peer is not None,
            remote=remote,
            attached=m.attached and m.phy_up,
            upstream=self._upstream,
            peer_starting=m.cfg.trunk_id in self._peer_starting,
        )
        tid = m.cfg.trunk_id
        if cause is MemberCause.REVERT_DELAY:
            if not m.holding:  # the hold starts
                m.holding = True
                if self.config.revert_enabled and self.config.revert_delay_s > 0:
                    self._timers.start(TimerName.REVERT, now + self.config.revert_delay_s, tid)
                elif self.config.revert_enabled:
                    m.revert_done = True
                # revert disabled: held until something else moves the member, never by time
            if m.revert_done and m.handback_ready:
                role, cause = MemberRole.BACKUP, MemberCause.ETRUNK_BACKUP
        if cause is not MemberCause.REVERT_DELAY:
            m.holding = m.revert_done = False
            self._timers.stop(TimerName.REVERT, tid)
        changed = (role, cause) != (m.role, m.cause)
        m.role, m.cause = role, cause
        return changed

    def _flush(self, now: float) -> list[Output]:
        """Settle the members, report what moved, send a hello if due or if the peer's view of
        us changed; return everything buffered since the last flush."""
        for _ in range(3):  # member_role is idempotent: the second round changes nothing
            if not any([self._decide(m, now) for m in self._members.values()]):
                break
        else:
            raise RuntimeError("E-Trunk member roles did not settle")
        for m in self._members.values():
            if (m.role, m.cause) != m.reported:
                m.reported = (m.role, m.cause)
                self._out.append(MemberRoleChanged(m.cfg.trunk_id, m.role, m.cause, now))
        if self._running and (self._ntt or self._view() != self._advertised):
            self._out.append(self._send(MessageType.HELLO))
        out, self._out = self._out, []
        return out

    def _members_on_wire(self) -> tuple[Member, ...]:
        return tuple(
            Member(m.cfg.trunk_id, m.phy_up, m.role, m.cfg.mode, m.attached and m.phy_up)
            for m in self._members.values()
        )

    def _view(self) -> tuple[object, ...]:
        """What the peer acts on; a change sends a hello at once."""
        return (self._state, self._members_on_wire())

    def _send(self, msg_type: MessageType) -> Send:
        if self._next_seq >= SEQUENCE_LIMIT:
            raise RuntimeError("E-Trunk sequence number space exhausted")
        c = self.config
        flags = NO_FLAGS
        if c.track_bfd:
            flags |= Flags.BFD
        if c.revert_enabled:
            flags |= Flags.REVERT
        msg = Hello(
            etrunk_id=c.etrunk_id,
            priority=c.priority,
            system_id=c.system_id,
            hello_100ms=c.hello_100ms,
            fail_100ms=c.fail_100ms,
            sequence=self._next_seq,
            state=self._state,
            members=self._members_on_wire(),
            msg_type=msg_type,
            flags=flags,
        )
        self._next_seq += 1
        self._sent += 1
        self._ntt = False
        self._advertised = self._view()
        return Send(msg)
