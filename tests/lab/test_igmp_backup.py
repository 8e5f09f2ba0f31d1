"""IGMP on Eth-Trunk1 and IGMP hot backup over RBS: real reports from the Linux host stack,
entries copied to DeviceB, served by DeviceB after a switchover."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

from lab import scenarios as sc
from lab.labctl import main as labctl
from tests.lab.conftest import display, etrunk_lines, in_ns, log_events, variant, wait_for

ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python")

JOINER = """
import socket, struct, sys, time
groups = [f"239.2.{i // 250}.{i % 250 + 1}" for i in range(int(sys.argv[1]))]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
idx = socket.if_nametoindex("eth0")
for g in groups:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4si", socket.inet_aton(g), b"\\0" * 4, idx))
print("joined", flush=True)
sys.stdin.read()  # hold the memberships until told to leave (stdin closed)
"""


def groups(n: int) -> set[str]:
    return {f"239.2.{i // 250}.{i % 250 + 1}" for i in range(n)}


class Joiner:
    """A Receiver process holding n group memberships on an ordinary socket."""

    def __init__(self, lab, n: int) -> None:
        self.proc = subprocess.Popen(["ip", "netns", "exec", lab.ns("Receiver"), PY, "-c",
                                      JOINER, str(n)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "joined"

    def leave(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def local(lab, node: str) -> set[str]:
    out = display(lab, node, "display igmp group")
    return {g["group"] for itf in out["interfaces"] for g in itf["groups"]}


def remote(lab, node: str) -> set[str]:
    out = display(lab, node, "display igmp group")
    return {g["group"] for g in out["remote_backup"]}


def reports(lab, node: str) -> int:
    counters = display(lab, node, "display igmp interface")[0]["counters"]
    return sum(counters[f"v{v}_reports_received"] for v in (1, 2, 3))


def test_groups_sync_leave_restart_and_switchover(make_lab) -> None:
    lab = make_lab("tigmp")
    sc.wait_until(lambda: sc.converged(lab), 30, "the start state")
    for n in (1, 50, 1000):
        joiner = Joiner(lab, n)
        want = groups(n)
        wait_for(lambda w=want: local(lab, "DeviceA") >= w, 20, f"{n} groups on DeviceA")
        wait_for(lambda w=want: remote(lab, "DeviceB") == w, 20, f"{n} groups backed up on B")
        assert local(lab, "DeviceB") == set()  # held, not served, while backup
        if n < 1000:
            joiner.leave()
            wait_for(lambda: local(lab, "DeviceA") == set(), 10, "leave on DeviceA")
            wait_for(lambda: remote(lab, "DeviceB") == set(), 10, "leave on DeviceB")

    # DeviceB restarts: the batch after the reconnect restores everything
    assert labctl(["daemon", "restart", "DeviceB", "--name", lab.name]) == 0
    wait_for(lambda: remote(lab, "DeviceB") == groups(1000), 30, "batch restores 1000 groups")

    # pull A-C: DeviceB serves every group from its copy at once (no query round may hide a
    # lost entry: the hosts answer DeviceB's query only within its 10 s max response time)
    t_pull = time.monotonic()
    assert labctl(["link", "down", "DeviceA", "GE0/1/2", "--name", lab.name]) == 0
    # the switchover: DeviceB's member master and its Eth-Trunk up (after whatever is left of
    # the aggregate wait of its port, which the restart above made new)
    wait_for(lambda: member_master(lab, "DeviceB") and trunk_up(lab, "DeviceB"), 5,
             "DeviceB's member master and its trunk up")
    try:  # within 1 s of the switchover
        wait_for(lambda: local(lab, "DeviceB") == groups(1000), 1.0, "B serves the 1000 groups")
    except AssertionError:
        got = local(lab, "DeviceB")
        raise AssertionError(f"B serves {len(got)} groups, missing {sorted(groups(1000) - got)[:5]}"
                             f", extra {sorted(got - groups(1000))[:5]}; member "
                             f"{display(lab, 'DeviceB', 'display e-trunk 1')[0]['members']}"
                             ) from None
    served = [int(ev["groups"]) for ev in log_events(lab, "DeviceB", t_pull)
              if ev.get("msg") == "serving backed-up groups"]
    assert served == [1000]
    before = reports(lab, "DeviceB")
    wait_for(lambda: reports(lab, "DeviceB") > before, 15, "the Receiver answers B's query")
    assert local(lab, "DeviceB") == groups(1000)  # nothing lost
    joiner.leave()


def member_master(lab, node: str) -> bool:
    return display(lab, node, "display e-trunk 1")[0]["members"][0]["state"] == "Master"


def trunk_up(lab, node: str) -> bool:
    return display(lab, node, "display eth-trunk 1")[0]["operate_status"] == "up"


def test_rbs_rejects_other_addresses_and_reports_backup_id_mismatch(make_lab,
                                                                   tmp_path: Path) -> None:
    def backup_id_11(text: str) -> str:
        return text.replace("backup-id 10 remote-backup-service", "backup-id 11 "
                            "remote-backup-service")

    lab = make_lab("trbsrej", variant(tmp_path, DeviceB=backup_id_11))
    wait_for(lambda: display(lab, "DeviceB", "display remote-backup-service")[0]["tcp_state"]
             == "connected", 15, "RBS connected")
    # DeviceB (3.3.3.3, the higher address) listens; DeviceD is not its peer
    probe = ("import socket\n"
             "s = socket.create_connection(('3.3.3.3', 1025), timeout=5)\n"
             "print(repr(s.recv(100)))\n")
    out = in_ns(lab, "DeviceD", PY, "-c", probe, check=True).stdout.strip()
    assert out == "b''"  # accepted by the kernel, closed at once by the daemon
    rbs = display(lab, "DeviceB", "display remote-backup-service")[0]
    assert rbs["tcp_state"] == "connected"  # the real peer's session is untouched
    assert json.dumps(rbs).count("rejected-peer") >= 1
    prof = display(lab, "DeviceA", "display remote-backup-profile profile1")[0]
    assert "mismatch" in json.dumps(prof).lower()
    assert socket is not None


def test_revert_hands_the_groups_back_to_devicea(make_lab, tmp_path: Path) -> None:
    lab = make_lab("tigmprev", variant(tmp_path, DeviceA=etrunk_lines("timer revert delay 1"),
                                       DeviceB=etrunk_lines("timer revert delay 1")))
    # the hosts' unsolicited reports are lost until DeviceC forwards toward DeviceA
    sc.wait_until(lambda: sc.converged(lab), 30, "the start state")
    joiner = Joiner(lab, 50)
    wait_for(lambda: remote(lab, "DeviceB") == groups(50), 20, "50 groups backed up on B")
    labctl(["link", "down", "DeviceA", "GE0/1/2", "--name", lab.name])
    wait_for(lambda: local(lab, "DeviceB") == groups(50), 10, "B serves them")
    wait_for(lambda: remote(lab, "DeviceA") == groups(50), 10, "A now holds B's copy")
    labctl(["link", "up", "DeviceA", "GE0/1/2", "--name", lab.name])
    wait_for(lambda: local(lab, "DeviceA") == groups(50), 15, "A serves them again")
    wait_for(lambda: remote(lab, "DeviceB") == groups(50), 10, "B holds A's copy again")
    joiner.leave()
