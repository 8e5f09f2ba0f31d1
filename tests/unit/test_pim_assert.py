"""Asserts under virtual time (RFC 7761 4.6): two routers forwarding onto one link elect one.

The seed's routers through the real codec (tests/unit/test_pim_sg.SgLab). The other router
on a link is played by hand: its Asserts are fed to our router as they would arrive.
"""

from __future__ import annotations

import pytest

from daemon.pim.codec import INFINITE_ASSERT, Assert, AssertMetric, JoinPrune, Source, decode
from daemon.pim.machine import (
    ASSERT_OVERRIDE_INTERVAL,
    ASSERT_TIME,
    AssertState,
    SendPim,
    SgChanged,
)
from tests.unit.test_pim_machine import GE1, GE3, STAR, G, GroupEntry
from tests.unit.test_pim_sg import S, SgLab, a_receives_data, started

OTHER = "10.0.12.9"  # a second upstream router on D-A's link, played by hand


def asserts_sent(lab: SgLab, name: str, since: float = 0.0) -> list[Assert]:
    return [m for t, n, o in lab.log if n == name and t >= since and isinstance(o, SendPim)
            for m in [decode(o.payload)] if isinstance(m, Assert)]


def d_forwards_on_ge3(lab: SgLab) -> None:
    """A's (*,G) Join makes D (the RP) forward G onto GE3."""
    lab.do("A", "local_members", G, "Eth-Trunk1", True)
    lab.run_until(lab.now + 1)
    assert GE3 in lab.r["D"].oifs(G)


def sg_events(lab: SgLab, name: str) -> list[SgChanged]:
    return [o for _, n, o in lab.log if n == name and isinstance(o, SgChanged)]


def feed(lab: SgLab, name: str, src: str, msg: Assert) -> None:
    lab.feed(name, lab.r[name].packet_received(GE3, src, msg, lab.now))


@pytest.fixture
def lab() -> SgLab:
    return started()


def test_data_on_an_outgoing_interface_asserts_and_the_better_metric_wins(lab: SgLab) -> None:
    d_forwards_on_ge3(lab)
    t = lab.now
    lab.do("D", "data_arrived", S, G, GE3)  # the kernel: G's packet came in on an output
    assert asserts_sent(lab, "D", t) == [Assert(G, S, AssertMetric(True, 0, 0))]
    state = lab.r["D"].snapshot(lab.now).asserts[0]
    assert (state.source, state.interface, state.state) == ("*", GE3, AssertState.WINNER)
    # the other router forwards S from the source's tree: SPT beats RPT, it wins for S
    feed(lab, "D", OTHER, Assert(G, S, AssertMetric(False, 10, 20)))
    sg = next(a for a in lab.r["D"].snapshot(lab.now).asserts if a.source == S)
    assert (sg.state, sg.winner, sg.interface) == (AssertState.LOSER, OTHER, GE3)
    assert sg_events(lab, "D")[-1] == SgChanged(S, G, GE1, frozenset())  # S: not on GE3
    assert lab.r["D"].oifs(G) == frozenset({GE3})  # other sources: still
    # it stops forwarding S and cancels: GE3 carries S again
    feed(lab, "D", OTHER, Assert(G, S, AssertMetric(False, INFINITE_ASSERT.preference,
                                                    INFINITE_ASSERT.metric)))
    assert [a.source for a in lab.r["D"].snapshot(lab.now).asserts] == ["*"]
    assert sg_events(lab, "D")[-1].present is False  # S follows the group again


def test_a_lost_assert_ends_with_its_timer_and_a_winner_refreshes(lab: SgLab) -> None:
    d_forwards_on_ge3(lab)
    feed(lab, "D", OTHER, Assert(G, "0.0.0.0", AssertMetric(True, 0, 0)))  # (*,G), higher
    assert lab.r["D"].snapshot(lab.now).asserts[0].state is AssertState.LOSER
    assert lab.r["D"].oifs(G) == frozenset()
    lab.run_until(lab.now + ASSERT_TIME + 1)  # no refresh from the winner
    assert lab.r["D"].snapshot(lab.now).asserts == ()
    assert lab.r["D"].oifs(G) == frozenset({GE3})
    # as winner (an inferior Assert: an RPT one with a worse address), D re-asserts in time
    t = lab.now
    feed(lab, "D", "10.0.12.1", Assert(G, S, AssertMetric(True, 0, 0)))
    assert asserts_sent(lab, "D", t) == [Assert(G, "0.0.0.0", AssertMetric(True, 0, 0))]
    assert lab.r["D"].snapshot(lab.now).asserts[0].state is AssertState.WINNER
    lab.run_until(t + ASSERT_TIME - ASSERT_OVERRIDE_INTERVAL + 0.5)
    assert len(asserts_sent(lab, "D", t)) == 2
    assert lab.r["D"].oifs(G) == frozenset({GE3})


def test_ties_go_to_the_higher_address(lab: SgLab) -> None:
    d_forwards_on_ge3(lab)
    feed(lab, "D", "10.0.12.1", Assert(G, S, AssertMetric(True, 0, 0)))  # lower address
    assert lab.r["D"].snapshot(lab.now).asserts[0].state is AssertState.WINNER
    feed(lab, "D", OTHER, Assert(G, S, AssertMetric(True, 0, 0)))  # higher address
    assert lab.r["D"].snapshot(lab.now).asserts[0].state is AssertState.LOSER


def test_a_downstream_router_joins_toward_the_assert_winner(lab: SgLab) -> None:
    """On A's RPF interface toward S the Assert winner is RPF'(S,G): A's (S,G) Joins name it
    (A cannot assert there: it does not forward S onto its own RPF interface)."""
    a_receives_data(lab)
    t = lab.now + 0.001
    lab.run_until(t)
    feed(lab, "A", OTHER, Assert(G, S, AssertMetric(False, 5, 5)))
    assert lab.r["A"].snapshot(lab.now).asserts[0].winner == OTHER
    assert asserts_sent(lab, "A", t) == []
    sg_joins = [m for _, m in lab.jps("A", GE3, t)
                if any(s == Source(S) for e in m.groups for s in e.joins)]
    assert [m.upstream_neighbor for m in sg_joins] == [OTHER]  # at once
    lab.run_until(lab.now + 61)
    sg_joins = [m for _, m in lab.jps("A", GE3, t)
                if any(s == Source(S) for e in m.groups for s in e.joins)]
    assert len(sg_joins) == 2 and all(m.upstream_neighbor == OTHER for m in sg_joins)
    star = [m for _, m in lab.jps("A", GE3, t) if any(e.joins == STAR for e in m.groups)]
    assert star and all(m.upstream_neighbor == "10.0.12.2" for m in star)
    # the source's tree and the RP's part here: S is pruned off the RP's (4.5.8)
    assert all(e.prunes == (Source(S, rpt=True),) for m in star for e in m.groups)


def test_an_sg_win_keeps_the_source_where_the_rpt_assert_was_lost(lab: SgLab) -> None:
    """D lost (*,G) on GE3 to a router forwarding G from the RP's tree, but forwards S there
    from the source's tree (an (S,G) Join): the (S,G) Assert it wins keeps GE3 for S."""
    d_forwards_on_ge3(lab)
    feed(lab, "D", OTHER, Assert(G, "0.0.0.0", AssertMetric(True, 0, 0)))  # (*,G): D loses
    assert lab.r["D"].oifs(G) == frozenset()
    msg = JoinPrune("10.0.12.2", 210, (GroupEntry(G, joins=(Source(S),)),))
    lab.feed("D", lab.r["D"].packet_received(GE3, "10.0.12.1", msg, lab.now))
    assert [o for _, n, o in lab.log if n == "D" and isinstance(o, SgChanged)][-1] == \
        SgChanged(S, G, "GigabitEthernet0/1/1", frozenset({GE3}))
