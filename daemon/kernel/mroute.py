"""The namespace's multicast routing socket (linux/mroute.h): VIFs, MFC entries, upcalls.

One owner per namespace: MRT_INIT on a raw IGMP socket. Besides programming the kernel's
multicast forwarding cache, this socket is how a multicast router hears IGMP: once an
interface is a VIF (mc_forwarding on), the kernel hands every IGMP packet arriving there to
the mroute socket, including v1/v2 reports sent to groups nobody joined. Kernel upcalls
(IGMPMSG_NOCACHE, WRONGVIF) arrive on the same socket as a struct igmpmsg overlaying an IP
header whose protocol byte is 0. Closing the socket flushes the VIFs and the MFC.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

import trio

MRT_INIT, MRT_DONE, MRT_ADD_VIF, MRT_DEL_VIF, MRT_ADD_MFC, MRT_DEL_MFC = range(200, 206)
MRT_ASSERT = 207
MRT_PIM = 208
VIFF_REGISTER = 0x4
VIFF_USE_IFINDEX = 0x8
MAXVIFS = 32
IP_PKTINFO = 8
IGMPMSG_NOCACHE, IGMPMSG_WRONGVIF, IGMPMSG_WHOLEPKT = 1, 2, 3

# struct vifctl: vifi (u16), flags, threshold, rate_limit (u32), lcl ifindex/addr, rmt addr
VIFCTL = struct.Struct("@HBBIi4s")
# struct mfcctl: origin, group, parent vif (u16), ttls[MAXVIFS], pkt/byte/wrong_if counts, expire
MFCCTL = struct.Struct(f"@4s4sH{MAXVIFS}sIIIi")
# struct igmpmsg: 8 unused bytes, msgtype, mbz, vif, unused, src, dst
IGMPMSG = struct.Struct("@8xBBBx4s4s")
# struct sioc_sg_req: src, grp, pktcnt, bytecnt, wrong_if (unsigned longs)
SIOC_SG_REQ = struct.Struct("@4s4sLLL")
SIOCGETSGCNT = 0x89E0 + 1  # SIOCPROTOPRIVATE + 1
IPPROTO_PIM = 103


def vifctl(vif: int, ifindex: int, threshold: int = 1) -> bytes:
    return VIFCTL.pack(vif, VIFF_USE_IFINDEX, threshold, 0, ifindex, b"\0" * 4)


def mfcctl(source: IPv4Address, group: IPv4Address, parent: int, oifs: set[int]) -> bytes:
    ttls = bytes(1 if v in oifs else 0 for v in range(MAXVIFS))
    return MFCCTL.pack(source.packed, group.packed, parent, ttls, 0, 0, 0, 0)


@dataclass(frozen=True)
class Upcall:
    """A kernel message: NOCACHE (no MFC entry for (S,G) arriving on `vif`), WRONGVIF, or
    WHOLEPKT (a packet for the register VIF, whole in `packet`)."""

    kind: int
    vif: int
    source: IPv4Address
    group: IPv4Address
    packet: bytes = b""


@dataclass(frozen=True)
class IgmpPacket:
    datagram: bytes  # the whole IP datagram
    ifindex: int


def parse_upcall(data: bytes) -> Upcall | None:
    """An igmpmsg if `data` is one (protocol byte 0), else None."""
    if len(data) < IGMPMSG.size or data[9] != 0:
        return None
    kind, _mbz, vif, src, dst = IGMPMSG.unpack_from(data)
    packet = data[IGMPMSG.size:] if kind == IGMPMSG_WHOLEPKT else b""
    return Upcall(kind, vif, IPv4Address(src), IPv4Address(dst), packet)


class MrouteSocket:
    def __init__(self) -> None:
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
        raw.setsockopt(socket.IPPROTO_IP, MRT_INIT, 1)  # EADDRINUSE: another owner
        raw.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.raw = raw
        self.sock = trio.socket.from_stdlib_socket(raw)
        self.vifs: dict[int, int] = {}  # ifindex -> vif
        self.register_vif: int | None = None

    def _free_vif(self) -> int:
        taken = {*self.vifs.values(), self.register_vif}
        return next(v for v in range(MAXVIFS) if v not in taken)

    def add_vif(self, ifindex: int) -> int:
        if ifindex in self.vifs:
            return self.vifs[ifindex]
        free = self._free_vif()
        self.raw.setsockopt(socket.IPPROTO_IP, MRT_ADD_VIF, vifctl(free, ifindex))
        self.vifs[ifindex] = free
        return free

    def add_register_vif(self) -> int:
        """The register VIF (the kernel makes a `pimreg` device): as an MFC output it hands
        each packet up whole (WHOLEPKT) to be tunnelled in a Register; as an input it is
        where the kernel delivers the packets it decapsulates from Registers (MRT_PIM)."""
        if self.register_vif is None:
            free = self._free_vif()
            self.raw.setsockopt(socket.IPPROTO_IP, MRT_ADD_VIF,
                                VIFCTL.pack(free, VIFF_REGISTER, 1, 0, 0, b"\0" * 4))
            self.register_vif = free
        return self.register_vif

    def del_vif(self, ifindex: int) -> None:
        vif = self.vifs.pop(ifindex, None)
        if vif is not None:
            self.raw.setsockopt(socket.IPPROTO_IP, MRT_DEL_VIF, vifctl(vif, ifindex))

    def set_assert(self, on: bool) -> None:
        """WRONGVIF upcalls for packets arriving on a VIF other than the entry's parent."""
        self.raw.setsockopt(socket.IPPROTO_IP, MRT_ASSERT, int(on))

    def set_pim(self, on: bool) -> None:
        """PIM mode: WRONGVIF upcalls also for a VIF that is not among the entry's outputs
        (how a last-hop router sees the first packet down the source's tree)."""
        self.raw.setsockopt(socket.IPPROTO_IP, MRT_PIM, int(on))

    def add_mfc(self, source: IPv4Address, group: IPv4Address, parent: int,
                oifs: set[int]) -> None:
        self.raw.setsockopt(socket.IPPROTO_IP, MRT_ADD_MFC, mfcctl(source, group, parent, oifs))

    def del_mfc(self, source: IPv4Address, group: IPv4Address) -> None:
        self.raw.setsockopt(socket.IPPROTO_IP, MRT_DEL_MFC, mfcctl(source, group, 0, set()))

    def sg_counters(self, source: IPv4Address, group: IPv4Address) -> tuple[int, int, int]:
        """(packets, bytes, wrong-interface packets) the kernel forwarded for (S,G)."""
        req = SIOC_SG_REQ.pack(source.packed, group.packed, 0, 0, 0)
        try:
            out = fcntl.ioctl(self.raw.fileno(), SIOCGETSGCNT, req)
        except OSError:
            return (0, 0, 0)
        _s, _g, pkts, nbytes, wrong = SIOC_SG_REQ.unpack(out)
        return pkts, nbytes, wrong

    async def recv(self) -> IgmpPacket | Upcall:
        """The next IGMP packet (with its arrival interface) or kernel upcall."""
        return self._parse(*await self.sock.recvmsg(65535, 256))

    def recv_nowait(self) -> IgmpPacket | Upcall | None:
        """What is already queued, or None: a burst of upcalls read in one go."""
        try:
            return self._parse(*self.raw.recvmsg(65535, 256, socket.MSG_DONTWAIT))
        except BlockingIOError:
            return None

    @staticmethod
    def _parse(data: bytes, anc: list, _flags: int, _addr: object) -> IgmpPacket | Upcall:
        up = parse_upcall(data)
        if up is not None:
            return up
        ifindex = 0
        for level, kind, value in anc:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                ifindex = struct.unpack_from("@i", value)[0]
        return IgmpPacket(data, ifindex)

    def close(self) -> None:
        """MRT_DONE and close: the kernel drops every VIF and MFC entry we installed."""
        with contextlib.suppress(OSError):
            self.raw.setsockopt(socket.IPPROTO_IP, MRT_DONE, 1)
        self.sock.close()


class IgmpSender:
    """Queries out of one interface: TTL 1, Router Alert, CS6, from its primary address."""

    ROUTER_ALERT = b"\x94\x04\x00\x00"

    def __init__(self, ifname: str, address: str) -> None:
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0xC0)
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, self.ROUTER_ALERT)
        # receive nothing on this socket: it is for sending only
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        self.ifname = ifname
        self.sock = trio.socket.from_stdlib_socket(raw)
        self.raw = raw

    def join(self, group: str, ifindex: int) -> None:
        """Join a link-local group (224.0.0.22, 224.0.0.2) so its reports are delivered."""
        mreqn = struct.pack("@4s4si", socket.inet_aton(group), b"\0" * 4, ifindex)
        self.raw.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)

    async def send(self, dst: str, payload: bytes) -> None:
        await self.sock.sendto(payload, (dst, 0))

    def close(self) -> None:
        self.sock.close()


class PimSocket:
    """PIM control packets on every `pim sm` interface: one raw IPPROTO_PIM socket, joined to
    ALL-PIM-ROUTERS (224.0.0.13) per interface, sending with TTL 1 out of the interface named
    in each packet's IP_PKTINFO."""

    ALL_PIM_ROUTERS = "224.0.0.13"

    def __init__(self) -> None:
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_PIM)
        raw.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0xC0)
        self.raw = raw
        self.sock = trio.socket.from_stdlib_socket(raw)

    def join(self, ifindex: int) -> None:
        mreqn = struct.pack("@4s4si", socket.inet_aton(self.ALL_PIM_ROUTERS), b"\0" * 4, ifindex)
        with contextlib.suppress(OSError):  # already joined after an interface flap
            self.raw.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)

    async def send(self, ifindex: int, address: str, dst: str, payload: bytes) -> None:
        pktinfo = struct.pack("@i4s4s", ifindex, socket.inet_aton(address), b"\0" * 4)
        await self.sock.sendmsg([payload], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)],
                               0, (dst, 0))

    async def recv(self) -> tuple[bytes, str, int]:
        """(PIM message without the IP header, source address, arrival ifindex)."""
        while True:
            data, anc, _flags, addr = await self.sock.recvmsg(65535, 256)
            ihl = (data[0] & 0x0F) * 4 if data else 0
            if len(data) < ihl or ihl < 20:
                continue
            ifindex = 0
            for level, kind, value in anc:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                    ifindex = struct.unpack_from("@i", value)[0]
            return data[ihl:], addr[0], ifindex

    def close(self) -> None:
        self.sock.close()
