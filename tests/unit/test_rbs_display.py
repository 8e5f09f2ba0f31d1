"""`display remote-backup-service` / `remote-backup-profile` against the seed; JSON forms."""

from __future__ import annotations

import json
import time

import pytest

from daemon.rbs.codec import Op
from daemon.rbs.display import rbp_json, rbs_json, render_rbp, render_rbs
from daemon.rbs.machine import ConnState, PeerStatus, ProfileSpec
from tests.unit.test_rbs_machine import P1, A, B, Net, established_pair, key, make, value

# Verbatim from the seed (dual-device-igmp-hot-backup.md), the markdown indent removed.
SEED_RBS_A = """\
----------------------------------------------------------
 Service-Index    : 1
 Service-Name     : service1
 TCP-State        : connected
 Peer-ip          : 3.3.3.3
 Source-ip        : 1.1.1.1
 TCP-Port         : 1025
 Track-BFD        : --
 SSL-Policy-Name  : --
 SSL-State        : --
 Last up time     : 2018-05-29 03:21:36
----------------------------------------------------------"""

SEED_RBS_B = """\
----------------------------------------------------------
 Service-Index    : 1
 Service-Name     : service1
 TCP-State        : connected
 Peer-ip          : 1.1.1.1
 Source-ip        : 3.3.3.3
 TCP-Port         : 1025
 Track-BFD        : --
 SSL-Policy-Name  : --
 SSL-State        : --
 Last up time     : 2018-05-29 03:21:36
----------------------------------------------------------"""

# The same on DeviceA and DeviceB.
SEED_RBP = """\
 -----------------------------------------------
 Profile-Index        : 0x1000
 Profile-Name         : profile1
 Service              : igmp
 Remote-backup-service: service1
 Backup-ID            : 10
 track protocol       : E-TRUNK
     E-Trunk  ID      : 1
     Eth-trunk ID     : 1
 Interface            :
                        Eth-Trunk1
 Forwarding Configured: Slave Forwarding
 Backup mode          : hot
 Slot-Number          : --
 Card-Number          : --
 Port-Number          : --"""

SEED_PROFILE = {
    "name": P1,
    "index": 0x1000,
    "service_types": ["igmp"],
    "rbs": "service1",
    "backup_id": 10,
    "etrunk": 1,
    "eth_trunk": 1,
    "interfaces": ["Eth-Trunk1"],
    "peer_backup": "hot",
}


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


@pytest.fixture
def net() -> Net:
    return established_pair(entries=3)


def test_rbs_matches_the_seed_on_both_devices(net: Net) -> None:
    a = render_rbs(net.m[A].snapshot(), "service1", "3.3.3.3", "1.1.1.1", 1025, 1)
    b = render_rbs(net.m[B].snapshot(), "service1", "1.1.1.1", "3.3.3.3", 1025, 1)
    assert a.splitlines() == SEED_RBS_A.splitlines()
    assert b.splitlines() == SEED_RBS_B.splitlines()


def test_rbp_matches_the_seed_on_both_devices(net: Net) -> None:
    for x in (A, B):
        text = render_rbp(**SEED_PROFILE, snap=net.m[x].snapshot())
        assert text.splitlines() == SEED_RBP.splitlines()
    assert render_rbp(**SEED_PROFILE, snap=None) == SEED_RBP


def test_rbs_before_any_connection() -> None:
    text = render_rbs(make(A).snapshot(), "service1", "3.3.3.3", "1.1.1.1", 1025, 1)
    lines = text.splitlines()
    assert lines[3] == " TCP-State        : disconnected"
    assert lines[10] == " Last up time     : --"
    unconfigured = render_rbs(None, "service2", None, None, None, 2).splitlines()
    assert unconfigured[4:7] == [
        " Peer-ip          : --",
        " Source-ip        : --",
        " TCP-Port         : --",
    ]


def test_rbs_verbose_shows_counters_and_errors(net: Net) -> None:
    net.reset()
    net.run_for(1.0)
    text = render_rbs(net.m[A].snapshot(), "service1", "3.3.3.3", "1.1.1.1", 1025, 1, verbose=True)
    lines = text.splitlines()
    assert lines[:11] == SEED_RBS_A.splitlines()[:11]
    assert lines[-1] == "-" * 58
    assert " Channel-State    : ESTABLISHED" in lines
    assert " TCP-Role         : connect" in lines
    assert " Peer-device      : DeviceB" in lines
    assert " Last down reason : io-error" in lines
    assert " Batches sent     : 2" in lines
    assert " Connections      : 2" in lines
    assert " Reconnects       : 1" in lines
    assert " Errors           : 1" in lines
    assert "   io-error       : 1" in lines


def test_rbp_verbose_shows_sync_state(net: Net) -> None:
    lines = render_rbp(**SEED_PROFILE, snap=net.m[B].snapshot(), verbose=True).splitlines()
    assert lines[:16] == SEED_RBP.splitlines()
    assert lines[16:] == [
        " Sync state           : synced",
        " Sync role            : receiver",
        " Local entries        : 0",
        " Remote entries       : 3",
        " Unacked records      : 0",
        " Queued changes       : 0",
        " Batches sent         : 0",
        " Batches received     : 1",
        " Remote entry aging   : no",
    ]


def test_rbp_shows_a_mismatch_without_verbose() -> None:
    net = Net(make(A), make(B, [ProfileSpec(P1, 11)]))
    net.start()
    snap = net.m[A].snapshot()
    assert snap.profiles[0].peer_status is PeerStatus.MISMATCH
    lines = render_rbp(**SEED_PROFILE, snap=snap).splitlines()
    assert lines[:16] == SEED_RBP.splitlines()
    (extra,) = lines[16:]
    assert extra.startswith(" Sync state           : mismatch (profile profile1 backup-id 10")
    assert "backup-id 11" in extra and "DeviceB" in extra


def test_rbp_without_etrunk_or_interfaces() -> None:
    text = render_rbp(P1, 0x1001, ["igmp"], None, None, None, None, [], None, None)
    assert text.splitlines()[1:] == [
        " Profile-Index        : 0x1001",
        " Profile-Name         : profile1",
        " Service              : igmp",
        " Remote-backup-service: --",
        " Backup-ID            : --",
        " track protocol       : --",
        " Interface            :",
        " Forwarding Configured: Slave Forwarding",
        " Backup mode          : --",
        " Slot-Number          : --",
        " Card-Number          : --",
        " Port-Number          : --",
    ]


def test_json_forms(net: Net) -> None:
    net.change(A, Op.ADD, key(9), value(9))
    snap = net.m[B].snapshot()
    doc = json.loads(json.dumps(rbs_json(snap, "service1", "1.1.1.1", "3.3.3.3", 1025, 1)))
    assert doc["tcp_state"] == "connected" and doc["last_up_time"] == "2018-05-29 03:21:36"
    assert (doc["peer_ip"], doc["source_ip"], doc["tcp_port"]) == ("1.1.1.1", "3.3.3.3", 1025)
    assert doc["channel_state"] == ConnState.ESTABLISHED.name and doc["tcp_role"] == "listen"
    assert doc["counters"]["batches_received"] == 1
    assert doc["profiles"][0]["remote_entries"] == 4
    prof = json.loads(json.dumps(rbp_json(**SEED_PROFILE, snap=snap)))
    assert prof["profile_index"] == "0x1000" and prof["interfaces"] == ["Eth-Trunk1"]
    assert prof["sync"]["peer_status"] == "synced" and prof["sync"]["role"] == "receiver"
    assert rbp_json(**SEED_PROFILE, snap=None)["sync"] is None
    assert rbs_json(None, "s", None, None, None, 1)["profiles"] == []
