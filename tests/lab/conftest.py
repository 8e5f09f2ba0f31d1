"""Lab tests: real namespaces, as root. Each test builds its own lab under its own prefix."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.supervisor import Lab
from lab.topology import DEFAULT_TOPOLOGY, load_topology


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.lab)
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason="lab tests need root (namespaces)"))


def unique(prefix: str) -> str:
    """The test's own prefix plus a random tag, so concurrent runs never collide."""
    return f"{prefix}-{secrets.token_hex(2)}"


LabFactory = Callable[..., Lab]


@pytest.fixture
def make_lab() -> Iterator[LabFactory]:
    """Build labs on demand; every one is torn down afterwards, pass or fail."""
    made: list[Lab] = []

    def make(prefix: str, topology: Path = DEFAULT_TOPOLOGY) -> Lab:
        lab = Lab(unique(prefix))
        made.append(lab)
        lab.up(load_topology(topology))
        return lab

    yield make
    keep = os.environ.get("IHB_KEEP_LOGS")  # a directory: each lab's daemon logs land there
    for lab in made:
        if keep and (lab.dir / "logs").exists():
            import shutil

            shutil.copytree(lab.dir / "logs", Path(keep) / lab.name, dirs_exist_ok=True)
        lab.down()


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def in_ns(lab: Lab, node: str, *argv: str, check: bool = False,
          timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", lab.ns(node), *argv], capture_output=True,
                          text=True, check=check, timeout=timeout)


def ping(lab: Lab, node: str, dst: str, src: str | None = None, count: int = 3,
         wait_s: float = 5.0) -> bool:
    """True once a ping gets through within `wait_s` (routes can take a moment to settle)."""
    argv = ["ping", "-n", "-q", "-c", "1", "-W", "1"] + (["-I", src] if src else []) + [dst]
    import time

    deadline = time.monotonic() + wait_s
    ok = 0
    while time.monotonic() < deadline:
        if in_ns(lab, node, *argv).returncode == 0:
            ok += 1
            if ok >= count:
                return True
        else:
            ok = 0
    return False


def wait_for(check: Callable[[], object], timeout: float, what: str, step: float = 0.02):
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    import time

    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def display(lab: Lab, node: str, cmd: str):
    from daemon.cli.protocol import request

    return request(lab.control_path(node), cmd, as_json=True)


def member(lab: Lab, node: str, port: str, trunk: int = 1) -> dict:
    """One member row of `display eth-trunk N` (JSON)."""
    trunk_json = display(lab, node, f"display eth-trunk {trunk}")[0]
    return next(m for m in trunk_json["members"] if m["name"] == port)


SEED_DIR = DEFAULT_TOPOLOGY.parent


def variant(tmp_path: Path, **edits: Callable[[str], str]) -> Path:
    """A copy of the seed topology with some devices' configuration text edited."""
    import shutil

    out = tmp_path / "topology"
    shutil.copytree(SEED_DIR, out)
    for device, edit in edits.items():
        cfg = out / f"{device}.cfg"
        cfg.write_text(edit(cfg.read_text()))
    return out / "topology.yaml"


def etrunk_lines(*lines: str) -> Callable[[str], str]:
    """An edit adding commands to the `e-trunk 1` view."""
    def edit(text: str) -> str:
        return text.replace("e-trunk 1\n", "e-trunk 1\n" + "".join(f" {x}\n" for x in lines), 1)
    return edit


def kill_daemon(lab: Lab, node: str) -> float:
    """SIGKILL a device's daemon; returns the monotonic time just before the kill."""
    import signal
    import time

    rec = next(p for p in lab.state().procs if p.node == node)
    t0 = time.monotonic()
    os.kill(rec.pid, signal.SIGKILL)
    return t0


def log_events(lab: Lab, node: str, since: float = 0.0) -> list[dict[str, str]]:
    from daemon.log import parse_line

    with open(lab.log_path(node)) as f:
        rows = [parse_line(line) for line in f]
    return [r for r in rows if float(r.get("mono", 0)) >= since]


def first_event(lab: Lab, node: str, since: float, **match: str) -> dict[str, str] | None:
    for ev in log_events(lab, node, since):
        if all(ev.get(k) == v for k, v in match.items()):
            return ev
    return None
