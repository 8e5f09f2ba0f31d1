"""`display bfd session all`, `display bfd session name NAME verbose` and their JSON forms."""

from __future__ import annotations

import json
from dataclasses import replace

from daemon.bfd.codec import BfdState, Diag
from daemon.bfd.display import (
    diag_name,
    render_session_all,
    render_session_verbose,
    session_json,
    sessions_json,
)
from daemon.bfd.machine import SessionSnapshot
from tests.unit.test_bfd_machine import up_pair

# DeviceA's session to DeviceB's loopback, Up at 10 ms x 3 (E-Trunk's BFD in the seed).
UP = SessionSnapshot(
    name="atob",
    multihop=True,
    state=BfdState.UP,
    remote_state=BfdState.UP,
    local_disc=8191,
    remote_disc=8192,
    static_remote_disc=True,
    local_diag=Diag.NONE,
    remote_diag=Diag.NONE,
    configured_min_tx_ms=10,
    configured_min_rx_ms=10,
    desired_min_tx_us=10_000,
    required_min_rx_us=10_000,
    remote_desired_min_tx_us=10_000,
    remote_required_min_rx_us=10_000,
    tx_interval_us=10_000,
    rx_interval_us=10_000,
    detect_time_us=30_000,
    local_detect_mult=3,
    remote_detect_mult=3,
    polling=False,
    remote_demand=False,
    packets_sent=1200,
    packets_received=1187,
    dropped={"bad-ttl": 2, "short": 1},
    tx_errors=0,
    up_transitions=1,
    down_transitions=0,
    last_change=100.0,
)

# A single-hop session that timed out and has not heard its peer since.
TIMED_OUT = replace(
    UP,
    name="toD",
    multihop=False,
    state=BfdState.DOWN,
    remote_state=BfdState.DOWN,
    local_disc=20,
    remote_disc=0,
    static_remote_disc=False,
    local_diag=Diag.CONTROL_DETECTION_TIME_EXPIRED,
    desired_min_tx_us=1_000_000,
    tx_interval_us=1_000_000,
    dropped={},
    up_transitions=1,
    down_transitions=1,
)

SESSION_ALL = """\
(w): State in WTR
(*): State is invalid
--------------------------------------------------------------------------------
Local      Remote     PeerIpAddr      State     Type        InterfaceName
--------------------------------------------------------------------------------
8191       8192       3.3.3.3         Up        S_MULTI_HOP -
20         -          10.0.12.2       Down      S_IP_IF     GigabitEthernet0/1/3
--------------------------------------------------------------------------------
     Total UP/DOWN Session Number : 1/1"""

VERBOSE_UP = """\
(w): State in WTR
(*): State is invalid
--------------------------------------------------------------------------------
  (Multi Hop) State : Up               Name : atob
--------------------------------------------------------------------------------
  Local Discriminator    : 8191            Remote Discriminator   : 8192
  Session Detect Mode    : Asynchronous Mode Without Echo Function
  BFD Bind Type          : Peer IP Address
  Bind Session Type      : Static
  Bind Peer IP Address   : 3.3.3.3
  Bind Source IP Address : 1.1.1.1
  Bind Interface         : -
  Min Tx Interval (ms)   : 10              Min Rx Interval (ms)   : 10
  Actual Tx Interval (ms): 10              Actual Rx Interval (ms): 10
  Local Detect Multi     : 3               Detect Interval (ms)   : 30
  Active Multi           : 3
  Destination Port       : 4784            TTL                    : 255
  Remote State           : Up
  Last Local Diagnostic  : No Diagnostic
  Last Remote Diagnostic : No Diagnostic
  Packets Sent           : 1200            Packets Received       : 1187
  Packets Dropped        : 3               Send Errors            : 0
  Dropped By Reason      : bad-ttl 2, short 1
  Session Up/Down Times  : 1/0
  Last State Change      : 01:01:05.250 ago
--------------------------------------------------------------------------------"""


def test_session_all_in_vrp_layout() -> None:
    entries = [(UP, "3.3.3.3", None), (TIMED_OUT, "10.0.12.2", "GigabitEthernet0/1/3")]
    assert render_session_all(entries) == SESSION_ALL


def test_session_all_with_no_sessions() -> None:
    assert render_session_all([]).splitlines()[-1] == "     Total UP/DOWN Session Number : 0/0"


def test_session_verbose_multihop() -> None:
    now = 100.0 + 3665.25
    assert render_session_verbose(UP, "3.3.3.3", "1.1.1.1", None, now=now) == VERBOSE_UP


def test_session_verbose_single_hop_timed_out() -> None:
    text = render_session_verbose(TIMED_OUT, "10.0.12.2", None, "GigabitEthernet0/1/3")
    lines = text.splitlines()
    assert "  (One Hop) State : Down             Name : toD" in lines
    assert "  BFD Bind Type          : Interface(GigabitEthernet0/1/3)" in lines
    assert "  Bind Interface         : GigabitEthernet0/1/3" in lines
    assert "  Bind Source IP Address : -" in lines
    assert "  Local Discriminator    : 20              Remote Discriminator   : -" in lines
    assert "  Actual Tx Interval (ms): 1000            Actual Rx Interval (ms): 10" in lines
    assert "  Destination Port       : 3784            TTL                    : 255" in lines
    assert "  Last Local Diagnostic  : Control Detection Time Expired" in lines
    assert "  Dropped By Reason      : -" in lines
    assert "  Session Up/Down Times  : 1/1" in lines
    assert "  Last State Change      : at 100.000" in lines  # no `now`: the clock reading


def test_session_verbose_before_the_peer_is_heard() -> None:
    fresh = replace(
        TIMED_OUT,
        rx_interval_us=0,
        detect_time_us=0,
        remote_detect_mult=0,
        last_change=None,
        local_diag=Diag.NONE,
    )
    lines = render_session_verbose(fresh, "10.0.12.2", None, None).splitlines()
    assert "  Actual Tx Interval (ms): 1000            Actual Rx Interval (ms): -" in lines
    assert "  Local Detect Multi     : 3               Detect Interval (ms)   : -" in lines
    assert "  Active Multi           : -" in lines
    assert "  Last State Change      : -" in lines
    assert "  BFD Bind Type          : Peer IP Address" in lines


def test_diag_names() -> None:
    assert diag_name(Diag.NEIGHBOR_SIGNALED_DOWN) == "Neighbor Signaled Session Down"
    assert diag_name(Diag.ADMIN_DOWN) == "Administratively Down"
    assert diag_name(7) == "Administratively Down"
    assert diag_name(20) == "Reserved (20)"


def test_json_forms() -> None:
    entries = [(UP, "3.3.3.3", None), (TIMED_OUT, "10.0.12.2", "GigabitEthernet0/1/3")]
    brief = sessions_json(entries)
    assert brief["total_up"] == 1 and brief["total_down"] == 1
    assert brief["sessions"][0] == {
        "name": "atob",
        "local_discriminator": 8191,
        "remote_discriminator": 8192,
        "peer_ip": "3.3.3.3",
        "state": "Up",
        "type": "S_MULTI_HOP",
        "interface": None,
    }
    assert brief["sessions"][1]["remote_discriminator"] is None
    detail = session_json(UP, "3.3.3.3", "1.1.1.1", None, now=160.0)
    assert detail["detect_time_us"] == 30_000 and detail["actual_tx_interval_us"] == 10_000
    assert detail["dropped_by_reason"] == {"bad-ttl": 2, "short": 1}
    assert detail["packets_dropped"] == 3
    assert detail["local_diag"] == {"code": 0, "name": "No Diagnostic"}
    assert detail["destination_port"] == 4784 and detail["source_ip"] == "1.1.1.1"
    assert detail["last_change_age_s"] == 60.0
    json.dumps([brief, detail])  # everything is plain JSON


def test_rendering_a_live_session() -> None:
    wire = up_pair()
    snap = wire.sessions["A"].snapshot()
    text = render_session_all([(snap, "3.3.3.3", None)])
    assert "8191       8192       3.3.3.3         Up        S_MULTI_HOP -" in text
    verbose = render_session_verbose(snap, "3.3.3.3", "1.1.1.1", None, now=wire.now)
    assert "  Actual Tx Interval (ms): 10              Actual Rx Interval (ms): 10" in verbose
    assert "  Local Detect Multi     : 3               Detect Interval (ms)   : 30" in verbose
