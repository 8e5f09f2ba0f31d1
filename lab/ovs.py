"""Open vSwitch as a lab node: a private ovsdb-server and ovs-vswitchd in the node's namespace.

Every file OVS writes (database, control sockets, the bridges' management sockets) lives in
the node's directory under the lab's state root, so two labs never share a switch and the
host's own Open vSwitch, if it has one, is never touched. The bridges use the userspace
datapath (`datapath_type=netdev`): it needs no kernel module, and ovs-vswitchd is started
with `--disable-system` so it does not even look for one.

The node's configuration is in OVS's own terms: one `ovs-vsctl` command per line (`#`
comments), applied in order once the database is up; a line that ovs-vsctl rejects stops
the lab's start with its line number and ovs-vsctl's message.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
BINARIES = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl")
VSCTL_TIMEOUT_S = 20


class OvsError(Exception):
    """Open vSwitch could not be started, configured or asked; the message says which step."""


@dataclass(frozen=True)
class ConfigLine:
    number: int
    args: list[str]


def parse_config(text: str, where: str) -> list[ConfigLine]:
    """`ovs-vsctl` argument lists, one per non-comment line."""
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            args = shlex.split(stripped, comments=True)
        except ValueError as exc:
            raise OvsError(f"{where}:{number}: {exc}: {stripped}") from exc
        if args and args[0].startswith("-") and args[0] != "--":
            raise OvsError(f"{where}:{number}: global options belong to the lab, not the "
                           f"configuration: {stripped}")
        if args:
            lines.append(ConfigLine(number, args))
    return lines


@dataclass(frozen=True)
class OvsNode:
    """Paths of one node's private Open vSwitch."""

    dir: Path

    @property
    def db(self) -> Path:
        return self.dir / "conf.db"

    @property
    def db_sock(self) -> Path:
        return self.dir / "db.sock"

    @property
    def vswitchd_ctl(self) -> Path:
        return self.dir / "ovs-vswitchd.ctl"

    @property
    def ovsdb_ctl(self) -> Path:
        return self.dir / "ovsdb-server.ctl"

    def env_argv(self) -> list[str]:
        """`env` prefix: OVS puts run-time files (bridge .mgmt sockets) in OVS_RUNDIR."""
        d = str(self.dir)
        return ["env", f"OVS_RUNDIR={d}", f"OVS_DBDIR={d}", f"OVS_LOGDIR={d}",
                f"OVS_SYSCONFDIR={d}"]

    def create_db(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        _run(["ovsdb-tool", "create", str(self.db), str(SCHEMA)], "create the database")

    def ovsdb_argv(self) -> list[str]:
        return [*self.env_argv(), "ovsdb-server", str(self.db),
                f"--remote=punix:{self.db_sock}", f"--unixctl={self.ovsdb_ctl}",
                "--no-chdir", "-vconsole:info", "-vsyslog:off"]

    def vswitchd_argv(self) -> list[str]:
        return [*self.env_argv(), "ovs-vswitchd", f"unix:{self.db_sock}",
                f"--unixctl={self.vswitchd_ctl}", "--disable-system", "--no-chdir",
                "-vconsole:info", "-vsyslog:off"]

    def wait_db(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.db_sock.exists():
            if time.monotonic() > deadline:
                raise OvsError(f"ovsdb-server: no socket {self.db_sock} after {timeout:.0f} s")
            time.sleep(0.01)
        self.vsctl(["--no-wait", "init"])

    def vsctl(self, args: list[str], what: str | None = None) -> str:
        """ovs-vsctl against this node's database; waits for ovs-vswitchd to apply a change
        unless `--no-wait` is given (bounded by VSCTL_TIMEOUT_S)."""
        return _run(["ovs-vsctl", f"--db=unix:{self.db_sock}", f"--timeout={VSCTL_TIMEOUT_S}",
                     *args], what or "ovs-vsctl " + " ".join(args))

    def appctl(self, args: list[str]) -> str:
        return _run(["ovs-appctl", "-t", str(self.vswitchd_ctl), *args],
                    "ovs-appctl " + " ".join(args))

    def cli(self, line: str) -> str:
        """One command line of `labctl cli`: `bond/show` style words (with a '/') go to
        ovs-appctl, anything else to ovs-vsctl; a leading `ovs-appctl`/`ovs-vsctl` picks."""
        try:
            args = shlex.split(line)
        except ValueError as exc:
            raise OvsError(f"{line}: {exc}") from exc
        if not args:
            return ""
        if args[0] == "ovs-appctl" or (args[0] != "ovs-vsctl" and "/" in args[0]):
            return self.appctl(args[1:] if args[0] == "ovs-appctl" else args)
        return self.vsctl(args[1:] if args[0] == "ovs-vsctl" else args)

    def configure(self, lines: list[ConfigLine], where: str) -> None:
        for line in lines:
            try:
                self.vsctl(line.args)
            except OvsError as exc:
                raise OvsError(f"{where}:{line.number}: {exc}") from exc

    def ready(self) -> bool:
        try:
            self.appctl(["version"])
        except OvsError:
            return False
        return True

    def enabled_members(self) -> list[str]:
        """Bond members OVS forwards on (LACP: attached, in sync, carrier up), Linux names."""
        return enabled_members(self.appctl(["bond/show"]))


_MEMBER = re.compile(r"^member (\S+): (enabled|disabled)$", re.MULTILINE)


def enabled_members(bond_show: str) -> list[str]:
    """The members `ovs-appctl bond/show` lists as enabled, in its order."""
    return [name for name, state in _MEMBER.findall(bond_show) if state == "enabled"]


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None]


def _run(argv: list[str], what: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=VSCTL_TIMEOUT_S + 5)
    except FileNotFoundError as exc:
        raise OvsError(f"{what}: {argv[0]} is not installed (package openvswitch-switch)") \
            from exc
    except subprocess.TimeoutExpired as exc:
        raise OvsError(f"{what}: no answer after {VSCTL_TIMEOUT_S + 5} s") from exc
    if done.returncode != 0:
        raise OvsError(f"{what}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout
