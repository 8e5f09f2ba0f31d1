"""(S,G) and (S,G,rpt) state under virtual time: SPT switchover at a last-hop DR, downstream
(S,G) Joins and (S,G,rpt) Prunes, the Keepalive Timer, Prune(S,G,rpt) off the shared tree.

The seed's three routers wired through the real codec (tests/unit/test_pim_machine.Lab);
each router's route toward a source comes from a table, answered when it asks (WatchSource).
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from daemon.pim.codec import GroupEntry, JoinPrune, Source
from daemon.pim.machine import (
    KEEPALIVE_PERIOD,
    Output,
    PimConfig,
    PimRouter,
    SgChanged,
    UpstreamState,
    WatchSource,
)
from tests.unit.test_pim_machine import ADDR, ET, GE1, GE2, GE3, RP, STAR, G, Lab

S = "10.0.5.100"
# Route toward S: D is attached to the Source's LAN (GE1), A and B reach it through D.
TOWARD_S = {"A": (GE3, "10.0.12.2"), "B": (GE2, "10.0.23.2"), "D": (GE1, None)}


class SgLab(Lab):
    """Answers every WatchSource from `routes` (router -> source -> (interface, neighbor))."""

    def __init__(self) -> None:
        super().__init__()
        self.routes = {name: {S: rpf} for name, rpf in TOWARD_S.items()}
        self.watching: dict[str, set[str]] = {n: set() for n in self.r}

    def feed(self, name: str, outs: Iterable[Output]) -> None:
        for o in outs:
            if not isinstance(o, WatchSource):
                super().feed(name, [o])
                continue
            self.log.append((self.now, name, o))
            if o.watch:
                self.watching[name].add(o.source)
                self.do(name, "source_rpf", o.source, *self.routes[name][o.source])
            else:
                self.watching[name].discard(o.source)

    def sg_events(self, name: str) -> list[SgChanged]:
        return [o for _, n, o in self.log if n == name and isinstance(o, SgChanged)]

    def sg_jps(self, sender: str, ifname: str, since: float = 0.0) -> list[JoinPrune]:
        return [m for _, m in self.jps(sender, ifname, since)
                if any(not s.wildcard for e in m.groups for s in (*e.joins, *e.prunes))]


def started() -> SgLab:
    """The three routers up, every Hello out, every neighbor known."""
    lab = SgLab()
    lab.up()
    lab.run_until(10.0)
    return lab


@pytest.fixture
def sg_lab() -> SgLab:
    return started()


def a_receives_data(lab: SgLab) -> None:
    """A has a member on its trunk, is joined toward D, and S's first packet arrives."""
    lab.do("A", "local_members", G, ET, True)
    lab.run_until(11.0)
    lab.do("A", "data_arrived", S, G, GE3)


def test_a_last_hop_dr_joins_the_source_on_the_first_packet(sg_lab: SgLab) -> None:
    lab = sg_lab
    a_receives_data(lab)
    assert lab.watching["A"] == {S}
    jps = lab.sg_jps("A", GE3, 11.0)
    assert [(e.group, e.joins) for m in jps for e in m.groups] == [(G, (Source(S),))]
    assert jps[0].upstream_neighbor == "10.0.12.2"
    a = lab.r["A"].snapshot(lab.now).sources[0]
    assert (a.upstream_state, a.spt_bit, a.iif, a.oifs) == (UpstreamState.JOINED, True, GE3,
                                                            (ET,))
    # D (S attached) forwards S's packets on GE3 for the (S,G) Join; no (S,G,rpt) Prune
    # since A's paths to S and to the RP are one
    assert lab.sg_events("D")[-1] == SgChanged(S, G, GE1, frozenset({GE3}))
    d = lab.r["D"].snapshot(lab.now).sources[0]
    assert d.joined == (GE3,) and d.upstream_state is UpstreamState.NOT_JOINED
    assert not any(s.rpt for m in lab.sg_jps("A", GE3) for e in m.groups for s in e.prunes)


def test_the_spt_switch_can_be_disabled() -> None:
    lab = SgLab()
    cfg = lab.r["A"].config
    lab.r["A"] = PimRouter(PimConfig(cfg.router_id, RP, cfg.interfaces, spt_switch=False),
                           frozenset({"1.1.1.1"}))
    lab.up()
    lab.run_until(10.0)
    a_receives_data(lab)
    assert lab.watching["A"] == set() and lab.sg_jps("A", GE3) == []
    assert lab.r["A"].snapshot(lab.now).sources == ()


def test_the_source_is_pruned_when_its_data_stops_for_the_keepalive_period(
        sg_lab: SgLab) -> None:
    lab = sg_lab
    a_receives_data(lab)
    t0 = lab.now
    lab.run_until(t0 + 200.0)
    lab.do("A", "data_seen", S, G)  # the kernel's counters grew: still flowing
    lab.run_until(t0 + 300.0)
    assert lab.r["A"].snapshot(lab.now).sources[0].upstream_state is UpstreamState.JOINED
    refreshes = lab.sg_jps("A", GE3, t0 + 1)
    assert len(refreshes) >= 4  # periodic (S,G) Joins, one per 60 s
    lab.run_until(t0 + 200.0 + KEEPALIVE_PERIOD + 1)
    prunes = [e for m in lab.sg_jps("A", GE3, t0 + 400) for e in m.groups if e.prunes]
    assert [(e.group, e.prunes) for e in prunes] == [(G, (Source(S),))]
    assert lab.r["A"].snapshot(lab.now).sources == ()
    assert lab.r["D"].snapshot(lab.now).sources == ()
    assert lab.sg_events("D")[-1] == SgChanged(S, G, None, frozenset(), present=False)
    assert lab.watching == {"A": set(), "B": set(), "D": set()}


def jp(sender: str, ifname: str, *entries: GroupEntry) -> tuple[str, JoinPrune]:
    upstream = {"A": "10.0.12.2", "B": "10.0.23.2"}[sender]
    return ADDR[sender, ifname], JoinPrune(upstream, 210, entries)


def test_an_sg_join_adds_its_interface_for_that_source_only(sg_lab: SgLab) -> None:
    lab = sg_lab
    src, msg = jp("B", GE2, GroupEntry(G, joins=(Source(S),)))
    lab.feed("D", lab.r["D"].packet_received(GE2, src, msg, lab.now))
    assert lab.sg_events("D") == [SgChanged(S, G, GE1, frozenset({GE2}))]
    assert lab.r["D"].oifs(G) == frozenset()  # no (*,G) state came with it
    src, msg = jp("B", GE2, GroupEntry(G, prunes=(Source(S),)))
    lab.feed("D", lab.r["D"].packet_received(GE2, src, msg, lab.now))
    assert lab.sg_events("D")[-1].present is False
    assert lab.r["D"].snapshot(lab.now).sources == ()


def test_an_rpt_prune_takes_one_source_off_the_shared_tree(sg_lab: SgLab) -> None:
    lab = sg_lab
    for name, ifname in (("A", GE3), ("B", GE2)):
        src, msg = jp(name, ifname, GroupEntry(G, joins=STAR))
        lab.feed("D", lab.r["D"].packet_received(ifname, src, msg, lab.now))
    assert lab.r["D"].oifs(G) == frozenset({GE2, GE3})
    src, msg = jp("B", GE2, GroupEntry(G, joins=STAR, prunes=(Source(S, rpt=True),)))
    lab.feed("D", lab.r["D"].packet_received(GE2, src, msg, lab.now))
    assert lab.sg_events("D")[-1] == SgChanged(S, G, GE1, frozenset({GE3}))
    assert lab.r["D"].snapshot(lab.now).sources[0].rpt_pruned == (GE2,)
    # a (*,G) Join without the Prune(S,G,rpt) ends it (4.5.4, End of Message)
    src, msg = jp("B", GE2, GroupEntry(G, joins=STAR))
    lab.feed("D", lab.r["D"].packet_received(GE2, src, msg, lab.now))
    assert lab.r["D"].snapshot(lab.now).sources == ()
    assert lab.sg_events("D")[-1].present is False


def test_a_spt_off_the_shared_tree_prunes_the_source_from_it(sg_lab: SgLab) -> None:
    """A reaches the RP through D but S through B: once S's packets arrive on GE1 (the SPT
    bit), A takes the MFC's input there and sends Prune(S,G,rpt) to D with its (*,G) Join."""
    lab = sg_lab
    lab.routes["A"][S] = (GE1, "10.0.13.3")
    a_receives_data(lab)  # the first packet came down the shared tree, on GE3
    assert [e.joins for m in lab.sg_jps("A", GE1) for e in m.groups] == [(Source(S),)]
    a = lab.r["A"].snapshot(lab.now).sources[0]
    assert (a.spt_bit, a.iif) == (False, None)  # still fed by the shared tree
    t = lab.now
    lab.do("A", "data_arrived", S, G, GE1)  # the first packet down the SPT
    assert lab.sg_events("A")[-1] == SgChanged(S, G, GE1, frozenset({ET}))
    rpt = [e for m in lab.sg_jps("A", GE3, t) for e in m.groups]
    assert [(e.group, e.prunes) for e in rpt] == [(G, (Source(S, rpt=True),))]
    # D: S's packets to B (its (S,G) Join for A's), none down the shared tree to A
    assert lab.sg_events("D")[-1] == SgChanged(S, G, GE1, frozenset({GE2}))
    assert lab.r["D"].snapshot(lab.now).sources[0].rpt_pruned == (GE3,)
    b = lab.r["B"].snapshot(lab.now).sources[0]
    assert (b.joined, b.upstream_state, b.oifs) == ((GE1,), UpstreamState.JOINED, (GE1,))
    # every periodic (*,G) Join to D carries the Prune(S,G,rpt)
    lab.run_until(lab.now + 61.0)
    periodic = [m for _, m in lab.jps("A", GE3, t + 1)]
    assert periodic and all(e.joins == STAR and e.prunes == (Source(S, rpt=True),)
                            for m in periodic for e in m.groups)


def test_shutdown_prunes_the_sources_too(sg_lab: SgLab) -> None:
    lab = sg_lab
    a_receives_data(lab)
    t = lab.now
    lab.do("A", "shutdown")
    pruned = {(e.group, s) for _, m in lab.jps("A", GE3, t) for e in m.groups for s in e.prunes}
    assert pruned == {(G, STAR[0]), (G, Source(S))}
    assert lab.r["D"].snapshot(lab.now).sources == ()


def test_a_second_group_of_a_watched_source_takes_its_known_route(sg_lab: SgLab) -> None:
    lab = sg_lab
    a_receives_data(lab)
    lab.do("A", "local_members", "225.1.1.2", ET, True)
    lab.run_until(lab.now + 1)
    lab.do("A", "data_arrived", S, "225.1.1.2", GE3)
    assert [o for _, n, o in lab.log if n == "A" and isinstance(o, WatchSource)] == [
        WatchSource(S, True)]  # asked once
    second = next(s for s in lab.r["A"].snapshot(lab.now).sources if s.group == "225.1.1.2")
    assert (second.rpf_interface, second.upstream_state, second.iif) == (
        GE3, UpstreamState.JOINED, GE3)


def test_with_a_rate_threshold_the_switch_waits_for_the_rate() -> None:
    lab = SgLab()
    cfg = lab.r["A"].config
    lab.r["A"] = PimRouter(PimConfig(cfg.router_id, RP, cfg.interfaces, spt_threshold_kbps=64),
                           frozenset({"1.1.1.1"}))
    lab.up()
    lab.run_until(10.0)
    a_receives_data(lab)  # the first packet: not yet
    assert lab.sg_jps("A", GE3) == [] and lab.r["A"].snapshot(lab.now).sources == ()
    assert lab.r["A"].rate_watched_groups() == {G}
    lab.do("A", "rate_exceeded", S, G)  # the device measured S above 64 kbit/s
    jps = lab.sg_jps("A", GE3)
    assert [(e.group, e.joins) for m in jps for e in m.groups] == [(G, (Source(S),))]
    assert PimRouter(PimConfig(cfg.router_id, RP, cfg.interfaces)).rate_watched_groups() == set()
