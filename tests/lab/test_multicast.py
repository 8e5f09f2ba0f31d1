"""Multicast forwarding end to end: Source -> DeviceD (RP) -> DeviceA -> DeviceC -> Receiver,
kernel-forwarded under PIM-SM and IGMP, with DeviceB hot (`peer-backup hot`)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from lab.labctl import main as labctl
from tests.lab.conftest import display, in_ns, wait_for
from tests.lab.test_igmp_backup import Joiner

ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python")
GROUPS = ["239.1.1.1", "239.1.1.2", "239.1.1.3"]
LEAVER = "239.2.0.1"  # Joiner(lab, 1) joins this one; it leaves mid-run
NOBODY = "239.1.1.9"


def tx_packets(lab, node: str, ifname: str) -> int:
    out = in_ns(lab, node, "ip", "-s", "-j", "link", "show", "dev", ifname, check=True).stdout
    return json.loads(out)[0]["stats64"]["tx"]["packets"]


def mfc(lab, node: str) -> dict[str, dict]:
    return {r["group"]: r for r in display(lab, node, "display multicast routing-table")}


def converged(lab) -> None:
    """DeviceC aggregates toward DeviceA, DeviceA queries on Eth-Trunk1, RBS is up."""
    seen: dict[str, object] = {}

    def ready() -> bool:
        c = display(lab, "DeviceC", "display eth-trunk 1")[0]
        seen["c_distributing"] = [m["name"] for m in c["members"] if m["mux"] == "DISTRIBUTING"]
        seen["a_igmp"] = display(lab, "DeviceA", "display igmp interface")[0]["state"]
        seen["rbs"] = display(lab, "DeviceB", "display remote-backup-service")[0]["tcp_state"]
        return seen == {"c_distributing": ["GigabitEthernet0/1/2"], "a_igmp": "up",
                        "rbs": "connected"}
    try:
        wait_for(ready, 20, "the seed lab converged")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen {seen}") from exc


def start_traffic(lab, seconds: float, rate: int = 500) -> tuple[subprocess.Popen, ...]:
    recv = subprocess.Popen(["ip", "netns", "exec", lab.ns("Receiver"), PY, "-m", "lab.traffic",
                             "recv", "--ifname", "eth0", "--duration", str(seconds + 4),
                             *[a for g in GROUPS for a in ("--group", g)]],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert recv.stdout is not None
    assert json.loads(recv.stdout.readline())["event"] == "ready"
    time.sleep(1.0)  # the joins reach DeviceA and DeviceD before the first packet
    send = subprocess.Popen(["ip", "netns", "exec", lab.ns("Source"), PY, "-m", "lab.traffic",
                             "send", *GROUPS, LEAVER, NOBODY, "--rate", str(rate),
                             "--duration", str(seconds)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    return recv, send


def finish(recv: subprocess.Popen, send: subprocess.Popen) -> tuple[dict, dict[str, dict]]:
    sent = json.loads(send.communicate(timeout=60)[0].splitlines()[-1])
    report = json.loads(recv.communicate(timeout=60)[0].splitlines()[-1])
    return sent, {s["dst"]: s for s in report["streams"]}


def test_groups_flow_hot_backup_and_leave(make_lab) -> None:
    lab = make_lab("tmcast")
    converged(lab)
    leaver = Joiner(lab, 1)
    b_member_tx = tx_packets(lab, "DeviceB", "ge0-1-3")
    recv, send = start_traffic(lab, 6.0)
    time.sleep(3.0)
    t_leave = time.monotonic_ns()
    leaver.leave()
    _sent, streams = finish(recv, send)
    for g in GROUPS:  # every packet of the joined groups, nothing twice
        s = streams[g]
        assert (s["received"], s["lost"], s["duplicates"]) == (3000, 0, 0), s
    assert NOBODY not in streams  # nobody joined it: it never reached the Receiver
    # the leaver's group stopped within the last-member query time (2 x 1 s) plus slack
    assert streams[LEAVER]["last_arrival_ns"] - t_leave < 3.5e9

    d, a, b = mfc(lab, "DeviceD"), mfc(lab, "DeviceA"), mfc(lab, "DeviceB")
    for g in GROUPS:
        assert d[g]["upstream_interface"] == "GigabitEthernet0/1/1"
        assert set(d[g]["downstream_interfaces"]) == {"GigabitEthernet0/1/3",
                                                      "GigabitEthernet0/1/2"}
        assert a[g]["downstream_interfaces"] == ["Eth-Trunk1"] and a[g]["packets"] >= 3000
        # DeviceB (peer-backup hot) gets every stream upstream, toward its down Eth-Trunk1
        assert b[g]["upstream_interface"] == "GigabitEthernet0/1/2"
        assert b[g]["downstream_interfaces"] == ["Eth-Trunk1"] and b[g]["packets"] >= 3000
    assert d[NOBODY]["downstream_interfaces"] == []
    # ... but sends nothing toward DeviceC (its member carries only LACPDUs)
    assert tx_packets(lab, "DeviceB", "ge0-1-3") - b_member_tx < 20
    assert display(lab, "DeviceD", "display pim neighbor")["neighbors"]


def test_after_pulling_a_c_the_groups_come_through_devicb(make_lab) -> None:
    lab = make_lab("tmcpull")
    converged(lab)
    recv, send = start_traffic(lab, 6.0)
    time.sleep(2.5)
    labctl(["link", "down", "DeviceA", "GE0/1/2", "--name", lab.name])
    _sent, streams = finish(recv, send)
    for g in GROUPS:
        s = streams[g]
        assert s["duplicates"] == 0, s
        assert s["received"] >= 3000 - 500, s  # a generous bound: the benchmark has targets
        assert s["longest_gap_ms"] < 2000, s
        assert s["last_seq"] == 2999  # still flowing at the end, now through DeviceB
    b = mfc(lab, "DeviceB")
    assert all(b[g]["packets"] >= 2500 for g in GROUPS), b


def test_a_directly_connected_rp(make_lab, tmp_path: Path) -> None:
    """The RP is an address of DeviceD's link to DeviceA (10.0.12.2), not its loopback:
    DeviceA's route to it is connected, and its (*,G) Joins go to the RP itself."""
    from lab.scenarios import topology

    path = topology(tmp_path, "hot")
    for cfg in path.parent.glob("Device*.cfg"):
        cfg.write_text(cfg.read_text().replace("static-rp 2.2.2.2", "static-rp 10.0.12.2"))
    lab = make_lab("tmcastrp", path)
    converged(lab)
    recv, send = start_traffic(lab, 4.0)
    _sent, streams = finish(recv, send)
    for g in GROUPS:
        assert streams[g]["duplicates"] == 0 and streams[g]["received"] > 0.9 * 2000, streams[g]
    table = display(lab, "DeviceA", "display pim routing-table")["entries"]
    star = [e for e in table if e["source"] == "*" and e["group"] in GROUPS]
    assert star and all((e["upstream_interface"], e["upstream_neighbor"]) ==
                        ("GigabitEthernet0/1/3", "10.0.12.2") for e in star), star
    assert display(lab, "DeviceD", "display pim routing-table")["entries"][0]["rp_is_local"]


def test_spt_switch_threshold_rate(make_lab, tmp_path: Path) -> None:
    """`spt-switch-threshold 300` on DeviceA: a source at ~50 kbit/s stays on the RP's tree,
    one at ~1 Mbit/s is switched to its own within a few seconds (the kernel's byte counters,
    read every second)."""
    from lab.scenarios import topology

    path = topology(tmp_path, "hot")
    cfg = path.parent / "DeviceA.cfg"
    cfg.write_text(cfg.read_text().replace(" static-rp 2.2.2.2", " static-rp 2.2.2.2\n"
                                           " spt-switch-threshold 300"))
    lab = make_lab("tmcastspt", path)
    converged(lab)
    joiner = Joiner(lab, 2)  # the Receiver joins 239.2.0.1 and 239.2.0.2

    def sources() -> set[str]:
        return {e["group"] for e in display(lab, "DeviceA", "display pim routing-table")
                ["entries"] if e["source"] != "*" and "SPT" in e["flags"]}

    def send(group: str, rate: int, seconds: float) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", lab.ns("Source"), PY, "-m",
                                 "lab.traffic", "send", group, "--rate", str(rate), "--size",
                                 "100", "--duration", str(seconds)],
                                stdout=subprocess.DEVNULL, cwd=ROOT)
    try:
        slow, fast = send("239.2.0.1", 50, 8.0), send("239.2.0.2", 1000, 8.0)
        wait_for(lambda: "239.2.0.2" in sources(), 6, "the fast source switched")
        time.sleep(2.0)
        assert "239.2.0.1" not in sources()
        slow.wait(timeout=30)
        fast.wait(timeout=30)
    finally:
        joiner.leave()
