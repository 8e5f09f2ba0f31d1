"""The Wireshark Lua dissectors (scripts/wireshark/ihb.lua) against golden captures.

The captures in tests/unit/data/pcap are built here, deterministically, from our own codecs
(daemon/etrunk/codec.py, daemon/rbs/codec.py) and written with scapy; a test checks that the
checked-in files are exactly what `build_captures()` makes, so they cannot drift from the codecs.
tshark decodes them with `-X lua_script:` and its `-T fields` output is compared with the
checked-in .expected files. After a deliberate change to the codecs or the dissector, regenerate
both and review the diff:

    .venv/bin/python -m tests.unit.test_dissector
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import cache
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from daemon.config.model import SecurityKey
from daemon.etrunk import codec as et
from daemon.rbs import codec as rbs

ROOT = Path(__file__).resolve().parents[2]
LUA = ROOT / "scripts" / "wireshark" / "ihb.lua"
DATA = Path(__file__).resolve().parent / "data" / "pcap"
TSHARK = shutil.which("tshark")

needs_tshark = pytest.mark.skipif(
    TSHARK is None, reason="tshark is not installed (apt-get install tshark): dissector untested"
)

# The seed's key (DeviceA/DeviceB.cfg): a real device's cipher string, opaque to the lab, so its
# text itself is the shared secret. And the doc's example key, typed in clear.
SEED_KEY_TEXT = "%^%#VQE;E!Dl&Rr]if$F>}w9uk5C>y-4|MS$unQ!#Mb#%^%#"
DOC_KEY_TEXT = "YsHsjx_202206"
SEED_KEY = SecurityKey.from_cipher(SEED_KEY_TEXT).key
DOC_KEY = SecurityKey.from_clear(DOC_KEY_TEXT).key
DOC_KEY_CIPHER = SecurityKey.from_clear(DOC_KEY_TEXT).text  # the lab's own cipher form
WRONG_KEY_TEXT = "not-the-key"

A_IP, B_IP = "1.1.1.1", "3.3.3.3"
A_MAC, B_MAC = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
T0 = 1_700_000_000
PORT = 1025

# Digest status values (Wireshark's checksum convention).
BAD, GOOD, UNVERIFIED = "0", "1", "2"
PI_ERROR = 0x00800000
PI_WARN = 0x00600000


# ---- building the captures ---------------------------------------------------------------


class _Capture:
    """Frames between DeviceA's and DeviceB's loopbacks, 1 ms apart, fixed addresses."""

    def __init__(self) -> None:
        self.frames: list = []

    def add(self, from_a: bool, l4) -> None:  # l4: a scapy UDP/TCP layer with its payload
        from scapy.layers.inet import IP
        from scapy.layers.l2 import Ether

        src, dst = (A_IP, B_IP) if from_a else (B_IP, A_IP)
        smac, dmac = (A_MAC, B_MAC) if from_a else (B_MAC, A_MAC)
        pkt = Ether(src=smac, dst=dmac) / IP(src=src, dst=dst, ttl=64, id=len(self.frames)) / l4
        pkt.time = T0 + len(self.frames) / 1000
        self.frames.append(pkt)

    def write(self, path: Path) -> None:
        from scapy.utils import wrpcap

        wrpcap(str(path), self.frames)


class _TcpStream:
    """One TCP connection DeviceA (client, ephemeral port) -> DeviceB:1025 with exact
    sequence and acknowledgement numbers, so Wireshark reassembles it."""

    def __init__(self, cap: _Capture, client_port: int) -> None:
        self.cap = cap
        self.ports = {True: (client_port, PORT), False: (PORT, client_port)}
        self.next_seq = {True: 100_000, False: 500_000}  # fixed ISNs: A, B
        self._segment(True, b"", "S")
        self._segment(False, b"", "SA")
        self._segment(True, b"", "A")

    def _segment(self, from_a: bool, data: bytes, flags: str) -> None:
        from scapy.layers.inet import TCP
        from scapy.packet import Raw

        sport, dport = self.ports[from_a]
        ack = self.next_seq[not from_a] if "A" in flags else 0
        tcp = TCP(sport=sport, dport=dport, seq=self.next_seq[from_a], ack=ack, flags=flags,
                  window=65535)
        self.cap.add(from_a, tcp / Raw(data) if data else tcp)
        self.next_seq[from_a] += len(data) + (1 if ("S" in flags or "F" in flags) else 0)

    def send(self, from_a: bool, data: bytes, *, fin: bool = False) -> None:
        self._segment(from_a, data, "FPA" if fin else "PA")


def _hello(seq: int, **kw) -> et.Hello:
    fields = dict(etrunk_id=1, priority=100, system_id=bytes.fromhex("00e0fc123455"),
                  hello_100ms=10, fail_100ms=200, sequence=seq, state=et.ETrunkState.MASTER,
                  flags=et.Flags.BFD | et.Flags.REVERT,
                  members=(et.Member(1, True, et.MemberRole.MASTER, attached=True),))
    fields.update(kw)
    return et.Hello(**fields)


def _resigned(body: bytes, key: bytes) -> bytes:
    """A message body (no digest) with a valid digest: only the body's fault shows."""
    return body + et.digest(key, body)


SEQ_A = (T0 * 1000) << 16  # each daemon run starts at (Unix time in ms) << 16
SEQ_B = SEQ_A + 0x1234


def _etrunk_capture() -> _Capture:
    from scapy.layers.inet import UDP

    k = SEED_KEY
    hello_a = et.encode(_hello(SEQ_A), k)
    hello_b = et.encode(_hello(
        SEQ_B, priority=200, system_id=bytes.fromhex("00e0fc123456"),
        state=et.ETrunkState.BACKUP, flags=et.Flags.BFD,
        members=(et.Member(1, True, et.MemberRole.BACKUP),
                 et.Member(2, False, et.MemberRole.BACKUP, et.WorkMode.FORCE_BACKUP))), k)
    goodbye = et.encode(_hello(
        SEQ_A + 1, msg_type=et.MessageType.GOODBYE,
        members=(et.Member(1, False, et.MemberRole.BACKUP, et.WorkMode.FORCE_MASTER),)), k)
    good = et.encode(_hello(SEQ_A + 2), k)
    bad_digest = good[:-1] + bytes([good[-1] ^ 0x01])
    body = bytearray(good[:-et.DIGEST_LEN])
    bad_version = bytearray(body)
    bad_version[4] = 2
    count_mismatch = bytearray(body)
    count_mismatch[13] = 2  # two members announced, one present; length field still right
    bad_fields = bytearray(body)
    bad_fields[7] = 4  # state
    bad_fields[12] = 0  # priority
    bad_fields[et.HEADER_LEN + 3] = 3  # member role
    datagrams = [
        (True, hello_a),                     # 1 good HELLO A->B
        (False, hello_b),                    # 2 good HELLO B->A, two members
        (True, goodbye),                     # 3 good GOODBYE
        (True, bad_digest),                  # 4 bad-digest: last bit flipped
        (True, good[:50]),                   # 5 short
        (True, b"ETRX" + good[4:]),          # 6 bad-magic
        (True, _resigned(bytes(bad_version), k)),      # 7 bad-version
        (True, good + b"\0\0\0\0"),          # 8 bad-length: length field 76, datagram 80
        (True, _resigned(bytes(count_mismatch), k)),   # 9 bad-length: count 2, room for 1
        (True, _resigned(bytes(bad_fields), k)),       # 10 bad-field: state, priority, role
    ]
    cap = _Capture()
    for from_a, payload in datagrams:
        cap.add(from_a, UDP(sport=PORT, dport=PORT) / payload)
    return cap


ETRUNK_GOOD = (1, 2, 3)
ETRUNK_BAD = (4, 5, 6, 7, 8, 9, 10)


def _etrunk_keys_capture() -> _Capture:
    """The doc's example hello keyed with its clear key, then one keyed with the empty key
    (no security-key configured)."""
    from scapy.layers.inet import UDP

    doc = _hello(0x0123456789ABCDEF)
    cap = _Capture()
    cap.add(True, UDP(sport=PORT, dport=PORT) / et.encode(doc, DOC_KEY))
    cap.add(True, UDP(sport=PORT, dport=PORT) / et.encode(doc, b""))
    return cap


def _rec(msg: rbs.Message, seq: int, flags: int = 0) -> bytes:
    return rbs.encode_message(msg, seq, flags)


def _entry(seq: int, op: rbs.Op, group: str, value: rbs.IgmpValue | None,
           iface: str = "Eth-Trunk1") -> bytes:
    return _rec(rbs.Entry(10, op, rbs.IgmpKey(iface, IPv4Address(group)), value), seq)


def _rbs_capture() -> _Capture:
    profile1 = rbs.ProfileInfo("profile1", 10, ("igmp",))
    exclude = rbs.IgmpValue(rbs.FilterMode.EXCLUDE, (), IPv4Address("10.0.15.100"), 30)
    include = rbs.IgmpValue(rbs.FilterMode.INCLUDE, ("10.0.1.1", "10.0.1.2"), "10.0.15.101", 5)
    ssm = rbs.IgmpValue(rbs.FilterMode.EXCLUDE, ("10.0.2.1",), "10.0.15.102", 0)
    cap = _Capture()

    # Stream 1: a good conversation, then a corrupted record and a close inside a record.
    s = _TcpStream(cap, 50000)                                            # frames 1-3
    s.send(True, _rec(rbs.Open("DeviceA", A_IP, (profile1,)), 1))         # 4
    s.send(False, _rec(rbs.Open("DeviceB", B_IP, (
        profile1, rbs.ProfileInfo("profile2", 20, ("igmp",)))), 1))       # 5
    s.send(True, _rec(rbs.OpenAck(), 2))                                  # 6
    s.send(False, _rec(rbs.OpenAck(), 2))                                 # 7
    s.send(True, b"".join([                                               # 8: 5 records
        _rec(rbs.BatchStart(10, 3), 3),
        _entry(4, rbs.Op.ADD, "225.1.1.1", exclude),
        _entry(5, rbs.Op.ADD, "225.1.1.2", include),
        _entry(6, rbs.Op.ADD, "232.1.1.1", ssm, iface="Vlanif10"),
        _rec(rbs.BatchEnd(10, 3), 7, rbs.Flags.ACK_REQUEST),
    ]))
    s.send(False, _rec(rbs.Ack(7), 3))                                    # 9
    update = _entry(8, rbs.Op.UPDATE, "225.1.1.1", rbs.IgmpValue(
        rbs.FilterMode.INCLUDE, ("10.0.3.3",), "10.0.15.100", 31))
    s.send(True, update[:20])                                             # 10: split ENTRY
    s.send(True, update[20:] + _rec(rbs.Keepalive(), 9))                  # 11: its end + KA
    s.send(False, _rec(rbs.Keepalive(), 4))                               # 12
    s.send(False, _rec(rbs.Error(rbs.ErrorCode.BACKUP_ID_MISMATCH, 20,
                                 "profile2: backup-id 20 here, 21 on the peer"), 5))  # 13
    s.send(True, _entry(10, rbs.Op.DELETE, "225.1.1.2", None))            # 14
    corrupted = bytearray(_entry(11, rbs.Op.ADD, "225.1.1.3", exclude))
    corrupted[0:2] = b"XB"
    s.send(True, bytes(corrupted))                                        # 15: bad-magic
    s.send(True, _rec(rbs.Keepalive(), 12)
           + _entry(13, rbs.Op.ADD, "225.1.1.4", exclude)[:12], fin=True)  # 16: truncated

    # Stream 2: one malformed record per segment.
    s = _TcpStream(cap, 50001)                                            # frames 17-19
    ka = bytearray(_rec(rbs.Keepalive(), 1))
    bad_version = bytearray(ka)
    bad_version[2] = 2
    s.send(True, bytes(bad_version))                                      # 20 bad-version
    bad_type = bytearray(ka)
    bad_type[3] = 9
    s.send(True, bytes(bad_type))                                         # 21 bad-type
    bad_flags = bytearray(ka)
    bad_flags[4:8] = b"\x00\x04\x00\x01"
    s.send(True, bytes(bad_flags))                                        # 22 bad-flags/reserved
    oversized = bytearray(ka)
    oversized[8:12] = (rbs.MAX_PAYLOAD + 1).to_bytes(4, "big")
    s.send(True, bytes(oversized))                                        # 23 oversized
    entry = _entry(2, rbs.Op.ADD, "225.1.1.1", exclude)
    short = bytearray(entry[:-6])
    short[8:12] = (len(short) - rbs.HEADER_LEN).to_bytes(4, "big")
    s.send(True, bytes(short))                                            # 24 truncated fields
    ack = bytearray(_rec(rbs.Ack(1), 3) + b"\0\0")
    ack[8:12] = (6).to_bytes(4, "big")
    s.send(True, bytes(ack))                                              # 25 trailing-bytes
    bad_values = bytearray(entry)
    at = entry.index(IPv4Address("225.1.1.1").packed)
    bad_values[at:at + 4] = IPv4Address("10.1.1.1").packed  # bad-group
    bad_values[at + 4] = rbs.FilterMode.INCLUDE  # with no sources: bad-mode
    s.send(True, bytes(bad_values))                                       # 26 bad values
    s.send(True, _rec(rbs.Error(rbs.ErrorCode.MALFORMED, 0, "x"), 4)[:16]
           + b"\x00\x09\x00\x00\x00\x01x")                                 # 27 bad-error-code

    # Stream 3: a holdings batch (what DeviceB holds for a restarted DeviceA), then HOLDINGS
    # on a record that is not a batch record.
    s = _TcpStream(cap, 50002)                                            # frames 28-30
    h = int(rbs.Flags.HOLDINGS)
    s.send(False, b"".join([                                              # 31: 3 records
        _rec(rbs.BatchStart(10, 1), 3, h),
        rbs.encode_entry(4, 10, rbs.Op.ADD, rbs.IgmpKey("Eth-Trunk1", IPv4Address(
            "225.1.1.1")), exclude, flags=h),
        _rec(rbs.BatchEnd(10, 1), 5, h | rbs.Flags.ACK_REQUEST),
    ]))
    s.send(False, _rec(rbs.Keepalive(), 6, h))                            # 32 HOLDINGS on KA
    return cap


RBS_GOOD = (4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 31)
RBS_BAD = (15, 16, 20, 21, 22, 23, 24, 25, 26, 27, 32)

CAPTURES: dict[str, Callable[[], _Capture]] = {
    "etrunk.pcap": _etrunk_capture,
    "etrunk_keys.pcap": _etrunk_keys_capture,
    "rbs.pcap": _rbs_capture,
}


def build_captures(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, build in CAPTURES.items():
        build().write(directory / name)


# ---- running tshark ------------------------------------------------------------------------


@cache
def _tshark_env() -> dict[str, str]:
    """An empty HOME: no personal preferences, and no installed copy of ihb.lua (make
    wireshark-plugin) to clash with the one loaded by -X lua_script."""
    home = tempfile.mkdtemp(prefix="ihb-tshark-home-")
    atexit.register(shutil.rmtree, home, True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "WIRESHARK_"))}
    env["HOME"] = home
    return env


@cache
def _info_field() -> str:
    """The Info column's field: _ws.col.Info up to 4.0, _ws.col.info from 4.2 on."""
    out = subprocess.run([TSHARK, "-v"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+)\.(\d+)\.\d+", out)
    version = (int(m.group(1)), int(m.group(2))) if m else (4, 0)
    return "_ws.col.Info" if version < (4, 2) else "_ws.col.info"


ETRUNK_FIELDS = [
    "frame.number", "ip.src", "etrunk.version", "etrunk.type", "etrunk.flags", "etrunk.state",
    "etrunk.length", "etrunk.id", "etrunk.priority", "etrunk.member_count",
    "etrunk.hello_period", "etrunk.fail_time", "etrunk.system_id", "etrunk.seq",
    "etrunk.member.trunk_id", "etrunk.member.phy", "etrunk.member.role", "etrunk.member.mode",
    "etrunk.member.attached", "etrunk.digest.status", "_ws.expert.severity",
    "_ws.expert.message", "INFO",
]
RBS_FIELDS = [
    "frame.number", "tcp.srcport", "rbs.type", "rbs.seq", "rbs.length", "rbs.flags",
    "rbs.open.device", "rbs.open.source", "rbs.open.profile.name",
    "rbs.open.profile.backup_id", "rbs.open.profile.service", "rbs.batch.backup_id",
    "rbs.batch.count", "rbs.entry.backup_id", "rbs.entry.service", "rbs.entry.op",
    "rbs.entry.interface", "rbs.entry.group", "rbs.entry.mode", "rbs.entry.reporter",
    "rbs.entry.uptime", "rbs.entry.source_count", "rbs.entry.source", "rbs.ack.seq",
    "rbs.error.code", "rbs.error.backup_id", "rbs.error.text", "_ws.expert.severity",
    "_ws.expert.message", "INFO",
]


def tshark_fields(pcap: Path, fields: list[str], *prefs: str, display_filter: str = ""
                  ) -> list[dict[str, str]]:
    """One row per frame: field -> value (several occurrences comma-separated)."""
    assert TSHARK is not None
    real = [_info_field() if f == "INFO" else f for f in fields]
    cmd = [TSHARK, "-n", "-r", str(pcap), "-X", f"lua_script:{LUA}", "-T", "fields",
           "-E", "header=n", "-E", "occurrence=a", "-E", "aggregator=,"]
    for pref in prefs:
        cmd += ["-o", pref]
    if display_filter:
        cmd += ["-Y", display_filter]
    for f in real:
        cmd += ["-e", f]
    proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", timeout=60,
                          check=False, env=_tshark_env())
    noise = [ln for ln in proc.stderr.splitlines() if "Running as user" not in ln]
    assert proc.returncode == 0 and not noise, proc.stderr
    rows = []
    for line in proc.stdout.splitlines():
        values = line.split("\t")
        assert len(values) == len(fields), line
        rows.append(dict(zip(fields, values, strict=True)))
    return rows


def render(rows: list[dict[str, str]]) -> str:
    """The .expected form: one line per frame, `field=value` for every non-empty field."""
    return "".join(
        " | ".join(f"{k}={v}" for k, v in row.items() if v) + "\n" for row in rows)


ETRUNK_KEY_PREF = f"etrunk.key:{SEED_KEY_TEXT}"

EXPECTED_RUNS: dict[str, tuple[str, list[str], tuple[str, ...]]] = {
    # .expected file -> (capture, fields, preferences)
    "etrunk.expected": ("etrunk.pcap", ETRUNK_FIELDS, (ETRUNK_KEY_PREF,)),
    "rbs.expected": ("rbs.pcap", RBS_FIELDS, ()),
}


def _run_expected(name: str, pcap_dir: Path = DATA) -> list[dict[str, str]]:
    pcap, fields, prefs = EXPECTED_RUNS[name]
    return tshark_fields(pcap_dir / pcap, fields, *prefs)


@cache
def _expected_rows(name: str) -> tuple[dict[str, str], ...]:
    return tuple(_run_expected(name))


def _severities(row: dict[str, str]) -> list[int]:
    return [int(s) for s in row["_ws.expert.severity"].split(",") if s]


# ---- tests ------------------------------------------------------------------------------------


def test_checked_in_captures_are_what_the_codecs_make(tmp_path: Path) -> None:
    build_captures(tmp_path)
    for name in CAPTURES:
        assert (DATA / name).read_bytes() == (tmp_path / name).read_bytes(), (
            f"{name} drifted from the codecs: regenerate with "
            "`.venv/bin/python -m tests.unit.test_dissector` and review")


@needs_tshark
@pytest.mark.parametrize("name", sorted(EXPECTED_RUNS))
def test_tshark_output_matches_expected(name: str) -> None:
    got = render(list(_expected_rows(name)))
    assert got == (DATA / name).read_text(encoding="utf-8")


@needs_tshark
def test_etrunk_good_and_malformed_hellos() -> None:
    rows = {int(r["frame.number"]): r for r in _expected_rows("etrunk.expected")}
    assert set(rows) == set(ETRUNK_GOOD + ETRUNK_BAD)
    for n in ETRUNK_GOOD:
        assert max(_severities(rows[n]), default=0) < PI_WARN, rows[n]
        assert rows[n]["etrunk.digest.status"] == GOOD
    for n in ETRUNK_BAD:
        assert PI_ERROR in _severities(rows[n]), rows[n]
        assert "[MALFORMED" in rows[n]["INFO"] or "[BAD DIGEST]" in rows[n]["INFO"], rows[n]
    hello = rows[1]
    assert hello["INFO"] == f"E-Trunk 1 HELLO Master prio 100 seq {SEQ_A}"
    assert (hello["etrunk.state"], hello["etrunk.seq"], hello["etrunk.flags"]) == (
        "3", str(SEQ_A), "0x03")
    assert rows[2]["etrunk.member.trunk_id"] == "1,2"
    assert rows[2]["etrunk.member.mode"] == "1,3"
    assert rows[3]["etrunk.type"] == "2"
    assert rows[4]["etrunk.digest.status"] == BAD
    assert "bad-digest" in rows[4]["_ws.expert.message"]
    for n, reason in [(5, "short"), (6, "bad-magic"), (7, "bad-version"), (8, "bad-length"),
                      (9, "bad-length"), (10, "bad-field")]:
        assert f"[MALFORMED: {reason}]" in rows[n]["INFO"], rows[n]
    # Malformed at the format level: nothing past magic/version is decoded, no digest check.
    for n in (6, 7):
        assert rows[n]["etrunk.seq"] == "" and rows[n]["etrunk.digest.status"] == ""
    # Re-signed malformed hellos carry a good digest: only the field is wrong.
    for n in (7, 9, 10):
        assert rows[n]["etrunk.digest.status"] in ("", GOOD)


@needs_tshark
def test_etrunk_wrong_key_is_bad() -> None:
    rows = tshark_fields(DATA / "etrunk.pcap", ["frame.number", "etrunk.digest.status"],
                         f"etrunk.key:{WRONG_KEY_TEXT}")
    status = {int(r["frame.number"]): r["etrunk.digest.status"] for r in rows}
    assert all(status[n] == BAD for n in (*ETRUNK_GOOD, 4, 8, 9, 10)), status


@needs_tshark
@pytest.mark.parametrize(("key", "statuses"), [
    (DOC_KEY_TEXT, [GOOD, BAD]),            # the clear key
    (DOC_KEY_CIPHER, [GOOD, BAD]),          # the lab's cipher form decodes to it
    ("", [UNVERIFIED, GOOD]),               # no key set: only the empty key is checked
])
def test_etrunk_key_forms(key: str, statuses: list[str]) -> None:
    rows = tshark_fields(DATA / "etrunk_keys.pcap",
                         ["etrunk.digest.status", "_ws.expert.severity"], f"etrunk.key:{key}")
    assert [r["etrunk.digest.status"] for r in rows] == statuses
    for row, status in zip(rows, statuses, strict=True):
        assert (PI_ERROR in _severities(row)) == (status == BAD), row


@needs_tshark
def test_rbs_records_and_reassembly() -> None:
    rows = {int(r["frame.number"]): r for r in _expected_rows("rbs.expected")}
    for n in RBS_GOOD:
        assert rows[n]["rbs.type"], rows[n]
        assert max(_severities(rows[n]), default=0) < PI_WARN, rows[n]
    for n in RBS_BAD:
        assert PI_ERROR in _severities(rows[n]), rows[n]
        assert "MALFORMED" in rows[n]["INFO"], rows[n]
    # Several records in one segment.
    assert rows[8]["rbs.type"] == "3,4,4,4,5"
    assert rows[8]["rbs.entry.group"] == "225.1.1.1,225.1.1.2,232.1.1.1"
    assert rows[8]["INFO"] == "RBS: BATCH_START, ENTRY, ENTRY, ENTRY, BATCH_END"
    # A record split over two segments is decoded where it completes, with the next record.
    assert rows[10]["rbs.type"] == ""
    assert rows[11]["rbs.type"] == "4,7"
    assert (rows[11]["rbs.entry.op"], rows[11]["rbs.entry.source"]) == ("2", "10.0.3.3")
    assert rows[11]["INFO"] == "RBS: ENTRY, KEEPALIVE"
    # Every record type appears, each of the good ones with its fields.
    types = {t for n in RBS_GOOD for t in rows[n]["rbs.type"].split(",")}
    assert types == {str(t) for t in range(1, 9)}
    assert rows[4]["rbs.open.device"] == "DeviceA"
    assert rows[9]["rbs.ack.seq"] == "7"
    assert rows[13]["rbs.error.text"] == "profile2: backup-id 20 here, 21 on the peer"
    assert rows[14]["rbs.entry.op"] == "3" and rows[14]["rbs.entry.mode"] == ""
    for n, reason in [(15, "bad-magic"), (16, "truncated"), (20, "bad-version"),
                      (21, "bad-type"), (22, "bad-flags"), (23, "oversized"),
                      (24, "truncated"), (25, "trailing-bytes"), (26, "bad-group"),
                      (27, "bad-error-code"), (32, "bad-flags")]:
        assert f"[MALFORMED: {reason}]" in rows[n]["INFO"], rows[n]
    assert rows[31]["rbs.flags"] == "0x0002,0x0002,0x0003"  # HOLDINGS; ACK_REQUEST on the end
    assert rows[16]["rbs.type"] == "7,4"  # the KEEPALIVE before the cut is fine


@needs_tshark
def test_port_preferences() -> None:
    rows = tshark_fields(DATA / "etrunk.pcap", ["etrunk.type"], "etrunk.port:1026")
    assert all(r["etrunk.type"] == "" for r in rows)
    rows = tshark_fields(DATA / "rbs.pcap", ["rbs.type"], "rbs.port:4000")
    assert all(r["rbs.type"] == "" for r in rows)


def regenerate() -> None:
    """Rewrite the captures and, with tshark, the .expected files."""
    build_captures(DATA)
    if TSHARK is None:
        sys.exit("captures written; tshark is missing, .expected files not regenerated")
    for name in EXPECTED_RUNS:
        (DATA / name).write_text(render(_run_expected(name)), encoding="utf-8")
    print(f"regenerated {', '.join(list(CAPTURES) + list(EXPECTED_RUNS))} in {DATA}")


if __name__ == "__main__":
    regenerate()
