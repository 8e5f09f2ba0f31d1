"""Control-socket framing shared by the daemon and labctl.

One JSON object per line each way. Request: {"cmd": "display ...", "json": false}.
Reply: {"ok": true, "output": <text or JSON value>} or {"ok": false, "error": "<text>"}.
"""

from __future__ import annotations

import json
import socket
from typing import Any

MAX_LINE = 64 * 1024


class ControlError(Exception):
    """The daemon could not be reached or answered with an error."""


def encode(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def request(path: str, cmd: str, as_json: bool = False, timeout: float = 5.0) -> Any:
    """Run one command on a daemon (blocking client used by labctl and the tests)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(encode({"cmd": cmd, "json": as_json}))
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise ControlError(f"{path}: connection closed before the reply")
                buf += chunk
    except OSError as exc:
        raise ControlError(f"{path}: {exc.strerror or exc}") from exc
    reply = json.loads(buf)
    if not reply.get("ok"):
        raise ControlError(reply.get("error", "unknown error"))
    return reply["output"]
