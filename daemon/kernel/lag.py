"""The Eth-Trunk data plane on a kernel without bonding: veth + LAG bridge + nftables.

    Eth-Trunk1 (logical: IP, IGMP, PIM, or a VLAN bridge port on a switch)
        |  veth
    eth-trunk1-p  --- [ bridge eth-trunk1-br, learning off ] ---  member ge0-1-2, ge0-1-3 ...

An nftables bridge table per trunk gives LAG semantics: no member-to-member forwarding, nothing
accepted from a member that is not collecting, and each frame toward the members leaves by
exactly one distributing member, picked by a jhash over the flow with one fixed seed (every
rule must share it, or frames are duplicated or lost). The table is replaced atomically, in
one nftables transaction, whenever the collecting/distributing sets change. The logical
interface has carrier only while the trunk is up: the daemon sets the inner veth end up or
down.
"""

from __future__ import annotations

import contextlib

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from daemon.kernel.nft import Nft

HASH_SEED = 0x1A6F00D5


def lag_names(logical: str) -> tuple[str, str]:
    """(inner veth end, LAG bridge) for a logical trunk interface such as eth-trunk1."""
    return f"{logical}-p", f"{logical}-br"


def nft_table_name(logical: str) -> str:
    return "lag_" + logical.replace("-", "_")


def render_ruleset(logical: str, members: list[str], collecting: set[str],
                   distributing: list[str]) -> str:
    """The whole bridge table for one trunk, as an `nft -f` script (delete + add = atomic)."""
    table = nft_table_name(logical)

    def names(items: list[str] | set[str]) -> str:
        return "{ " + ", ".join(f'"{m}"' for m in sorted(items)) + " }"

    rules = [f"iifname {names(members)} oifname {names(members)} drop"]  # split horizon
    idle = [m for m in members if m not in collecting]
    if idle:
        rules.append(f"iifname {names(idle)} drop")
    off = [m for m in members if m not in distributing]
    if off:
        rules.append(f"oifname {names(off)} drop")
    n = len(distributing)
    for i, m in enumerate(distributing):
        if n == 1:
            break
        rules.append(f'meta protocol ip oifname "{m}" jhash ip saddr . ip daddr . th sport '
                     f". th dport mod {n} seed {HASH_SEED:#x} != {i} drop")
        rules.append(f'meta protocol != ip oifname "{m}" jhash ether saddr . ether daddr '
                     f"mod {n} seed {HASH_SEED:#x} != {i} drop")
    body = "\n".join(f"    {r}" for r in rules)
    return (f"table bridge {table}\n"
            f"delete table bridge {table}\n"
            f"table bridge {table} {{\n"
            f"  chain forward {{\n"
            f"    type filter hook forward priority 0; policy accept;\n"
            f"{body}\n"
            f"  }}\n"
            f"}}\n")


class Lag:
    """One Eth-Trunk's kernel objects in the current namespace."""

    def __init__(self, ipr: IPRoute, nft: Nft, logical: str, members: list[str]) -> None:
        self.ipr = ipr
        self.nft = nft
        self.logical = logical
        self.inner, self.bridge = lag_names(logical)
        self.members = members
        self.up = False

    def _index(self, name: str) -> int | None:
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    def create(self) -> None:
        """Build (or rebuild after a crash) the veth, the bridge and a table that drops all."""
        self.destroy()
        ipr = self.ipr
        ipr.link("add", ifname=self.logical, kind="veth", peer={"ifname": self.inner})
        ipr.link("add", ifname=self.bridge, kind="bridge", br_stp_state=0,
                 br_mcast_snooping=0, br_forward_delay=0, br_ageing_time=0)
        br = self._index(self.bridge)
        # the ruleset must be in place before any member is enslaved
        self.nft.run(render_ruleset(self.logical, self.members, set(), []))
        for port in [self.inner, *self.members]:
            idx = self._index(port)
            if idx is None:
                raise LookupError(f"no interface {port} for {self.logical}")
            ipr.link("set", index=idx, master=br)
            ipr.brport("set", index=idx, learning=0, unicast_flood=1)
        ipr.link("set", index=br, state="up")
        ipr.link("set", index=self._index(self.logical), state="up")

    def set_forwarding(self, collecting: set[str], distributing: list[str], up: bool) -> None:
        """Apply the LACP outcome: the table first, then the logical carrier."""
        self.nft.run(render_ruleset(self.logical, self.members, collecting, distributing))
        if up != self.up:
            self.ipr.link("set", index=self._index(self.inner), state="up" if up else "down")
            self.up = up

    def destroy(self) -> None:
        """Remove what create() made; members go back to being plain ports."""
        for port in self.members:
            idx = self._index(port)
            if idx is not None:
                with contextlib.suppress(NetlinkError):
                    self.ipr.link("set", index=idx, master=0)
        for name in (self.logical, self.bridge):
            idx = self._index(name)
            if idx is not None:
                with contextlib.suppress(NetlinkError):
                    self.ipr.link("del", index=idx)
        table = nft_table_name(self.logical)
        with contextlib.suppress(OSError):
            self.nft.run(f"table bridge {table}\ndelete table bridge {table}\n")
        self.up = False
