"""Registers under virtual time (RFC 7761 4.4): a source's DR tunnels its packets to the RP,
the RP joins toward the source and says Register-Stop once the source's tree delivers, the DR
stops, probes with a Null-Register after the suppression time and resumes if the RP is gone.

The seed's routers through the real codec; DeviceA is the source's DR here (the source
10.0.15.50 on its Eth-Trunk1 LAN, where it is the only router), DeviceD the RP, DeviceB a
last-hop router with a member. Unicast PIM (Registers, Register-Stops) is delivered to the
router owning the destination address, as arriving on its interface toward the sender.
"""

from __future__ import annotations

import pytest

from daemon.pim.codec import Register, RegisterStop, decode
from daemon.pim.machine import (
    REGISTER_IF,
    REGISTER_PROBE_TIME,
    REGISTER_SUPPRESSION_TIME,
    Output,
    RegisterState,
    SendPim,
    SgChanged,
)
from tests.unit.test_pim_machine import ADDR, ET, GE2, GE3, G
from tests.unit.test_pim_sg import SgLab

S = "10.0.15.50"
PACKET = bytes.fromhex("4500001e00004000" "3f11" "0000" "0a000f32" "e1010101"
                       "138913890000" "0000" "6869")
# unicast delivery: destination -> (router, arrival interface, the sender's address there)
UNICAST = {"2.2.2.2": ("D", GE3, "10.0.12.1"), "10.0.12.1": ("A", GE3, "10.0.12.2"),
           "3.3.3.3": ("B", GE2, "10.0.23.2"), "10.0.23.2": ("D", GE2, "10.0.23.3")}


class RegLab(SgLab):
    def __init__(self) -> None:
        super().__init__()
        for name, rpf in {"A": (ET, None), "B": (GE2, "10.0.23.2"),
                          "D": (GE3, "10.0.12.1")}.items():
            self.routes[name][S] = rpf
        self.unicast: list[tuple[str, object]] = []
        self.rp_down = False

    def feed(self, name: str, outs: list[Output]) -> None:
        for o in outs:
            if isinstance(o, SendPim) and o.ifname is None:
                self.log.append((self.now, name, o))
                msg = decode(o.payload)
                self.unicast.append((name, msg))
                to, ifname, src = UNICAST[o.dst]
                if not (self.rp_down and to == "D"):
                    self.feed(to, self.r[to].packet_received(ifname, src, msg, self.now))
            else:
                super().feed(name, [o])

    def sent(self, sender: str, kind: type) -> list:
        return [m for n, m in self.unicast if n == sender and isinstance(m, kind)]


@pytest.fixture
def reg_lab() -> RegLab:
    lab = RegLab()
    lab.up()
    lab.run_until(10.0)
    lab.do("B", "local_members", G, "Eth-Trunk1", True)  # a receiver behind B
    lab.run_until(11.0)
    return lab


def first_packet(lab: RegLab) -> None:
    lab.do("A", "data_arrived", S, G, ET, True)  # the kernel's NOCACHE, source on ET
    lab.do("A", "whole_packet", PACKET)  # the kernel hands it up for the register VIF


def test_the_dr_registers_and_the_rp_joins_toward_the_source(reg_lab: RegLab) -> None:
    lab = reg_lab
    first_packet(lab)
    assert lab.sg_events("A")[0] == SgChanged(S, G, ET, frozenset({REGISTER_IF}))
    assert lab.sent("A", Register) == [Register(PACKET)]
    d = lab.r["D"].snapshot(lab.now).sources[0]
    assert (d.iif, d.oifs, d.registered_by) == (REGISTER_IF, (GE2,), "10.0.12.1")
    assert lab.sent("D", RegisterStop) == []  # not yet on the source's tree
    # D's (S,G) Join reached A: native packets go to D as well as into Registers
    a = lab.r["A"].snapshot(lab.now).sources[0]
    assert (a.joined, a.register_state) == ((GE3,), RegisterState.JOIN)
    assert lab.sg_events("A")[-1] == SgChanged(S, G, ET, frozenset({GE3, REGISTER_IF}))


def test_register_stop_once_the_source_tree_delivers(reg_lab: RegLab) -> None:
    lab = reg_lab
    first_packet(lab)
    lab.do("D", "data_arrived", S, G, GE3)  # the first native packet (WRONGVIF)
    assert lab.sg_events("D")[-1] == SgChanged(S, G, GE3, frozenset({GE2}))
    lab.do("A", "whole_packet", PACKET)  # the next Register ...
    assert lab.sent("D", RegisterStop) == [RegisterStop(G, S)]  # ... is answered with Stop
    a = lab.r["A"].snapshot(lab.now).sources[0]
    assert a.register_state is RegisterState.PRUNE
    assert lab.sg_events("A")[-1] == SgChanged(S, G, ET, frozenset({GE3}))  # no tunnel
    low = 0.5 * REGISTER_SUPPRESSION_TIME - REGISTER_PROBE_TIME
    assert a.register_stop is not None
    assert low <= a.register_stop <= 1.5 * REGISTER_SUPPRESSION_TIME - REGISTER_PROBE_TIME
    n = len(lab.sent("A", Register))
    lab.do("A", "whole_packet", PACKET)  # a packet the kernel still had queued
    assert len(lab.sent("A", Register)) == n
    assert lab.r["A"].snapshot(lab.now).dropped == {"not-registering": 1}


def test_the_null_register_probe_and_the_rp_that_is_gone(reg_lab: RegLab) -> None:
    lab = reg_lab
    first_packet(lab)
    lab.do("D", "data_arrived", S, G, GE3)
    lab.do("A", "whole_packet", PACKET)
    t0 = lab.now
    # the suppression time ends: a Null-Register, the RP says Stop again, Prune again
    lab.run_until(t0 + 1.5 * REGISTER_SUPPRESSION_TIME)
    nulls = [m for m in lab.sent("A", Register) if m.null]
    assert nulls and (nulls[0].source, nulls[0].group) == (S, G)
    assert len(lab.sent("D", RegisterStop)) == 2
    assert lab.r["A"].snapshot(lab.now).sources[0].register_state is RegisterState.PRUNE
    # the RP goes silent: after the next probe A registers again
    lab.rp_down = True
    lab.do("A", "data_seen", S, G)
    lab.run_until(lab.now + 1.5 * REGISTER_SUPPRESSION_TIME + REGISTER_PROBE_TIME + 1)
    a = lab.r["A"].snapshot(lab.now).sources[0]
    assert a.register_state is RegisterState.JOIN
    assert REGISTER_IF in a.oifs


def test_a_register_to_a_router_that_is_not_the_rp_is_stopped(reg_lab: RegLab) -> None:
    lab = reg_lab
    lab.feed("B", lab.r["B"].packet_received(GE2, "10.0.23.2", Register(PACKET), lab.now))
    assert lab.sent("B", RegisterStop) == [RegisterStop(G, S)]
    assert lab.r["B"].snapshot(lab.now).sources == ()


def test_no_receivers_the_rp_says_stop_at_once(reg_lab: RegLab) -> None:
    lab = reg_lab
    lab.do("B", "local_members", G, "Eth-Trunk1", False)
    lab.run_until(lab.now + 1)
    first_packet(lab)
    assert lab.sent("D", RegisterStop) == [RegisterStop(G, S)]
    assert lab.r["A"].snapshot(lab.now).sources[0].register_state is RegisterState.PRUNE


def test_not_the_dr_no_registers(reg_lab: RegLab) -> None:
    """On A-B's link B is DR (the higher address): a source there is B's to register."""
    lab = reg_lab
    lab.do("A", "data_arrived", "10.0.13.50", G, "GigabitEthernet0/1/1", True)
    assert lab.r["A"].dr("GigabitEthernet0/1/1") == ADDR["B", "GigabitEthernet0/1/1"]
    assert lab.sent("A", Register) == [] and lab.r["A"].snapshot(lab.now).sources == ()
