"""Device: builds one router's or switch's components from its configuration and wires them.

This is the one place that knows how the parts relate. Protocol packages never import each
other; their events meet here.
"""

from __future__ import annotations

import hashlib
import time
from ipaddress import IPv4Interface

import trio

from daemon.cli import server
from daemon.cli.commands import CommandError, CommandTable
from daemon.cli.ifdisplay import IfRow, render_interface_brief, render_ip_interface_brief
from daemon.config import DeviceConfig, render
from daemon.config.model import Interface, InterfaceKind
from daemon.kernel.lag import Lag
from daemon.kernel.links import LinkState, LinkWatcher, Netlink, NetlinkError, Route
from daemon.kernel.nft import Nft
from daemon.kernel.packet import PacketPort
from daemon.kernel.vlan import VlanBridge
from daemon.lacp import (
    DistributingChanged,
    LacpTrunk,
    Output,
    PortChanged,
    PortConfig,
    Role,
    TrunkConfig,
    state_bits,
)
from daemon.lacp.display import (
    eth_trunk_json,
    lacp_statistics_json,
    render_eth_trunk,
    render_lacp_statistics,
)
from daemon.lacp.service import LacpService
from daemon.log import Log

LOOPBACK_KEEP = [IPv4Interface("127.0.0.1/8")]
# LACP port key = trunk ID in the high byte, a member speed code in the low one: the seed
# shows 305 (0x131) for GE members of Eth-Trunk1.
SPEED_CODE = {InterfaceKind.GE: 0x31, InterfaceKind.XGE: 0x32}
ETRUNK_PORT_OFFSET = 0x8000


def device_mac(sysname: str) -> bytes:
    """A stable per-device MAC (Huawei OUI + a hash of the name) for the LACP system ID of
    trunks outside an E-Trunk: veth MACs change with every lab, the device's identity must not.
    """
    return bytes.fromhex("00e0fc") + hashlib.sha256(sysname.encode()).digest()[:3]


class EthTrunk:
    """One Eth-Trunk: LACP on its members' packet sockets driving its LAG data plane."""

    def __init__(self, device: Device, itf: Interface) -> None:
        self.device = device
        self.itf = itf
        self.number = int(itf.name.removeprefix("Eth-Trunk"))
        self.members = device.cfg.eth_trunk_members(self.number)
        self.linux = {m.name: m.linux_name or "" for m in self.members}
        self.log = device.log.child("lacp")
        self.lag = Lag(device.nl.ipr, device.nft, itf.linux_name or "", list(self.linux.values()))
        self.machine: LacpTrunk | None = None
        self.service: LacpService | None = None
        self.sockets: dict[str, PacketPort] = {}

    def _trunk_config(self) -> TrunkConfig:
        cfg = self.device.cfg
        etrunk = cfg.etrunks.get(self.itf.etrunk) if self.itf.etrunk is not None else None
        if etrunk is not None:
            # Both E-Trunk devices present one LACP system to the switch side.
            system = cfg.lacp_etrunk_system_id_bytes or device_mac(cfg.sysname)
            priority = cfg.lacp_etrunk_priority_effective
        else:
            system, priority = device_mac(cfg.sysname), cfg.lacp_priority_effective
        # Port numbers must differ across the two E-Trunk devices; the side with the higher
        # E-Trunk source address adds 0x8000 (a rule that does not move with roles).
        offset = 0
        if etrunk and etrunk.source_address and etrunk.peer_address and (
                etrunk.source_address > etrunk.peer_address):
            offset = ETRUNK_PORT_OFFSET
        ports = []
        for i, m in enumerate(self.members, start=1):
            link = self.device.links.get(self.linux[m.name])
            ports.append(PortConfig(
                name=m.name, port_number=offset + i,
                key=(self.number << 8) | SPEED_CODE.get(m.kind, 0x30),
                mac=link.mac if link else device_mac(m.name),
                port_priority=32768 if m.lacp_port_priority is None else m.lacp_port_priority))
        return TrunkConfig(
            trunk_id=self.number, system_priority=priority, system=system, ports=tuple(ports),
            least_active=self.itf.least_active_links or 1,
            max_active=self.itf.max_active_links or 16,
            fast_timeout=self.itf.lacp_timeout_fast)

    def build(self) -> None:
        """Kernel objects first (the logical interface must exist before addresses go on)."""
        missing = [vrp for vrp, linux in self.linux.items() if linux not in self.device.links]
        if missing:
            self.log.warning("trunk members without a Linux device", trunk=self.itf.name,
                             members=",".join(missing))
            self.members = [m for m in self.members if m.name not in missing]
            self.linux = {m.name: m.linux_name or "" for m in self.members}
            self.lag.members = list(self.linux.values())
        self.lag.create()
        if self.itf.trunk_mode == "lacp-static":
            self.machine = LacpTrunk(self._trunk_config())
        self.log.info("trunk built", trunk=self.itf.name, mode=self.itf.trunk_mode or "manual",
                      members=",".join(self.linux))

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the members' packet sockets (after they are up: a socket bound to a down port
        starts with ENETDOWN) and run LACP on them."""
        if self.machine is None:
            self._manual_update()
            task_status.started()
            return
        self.sockets = {vrp: PacketPort(linux) for vrp, linux in self.linux.items()}
        self.service = LacpService(self.machine, dict(self.sockets), self._on_output, self.log)
        await self.service.run(task_status=task_status)

    async def member_link(self, vrp: str, up: bool) -> None:
        if self.service is not None:
            await self.service.port_enabled(vrp, up)
        else:
            self._manual_update()

    async def set_role(self, role: Role) -> None:
        if self.service is not None:
            await self.service.set_role(role)

    def _manual_update(self) -> None:
        """Manual load balancing: every member with carrier distributes."""
        live = [linux for linux in self.linux.values()
                if (st := self.device.links.get(linux)) is not None and st.oper_up]
        self.lag.set_forwarding(set(live), live, len(live) >= (self.itf.least_active_links or 1))

    def _on_output(self, out: Output) -> None:
        if isinstance(out, DistributingChanged):
            dist = [self.linux[p] for p in self.members_order(out.ports)]
            coll = {self.linux[p] for p in out.collecting}
            try:
                self.lag.set_forwarding(coll, dist, out.up)
            except OSError as exc:
                self.log.error("data plane update failed", trunk=self.itf.name, error=str(exc))
            self.log.info("trunk forwarding", trunk=self.itf.name, up=out.up,
                          distributing=",".join(sorted(out.ports)) or "-",
                          collecting=",".join(sorted(out.collecting)) or "-")
        elif isinstance(out, PortChanged):
            self.log.info("port state", trunk=self.itf.name, port=out.port,
                          selected=out.selected, mux=out.mux,
                          actor=state_bits(out.actor_state),
                          partner=state_bits(out.partner_state))

    def members_order(self, ports: frozenset[str]) -> list[str]:
        """Distributing members in configuration order: every device hashes alike."""
        return [m.name for m in self.members if m.name in ports]

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()

    def destroy(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.lag.destroy()


class Device:
    def __init__(self, cfg: DeviceConfig, log: Log, routes: list[Route]) -> None:
        self.cfg = cfg
        self.log = log
        self.routes = routes
        self.nl = Netlink()
        self.nft = Nft()
        self.links: dict[str, LinkState] = {}
        self.started = time.time()
        self.trunks: dict[str, EthTrunk] = {}
        self.vlans: list[VlanBridge] = []
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

    async def _on_link(self, ifname: str, state: LinkState | None) -> None:
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
        vrp = self._vrp_name(ifname)
        for trunk in self.trunks.values():
            if vrp in trunk.linux:
                await trunk.member_link(vrp, state.oper_up)

    async def _on_overflow(self) -> None:
        self.log.warning("netlink event overflow, re-reading links")
        for name, st in self.nl.links().items():
            await self._on_link(name, st)

    def _build_switching(self) -> None:
        """Eth-Trunk data planes, then one bridge per VLAN for the `portswitch` ports."""
        for itf in self.cfg.interfaces.values():
            if itf.kind is InterfaceKind.ETH_TRUNK:
                trunk = EthTrunk(self, itf)
                trunk.build()
                self.trunks[itf.name] = trunk
        self.links = self.nl.links()
        by_vlan: dict[int, list[str]] = {}
        for itf in self.cfg.interfaces.values():
            if not itf.portswitch or itf.eth_trunk is not None or not itf.linux_name:
                continue
            if itf.link_type not in (None, "access"):
                self.log.warning("only access ports are switched (no 802.1Q on this kernel)",
                                 ifname=itf.name, link_type=itf.link_type)
                continue
            if itf.linux_name in self.links:
                by_vlan.setdefault(itf.default_vlan or 1, []).append(itf.linux_name)
        for vlan, ports in sorted(by_vlan.items()):
            bridge = VlanBridge(self.nl.ipr, vlan)
            bridge.create(ports)
            self.vlans.append(bridge)
            self.log.info("vlan bridge", vlan=vlan, bridge=bridge.name, ports=",".join(ports))

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
        c.add("display eth-trunk", self._cmd_eth_trunk, "LACP state of every Eth-Trunk")
        c.add("display eth-trunk <1-64>", self._cmd_eth_trunk, "LACP state of one Eth-Trunk")
        c.add("display lacp statistics eth-trunk <1-64>", self._cmd_lacp_stats,
              "LACPDUs sent/received/dropped per member")
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

    def _lacp_trunks(self, number: int | None) -> list[LacpTrunk]:
        found = [t.machine for t in self.trunks.values()
                 if t.machine is not None and number in (None, t.number)]
        if number is not None and not found:
            raise CommandError(f"Error: Eth-Trunk{number} does not exist or does not run LACP.")
        return found

    def _cmd_eth_trunk(self, args: list, as_json: bool):
        snaps = [m.snapshot() for m in self._lacp_trunks(args[0] if args else None)]
        return eth_trunk_json(snaps) if as_json else render_eth_trunk(snaps)

    def _cmd_lacp_stats(self, args: list, as_json: bool):
        snap = self._lacp_trunks(args[0])[0].snapshot()
        return lacp_statistics_json(snap) if as_json else render_lacp_statistics(snap)

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
            self.links = self.nl.links()
            self._build_switching()
            self._apply_interfaces()
            self._install_routes()
            async with trio.open_nursery() as nursery:
                for trunk in self.trunks.values():
                    await nursery.start(trunk.run)
                    for vrp, linux in trunk.linux.items():
                        st = self.links.get(linux)
                        await trunk.member_link(vrp, st is not None and st.oper_up)
                nursery.start_soon(watcher.run, self._on_link, self._on_overflow)
                await nursery.start(server.serve, control_path, self.commands, self.log)
                self.log.info("ready", control=control_path, interfaces=len(self.cfg.interfaces),
                              routes=len(self.routes), trunks=len(self.trunks))
                task_status.started()
        finally:
            self._cleanup()
            watcher.close()
            self.nl.close()
            self.nft.close()

    async def stop(self) -> None:
        """A clean stop's goodbyes, sent while the protocol tasks still run, so the peers
        take over at once instead of waiting for their timers."""
        with trio.move_on_after(2):
            for trunk in self.trunks.values():
                await trunk.stop()

    def _cleanup(self) -> None:
        """Remove the kernel objects this daemon created (also after a failed start)."""
        for trunk in self.trunks.values():
            try:
                trunk.destroy()
            except OSError as exc:
                self.log.error("trunk cleanup failed", trunk=trunk.itf.name, error=str(exc))
        for bridge in self.vlans:
            bridge.destroy()
