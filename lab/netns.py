"""Namespace, veth and host plumbing for the lab (runs as root, from the root namespace)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

from daemon.kernel.links import Route

NETNS_DIR = "/run/netns"

# Applied to every namespace before its interfaces exist, so "default" reaches them all.
COMMON_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "1",  # no RS/MLD noise in captures
    "net.ipv6.conf.default.disable_ipv6": "1",
    "net.ipv4.conf.all.rp_filter": "0",  # rp_filter silently eats off-subnet IGMP/multicast
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv4.igmp_max_memberships": "20000",
    "net.ipv4.igmp_max_msf": "1024",
}
ROUTER_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.ignore_routes_with_linkdown": "1",
    "net.ipv4.conf.default.ignore_routes_with_linkdown": "1",
    # the router joins 224.0.0.22 and 224.0.0.2 to hear reports; it must not report them
    "net.ipv4.igmp_link_local_mcast_reports": "0",
}


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def create(name: str) -> None:
    netns.create(name)


def remove(name: str) -> None:
    """Delete a namespace; a missing one is fine (down is idempotent)."""
    with contextlib.suppress(FileNotFoundError):
        netns.remove(name)


def exec_argv(name: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", name, *argv]


def set_sysctls(name: str, router: bool, ipv6: bool = False) -> None:
    values = dict(COMMON_SYSCTLS, **(ROUTER_SYSCTLS if router else {}))
    if ipv6:
        values.update({k: "0" for k in values if k.endswith(".disable_ipv6")})
    args = [f"{k}={v}" for k, v in values.items()]
    subprocess.run(exec_argv(name, ["sysctl", "-q", "-w", *args]), check=True,
                   stdout=subprocess.DEVNULL)


@contextlib.contextmanager
def ipr(name: str) -> Iterator[IPRoute]:
    sock = IPRoute(netns=name)
    try:
        yield sock
    finally:
        sock.close()


def create_veth(ns_a: str, if_a: str, ns_b: str, if_b: str, index_a: int) -> None:
    """A veth pair straight into its two namespaces.

    End A gets an explicit ifindex from the lab's own range (>= 100) and end B the namespace's
    next small one, so the two ends never share an index: with equal indexes the peer's
    carrier-down event arrives 0.4-1 s late (LINUX-NOTES.md).
    """
    fd = os.open(os.path.join(NETNS_DIR, ns_b), os.O_RDONLY)
    try:
        with ipr(ns_a) as a:
            a.link("add", ifname=if_a, index=index_a, kind="veth",
                   peer={"ifname": if_b, "net_ns_fd": fd})
    finally:
        os.close(fd)


def set_link(ns: str, ifname: str, up: bool) -> None:
    with ipr(ns) as s:
        idx = s.link_lookup(ifname=ifname)
        if not idx:
            raise LookupError(f"{ns}: no interface {ifname}")
        s.link("set", index=idx[0], state="up" if up else "down")


def tx_checksum_off(ns: str, ifname: str) -> None:
    """Make the kernel fill in checksums before a frame leaves this veth. With offload on,
    a veth hands its peer frames whose checksum is still to be computed; a userspace switch
    (Open vSwitch's netdev datapath) reading them with a packet socket forwards them as they
    are, with bad UDP/TCP checksums, and the receiver drops them."""
    done = subprocess.run(exec_argv(ns, ["ethtool", "-K", ifname, "tx", "off"]),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise LookupError(f"{ns}: ethtool -K {ifname} tx off: {done.stderr.strip()} "
                          "(package ethtool)")


def replace_routes(ns: str, routes: list[Route]) -> None:
    """The lab's computed routes into a node's kernel table (what the daemon does for itself
    on VRP nodes; FRR's zebra then sees them as kernel routes). Onlink: valid before the
    neighbour's end is up."""
    with ipr(ns) as s:
        for r in routes:
            idx = s.link_lookup(ifname=r.dev)
            if not idx:
                raise LookupError(f"{ns}: no interface {r.dev} for route {r.dst}")
            s.route("replace", dst=str(r.dst), gateway=str(r.via), oif=idx[0],
                    priority=r.metric, flags=4)


def link_states(ns: str) -> dict[str, dict]:
    """Per interface: index, admin up, carrier, operstate (for status displays and tests)."""
    out = {}
    with ipr(ns) as s:
        for msg in s.get_links():
            flags = msg["flags"]
            out[msg.get("ifname")] = {
                "index": msg["index"],
                "admin_up": bool(flags & 0x1),
                "carrier": bool(flags & 0x10000),
                "operstate": msg.get("operstate"),
            }
    return out


def configure_host(ns: str, interfaces: dict[str, list[IPv4Interface]],
                   gateways: list[IPv4Address]) -> None:
    """Addresses, links up and default routes (earlier gateways preferred) on a plain host."""
    with ipr(ns) as s:
        s.link("set", index=s.link_lookup(ifname="lo")[0], state="up")
        owners: dict[IPv4Address, int] = {}
        for ifname, addrs in interfaces.items():
            found = s.link_lookup(ifname=ifname)
            if not found:
                raise LookupError(f"{ns}: host interface {ifname} is not linked to anything")
            idx = found[0]
            for a in addrs:
                with contextlib.suppress(NetlinkError):  # already there after a re-run
                    s.addr("add", index=idx, address=str(a.ip), prefixlen=a.network.prefixlen)
                owners.update({gw: idx for gw in gateways if gw in a.network})
            s.link("set", index=idx, state="up")
        for metric, gw in enumerate(gateways, start=100):
            if gw not in owners:
                raise LookupError(f"{ns}: gateway {gw} is on none of the host's subnets")
            s.route("replace", dst="0.0.0.0/0", gateway=str(gw), oif=owners[gw],
                    priority=metric, flags=4)  # onlink: valid before the router side is up


def loopback_up(ns: str) -> None:
    with ipr(ns) as s:
        s.link("set", index=s.link_lookup(ifname="lo")[0], state="up")
