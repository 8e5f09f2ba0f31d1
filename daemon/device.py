"""Device: builds one router's or switch's components from its configuration and wires them.

This is the one place that knows how the parts relate. Protocol packages never import each
other; their events meet here.
"""

from __future__ import annotations

import time
from ipaddress import IPv4Interface

import trio

from daemon.cli import server
from daemon.cli.commands import CommandTable
from daemon.cli.ifdisplay import IfRow, render_interface_brief, render_ip_interface_brief
from daemon.config import DeviceConfig, render
from daemon.config.model import Interface, InterfaceKind
from daemon.kernel.links import LinkState, LinkWatcher, Netlink, NetlinkError, Route
from daemon.log import Log

LOOPBACK_KEEP = [IPv4Interface("127.0.0.1/8")]


class Device:
    def __init__(self, cfg: DeviceConfig, log: Log, routes: list[Route]) -> None:
        self.cfg = cfg
        self.log = log
        self.routes = routes
        self.nl = Netlink()
        self.links: dict[str, LinkState] = {}
        self.started = time.time()
        self.commands = CommandTable()
        self._register_commands()

    # ----- interfaces -------------------------------------------------------------------

    def _apply_interfaces(self) -> None:
        """Addresses and admin state from the configuration, on the devices that exist."""
        self.links = self.nl.links()
        for itf in self.cfg.interfaces.values():
            linux = itf.linux_name
            if linux is None:
                continue
            if linux not in self.links:
                if itf.kind.physical:
                    self.log.warning("configured interface has no Linux device", ifname=itf.name,
                                     linux=linux)
                continue
            wanted = [a for a in [itf.address, *itf.sub_addresses] if a is not None]
            keep = LOOPBACK_KEEP if itf.kind is InterfaceKind.LOOPBACK else []
            self.nl.sync_addresses(linux, wanted, keep)
            up = itf.admin_up or itf.kind is InterfaceKind.LOOPBACK
            self.nl.set_admin(linux, up)
            self.log.info("interface configured", ifname=itf.name, linux=linux,
                          admin="up" if up else "down",
                          address=" ".join(str(a) for a in wanted) or "-")
        self.links = self.nl.links()

    def _install_routes(self, dev: str | None = None) -> None:
        """(Re)install the lab-computed routes; the kernel drops them when a link goes down."""
        for route in self.routes:
            if dev is not None and route.dev != dev:
                continue
            link = self.links.get(route.dev)
            if link is None or not link.admin_up:
                continue
            try:
                self.nl.replace_route(route)
            except (NetlinkError, LookupError) as exc:
                self.log.warning("route not installed", dst=str(route.dst), via=str(route.via),
                                 dev=route.dev, error=str(exc))

    def _on_link(self, ifname: str, state: LinkState | None) -> None:
        old = self.links.get(ifname)
        if state is None:
            self.links.pop(ifname, None)
            self.log.info("link removed", linux=ifname)
            return
        self.links[ifname] = state
        if old is not None and (old.admin_up, old.carrier) == (state.admin_up, state.carrier):
            return
        self.log.info("link state", ifname=self._vrp_name(ifname), linux=ifname,
                      admin="up" if state.admin_up else "down",
                      carrier="up" if state.carrier else "down")
        if state.admin_up and (old is None or not old.admin_up):
            self._install_routes(ifname)

    def _on_overflow(self) -> None:
        self.log.warning("netlink event overflow, re-reading links")
        for name, st in self.nl.links().items():
            self._on_link(name, st)

    def _vrp_name(self, linux: str) -> str:
        for itf in self.cfg.interfaces.values():
            if itf.linux_name == linux:
                return itf.name
        return linux

    def interface_rows(self) -> list[IfRow]:
        rows = []
        for itf in self.cfg.interfaces.values():
            rows.append(self._row(itf))
        return rows

    def _row(self, itf: Interface) -> IfRow:
        member_of = f"Eth-Trunk{itf.eth_trunk}" if itf.eth_trunk is not None else None
        address = str(itf.address) if itf.address else "unassigned"
        if itf.kind in (InterfaceKind.LOOPBACK, InterfaceKind.NULL):
            return IfRow(itf.name, "up", "up(s)", address, itf.linux_name)
        link = self.links.get(itf.linux_name or "")
        if link is None:
            phy = "*down" if not itf.admin_up else "down"
            return IfRow(itf.name, phy, "down", address, itf.linux_name, member_of)
        phy = "up" if link.oper_up else ("down" if link.admin_up else "*down")
        if itf.address or itf.portswitch or member_of:
            proto = "up" if link.oper_up else "down"
        else:
            proto = "down"
        return IfRow(itf.name, phy, proto, address, itf.linux_name, member_of,
                     link.rx_errors, link.tx_errors)

    # ----- commands ---------------------------------------------------------------------

    def _register_commands(self) -> None:
        c = self.commands
        c.add("display current-configuration", self._cmd_current_config,
              "the running configuration as VRP text")
        c.add("display interface brief", self._cmd_interface_brief,
              "interfaces with PHY/protocol state and address")
        c.add("display ip interface brief", self._cmd_ip_interface_brief,
              "layer-3 interfaces (VRP layout)")
        c.add("display version", self._cmd_version, "daemon identity and uptime")
        c.add("help", self._cmd_help, "list commands")

    def _cmd_current_config(self, args: list, as_json: bool):
        text = render(self.cfg)
        return {"text": text} if as_json else text

    def _cmd_interface_brief(self, args: list, as_json: bool):
        self.links = self.nl.links()  # counters are read fresh
        rows = self.interface_rows()
        return [r.json() for r in rows] if as_json else render_interface_brief(rows)

    def _cmd_ip_interface_brief(self, args: list, as_json: bool):
        rows = self.interface_rows()
        return [r.json() for r in rows] if as_json else render_ip_interface_brief(rows)

    def _cmd_version(self, args: list, as_json: bool):
        info = {"sysname": self.cfg.sysname, "uptime_s": round(time.time() - self.started, 3),
                "config": self.cfg.source}
        if as_json:
            return info
        return (f"{info['sysname']}: igmp-hot-backup-lab daemon, config {info['config']}, "
                f"uptime {info['uptime_s']:.1f} s")

    def _cmd_help(self, args: list, as_json: bool):
        lines = self.commands.help_lines()
        return lines if as_json else "\n".join(lines)

    # ----- life cycle -------------------------------------------------------------------

    async def run(self, control_path: str,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        watcher = LinkWatcher()  # opened before the dump, so no event falls in between
        try:
            self._apply_interfaces()
            self._install_routes()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watcher.run, self._on_link, self._on_overflow)
                await nursery.start(server.serve, control_path, self.commands, self.log)
                self.log.info("ready", control=control_path, interfaces=len(self.cfg.interfaces),
                              routes=len(self.routes))
                task_status.started()
        finally:
            watcher.close()
            self.nl.close()
