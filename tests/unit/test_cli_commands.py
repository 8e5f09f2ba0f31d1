from __future__ import annotations

import json

import pytest

from daemon.cli.commands import CommandError, CommandTable
from daemon.cli.server import execute
from daemon.log import Log


def table() -> CommandTable:
    t = CommandTable()
    t.add("display interface brief", lambda a, j: ("brief", a, j))
    t.add("display ip interface brief", lambda a, j: ("ip", a, j))
    t.add("display eth-trunk", lambda a, j: ("trunk", a, j))
    t.add("display eth-trunk <1-64>", lambda a, j: ("trunk", a, j))
    t.add("display e-trunk <1-16>", lambda a, j: ("etrunk", a, j))
    t.add("display igmp group interface <ifname>", lambda a, j: ("igmp", a, j))
    return t


@pytest.mark.parametrize(("line", "expected"), [
    ("display interface brief", ("brief", [], False)),
    ("dis int br", ("brief", [], False)),
    ("DISPLAY Interface BRIEF", ("brief", [], False)),
    ("display eth-trunk", ("trunk", [], False)),
    ("display eth-trunk 1", ("trunk", [1], False)),
    ("dis igmp group interface eth-trunk1", ("igmp", ["Eth-Trunk1"], False)),
    ("dis igmp group interface GE0/1/2", ("igmp", ["GigabitEthernet0/1/2"], False)),
])
def test_match(line: str, expected: tuple) -> None:
    assert table().run(line) == expected


@pytest.mark.parametrize(("line", "reason", "caret_col"), [
    ("display nonsense", "Unrecognized command", 8),
    ("show interface", "Unrecognized command", 0),
    ("display interface", "Incomplete command", 18),
    ("display e", "Ambiguous command", 8),
    ("display eth-trunk 65", "Wrong parameter", 18),
    ("display eth-trunk x", "Wrong parameter", 18),
    ("dis igmp group interface Foo1", "Wrong parameter", 25),
])
def test_errors_point_at_the_bad_word(line: str, reason: str, caret_col: int) -> None:
    with pytest.raises(CommandError) as err:
        table().run(line)
    first, caret, message = str(err.value).split("\n")
    assert first == line
    assert caret.index("^") == caret_col
    assert message == f"Error: {reason} found at '^' position."


def test_server_execute_never_raises() -> None:
    t = table()
    log = Log("t", stream=open("/dev/null", "w"))  # noqa: SIM115
    assert execute(t, b'{"cmd": "dis int br"}', log)["ok"] is True
    for raw in (b"", b"\xff\xfe", b"[1,2]", b'{"cmd": 5}', b"{", b'{"cmd": "nope"}'):
        reply = execute(t, raw, log)
        assert reply["ok"] is False and reply["error"].startswith(("Error", "nope"))
    bad = CommandTable()
    bad.add("display boom", lambda a, j: 1 / 0)
    reply = execute(bad, json.dumps({"cmd": "display boom"}).encode(), log)
    assert reply == {"ok": False, "error": reply["error"]} and "ZeroDivisionError" in reply["error"]
