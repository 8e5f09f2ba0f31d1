"""labctl: build, inspect and break the lab.

  labctl up [--topology PATH] [--name LAB]      build the lab and start the daemons
  labctl down [--name LAB]                      remove everything the lab created
  labctl status [--json]                        nodes, daemons and links
  labctl cli DEVICE [-c CMD ...] [--json]       a device's CLI (interactive without -c)
  labctl link down|up DEVICE IFNAME             pull or restore a cable at one end
  labctl daemon stop|kill|start|restart DEVICE  clean stop, crash, or (re)start a daemon
  labctl traffic send|recv NODE -- ARGS         measured traffic (python -m lab.traffic -h)
  labctl exec DEVICE -- CMD ...                 run a command in the node's namespace
  labctl capture DEVICE IFNAME [-w FILE|-]      tcpdump on the mapped interface
  labctl capture DEV:IF DEV:IF ... -w F.pcapng  several interfaces in one pcapng
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from daemon.cli.protocol import ControlError, request
from lab import netns
from lab.capture import Endpoint as CaptureEndpoint
from lab.capture import MultiCapture
from lab.frr import FrrError
from lab.ovs import OvsError
from lab.supervisor import DEFAULT_NAME, Lab, LabError, ProcRecord
from lab.topology import DEFAULT_TOPOLOGY, Topology, TopologyError, load_topology


def _progress(msg: str) -> None:
    print(msg, flush=True)


def _need_root() -> None:
    if os.geteuid() != 0:
        raise LabError("this command builds or enters network namespaces: run it as root")


def _lab_topology(lab: Lab) -> Topology:
    return load_topology(lab.state().topology)


def cmd_up(args: argparse.Namespace) -> int:
    _need_root()
    topo = load_topology(args.topology)
    lab = Lab(args.name)
    _progress(f"lab {lab.name}: building {topo.name} from {topo.path}")
    try:
        lab.up(topo, _progress)
    except BaseException:
        print(f"lab {lab.name}: bring-up failed; the half-built lab is left for inspection, "
              f"remove it with: labctl down --name {lab.name}", file=sys.stderr)
        raise
    print()
    print(render_status(status(lab, topo)))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    _need_root()
    t0 = time.monotonic()
    Lab(args.name).down(_progress)
    _progress(f"done in {time.monotonic() - t0:.2f} s")
    return 0


def status(lab: Lab, topo: Topology) -> dict:
    st = lab.state()
    procs: dict[str, ProcRecord] = {}
    for p in st.procs:  # a node's first process: its daemon, ovsdb-server, zebra
        procs.setdefault(p.node, p)
    nodes = []
    for node in topo.nodes.values():
        rec = procs.get(node.name)
        daemon = "-"
        if node.kind in ("ovs", "frr"):
            mine = [p for p in st.procs if p.node == node.name]
            answers = lab.ovs(node.name).ready if node.kind == "ovs" else lab.frr(node.name).ready
            daemon = ("dead" if not all(p.alive() for p in mine) else
                      "running" if answers() else "not answering")
        elif rec is not None:
            if not rec.alive():
                daemon = "dead"
            else:
                try:
                    request(rec.control or "", "display version", timeout=1.0)
                    daemon = "running"
                except ControlError:
                    daemon = "not answering"
        nodes.append({"node": node.name, "kind": node.kind, "namespace": lab.ns(node.name),
                      "pid": rec.pid if rec else None, "daemon": daemon,
                      "log": rec.log if rec else None})
    states = {}
    for node in topo.nodes:
        try:
            states[node] = netns.link_states(lab.ns(node))
        except Exception:  # a namespace removed behind our back shows as missing
            states[node] = {}
    links = []
    for a, b in topo.links:
        ends = []
        for e in (a, b):
            ls = states[e.node].get(e.linux)
            oper = "missing" if ls is None else (
                "up" if ls["admin_up"] and ls["carrier"] else
                ("down" if ls["admin_up"] else "admin-down"))
            ends.append({"node": e.node, "ifname": e.ifname, "linux": e.linux, "oper": oper})
        links.append(ends)
    return {"lab": lab.name, "topology": str(topo.path),
            "uptime_s": round(time.time() - st.created, 1),
            "nodes": nodes, "links": links}


def render_status(s: dict) -> str:
    lines = [f"lab {s['lab']} ({s['topology']}), up {s['uptime_s']:.0f} s", "",
             f"{'NODE':10}{'KIND':6}{'NAMESPACE':20}{'PID':>8}  DAEMON"]
    for n in s["nodes"]:
        lines.append(f"{n['node']:10}{n['kind']:6}{n['namespace']:20}"
                     f"{n['pid'] if n['pid'] else '-':>8}  {n['daemon']}")
    lines += ["", f"{'LINK END':34}{'LINUX':11}{'STATE':11}{'LINK END':34}{'LINUX':11}STATE"]
    for a, b in s["links"]:
        lines.append(f"{a['node'] + ':' + a['ifname']:34}{a['linux']:11}{a['oper']:11}"
                     f"{b['node'] + ':' + b['ifname']:34}{b['linux']:11}{b['oper']}")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    lab = Lab(args.name)
    s = status(lab, _lab_topology(lab))
    print(json.dumps(s, indent=1) if args.json else render_status(s))
    return 0 if all(n["daemon"] in ("-", "running") for n in s["nodes"]) else 1


def _control(lab: Lab, device: str) -> str:
    for p in lab.state().procs:
        if p.node == device and p.control:
            return p.control
    raise LabError(f"{device}: no daemon in lab {lab.name} "
                   f"(devices: {', '.join(p.node for p in lab.state().procs)})")


def _show(output: object, as_json: bool) -> None:
    print(json.dumps(output, indent=1) if as_json or not isinstance(output, str) else output)


def cmd_cli(args: argparse.Namespace) -> int:
    """VRP nodes answer on their daemon's control socket; Open vSwitch nodes through
    ovs-appctl/ovs-vsctl (lab/ovs.py says which command goes where), FRR nodes through vtysh
    (`show ip pim neighbor json` for FRR's JSON)."""
    lab = Lab(args.name)
    run: Callable[[str], object]
    as_json = args.json
    kind = lab.state().kinds.get(args.device)
    if kind == "frr":
        as_json = False
        run, errors, prompt_help = lab.frr(args.device).cli, (FrrError,), "vtysh commands"
    elif kind == "ovs":
        as_json = False  # OVS prints its own formats (`ovs-vsctl --format=json list ...`)
        ovs = lab.ovs(args.device)
        run, errors, prompt_help = ovs.cli, (OvsError,), "ovs-vsctl or ovs-appctl commands"
    else:
        path = _control(lab, args.device)
        run = partial(request, path, as_json=args.json)
        errors, prompt_help = (ControlError,), "type 'help' for commands"
    if args.command:
        rc = 0
        for cmd in args.command:
            try:
                _show(run(cmd), as_json)
            except errors as exc:
                print(exc, file=sys.stderr)
                rc = 1
        return rc
    return _interactive(args.device, run, errors, prompt_help, as_json)


def _interactive(device: str, run: Callable[[str], object], errors: tuple[type[Exception], ...],
                 prompt_help: str, as_json: bool) -> int:
    import readline

    history = Path.home() / ".ihb_lab_history"
    with contextlib.suppress(OSError):
        readline.read_history_file(history)
    print(f"{device}: {prompt_help}, 'quit' to leave")
    try:
        while True:
            try:
                line = input(f"<{device}>").strip()
            except EOFError:
                print()
                break
            if not line:
                continue
            if line in ("quit", "exit", "q"):
                break
            try:
                _show(run(line), as_json)
            except errors as exc:
                print(exc)
    except KeyboardInterrupt:
        print()
    finally:
        with contextlib.suppress(OSError):
            readline.write_history_file(history)
    return 0


def cmd_link(args: argparse.Namespace) -> int:
    _need_root()
    lab = Lab(args.name)
    end = _lab_topology(lab).endpoint(args.device, args.ifname)
    netns.set_link(lab.ns(end.node), end.linux, args.state == "up")
    print(f"{end} ({lab.ns(end.node)}/{end.linux}) set {args.state}")
    return 0


def cmd_daemon(args: argparse.Namespace) -> int:
    """stop/kill/start one device's daemon (a clean stop, a crash, a restart)."""
    _need_root()
    lab = Lab(args.name)
    if args.action in ("stop", "kill", "restart"):
        lab.stop_daemon(args.device, kill=args.action == "kill")
        print(f"{args.device}: daemon {'killed' if args.action == 'kill' else 'stopped'}")
    if args.action in ("start", "restart"):
        rec = lab.start_daemon(args.device, _progress)
        print(f"{args.device}: daemon running (pid {rec.pid})")
    return 0


def cmd_traffic(args: argparse.Namespace) -> int:
    """The measured traffic tools (lab/traffic.py) inside a node's namespace."""
    _need_root()
    ns = _node_ns(Lab(args.name), args.node)
    argv = [sys.executable, "-m", "lab.traffic", args.mode, *args.argv]
    os.execvp("ip", netns.exec_argv(ns, argv))
    return 127


def _node_ns(lab: Lab, device: str) -> str:
    topo = _lab_topology(lab)
    if device not in topo.nodes:
        raise LabError(f"no node {device!r} in lab {lab.name} (nodes: {', '.join(topo.nodes)})")
    return lab.ns(device)


def cmd_exec(args: argparse.Namespace) -> int:
    _need_root()
    argv = args.argv
    if not argv:
        raise LabError("exec: give the command after --, e.g. labctl exec DeviceA -- ip route")
    ns = _node_ns(Lab(args.name), args.device)
    os.execvp("ip", netns.exec_argv(ns, argv))
    return 127  # not reached


def _endpoint(topo: Topology, lab: Lab, node: str, ifname: str) -> CaptureEndpoint:
    """Any interface of a node, linked or not (Eth-Trunk1 too), by VRP or Linux name."""
    if node not in topo.nodes:
        raise LabError(f"no node {node!r} in lab {lab.name} (nodes: {', '.join(topo.nodes)})")
    if topo.nodes[node].kind in ("ovs", "frr"):
        with contextlib.suppress(TopologyError):  # a linked port, by VRP or Linux name
            end = topo.endpoint(node, ifname)
            return CaptureEndpoint(node, end.ifname, end.linux)
    if topo.nodes[node].kind != "vrp":
        return CaptureEndpoint(node, ifname, ifname)
    from daemon.config.ifnames import canonical, to_linux

    try:
        vrp = canonical(ifname)
        linux = to_linux(vrp) or "lo"
    except ValueError as exc:
        raise LabError(str(exc)) from exc
    return CaptureEndpoint(node, vrp, linux)


def cmd_capture(args: argparse.Namespace) -> int:
    """One endpoint: tcpdump in place (`-w -` streams into Wireshark). Several
    DEVICE:IFNAME endpoints: one pcapng with an interface per endpoint, until Ctrl-C or
    --duration. --scenario NAME: run that failover scenario once in its own lab with the
    story's captures, saved beside the benchmark results."""
    _need_root()
    if args.scenario:
        script = Path(__file__).resolve().parents[1] / "scripts" / "bench_failover.py"
        os.execv(sys.executable, [sys.executable, str(script), "--only", args.scenario,
                                  "-n", "1", "--capture"])
    lab = Lab(args.name)
    topo = _lab_topology(lab)
    specs = args.endpoints
    if not specs:
        raise LabError("capture: give DEVICE IFNAME, DEVICE:IFNAME ..., or --scenario NAME")
    if len(specs) == 2 and ":" not in specs[0] and ":" not in specs[1]:
        specs = [f"{specs[0]}:{specs[1]}"]  # the classic `capture DEVICE IFNAME` form
    eps = []
    for spec in specs:
        node, sep, ifname = spec.partition(":")
        if not sep:
            raise LabError(f"capture: {spec!r}: use DEVICE:IFNAME (e.g. DeviceA:GE0/1/2)")
        eps.append(_endpoint(topo, lab, node, ifname))
    if len(eps) == 1 and args.duration is None and not args.scenario:
        ep = eps[0]
        cmd = ["tcpdump", "-i", ep.linux, "-n"]
        cmd += ["-U", "-w", args.write] if args.write else ["-l", "-v"]
        cmd += args.filter
        print(f"capturing on {ep.node}:{ep.vrp} ({lab.ns(ep.node)}/{ep.linux})", file=sys.stderr)
        os.execvp("ip", netns.exec_argv(lab.ns(ep.node), cmd))
    if not args.write or args.write == "-":
        raise LabError("capture: several endpoints need -w FILE.pcapng")
    cap = MultiCapture(lab, eps, Path(args.write))
    cap.start()
    print(f"capturing on {', '.join(f'{e.node}:{e.vrp}' for e in eps)}"
          + (f" for {args.duration} s" if args.duration else "; Ctrl-C to stop"),
          file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        time.sleep(args.duration if args.duration else 10**9)
    n = cap.stop()
    print(f"wrote {n} packets to {args.write}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="labctl", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default=os.environ.get("LAB_NAME", DEFAULT_NAME),
                    help=f"lab name, the namespace prefix (default {DEFAULT_NAME}, or $LAB_NAME)")
    # --name is accepted before or after the subcommand (`labctl up --name t1`)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def _sub(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=[common])

    p = _sub("up", help="build the lab and start the daemons")
    p.add_argument("--topology", default=str(DEFAULT_TOPOLOGY))
    p.set_defaults(func=cmd_up)
    _sub("down", help="remove the lab").set_defaults(func=cmd_down)
    p = _sub("status", help="nodes, daemons and links")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = _sub("cli", help="a device's command line")
    p.add_argument("device")
    p.add_argument("-c", dest="command", action="append", help="run this command and exit")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_cli)
    p = _sub("link", help="pull (down) or restore (up) one end of a link")
    p.add_argument("state", choices=["down", "up"])
    p.add_argument("device")
    p.add_argument("ifname", help="VRP name, full or short (GigabitEthernet0/1/2, GE0/1/2)")
    p.set_defaults(func=cmd_link)
    p = _sub("daemon", help="stop (clean), kill (crash), start or restart one device's daemon")
    p.add_argument("action", choices=["stop", "kill", "start", "restart"])
    p.add_argument("device")
    p.set_defaults(func=cmd_daemon)
    p = _sub("traffic", help="paced sender / recording receiver in a node (lab/traffic.py)")
    p.add_argument("mode", choices=["send", "recv"])
    p.add_argument("node")
    p.set_defaults(func=cmd_traffic)
    p = _sub("exec", help="run a command in a node's namespace")
    p.add_argument("device")
    p.set_defaults(func=cmd_exec)
    p = _sub("capture", help="tcpdump on one or several device interfaces")
    p.add_argument("--scenario", help="capture one failover scenario (pull-ac, a-dies, ...)")
    p.add_argument("endpoints", nargs="*", metavar="DEVICE:IFNAME",
                   help="DEVICE IFNAME, or one or more DEVICE:IFNAME (one pcapng for all)")
    p.add_argument("-w", dest="write", help="output file, or - for stdout (one endpoint)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.set_defaults(filter=[])
    p.set_defaults(func=cmd_capture)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # everything after the first "--" is a command for `exec`, never labctl options
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    args = build_parser().parse_args(argv)
    args.argv = command
    try:
        return args.func(args)
    except (LabError, TopologyError, LookupError) as exc:
        print(f"labctl: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
