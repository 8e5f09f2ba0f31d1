"""UDP sockets for the loopback-to-loopback control protocols (E-Trunk hellos, BFD), for trio.

Each endpoint is bound to a configured local address so packets leave with the source the
peer expects (1.1.1.1 rather than the outgoing interface's address), with the TTL and
received-TTL options BFD needs (RFC 5881 single hop: send 255, drop anything received with a
TTL other than 255).
"""

from __future__ import annotations

import socket
import struct

import trio

IP_RECVTTL = 12  # linux/in.h
IP_TTL_CMSG = 2  # IP_TTL, the control message type carrying the received TTL


class UdpEndpoint:
    def __init__(self, local_ip: str, local_port: int, ttl: int = 255,
                 recv_ttl: bool = False, device: str | None = None) -> None:
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        # network control traffic: DSCP CS6, as routers mark hellos and BFD
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0xC0)
        if recv_ttl:
            raw.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        if device:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
        # IP_FREEBIND: the loopback address may be configured a moment after we start
        raw.setsockopt(socket.IPPROTO_IP, 15, 1)
        raw.bind((local_ip, local_port))
        self.sock = trio.socket.from_stdlib_socket(raw)
        self.recv_ttl = recv_ttl

    async def send_to(self, data: bytes, peer: str, port: int) -> None:
        await self.sock.sendto(data, (peer, port))

    async def recv_from(self) -> tuple[bytes, str, int | None]:
        """(payload, source address, received TTL or None)."""
        data, anc, _flags, addr = await self.sock.recvmsg(65535, 64)
        ttl = None
        for level, kind, value in anc:
            if level == socket.IPPROTO_IP and kind == IP_TTL_CMSG:
                ttl = struct.unpack("i", value[:4])[0]
        return data, addr[0], ttl

    def close(self) -> None:
        self.sock.close()
