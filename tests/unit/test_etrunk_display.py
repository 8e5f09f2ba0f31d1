"""`display e-trunk N`: VRP's layout, column for column, and the JSON form."""

from __future__ import annotations

import json
import math
from dataclasses import replace

from daemon.etrunk.codec import ETrunkState, Flags, Member, MemberRole, WorkMode
from daemon.etrunk.display import etrunk_json, render_etrunk
from daemon.etrunk.machine import (
    Cause,
    ETrunkSnapshot,
    MemberCause,
    MemberSnapshot,
    PeerSnapshot,
)
from tests.unit.test_etrunk_machine import SYS_A, SYS_B, converged

PEER = PeerSnapshot(
    address="3.3.3.3",
    priority=100,
    system_id=SYS_B,
    hello_100ms=10,
    fail_100ms=200,
    state=ETrunkState.BACKUP,
    flags=Flags.BFD | Flags.REVERT,
    sequence=99,
    members=(Member(1, True, MemberRole.BACKUP),),
    heard_at=1199.0,
    expires_at=1219.0,
)

MEMBER = MemberSnapshot(
    trunk_id=1,
    mode=WorkMode.AUTO,
    phy_up=True,
    role=MemberRole.MASTER,
    cause=MemberCause.ETRUNK_MASTER,
    remote=Member(1, True, MemberRole.BACKUP),
    revert_at=None,
    attached=True,
    waiting_for_peer=False,
)

SNAP = ETrunkSnapshot(
    etrunk_id=1,
    priority=100,
    system_id=SYS_A,
    hello_100ms=10,
    fail_100ms=200,
    revert_delay_s=120,
    revert_enabled=True,
    track_bfd=True,
    bfd_up=True,
    upstream=True,
    running=True,
    state=ETrunkState.MASTER,
    cause=Cause.PRI,
    received=1200,
    sent=1201,
    rec_drop={},
    snd_drop=0,
    next_sequence=1234,
    peer=PEER,
    members=(MEMBER,),
)

EXPECTED = """\
                        The E-Trunk information
E-TRUNK-ID  : 1                       Revert-Delay-Time (s)   : 120
Priority    : 100                     System-ID               : 00e0-fc12-3455
Peer-IP     : 3.3.3.3                 Source-IP               : 1.1.1.1
State       : Master                  Causation               : PRI
Send-Period (100ms)   : 10            Fail-Time (100ms)       : 200
Receive     : 1200                    Send                    : 1201
RecDrop     : 0                       SndDrop                 : 0
Peer-Priority : 100                   Peer-System-ID          : 00e0-fc12-3456
Peer-Fail-Time (100ms) : 200          BFD-Session             : bfd1
BFD-State   : Up
--------------------------------------------------------------------------------
                       The Member information
Type       ID    LocalPhyState  Work-Mode   State    Causation        Remote-ID
Eth-Trunk  1     Up             auto        Master   ETRUNK_MASTER    1"""


def test_layout_matches_vrp() -> None:
    assert render_etrunk(SNAP, "3.3.3.3", "1.1.1.1", "bfd1", "Up") == EXPECTED


def test_unknown_peer_no_bfd_revert_disabled_and_drops() -> None:
    snap = replace(
        SNAP,
        peer=None,
        revert_enabled=False,
        state=ETrunkState.INIT,
        cause=Cause.INIT,
        rec_drop={"bad-digest": 3, "replay": 1},
        snd_drop=2,
        members=(
            replace(
                MEMBER,
                phy_up=False,
                role=MemberRole.BACKUP,
                cause=MemberCause.PEER_MEMBER_MASTER,
                mode=WorkMode.FORCE_BACKUP,
                remote=None,
            ),
            replace(MEMBER, trunk_id=12),
        ),
    )
    lines = render_etrunk(snap, "3.3.3.3", "1.1.1.1", None, None).splitlines()
    assert lines[1] == "E-TRUNK-ID  : 1                       Revert-Delay-Time (s)   : --"
    assert lines[4] == "State       : Init                    Causation               : INIT"
    assert lines[7] == "RecDrop     : 4                       SndDrop                 : 2"
    assert lines[8] == "Peer-Priority : --                    Peer-System-ID          : --"
    assert lines[9] == "Peer-Fail-Time (100ms) : --           BFD-Session             : --"
    assert lines[10] == "BFD-State   : --"
    assert lines[-2] == (
        "Eth-Trunk  1     Down           force-backup Backup   PEER_MEMBER_MASTER --"
    )
    assert lines[-1] == ("Eth-Trunk  12    Up             auto        Master   ETRUNK_MASTER    1")


def test_json_carries_the_same_and_more() -> None:
    data = etrunk_json(SNAP, "3.3.3.3", "1.1.1.1", "bfd1", "Up")
    json.dumps(data)  # serialisable
    assert data["state"] == "Master" and data["causation"] == "PRI"
    assert data["system_id"] == "00e0-fc12-3455" and data["revert_delay_s"] == 120
    assert (data["receive"], data["send"], data["rec_drop"], data["snd_drop"]) == (1200, 1201, 0, 0)
    assert data["peer"]["system_id"] == "00e0-fc12-3456"
    assert data["peer"]["flags"] == ["bfd", "revert"]
    assert data["peer"]["state"] == "Backup"
    (member,) = data["members"]
    assert member == {
        "type": "Eth-Trunk",
        "id": 1,
        "local_phy_state": "Up",
        "work_mode": "auto",
        "state": "Master",
        "causation": "ETRUNK_MASTER",
        "remote_id": 1,
        "remote": {"phy_state": "Up", "state": "Backup", "work_mode": "auto",
                   "attached": False},
        "attached": True,
        "waiting_for_peer": False,
        "revert_at": None,
    }
    held = replace(
        SNAP, peer=None, rec_drop={"replay": 2}, members=(replace(MEMBER, revert_at=math.inf),)
    )
    data = etrunk_json(held, "3.3.3.3", "1.1.1.1", None, None)
    json.dumps(data, allow_nan=False)
    assert data["peer"] is None and data["members"][0]["revert_at"] == "forever"
    assert data["rec_drop_by_reason"] == {"replay": 2}


def test_live_machines_render() -> None:
    lab = converged()
    a = render_etrunk(lab.machines["A"].snapshot(), "3.3.3.3", "1.1.1.1", None, None)
    b = render_etrunk(lab.machines["B"].snapshot(), "1.1.1.1", "3.3.3.3", None, None)
    assert "State       : Master                  Causation               : PRI" in a
    assert "State       : Backup                  Causation               : PRI" in b
    assert a.splitlines()[-1].split() == [
        "Eth-Trunk",
        "1",
        "Up",
        "auto",
        "Master",
        "ETRUNK_MASTER",
        "1",
    ]
    assert b.splitlines()[-1].split() == [
        "Eth-Trunk",
        "1",
        "Up",
        "auto",
        "Backup",
        "ETRUNK_BACKUP",
        "1",
    ]
    assert "Peer-System-ID          : 00e0-fc12-3455" in b
