"""E-Trunk between DeviceA and DeviceB with BFD: election, member roles, switchover, revert."""

from __future__ import annotations

import time
from pathlib import Path

from lab import netns
from lab.labctl import main as labctl
from tests.lab.conftest import (
    display,
    etrunk_lines,
    first_event,
    kill_daemon,
    variant,
    wait_for,
)

A_PORTS = ("ge0-1-1", "ge0-1-2", "ge0-1-3")


def etrunk(lab, node: str) -> dict:
    return display(lab, node, "display e-trunk 1")[0]


def member_state(lab, node: str) -> str:
    return etrunk(lab, node)["members"][0]["state"]


def c_distributing(lab) -> list[str]:
    trunk = display(lab, "DeviceC", "display eth-trunk 1")[0]
    return [m["name"] for m in trunk["members"] if m["mux"] == "DISTRIBUTING"]


def converged(lab) -> bool:
    return (etrunk(lab, "DeviceA")["state"] == "Master"
            and member_state(lab, "DeviceA") == "Master"
            and member_state(lab, "DeviceB") == "Backup"
            and c_distributing(lab) == ["GigabitEthernet0/1/2"])


def test_election_pull_and_revert(make_lab, tmp_path: Path) -> None:
    lab = make_lab("tetrev", variant(tmp_path, DeviceA=etrunk_lines("timer revert delay 2"),
                                     DeviceB=etrunk_lines("timer revert delay 2")))
    wait_for(lambda: converged(lab), 15, "A master, B backup, C toward A")
    a, b = etrunk(lab, "DeviceA"), etrunk(lab, "DeviceB")
    assert (a["state"], a["causation"]) == ("Master", "PRI")
    assert (b["state"], b["causation"]) == ("Backup", "PRI")
    assert a["bfd_state"] == b["bfd_state"] == "Up"
    bfd = display(lab, "DeviceA", "display bfd session all")["sessions"]
    assert [s["state"] for s in bfd] == ["Up"]

    assert labctl(["link", "down", "DeviceA", "GE0/1/2", "--name", lab.name]) == 0
    wait_for(lambda: member_state(lab, "DeviceB") == "Master", 3, "B's member master")
    wait_for(lambda: c_distributing(lab) == ["GigabitEthernet0/1/3"], 3, "C toward B")
    assert etrunk(lab, "DeviceA")["state"] == "Master"  # only the member role moved
    assert member_state(lab, "DeviceA") == "Backup"

    t0 = time.monotonic()
    assert labctl(["link", "up", "DeviceA", "GE0/1/2", "--name", lab.name]) == 0
    wait_for(lambda: c_distributing(lab) == ["GigabitEthernet0/1/2"], 15, "revert to A")
    assert time.monotonic() - t0 >= 1.5  # not before the revert delay
    wait_for(lambda: converged(lab), 5, "back to the start state")


def test_revert_disable_keeps_b(make_lab, tmp_path: Path) -> None:
    lab = make_lab("tetnorev", variant(tmp_path, DeviceA=etrunk_lines("revert disable"),
                                       DeviceB=etrunk_lines("revert disable")))
    wait_for(lambda: converged(lab), 15, "start state")
    labctl(["link", "down", "DeviceA", "GE0/1/2", "--name", lab.name])
    wait_for(lambda: c_distributing(lab) == ["GigabitEthernet0/1/3"], 3, "C toward B")
    labctl(["link", "up", "DeviceA", "GE0/1/2", "--name", lab.name])
    time.sleep(5)
    assert member_state(lab, "DeviceB") == "Master"
    assert member_state(lab, "DeviceA") == "Backup"
    assert c_distributing(lab) == ["GigabitEthernet0/1/3"]


def test_device_a_dies_bfd_moves_the_role(make_lab) -> None:
    lab = make_lab("tetkill")
    wait_for(lambda: converged(lab), 15, "start state")
    time.sleep(0.5)
    t0 = kill_daemon(lab, "DeviceA")
    for ifname in A_PORTS:
        netns.set_link(lab.ns("DeviceA"), ifname, False)
    wait_for(lambda: c_distributing(lab) == ["GigabitEthernet0/1/3"], 3, "C toward B")
    bfd_down = wait_for(lambda: first_event(lab, "DeviceB", t0, msg="bfd session state",
                                            new="DOWN"), 3, "BFD down on B")
    master = first_event(lab, "DeviceB", t0, msg="member role", role="master")
    assert master is not None
    assert float(master["mono"]) - float(bfd_down["mono"]) < 0.1
    assert etrunk(lab, "DeviceB")["state"] == "Master"
    assert etrunk(lab, "DeviceB")["causation"] == "BFD_DOWN"


def test_wrong_key_no_adjacency(make_lab, tmp_path: Path) -> None:
    def other_key(text: str) -> str:
        start = text.index(" security-key cipher")
        end = text.index("\n", start)
        return text[:start] + " security-key cipher Another_key1" + text[end:]

    lab = make_lab("tetkey", variant(tmp_path, DeviceB=other_key))
    for node in ("DeviceA", "DeviceB"):
        wait_for(lambda n=node: etrunk(lab, n)["rec_drop_by_reason"].get("bad-digest", 0) >= 2,
                 10, f"bad-digest drops on {node}")
    assert etrunk(lab, "DeviceA")["peer"] is None and etrunk(lab, "DeviceB")["peer"] is None


def test_without_bfd_takeover_waits_for_the_fail_time(make_lab, tmp_path: Path) -> None:
    def no_bfd(text: str) -> str:
        lines = [x for x in text.splitlines() if "track bfd-session" not in x]
        return etrunk_lines("timer hello 5", "timer hold-on-failure multiplier 4")(
            "\n".join(lines) + "\n")

    lab = make_lab("tetnobfd", variant(tmp_path, DeviceA=no_bfd, DeviceB=no_bfd))
    wait_for(lambda: converged(lab), 15, "start state")
    time.sleep(0.3)
    t0 = kill_daemon(lab, "DeviceA")  # silent: carrier stays, no goodbye
    ev = wait_for(lambda: first_event(lab, "DeviceB", t0, msg="e-trunk state", new="MASTER"),
                  10, "B master")
    waited = float(ev["mono"]) - t0
    assert ev["cause"] == "PEER_TIMEOUT"
    # fail time 0.5 s x 4 = 2 s after A's last hello (sent at most 0.5 s before the kill)
    assert 1.4 <= waited <= 4.0, waited
