"""LacpService under trio's MockClock, with in-memory member ports."""

from __future__ import annotations

import io
import math

import pytest
import trio
import trio.testing

from daemon.lacp.codec import decode_frame, state_bits
from daemon.lacp.machine import (
    DistributingChanged,
    LacpTrunk,
    Output,
    PartnerAttached,
    Role,
    RxState,
)
from daemon.lacp.service import LacpService
from daemon.log import Log, parse_line
from tests.unit.test_lacp_machine import GE2, SYS_A, SYS_C, make_trunk


class MemPort:
    """One end of an in-memory cable; can be told to fail like a vanished interface."""

    def __init__(self, inbox: trio.MemoryReceiveChannel[bytes]) -> None:
        self.inbox = inbox
        self.peer: trio.MemorySendChannel[bytes] | None = None
        self.sent: list[tuple[float, bytes]] = []
        self.fail_recv = 0  # the next n receives fail
        self.fail_send = False
        self.drop_send = False

    async def send(self, frame: bytes) -> None:
        if self.fail_send:
            raise OSError(6, "No such device or address")  # ENXIO, as after a vanished link
        if self.drop_send:
            raise OSError(105, "No buffer space available")  # a filter dropped the frame
        self.sent.append((trio.current_time(), frame))
        assert self.peer is not None
        await self.peer.send(frame)

    async def recv(self) -> bytes:
        if self.fail_recv:
            self.fail_recv -= 1
            raise OSError(100, "Network is down")  # ENETDOWN
        return await self.inbox.receive()


def cable() -> tuple[MemPort, MemPort, trio.MemorySendChannel[bytes]]:
    """Two connected ports, and a way to inject raw frames towards the second."""
    to_a_send, to_a_recv = trio.open_memory_channel[bytes](math.inf)
    to_c_send, to_c_recv = trio.open_memory_channel[bytes](math.inf)
    a, c = MemPort(to_a_recv), MemPort(to_c_recv)
    a.peer, c.peer = to_c_send, to_a_send
    return a, c, to_c_send


class Side:
    """One device: its trunk, service, recorded outputs and log."""

    def __init__(self, name: str, trunk: LacpTrunk, port: MemPort) -> None:
        self.trunk = trunk
        self.port = port
        self.outputs: list[tuple[float, Output]] = []
        self.logbuf = io.StringIO()
        self.service = LacpService(
            trunk, {GE2: port}, self._record, Log(name, "lacp", stream=self.logbuf)
        )

    def _record(self, out: Output) -> None:
        self.outputs.append((trio.current_time(), out))

    def up_at(self) -> float | None:
        return next(
            (t for t, o in self.outputs if isinstance(o, DistributingChanged) and o.up), None
        )


async def start_pair(nursery: trio.Nursery) -> tuple[Side, Side, trio.MemorySendChannel[bytes]]:
    a_port, c_port, inject = cable()
    a = Side("DeviceA", make_trunk(SYS_A, {GE2: 1}), a_port)
    c = Side("DeviceC", make_trunk(SYS_C, {GE2: 1}), c_port)
    for side in (a, c):
        await nursery.start(side.service.run)
    for side in (a, c):
        side.service.port_enabled(GE2, True)
    return a, c, inject


async def test_two_services_reach_distributing(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        a, c, _ = await start_pair(nursery)
        await trio.sleep(5.0)
        for side in (a, c):
            assert side.trunk.distributing() == {GE2}
            assert 2.0 <= side.up_at() < 2.1  # aggregate wait, then a few instant exchanges
            assert state_bits(side.trunk.snapshot().ports[0].actor.state) == "10111100"
        quiet = len(a.port.sent)
        await trio.sleep(90.0)  # timer task alone drives slow periodic transmission
        times = [t for t, _ in a.port.sent[quiet:]]
        assert len(times) == 3 and times[1] - times[0] == times[2] - times[1] == 30.0
        await c.service.stop()
        await a.service.stop()


async def test_garbage_and_own_frames_are_counted_not_fatal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        a, c, inject = await start_pair(nursery)
        await trio.sleep(3.0)
        await inject.send(b"\x00" * 7)
        await inject.send(bytes.fromhex("0180c200000200e0fc0000018809") + b"\x02" * 110)
        await inject.send(c.port.sent[-1][1])  # C's own LACPDU comes back
        await trio.sleep(1.0)
        dropped = c.trunk.snapshot().ports[0].dropped
        assert dropped == {"short": 1, "not-lacp": 1, "own-frame": 1}
        assert c.trunk.distributing() == {GE2}  # still running, still aggregated
        await a.service.stop()
        await c.service.stop()


async def test_stop_says_goodbye_so_the_partner_detaches_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        a, c, _ = await start_pair(nursery)
        await trio.sleep(10.0)
        stopped_at = trio.current_time()
        await a.service.stop()
        _, goodbye = decode_frame(a.port.sent[-1][1])
        assert state_bits(goodbye.actor.state) == "10100000"
        await trio.testing.wait_all_tasks_blocked()
        assert not c.trunk.distributing()
        assert trio.current_time() == stopped_at  # no timeout needed
        down = [o for t, o in c.outputs if isinstance(o, DistributingChanged) and t >= 10.0]
        assert down == [DistributingChanged(frozenset(), False, frozenset())]
        assert [o for _, o in a.outputs[-2:]] == [
            DistributingChanged(frozenset(), False, frozenset()), PartnerAttached(False)]
        await c.service.stop()
    # run() returned for both: the nursery closed


async def test_role_change_is_sent_at_once(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        a, c, _ = await start_pair(nursery)
        await trio.sleep(10.0)
        a.service.set_role(Role.BACKUP)
        await trio.testing.wait_all_tasks_blocked()
        assert trio.current_time() == 10.0
        assert not a.trunk.distributing() and not c.trunk.distributing()
        a.service.set_role(Role.MASTER)  # a standby port: no 2 s wait
        await trio.testing.wait_all_tasks_blocked()
        assert a.trunk.distributing() == c.trunk.distributing() == {GE2}
        assert trio.current_time() == 10.0
        await a.service.stop()
        await c.service.stop()


@pytest.mark.parametrize("op", ["recv", "send"])
async def test_io_error_disables_port_until_carrier_up(
    autojump_clock: trio.testing.MockClock, op: str
) -> None:
    # The interface is gone: the socket fails again and again while netlink still says up.
    async with trio.open_nursery() as nursery:
        a, c, inject = await start_pair(nursery)
        await trio.sleep(10.0)
        if op == "recv":
            c.port.fail_recv = 2
            await inject.send(a.port.sent[-1][1])  # wake the receiver; the recv fails
        else:
            c.port.fail_send = True
            c.service.set_role(Role.BACKUP)  # something to send; the send fails
            c.service.set_role(Role.MASTER)  # and again, before any send succeeded
        await trio.testing.wait_all_tasks_blocked()
        port = c.trunk.snapshot().ports[0]
        assert (port.enabled, port.rx) == (False, RxState.PORT_DISABLED)
        assert not c.trunk.distributing()
        (line,) = c.logbuf.getvalue().splitlines()
        fields = parse_line(line)
        assert (fields["msg"], fields["port"], fields["op"]) == ("lacp port io failed", GE2, op)
        await trio.sleep(5.0)
        assert not c.trunk.snapshot().ports[0].enabled  # no silent recovery
        c.port.fail_send = False
        c.service.set_role(Role.MASTER)
        c.service.port_enabled(GE2, True)
        await trio.sleep(3.0)
        assert c.trunk.distributing() == a.trunk.distributing() == {GE2}
        await a.service.stop()
        await c.service.stop()


async def test_a_stale_down_error_after_the_carrier_came_back_is_ignored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A link pulled and restored within milliseconds: the kernel reports the down to the
    # packet socket once, on the first receive after netlink already said the carrier is
    # back. That must not leave the port disabled for good (found by the failure soak).
    async with trio.open_nursery() as nursery:
        a, c, inject = await start_pair(nursery)
        await trio.sleep(10.0)
        c.service.port_enabled(GE2, False)
        c.service.port_enabled(GE2, True)
        c.port.fail_recv = 1
        await inject.send(a.port.sent[-1][1])
        await trio.testing.wait_all_tasks_blocked()
        port = c.trunk.snapshot().ports[0]
        assert port.enabled and port.dropped.get("recv-ENETDOWN-stale") == 1
        assert c.logbuf.getvalue() == ""
        await trio.sleep(3.0)
        assert c.trunk.distributing() == a.trunk.distributing() == {GE2}
        await a.service.stop()
        await c.service.stop()


async def test_a_dropped_frame_does_not_disable_the_port(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A silent failure (nftables drops on the member, carrier up) makes sends fail with
    # ENOBUFS. That loses frames, not the port: once the drops stop, LACP resumes by itself.
    async with trio.open_nursery() as nursery:
        a, c, _ = await start_pair(nursery)
        await trio.sleep(10.0)
        c.port.drop_send = True
        c.service.set_role(Role.BACKUP)  # something to send; the send is dropped
        await trio.testing.wait_all_tasks_blocked()
        port = c.trunk.snapshot().ports[0]
        assert port.enabled and port.dropped.get("send-ENOBUFS") == 1
        c.port.drop_send = False
        c.service.set_role(Role.MASTER)
        await trio.sleep(3.0)
        assert c.trunk.distributing() == a.trunk.distributing() == {GE2}
        await a.service.stop()
        await c.service.stop()


def test_ports_must_match_members() -> None:
    trunk = make_trunk(SYS_A, {GE2: 1})
    with pytest.raises(ValueError, match="do not match"):
        LacpService(trunk, {}, lambda out: None, Log("x", stream=io.StringIO()))


async def test_stop_before_run_makes_run_return(autojump_clock: trio.testing.MockClock) -> None:
    a_port, _, _ = cable()
    side = Side("DeviceA", make_trunk(SYS_A, {GE2: 1}), a_port)
    await side.service.stop()
    async with trio.open_nursery() as nursery:
        await nursery.start(side.service.run)
    assert a_port.sent == []
