"""The daemon's control socket: a Unix stream socket speaking daemon/cli/protocol.py.

Unix sockets live in the file system, not in a network namespace, so labctl reaches every
daemon by path from the root namespace. Clients are untrusted: oversized lines, bad JSON and
handler failures become error replies, never a crashed daemon.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket

import trio

from daemon.cli.commands import CommandError, CommandTable
from daemon.cli.protocol import MAX_LINE, encode
from daemon.log import Log


def execute(table: CommandTable, raw: bytes, log: Log) -> dict:
    """Turn one request line into one reply object."""
    try:
        req = json.loads(raw)
        if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
            raise ValueError("request must be an object with a string 'cmd'")
    except (ValueError, UnicodeDecodeError) as exc:
        return {"ok": False, "error": f"Error: malformed request ({exc})"}
    try:
        return {"ok": True, "output": table.run(req["cmd"], bool(req.get("json")))}
    except CommandError as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # a display bug must not kill the daemon
        log.error("command failed", cmd=req["cmd"], error=repr(exc))
        return {"ok": False, "error": f"Error: internal error running '{req['cmd']}': {exc!r}"}


async def _handle(stream: trio.SocketStream, table: CommandTable, log: Log) -> None:
    buf = b""
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        async with stream:
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    await stream.send_all(encode(execute(table, line, log)))
                if len(buf) > MAX_LINE:
                    await stream.send_all(encode({"ok": False, "error": "Error: line too long"}))
                    return


async def serve(path: str, table: CommandTable, log: Log,
                task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Listen on `path` (replacing a stale socket file) until cancelled, then remove it."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(path)
    os.chmod(path, 0o600)
    sock.listen(16)
    listener = trio.SocketListener(sock)
    try:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                stream = await listener.accept()
                nursery.start_soon(_handle, stream, table, log)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock.close()
