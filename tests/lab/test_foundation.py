"""Foundation: bring-up, addresses, loopback reachability with and without the A-B link,
and a tear-down that leaves nothing behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from daemon.cli.protocol import request
from lab.labctl import main as labctl
from lab.supervisor import Lab, proc_start_ticks
from lab.topology import load_topology
from tests.lab.conftest import in_ns, netns_names, ping, unique

SEED_ADDRESSES = {
    "DeviceA": {"GigabitEthernet0/1/1": "10.0.13.1/24", "GigabitEthernet0/1/3": "10.0.12.1/24",
                "Loopback0": "1.1.1.1/32", "Eth-Trunk1": "10.0.15.1/24"},
    "DeviceB": {"GigabitEthernet0/1/1": "10.0.13.3/24", "GigabitEthernet0/1/2": "10.0.23.3/24",
                "Loopback0": "3.3.3.3/32", "Eth-Trunk1": "10.0.35.3/24"},
    "DeviceC": {"Loopback0": "5.5.5.5/32"},
    "DeviceD": {"GigabitEthernet0/1/1": "10.0.5.2/24", "GigabitEthernet0/1/2": "10.0.23.2/24",
                "GigabitEthernet0/1/3": "10.0.12.2/24", "Loopback0": "2.2.2.2/32"},
}


def brief(lab: Lab, node: str) -> dict[str, dict]:
    rows = request(lab.control_path(node), "display interface brief", as_json=True)
    return {r["name"]: r for r in rows}


def test_bring_up_reachability_and_link_pull(make_lab) -> None:
    lab = make_lab("tfound")
    for node, addrs in SEED_ADDRESSES.items():
        rows = brief(lab, node)
        for ifname, addr in addrs.items():
            assert rows[ifname]["address"] == addr, (node, ifname)
        for ifname, row in rows.items():
            if ifname.startswith("GigabitEthernet") and ifname != "GigabitEthernet0/1/4":
                assert row["phy"] == "up", (node, ifname, row)
    # the kernel holds the same addresses the daemon shows
    out = in_ns(lab, "DeviceA", "ip", "-4", "-o", "addr", "show", "dev", "ge0-1-1").stdout
    assert "10.0.13.1/24" in out

    assert ping(lab, "DeviceA", "3.3.3.3", src="1.1.1.1")
    assert ping(lab, "DeviceB", "1.1.1.1", src="3.3.3.3")
    assert ping(lab, "Source", "10.0.5.2")
    assert ping(lab, "Source", "2.2.2.2")

    # pull A-B at DeviceA's end: loopbacks still reach each other through DeviceD
    assert labctl(["link", "down", "DeviceA", "GE0/1/1", "--name", lab.name]) == 0
    rows = brief(lab, "DeviceB")
    assert rows["GigabitEthernet0/1/1"]["phy"] == "down"
    assert brief(lab, "DeviceA")["GigabitEthernet0/1/1"]["phy"] == "*down"
    assert ping(lab, "DeviceA", "3.3.3.3", src="1.1.1.1")
    assert ping(lab, "DeviceB", "1.1.1.1", src="3.3.3.3")
    route = in_ns(lab, "DeviceA", "ip", "-4", "route", "get", "3.3.3.3", "from", "1.1.1.1").stdout
    assert "10.0.12.2" in route  # through DeviceD

    # restore: the daemon re-installs its routes and the direct path is back
    assert labctl(["link", "up", "DeviceA", "GigabitEthernet0/1/1", "--name", lab.name]) == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        route = in_ns(lab, "DeviceA", "ip", "-4", "route", "get", "3.3.3.3").stdout
        if "10.0.13.3" in route:
            break
        time.sleep(0.05)
    assert "10.0.13.3" in route
    assert ping(lab, "DeviceA", "3.3.3.3", src="1.1.1.1")


def test_cli_errors_and_current_configuration(make_lab) -> None:
    lab = make_lab("tcli")
    text = request(lab.control_path("DeviceA"), "display current-configuration")
    assert "sysname DeviceA" in text and "peer-address 3.3.3.3 source-address 1.1.1.1" in text
    assert request(lab.control_path("DeviceA"), "dis cur").startswith(text[:40])
    from daemon.cli.protocol import ControlError

    with pytest.raises(ControlError, match="Unrecognized command"):
        request(lab.control_path("DeviceA"), "display nonsense")
    # a garbage client does not hurt the daemon
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.connect(lab.control_path("DeviceA"))
        s.sendall(b"\x00\xff not json\n")
        assert b'"ok":false' in s.recv(4096)
    assert "DeviceA" in request(lab.control_path("DeviceA"), "display version")


def _lab_leftovers(name: str, pids: list[int]) -> list[str]:
    left = [ns for ns in netns_names() if ns.startswith(name + "-")]
    left += [f"pid {p}" for p in pids if proc_start_ticks(p) is not None]
    if Lab(name).dir.exists():
        left.append(str(Lab(name).dir))
    return left


def test_down_leaves_nothing_and_up_down_are_idempotent(make_lab) -> None:
    lab = make_lab("tdown")
    pids = [p.pid for p in lab.state().procs]
    assert len(pids) == 4
    lab.up(load_topology(lab.state().topology))  # up over a running lab of the same name
    assert not any(proc_start_ticks(p) is not None for p in pids)  # the old daemons are gone
    pids = [p.pid for p in lab.state().procs]
    t0 = time.monotonic()
    lab.down()
    assert time.monotonic() - t0 < 10
    assert _lab_leftovers(lab.name, pids) == []
    lab.down()  # down twice is fine
    assert _lab_leftovers(lab.name, pids) == []


def test_down_cleans_a_half_built_lab() -> None:
    name = unique("thalf")
    proc = subprocess.Popen([sys.executable, "-m", "lab.labctl", "up", "--name", name],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # kill it once some namespaces exist
            if len([n for n in netns_names() if n.startswith(name + "-")]) >= 2:
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert Lab(name).dir.exists()
    finally:
        pids = [p.pid for p in Lab(name).state().procs] if Lab(name).exists() else []
        assert labctl(["down", "--name", name]) == 0
    assert _lab_leftovers(name, pids) == []
