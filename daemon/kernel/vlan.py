"""Layer-2 switching: one Linux bridge per VLAN, its ports the `portswitch` access interfaces.

The kernel here has no 802.1Q devices, so a VLAN is a bridge of its own. IGMP snooping is off
because the modelled switch configures none (with snooping on, unregistered multicast stops
flooding to host ports once a querier is heard).
"""

from __future__ import annotations

import contextlib

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError


def bridge_name(vlan: int) -> str:
    return f"br-vlan{vlan}"


class VlanBridge:
    def __init__(self, ipr: IPRoute, vlan: int) -> None:
        self.ipr = ipr
        self.vlan = vlan
        self.name = bridge_name(vlan)

    def _index(self, name: str) -> int | None:
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    def create(self, ports: list[str]) -> None:
        self.destroy()
        self.ipr.link("add", ifname=self.name, kind="bridge", br_stp_state=0,
                      br_mcast_snooping=0, br_forward_delay=0)
        br = self._index(self.name)
        for port in ports:
            idx = self._index(port)
            if idx is None:
                raise LookupError(f"no interface {port} for VLAN {self.vlan}")
            self.ipr.link("set", index=idx, master=br)
        self.ipr.link("set", index=br, state="up")

    def destroy(self) -> None:
        idx = self._index(self.name)
        if idx is not None:
            with contextlib.suppress(NetlinkError):
                self.ipr.link("del", index=idx)
