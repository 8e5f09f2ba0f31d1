"""The linux/mroute.h layouts the daemon hands the kernel, pinned byte for byte (x86_64)."""

from __future__ import annotations

from ipaddress import IPv4Address

from daemon.kernel.mroute import (
    IGMPMSG_NOCACHE,
    IGMPMSG_WRONGVIF,
    MFCCTL,
    VIFCTL,
    mfcctl,
    parse_upcall,
    vifctl,
)


def test_vifctl_layout() -> None:
    assert VIFCTL.size == 16
    # vif 3, VIFF_USE_IFINDEX, threshold 1, rate 0, ifindex 7, remote 0.0.0.0
    assert vifctl(3, 7) == bytes.fromhex("0300" "08" "01" "00000000" "07000000" "00000000")


def test_mfcctl_layout() -> None:
    assert MFCCTL.size == 60
    raw = mfcctl(IPv4Address("10.0.5.100"), IPv4Address("239.1.1.1"), 2, {0, 5})
    assert raw[:8] == bytes.fromhex("0a000564" "ef010101")
    assert raw[8:10] == b"\x02\x00"  # parent vif, native u16
    ttls = raw[10:42]
    assert ttls[0] == ttls[5] == 1 and sum(ttls) == 2
    assert raw[42:44] == b"\0\0"  # padding before the counters
    assert raw[44:] == b"\0" * 16


def test_upcall_parsing() -> None:
    msg = bytes(8) + bytes([IGMPMSG_NOCACHE, 0, 4, 0]) + bytes.fromhex("0a000564ef010101")
    up = parse_upcall(msg)
    assert up is not None
    assert (up.kind, up.vif, str(up.source), str(up.group)) == (1, 4, "10.0.5.100",
                                                                  "239.1.1.1")
    wrong = bytes(8) + bytes([IGMPMSG_WRONGVIF, 0, 1, 0]) + bytes(8)
    assert parse_upcall(wrong).kind == IGMPMSG_WRONGVIF  # type: ignore[union-attr]
    # a real IGMP packet: IPv4 header with protocol 2 at byte 9 is not an upcall
    ip = bytes.fromhex("46c00020000040000102") + bytes(22)
    assert parse_upcall(ip) is None
    assert parse_upcall(b"\0" * 5) is None
