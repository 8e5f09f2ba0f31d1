"""RBS channel machines under virtual time, wired back to back through an in-memory stream
that re-chunks the bytes arbitrarily."""

from __future__ import annotations

import itertools
import random
import struct
import time
from ipaddress import IPv4Address

import pytest

from daemon.rbs.codec import (
    HEADER_LEN,
    Ack,
    BatchEnd,
    BatchStart,
    Entry,
    Error,
    ErrorCode,
    FilterMode,
    Flags,
    IgmpKey,
    IgmpValue,
    Keepalive,
    Op,
    Open,
    OpenAck,
    ProfileInfo,
    Record,
    decode_all,
    encode_message,
)
from daemon.rbs.machine import (
    TRANSITIONS,
    ChannelState,
    Close,
    Connect,
    ConnState,
    HoldingsReceived,
    IllegalTransition,
    MirrorChanged,
    Mismatch,
    Output,
    PeerHolds,
    PeerStatus,
    ProfileSpec,
    RbsChannel,
    Role,
    SendBytes,
    check_transition,
    should_listen,
)

SEED_UP = 1527564096.0  # 2018-05-29 03:21:36 UTC, the seed's "Last up time"
P1 = "profile1"
A, B = "A", "B"


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def key(n: int, interface: str = "Eth-Trunk1") -> IgmpKey:
    return IgmpKey(interface, IPv4Address(0xE1000000 + n))  # 225.0.x.y


def value(reporter: int = 100, uptime: int = 0, sources: tuple[str, ...] = ()) -> IgmpValue:
    mode = FilterMode.INCLUDE if sources else FilterMode.EXCLUDE
    return IgmpValue(mode, sources, IPv4Address(0x0A000F00 + reporter), uptime)


def make(side: str, profiles: list[ProfileSpec] | None = None, **kw: object) -> RbsChannel:
    """DeviceA (1.1.1.1, connects) or DeviceB (3.3.3.3, listens), as in the seed."""
    profiles = profiles if profiles is not None else [ProfileSpec(P1, 10, ("igmp",))]
    kw.setdefault("wall_clock", lambda: SEED_UP)
    if side == A:
        return RbsChannel("service1", "DeviceA", "1.1.1.1", "3.3.3.3", profiles, **kw)
    return RbsChannel("service1", "DeviceB", "3.3.3.3", "1.1.1.1", profiles, **kw)


class Net:
    """A TCP connection between two machines: in-order bytes, cut into random chunks,
    delivered with zero latency; FIN after the closer's last bytes; optional outages."""

    def __init__(self, a: RbsChannel, b: RbsChannel, *, seed: int = 1, max_chunk: int = 0):
        self.m = {A: a, B: b}
        self.now = 0.0
        self.log: dict[str, list[tuple[float, Output]]] = {A: [], B: []}
        self.sent: dict[str, list[tuple[float, bytes]]] = {A: [], B: []}
        self.wire = {A: bytearray(), B: bytearray()}
        self.fin = {A: False, B: False}
        self.up = False
        self.reachable = True  # connect attempts succeed (if the other side listens)
        self.hang = False  # connect attempts neither succeed nor fail
        self.blackhole = False  # established connection silently drops everything
        self.connecting: list[str] = []
        self.rng = random.Random(seed)
        self.max_chunk = max_chunk  # 0: random sizes from 1 octet to everything

    @staticmethod
    def other(x: str) -> str:
        return B if x == A else A

    def handle(self, x: str, outs: list[Output]) -> None:
        for o in outs:
            if isinstance(o, SendBytes):
                self.sent[x].append((self.now, o.data))
                if self.up and not self.fin[x] and not self.blackhole:
                    self.wire[x] += o.data
            elif isinstance(o, Connect):
                self.connecting.append(x)
                self.log[x].append((self.now, o))
            else:
                if isinstance(o, Close) and self.up:
                    self.fin[x] = True
                self.log[x].append((self.now, o))

    def start(self) -> None:
        for x in (B, A):
            self.handle(x, self.m[x].start(self.now))
        self.pump()

    def chunk(self, n: int) -> int:
        if self.max_chunk:
            return min(n, self.rng.randint(1, self.max_chunk))
        return self.rng.choice([1, 2, 7, 16, 17, 100, 1000, n, n])

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            while self.connecting:
                x = self.connecting.pop(0)
                y = self.other(x)
                if self.hang:
                    continue
                if self.reachable and not self.up and self.m[y].state is ConnState.LISTENING:
                    self.up, self.fin = True, {A: False, B: False}
                    self.wire = {A: bytearray(), B: bytearray()}
                    self.handle(x, self.m[x].connected(self.now))
                    self.handle(y, self.m[y].connected(self.now))
                else:
                    self.handle(x, self.m[x].closed("connect-failed", self.now))
                moved = True
            for x in (A, B):
                y = self.other(x)
                if self.wire[x] and not self.fin[y]:
                    n = self.chunk(len(self.wire[x]))
                    data = bytes(self.wire[x][:n])
                    del self.wire[x][:n]
                    self.handle(y, self.m[y].data_received(data, self.now))
                    moved = True
                elif self.up and self.fin[x] and not self.wire[x]:
                    self.up = False  # the closer's bytes are all delivered: FIN
                    self.wire = {A: bytearray(), B: bytearray()}
                    if not self.fin[y] and not self.blackhole:
                        self.handle(y, self.m[y].closed("peer-closed", self.now))
                    moved = True

    def reset(self, reason: str = "io-error") -> None:
        """The connection dies under both sides (RST), bytes in flight lost."""
        assert self.up
        self.up = False
        self.wire = {A: bytearray(), B: bytearray()}
        for x in (A, B):
            self.handle(x, self.m[x].closed(reason, self.now))
        self.pump()

    def run_until(self, t: float) -> None:
        while True:
            due = [(d, x) for x, m in self.m.items() if (d := m.next_deadline()) is not None]
            if not due or min(due)[0] > t:
                break
            deadline, x = min(due)
            self.now = max(self.now, deadline)
            self.handle(x, self.m[x].tick(self.now))
            self.pump()
        self.now = t

    def run_for(self, dt: float) -> None:
        self.run_until(self.now + dt)

    def change(self, x: str, op: Op, k: IgmpKey, v: IgmpValue | None, pump: bool = True) -> None:
        self.handle(x, self.m[x].local_change(P1, op, k, v, self.now))
        if pump:
            self.pump()

    def role(self, x: str, sender: bool, profile: str = P1) -> None:
        self.handle(x, self.m[x].set_role(profile, sender, self.now))
        self.pump()

    def events(self, x: str, kind: type) -> list:
        return [o for _, o in self.log[x] if isinstance(o, kind)]

    def records(self, x: str) -> list[Record]:
        return decode_all(b"".join(d for _, d in self.sent[x]))


def established_pair(
    *,
    seed: int = 1,
    a_kw: dict | None = None,
    b_kw: dict | None = None,
    entries: int = 0,
    max_chunk: int = 0,
) -> Net:
    net = Net(make(A, **(a_kw or {})), make(B, **(b_kw or {})), seed=seed, max_chunk=max_chunk)
    for n in range(entries):
        net.handle(A, net.m[A].local_change(P1, Op.ADD, key(n), value(n), 0.0))
    net.handle(A, net.m[A].set_role(P1, True, 0.0))
    net.start()
    assert net.m[A].state is net.m[B].state is ConnState.ESTABLISHED
    return net


def mirror_changes(net: Net, x: str = B) -> list[tuple[Op, IgmpKey, str]]:
    return [(o.op, o.key, o.cause) for o in net.events(x, MirrorChanged)]


# ---- handshake ----------------------------------------------------------------------------


def test_listen_rule() -> None:
    assert should_listen("3.3.3.3", "1.1.1.1") and not should_listen("1.1.1.1", "3.3.3.3")
    assert should_listen("10.0.0.10", "10.0.0.9")  # numeric, not textual, order
    assert not make(A).listen and make(B).listen


@pytest.mark.parametrize("seed", range(4))
def test_handshake(seed: int) -> None:
    net = Net(make(A), make(B), seed=seed)
    net.start()
    a, b = net.m[A], net.m[B]
    assert [o.state for o in net.events(A, ChannelState)] == [
        ConnState.CONNECTING,
        ConnState.OPEN_SENT,
        ConnState.ESTABLISHED,
    ]
    assert [o.state for o in net.events(B, ChannelState)] == [
        ConnState.LISTENING,
        ConnState.OPEN_SENT,
        ConnState.ESTABLISHED,
    ]
    for m, peer in ((a, "DeviceB"), (b, "DeviceA")):
        snap = m.snapshot()
        assert (snap.tcp_state, snap.last_up, snap.peer_device) == (
            "connected",
            "2018-05-29 03:21:36",
            peer,
        )
        assert snap.profiles[0].peer_status is PeerStatus.SYNCED
        assert snap.counters["connections"] == 1 and "reconnects" not in snap.counters
    recs = net.records(A)
    assert [type(r.message) for r in recs] == [Open, OpenAck]
    assert [r.seq for r in recs] == [1, 2]
    assert recs[0].message == Open(
        "DeviceA", IPv4Address("1.1.1.1"), (ProfileInfo(P1, 10, ("igmp",)),)
    )


def test_transition_table_is_enforced() -> None:
    assert check_transition(ConnState.IDLE, ConnState.LISTENING) is ConnState.LISTENING
    with pytest.raises(IllegalTransition):
        check_transition(ConnState.IDLE, ConnState.ESTABLISHED)
    with pytest.raises(IllegalTransition):
        check_transition(ConnState.ESTABLISHED, ConnState.OPEN_SENT)
    assert set(TRANSITIONS) == set(ConnState)
    # A connection reported where none can be is refused, not a crash
    assert make(A).connected(0.0) == [Close("unexpected-connection")]


def test_peer_address_must_match() -> None:
    b = make(B)
    b.start(0.0)
    b.connected(0.0)
    outs = b.data_received(encode_message(Open("DeviceX", "9.9.9.9"), 1), 0.0)
    sent = decode_all(b"".join(o.data for o in outs if isinstance(o, SendBytes)))
    assert sent[-1].message.code is ErrorCode.PEER_MISMATCH
    assert Close("peer-mismatch", sent[-1].message.text.split(": ", 1)[1]) in outs
    assert b.snapshot().errors == {"peer-mismatch": 1}
    assert b.state is ConnState.LISTENING


# ---- sync ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_batch_on_established(seed: int) -> None:
    net = Net(make(A), make(B), seed=seed)
    for n in range(3):
        net.handle(A, net.m[A].local_change(P1, Op.ADD, key(n), value(n, uptime=5), 0.0))
    net.handle(A, net.m[A].set_role(P1, True, 0.0))
    net.now = 10.0
    net.start()
    assert net.m[B].mirror(P1) == {key(n): value(n, uptime=15) for n in range(3)}  # aged 10 s
    assert mirror_changes(net) == [(Op.ADD, key(n), "batch") for n in range(3)]
    types = [type(r.message) for r in net.records(A)]
    assert types == [Open, OpenAck, BatchStart, Entry, Entry, Entry, BatchEnd]
    a, b = net.m[A].snapshot(), net.m[B].snapshot()
    assert a.profiles[0].unacked == 0  # BATCH_END asks for an ACK at once
    assert (a.counters["batches_sent"], b.counters["batches_received"]) == (1, 1)
    assert a.counters["records_acked"] == 5
    assert (b.profiles[0].role, b.profiles[0].mirror_entries) == (Role.RECEIVER, 3)


@pytest.mark.parametrize("seed", range(4))
def test_realtime_changes_in_order(seed: int) -> None:
    net = established_pair(seed=seed)
    g1, g2 = key(1), key(2)
    net.change(A, Op.ADD, g1, value(1))
    net.change(A, Op.UPDATE, g1, value(2))
    net.change(A, Op.UPDATE, g1, value(2, uptime=9))  # only the age moved: not reported
    net.change(A, Op.DELETE, g1, None)
    net.change(A, Op.ADD, g2, value(3))
    # and a burst, not pumped in between
    for n in range(10, 20):
        net.change(A, Op.ADD, key(n), value(n), pump=False)
    net.change(A, Op.DELETE, key(15), None, pump=False)
    net.pump()
    assert mirror_changes(net) == [
        (Op.ADD, g1, "peer"),
        (Op.UPDATE, g1, "peer"),
        (Op.DELETE, g1, "peer"),
        (Op.ADD, g2, "peer"),
        *[(Op.ADD, key(n), "peer") for n in range(10, 20)],
        (Op.DELETE, key(15), "peer"),
    ]
    assert net.m[B].mirror(P1) == net.m[A].local(P1)
    assert net.m[A].snapshot().profiles[0].unacked > 0
    net.run_for(0.1)  # the delayed ACK
    assert net.m[A].snapshot().profiles[0].unacked == 0


def test_ack_every_n_records_or_after_a_delay() -> None:
    net = established_pair(b_kw={"ack_every": 4}, max_chunk=1)  # one octet at a time
    first = net.m[A].snapshot().counters["records_sent"] + 1
    for n in range(9):
        net.change(A, Op.ADD, key(n), value(n), pump=False)
    net.pump()
    assert net.m[A].snapshot().profiles[0].unacked == 1
    acks = [r.message.seq for r in net.records(B) if isinstance(r.message, Ack)]
    assert acks[-2:] == [first + 3, first + 7]
    net.run_for(0.05)
    assert net.m[A].snapshot().profiles[0].unacked == 0
    assert net.records(B)[-1].message == Ack(first + 8)


@pytest.mark.parametrize("seed", range(3))
def test_reconnect_sends_a_new_batch_that_removes_stale(seed: int) -> None:
    net = established_pair(seed=seed, entries=3)
    net.run_for(5.0)
    net.reset()
    dropped_at = net.now
    assert net.m[A].state is ConnState.CLOSED and net.m[B].state is ConnState.LISTENING
    net.change(A, Op.DELETE, key(0), None)  # while down
    net.change(A, Op.UPDATE, key(1), value(42))
    net.change(A, Op.ADD, key(7), value(7))
    net.change(A, Op.ADD, key(8), value(8))
    net.change(A, Op.DELETE, key(8), None)  # joined and left while down: never seen by B
    assert net.m[B].mirror(P1) == {key(n): value(n) for n in range(3)}  # kept meanwhile
    net.run_for(0.1)  # first retry after 0.1 s
    assert net.m[A].state is ConnState.ESTABLISHED
    (reconnect_at,) = [t for t, o in net.log[A] if isinstance(o, Connect) and t > 0]
    assert reconnect_at == pytest.approx(dropped_at + 0.1)
    assert set(net.m[B].mirror(P1)) == set(net.m[A].local(P1)) == {key(1), key(2), key(7)}
    assert net.m[B].mirror(P1) == {
        key(1): value(42, uptime=0),  # given at the drop
        key(2): value(2, uptime=5),  # given at 0, sent again 5.1 s later: aged
        key(7): value(7),
    }
    changes = mirror_changes(net)[3:]
    assert sorted(changes, key=str) == sorted(
        [(Op.UPDATE, key(1), "batch"), (Op.ADD, key(7), "batch"), (Op.DELETE, key(0), "batch")],
        key=str,
    )
    assert all(k != key(8) for _, k, _ in mirror_changes(net))
    for x in (A, B):
        assert net.m[x].snapshot().counters["reconnects"] == 1
        assert net.m[x].snapshot().errors == {"io-error": 1}


def test_leave_racing_a_queued_join_leaves_nothing_anywhere() -> None:
    net = established_pair(a_kw={"window": 1})
    net.change(A, Op.ADD, key(1), value(1), pump=False)  # sent: fills the window of one
    net.change(A, Op.ADD, key(2), value(2), pump=False)  # queued
    net.change(A, Op.UPDATE, key(1), value(5), pump=False)  # queued behind it
    net.change(A, Op.DELETE, key(2), None, pump=False)  # the leave meets the queued join
    assert net.m[A].snapshot().profiles[0].queued == 2
    net.pump()
    net.run_for(1.0)  # acks open the window; the queue drains
    assert net.m[B].mirror(P1) == {key(1): value(5)} == net.m[A].local(P1)
    assert all(k != key(2) for _, k, _ in mirror_changes(net))
    sent_keys = [r.message.key for r in net.records(A) if isinstance(r.message, Entry)]
    assert sent_keys == [key(1), key(1)]
    snap = net.m[A].snapshot().profiles[0]
    assert (snap.queued, snap.unacked) == (0, 0)


def test_role_change_while_established_sends_a_batch_the_other_way() -> None:
    net = established_pair(entries=2)
    for n in (5, 6):
        net.handle(B, net.m[B].local_change(P1, Op.ADD, key(n), value(n), net.now))
    assert net.m[A].mirror(P1) == {}  # B is a receiver: nothing sent yet
    net.role(A, False)
    net.role(B, True)
    assert net.m[A].mirror(P1) == {key(5): value(5), key(6): value(6)}
    assert net.m[A].snapshot().profiles[0].aging is False
    b = net.m[B].snapshot().profiles[0]
    assert (b.role, b.batches_sent, b.aging) == (Role.SENDER, 1, True)  # A's entries age now
    net.run_for(259.0)
    assert len(net.m[B].mirror(P1)) == 2
    net.run_for(1.0)
    assert net.m[B].mirror(P1) == {}
    assert mirror_changes(net, B)[-2:] == [(Op.DELETE, key(n), "expired") for n in (0, 1)]


def test_hand_over_keeps_what_we_served_until_the_peer_batches() -> None:
    # A served key(0), key(1), B mirrored them; then A-C failed: B served, A yielded. While
    # B served, key(0) left and key(7) joined. B now hands back: until A's batch, B's mirror
    # must be what B served (A is about to serve exactly that), not A's old copy.
    net = established_pair(entries=2)
    net.role(A, False)
    net.role(B, True)
    b = net.m[B]
    net.handle(B, b.local_change(P1, Op.ADD, key(0), value(0), net.now))
    net.handle(B, b.local_change(P1, Op.ADD, key(1), value(1), net.now))
    net.handle(B, b.local_change(P1, Op.DELETE, key(0), None, net.now))
    net.handle(B, b.local_change(P1, Op.ADD, key(7), value(7, uptime=3), net.now))
    net.run_for(5.0)
    assert net.m[A].mirror(P1) == {key(1): value(1), key(7): value(7, uptime=3)}
    net.role(B, False)
    before = len(mirror_changes(net, B))
    net.handle(B, b.hand_over(P1, net.now))
    assert b.mirror(P1) == {key(0): value(0), key(1): value(1, uptime=5),
                            key(7): value(7, uptime=8)}  # the union, aged to now
    assert mirror_changes(net, B)[before:] == [(Op.ADD, key(7), "handover")]
    a = net.m[A]
    net.handle(A, a.local_change(P1, Op.DELETE, key(0), None, net.now))  # the device adopts
    for k, v in a.mirror(P1).items():  # B's entries, then serves: its batch replaces the guess
        net.handle(A, a.local_change(P1, Op.ADD, k, v, net.now))
    net.role(A, True)
    net.run_for(1.0)
    assert set(b.mirror(P1)) == {key(1), key(7)}


def test_hand_over_after_a_partition_keeps_the_peers_groups() -> None:
    # Both sides served (a partition) and each sent its batch; A yields because the switch
    # uses B. B's groups are the hosts' ones: A's stale entries must not come back.
    net = established_pair(entries=2)  # A serves key(0), key(1)
    b = net.m[B]
    net.handle(B, b.local_change(P1, Op.ADD, key(5), value(5), net.now))
    net.role(B, True)  # B serves too: its batch reaches A while A is the sender
    assert net.m[A].mirror(P1) == {key(5): value(5)}
    net.role(A, False)
    net.handle(A, net.m[A].hand_over(P1, net.now))
    assert net.m[A].mirror(P1) == {key(5): value(5)}


def test_peer_holds_once_everything_sent_is_acknowledged() -> None:
    net = established_pair(entries=3)
    a = net.m[A]
    assert a.peer_holds(P1)  # the batch was acknowledged
    net.change(A, Op.ADD, key(9), value(9), pump=False)
    assert not a.peer_holds(P1)  # sent, not acknowledged yet
    net.pump()
    net.run_for(1.0)
    assert a.peer_holds(P1)
    holds = [o.holds for o in net.events(A, PeerHolds)]
    assert holds[-3:] == [True, False, True]
    net.handle(A, a.closed("reset", net.now))
    assert not a.peer_holds(P1) and net.events(A, PeerHolds)[-1].holds is False
    assert not net.m[B].peer_holds(P1)  # the receiver holds nothing of its own to hand over
    assert a.snapshot().profiles[0].ever_synced


def test_peer_appeared_cuts_the_backoff_short() -> None:
    net = established_pair()
    net.reachable = False
    net.handle(A, net.m[A].closed("reset", net.now))
    net.run_for(30.0)  # attempts fail and the backoff grows to 5 s
    a = net.m[A]
    assert a.state is ConnState.CLOSED and a._backoff == 5.0
    net.reachable = True
    net.handle(A, a.peer_appeared(net.now))
    net.pump()
    assert a.state is ConnState.ESTABLISHED  # at once, not within the next 5 s
    assert net.m[B].peer_appeared(net.now) == []  # the listening side has nothing to do


def test_a_restarted_server_gets_its_groups_back_as_holdings() -> None:
    # B served three groups (A mirrored them), then B restarted empty. On the new
    # connection A, which does not serve, sends its copy back: B holds them before it
    # serves, and B's batch when it does serve carries them again.
    net = Net(make(A), make(B))
    for n in range(3):
        net.handle(B, net.m[B].local_change(P1, Op.ADD, key(n), value(n), 0.0))
    net.handle(B, net.m[B].set_role(P1, True, 0.0))
    net.start()
    assert set(net.m[A].mirror(P1)) == {key(0), key(1), key(2)}
    net.reset()
    net.m[B] = make(B)  # restarted: nothing local, nothing mirrored
    net.handle(B, net.m[B].start(net.now))
    net.run_for(1.0)
    b = net.m[B]
    assert b.state is ConnState.ESTABLISHED
    assert b.mirror(P1) == net.m[A].mirror(P1)
    (got,) = net.events(B, HoldingsReceived)
    assert set(got.entries) == {key(0), key(1), key(2)}
    assert [c for _, _, c in mirror_changes(net, B)] == ["holdings"] * 3
    records = [r for r in net.records(A) if r.flags & Flags.HOLDINGS]
    assert [type(r.message) for r in records] == [BatchStart, Entry, Entry, Entry, BatchEnd]
    for k, v in b.mirror(P1).items():  # B serves them (the device adopts), A mirrors them
        net.handle(B, b.local_change(P1, Op.ADD, k, v, net.now))
    net.role(B, True)
    net.run_for(1.0)
    assert set(net.m[A].mirror(P1)) == {key(0), key(1), key(2)}
    assert not net.events(A, HoldingsReceived)  # a sender's side sent none back


def test_holdings_reach_a_server_as_an_output_only() -> None:
    net = established_pair(entries=1)  # A serves key(0)
    net.reset()  # B mirrors key(0); A restarts and is sender at once, serving nothing yet
    net.m[A] = make(A)
    net.handle(A, net.m[A].set_role(P1, True, net.now))
    net.handle(A, net.m[A].start(net.now))
    net.pump()
    net.run_for(1.0)
    (got,) = net.events(A, HoldingsReceived)
    assert set(got.entries) == {key(0)} and net.m[A].mirror(P1) == {}


def test_holdings_flag_on_a_keepalive_closes_the_connection() -> None:
    net = established_pair()
    bad = encode_message(Keepalive(), net.m[B]._tx_seq, int(Flags.HOLDINGS))
    outs = net.m[A].data_received(bad, net.now)
    assert any(isinstance(o, Close) and o.reason == "bad-flags" for o in outs)


def test_two_profiles_one_mismatched() -> None:
    a_profiles = [ProfileSpec(P1, 10), ProfileSpec("profile2", 20)]
    b_profiles = [ProfileSpec(P1, 11), ProfileSpec("profile2", 20)]
    net = Net(make(A, a_profiles), make(B, b_profiles))
    for p in (P1, "profile2"):
        net.handle(A, net.m[A].local_change(p, Op.ADD, key(1), value(1), 0.0))
        net.handle(A, net.m[A].set_role(p, True, 0.0))
    net.start()
    assert net.m[A].state is net.m[B].state is ConnState.ESTABLISHED  # the channel stays up
    for x in (A, B):
        snap = net.m[x].snapshot()
        p1, p2 = snap.profiles
        assert (p1.peer_status, p2.peer_status) == (PeerStatus.MISMATCH, PeerStatus.SYNCED)
        assert "backup-id 10" in p1.mismatch and "backup-id 11" in p1.mismatch
        (mismatch,) = net.events(x, Mismatch)
        assert mismatch.profile == P1
        assert snap.errors == {"backup-id-mismatch": 1, "peer-error": 1}
    errors = [r.message for r in net.records(A) if isinstance(r.message, Error)]
    assert [(e.code, e.backup_id) for e in errors] == [(ErrorCode.BACKUP_ID_MISMATCH, 11)]
    assert net.m[B].mirror(P1) == {}  # reported, not synced
    assert net.m[B].mirror("profile2") == {key(1): value(1)}
    net.change(A, Op.ADD, key(2), value(2))
    assert net.m[B].mirror(P1) == {}
    assert net.m[A].snapshot().profiles[0].batches_sent == 0


def test_same_backup_id_under_another_name_is_a_mismatch() -> None:
    net = Net(make(A, [ProfileSpec(P1, 10)]), make(B, [ProfileSpec("other", 10)]))
    net.start()
    assert net.m[A].snapshot().profiles[0].peer_status is PeerStatus.MISMATCH
    assert net.m[B].snapshot().profiles[0].peer_status is PeerStatus.MISMATCH


def test_profile_missing_on_peer_is_absent_not_mismatched() -> None:
    net = Net(make(A, [ProfileSpec(P1, 10)]), make(B, [ProfileSpec("p2", 20)]))
    net.start()
    assert net.m[A].snapshot().profiles[0].peer_status is PeerStatus.ABSENT
    assert net.events(A, Mismatch) == []


def test_mismatch_reported_by_the_peer_only() -> None:
    """A peer may judge a profile mismatched by a rule we do not apply: its ERROR counts."""
    b = established_script()
    script = b.script
    outs = b.channel.data_received(
        script.rec(Error(ErrorCode.BACKUP_ID_MISMATCH, 10, "services differ")), 1.0
    )
    assert Mismatch(P1, "peer reports: services differ") in outs
    assert b.channel.snapshot().profiles[0].peer_status is PeerStatus.MISMATCH
    assert b.channel.state is ConnState.ESTABLISHED
    outs = b.channel.data_received(script.rec(BatchStart(10, 0)), 1.0)
    assert Close("not-synced", "profile profile1 is mismatch") in outs


# ---- malformed input --------------------------------------------------------------------


class Script:
    """Records from a hand-driven peer, with consecutive sequence numbers."""

    def __init__(self) -> None:
        self.seq = 0

    def rec(self, msg: object, flags: int = 0, seq: int | None = None) -> bytes:
        self.seq += 1
        return encode_message(msg, self.seq if seq is None else seq, flags)


class Scripted:
    def __init__(self, channel: RbsChannel, script: Script) -> None:
        self.channel = channel
        self.script = script


def established_script(entries: int = 2) -> Scripted:
    """DeviceB established with a scripted DeviceA that sent a batch of `entries`."""
    b = make(B)
    b.start(0.0)
    b.connected(0.0)
    s = Script()
    peer_open = Open("DeviceA", "1.1.1.1", (ProfileInfo(P1, 10, ("igmp",)),))
    data = s.rec(peer_open) + s.rec(OpenAck()) + s.rec(BatchStart(10, entries))
    for n in range(entries):
        data += s.rec(Entry(10, Op.ADD, key(n), value(n)))
    data += s.rec(BatchEnd(10, entries))
    b.data_received(data, 0.0)
    assert b.state is ConnState.ESTABLISHED and len(b.mirror(P1)) == entries
    return Scripted(b, s)


def entry_bytes(script: Script, n: int, **kw: object) -> bytes:
    return script.rec(Entry(10, Op.ADD, key(n), value(n)), **kw)


def bad_group(script: Script) -> bytes:
    data = bytearray(entry_bytes(script, 9))
    at = data.index(key(9).group.packed)
    data[at] = 10  # 10.0.0.9: not a group
    return bytes(data)


def oversized(script: Script) -> bytes:
    return struct.pack("!HBBHHII", 0x5242, 1, 4, 0, 0, 70_000, script.seq + 1) + bytes(100)


def short_entry(script: Script) -> bytes:
    data = entry_bytes(script, 9)
    return data[:8] + struct.pack("!I", 5) + data[12 : HEADER_LEN + 5]


BAD_INPUTS = {
    "bad-magic": lambda s: b"GET / HTTP/1.1\r\n\r\n",
    "bad-version": lambda s: b"\x52\x42\x02" + bytes(13),
    "oversized": oversized,
    "truncated": short_entry,
    "bad-group": bad_group,
    "bad-sequence": lambda s: entry_bytes(s, 9, seq=s.seq + 5),
    "unknown-backup-id": lambda s: s.rec(Entry(99, Op.ADD, key(9), value(9))),
    "unexpected-record": lambda s: s.rec(Open("DeviceA", "1.1.1.1")),
    "bad-ack": lambda s: s.rec(Ack(1000)),
}


@pytest.mark.parametrize("reason", sorted(BAD_INPUTS))
@pytest.mark.parametrize("prefix_good", [False, True])
def test_bad_input_closes_the_connection_and_applies_nothing(
    reason: str, prefix_good: bool
) -> None:
    b = established_script()
    before = b.channel.mirror(P1)
    good = entry_bytes(b.script, 5) if prefix_good else b""
    outs = b.channel.data_received(good + BAD_INPUTS[reason](b.script), 1.0)
    closes = [o for o in outs if isinstance(o, Close)]
    assert [c.reason for c in closes] == [reason]
    sent = b"".join(o.data for o in outs if isinstance(o, SendBytes))
    error = decode_all(sent)[-1].message
    assert isinstance(error, Error) and error.text.startswith(reason)
    assert error.code in (ErrorCode.MALFORMED, ErrorCode.PROTOCOL)
    assert outs.index(closes[0]) > max(i for i, o in enumerate(outs) if isinstance(o, SendBytes))
    expected = dict(before)
    if prefix_good:  # a complete, valid record before the bad one stands
        expected[key(5)] = value(5)
    assert b.channel.mirror(P1) == expected
    assert b.channel.snapshot().errors == {reason: 1}
    assert b.channel.state is ConnState.LISTENING
    # and what was left of the stream is not read
    assert b.channel.data_received(entry_bytes(b.script, 7), 1.0) == []
    assert key(7) not in b.channel.mirror(P1)


def test_garbage_cut_into_single_octets() -> None:
    b = established_script()
    outs: list[Output] = []
    for octet in bytes.fromhex("5242 0104 0000 0000 00010000 00000007"):
        outs += b.channel.data_received(bytes([octet]), 1.0)
    assert [o.reason for o in outs if isinstance(o, Close)] == ["oversized"]


def test_truncated_record_at_close_is_counted_not_applied() -> None:
    b = established_script()
    data = entry_bytes(b.script, 7)
    outs = b.channel.data_received(data[:-3], 1.0)
    assert not [o for o in outs if isinstance(o, MirrorChanged | Close)]
    outs = b.channel.closed("peer-closed", 1.0)
    assert ChannelState(ConnState.CLOSED, "peer-closed") in outs
    assert key(7) not in b.channel.mirror(P1)
    assert b.channel.snapshot().errors == {"truncated": 1}


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        (
            lambda s: s.rec(BatchStart(10, 2)) + entry_bytes(s, 7) + s.rec(BatchEnd(10, 1)),
            "batch-count",
        ),
        (lambda s: s.rec(BatchStart(10, 1)) + entry_bytes(s, 7) + entry_bytes(s, 8), "batch-count"),
        (
            lambda s: s.rec(BatchStart(10, 2)) + s.rec(Entry(10, Op.DELETE, key(0))),
            "bad-batch-entry",
        ),
        (
            lambda s: s.rec(BatchStart(10, 2)) + entry_bytes(s, 7) + entry_bytes(s, 7),
            "duplicate-entry",
        ),
        (lambda s: s.rec(BatchStart(10, 2)) + s.rec(BatchStart(10, 2)), "nested-batch"),
        (lambda s: s.rec(BatchEnd(10, 0)), "unexpected-record"),
    ],
)
def test_broken_batches_close_without_removing_stale(records, reason: str) -> None:
    b = established_script()
    outs = b.channel.data_received(records(b.script), 1.0)
    assert [o.reason for o in outs if isinstance(o, Close)] == [reason]
    assert {key(0), key(1)} <= set(b.channel.mirror(P1))  # the old entries were not swept


def test_peer_error_closes() -> None:
    b = established_script()
    outs = b.channel.data_received(b.script.rec(Error(ErrorCode.PROTOCOL, 0, "x: y")), 1.0)
    assert Close("peer-error", "PROTOCOL: x: y") in outs
    assert b.channel.snapshot().errors == {"peer-error": 1}


# ---- timers -----------------------------------------------------------------------------


def test_keepalives_every_second_and_dead_peer() -> None:
    net = established_pair()
    net.run_for(10.0)
    for x in (A, B):
        times = [
            t
            for t, data in net.sent[x]
            for r in decode_all(data)
            if isinstance(r.message, Keepalive)
        ]
        assert times == [float(n) for n in range(1, 11)]
    net.blackhole = True
    net.run_for(10.0)
    for x in (A, B):
        t, close = next((t, o) for t, o in net.log[x] if isinstance(o, Close))
        assert (t, close.reason) == (10.0 + 3.5, "dead-peer")  # last keepalive in at 10.0
    net.blackhole = False
    net.run_for(10.0)
    assert net.m[A].state is ConnState.ESTABLISHED


def test_backoff_doubles_to_five_seconds_and_resets() -> None:
    net = Net(make(A), make(B))
    net.reachable = False
    net.start()
    net.run_for(30.0)
    attempts = [t for t, o in net.log[A] if isinstance(o, Connect)]
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(attempts)]
    assert gaps[:7] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0] and set(gaps[7:]) == {5.0}
    assert net.m[A].snapshot().errors["connect-failed"] == len(attempts)
    net.reachable = True
    net.run_for(5.0)
    assert net.m[A].state is ConnState.ESTABLISHED
    net.reset()
    t = net.now
    net.run_for(1.0)
    assert [u for u, o in net.log[A] if isinstance(o, Connect)][-1] == pytest.approx(t + 0.1)


def test_connect_attempt_that_hangs_is_abandoned() -> None:
    net = Net(make(A), make(B))
    net.hang = True
    net.start()
    net.run_for(3.0)
    assert [o.reason for o in net.events(A, Close)] == ["connect-timeout"]
    assert net.m[A].state is ConnState.CLOSED


def test_mirror_is_kept_while_up_and_ages_from_a_drop() -> None:
    net = established_pair(entries=2)
    net.run_for(1000.0)  # no changes for far longer than 260 s: nothing ages while up
    assert len(net.m[B].mirror(P1)) == 2
    net.reachable = False
    net.reset()
    dropped = net.now
    assert net.m[B].snapshot().profiles[0].aging
    net.run_until(dropped + 259.9)
    assert len(net.m[B].mirror(P1)) == 2
    net.run_until(dropped + 260.0)
    assert net.m[B].mirror(P1) == {}
    expired = [(t, o.key) for t, o in net.log[B] if isinstance(o, MirrorChanged)][-2:]
    assert expired == [(dropped + 260.0, key(0)), (dropped + 260.0, key(1))]
    assert net.m[B].snapshot().counters["entries_expired"] == 2


def test_reconnect_before_expiry_stops_aging() -> None:
    net = established_pair(entries=2, a_kw={"backoff_initial_s": 100.0, "backoff_max_s": 100.0})
    net.reset()
    net.run_for(150.0)  # reconnected at +100
    assert net.m[B].state is ConnState.ESTABLISHED
    net.run_for(500.0)
    assert len(net.m[B].mirror(P1)) == 2
    assert not net.m[B].snapshot().profiles[0].aging


def test_custom_expiry() -> None:
    net = established_pair(entries=1, b_kw={"mirror_expiry_s": 10.0})
    net.reachable = False
    net.reset()
    net.run_for(10.0)
    assert net.m[B].mirror(P1) == {}


# ---- scale, shutdown --------------------------------------------------------------------


def test_ten_thousand_entry_batch_is_fast() -> None:
    a, b = make(A), make(B)
    for n in range(10_000):
        a.local_change(P1, Op.ADD, key(n, f"Eth-Trunk{n % 8}"), value(n % 200), 0.0)
    a.set_role(P1, True, 0.0)
    net = Net(a, b, max_chunk=65536)
    started = time.process_time()
    net.start()
    spent = time.process_time() - started
    assert len(b.mirror(P1)) == 10_000
    assert a.snapshot().profiles[0].unacked == 0
    assert spent < 0.8, f"{spent:.3f} s of CPU"


def test_shutdown_closes_and_goes_inert() -> None:
    net = established_pair()
    net.handle(A, net.m[A].shutdown(net.now))
    net.pump()
    assert net.events(A, Close)[-1] == Close("shutdown")
    assert net.m[A].state is ConnState.IDLE and net.m[A].next_deadline() is None
    assert net.m[B].state is ConnState.LISTENING
    assert "shutdown" not in net.m[A].snapshot().errors  # a normal close
    assert net.m[A].tick(net.now + 100) == []
    assert net.m[A].start(net.now) == []


def test_bad_local_input_is_refused() -> None:
    a = make(A)
    with pytest.raises(ValueError, match="not bound"):
        a.local_change("nope", Op.ADD, key(1), value(1), 0.0)
    with pytest.raises(ValueError, match="needs"):
        a.local_change(P1, Op.DELETE, key(1), value(1), 0.0)
    with pytest.raises(ValueError):
        make(A, [ProfileSpec(P1, 10), ProfileSpec("p2", 10)])
    with pytest.raises(ValueError):
        RbsChannel("s", "D", "1.1.1.1", "1.1.1.1")
