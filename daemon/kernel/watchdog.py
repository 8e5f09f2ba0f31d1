"""Fail-stop: when the daemon dies without a clean stop, the device's links go down.

A router whose control plane crashes is reset by its hardware watchdog: its ports drop, and
every neighbour sees carrier loss at once and moves its traffic. A lab daemon that dies
takes its forwarding state with it (the kernel flushes the MFC when the mroute socket
closes; nothing answers LACP, BFD or IGMP any more), yet its veths keep carrier, so a switch
would keep its member toward the dead device until its LACP partner timeout (90 s with the
slow timeout). Keeping the device forwarding instead (non-stop forwarding) is not possible
here: the multicast routes and the LAG data plane cannot outlive the process that owns the
mroute socket. So a crash is made fail-stop, as the hardware would make it.

The mechanism: the daemon starts this module as a child process holding the read end of a
pipe whose write end only the daemon holds. A clean stop writes "stop" and closes it, and
the watchdog exits without touching anything. Any other end of the daemon (SIGKILL, an
unhandled error) closes the write end with the process: the watchdog reads end-of-file
without "stop", sets the device's physical interfaces administratively down (the peers see
carrier loss within milliseconds), logs it, and exits. It never outlives the daemon by more
than that, and it touches only the interfaces it was given, in its own namespace. A restarted
daemon brings them up again from its configuration (`undo shutdown`).

Run as `python -m daemon.kernel.watchdog --fd N --device NAME [--log FILE] IFNAME...`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time

STOP = b"stop\n"


class Watchdog:
    """The daemon's side: spawn the watchdog for `links`; `disarm()` on a clean stop."""

    def __init__(self, links: list[str], device: str, log_path: str | None) -> None:
        read_end, self._write_end = os.pipe()  # both close-on-exec: nobody else inherits them
        argv = [sys.executable, "-m", "daemon.kernel.watchdog", "--fd", str(read_end),
                "--device", device]
        if log_path:
            argv += ["--log", log_path]
        self._proc = subprocess.Popen([*argv, "--", *links], pass_fds=(read_end,),
                                      stdin=subprocess.DEVNULL)
        os.close(read_end)

    def disarm(self) -> None:
        """A clean stop: tell the watchdog, and wait for it to go."""
        if self._write_end < 0:
            return
        with contextlib.suppress(OSError):  # it is gone already
            os.write(self._write_end, STOP)
        os.close(self._write_end)
        self._write_end = -1
        try:
            self._proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m daemon.kernel.watchdog", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fd", type=int, required=True, help="read end of the daemon's pipe")
    ap.add_argument("--device", required=True, help="the device's name, for the log")
    ap.add_argument("--log", help="the daemon's log file (default: stderr)")
    ap.add_argument("links", nargs="*", help="interfaces to take down if the daemon dies")
    args = ap.parse_args(argv)
    # A terminal's Ctrl-C or a stray SIGTERM to the daemon's process group must not make the
    # watchdog act or vanish early: only the pipe decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Everything slow (imports, the netlink socket, the lookups) before the wait, so acting
    # takes a millisecond.
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    from daemon.log import Log

    ipr = IPRoute()
    indexes = {name: found[0] for name in args.links if (found := ipr.link_lookup(ifname=name))}
    got = b""
    while chunk := os.read(args.fd, 64):
        got += chunk
    if got.startswith(STOP):
        ipr.close()
        return 0
    t0 = time.monotonic()
    done, failed = [], [name for name in args.links if name not in indexes]
    for name, index in indexes.items():
        try:
            ipr.link("set", index=index, state="down")
            done.append(name)
        except (NetlinkError, OSError):  # gone already (the lab is being torn down)
            failed.append(name)
    took_ms = round((time.monotonic() - t0) * 1000, 2)
    ipr.close()
    stream = open(args.log, "a", buffering=1) if args.log else sys.stderr  # noqa: SIM115
    Log(args.device, "watchdog", stream=stream).warning(
        "daemon died without a clean stop: links down (fail-stop)",
        links=",".join(done) or "-", missing=",".join(failed) or "-", took_ms=took_ms)
    return 0


if __name__ == "__main__":
    sys.exit(main())
