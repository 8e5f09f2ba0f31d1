"""Failure scenarios on the seed lab, shared by the failover tests and the benchmark.

Each scenario is an action on a running lab (pull a cable, kill a daemon, silence a device)
and its recovery. Timing is measured with traffic (lab/traffic.py), not inferred from state:
`Run` starts a receiver in the Receiver namespace and a paced sender in the Source
namespace, the scenario acts in the middle, and the receiver's report says how long the
Receiver went without each group.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from daemon.cli.protocol import ControlError, request
from daemon.config.ifnames import from_linux
from daemon.log import parse_line
from lab import netns
from lab.ovs import OvsError
from lab.supervisor import Lab
from lab.topology import DEFAULT_TOPOLOGY, materialize

ROOT = Path(__file__).resolve().parents[1]
A_PORTS = ("ge0-1-1", "ge0-1-2", "ge0-1-3")
GROUPS = tuple(f"239.7.0.{i}" for i in range(1, 5))


# ----- configurations ------------------------------------------------------------------

def _etrunk_lines(*lines: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        return text.replace("e-trunk 1\n", "e-trunk 1\n" + "".join(f" {x}\n" for x in lines), 1)
    return edit


def _no_igmp_backup(text: str) -> str:
    return text.replace(" service-type igmp\n", "")


def _no_bfd(text: str) -> str:
    return "".join(line + "\n" for line in text.splitlines()
                   if "track bfd-session" not in line)


CONFIGS: dict[str, tuple[str, Callable[[str], str] | None]] = {
    "hot": ("IGMP hot backup + BFD (the seed, with roadmap step 4)", None),
    "no-backup": ("RBP without service-type igmp: DeviceB relearns from fresh reports",
                  _no_igmp_backup),
    "no-bfd": ("hello timeout only (no e-trunk track bfd-session)", _no_bfd),
}


def topology(tmp: Path, config: str, revert_delay: int = 3, revert: bool = True,
             base: Path = DEFAULT_TOPOLOGY) -> Path:
    """The topology `base` (the seed by default, or a variant under lab/topologies) with
    `config` applied to DeviceA/DeviceB and a short revert delay (so a restore's revert is
    measured in seconds, not the default 120 s). Keep it above the LACP aggregate wait
    (2 s): a member handed back sooner than that after its link returned still waits out
    the standard's 2 s before it may aggregate."""
    variant = base.parent.name
    out = tmp / f"topology-{variant}-{config}-{revert_delay}-{int(revert)}"
    path = materialize(base, out)
    extra = [f"timer revert delay {revert_delay}"] + ([] if revert else ["revert disable"])
    edit = CONFIGS[config][1]
    for dev in ("DeviceA", "DeviceB"):
        cfg = out / f"{dev}.cfg"
        text = _etrunk_lines(*extra)(cfg.read_text())
        cfg.write_text(edit(text) if edit else text)
    return path


# ----- state --------------------------------------------------------------------------

def show(lab: Lab, node: str, cmd: str):
    return request(lab.control_path(node), cmd, as_json=True)


def c_distributing(lab: Lab) -> list[str]:
    """DeviceC's members that carry traffic, by VRP name: distributing on the project's
    DeviceC, enabled in the bond on Open vSwitch (whose ports are named ge0-1-x)."""
    if lab.state().kinds.get("DeviceC") == "ovs":
        return [from_linux(m) for m in lab.ovs("DeviceC").enabled_members()]
    trunk = show(lab, "DeviceC", "display eth-trunk 1")[0]
    return [m["name"] for m in trunk["members"] if m["mux"] == "DISTRIBUTING"]


def converged(lab: Lab) -> bool:
    """The start state: DeviceA master of E-Trunk and member, DeviceC toward it, BFD up (when
    configured), RBS connected, DeviceA querying."""
    try:
        a = show(lab, "DeviceA", "display e-trunk 1")[0]
        b = show(lab, "DeviceB", "display e-trunk 1")[0]
        rbs = show(lab, "DeviceB", "display remote-backup-service")[0]
        igmp = show(lab, "DeviceA", "display igmp interface")[0]
        dist = c_distributing(lab)
    except (ControlError, OvsError, OSError, KeyError, IndexError):
        return False
    bfd_ok = a["bfd_session"] is None or a["bfd_state"] == "Up"
    return (a["state"] == "Master" and a["members"][0]["state"] == "Master"
            and b["members"][0]["state"] == "Backup" and bfd_ok
            and rbs["tcp_state"] == "connected" and igmp["state"] == "up"
            and dist == ["GigabitEthernet0/1/2"])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def stuck_state(lab: Lab, groups: set[str]) -> list[str]:
    """What should not be there in the start state: anything reported is a stuck entry."""
    problems = []
    a_groups = {g["group"] for itf in show(lab, "DeviceA", "display igmp group")["interfaces"]
                for g in itf["groups"]}
    if a_groups != groups:
        problems.append(f"DeviceA IGMP groups {sorted(a_groups)} != {sorted(groups)}")
    b_local = {g["group"] for itf in show(lab, "DeviceB", "display igmp group")["interfaces"]
               for g in itf["groups"]}
    if b_local:
        problems.append(f"DeviceB (backup) serves groups {sorted(b_local)}")
    b_remote = {g["group"] for g in show(lab, "DeviceB", "display igmp group")["remote_backup"]}
    if b_remote != groups:
        problems.append(f"DeviceB backed-up groups {sorted(b_remote)} != {sorted(groups)}")
    for node in ("DeviceA", "DeviceB"):
        for row in show(lab, node, "display multicast routing-table"):
            if row["group"] in groups and row["downstream_interfaces"] != ["Eth-Trunk1"]:
                problems.append(f"{node} MFC {row['group']} -> {row['downstream_interfaces']}")
    return problems


# ----- traffic ------------------------------------------------------------------------

@dataclass
class Traffic:
    """A receiver holding `groups` and a paced sender, around one scenario."""

    lab: Lab
    seconds: float
    rate: int = 1000
    groups: tuple[str, ...] = GROUPS
    dump: str | None = None  # write every arrival here (the benchmark's timelines)
    recv: subprocess.Popen | None = None
    send: subprocess.Popen | None = None
    start_ns: int = 0

    def start_receiver(self) -> None:
        # no idle stop: an outage longer than any idle limit must be measured, not end the
        # run; finish() stops the receiver once the sender is done
        argv = [sys.executable, "-m", "lab.traffic", "recv", "--ifname", "eth0",
                "--duration", str(self.seconds + 60)]
        if self.dump:
            argv += ["--dump", self.dump]
        argv += [a for g in self.groups for a in ("--group", g)]
        self.recv = subprocess.Popen(netns.exec_argv(self.lab.ns("Receiver"), argv),
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.recv.stdout is not None
        self.recv.stdout.readline()  # "ready": the sockets joined

    def start_sender(self) -> None:
        argv = [sys.executable, "-m", "lab.traffic", "send", *self.groups, "--rate",
                str(self.rate), "--duration", str(self.seconds)]
        self.start_ns = time.monotonic_ns()
        self.send = subprocess.Popen(netns.exec_argv(self.lab.ns("Source"), argv),
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def finish(self) -> dict:
        assert self.send is not None and self.recv is not None
        sent = json.loads(self.send.communicate(timeout=self.seconds + 60)[0].splitlines()[-1])
        time.sleep(0.3)  # the last packets in flight
        self.recv.send_signal(signal.SIGTERM)
        report = json.loads(self.recv.communicate(timeout=60)[0].splitlines()[-1])
        streams = {s["dst"]: s for s in report["streams"]}
        per_group = {}
        for i, g in enumerate(self.groups):
            s = streams.get(g, {})
            n = sent["sent"][str(i)]
            per_group[g] = {"sent": n, "received": s.get("received", 0),
                            "lost": n - s.get("received", 0),
                            "duplicates": s.get("duplicates", 0),
                            "reordered": s.get("reordered", 0),
                            "longest_gap_ms": s.get("longest_gap_ms", float(self.seconds * 1e3)),
                            "gap_end_ns": s.get("longest_gap_at_ns"),
                            "last_seq": s.get("last_seq")}
        return per_group

    def kill(self) -> None:
        for p in (self.send, self.recv):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


# ----- actions ------------------------------------------------------------------------

def link(lab: Lab, node: str, ifname: str, up: bool) -> None:
    netns.set_link(lab.ns(node), ifname, up)


def kill_a_and_links(lab: Lab) -> None:
    """DeviceA dies: its daemon SIGKILLed and all its links down at once (one netlink
    socket opened beforehand, so the three links go down within a millisecond)."""
    with netns.ipr(lab.ns("DeviceA")) as ipr:
        indexes = [ipr.link_lookup(ifname=n)[0] for n in A_PORTS]
        os.kill(lab.daemon("DeviceA").pid, signal.SIGKILL)
        for idx in indexes:
            ipr.link("set", index=idx, state="down")
    lab.stop_daemon("DeviceA")  # reap


def revive_a(lab: Lab) -> None:
    for n in A_PORTS:
        link(lab, "DeviceA", n, True)
    lab.start_daemon("DeviceA")


SILENCE_TABLE = "ihb_silence"


def silence(lab: Lab, node: str, ports: tuple[str, ...], on: bool) -> None:
    """Drop everything in and out of `ports` (netdev ingress and egress hooks: IP, ARP and
    the daemon's own LACPDUs alike) while carrier stays up: a silent failure."""
    drop_matching(lab, node, ports, SILENCE_TABLE, [""] if on else None)


def drop_matching(lab: Lab, node: str, ports: tuple[str, ...], table: str,
                  rules: list[str] | None) -> None:
    """Drop what `rules` match (nft statements without the verdict, such as
    "tcp dport 1025"; "" matches everything) in and out of `ports`, in table `table`;
    `None` removes the table. A partial silence: one protocol cut off, the others pass."""
    if rules is None:
        script = f"delete table netdev {table}\n"
    else:
        body = "".join(f"    {r + ' ' if r else ''}drop;\n" for r in rules)
        chains = "".join(
            f"  chain in_{i} {{\n    type filter hook ingress device \"{p}\" priority 0;\n"
            f"{body}  }}\n"
            f"  chain out_{i} {{\n    type filter hook egress device \"{p}\" priority 0;\n"
            f"{body}  }}\n" for i, p in enumerate(ports))
        script = f"table netdev {table} {{\n{chains}}}\n"
    subprocess.run(netns.exec_argv(lab.ns(node), ["nft", "-f", "-"]), input=script, text=True,
                   check=True, capture_output=True)


def flap(lab: Lab, times: int, rng: random.Random) -> None:
    """The A-C link down and up `times` times at random intervals of 0.2-2 s."""
    for _ in range(times):
        link(lab, "DeviceA", "ge0-1-2", False)
        time.sleep(rng.uniform(0.2, 2.0))
        link(lab, "DeviceA", "ge0-1-2", True)
        time.sleep(rng.uniform(0.2, 2.0))


@dataclass
class Scenario:
    name: str
    title: str
    act: Callable[[Lab], None]
    recover: Callable[[Lab], None]
    expect_switch: bool  # the Receiver should end up fed by DeviceB
    measure_recovery: bool = False  # a second event (restore/revert) inside the run
    run_seconds: float = 4.0
    events: list[str] = field(default_factory=list)


SCENARIOS: dict[str, Scenario] = {
    "pull-ac": Scenario("pull-ac", "pull DeviceA-DeviceC, restore (revert after 3 s)",
                        lambda lab: link(lab, "DeviceA", "ge0-1-2", False),
                        lambda lab: link(lab, "DeviceA", "ge0-1-2", True), True,
                        measure_recovery=True, run_seconds=7.0),
    "a-dies": Scenario("a-dies", "DeviceA dies (SIGKILL + all links down), comes back",
                       kill_a_and_links, revive_a, True, measure_recovery=True,
                       run_seconds=9.0),
    "a-crashes": Scenario("a-crashes", "DeviceA's daemon is killed (kill -9), links left up: "
                          "fail-stop takes them down", lambda lab: lab.stop_daemon(
                              "DeviceA", kill=True),
                          lambda lab: lab.start_daemon("DeviceA"), True),
    "a-stops": Scenario("a-stops", "DeviceA's daemon stops cleanly (goodbye)",
                        lambda lab: lab.stop_daemon("DeviceA"),
                        lambda lab: lab.start_daemon("DeviceA"), True),
    "pull-ab": Scenario("pull-ab", "pull DeviceA-DeviceB (nothing should fail over)",
                        lambda lab: link(lab, "DeviceA", "ge0-1-1", False),
                        lambda lab: link(lab, "DeviceA", "ge0-1-1", True), False),
    "silent-a": Scenario("silent-a", "DeviceA silent on all links, carrier up (nft drop)",
                         lambda lab: silence(lab, "DeviceA", A_PORTS, True),
                         lambda lab: silence(lab, "DeviceA", A_PORTS, False), True,
                         run_seconds=8.0),
    "b-dies": Scenario("b-dies", "DeviceB dies while backup, comes back (resync)",
                       lambda lab: lab.stop_daemon("DeviceB", kill=True),
                       lambda lab: lab.start_daemon("DeviceB"), False,
                       measure_recovery=True),
}


def control_events(lab: Lab, since_mono: float) -> list[dict[str, str]]:
    """The control events of a run, from the daemons' logs (time = their `mono=` field)."""
    wanted = {"bfd session state", "e-trunk state", "member role", "trunk forwarding",
              "serving backed-up groups", "mfc entry"}
    out = []
    for node in ("DeviceA", "DeviceB", "DeviceC"):
        path = lab.log_path(node)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                ev = parse_line(line)
                if ev.get("msg") in wanted and float(ev.get("mono", 0)) >= since_mono:
                    ev["node"] = node
                    out.append(ev)
    out.sort(key=lambda e: float(e["mono"]))
    return out
