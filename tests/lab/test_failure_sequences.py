"""Failure sequences: hot backup must hold through failures in quick succession, not only
through one failure in a lab that has settled. Each test is one root cause found that way,
replayed on its own seed lab (revert delay 3 s, BFD); each failed before its fix.

Timing bounds are generous (a loaded 2-core machine); what they separate is a remaining
aggregate wait (fixed) from a second full wait or a query round (the bugs).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import netns
from lab import scenarios as sc
from lab.topology import load_topology
from tests.lab.conftest import display, kill_daemon, log_events, wait_for
from tests.lab.helpers import (
    C_PORT,
    GROUPS,
    HOLD,
    back_to_start,
    begin,
    etrunk,
    gap_ms,
    gaps,
    hold_groups,
    lacp_fast_on_c,
    start_state,
)

__all__ = ["hold_groups"]  # a fixture, used by name
NS = 1_000_000_000
ROOT = Path(__file__).resolve().parents[2]


def c_toward(lab, node: str) -> bool:
    return sc.c_distributing(lab) == [C_PORT[node]]


def bounce_c_b(lab) -> int:
    """DeviceC's port toward DeviceB leaves and comes back: its aggregate wait starts over."""
    sc.link(lab, "DeviceC", "ge0-1-3", False)
    sc.link(lab, "DeviceC", "ge0-1-3", True)
    return time.monotonic_ns()


def local_groups(lab, node: str) -> set[str]:
    out = display(lab, node, "display igmp group")
    return {g["group"] for itf in out["interfaces"] for g in itf["groups"]}


def remote_groups(lab, node: str) -> set[str]:
    return {g["group"] for g in display(lab, node, "display igmp group")["remote_backup"]}


def adopted(lab, node: str, since: float) -> list[int]:
    """The group counts of every "serving backed-up groups" line since `since` (monotonic)."""
    return [int(ev["groups"]) for ev in log_events(lab, node, since)
            if ev.get("msg") == "serving backed-up groups"]


def test_a_returning_link_does_not_take_the_role_back_during_the_aggregate_wait(
        make_lab, hold_groups, tmp_path: Path) -> None:
    # A-C is pulled while DeviceC's port toward DeviceB is still in its aggregate wait, and
    # comes back before that wait ends. DeviceB's member took over: it must keep the role
    # (the revert hold) although its trunk only collects yet. Handing it back would start a
    # second 2 s wait on DeviceA's returning port: a 3 s gap instead of the 1.7 s remainder.
    lab = make_lab("tseqhold", sc.topology(tmp_path, "hot"))
    start_state(lab, hold_groups)
    traffic = begin(lab, tmp_path, 9.0)
    try:
        t_b = bounce_c_b(lab)
        time.sleep(0.3)
        t_pull = time.monotonic_ns()
        sc.link(lab, "DeviceA", "ge0-1-2", False)
        time.sleep(1.0)
        sc.link(lab, "DeviceA", "ge0-1-2", True)
        time.sleep(0.2)
        b = etrunk(lab, "DeviceB")["members"][0]
        assert (b["state"], b["causation"]) == ("Master", "REVERT_DELAY"), b
        wait_for(lambda: c_toward(lab, "DeviceB"), 3, "C toward B")
        wait_for(lambda: c_toward(lab, "DeviceA"), 8, "the revert to A")
        traffic.finish()
    finally:
        traffic.kill()
    remaining_ms = (t_b + 2 * NS - t_pull) / 1e6
    outage = gap_ms(traffic, t_pull, t_pull + NS // 2)
    assert outage < remaining_ms + 600, f"{outage:.0f} ms, remaining wait {remaining_ms:.0f} ms"
    back_to_start(lab)


def test_a_member_master_since_its_start_keeps_the_role_when_the_peer_link_returns(
        make_lab, hold_groups, tmp_path: Path) -> None:
    # Found by the soak: A-C pulled while DeviceB was stopped, DeviceB started (its member
    # master from its first decision: DeviceA's was down), A-C back 1.3 s later. DeviceB
    # had never seen DeviceA's member as master, so it handed the role back at once and
    # DeviceC started a second aggregate wait on DeviceA's returning port. It must hold:
    # DeviceC's wait on DeviceB's port started first.
    lab = make_lab("tseqstart", sc.topology(tmp_path, "hot"))
    start_state(lab, hold_groups)
    traffic = begin(lab, tmp_path, 10.0)
    try:
        lab.stop_daemon("DeviceB")
        time.sleep(0.3)
        t_pull = time.monotonic_ns()
        sc.link(lab, "DeviceA", "ge0-1-2", False)
        time.sleep(0.5)
        lab.start_daemon("DeviceB")
        wait_for(lambda: etrunk(lab, "DeviceB")["members"][0]["state"] == "Master", 3,
                 "B's member master (A's is down)")
        time.sleep(0.3)
        sc.link(lab, "DeviceA", "ge0-1-2", True)
        time.sleep(0.2)
        b = etrunk(lab, "DeviceB")["members"][0]
        assert (b["state"], b["causation"]) == ("Master", "REVERT_DELAY"), b
        wait_for(lambda: c_toward(lab, "DeviceB"), 3, "C toward B (its wait started first)")
        t_b = time.monotonic_ns()
        # served from the holdings DeviceA sent back: every group, at once
        wait_for(lambda: local_groups(lab, "DeviceB") == GROUPS, 1, "B serving every group")
        wait_for(lambda: c_toward(lab, "DeviceA"), 8, "the revert to A")
        traffic.finish()
    finally:
        traffic.kill()
    outage = [(start, end) for start, end in gaps(traffic) if start < t_b and end > t_pull]
    assert outage and max(end for _, end in outage) < t_b + NS // 2, "not resumed through B"
    back_to_start(lab)


def test_a_standby_port_waits_only_the_remainder_of_its_aggregate_wait(
        make_lab, hold_groups, tmp_path: Path) -> None:
    # DeviceC's port toward DeviceB came up 1.5 s before A-C fails: 802.1AX started its
    # wait_while when it entered WAITING as STANDBY, so it attaches 0.5 s later, not 2 s.
    lab = make_lab("tseqrest", sc.topology(tmp_path, "hot"))
    start_state(lab, hold_groups)
    traffic = begin(lab, tmp_path, 5.0)
    try:
        bounce_c_b(lab)
        time.sleep(1.5)
        t_pull = time.monotonic_ns()
        sc.link(lab, "DeviceA", "ge0-1-2", False)
        wait_for(lambda: c_toward(lab, "DeviceB"), 3, "C toward B")
        traffic.finish()
    finally:
        traffic.kill()
    outage = gap_ms(traffic, t_pull, t_pull + NS // 2)
    assert outage < 500 + 600, f"{outage:.0f} ms for a 0.5 s remaining wait"


def test_alternating_failures_cost_at_most_the_remaining_wait(
        make_lab, hold_groups, tmp_path: Path) -> None:
    # The schedule that cost 2.0, 5.3, 2.0 and 2.0 s: A-C pulled for 2 s, 1 s later B-C for
    # 2 s, 0.5 s later again, three rounds. Each failure may cost only what is left of the
    # aggregate wait of DeviceC's port toward the router that takes over (it came back 0.5 or
    # 1 s earlier), never a full new wait, and no gap may span two failures.
    lab = make_lab("tseqalt", sc.topology(tmp_path, "hot"))
    start_state(lab, hold_groups)
    traffic = begin(lab, tmp_path, 19.0)
    pulls: list[tuple[int, int]] = []  # (pull time, when the other router's port came back)
    back = {"DeviceA": 0, "DeviceB": 0}
    try:
        for _ in range(3):
            for node, other, port, pause in (("DeviceA", "DeviceB", "ge0-1-2", 1.0),
                                             ("DeviceB", "DeviceA", "ge0-1-3", 0.5)):
                pulls.append((time.monotonic_ns(), back[other]))
                sc.link(lab, node, port, False)
                time.sleep(2.0)
                sc.link(lab, node, port, True)
                back[node] = time.monotonic_ns()
                time.sleep(pause)
        traffic.finish()
    finally:
        traffic.kill()
    for t_pull, t_back in pulls:
        remaining = max(0.0, (t_back + 2 * NS - t_pull) / 1e6)
        outage = gap_ms(traffic, t_pull, t_pull + NS // 2)
        assert outage < remaining + 400, f"{outage:.0f} ms; {remaining:.0f} ms of wait were left"
    for start, end in gaps(traffic):
        spanned = [t for t, _ in pulls if start < t < end]
        assert len(spanned) <= 1, f"a gap of {(end - start) / 1e6:.0f} ms spans two failures"
    back_to_start(lab)


def test_a_crashed_daemon_takes_its_links_down(make_lab, hold_groups, tmp_path: Path) -> None:
    # kill -9 of DeviceA's daemon, carrier up: DeviceC would keep its member toward DeviceA
    # for its 90 s partner timeout. Fail-stop: the watchdog takes DeviceA's ports down.
    lab = make_lab("tseqcrash", sc.topology(tmp_path, "hot"))
    start_state(lab, hold_groups)
    traffic = begin(lab, tmp_path, 4.0)
    try:
        t_kill = kill_daemon(lab, "DeviceA")
        wait_for(lambda: c_toward(lab, "DeviceB"), 3, "C toward B")
        traffic.finish()
    finally:
        traffic.kill()
    assert gap_ms(traffic, int(t_kill * NS)) < 1000
    ports = netns.link_states(lab.ns("DeviceA"))
    assert not any(ports[p]["admin_up"] for p in sc.A_PORTS), ports
    line = next(ev for ev in log_events(lab, "DeviceA", t_kill) if ev.get("comp") == "watchdog")
    assert line["links"] == ",".join(sorted(sc.A_PORTS))
    lab.stop_daemon("DeviceA")  # reap
    lab.start_daemon("DeviceA")  # brings its ports up again
    back_to_start(lab)
    ports = netns.link_states(lab.ns("DeviceA"))
    assert all(ports[p]["admin_up"] for p in sc.A_PORTS), ports
    lab.stop_daemon("DeviceB")  # a clean stop leaves the links up: the goodbyes did the work
    assert all(v["admin_up"] for k, v in netns.link_states(lab.ns("DeviceB")).items()
               if k.startswith("ge"))


LACP_DROP = """table netdev ihb_lacpdrop {
  chain out { type filter hook egress device "ge0-1-2" priority 0; ether type 0x8809 drop; }
}
"""


def test_an_expired_partner_returns_without_a_new_aggregate_wait(
        make_lab, hold_groups, tmp_path: Path) -> None:
    # DeviceA's LACPDUs stop reaching DeviceC (fast timeout) long enough for DeviceC's port
    # to expire, then come back. 802.1AX keeps an EXPIRED port's partner and selection
    # (sync cleared): the returning partner needs no new aggregate wait.
    lab = make_lab("tseqexp", lacp_fast_on_c(sc.topology(tmp_path, "hot")))
    start_state(lab, hold_groups)
    subprocess.run(netns.exec_argv(lab.ns("DeviceA"), ["nft", "-f", "-"]), input=LACP_DROP,
                   text=True, check=True)
    try:
        wait_for(lambda: display(lab, "DeviceC", "display eth-trunk 1")[0]["members"][0]["rx"]
                 == "EXPIRED", 5, "DeviceC's port toward DeviceA EXPIRED")
        time.sleep(0.3)
    finally:
        subprocess.run(netns.exec_argv(lab.ns("DeviceA"), ["nft", "delete", "table", "netdev",
                                                           "ihb_lacpdrop"]), check=True)
    t_back = time.monotonic()
    wait_for(lambda: c_toward(lab, "DeviceA"), 1.8, "C toward A again, without a 2 s wait")
    waits = [ev for ev in log_events(lab, "DeviceC", t_back)
             if ev.get("msg") == "port state" and ev.get("port") == C_PORT["DeviceA"]
             and ev.get("mux") == "WAITING"]
    assert waits == []
    back_to_start(lab)


def test_an_individual_partner_is_aggregated(make_lab, tmp_path: Path) -> None:
    # A partner that says Individual (Aggregation clear), as Open vSwitch does for a
    # one-link bond, is a LAG of its own: our Eth-Trunk aggregates with it alone.
    topo = tmp_path / "individual"
    topo.mkdir()
    (topo / "R1.cfg").write_text(
        "#\nsysname R1\n#\ninterface Eth-Trunk1\n ip address 10.9.0.1 255.255.255.0\n"
        " mode lacp-static\n#\ninterface GigabitEthernet0/1/1\n undo shutdown\n eth-trunk 1\n"
        "#\nreturn\n")
    (topo / "topology.yaml").write_text(
        "name: individual\nnodes:\n  R1: {kind: vrp, config: R1.cfg}\n"
        "  Peer:\n    kind: host\n    interfaces:\n      eth0: [10.9.0.2/24]\n"
        "links:\n  - [R1:GigabitEthernet0/1/1, Peer:eth0]\n")
    load_topology(topo / "topology.yaml")  # a broken file fails here, not in the lab
    lab = make_lab("tseqindiv", topo / "topology.yaml")
    peer = subprocess.Popen(netns.exec_argv(lab.ns("Peer"), [sys.executable, "-c",
                                                             INDIVIDUAL_PEER]),
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert peer.stdout is not None and peer.stdout.readline().strip() == "ready"
        wait_for(lambda: display(lab, "R1", "display eth-trunk 1")[0]["operate_status"] == "up",
                 6, "R1's Eth-Trunk1 aggregated with the Individual partner")
        member = display(lab, "R1", "display eth-trunk 1")[0]["members"][0]
        assert member["mux"] == "DISTRIBUTING"
        assert member["partner"]["port_state"][2] == "0"  # Aggregation: Individual
    finally:
        peer.send_signal(signal.SIGTERM)
        peer.wait(timeout=5)


# A partner written with scapy's LACP layer (an implementation independent of ours): it
# answers every LACPDU with an Individual actor that is in sync, collecting, distributing.
INDIVIDUAL_PEER = r"""
import signal, socket, sys
from scapy.contrib.lacp import LACP, SlowProtocol
from scapy.layers.l2 import Ether
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8809))
s.bind(("eth0", 0x8809))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
me = s.getsockname()[4]
print("ready", flush=True)
while True:
    frame = s.recv(2048)
    pkt = Ether(frame)
    if LACP not in pkt or pkt.src == ":".join(f"{b:02x}" for b in me):
        continue
    got = pkt[LACP]
    reply = (Ether(dst="01:80:c2:00:00:02", src=me, type=0x8809) / SlowProtocol() / LACP(
        actor_system_priority=32768, actor_system="02:00:00:00:99:01", actor_key=7,
        actor_port_priority=32768, actor_port_number=5,
        actor_state=0x01 | 0x08 | 0x10 | 0x20,  # active, sync, collecting, distributing
        partner_system_priority=got.actor_system_priority, partner_system=got.actor_system,
        partner_key=got.actor_key, partner_port_priority=got.actor_port_priority,
        partner_port_number=got.actor_port_number, partner_state=got.actor_state))
    s.send(bytes(reply))
"""


def test_a_member_turning_master_with_its_trunk_down_keeps_the_backup(
        make_lab, hold_groups, tmp_path: Path) -> None:
    # A-C is pulled (DeviceB serves), then B-C: DeviceA's member becomes master although its
    # trunk is down. It must not send its empty table as a batch: DeviceB, master again when
    # B-C returns, serves every group from its copy at once, not after the hosts answer.
    lab = make_lab("tseqbatch", sc.topology(tmp_path, "hot"))
    start_state(lab, hold_groups)
    sc.link(lab, "DeviceA", "ge0-1-2", False)
    wait_for(lambda: c_toward(lab, "DeviceB"), 3, "C toward B")
    sc.link(lab, "DeviceB", "ge0-1-3", False)
    wait_for(lambda: etrunk(lab, "DeviceA")["members"][0]["state"] == "Master", 3,
             "A's member master with its trunk down")
    time.sleep(0.5)
    t_restore = time.monotonic()
    sc.link(lab, "DeviceB", "ge0-1-3", True)
    wait_for(lambda: c_toward(lab, "DeviceB"), 4, "C toward B again")
    # at once (the moment B's own side distributes too), not after the hosts answer a query
    wait_for(lambda: local_groups(lab, "DeviceB") == GROUPS, 1, "B serving every group")
    assert adopted(lab, "DeviceB", t_restore) == [len(GROUPS)]
    sc.link(lab, "DeviceA", "ge0-1-2", True)
    back_to_start(lab)


RBS_PORT = ["tcp dport 1025", "tcp sport 1025"]
HELLOS_BFD_LACP = ["udp dport { 1025, 3784, 4784 }", "udp sport { 1025, 3784, 4784 }",
                   "ether type 0x8809"]


@pytest.mark.parametrize(("late", "rules"), [("rbs", RBS_PORT), ("etrunk", HELLOS_BFD_LACP)])
def test_after_a_silence_devicea_serves_every_group_at_once(
        make_lab, tmp_path: Path, late: str, rules: list[str]) -> None:
    # DeviceA is silent for 4.7 s: DeviceC moves to DeviceB after 3 s, and the Receiver joins
    # 3 more groups, which only DeviceB hears. Then DeviceA is heard again, with one part
    # of its traffic still cut for 4 s: the RBS channel (DeviceB's batch arrives after the
    # E-Trunk has settled), or the E-Trunk, BFD and LACP (both routers still master when
    # the batches cross). Either way DeviceA ends up master serving every group the hosts
    # hold, from the copies, at once; and both routers hold the same set.
    lab = make_lab(f"tseqsil{late[0]}", lacp_fast_on_c(sc.topology(tmp_path, "hot")))
    sc.wait_until(lambda: sc.converged(lab), 60, "the start state")
    time.sleep(2.2)
    first = {f"239.8.0.{i}" for i in range(1, 21)}
    later = {f"239.8.1.{i}" for i in range(1, 4)}
    holders = [hold(lab, first)]
    try:
        wait_for(lambda: local_groups(lab, "DeviceA") == first, 20, "the groups on DeviceA")
        wait_for(lambda: remote_groups(lab, "DeviceB") == first, 10, "backed up on DeviceB")
        sc.silence(lab, "DeviceA", sc.A_PORTS, True)
        t_silence = time.monotonic()
        try:
            wait_for(lambda: c_toward(lab, "DeviceB"), 4.5, "C toward B")
            holders.append(hold(lab, later))
            wait_for(lambda: local_groups(lab, "DeviceB") >= later, 1, "the new groups on B")
            time.sleep(max(0.0, t_silence + 4.7 - time.monotonic()))
            sc.drop_matching(lab, "DeviceA", sc.A_PORTS, "ihb_late", rules)
        finally:
            sc.silence(lab, "DeviceA", sc.A_PORTS, False)
        t_heal = time.monotonic()
        time.sleep(4.0)
        sc.drop_matching(lab, "DeviceA", sc.A_PORTS, "ihb_late", None)
        wait_for(lambda: c_toward(lab, "DeviceA"), 20, "back on DeviceA")
        # at once (the moment A's own side distributes too), not after the hosts answer
        wait_for(lambda: local_groups(lab, "DeviceA") == first | later, 1,
                 "A serving every group")
        assert adopted(lab, "DeviceA", t_heal)[-1] == len(first | later)
        wait_for(lambda: remote_groups(lab, "DeviceB") == first | later, 5,
                 "the same groups backed up on DeviceB")
    finally:
        for h in holders:
            h.kill()
            h.wait()


def hold(lab, groups: set[str]) -> subprocess.Popen:
    """A Receiver process holding `groups` until killed."""
    p = subprocess.Popen(netns.exec_argv(lab.ns("Receiver"), [
        sys.executable, "-c", HOLD, *sorted(groups)]), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "joined"
    return p
