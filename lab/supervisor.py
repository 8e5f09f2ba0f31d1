"""Lab life cycle: build namespaces and veths, start one daemon per VRP node, tear it all down.

Everything the lab creates is written to its state file *before* it is created, so `down`
after a crash or a half-built `up` removes exactly what exists and nothing else: processes
are signalled by recorded pid only after their start time matches the record (a recycled
pid is never touched), namespaces by recorded name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from daemon.cli.protocol import ControlError, request
from daemon.kernel.links import Route
from lab import frr as frrmod
from lab import netns
from lab.frr import FrrError, FrrNode
from lab.ovs import OvsError, OvsNode, missing_binaries
from lab.routes import compute_routes
from lab.topology import Topology

STATE_ROOT = Path(os.environ.get("IHB_STATE_ROOT", "/run/ihb-lab"))
DEFAULT_NAME = "ihb"
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 3.0
FIRST_INDEX = 100

Progress = Callable[[str], None]


class LabError(Exception):
    """Bring-up or tear-down failed; the message says where and what to do."""


def _quiet(_: str) -> None:
    pass


def proc_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] == "Z":
        return None
    return int(fields[19])


@dataclass
class ProcRecord:
    """A process the lab started; `start` identifies it beyond the pid."""

    node: str
    pid: int
    start: int
    argv: list[str]
    log: str
    control: str | None = None

    def alive(self) -> bool:
        return proc_start_ticks(self.pid) == self.start


@dataclass
class LabState:
    name: str
    topology: str
    created: float = field(default_factory=time.time)
    namespaces: list[str] = field(default_factory=list)
    procs: list[ProcRecord] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # node -> topology kind

    @staticmethod
    def load(path: Path) -> LabState:
        data = json.loads(path.read_text())
        procs = [ProcRecord(**p) for p in data.pop("procs", [])]
        return LabState(**data, procs=procs)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(path)


class Lab:
    """One named lab: its namespaces are `<name>-<node>`, its state `STATE_ROOT/<name>/`."""

    def __init__(self, name: str = DEFAULT_NAME) -> None:
        if not name or len(name) > 24 or not name.replace("-", "").isalnum():
            raise LabError(f"lab name {name!r}: use 1-24 letters, digits or '-'")
        self.name = name
        self.dir = STATE_ROOT / name
        self.state_file = self.dir / "state.json"

    def ns(self, node: str) -> str:
        return f"{self.name}-{node}"

    def control_path(self, node: str) -> str:
        return str(self.dir / f"{node}.sock")

    def log_path(self, node: str) -> str:
        return str(self.dir / "logs" / f"{node}.log")

    def ovs(self, node: str) -> OvsNode:
        """The private Open vSwitch of an `ovs` node (its files under the lab's directory)."""
        return OvsNode(self.dir / node)

    def frr(self, node: str) -> FrrNode:
        """The private FRR of an `frr` node (sockets and pid files under the lab's directory)."""
        return FrrNode(self.dir / node)

    def exists(self) -> bool:
        return self.dir.exists()

    def state(self) -> LabState:
        try:
            return LabState.load(self.state_file)
        except FileNotFoundError as exc:
            raise LabError(f"lab {self.name!r} is not up (no {self.state_file})") from exc
        except (ValueError, TypeError) as exc:
            raise LabError(f"{self.state_file}: unreadable state ({exc})") from exc

    # ----- up ---------------------------------------------------------------------------

    def up(self, topo: Topology, progress: Progress = _quiet) -> LabState:
        if self.exists():
            progress(f"lab {self.name}: cleaning a leftover lab of the same name")
            self.down(progress)
        t0 = time.monotonic()
        switches = [n for n in topo.nodes.values() if n.kind == "ovs"]
        if switches and (missing := missing_binaries()):
            raise LabError(f"{', '.join(n.name for n in switches)}: Open vSwitch is not "
                           f"installed ({', '.join(missing)} missing); `make bootstrap` "
                           "installs openvswitch-switch")
        frrs = [n for n in topo.nodes.values() if n.kind == "frr"]
        for node in frrs:
            assert node.frr is not None
            if missing := frrmod.missing_binaries(node.frr.daemons):
                raise LabError(f"{node.name}: FRR is not installed ({', '.join(missing)} "
                               "missing); `make bootstrap` installs frr")
            try:
                frrmod.check_config(node.frr)
            except FrrError as exc:
                raise LabError(f"{node.name}: {exc}") from exc
        (self.dir / "logs").mkdir(parents=True)
        st = LabState(self.name, str(topo.path),
                      kinds={n.name: n.kind for n in topo.nodes.values()})
        st.save(self.state_file)

        progress(f"namespaces: creating {len(topo.nodes)}")
        for node in topo.nodes.values():
            ns = self.ns(node.name)
            if netns.exists(ns):
                raise LabError(f"namespace {ns} exists but does not belong to lab "
                               f"{self.name}; remove it yourself (ip netns del {ns})")
            st.namespaces.append(ns)
            st.save(self.state_file)
            netns.create(ns)
            netns.set_sysctls(ns, router=node.kind in ("vrp", "frr"), ipv6=topo.ipv6)
            netns.loopback_up(ns)

        progress(f"links: creating {len(topo.links)} veth pairs")
        for i, (a, b) in enumerate(topo.links):
            netns.create_veth(self.ns(a.node), a.linux, self.ns(b.node), b.linux,
                              FIRST_INDEX + i)

        for node in topo.nodes.values():
            if node.kind == "host":
                netns.configure_host(self.ns(node.name), node.host_interfaces, node.gateways)
                for e in (e for a, b in topo.links for e in (a, b) if e.node == node.name):
                    netns.set_link(self.ns(node.name), e.linux, True)  # unaddressed ports too
        for node in switches:
            self._start_ovs(topo, node.name, st, progress)

        routes = compute_routes(topo)
        for node in frrs:
            self._start_frr(topo, node.name, routes[node.name], st, progress)
        vrp = [n for n in topo.nodes.values() if n.kind == "vrp"]
        progress(f"daemons: starting {len(vrp)} ({', '.join(n.name for n in vrp)})")
        for node in vrp:
            routes_file = self.dir / f"{node.name}.routes.json"
            routes_file.write_text(json.dumps(
                [{"dst": str(r.dst), "via": str(r.via), "dev": r.dev, "metric": r.metric}
                 for r in routes[node.name]], indent=1))
            argv = [sys.executable, "-m", "daemon", "--config", str(node.config_path),
                    "--control", self.control_path(node.name), "--routes", str(routes_file),
                    "--log", self.log_path(node.name)]
            st.procs.append(self._spawn(node.name, argv, self.control_path(node.name)))
            st.save(self.state_file)

        self._wait_ready(st, progress)
        progress(f"lab {self.name}: ready in {time.monotonic() - t0:.2f} s")
        return st

    def _start_ovs(self, topo: Topology, node: str, st: LabState, progress: Progress) -> None:
        """ovsdb-server, ovs-vswitchd, then the node's ovs-vsctl lines (each waits until
        ovs-vswitchd has applied it). Its ports come up, and both ends of its links compute
        checksums in the kernel (netns.tx_checksum_off says why)."""
        t0 = time.monotonic()
        ovs = self.ovs(node)
        ends = [(e, other) for a, b in topo.links for e, other in ((a, b), (b, a))
                if e.node == node]
        try:
            for e, other in ends:
                netns.tx_checksum_off(self.ns(e.node), e.linux)
                netns.tx_checksum_off(self.ns(other.node), other.linux)
                netns.set_link(self.ns(e.node), e.linux, True)
            ovs.create_db()
            for name, argv in (("ovsdb-server", ovs.ovsdb_argv()),
                               ("ovs-vswitchd", ovs.vswitchd_argv())):
                st.procs.append(self._spawn(node, argv, None,
                                            str(self.dir / "logs" / f"{node}.{name}.log")))
                st.save(self.state_file)
                if name == "ovsdb-server":
                    ovs.wait_db()
            cfg = topo.nodes[node]
            ovs.configure(cfg.ovs_config, cfg.config_path.name if cfg.config_path else node)
        except (OvsError, LookupError) as exc:
            logs = "".join(f"\n{p.log}:\n{tail(p.log)}" for p in st.procs if p.node == node)
            raise LabError(f"{node}: Open vSwitch did not start: {exc}{logs}") from exc
        progress(f"  {node} Open vSwitch configured ({len(cfg.ovs_config)} ovs-vsctl lines, "
                 f"{time.monotonic() - t0:.2f} s)")

    def _start_frr(self, topo: Topology, node: str, routes: list[Route], st: LabState,
                   progress: Progress) -> None:
        """zebra, then the daemons the node's frr.conf uses, each once the previous one
        answers; then the file through vtysh and the lab's routes into the kernel table.
        The node's linked ports come up (zebra leaves admin state as it finds it)."""
        t0 = time.monotonic()
        frr = self.frr(node)
        cfg = topo.nodes[node].frr
        assert cfg is not None
        try:
            for a, b in topo.links:
                for e in (a, b):
                    if e.node == node:
                        netns.set_link(self.ns(node), e.linux, True)
            frr.prepare(cfg.daemons)
            for daemon in cfg.daemons:
                rec = self._spawn(node, frr.argv(daemon), None,
                                  str(self.dir / "logs" / f"{node}.{daemon}.log"))
                st.procs.append(rec)
                st.save(self.state_file)
                frr.wait_started(daemon, rec.alive)
            frr.apply(cfg)
            netns.replace_routes(self.ns(node), routes)
        except (FrrError, LookupError, OSError) as exc:
            logs = "".join(f"\n{p.log}:\n{tail(p.log)}" for p in st.procs if p.node == node)
            raise LabError(f"{node}: FRR did not start: {exc}{logs}") from exc
        progress(f"  {node} FRR configured ({', '.join(cfg.daemons)}, {len(routes)} routes, "
                 f"{time.monotonic() - t0:.2f} s)")

    def _spawn(self, node: str, argv: list[str], control: str | None,
               log: str | None = None) -> ProcRecord:
        log = log or self.log_path(node)
        with open(log, "ab") as out:
            proc = subprocess.Popen(netns.exec_argv(self.ns(node), argv), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=out, start_new_session=True)
        start = None
        for _ in range(100):  # `ip netns exec` execs in place: same pid, new image
            start = proc_start_ticks(proc.pid)
            if start is not None:
                break
            time.sleep(0.001)
        if start is None:
            raise LabError(f"{node}: daemon exited at once; log:\n{tail(log)}")
        return ProcRecord(node, proc.pid, start, argv, log, control)

    def _wait_ready(self, st: LabState, progress: Progress) -> None:
        pending = {p.node: p for p in st.procs if p.control}
        deadline = time.monotonic() + READY_TIMEOUT_S
        while pending:
            for node, rec in list(pending.items()):
                if not rec.alive():
                    raise LabError(f"{node}: daemon exited during start-up "
                                   f"(log {rec.log}):\n{tail(rec.log)}")
                with contextlib.suppress(ControlError):
                    request(rec.control or "", "display version", timeout=1.0)
                    del pending[node]
                    progress(f"  {node} answers (pid {rec.pid})")
            if pending and time.monotonic() > deadline:
                node, rec = next(iter(pending.items()))
                raise LabError(f"{node}: no answer on {rec.control} after {READY_TIMEOUT_S:.0f} s"
                               f" (log {rec.log}):\n{tail(rec.log)}")
            if pending:
                time.sleep(0.02)

    # ----- one device ---------------------------------------------------------------------

    def daemon(self, node: str) -> ProcRecord:
        for rec in self.state().procs:
            if rec.node == node and rec.control:
                return rec
        raise LabError(f"{node}: no daemon in lab {self.name}")

    def stop_daemon(self, node: str, kill: bool = False) -> None:
        """Stop one device's daemon: SIGTERM (goodbyes sent) or SIGKILL (a crash)."""
        rec = self.daemon(node)
        if kill and rec.alive():
            os.kill(rec.pid, signal.SIGKILL)
        stop_processes([rec])

    def start_daemon(self, node: str, progress: Progress = _quiet) -> ProcRecord:
        """(Re)start one device's daemon with the argv it was first started with."""
        st = self.state()
        old = self.daemon(node)
        if old.alive():
            raise LabError(f"{node}: daemon still running (pid {old.pid})")
        rec = self._spawn(node, old.argv, old.control)
        st.procs = [rec if p is old or (p.node == node and p.control) else p for p in st.procs]
        st.save(self.state_file)
        self._wait_ready(LabState(st.name, st.topology, procs=[rec]), progress)
        return rec

    # ----- down -------------------------------------------------------------------------

    def down(self, progress: Progress = _quiet) -> None:
        """Stop recorded processes, delete recorded namespaces and the state directory."""
        if not self.exists():
            progress(f"lab {self.name}: nothing to remove")
            return
        try:
            st = LabState.load(self.state_file)
        except (OSError, ValueError, TypeError):
            st = LabState(self.name, "")
        stop_processes(st.procs, progress)
        for ns in st.namespaces:
            if netns.exists(ns):
                netns.remove(ns)
        progress(f"lab {self.name}: removed {len(st.namespaces)} namespaces, "
                 f"{len(st.procs)} processes")
        shutil.rmtree(self.dir, ignore_errors=True)


def stop_processes(procs: list[ProcRecord], progress: Progress = _quiet,
                   timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, wait, then SIGKILL what is left: by recorded pid and start time only."""
    live = [p for p in procs if p.alive()]
    for p in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while live and time.monotonic() < deadline:
        _reap(live)
        live = [p for p in live if p.alive()]
        if live:
            time.sleep(0.01)
    for p in live:
        progress(f"  {p.node}: pid {p.pid} ignored SIGTERM for {timeout:.0f} s, killing")
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGKILL)
    while any(p.alive() for p in live):
        _reap(live)
        time.sleep(0.005)
    _reap(procs)


def _reap(procs: list[ProcRecord]) -> None:
    """Collect the recorded processes if they are our exited children (tests run labs
    in-process); a zombie would otherwise look alive to nobody but the kernel."""
    for p in procs:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(p.pid, os.WNOHANG)


def tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip()
    except OSError as exc:
        return f"(no log: {exc})"
