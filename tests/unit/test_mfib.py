"""MulticastFib: upcalls and PIM's interface sets turned into MFC calls (fake mroute)."""

from __future__ import annotations

import io
from ipaddress import IPv4Address

from daemon.kernel.mroute import IGMPMSG_NOCACHE, IGMPMSG_WRONGVIF, Upcall
from daemon.log import Log
from daemon.mfib import MulticastFib, render_multicast_routing_table

S, G = IPv4Address("10.0.5.100"), IPv4Address("239.1.1.1")
VIFS = {"GigabitEthernet0/1/3": 0, "Eth-Trunk1": 1, "GigabitEthernet0/1/1": 2}


class FakeMroute:
    def __init__(self) -> None:
        self.mfc: dict[tuple[IPv4Address, IPv4Address], tuple[int, set[int]]] = {}
        self.calls: list[str] = []

    def add_mfc(self, source, group, parent, oifs) -> None:
        self.mfc[(source, group)] = (parent, set(oifs))
        self.calls.append("add")

    def del_mfc(self, source, group) -> None:
        self.mfc.pop((source, group), None)
        self.calls.append("del")

    def sg_counters(self, source, group) -> tuple[int, int, int]:
        return (7, 700, 0)


def make(rpf: dict[IPv4Address, str | None]) -> tuple[MulticastFib, FakeMroute]:
    fake = FakeMroute()
    fib = MulticastFib(fake, VIFS.get, lambda s: rpf.get(s),  # type: ignore[arg-type]
                       Log("t", stream=io.StringIO()))
    return fib, fake


def test_nocache_installs_with_the_rpf_parent_and_group_oifs() -> None:
    rpf = {S: "GigabitEthernet0/1/3"}
    fib, fake = make(rpf)
    fib.set_group_oifs(G, frozenset({"Eth-Trunk1"}))
    fib.upcall(Upcall(IGMPMSG_NOCACHE, 0, S, G))
    assert fake.mfc[(S, G)] == (0, {1})
    # a group without state: installed with no outgoing interface (the kernel drops it)
    other = IPv4Address("239.9.9.9")
    fib.upcall(Upcall(IGMPMSG_NOCACHE, 0, S, other))
    assert fake.mfc[(S, other)] == (0, set())
    # the group's interfaces change: every (S,G) follows; the incoming one is never an oif
    fib.set_group_oifs(G, frozenset({"Eth-Trunk1", "GigabitEthernet0/1/3"}))
    assert fake.mfc[(S, G)] == (0, {1})
    fib.set_group_oifs(G, frozenset())
    assert fake.mfc[(S, G)] == (0, set())


def test_rpf_moves_and_no_route() -> None:
    rpf = {S: "GigabitEthernet0/1/3"}
    fib, fake = make(rpf)
    fib.set_group_oifs(G, frozenset({"Eth-Trunk1"}))
    fib.upcall(Upcall(IGMPMSG_NOCACHE, 0, S, G))
    rpf[S] = "GigabitEthernet0/1/1"
    fib.upcall(Upcall(IGMPMSG_WRONGVIF, 2, S, G))
    assert fake.mfc[(S, G)] == (2, {1})
    rpf[S] = None
    fib.rpf_changed()
    assert (S, G) not in fake.mfc
    rows = fib.rows()
    assert rows[0]["upstream_interface"] is None and rows[0]["packets"] == 7
    text = render_multicast_routing_table(rows)
    assert "(10.0.5.100, 239.1.1.1)" in text and "Upstream Interface: NULL" in text
    fib.remove_all()
    assert fake.mfc == {} and fib.entries == {}
