"""Measured test traffic: a paced UDP sender with sequence numbers and a receiving recorder.

Every datagram carries (magic, stream, sequence, send time); the receiver, an ordinary kernel
socket, records every arrival and reports per stream what a failover test needs: received,
lost, duplicated and reordered packets, and the longest gap between arrivals with when it
happened. Times are CLOCK_MONOTONIC nanoseconds, comparable across namespaces and with the
daemons' `mono=` log fields. Run inside a namespace: `python -m lab.traffic send|recv ...`
(labctl wraps it as `labctl traffic`).
"""

from __future__ import annotations

import argparse
import json
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address

MAGIC = b"IHBT"
HEADER = struct.Struct("!4sHQQ")  # magic, stream, seq, send time (monotonic ns)
DEFAULT_PORT = 5001
IP_PKTINFO = 8  # linux/in.h; the socket module does not export it


@dataclass
class StreamReport:
    stream: int
    dst: str
    received: int = 0
    lost: int = 0
    duplicates: int = 0
    reordered: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    longest_gap_ms: float = 0.0
    longest_gap_at_ns: int | None = None  # monotonic time of the arrival that ended the gap
    first_arrival_ns: int | None = None
    last_arrival_ns: int | None = None


@dataclass
class Recorder:
    """Arrivals by stream; kept as parallel lists so 10^6 packets stay cheap."""

    arrivals: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    dsts: dict[int, str] = field(default_factory=dict)
    malformed: int = 0

    def record(self, data: bytes, dst: str, now_ns: int) -> None:
        if len(data) < HEADER.size:
            self.malformed += 1
            return
        magic, stream, seq, _sent = HEADER.unpack_from(data)
        if magic != MAGIC:
            self.malformed += 1
            return
        self.arrivals.setdefault(stream, []).append((seq, now_ns))
        self.dsts.setdefault(stream, dst)

    def report(self, expected: dict[int, int] | None = None) -> list[StreamReport]:
        """`expected` maps stream -> packets sent (when known), so trailing loss counts too."""
        out = []
        for stream in sorted(set(self.arrivals) | set(expected or {})):
            rows = self.arrivals.get(stream, [])
            rep = StreamReport(stream, self.dsts.get(stream, "?"))
            seen: set[int] = set()
            high = -1
            prev_t = None
            for seq, t in rows:
                if seq in seen:
                    rep.duplicates += 1
                    continue
                seen.add(seq)
                if seq < high:
                    rep.reordered += 1
                high = max(high, seq)
                if prev_t is not None and (t - prev_t) / 1e6 > rep.longest_gap_ms:
                    rep.longest_gap_ms = (t - prev_t) / 1e6
                    rep.longest_gap_at_ns = t
                prev_t = t
            rep.received = len(seen)
            if rows:
                rep.first_seq, rep.last_seq = min(seen), max(seen)
                rep.first_arrival_ns, rep.last_arrival_ns = rows[0][1], rows[-1][1]
            sent = (expected or {}).get(stream)
            span = sent if sent is not None else (high + 1 if rows else 0)
            rep.lost = max(0, span - rep.received)
            out.append(rep)
        return out


class Stop:
    """SIGTERM or SIGINT ask the loop to end (and report) instead of killing the process."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._request)
        signal.signal(signal.SIGINT, self._request)

    def _request(self, *_: object) -> None:
        self.requested = True


def join(sock: socket.socket, groups: list[str], ifname: str | None) -> None:
    """Hold a membership of every group on `ifname` (the kernel sends the reports)."""
    index = socket.if_nametoindex(ifname) if ifname else 0
    for g in groups:
        mreqn = struct.pack("4s4si", IPv4Address(g).packed, b"\0" * 4, index)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)


def receive(port: int, groups: list[str], ifname: str | None, duration: float,
            stop_after_idle: float | None = None) -> Recorder:
    """Join `groups` on `ifname` and record until `duration` ends (or SIGTERM/SIGINT)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    sock.bind(("0.0.0.0", port))
    join(sock, groups, ifname)
    rec = Recorder()
    stop = Stop()
    print(json.dumps({"event": "ready", "port": port, "groups": groups}), flush=True)
    end = time.monotonic() + duration
    last = time.monotonic()
    while not stop.requested:
        now = time.monotonic()
        if now >= end or (stop_after_idle and rec.arrivals and now - last > stop_after_idle):
            break
        ready, _, _ = select.select([sock], [], [], min(0.05, end - now))
        if not ready:
            continue
        while True:
            try:
                data, anc, _flags, _src = sock.recvmsg(2048, 64, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            t = time.monotonic_ns()
            last = t / 1e9
            dst = "?"
            for level, kind, value in anc:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                    dst = socket.inet_ntoa(value[8:12])
            rec.record(data, dst, t)
    sock.close()
    return rec


ETH_P_IP = 0x0800
PACKET_OUTGOING = 4


@dataclass
class _Flow:
    """What the watcher keeps per group: seen sequence numbers as a bitmap (a long run at
    hundreds of packets/s stays a few hundred kB), the last arrival and its forwarder."""

    seen: bytearray = field(default_factory=bytearray)
    last_ns: int = 0
    mac: str = ""
    received: int = 0
    duplicates: int = 0

    def first_time(self, seq: int) -> bool:
        byte, bit = divmod(seq, 8)
        if byte >= len(self.seen):
            self.seen.extend(bytes(max(byte + 1 - len(self.seen), 4096)))
        if self.seen[byte] >> bit & 1:
            return False
        self.seen[byte] |= 1 << bit
        return True


def watch(port: int, groups: list[str], ifname: str, gap_ms: float, duration: float,
          emit: Callable[[str], None] = print) -> dict[str, _Flow]:
    """Join `groups` on `ifname` and report, as JSON lines while it happens, every gap
    longer than `gap_ms` between arrivals of a group ("gap", with its start and end), every
    duplicate ("dup"), every change of the router that forwards a group ("fwd": the source
    MAC of the frames, since DeviceC bridges), and a "tick" each second with the packets
    per group. Frames are read from a packet socket, so the router is known; an ordinary
    socket holds the memberships (the host's reports are real). For long soaks."""
    member = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    member.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # never read: frames come
    join(member, groups, ifname)                                  # from the packet socket
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    raw.bind((ifname, ETH_P_IP))
    flows = {g: _Flow() for g in groups}
    wanted = {IPv4Address(g).packed: g for g in groups}
    stop = Stop()
    emit(json.dumps({"ev": "ready", "groups": groups, "t": time.monotonic_ns()}))
    gap_ns = int(gap_ms * 1e6)
    end = time.monotonic() + duration
    next_tick = time.monotonic_ns() + 1_000_000_000
    counts = dict.fromkeys(groups, 0)
    while not stop.requested and time.monotonic() < end:
        ready, _, _ = select.select([raw], [], [], 0.05)
        while ready:
            try:
                data, addr = raw.recvfrom(2048, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            t = time.monotonic_ns()
            if addr[2] == PACKET_OUTGOING or len(data) < 28 + HEADER.size:
                continue
            ihl = (data[0] & 0x0F) * 4
            group = wanted.get(data[16:20])
            if group is None or data[9] != 17 or int.from_bytes(data[ihl + 2:ihl + 4]) != port:
                continue
            magic, _stream, seq, _sent = HEADER.unpack_from(data, ihl + 8)
            if magic != MAGIC:
                continue
            f = flows[group]
            mac = addr[4].hex(":")
            if not f.first_time(seq):
                f.duplicates += 1
                emit(json.dumps({"ev": "dup", "g": group, "seq": seq, "t": t, "mac": mac}))
                continue
            if f.last_ns and t - f.last_ns > gap_ns:
                emit(json.dumps({"ev": "gap", "g": group, "from": f.last_ns, "to": t,
                                 "ms": round((t - f.last_ns) / 1e6, 2)}))
            if mac != f.mac:
                emit(json.dumps({"ev": "fwd", "g": group, "mac": mac, "t": t}))
                f.mac = mac
            f.last_ns = t
            f.received += 1
            counts[group] += 1
        now = time.monotonic_ns()
        if now >= next_tick:
            emit(json.dumps({"ev": "tick", "t": now, "counts": counts}))
            counts = dict.fromkeys(groups, 0)
            next_tick += 1_000_000_000
    now = time.monotonic_ns()
    emit(json.dumps({"ev": "end", "t": now, "flows": {
        g: {"received": f.received, "duplicates": f.duplicates, "last": f.last_ns,
            "mac": f.mac} for g, f in flows.items()}}))
    raw.close()
    member.close()
    return flows


def send(dsts: list[str], port: int, rate: float, duration: float, size: int,
         ifname: str | None, ttl: int,
         first_stream: int = 0) -> tuple[dict[int, int], dict[str, int]]:
    """Send to each destination at `rate` packets/s for `duration` s.

    Returns packets sent per stream and the sends the kernel refused, by error (no route
    during a failover, for instance: the receiver counts those as lost).

    Sends follow absolute deadlines (a late wake-up sends the packets it owes at once), one
    socket per destination so flows differ in source port too.
    """
    socks = []
    for d in dsts:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        if ifname:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        s.connect((d, port))
        socks.append(s)
    stop = Stop()
    pad = b"\0" * max(0, size - HEADER.size)
    interval = 1.0 / rate
    start = time.monotonic()
    total = int(duration * rate)
    seq = 0
    errors: dict[str, int] = {}
    while seq < total and not stop.requested:
        due = start + seq * interval
        now = time.monotonic()
        if due > now:
            time.sleep(min(due - now, 0.01))
            continue
        t = time.monotonic_ns()
        for i, s in enumerate(socks):
            try:
                s.send(HEADER.pack(MAGIC, first_stream + i, seq, t) + pad)
            except OSError as exc:
                errors[exc.strerror or str(exc)] = errors.get(exc.strerror or str(exc), 0) + 1
        seq += 1
    for s in socks:
        s.close()
    return {first_stream + i: seq for i in range(len(dsts))}, errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.traffic", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send", help="paced sender")
    s.add_argument("dst", nargs="+", help="destination addresses (multicast groups or unicast)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT)
    s.add_argument("--rate", type=float, default=1000.0, help="packets/s per destination")
    s.add_argument("--duration", type=float, default=10.0)
    s.add_argument("--size", type=int, default=64, help="UDP payload bytes")
    s.add_argument("--ifname", help="send out of this interface")
    s.add_argument("--ttl", type=int, default=16, help="multicast TTL (must cross routers)")
    r = sub.add_parser("recv", help="recorder")
    r.add_argument("--group", action="append", default=[], help="multicast group to join")
    r.add_argument("--port", type=int, default=DEFAULT_PORT)
    r.add_argument("--ifname", help="join on this interface")
    r.add_argument("--duration", type=float, default=10.0)
    r.add_argument("--idle-stop", type=float, help="stop after this many idle seconds")
    r.add_argument("--dump", help="write every arrival (stream -> [[seq, t_ns], ...]) as JSON")
    w = sub.add_parser("watch", help="streaming recorder for long runs: gaps, duplicates and "
                       "forwarder changes as JSON lines while they happen")
    w.add_argument("--group", action="append", default=[], help="multicast group to join")
    w.add_argument("--port", type=int, default=DEFAULT_PORT)
    w.add_argument("--ifname", default="eth0", help="join and listen on this interface")
    w.add_argument("--gap-ms", type=float, default=30.0, help="report gaps longer than this")
    w.add_argument("--duration", type=float, default=86400.0)
    args = ap.parse_args(argv)
    if args.cmd == "watch":
        if not args.group:
            ap.error("watch needs at least one --group")
        watch(args.port, args.group, args.ifname, args.gap_ms, args.duration,
              lambda line: print(line, flush=True))
        return 0
    if args.cmd == "send":
        if args.rate <= 0 or args.duration <= 0:
            ap.error("--rate and --duration must be positive")
        sent, errors = send(args.dst, args.port, args.rate, args.duration, args.size,
                            args.ifname, args.ttl)
        print(json.dumps({"event": "sent", "sent": sent, "send_errors": errors}), flush=True)
        return 0
    rec = receive(args.port, args.group, args.ifname, args.duration, args.idle_stop)
    if args.dump:
        with open(args.dump, "w") as f:
            json.dump({str(k): v for k, v in rec.arrivals.items()}, f)
    print(json.dumps({"event": "report", "malformed": rec.malformed,
                      "streams": [asdict(x) for x in rec.report()]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
