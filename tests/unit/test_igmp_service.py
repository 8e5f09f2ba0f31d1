"""IgmpService under trio's MockClock, with an in-memory segment and a host that answers."""

from __future__ import annotations

import io
import math

import trio
import trio.testing

from daemon.igmp.codec import (
    GroupRecord,
    Query,
    RecordType,
    V2Leave,
    V3Report,
    decode,
    encode_ip,
)
from daemon.igmp.machine import AdoptedGroup, EventKind, GroupEvent, IgmpConfig, IgmpInterface
from daemon.igmp.service import RECV_ERROR_BACKOFF, IgmpService
from daemon.log import Log, parse_line

ROUTER = "10.0.15.1"
HOST = "10.0.15.100"
G, G2 = "225.1.1.1", "225.1.1.2"


class Segment:
    """The service's transport, and one Linux-like host behind it that answers queries."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._to_router, self._inbox = trio.open_memory_channel[bytes](math.inf)
        self.sent: list[tuple[float, str, Query]] = []
        self.groups: set[str] = set()
        self.answer_delay = 0.5
        self.fail_recv = 0
        self.fail_send = 0

    # -- Transport --
    async def send(self, dst: str, payload: bytes) -> None:
        if self.fail_send:
            self.fail_send -= 1
            raise OSError(105, "No buffer space available")
        q = decode(payload)
        assert isinstance(q, Query)
        self.sent.append((trio.current_time(), dst, q))
        self._nursery.start_soon(self._answer, q)

    async def recv(self) -> bytes:
        if self.fail_recv:
            self.fail_recv -= 1
            raise OSError(100, "Network is down")
        return await self._inbox.receive()

    # -- the host --
    async def _answer(self, q: Query) -> None:
        await trio.sleep(min(self.answer_delay, q.max_response))
        wanted = self.groups if q.general else self.groups & {q.group}
        if wanted:
            records = [GroupRecord(RecordType.MODE_IS_EXCLUDE, g) for g in sorted(wanted)]
            self.inject(encode_ip(HOST, "224.0.0.22", V3Report(tuple(records))))

    def join(self, group: str) -> None:
        self.groups.add(group)
        record = GroupRecord(RecordType.CHANGE_TO_EXCLUDE, group)
        self.inject(encode_ip(HOST, "224.0.0.22", V3Report((record,))))

    def leave_v2(self, group: str) -> None:
        self.groups.discard(group)
        self.inject(encode_ip(HOST, "224.0.0.2", V2Leave(group)))

    def inject(self, datagram: bytes) -> None:
        self._to_router.send_nowait(datagram)

    def query_times(self, general: bool = True) -> list[float]:
        return [t for t, _, q in self.sent if q.general == general]


class Router:
    def __init__(self, segment: Segment, version: int = 3) -> None:
        self.machine = IgmpInterface(
            IgmpConfig(ifname="Eth-Trunk1", address=ROUTER, version=version)
        )
        self.events: list[tuple[float, GroupEvent]] = []
        self.logbuf = io.StringIO()
        self.service = IgmpService(
            self.machine, segment, self._record, Log("DeviceA", "igmp", stream=self.logbuf)
        )

    def _record(self, ev: GroupEvent) -> None:
        self.events.append((trio.current_time(), ev))

    def kinds(self, group: str | None = None) -> list[tuple[float, EventKind]]:
        return [(t, e.kind) for t, e in self.events if group is None or e.group == group]


async def bring_up(nursery: trio.Nursery, version: int = 3) -> tuple[Router, Segment]:
    seg = Segment(nursery)
    r = Router(seg, version)
    await nursery.start(r.service.run)
    r.service.start()
    return r, seg


async def test_queries_keep_a_members_group_alive(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        r, seg = await bring_up(nursery)
        seg.join(G)
        await trio.sleep(400.0)
        assert seg.query_times() == [0.0, 15.0, 75.0, 135.0, 195.0, 255.0, 315.0, 375.0]
        kinds = r.kinds(G)
        assert kinds[0] == (0.0, EventKind.JOIN)
        assert {k for _, k in kinds[1:]} == {EventKind.REFRESH}  # answers to each query
        assert [t for t, _ in kinds[1:]] == [t + 0.5 for t in seg.query_times()[1:]]
        snap = r.service.snapshot()
        assert [g.group for g in snap.groups] == [G]
        assert snap.counters.v3_reports_received == 1 + len(seg.query_times())  # join + answers
        await r.service.close()
        nursery.cancel_scope.cancel()


async def test_v2_leave_runs_last_member_queries_then_leaves(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        r, seg = await bring_up(nursery, version=2)
        seg.join(G)
        await trio.sleep(100.0)
        seg.leave_v2(G)
        await trio.sleep(10.0)
        assert seg.query_times(general=False) == [100.0, 101.0]
        assert {dst for _, dst, q in seg.sent if not q.general} == {G}
        assert r.kinds(G)[-1] == (102.0, EventKind.LEAVE)
        assert r.service.snapshot().groups == ()
        await r.service.close()
        nursery.cancel_scope.cancel()


async def test_garbage_is_counted_and_never_fatal(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        r, seg = await bring_up(nursery)
        seg.inject(b"")
        seg.inject(b"\x45" + bytes(30))
        good = bytearray(encode_ip(HOST, "224.0.0.22", V2Leave(G)))
        good[-1] ^= 0xFF  # the IGMP checksum no longer matches
        seg.inject(bytes(good))
        seg.inject(encode_ip(HOST, G, V2Leave(G), router_alert=False)[:-1] + b"\x00")
        await trio.testing.wait_all_tasks_blocked()
        dropped = r.service.snapshot().dropped
        assert dropped == {"short": 1, "bad-ip": 1, "bad-checksum": 2}
        seg.join(G)
        await trio.testing.wait_all_tasks_blocked()
        assert r.kinds(G) == [(0.0, EventKind.JOIN)]
        await r.service.close()
        nursery.cancel_scope.cancel()


async def test_adopt_queries_at_once_and_unconfirmed_groups_age_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        r, seg = await bring_up(nursery)
        await trio.sleep(50.0)
        seg.groups.add(G)  # a member the peer knew about; this router has not heard it yet
        r.service.adopt(
            [AdoptedGroup(G, "exclude", reporter=HOST), AdoptedGroup(G2, "exclude", reporter=HOST)]
        )
        await trio.sleep(0.0)
        assert [(t, e.kind, e.group) for t, e in r.events] == [
            (50.0, EventKind.JOIN, G),
            (50.0, EventKind.JOIN, G2),
        ]
        await trio.testing.wait_all_tasks_blocked()
        assert seg.query_times()[-1] == 50.0  # sent at once, not at the 75 s slot
        await trio.sleep(200.0)
        assert r.kinds(G2)[-1] == (180.0, EventKind.LEAVE)  # nobody confirmed it: GMI later
        assert [g.group for g in r.service.snapshot().groups] == [G]  # the host confirmed G
        await r.service.close()
        nursery.cancel_scope.cancel()


async def test_stop_forgets_groups_and_start_begins_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        r, seg = await bring_up(nursery)
        seg.join(G)
        await trio.sleep(20.0)
        r.service.stop()
        assert r.kinds(G)[-1] == (20.0, EventKind.LEAVE)
        seg.join(G2)  # nobody listens while down
        await trio.sleep(100.0)
        assert seg.query_times() == [0.0, 15.0]
        assert r.service.snapshot().dropped == {"down": 1}
        r.service.start()
        await trio.sleep(1.0)
        assert seg.query_times() == [0.0, 15.0, 120.0]
        assert r.kinds()[-1] == (120.5, EventKind.JOIN)  # the host answered the new query
        await r.service.close()
        nursery.cancel_scope.cancel()


async def test_io_errors_are_logged_and_not_fatal(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        seg = Segment(nursery)
        seg.fail_recv = 1
        seg.fail_send = 1
        r = Router(seg)
        await nursery.start(r.service.run)
        r.service.start()  # the first query fails to send
        seg.join(G)
        await trio.sleep(RECV_ERROR_BACKOFF + 0.1)
        assert r.kinds(G) == [(RECV_ERROR_BACKOFF, EventKind.JOIN)]
        msgs = [parse_line(line)["msg"] for line in r.logbuf.getvalue().splitlines()]
        assert sorted(msgs) == ["igmp recv failed", "igmp send failed"]
        await trio.sleep(20.0)
        assert seg.query_times() == [15.0]  # the startup schedule went on
        await r.service.close()
        nursery.cancel_scope.cancel()


async def test_close_ends_run_and_close_before_run_returns_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        r, _ = await bring_up(nursery)
        await r.service.close()
        await r.service.close()
    # run() returned: the nursery closed without a cancel
    async with trio.open_nursery() as nursery:
        seg = Segment(nursery)
        early = Router(seg)
        await early.service.close()
        await nursery.start(early.service.run)
        early.service.start()  # queries after close are dropped, not raised
        assert seg.sent == []
