"""Entry point: `python -m daemon --config DeviceA.cfg --control PATH [--routes FILE]`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from ipaddress import IPv4Address, IPv4Network

import trio

from daemon.config import ConfigError, load
from daemon.config.model import DeviceConfig
from daemon.device import Device
from daemon.kernel.links import Route
from daemon.kernel.watchdog import Watchdog
from daemon.log import Log


def load_routes(path: str | None) -> list[Route]:
    """Routes the lab computed for this device (JSON list of dst/via/dev/metric)."""
    if not path:
        return []
    with open(path) as f:
        data = json.load(f)
    return [Route(IPv4Network(r["dst"]), IPv4Address(r["via"]), r["dev"], int(r["metric"]))
            for r in data]


def physical_links(cfg: DeviceConfig) -> list[str]:
    """The Linux names of the device's ports: what goes down if the daemon dies."""
    return [itf.linux_name for itf in cfg.interfaces.values()
            if itf.kind.physical and itf.linux_name]


async def _main(device: Device, control: str, log: Log, watchdog: Watchdog) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(device.run, control)

            async def stop_on_signal() -> None:
                async for signum in signals:
                    log.info("stopping", signal=signal.Signals(signum).name)
                    await device.stop()
                    watchdog.disarm()  # a clean stop: the goodbyes went out, links stay up
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_signal)
    log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m daemon", description=__doc__)
    ap.add_argument("--config", required=True, help="VRP configuration file")
    ap.add_argument("--control", help="control socket path (default: none, with --check)")
    ap.add_argument("--routes", help="JSON routes computed by the lab")
    ap.add_argument("--log", help="log file (default: stderr)")
    ap.add_argument("--check", action="store_true", help="parse the config, report, and exit")
    args = ap.parse_args(argv)

    stream = open(args.log, "a", buffering=1) if args.log else sys.stderr  # noqa: SIM115
    try:
        cfg = load(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        Log("?", stream=stream).error("configuration rejected, not starting", error=str(exc))
        return 2
    log = Log(cfg.sysname, stream=stream)
    for unk in cfg.unknown:
        log.warning("unknown command ignored", where=f"{cfg.source}:{unk.line}",
                    view=unk.view, text=unk.text)
        if args.check:
            print(f"warning: {cfg.source}:{unk.line}: unknown command ignored: '{unk.text}'",
                  file=sys.stderr)
    if args.check:
        print(f"{cfg.source}: ok ({cfg.sysname}, {len(cfg.interfaces)} interfaces)")
        return 0
    if not args.control:
        ap.error("--control is required unless --check is given")
    try:
        routes = load_routes(args.routes)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: routes file {args.routes}: {exc}", file=sys.stderr)
        return 2
    log.info("starting", config=cfg.source, pid=os.getpid())
    # BFD runs in its own thread (daemon/bfdthread.py): let it have the interpreter within
    # 1 ms of asking, not the default 5 ms, whatever the main loop is doing
    sys.setswitchinterval(0.001)
    # From here on a death without a clean stop takes the device's links down (fail-stop).
    watchdog = Watchdog(physical_links(cfg), cfg.sysname, args.log)
    trio.run(_main, Device(cfg, log, routes), args.control, log, watchdog)
    return 0


if __name__ == "__main__":
    sys.exit(main())
