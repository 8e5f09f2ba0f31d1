"""Structured (logfmt) log lines, one event per line, so tests and the benchmark can grep them.

Every line carries a UTC timestamp with microseconds and a monotonic clock reading: the
benchmark lines daemon events up against packet arrivals with the monotonic value, which is
comparable across processes on one host.
"""

from __future__ import annotations

import datetime as _dt
import sys
import time
from typing import Any, TextIO


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\t\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class Log:
    """A logger bound to one device and component; `child()` narrows the component."""

    def __init__(self, device: str, comp: str = "daemon", stream: TextIO | None = None) -> None:
        self.device = device
        self.comp = comp
        self.stream = stream if stream is not None else sys.stderr

    def child(self, comp: str) -> Log:
        return Log(self.device, comp, self.stream)

    def _emit(self, level: str, msg: str, fields: dict[str, Any]) -> None:
        now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        parts = [
            f"ts={now}",
            f"mono={time.monotonic():.6f}",
            f"level={level}",
            f"dev={_quote(self.device)}",
            f"comp={_quote(self.comp)}",
            f"msg={_quote(msg)}",
        ]
        parts += [f"{k}={_quote(v)}" for k, v in fields.items()]
        try:
            self.stream.write(" ".join(parts) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or full log must never take the daemon down

    def info(self, msg: str, **fields: Any) -> None:
        self._emit("info", msg, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self._emit("warning", msg, fields)

    def error(self, msg: str, **fields: Any) -> None:
        self._emit("error", msg, fields)

    def debug(self, msg: str, **fields: Any) -> None:
        self._emit("debug", msg, fields)


def parse_line(line: str) -> dict[str, str]:
    """Split one logfmt line back into fields (used by tests and the benchmark)."""
    out: dict[str, str] = {}
    line = line.rstrip("\n")
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        eq = line.find("=", i)
        if eq < 0:
            break
        key = line[i:eq]
        i = eq + 1
        if i < n and line[i] == '"':
            i += 1
            buf = []
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    i += 1
                    buf.append("\n" if line[i] == "n" else line[i])
                else:
                    buf.append(line[i])
                i += 1
            i += 1
            out[key] = "".join(buf)
        else:
            end = line.find(" ", i)
            end = n if end < 0 else end
            out[key] = line[i:end]
            i = end
    return out
