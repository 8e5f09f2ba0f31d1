"""Captures across devices: one tcpdump per endpoint, merged into one pcapng whose
interfaces are named after the device and VRP interface ("DeviceA:GigabitEthernet0/1/2"),
so one file shows LACP on the trunk, E-Trunk/BFD/RBS between the loopbacks and IGMP on
Eth-Trunk1 side by side in Wireshark."""

from __future__ import annotations

import signal
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lab import netns
from lab.supervisor import Lab

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D


@dataclass(frozen=True)
class Endpoint:
    node: str
    vrp: str  # the name shown (VRP on devices, Linux on hosts)
    linux: str


def read_pcap(path: Path) -> tuple[int, list[tuple[int, bytes, int]]]:
    """(linktype, [(timestamp ns, frame, original length)]) of a classic pcap file."""
    data = path.read_bytes()
    if len(data) < 24:
        return 1, []
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
    magic = struct.unpack_from(endian + "I", data)[0]
    scale = 1 if magic == PCAP_MAGIC_NS else 1000
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    out, pos = [], 24
    while pos + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack_from(endian + "IIII", data, pos)
        pos += 16
        if pos + incl > len(data):
            break  # a capture cut mid-record
        out.append((sec * 1_000_000_000 + frac * scale, data[pos:pos + incl], orig))
        pos += incl
    return linktype, out


def _option(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def _block(kind: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


def write_pcapng(path: Path, captures: list[tuple[Endpoint, int, list[tuple[int, bytes, int]]]]
                 ) -> int:
    """One pcapng: an interface per endpoint (named, nanosecond timestamps), every packet
    in time order. Returns the number of packets written."""
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
                 + _option(4, b"igmp-hot-backup-lab capture") + _option(0, b""))
    blocks = [shb]
    packets = []
    for idx, (ep, linktype, pkts) in enumerate(captures):
        opts = (_option(2, f"{ep.node}:{ep.vrp}".encode())
                + _option(3, f"{ep.node} {ep.vrp} ({ep.linux})".encode())
                + _option(9, bytes([9])) + _option(0, b""))  # if_tsresol: 10^-9
        blocks.append(_block(1, struct.pack("<HHI", linktype, 0, 262144) + opts))
        packets += [(ts, idx, frame, orig) for ts, frame, orig in pkts]
    packets.sort(key=lambda p: (p[0], p[1]))
    for ts, idx, frame, orig in packets:
        pad = (-len(frame)) % 4
        body = struct.pack("<IIIII", idx, ts >> 32, ts & 0xFFFFFFFF, len(frame), orig)
        blocks.append(_block(6, body + frame + b"\0" * pad))
    path.write_bytes(b"".join(blocks))
    return len(packets)


def interrupt(procs: list[subprocess.Popen]) -> None:
    """SIGINT (tcpdump writes what it has and exits), then kill what is still there."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class MultiCapture:
    """tcpdump on several endpoints at once; `stop()` merges them into one pcapng."""

    def __init__(self, lab: Lab, endpoints: list[Endpoint], out: Path) -> None:
        self.lab = lab
        self.endpoints = endpoints
        self.out = out
        self.tmp = Path(tempfile.mkdtemp(prefix="ihb-cap-"))
        self.procs: list[subprocess.Popen] = []

    def start(self, timeout: float = 10.0) -> None:
        for i, ep in enumerate(self.endpoints):
            argv = ["tcpdump", "-i", ep.linux, "-U", "-n", "--time-stamp-precision=nano",
                    "-w", str(self.tmp / f"{i}.pcap")]
            self.procs.append(subprocess.Popen(netns.exec_argv(self.lab.ns(ep.node), argv),
                                               stdout=subprocess.DEVNULL,
                                               stderr=subprocess.PIPE, text=True))
        for p in self.procs:  # capturing for real before the caller makes traffic
            assert p.stderr is not None
            deadline = time.monotonic() + timeout
            line = ""
            while "listening" not in line and time.monotonic() < deadline:
                line = p.stderr.readline()
                if not line and p.poll() is not None:
                    raise RuntimeError(f"tcpdump exited: {p.returncode}")

    def stop(self) -> int:
        interrupt(self.procs)
        captures = []
        for i, ep in enumerate(self.endpoints):
            linktype, pkts = read_pcap(self.tmp / f"{i}.pcap")
            captures.append((ep, linktype, pkts))
        return write_pcapng(self.out, captures)
