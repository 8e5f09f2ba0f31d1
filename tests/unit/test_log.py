from __future__ import annotations

import io

from daemon.log import Log, parse_line


def test_logfmt_round_trip() -> None:
    buf = io.StringIO()
    log = Log("DeviceA", stream=buf).child("lacp")
    log.info("port selected", port="GigabitEthernet0/1/2", note='say "hi"\nthere', n=3, e="")
    fields = parse_line(buf.getvalue().strip())
    assert fields["dev"] == "DeviceA" and fields["comp"] == "lacp"
    assert fields["msg"] == "port selected"
    assert fields["note"] == 'say "hi"\nthere'
    assert fields["n"] == "3" and fields["e"] == ""
    assert fields["level"] == "info"
    assert float(fields["mono"]) > 0


def test_log_survives_a_closed_stream() -> None:
    buf = io.StringIO()
    buf.close()
    Log("x", stream=buf).error("still fine")
