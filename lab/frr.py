"""FRR as a lab node: zebra and the daemons its configuration uses, private to the node.

Each daemon runs in the node's namespace in the foreground (so the lab's pid record is the
daemon itself), with its vty socket, zebra socket and pid file in the node's directory under
the lab's state root and TCP vty disabled: two labs never share an FRR, and the host's own FRR,
if it runs one, is never touched. The daemons drop to the `frr` user as packaged FRR does, so
the node's directory belongs to that user.

The node's configuration is one integrated `frr.conf` (what `vtysh -w` writes). The lab
starts zebra, then the daemons the file uses (`ip pim` -> pimd, `bfd` -> bfdd, `ip route` ->
staticd, `router ospf` -> ospfd, `router bgp` -> bgpd), and applies the file with
`vtysh -f`; vtysh checks it first (`-C`), so an unknown or broken line stops the lab's start
with vtysh's own message and line number. Interface names are Linux names; an endpoint named
the VRP way in the topology (`GigabitEthernet0/1/3`) is the Linux port `ge0-1-3`.

The lab reads two things from the file itself: the `ip address` lines of each `interface`
block (for the lab's embedded routing, lab/routes.py, which installs the node's routes into
its kernel table where zebra sees them), and which daemons to start.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from pathlib import Path

FRR_LIBEXEC = Path("/usr/lib/frr")
VTYSH = "vtysh"
USER = "frr"
# Start order: zebra first (the others connect to it), bfdd before its clients.
DAEMONS = ("zebra", "staticd", "bfdd", "ospfd", "bgpd", "pimd")
VTYSH_TIMEOUT_S = 20
START_TIMEOUT_S = 10.0

# A configuration line (its words, lower-cased) that needs a daemon besides zebra.
_USES = (
    (("ip", "pim"), "pimd"), (("ip", "igmp"), "pimd"), (("ip", "multicast"), "pimd"),
    (("router", "pim"), "pimd"), (("bfd",), "bfdd"), (("ip", "route"), "staticd"),
    (("router", "ospf"), "ospfd"), (("ip", "ospf"), "ospfd"), (("router", "bgp"), "bgpd"),
)


class FrrError(Exception):
    """FRR could not be started, configured or asked; the message says which step."""


@dataclass(frozen=True)
class FrrConfig:
    """What the lab reads from an frr.conf (vtysh checks the rest)."""

    path: Path
    interfaces: dict[str, list[IPv4Interface]] = field(default_factory=dict)
    daemons: tuple[str, ...] = ("zebra",)


def parse_config(path: Path) -> FrrConfig:
    """Interface addresses and the daemons the file uses; a bad `ip address` is an error
    here, every other line is vtysh's to judge."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise FrrError(f"{path}: {exc}") from exc
    interfaces: dict[str, list[IPv4Interface]] = {}
    used = {"zebra"}
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        words = line.lower().split()
        if not words or words[0].startswith("!"):  # a comment, or the end of a block
            if words and not raw[:1].isspace():
                current = None
            continue
        if not raw[:1].isspace():
            current = None
            if words[0] == "interface" and len(words) >= 2:
                current = line.split()[1]
                interfaces.setdefault(current, [])
            elif words[0] in ("exit", "end"):
                continue
        elif current is not None and words[:2] == ["ip", "address"]:
            try:
                interfaces[current].append(IPv4Interface(words[2]))
            except (IndexError, ValueError) as exc:
                raise FrrError(f"{path.name}:{number}: bad address: {line.strip()}") from exc
        for prefix, daemon in _USES:
            if tuple(words[:len(prefix)]) == prefix or (daemon == "bfdd" and "bfd" in words):
                used.add(daemon)
    return FrrConfig(path, interfaces, tuple(d for d in DAEMONS if d in used))


def missing_binaries(daemons: tuple[str, ...] = ("zebra",)) -> list[str]:
    out = [str(FRR_LIBEXEC / d) for d in daemons if not (FRR_LIBEXEC / d).exists()]
    try:
        subprocess.run([VTYSH, "--help"], capture_output=True, timeout=10)
    except FileNotFoundError:
        out.append(VTYSH)
    try:
        pwd.getpwnam(USER)
    except KeyError:
        out.append(f"user {USER}")
    return out


def check_config(cfg: FrrConfig) -> None:
    """vtysh's dry run (`-C`) over the file: no daemon needed."""
    with tempfile.TemporaryDirectory(prefix="ihb-frr-check-") as tmp:
        done = _vtysh(["--vty_socket", tmp, "--config_dir", tmp, "-C", "-f", str(cfg.path)],
                      f"check {cfg.path.name}")
    if done.returncode != 0:
        raise FrrError(f"{cfg.path.name}: vtysh rejects it:\n{_messages(done)}")


@dataclass(frozen=True)
class FrrNode:
    """Paths of one node's private FRR."""

    dir: Path

    def prepare(self, daemons: tuple[str, ...]) -> None:
        """The node's directory, owned by the FRR user, with an empty startup config per
        daemon (the real one is applied through vtysh once all are up)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        user = pwd.getpwnam(USER)
        os.chown(self.dir, user.pw_uid, user.pw_gid)
        for d in daemons:
            conf = self.dir / f"{d}.conf"
            conf.write_text("")
            os.chown(conf, user.pw_uid, user.pw_gid)

    def argv(self, daemon: str) -> list[str]:
        return [str(FRR_LIBEXEC / daemon), "-z", str(self.dir / "zserv.api"),
                "--vty_socket", str(self.dir), "-i", str(self.dir / f"{daemon}.pid"),
                "-P", "0", "-f", str(self.dir / f"{daemon}.conf"),
                "--log", "stdout", "--log-level", "informational"]

    def wait_started(self, daemon: str, alive: Callable[[], bool],
                     timeout: float = START_TIMEOUT_S) -> None:
        """Until the daemon's vty socket (and zebra's API socket) exist."""
        want = [self.dir / f"{daemon}.vty"] + ([self.dir / "zserv.api"]
                                                if daemon == "zebra" else [])
        deadline = time.monotonic() + timeout
        while not all(p.exists() for p in want):
            if not alive():
                raise FrrError(f"{daemon} exited during start-up")
            if time.monotonic() > deadline:
                raise FrrError(f"{daemon}: no {want[0].name} after {timeout:.0f} s")
            time.sleep(0.01)

    def apply(self, cfg: FrrConfig) -> None:
        done = _vtysh(["--vty_socket", str(self.dir), "-f", str(cfg.path)],
                      f"apply {cfg.path.name}")
        if done.returncode != 0:
            raise FrrError(f"{cfg.path.name}: vtysh could not apply it:\n{_messages(done)}")

    def cli(self, line: str) -> str:
        """One `labctl cli` command line, as vtysh -c runs it (`show ip pim neighbor json`)."""
        if not line.strip():
            return ""
        done = _vtysh(["--vty_socket", str(self.dir), "-c", line], line)
        if done.returncode != 0:
            raise FrrError(_messages(done) or f"{line}: vtysh exited {done.returncode}")
        return done.stdout.rstrip("\n")

    def ready(self) -> bool:
        try:
            self.cli("show version")
        except FrrError:
            return False
        return True


def _vtysh(args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([VTYSH, *args], capture_output=True, text=True,
                              timeout=VTYSH_TIMEOUT_S)
    except FileNotFoundError as exc:
        raise FrrError(f"{what}: vtysh is not installed (package frr)") from exc
    except subprocess.TimeoutExpired as exc:
        raise FrrError(f"{what}: no answer from vtysh after {VTYSH_TIMEOUT_S} s") from exc


def _messages(done: subprocess.CompletedProcess[str]) -> str:
    """vtysh's complaints without its notice about the absent vtysh.conf."""
    lines = (done.stdout + done.stderr).splitlines()
    return "\n".join(ln for ln in lines if ln.strip() and "vtysh.conf" not in ln)
