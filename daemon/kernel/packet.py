"""AF_PACKET sockets for slow-protocol frames (LACP) on one interface, for trio."""

from __future__ import annotations

import socket

import trio

ETH_P_SLOW = 0x8809
PACKET_OUTGOING = 4


class PacketPort:
    """Send and receive whole Ethernet frames of one ethertype on one interface.

    Bound to the member itself: frames reach the socket even while the member is a bridge
    port, and the bridge never forwards slow-protocol frames.
    """

    def __init__(self, ifname: str, ethertype: int = ETH_P_SLOW) -> None:
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
        raw.bind((ifname, ethertype))
        self.ifname = ifname
        self.sock = trio.socket.from_stdlib_socket(raw)

    async def send(self, frame: bytes) -> None:
        await self.sock.send(frame)

    async def recv(self) -> bytes:
        """The next frame received (our own outgoing copies are skipped)."""
        while True:
            frame, addr = await self.sock.recvfrom(2048)
            if addr[2] != PACKET_OUTGOING:
                return frame

    def close(self) -> None:
        self.sock.close()
