"""Datagrams captured in the lab (tcpdump on the Receiver's eth0): the Linux host's IGMPv3
report when a socket joins 239.1.1.1, and DeviceA's IGMPv2 general query."""

from __future__ import annotations

from daemon.igmp.codec import Query, RecordType, V3Report, decode_ip, encode

# 10.0.15.100 -> 224.0.0.22, TTL 1, Router Alert; one CHANGE_TO_EXCLUDE({}) record
LINUX_JOIN = bytes.fromhex("46c00028000040000102ea950a000f64e0000016940400002200e9fb00000001"
                           "04000000ef010101")
# 10.0.15.1 -> 224.0.0.1, TTL 1, Router Alert, max response 10 s
DEVICEA_QUERY = bytes.fromhex("46c00020c4ff4000010226160a000f01e0000001940400001164ee9b"
                              "00000000")


def test_linux_join_report() -> None:
    ip = decode_ip(LINUX_JOIN)
    assert (ip.src, ip.dst, ip.ttl, ip.router_alert) == ("10.0.15.100", "224.0.0.22", 1, True)
    assert isinstance(ip.message, V3Report)
    (rec,) = ip.message.records
    assert (rec.record_type, rec.group, rec.sources) == (RecordType.CHANGE_TO_EXCLUDE,
                                                         "239.1.1.1", ())
    assert encode(ip.message) == LINUX_JOIN[24:]


def test_devicea_general_query_is_what_we_encode() -> None:
    ip = decode_ip(DEVICEA_QUERY)
    assert (ip.src, ip.dst, ip.ttl, ip.router_alert) == ("10.0.15.1", "224.0.0.1", 1, True)
    assert ip.message == Query.v2(10.0, "0.0.0.0")
    assert encode(Query.v2(10.0, "0.0.0.0")) == DEVICEA_QUERY[24:]
