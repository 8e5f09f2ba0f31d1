"""ETrunkService under trio's MockClock, with in-memory datagram transports."""

from __future__ import annotations

import io
import math

import trio
import trio.testing

from daemon.etrunk.codec import ETrunkState, MemberRole, MessageType, decode
from daemon.etrunk.machine import (
    Cause,
    ETrunkMachine,
    MemberCause,
    MemberRoleChanged,
    Output,
    StateChanged,
)
from daemon.etrunk.service import ETrunkService
from daemon.log import Log, parse_line
from tests.unit.test_etrunk_machine import KEY, SYS_A, SYS_B, make

A_IP, B_IP = "1.1.1.1", "3.3.3.3"
MASTER, BACKUP = MemberRole.MASTER, MemberRole.BACKUP


class MemTransport:
    """One end of an in-memory UDP path: what it sends arrives at the other end from `ip`."""

    def __init__(self, ip: str, inbox: trio.MemoryReceiveChannel[tuple[bytes, str]]) -> None:
        self.ip = ip
        self.inbox = inbox
        self.peer: trio.MemorySendChannel[tuple[bytes, str]] | None = None
        self.sent: list[tuple[float, bytes]] = []
        self.fail_send = False
        self.fail_recv = 0
        self.connected = True

    async def send(self, data: bytes) -> None:
        if self.fail_send:
            raise OSError(101, "Network is unreachable")
        self.sent.append((trio.current_time(), data))
        assert self.peer is not None
        if self.connected:
            await self.peer.send((data, self.ip))

    async def recv(self) -> tuple[bytes, str]:
        if self.fail_recv:
            self.fail_recv -= 1
            raise OSError(111, "Connection refused")
        return await self.inbox.receive()


def path() -> tuple[MemTransport, MemTransport, trio.MemorySendChannel[tuple[bytes, str]]]:
    """Transports for A and B, and a way to inject datagrams towards B."""
    to_a_send, to_a_recv = trio.open_memory_channel[tuple[bytes, str]](math.inf)
    to_b_send, to_b_recv = trio.open_memory_channel[tuple[bytes, str]](math.inf)
    a, b = MemTransport(A_IP, to_a_recv), MemTransport(B_IP, to_b_recv)
    a.peer, b.peer = to_b_send, to_a_send
    return a, b, to_b_send


class Side:
    """One device: its machine, service, recorded outputs and log."""

    def __init__(
        self, name: str, machine: ETrunkMachine, key: bytes, peer_ip: str, io_: MemTransport
    ) -> None:
        self.machine = machine
        self.io = io_
        self.outputs: list[tuple[float, Output]] = []
        self.logbuf = io.StringIO()
        self.service = ETrunkService(
            machine, key, peer_ip, io_, self._record, Log(name, "etrunk", stream=self.logbuf)
        )

    def _record(self, out: Output) -> None:
        self.outputs.append((trio.current_time(), out))

    def role(self) -> MemberRole:
        return self.machine.role(1)

    def log_lines(self) -> list[dict[str, str]]:
        return [parse_line(line) for line in self.logbuf.getvalue().splitlines()]


async def start_pair(
    nursery: trio.Nursery, *, key_b: bytes = KEY, **kw_b: object
) -> tuple[Side, Side, trio.MemorySendChannel[tuple[bytes, str]]]:
    a_io, b_io, inject = path()
    a = Side("DeviceA", make(SYS_A), KEY, B_IP, a_io)
    b = Side("DeviceB", make(SYS_B, **kw_b), key_b, A_IP, b_io)  # type: ignore[arg-type]
    for side in (a, b):
        side.service.member_phy(1, True)  # before run: recorded
        await nursery.start(side.service.run)
    return a, b, inject


async def test_two_services_elect(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        a, b, _ = await start_pair(nursery)
        await trio.testing.wait_all_tasks_blocked()
        assert trio.current_time() == 0.0  # decided in the first exchange, no timeout
        assert a.machine.state is ETrunkState.MASTER and b.machine.state is ETrunkState.BACKUP
        assert (a.role(), b.role()) == (MASTER, BACKUP)
        assert a.outputs[0] == (0.0, MemberRoleChanged(1, BACKUP, MemberCause.ETRUNK_INIT, 0.0))
        assert (0.0, StateChanged(ETrunkState.INIT, ETrunkState.MASTER, Cause.PRI, 0.0)) in (
            a.outputs
        )
        quiet = len(a.io.sent)
        await trio.sleep(30.5)  # the timer task alone drives periodic hellos
        times = [t for t, _ in a.io.sent[quiet:]]
        assert times == [float(k) for k in range(1, 31)]
        assert a.machine.snapshot().received == len(b.io.sent)
        assert a.log_lines() == b.log_lines() == []
        await a.service.stop()
        await b.service.stop()


async def test_wrong_key_means_no_adjacency(autojump_clock: trio.testing.MockClock) -> None:
    """Neither side hears the other, so each believes the peer absent and becomes master when
    its fail time has passed: dual master, as real devices with mismatched keys do."""
    async with trio.open_nursery() as nursery:
        a, b, _ = await start_pair(nursery, key_b=b"not the key")
        await trio.sleep(19.9)
        assert a.machine.state is b.machine.state is ETrunkState.INIT
        assert (a.role(), b.role()) == (BACKUP, BACKUP)
        await trio.sleep(0.6)
        for side in (a, b):
            snap = side.machine.snapshot()
            assert (snap.state, snap.cause) == (ETrunkState.MASTER, Cause.TIMEOUT)
            assert side.role() is MASTER
            assert snap.received == 0 and snap.peer is None
            assert snap.rec_drop == {"bad-digest": 21}  # t = 0, 1, ..., 20
            assert side.outputs[-2][1] == StateChanged(
                ETrunkState.INIT, ETrunkState.MASTER, Cause.TIMEOUT, 20.0
            )
            (line,) = side.log_lines()  # logged once, not per packet
            assert (line["msg"], line["reason"]) == ("etrunk packet dropped", "bad-digest")
        await a.service.stop()
        await b.service.stop()


async def test_drops_are_counted_by_reason_not_fatal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        a, b, inject = await start_pair(nursery)
        await trio.sleep(5.5)
        hello = a.io.sent[-1][1]
        await inject.send((hello, "9.9.9.9"))  # right content, wrong sender
        await inject.send((b"\x00" * 10, A_IP))
        await inject.send((b"XXXX" + hello[4:], A_IP))
        await inject.send((hello, A_IP))  # a replay
        await trio.testing.wait_all_tasks_blocked()
        assert b.machine.snapshot().rec_drop == {
            "unexpected-source": 1,
            "short": 1,
            "bad-magic": 1,
            "replay": 1,
        }
        # The service logs its own drops (once per reason); replay is the machine's.
        assert [line["reason"] for line in b.log_lines()] == [
            "unexpected-source",
            "short",
            "bad-magic",
        ]
        await trio.sleep(30.0)
        assert b.machine.state is ETrunkState.BACKUP  # still running, still adjacent
        await a.service.stop()
        await b.service.stop()


async def test_member_failure_is_told_at_once(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        a, b, _ = await start_pair(nursery)
        await trio.sleep(10.3)
        a.service.member_phy(1, False)
        await trio.testing.wait_all_tasks_blocked()
        assert trio.current_time() == 10.3
        assert (a.role(), b.role()) == (BACKUP, MASTER)
        assert b.outputs[-1] == (
            10.3,
            MemberRoleChanged(1, MASTER, MemberCause.PEER_MEMBER_DOWN, 10.3),
        )
        b.service.member_attached(1, True)  # the switch attached B's link
        a.service.member_phy(1, True)
        await trio.sleep(119.5)
        assert (a.role(), b.role()) == (BACKUP, MASTER)  # revert delay, until 130.3
        await trio.sleep(1.0)
        assert (a.role(), b.role()) == (MASTER, BACKUP)
        await a.service.stop()
        await b.service.stop()


async def test_stop_says_goodbye_so_the_peer_takes_over_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        a, b, _ = await start_pair(nursery)
        await trio.sleep(10.5)
        await a.service.stop()
        assert decode(a.io.sent[-1][1], KEY).msg_type is MessageType.GOODBYE
        await trio.testing.wait_all_tasks_blocked()
        assert trio.current_time() == 10.5
        assert (b.machine.state, b.machine.snapshot().cause) == (
            ETrunkState.MASTER,
            Cause.PEER_GOODBYE,
        )
        assert b.role() is MASTER
        sent = len(a.io.sent)
        await trio.sleep(5.0)
        assert len(a.io.sent) == sent  # nothing after the goodbye
        await b.service.stop()
    # run() returned for both: the nursery closed


async def test_bfd_down_takes_over_at_once(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        a, b, _ = await start_pair(nursery, track_bfd=True)
        await trio.sleep(10.5)
        a.io.connected = False  # the path between the loopbacks fails
        await trio.sleep(0.05)
        b.service.bfd_state(False)
        await trio.testing.wait_all_tasks_blocked()
        assert b.machine.snapshot().cause is Cause.BFD_DOWN and b.role() is MASTER
        await a.service.stop()
        await b.service.stop()


async def test_io_errors_are_counted_and_survived(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        a, b, _ = await start_pair(nursery)
        await trio.sleep(5.5)
        a.io.fail_send = True
        b.io.fail_recv = 3
        await trio.sleep(3.0)
        assert a.machine.snapshot().snd_drop == 3
        a.io.fail_send = False
        await trio.sleep(10.0)
        assert b.machine.state is ETrunkState.BACKUP  # the 3 s gap is inside the fail time
        msgs = [line["msg"] for line in a.log_lines()]
        assert msgs == ["etrunk send failed", "etrunk send recovered"]
        assert [line["msg"] for line in b.log_lines()] == ["etrunk receive failed"]
        await a.service.stop()
        await b.service.stop()


async def test_stop_before_run_makes_run_return(autojump_clock: trio.testing.MockClock) -> None:
    a_io, _, _ = path()
    side = Side("DeviceA", make(SYS_A), KEY, B_IP, a_io)
    await side.service.stop()
    async with trio.open_nursery() as nursery:
        await nursery.start(side.service.run)
    assert a_io.sent == [] and trio.current_time() == 0.0
