"""One BFD session in asynchronous mode (RFC 5880 section 6), without I/O.

`BfdSession` holds the state variables of RFC 5880 6.8.1 for one configured session. Every
input takes `now` (monotonic seconds) and returns the outputs it caused: packets to send
(`Send`, already encoded) and state changes (`StateChanged`). Its two timers, periodic
transmit and detection, are absolute deadlines in one table; `next_deadline()` tells the
service when to call `tick(now)`. The first input starts the session: its first packet goes
out at once. Session states are checked against an explicit transition table, so a logic
error raises `IllegalTransition` instead of producing a state change RFC 5880 does not have.

Timers, the way RFC 5880 has them:
- bfd.DesiredMinTxInterval is max(configured, 1 s) while the session is not Up (6.8.3) and
  the configured value once Up. Every change of it or of bfd.RequiredMinRxInterval starts a
  Poll Sequence: the P bit rides on the periodic packets until a packet with F arrives.
  An increase of the transmit interval made while Up, and a decrease of the required receive
  interval made while Up, take effect only when that Final arrives; the opposite changes
  take effect at once (6.8.3).
- Transmit interval = max(bfd.DesiredMinTxInterval in use, bfd.RemoteMinRxInterval) (6.8.2).
  Each interval is jittered per packet (6.8.7): 75-100 % of it, 75-90 % with Detect Mult 1.
  The next periodic deadline is computed from the previous deadline, never from a receive.
  Only a shorter interval pulls the next deadline in (no longer than the new interval after
  the last packet, 6.8.3). A state change sends one packet at once, outside the schedule,
  and so does the Final answering a Poll (6.8.7); neither moves the periodic deadline.
- Detection time = the peer's Detect Mult x max(bfd.RequiredMinRxInterval in use, the
  peer's last Desired Min TX Interval) (6.8.4), re-armed by every packet that passes the
  checks of 6.8.6. When it runs out in Init or Up the session goes Down with diag 1, and a
  learned remote discriminator is forgotten (6.8.1).

Choices where RFC 5880 leaves room, on purpose:
- We are always the Active role, never request Demand mode, run no Echo function (Required
  Min Echo RX Interval 0) and no authentication. A peer's Demand mode is honoured: while it
  asks for it and both ends are Up we stop periodic packets, except during a Poll Sequence.
- Diag is reset to 0 on the transitions to Init and Up (and admin up), so it always gives
  the reason for the most recent state change.
- When the detection time runs out we also take the remote state as Down (the displays
  would otherwise show a dead peer as Up).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from daemon.bfd.codec import MAX_U32, BfdState, ControlPacket, Diag

SLOW_TX_US = 1_000_000  # the floor of bfd.DesiredMinTxInterval while not Up (6.8.3)
SINGLE_HOP_TTL = 255  # RFC 5881 section 5: anything else is dropped
_MAX_INTERVAL_MS = MAX_U32 // 1000

_S = BfdState
TRANSITIONS: Mapping[BfdState, frozenset[BfdState]] = {
    _S.ADMIN_DOWN: frozenset({_S.DOWN}),  # admin up
    _S.DOWN: frozenset({_S.ADMIN_DOWN, _S.INIT, _S.UP}),
    _S.INIT: frozenset({_S.ADMIN_DOWN, _S.DOWN, _S.UP}),
    _S.UP: frozenset({_S.ADMIN_DOWN, _S.DOWN}),
}


class IllegalTransition(RuntimeError):
    """The machine tried a transition RFC 5880 does not have: a bug, never input."""


def check_transition(old: BfdState, new: BfdState) -> BfdState:
    """Return `new` if old -> new is in the state diagram, else raise IllegalTransition."""
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"BFD session: {old.name} -> {new.name}")
    return new


@dataclass(frozen=True, kw_only=True)
class SessionConfig:
    """One configured session (VRP `bfd NAME bind peer-ip ...`); intervals in milliseconds.

    `remote_disc` is VRP's `discriminator remote`: when set, packets must carry it as My
    Discriminator and we always send it as Your Discriminator; when None it is learned.
    """

    name: str
    local_disc: int
    multihop: bool
    remote_disc: int | None = None
    desired_min_tx_ms: int = 10
    required_min_rx_ms: int = 10
    detect_mult: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.local_disc <= MAX_U32:
            raise ValueError(f"{self.name}: local discriminator out of range: {self.local_disc}")
        if self.remote_disc is not None and not 1 <= self.remote_disc <= MAX_U32:
            raise ValueError(f"{self.name}: remote discriminator out of range: {self.remote_disc}")
        _check_params(self.name, self.desired_min_tx_ms, self.required_min_rx_ms, self.detect_mult)


def _check_params(name: str, tx_ms: int | None, rx_ms: int | None, mult: int | None) -> None:
    for label, ms in (("desired_min_tx_ms", tx_ms), ("required_min_rx_ms", rx_ms)):
        if ms is not None and not 1 <= ms <= _MAX_INTERVAL_MS:
            raise ValueError(f"{name}: {label} out of range: {ms}")
    if mult is not None and not 1 <= mult <= 255:
        raise ValueError(f"{name}: detect_mult out of range: {mult}")


@dataclass(frozen=True)
class Send:
    """Send this encoded Control packet to the session's peer."""

    packet: bytes


@dataclass(frozen=True)
class StateChanged:
    """The session changed state at `at`.

    `diag` is the reason, i.e. bfd.LocalDiag after the change (CONTROL_DETECTION_TIME_EXPIRED,
    NEIGHBOR_SIGNALED_DOWN, ADMIN_DOWN, or NONE on the way up); `local_diag` is the same value
    under its RFC name. `remote_diag` is the Diag of the peer's last packet (ADMIN_DOWN when
    the peer shut its session down).
    """

    name: str
    old: BfdState
    new: BfdState
    diag: Diag
    remote_diag: Diag | int
    at: float

    @property
    def local_diag(self) -> Diag:
        return self.diag


Output: TypeAlias = Send | StateChanged


@dataclass(frozen=True)
class SessionSnapshot:
    """Everything the displays show. Intervals in microseconds; 0 where nothing is known yet."""

    name: str
    multihop: bool
    state: BfdState
    remote_state: BfdState
    local_disc: int
    remote_disc: int  # 0 while not learned
    static_remote_disc: bool
    local_diag: Diag
    remote_diag: Diag | int
    configured_min_tx_ms: int
    configured_min_rx_ms: int
    desired_min_tx_us: int  # bfd.DesiredMinTxInterval as advertised
    required_min_rx_us: int  # bfd.RequiredMinRxInterval as advertised
    remote_desired_min_tx_us: int
    remote_required_min_rx_us: int  # bfd.RemoteMinRxInterval (1 until the peer is heard)
    tx_interval_us: int  # negotiated transmit interval in use (before jitter)
    rx_interval_us: int  # the peer's transmit interval our detection time is based on
    detect_time_us: int  # detection time in use
    local_detect_mult: int
    remote_detect_mult: int
    polling: bool
    remote_demand: bool
    packets_sent: int
    packets_received: int
    dropped: Mapping[str, int]
    tx_errors: int
    up_transitions: int  # times the session came Up
    down_transitions: int  # times it left Up (to Down or AdminDown)
    last_change: float | None  # `now` of the last state change; None if never changed


class TimerName(StrEnum):
    TRANSMIT = "transmit"
    DETECT = "detect"


class BfdSession:
    """The RFC 5880 state machine of one session, Active role, asynchronous mode."""

    def __init__(self, config: SessionConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self._started = False
        self._deadlines: dict[TimerName, float] = {}
        self._out: list[Output] = []
        # RFC 5880 6.8.1 state variables (intervals in microseconds)
        self._state = BfdState.DOWN
        self._remote_state = BfdState.DOWN
        self._remote_disc = config.remote_disc or 0
        self._local_diag = Diag.NONE
        self._remote_diag: Diag | int = Diag.NONE
        self._cfg_tx_us = config.desired_min_tx_ms * 1000
        self._cfg_rx_us = config.required_min_rx_ms * 1000
        self._detect_mult = config.detect_mult
        self._desired_tx_us = max(self._cfg_tx_us, SLOW_TX_US)  # advertised
        self._tx_basis_us = self._desired_tx_us  # in use for the transmit interval
        self._required_rx_us = self._cfg_rx_us  # advertised
        self._rx_basis_us = self._required_rx_us  # in use for the detection time
        self._remote_min_rx_us = 1
        self._remote_desired_tx_us = 0
        self._remote_detect_mult = 0
        self._remote_demand = False
        # transmit machinery
        self._tx_interval_us = self._negotiated_tx_us()
        self._polling = False
        self._owe_final = False
        self._want_send = False
        self._last_tx: float | None = None
        # counters
        self._sent = 0
        self._received = 0
        self._drops: Counter[str] = Counter()
        self._tx_errors = 0
        self._ups = 0
        self._downs = 0
        self._last_change: float | None = None

    # ---- inputs -------------------------------------------------------------------------

    def packet_received(
        self, pkt: ControlPacket, now: float, ttl: int | None = None
    ) -> list[Output]:
        """A Control packet from `daemon.bfd.codec.decode` (which did the stateless checks
        of 6.8.6) that the service matched to this session; `ttl` as received (RFC 5881)."""
        self._begin(now)
        reason = self._check(pkt, ttl)
        if reason is not None:
            self._drops[reason] += 1
            return self._end(now)
        self._received += 1
        if self.config.remote_disc is None:
            self._remote_disc = pkt.my_disc
        self._remote_state = pkt.state
        self._remote_diag = pkt.diag
        self._remote_demand = pkt.demand
        self._remote_min_rx_us = pkt.required_min_rx_us
        self._remote_desired_tx_us = pkt.desired_min_tx_us
        self._remote_detect_mult = pkt.detect_mult
        if pkt.final and self._polling:
            self._end_poll()
        if self._state is BfdState.ADMIN_DOWN:
            return self._end(now)  # 6.8.6: discarded (after the variables above)
        self._receive_state(pkt.state, now)
        if pkt.poll:
            self._owe_final = True
        self._deadlines[TimerName.DETECT] = now + self._detect_time_us() / 1e6
        return self._end(now)

    def tick(self, now: float) -> list[Output]:
        """Fire the timers due at `now` (the first call starts the session)."""
        self._begin(now)
        return self._end(now)

    def admin_down(self, now: float) -> list[Output]:
        """`shutdown`, or the daemon stopping: AdminDown with diag 7, said at once (6.8.16).

        AdminDown packets keep going out at the slow rate, so the peer stays Down (diag 3)
        instead of timing out; received packets are discarded.
        """
        self._begin(now)
        if self._state is not BfdState.ADMIN_DOWN:
            self._set_state(BfdState.ADMIN_DOWN, Diag.ADMIN_DOWN, now)
            self._deadlines.pop(TimerName.DETECT, None)
        return self._end(now)

    def admin_up(self, now: float) -> list[Output]:
        """`undo shutdown`: AdminDown -> Down, and the session comes up with its peer."""
        self._begin(now)
        if self._state is BfdState.ADMIN_DOWN:
            self._set_state(BfdState.DOWN, Diag.NONE, now)
        return self._end(now)

    def set_parameters(
        self,
        now: float,
        *,
        desired_min_tx_ms: int | None = None,
        required_min_rx_ms: int | None = None,
        detect_mult: int | None = None,
    ) -> list[Output]:
        """Change the configured intervals or multiplier of a running session (6.8.3, 6.8.12).

        An interval change starts a Poll Sequence carried by the periodic packets (no extra
        packet, 6.5); a multiplier change just goes out with the next packet.
        """
        _check_params(self.config.name, desired_min_tx_ms, required_min_rx_ms, detect_mult)
        self._begin(now)
        if detect_mult is not None:
            self._detect_mult = detect_mult
        if desired_min_tx_ms is not None:
            self._cfg_tx_us = desired_min_tx_ms * 1000
            self._apply_desired_tx()
        if required_min_rx_ms is not None and required_min_rx_ms * 1000 != self._required_rx_us:
            new = required_min_rx_ms * 1000
            if not (new < self._rx_basis_us and self._state is BfdState.UP):
                self._rx_basis_us = new  # a decrease while Up waits for the Final
            self._cfg_rx_us = self._required_rx_us = new
            self._polling = True
        return self._end(now)

    def count_drop(self, reason: str) -> None:
        """Count a datagram for this session that did not decode (DecodeError.reason)."""
        self._drops[reason] += 1

    def count_tx_error(self) -> None:
        """Count a packet the transport failed to send."""
        self._tx_errors += 1

    # ---- queries ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def state(self) -> BfdState:
        return self._state

    def next_deadline(self) -> float | None:
        """When `tick` must next be called; None before the first input."""
        return min(self._deadlines.values(), default=None)

    def snapshot(self) -> SessionSnapshot:
        heard = self._remote_detect_mult > 0
        return SessionSnapshot(
            name=self.config.name,
            multihop=self.config.multihop,
            state=self._state,
            remote_state=self._remote_state,
            local_disc=self.config.local_disc,
            remote_disc=self._remote_disc,
            static_remote_disc=self.config.remote_disc is not None,
            local_diag=self._local_diag,
            remote_diag=self._remote_diag,
            configured_min_tx_ms=self._cfg_tx_us // 1000,
            configured_min_rx_ms=self._cfg_rx_us // 1000,
            desired_min_tx_us=self._desired_tx_us,
            required_min_rx_us=self._required_rx_us,
            remote_desired_min_tx_us=self._remote_desired_tx_us,
            remote_required_min_rx_us=self._remote_min_rx_us,
            tx_interval_us=self._tx_interval_us,
            rx_interval_us=self._rx_interval_us() if heard else 0,
            detect_time_us=self._detect_time_us() if heard else 0,
            local_detect_mult=self._detect_mult,
            remote_detect_mult=self._remote_detect_mult,
            polling=self._polling,
            remote_demand=self._remote_demand,
            packets_sent=self._sent,
            packets_received=self._received,
            dropped=dict(self._drops),
            tx_errors=self._tx_errors,
            up_transitions=self._ups,
            down_transitions=self._downs,
            last_change=self._last_change,
        )

    # ---- reception (6.8.6) --------------------------------------------------------------

    def _check(self, pkt: ControlPacket, ttl: int | None) -> str | None:
        if not self.config.multihop and ttl != SINGLE_HOP_TTL:
            return "bad-ttl"  # RFC 5881 section 5 (GTSM); RFC 5883 has no such check
        if pkt.your_disc != 0 and pkt.your_disc != self.config.local_disc:
            return "bad-your-disc"
        if self.config.remote_disc is not None and pkt.my_disc != self.config.remote_disc:
            return "remote-disc-mismatch"
        return None

    def _receive_state(self, remote: BfdState, now: float) -> None:
        """The state transitions of 6.8.6 (figure in 6.2)."""
        local = self._state
        if remote is BfdState.ADMIN_DOWN:
            if local is not BfdState.DOWN:
                self._set_state(BfdState.DOWN, Diag.NEIGHBOR_SIGNALED_DOWN, now)
        elif local is BfdState.DOWN:
            if remote is BfdState.DOWN:
                self._set_state(BfdState.INIT, Diag.NONE, now)
            elif remote is BfdState.INIT:
                self._set_state(BfdState.UP, Diag.NONE, now)
        elif local is BfdState.INIT:
            if remote in (BfdState.INIT, BfdState.UP):
                self._set_state(BfdState.UP, Diag.NONE, now)
        elif remote is BfdState.DOWN:  # local is Up
            self._set_state(BfdState.DOWN, Diag.NEIGHBOR_SIGNALED_DOWN, now)

    def _set_state(self, new: BfdState, diag: Diag, now: float) -> None:
        old = self._state
        self._state = check_transition(old, new)
        self._local_diag = diag
        self._last_change = now
        self._ups += new is BfdState.UP
        self._downs += old is BfdState.UP
        self._want_send = True
        self._out.append(StateChanged(self.config.name, old, new, diag, self._remote_diag, now))
        self._apply_desired_tx()

    # ---- intervals (6.8.2, 6.8.3, 6.8.4) ------------------------------------------------

    def _apply_desired_tx(self) -> None:
        """Set bfd.DesiredMinTxInterval for the current state; start a Poll if it changed."""
        target = self._cfg_tx_us
        if self._state is not BfdState.UP:
            target = max(target, SLOW_TX_US)
        if target == self._desired_tx_us:
            return
        if not (target > self._tx_basis_us and self._state is BfdState.UP):
            self._tx_basis_us = target  # an increase while Up waits for the Final
        self._desired_tx_us = target
        self._polling = True

    def _end_poll(self) -> None:
        """A Final arrived: the Poll Sequence ends and held changes take effect."""
        self._polling = False
        self._tx_basis_us = self._desired_tx_us
        self._rx_basis_us = self._required_rx_us

    def _negotiated_tx_us(self) -> int:
        return max(self._tx_basis_us, self._remote_min_rx_us)

    def _rx_interval_us(self) -> int:
        return max(self._rx_basis_us, self._remote_desired_tx_us)

    def _detect_time_us(self) -> int:
        return self._remote_detect_mult * self._rx_interval_us()

    def _jittered(self, interval_us: int) -> float:
        """One transmit interval in seconds, reduced at random as 6.8.7 requires."""
        if self._detect_mult == 1:
            factor = self._rng.uniform(0.75, 0.90)
        else:
            factor = 1.0 - self._rng.uniform(0.0, 0.25)
        return interval_us * factor / 1e6

    def _retime(self, now: float) -> None:
        """Recompute the transmit interval; a shorter one pulls the next packet in (6.8.3)."""
        new = self._negotiated_tx_us()
        old, self._tx_interval_us = self._tx_interval_us, new
        deadline = self._deadlines.get(TimerName.TRANSMIT)
        if new < old and deadline is not None and self._last_tx is not None:
            sooner = max(now, self._last_tx + self._jittered(new))
            if sooner < deadline:
                self._deadlines[TimerName.TRANSMIT] = sooner

    # ---- transmission (6.8.7) -----------------------------------------------------------

    def _periodic_allowed(self) -> bool:
        if self._remote_min_rx_us == 0:
            return False  # the peer asked for no packets
        return not (
            self._remote_demand
            and self._state is BfdState.UP
            and self._remote_state is BfdState.UP
            and not self._polling
        )

    def _send(self, now: float, *, final: bool = False) -> None:
        pkt = ControlPacket(
            diag=self._local_diag,
            state=self._state,
            poll=self._polling and not final,
            final=final,
            detect_mult=self._detect_mult,
            my_disc=self.config.local_disc,
            your_disc=self._remote_disc,
            desired_min_tx_us=self._desired_tx_us,
            required_min_rx_us=self._required_rx_us,
            required_min_echo_rx_us=0,
        )
        self._out.append(Send(pkt.encode()))
        self._sent += 1
        self._last_tx = now

    # ---- timers and evaluation ----------------------------------------------------------

    def _begin(self, now: float) -> None:
        """Start on the first input (first packet at once), then catch up on due timers."""
        if not self._started:
            self._started = True
            self._deadlines[TimerName.TRANSMIT] = now
        self._settle(now)

    def _end(self, now: float) -> list[Output]:
        self._settle(now)
        out, self._out = self._out, []
        return out

    def _settle(self, now: float) -> None:
        """Send what is owed now (a Final, else one packet for a state change), recompute the
        transmit interval, and fire due timers, earliest first, until nothing is left."""
        while True:
            if self._owe_final:
                self._send(now, final=True)
            elif self._want_send:
                self._send(now)
            self._owe_final = self._want_send = False
            self._retime(now)
            due = min(self._deadlines.items(), key=lambda item: item[1], default=None)
            if due is None or due[1] > now:
                return
            timer, deadline = due
            del self._deadlines[timer]
            if timer is TimerName.TRANSMIT:
                self._on_transmit(deadline, now)
            else:
                self._on_detect(now)

    def _on_transmit(self, deadline: float, now: float) -> None:
        if self._periodic_allowed():
            self._send(now)
        nxt = deadline + self._jittered(self._tx_interval_us)
        if nxt <= now:  # woken late: restart the schedule from now rather than burst
            nxt = now + self._jittered(self._tx_interval_us)
        self._deadlines[TimerName.TRANSMIT] = nxt

    def _on_detect(self, now: float) -> None:
        if self._state in (BfdState.INIT, BfdState.UP):
            self._set_state(BfdState.DOWN, Diag.CONTROL_DETECTION_TIME_EXPIRED, now)
        if self.config.remote_disc is None:
            self._remote_disc = 0  # 6.8.1: bfd.RemoteDiscr is reset when detection expires
        self._remote_state = BfdState.DOWN
        self._remote_demand = False
