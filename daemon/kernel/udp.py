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


BFD_SINGLE_HOP_PORT = 3784
BFD_MULTIHOP_PORT = 4784
BFD_SOURCE_PORT_BASE = 49152


class BfdSockets:
    """The sockets of a device's BFD sessions (RFC 5881/5883), as one datagram transport.

    One receive socket per local address (multihop, port 4784) or per interface (single hop,
    port 3784, received TTL reported); one send socket per session, bound to its source
    address and a fixed source port in 49152-65535 for the session's lifetime.
    """

    def __init__(self) -> None:
        self._send: dict[str, tuple[UdpEndpoint, int]] = {}
        self._recv: list[UdpEndpoint] = []
        self._rx_keys: set[tuple[str, int, str | None]] = set()
        self._chan_send, self._chan_recv = trio.open_memory_channel[
            tuple[bytes, str, int | None] | OSError](1024)

    def add_session(self, local_disc: int, peer: str, source: str,
                    device: str | None = None) -> None:
        port = BFD_SINGLE_HOP_PORT if device else BFD_MULTIHOP_PORT
        sport = BFD_SOURCE_PORT_BASE + local_disc % 16384
        self._send[peer] = (UdpEndpoint(source, sport, device=device), port)
        key = ("0.0.0.0" if device else source, port, device)
        if key not in self._rx_keys:
            self._rx_keys.add(key)
            self._recv.append(UdpEndpoint(key[0], port, recv_ttl=True, device=device))

    async def run(self) -> None:
        """Pump every receive socket into one stream (start in a nursery)."""
        async with trio.open_nursery() as nursery:
            for ep in self._recv:
                nursery.start_soon(self._pump, ep)

    async def _pump(self, ep: UdpEndpoint) -> None:
        """Datagrams and socket errors alike go to `recv`, whose caller counts the errors."""
        while True:
            try:
                item: tuple[bytes, str, int | None] | OSError = await ep.recv_from()
            except OSError as exc:
                item = exc
            await self._chan_send.send(item)

    async def send(self, data: bytes, peer: str) -> None:
        ep, port = self._send[peer]
        await ep.send_to(data, peer, port)

    async def recv(self) -> tuple[bytes, str, int | None]:
        item = await self._chan_recv.receive()
        if isinstance(item, OSError):
            raise item
        return item

    def close(self) -> None:
        for ep, _ in self._send.values():
            ep.close()
        for ep in self._recv:
            ep.close()
