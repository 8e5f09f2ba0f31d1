"""Device: builds one router's or switch's components from its configuration and wires them.

This is the one place that knows how the parts relate. Protocol packages never import each
other; their events meet here.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface

import trio

from daemon.bfd import BfdSession, BfdState, SessionConfig
from daemon.bfd import StateChanged as BfdStateChanged
from daemon.bfd.display import (
    render_session_all,
    render_session_verbose,
    session_json,
    sessions_json,
)
from daemon.bfd.service import BfdService
from daemon.bfdthread import BfdThread
from daemon.cli import server
from daemon.cli.commands import CommandError, CommandTable
from daemon.cli.ifdisplay import IfRow, render_interface_brief, render_ip_interface_brief
from daemon.config import DeviceConfig, render
from daemon.config.model import ETrunk as ETrunkCfg
from daemon.config.model import Interface, InterfaceKind, RemoteBackupProfile
from daemon.etrunk import Cause as ETrunkCause
from daemon.etrunk import (
    ETrunkConfig,
    ETrunkMachine,
    MemberConfig,
    MemberRoleChanged,
    sequence_origin,
)
from daemon.etrunk import Output as ETrunkOutput
from daemon.etrunk import StateChanged as ETrunkStateChanged
from daemon.etrunk.display import etrunk_json, render_etrunk
from daemon.etrunk.service import ETrunkService
from daemon.igmp import AdoptedGroup, EventKind, GroupEvent, IgmpConfig, IgmpInterface
from daemon.igmp.display import (
    RemoteGroup,
    igmp_group_json,
    igmp_interface_json,
    render_igmp_group,
    render_igmp_interface,
)
from daemon.igmp.service import IgmpService
from daemon.kernel.lag import Lag
from daemon.kernel.links import LinkState, LinkWatcher, Netlink, NetlinkError, Route
from daemon.kernel.mroute import (
    IGMPMSG_NOCACHE,
    IGMPMSG_WHOLEPKT,
    IGMPMSG_WRONGVIF,
    IgmpPacket,
    IgmpSender,
    MrouteSocket,
    PimSocket,
    Upcall,
)
from daemon.kernel.nft import Nft
from daemon.kernel.packet import PacketPort
from daemon.kernel.udp import BfdSockets, UdpEndpoint
from daemon.kernel.vlan import VlanBridge
from daemon.lacp import (
    DistributingChanged,
    LacpTrunk,
    Output,
    PartnerAttached,
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
from daemon.mfib import MulticastFib, render_multicast_routing_table
from daemon.pim import (
    REGISTER_IF,
    AssertChanged,
    MemberKind,
    Membership,
    NeighborChanged,
    OifsChanged,
    PimConfig,
    PimInterfaceConfig,
    PimRouter,
    SgChanged,
    WatchSource,
    pim_interface_json,
    pim_neighbor_json,
    pim_routing_table_json,
    render_pim_interface,
    render_pim_neighbor,
    render_pim_routing_table,
)
from daemon.pim import Output as PimOutput
from daemon.pim.service import PimService
from daemon.rbs import (
    FilterMode,
    HoldingsReceived,
    IgmpKey,
    IgmpValue,
    MirrorChanged,
    Mismatch,
    Op,
    PeerHolds,
    ProfileSpec,
    RbsChannel,
    should_listen,
)
from daemon.rbs import Output as RbsOutput
from daemon.rbs.display import rbp_json, rbs_json, render_rbp, render_rbs
from daemon.rbs.service import RbsService

LOOPBACK_KEEP = [IPv4Interface("127.0.0.1/8")]
# LACP port key = trunk ID in the high byte, a member speed code in the low one: the seed
# shows 305 (0x131) for GE members of Eth-Trunk1.
SPEED_CODE = {InterfaceKind.GE: 0x31, InterfaceKind.XGE: 0x32}
ETRUNK_PORT_OFFSET = 0x8000
KEEPALIVE_POLL_S = 10.0  # (S,G) traffic counters read this often (Keepalive Period 210 s)
UPCALL_BATCH = 256  # upcalls read in one go before PIM hears of them
SPT_RATE_POLL_S = 1.0  # with spt-switch-threshold RATE: sources' rates measured over this


def device_mac(cfg: DeviceConfig) -> bytes:
    """The device's own MAC identity: Huawei's OUI + the low three bytes of Loopback0 (or a
    hash of the name without one). It is the E-Trunk System-ID and the LACP system ID of
    trunks outside an E-Trunk: veth MACs change with every lab, a device's identity must not,
    and 1.1.1.1 -> 00e0-fc01-0101 reads back to the device at a glance."""
    lo = cfg.loopback_address()
    tail = lo.packed[1:] if lo is not None else hashlib.sha256(cfg.sysname.encode()).digest()[:3]
    return bytes.fromhex("00e0fc") + tail


def _derived_discriminator(name: str) -> int:
    """A stable non-zero local discriminator for a session configured without one."""
    return 1 + int.from_bytes(hashlib.sha256(name.encode()).digest()[:2], "big") % 16383


_BFD_STATE_NAMES = {BfdState.ADMIN_DOWN: "AdminDown", BfdState.DOWN: "Down",
                    BfdState.INIT: "Init", BfdState.UP: "Up"}


class _PeerUdp:
    """The E-Trunk transport: one UDP socket on the source address, talking to the peer."""

    def __init__(self, endpoint: UdpEndpoint, peer: str, port: int) -> None:
        self.endpoint, self.peer, self.port = endpoint, peer, port

    async def send(self, data: bytes) -> None:
        await self.endpoint.send_to(data, self.peer, self.port)

    async def recv(self) -> tuple[bytes, str]:
        data, src, _ttl = await self.endpoint.recv_from()
        return data, src


class _IgmpPort:
    """One IGMP interface's transport: queries out of its own socket, packets in from the
    namespace's mroute socket (the device's reader hands them over by arrival interface)."""

    INBOX = 4096

    def __init__(self, sender: IgmpSender) -> None:
        self.sender = sender
        self.inbox, self._outbox = trio.open_memory_channel[bytes](self.INBOX)
        self.overflow = 0

    def deliver(self, datagram: bytes) -> None:
        try:
            self.inbox.send_nowait(datagram)
        except trio.WouldBlock:
            self.overflow += 1  # a report storm faster than the machine: counted, not queued

    async def send(self, dst: str, payload: bytes) -> None:
        await self.sender.send(dst, payload)

    async def recv(self) -> bytes:
        return await self._outbox.receive()


class _PimPort:
    """PIM's transport: one raw socket for every `pim sm` interface, by VRP name."""

    def __init__(self, sock: PimSocket) -> None:
        self.sock = sock
        self.by_name: dict[str, tuple[int, str]] = {}  # VRP name -> (ifindex, our address)
        self.by_index: dict[int, str] = {}

    def add(self, vrp: str, ifindex: int, address: str) -> None:
        self.by_name[vrp] = (ifindex, address)
        self.by_index[ifindex] = vrp
        self.sock.join(ifindex)

    async def send(self, ifname: str | None, dst: str, payload: bytes) -> None:
        if ifname is None:  # a unicast Register or Register-Stop: the kernel routes it
            await self.sock.send(0, "0.0.0.0", dst, payload)
            return
        ifindex, address = self.by_name[ifname]
        await self.sock.send(ifindex, address, dst, payload)

    async def recv(self) -> tuple[bytes, str, str]:
        while True:
            payload, src, ifindex = await self.sock.recv()
            if ifindex in self.by_index:  # PIM on other interfaces is not ours to hear
                return payload, src, self.by_index[ifindex]


@dataclass
class ETrunk:
    cfg: ETrunkCfg
    machine: ETrunkMachine
    service: ETrunkService
    endpoint: UdpEndpoint


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
            system = cfg.lacp_etrunk_system_id_bytes or device_mac(cfg)
            priority = cfg.lacp_etrunk_priority_effective
        else:
            system, priority = device_mac(cfg), cfg.lacp_priority_effective
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
                mac=link.mac if link else device_mac(cfg),
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

    def member_link(self, vrp: str, up: bool) -> None:
        if self.service is not None:
            self.service.port_enabled(vrp, up)
        elif self.machine is None:
            self._manual_update()

    def set_role(self, role: Role) -> None:
        """The E-Trunk's verdict for this trunk; before LACP runs it just presets the role
        (no member is enabled yet, so there is nothing to send)."""
        if self.service is not None:
            self.service.set_role(role)
        elif self.machine is not None:
            self.machine.set_role(role, trio.current_time())

    def phy_up(self) -> bool:
        """E-Trunk's LocalPhyState: some member has carrier (whatever LACP made of it), so a
        backup member that is healthy but not aggregated still counts as up."""
        return any((st := self.device.links.get(linux)) is not None and st.oper_up
                   for linux in self.linux.values())

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
        elif isinstance(out, PartnerAttached):
            self.log.info("partner attached", trunk=self.itf.name, attached=out.attached)
            self.device.trunk_attached(self, out.attached)
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
        self.etrunks: dict[int, ETrunk] = {}
        self.bfd: BfdThread | None = None
        self.bfd_sockets = BfdSockets()
        self.mroute: MrouteSocket | None = None
        self.igmp: dict[str, IgmpService] = {}  # VRP interface name -> service
        self.igmp_ports: dict[int, _IgmpPort] = {}  # ifindex -> transport
        self.pim: PimService | None = None
        self.pim_port: _PimPort | None = None
        self.mfib: MulticastFib | None = None
        self.rpf: tuple[str | None, str | None, int] = (None, None, 0)  # toward the RP
        self._upstream = True  # a route toward the RP (as the E-Trunks were last told)
        self._rpf_cache: dict[IPv4Address, tuple[str | None, str | None, int]] = {}
        self._sources: set[str] = set()  # PIM's WatchSource: routes it is told about
        self.rbs: dict[str, RbsService] = {}  # remote-backup-service name -> service
        self.member_roles: dict[tuple[int, int], Role] = {}  # (E-Trunk, Eth-Trunk) -> role
        self._igmp_up: set[str] = set()  # IGMP interfaces that are up (querying)
        self._serving: set[str] = set()  # profiles whose groups we serve (RBS sender)
        self._handback: dict[tuple[int, int], bool] = {}  # as the E-Trunks were last told
        self._joined: dict[tuple[str, str], float] = {}  # (interface, group) -> JOIN time
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
        changed = old is None or old.oper_up != state.oper_up
        # Up: PIM first, so that it is DR there when IGMP adopts the backed-up groups (it
        # counts them where it is DR; the other order pruned them upstream for a moment).
        # Down: IGMP first, so that serving stops before PIM forgets the interface.
        if changed and state.oper_up:
            self._pim_changed(vrp, True)
        if vrp in self.igmp and changed:
            self._igmp_link(vrp, state.oper_up)
        if changed and not state.oper_up:
            self._pim_changed(vrp, False)
        for trunk in self.trunks.values():
            if vrp in trunk.linux:
                trunk.member_link(vrp, state.oper_up)
                self._member_phy(trunk)

    def _pim_changed(self, vrp: str, up: bool) -> None:
        self._rpf_cache.clear()
        self._pim_link(vrp, up)
        self._update_rpf()

    async def _resync_links(self, reason: str) -> None:
        """Re-read every link and act on what changed (at start, and after lost events)."""
        if reason == "overflow":
            self.log.warning("netlink event overflow, re-reading links")
        links = self.nl.links()
        for name in set(self.links) - set(links):
            await self._on_link(name, None)
        for name, st in links.items():
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

    # ----- multicast: mroute socket, IGMP ----------------------------------------------

    def _build_multicast(self) -> None:
        """The mroute socket, a VIF per `pim sm`/`igmp enable` interface, IGMP on the latter."""
        if not self.cfg.multicast_routing:
            return
        self.mroute = MrouteSocket()
        for itf in self.cfg.interfaces.values():
            if not (itf.igmp_enable or itf.pim_sm) or itf.linux_name not in self.links:
                continue
            ifindex = self.links[itf.linux_name].index
            self.mroute.add_vif(ifindex)
            if not itf.igmp_enable or itf.address is None:
                continue
            address = str(itf.address.ip)
            sender = IgmpSender(itf.linux_name, address)
            for group in ("224.0.0.22", "224.0.0.2"):  # v3 reports, v2 leaves
                sender.join(group, ifindex)
            port = _IgmpPort(sender)
            self.igmp_ports[ifindex] = port
            machine = IgmpInterface(IgmpConfig(ifname=itf.name, address=address,
                                               version=itf.igmp_version_effective))
            self.igmp[itf.name] = IgmpService(machine, port, self._on_group,
                                              self.log.child("igmp"))
        self.mroute.set_assert(True)
        self.mroute.set_pim(True)
        self.mfib = MulticastFib(self.mroute, self._vif_of, self._iif_for,
                                 self.log.child("mfib"))
        self._build_pim()

    def _build_pim(self) -> None:
        pim_itfs = [i for i in self.cfg.interfaces.values()
                    if i.pim_sm and i.address is not None and i.linux_name in self.links]
        if not pim_itfs:
            return
        self.pim_port = _PimPort(PimSocket())
        for itf in pim_itfs:
            self.pim_port.add(itf.name, self.links[itf.linux_name or ""].index,
                              str(itf.address.ip))  # type: ignore[union-attr]
        router_id = self.cfg.loopback_address() or pim_itfs[0].address.ip  # type: ignore[union-attr]
        rps = self.cfg.pim.static_rps if self.cfg.pim else []
        router = PimRouter(
            PimConfig(router_id=str(router_id), rp=str(rps[0]) if rps else None,
                      spt_switch=not (self.cfg.pim and self.cfg.pim.spt_switch_infinity),
                      spt_threshold_kbps=self.cfg.pim.spt_switch_kbps if self.cfg.pim else None,
                      interfaces=tuple(PimInterfaceConfig(
                          ifname=i.name, address=str(i.address.ip),  # type: ignore[union-attr]
                          secondary=tuple(str(a.ip) for a in i.sub_addresses))
                          for i in pim_itfs)),
            local_addresses=frozenset(str(a.ip) for i in self.cfg.interfaces.values()
                                      for a in [i.address, *i.sub_addresses] if a is not None),
            rng=random.Random())
        self.pim = PimService(router, self.pim_port, self._on_pim, self.log.child("pim"))
        if rps and self.mroute is not None:
            self.mroute.add_register_vif()

    def _vif_of(self, vrp: str) -> int | None:
        if vrp == REGISTER_IF:
            return self.mroute.register_vif if self.mroute is not None else None
        linux = self.cfg.interfaces[vrp].linux_name if vrp in self.cfg.interfaces else None
        link = self.links.get(linux or "")
        if link is None or self.mroute is None:
            return None
        return self.mroute.vifs.get(link.index)

    def _rpf_toward(self, addr: IPv4Address) -> tuple[str | None, str | None, int]:
        """(VRP interface, neighbor address or None when connected, the route's metric) from
        the kernel's routes.

        Cached until the next link event: an upcall burst (every group starting at once)
        must install its entries within the few packets the kernel queues per unresolved
        entry, not wait on a netlink round trip each."""
        if addr in self._rpf_cache:
            return self._rpf_cache[addr]
        found = self.nl.route_get(addr)
        result: tuple[str | None, str | None, int] = (None, None, 0)
        if found is not None and found[0] != "lo":
            linux, gw, metric = found
            result = (self._vrp_name(linux), str(gw) if gw else None, metric)
        self._rpf_cache[addr] = result
        return result

    def _iif_for(self, source: IPv4Address) -> str | None:
        """RPF interface of (S,G) traffic: toward the source on the RP, toward the RP else."""
        if self.pim is None:
            return self._rpf_toward(source)[0]
        if self.pim.router.is_rp or not self.cfg.pim or not self.cfg.pim.static_rps:
            return self._rpf_toward(source)[0]
        return self.rpf[0]

    def _update_rpf(self) -> None:
        """Routes may have moved with a link: re-point PIM's joins and the MFC entries, and
        tell the E-Trunks whether the streams can still reach us."""
        if self.pim is None or self.pim.router.is_rp or not self.cfg.pim or \
                not self.cfg.pim.static_rps:
            self._tell_source_routes()
            if self.mfib is not None:
                self.mfib.rpf_changed()
            return
        rp = self.cfg.pim.static_rps[0]
        rpf = self._rpf_toward(rp)
        if rpf[0] is not None and rpf[1] is None:  # the RP is on a connected subnet:
            rpf = (rpf[0], str(rp), rpf[2])  # it is RPF'(*,G) itself, Joins go to it
        self._tell_source_routes()
        if rpf != self.rpf:
            self.log.child("pim").info("rpf toward rp", interface=rpf[0] or "-",
                                       neighbor=rpf[1] or "-")
            self.rpf = rpf
            self.pim.rpf_changed(*rpf)
        if (rpf[0] is not None) != self._upstream:
            self._upstream = rpf[0] is not None
            self.log.child("etrunk").info("upstream " + ("up" if self._upstream else "down"),
                                          rp=str(self.cfg.pim.static_rps[0]))
            for et in self.etrunks.values():
                et.service.upstream(self._upstream)
        if self.mfib is not None:
            self.mfib.rpf_changed()

    def _pim_route(self, source: str) -> tuple[str | None, str | None, int]:
        """The route toward a source as PIM takes it: through a PIM interface, or none."""
        vrp, gw, metric = self._rpf_toward(IPv4Address(source))
        if self.pim_port is None or vrp not in self.pim_port.by_name:
            return None, None, 0
        return vrp, gw, metric

    def _tell_source_routes(self) -> None:
        """Routes may have moved: PIM gets the route toward every source it watches."""
        if self.pim is not None:
            for source in sorted(self._sources):
                self.pim.source_rpf(source, *self._pim_route(source))

    def _on_pim(self, out: PimOutput) -> None:
        if isinstance(out, OifsChanged):
            if self.mfib is not None:
                self.mfib.set_group_oifs(IPv4Address(out.group), out.oifs)
        elif isinstance(out, SgChanged):
            if self.mfib is not None:
                self.mfib.set_sg(IPv4Address(out.source), IPv4Address(out.group), out.iif,
                                 out.oifs, out.present)
        elif isinstance(out, AssertChanged):
            self.log.child("pim").info("assert", source=out.source, group=out.group,
                                       ifname=out.ifname, state=out.state.name.lower(),
                                       winner=out.winner or "-")
        elif isinstance(out, WatchSource):
            if out.watch:
                self._sources.add(out.source)
                if self.pim is not None:
                    self.pim.source_rpf(out.source, *self._pim_route(out.source))
            else:
                self._sources.discard(out.source)
        elif isinstance(out, NeighborChanged):
            self.log.child("pim").info("neighbor " + ("up" if out.up else "down"),
                                       ifname=out.ifname, neighbor=out.neighbor,
                                       reason=out.reason)

    def _pim_link(self, vrp: str, up: bool) -> None:
        if self.pim is not None and self.pim_port is not None and vrp in self.pim_port.by_name:
            if up:
                self.pim.interface_up(vrp)
            else:
                self.pim.interface_down(vrp)

    async def _mroute_reader(self) -> None:
        """IGMP packets and upcalls. A burst of upcalls (every group starting at once) is
        read whole and its MFC entries installed first: the kernel holds only 4 packets
        per unresolved entry (ipmr.c), so PIM's part (the switch to a source's tree) waits
        until every entry is in. Registering (a source on our subnet, decapsulated data on
        the register VIF) goes the other way round: PIM's (S,G) state must be there for
        the entry to send to, or take from, the register VIF."""
        assert self.mroute is not None
        while True:
            batch = [await self.mroute.recv()]
            while len(batch) < UPCALL_BATCH and (more := self.mroute.recv_nowait()) is not None:
                batch.append(more)
            later: list[Upcall] = []
            for msg in batch:
                if isinstance(msg, IgmpPacket):
                    port = self.igmp_ports.get(msg.ifindex)
                    if port is not None:
                        port.deliver(msg.datagram)
                elif self._on_upcall(msg):
                    later.append(msg)
            for up in later:
                self._pim_data(up)

    def _on_upcall(self, up: Upcall) -> bool:
        """Handle an upcall; True when PIM is still to hear of it (after the batch)."""
        if self.pim is not None and up.kind == IGMPMSG_WHOLEPKT:
            self.pim.whole_packet(up.packet)
            return False
        if self.pim is None or up.kind not in (IGMPMSG_NOCACHE, IGMPMSG_WRONGVIF):
            if self.mfib is not None:
                self.mfib.upcall(up)
            return False
        if self._registering(up):
            self._pim_data(up)
            if self.mfib is not None:
                self.mfib.upcall(up)
            return False
        if self.mfib is not None:
            self.mfib.upcall(up)
        return True

    def _arrival(self, up: Upcall) -> tuple[str | None, bool]:
        """(VRP interface the packet came in on, the source being on that subnet)."""
        ifname = self._vif_name(up.vif)
        vrp, gw, _ = self._rpf_toward(up.source)
        return ifname, ifname is not None and vrp == ifname and gw is None

    def _registering(self, up: Upcall) -> bool:
        ifname, connected = self._arrival(up)
        return ifname == REGISTER_IF or connected

    def _pim_data(self, up: Upcall) -> None:
        assert self.pim is not None
        ifname, connected = self._arrival(up)
        self.pim.data_arrived(str(up.source), str(up.group), ifname, connected=connected)

    def _vif_name(self, vif: int) -> str | None:
        """The VRP interface of a VIF number, if it is one of ours."""
        if self.mroute is None:
            return None
        if vif == self.mroute.register_vif:
            return REGISTER_IF
        for ifindex, number in self.mroute.vifs.items():
            if number == vif:
                linux = next((n for n, st in self.links.items() if st.index == ifindex), None)
                return self._vrp_name(linux) if linux else None
        return None

    async def _spt_rate_poller(self) -> None:
        """spt-switch-threshold RATE: each source of a group we have receivers for is
        measured on the kernel's byte counter; past the rate, PIM switches to its tree."""
        assert self.pim is not None and self.mfib is not None
        threshold = self.pim.router.config.spt_threshold_kbps or 0
        last: dict[tuple[IPv4Address, IPv4Address], tuple[float, int]] = {}
        while True:
            await trio.sleep(SPT_RATE_POLL_S)
            groups = self.pim.router.rate_watched_groups()
            now = trio.current_time()
            watched = [k for k in self.mfib.entries if str(k[1]) in groups]
            last = {k: v for k, v in last.items() if k in watched}  # gone entries forgotten
            for key in watched:
                nbytes = self.mfib.octets(*key)
                if nbytes is None:
                    continue
                before = last.get(key)
                last[key] = (now, nbytes)
                if before is not None and now > before[0]:
                    kbps = (nbytes - before[1]) * 8 / 1000 / (now - before[0])
                    if kbps >= threshold:
                        self.pim.rate_exceeded(str(key[0]), str(key[1]))

    async def _keepalive_poller(self) -> None:
        """(S,G) Keepalive Timers run while the kernel's packet counters grow: the daemon
        never sees the packets themselves."""
        assert self.pim is not None and self.mfib is not None
        last: dict[tuple[str, str], int] = {}
        while True:
            await trio.sleep(KEEPALIVE_POLL_S)
            sources = self.pim.router.keepalive_sources()
            last = {k: v for k, v in last.items() if k in sources}  # gone entries forgotten
            for source, group in sources:
                count = self.mfib.packets(IPv4Address(source), IPv4Address(group))
                if count is not None and count > last.get((source, group), 0):
                    self.pim.data_seen(source, group)
                if count is not None:
                    last[(source, group)] = count

    def _igmp_link(self, vrp: str, up: bool) -> None:
        """IGMP runs only while its interface is up (Eth-Trunk1 follows LACP). Serving the
        backed-up groups follows it: going up, IGMP starts first and then adopts them; going
        down, serving stops first, so the groups IGMP forgets are not reported to the peer
        as left (the hosts did not leave: the peer takes them over)."""
        self.log.child("igmp").info("interface " + ("up, querying" if up else "down, stopped"),
                                    ifname=vrp)
        if up:
            self._igmp_up.add(vrp)
            self.igmp[vrp].start()
            self._update_serving()
        else:
            self._igmp_up.discard(vrp)
            self._update_serving()
            self.igmp[vrp].stop()

    def _on_group(self, ev: GroupEvent) -> None:
        if ev.kind is not EventKind.REFRESH:
            self.log.child("igmp").info("group event", kind=ev.kind.name, ifname=ev.ifname,
                                        group=ev.group, mode=ev.mode,
                                        sources=",".join(sorted(ev.sources)) or "-",
                                        reporter=ev.reporter)
        key = (ev.ifname, ev.group)
        if ev.kind is EventKind.JOIN:
            self._joined[key] = ev.at
        elif ev.kind is EventKind.LEAVE:
            self._joined.pop(key, None)
        if self.pim is not None and ev.kind in (EventKind.JOIN, EventKind.LEAVE):
            self.pim.local_members(ev.group, ev.ifname, ev.kind is EventKind.JOIN)
        self._sync_group(ev)

    # ----- IGMP hot backup: RBS channel and RBP profiles --------------------------------

    def _build_rbs(self) -> None:
        for cfg in self.cfg.rbs.values():
            if cfg.peer is None or cfg.source is None or cfg.port is None:
                self.log.warning("remote-backup-service incomplete, not started", rbs=cfg.name)
                continue
            specs = [ProfileSpec(p.name, p.backup_id, tuple(p.service_types))
                     for p in self.cfg.rbp.values()
                     if p.rbs == cfg.name and p.backup_id is not None and p.service_types]
            listen = should_listen(cfg.source, cfg.peer)
            channel = RbsChannel(cfg.name, self.cfg.sysname, cfg.source, cfg.peer, specs,
                                 listen=listen)
            self.rbs[cfg.name] = RbsService(channel, cfg.source, cfg.peer, cfg.port, listen,
                                            self._on_rbs, self.log.child("rbs"))

    def _profiles(self, *, interface: str | None = None, etrunk: int | None = None,
                  trunk: int | None = None) -> list[RemoteBackupProfile]:
        """Profiles that sync IGMP over a running channel, filtered by what they bind."""
        out = []
        for p in self.cfg.rbp.values():
            if p.rbs not in self.rbs or "igmp" not in p.service_types:
                continue
            if interface is not None and self._profile_interface(p) != interface:
                continue
            if etrunk is not None and (p.etrunk, p.eth_trunk) != (etrunk, trunk):
                continue
            out.append(p)
        return out

    def _profile_interface(self, p: RemoteBackupProfile) -> str | None:
        """The Eth-Trunk the profile is applied under (`remote-backup-profile` in its view)."""
        for itf in self.cfg.interfaces.values():
            if itf.rbp == p.name:
                return itf.name
        return None

    def _sync_group(self, ev: GroupEvent) -> None:
        for p in self._profiles(interface=ev.ifname):
            key = IgmpKey(ev.ifname, IPv4Address(ev.group))
            if ev.kind is EventKind.LEAVE:
                self.rbs[p.rbs].local_change(p.name, Op.DELETE, key, None)
                continue
            joined = self._joined.get((ev.ifname, ev.group), ev.at)
            value = IgmpValue(FilterMode.INCLUDE if ev.mode == "include" else FilterMode.EXCLUDE,
                              tuple(sorted(IPv4Address(x) for x in ev.sources)),
                              IPv4Address(ev.reporter), int(max(0.0, ev.at - joined)))
            op = Op.ADD if ev.kind is EventKind.JOIN else Op.UPDATE
            self.rbs[p.rbs].local_change(p.name, op, key, value)

    def _should_serve(self, p: RemoteBackupProfile) -> bool:
        """We serve a profile's groups (and send them to the peer) while our member of its
        Eth-Trunk is master and IGMP runs on the interface the profile is applied to."""
        master = p.etrunk is None or p.eth_trunk is None or \
            self.member_roles.get((p.etrunk, p.eth_trunk)) == Role.MASTER
        return master and self._profile_interface(p) in self._igmp_up

    def _update_serving(self) -> None:
        """Start or stop serving every profile whose member role or interface moved."""
        for p in self._profiles():
            want = self._should_serve(p)
            if want and p.name not in self._serving:
                self._start_serving(p)
            elif not want and p.name in self._serving:
                self._stop_serving(p)
        self._update_handback()

    def _update_handback(self) -> None:
        """A member may hand its traffic back to the peer (the revert) only once the peer
        holds every group we serve for it: our batch and every change since acknowledged
        on the RBS channel. Otherwise the peer would take over with an old or empty copy."""
        for trunk in self.trunks.values():
            eid = trunk.itf.etrunk
            if eid is None or eid not in self.etrunks:
                continue
            ready = all(self._peer_holds(p)
                        for p in self._profiles(etrunk=eid, trunk=trunk.number))
            if self._handback.get((eid, trunk.number)) != ready:
                self._handback[(eid, trunk.number)] = ready
                self.etrunks[eid].service.handback_ready(trunk.number, ready)

    def _peer_holds(self, p: RemoteBackupProfile) -> bool:
        if p.name not in self._serving:
            return True  # nothing of ours to hand over
        rbs = self.rbs[p.rbs]
        snap = rbs.snapshot().profile(p.name)
        # a peer that has never served the profile (not configured there) is not waited for
        return rbs.peer_holds(p.name) or snap is None or not snap.ever_synced

    def _start_serving(self, p: RemoteBackupProfile) -> None:
        """Adopt the peer's entries as live groups (fresh timers; IGMP also sends a general
        query so the hosts refresh them at once), then become the sender: the batch that
        follows carries exactly what we now serve."""
        self._serving.add(p.name)
        interface = self._profile_interface(p) or ""
        mirror = self.rbs[p.rbs].mirror(p.name)
        self._adopt(p, interface, mirror, "serving backed-up groups")
        if p.peer_backup == "hot":  # local membership holds them now (adopt's JOINs)
            self._hot_backup([(str(k.group), k.interface, False) for k in mirror])
        self.rbs[p.rbs].set_role(p.name, True)

    def _stop_serving(self, p: RemoteBackupProfile) -> None:
        """Back to applying the peer's records: what we served becomes what we hold for the
        peer (it is what the peer serves next), and with `peer-backup hot` we keep joining
        upstream for it so the streams keep reaching us."""
        self._serving.discard(p.name)
        rbs = self.rbs[p.rbs]
        rbs.set_role(p.name, False)
        rbs.hand_over(p.name)
        if p.peer_backup == "hot":
            self._hot_backup([(str(k.group), k.interface, True) for k in rbs.mirror(p.name)])

    def _adopt(self, p: RemoteBackupProfile, interface: str,
               entries: dict[IgmpKey, IgmpValue], why: str) -> None:
        """Install the peer's entries for `interface` as local groups (those we do not have)."""
        svc = self.igmp.get(interface)
        if svc is None:
            return
        have = set(svc.machine.group_addresses())
        adopted = [AdoptedGroup(str(k.group), v.mode.name.lower(),
                                frozenset(str(x) for x in v.sources), str(v.last_reporter))
                   for k, v in entries.items()
                   if k.interface == interface and str(k.group) not in have]
        if adopted:
            self.log.child("rbs").info(why, profile=p.name, interface=interface,
                                       groups=len(adopted))
            svc.adopt(adopted)

    def _on_rbs(self, out: RbsOutput) -> None:
        log = self.log.child("rbs")
        if isinstance(out, PeerHolds):
            self._update_handback()
        elif isinstance(out, HoldingsReceived):
            p = self.cfg.rbp.get(out.profile)
            if p is not None and p.name in self._serving:  # we restarted and serve already
                self._adopt(p, self._profile_interface(p) or "", dict(out.entries),
                            "serving the groups the peer held for us")
        elif isinstance(out, Mismatch):
            log.error("backup-id mismatch, profile not synced", profile=out.profile,
                      detail=out.detail)
        elif isinstance(out, MirrorChanged):
            if out.cause == "peer":  # one line per change; a batch would flood the log
                log.info("backed-up group", op=out.op.name, cause=out.cause,
                         profile=out.profile, interface=out.key.interface,
                         group=str(out.key.group))
            p = self.cfg.rbp.get(out.profile)
            # While we serve, what the peer says only updates what we hold for it: after a
            # partition the side that keeps the role is the one the switch used (E-Trunk),
            # so its groups are the hosts' and the other side's are stale.
            if p is not None and p.name not in self._serving and p.peer_backup == "hot":
                self._hot_backup([(str(out.key.group), out.key.interface,
                                   out.op is not Op.DELETE)])

    def _hot_backup(self, changes: list[tuple[str, str, bool]]) -> None:
        """`peer-backup hot`: join upstream for the groups held for the peer and keep their
        MFC entries pointing at our (down) Eth-Trunk1, so forwarding starts the moment the
        trunk comes up, without any new control exchange."""
        if self.pim is not None and changes:
            self.pim.update_members(Membership(MemberKind.BACKUP, g, itf, present)
                                    for g, itf, present in changes)

    def remote_groups(self) -> list[RemoteGroup]:
        """Entries held from the peer, shown while this device applies (its member is backup).
        Once master it serves them as its own groups."""
        out = []
        for p in self._profiles():
            if p.name in self._serving:
                continue
            for k, v in self.rbs[p.rbs].mirror(p.name).items():
                out.append(RemoteGroup(k.interface, str(k.group), str(v.last_reporter),
                                       v.uptime_s, v.mode.name.lower(),
                                       frozenset(str(x) for x in v.sources)))
        return out

    # ----- E-Trunk and BFD -------------------------------------------------------------

    def _build_bfd(self) -> None:
        sessions = {}
        taken = {s.discriminator_local for s in self.cfg.bfd_sessions.values()
                 if s.discriminator_local is not None}
        for sess in self.cfg.bfd_sessions.values():
            source = sess.source_ip
            device = None
            if sess.interface is not None:
                itf = self.cfg.interface(sess.interface)
                device = itf.linux_name
                source = source or (itf.address.ip if itf.address else None)
            source = source or self.cfg.loopback_address()
            if source is None:
                self.log.error("bfd session has no source address, not started",
                               session=sess.name)
                continue
            local = sess.discriminator_local
            if local is None:  # auto: our choice, unique among this device's sessions
                local = _derived_discriminator(sess.name)
                while local in taken:
                    local = local % 0xFFFFFFFF + 1
                taken.add(local)
            machine = BfdSession(SessionConfig(
                name=sess.name, local_disc=local, multihop=device is None,
                remote_disc=sess.discriminator_remote, desired_min_tx_ms=sess.min_tx_ms,
                required_min_rx_ms=sess.min_rx_ms, detect_mult=sess.detect_multiplier),
                random.Random())
            self.bfd_sockets.add_session(local, str(sess.peer_ip), str(source), device)
            sessions[sess.name] = (machine, str(sess.peer_ip))
        if sessions:
            relay = BfdThread.relay(trio.lowlevel.current_trio_token(), self._on_bfd_state)
            service = BfdService(sessions, self.bfd_sockets, relay, self.log.child("bfd"))
            self.bfd = BfdThread(service, self.bfd_sockets, self.log.child("bfd"))

    def _on_bfd_state(self, ev: BfdStateChanged) -> None:
        """(The BFD service logs every state change itself.)"""
        # Only a session that was Up and went down says the peer is gone; a session that has
        # not come up yet (start-up, the peer still booting) says nothing.
        if ev.new == BfdState.UP or ev.old == BfdState.UP:
            for et in self.etrunks.values():
                if et.cfg.track_bfd == ev.name:
                    et.service.bfd_state(ev.new == BfdState.UP)

    def _build_etrunks(self) -> None:
        for cfg in self.cfg.etrunks.values():
            if cfg.source_address is None or cfg.peer_address is None:
                self.log.warning("e-trunk without peer-address/source-address, not started",
                                 etrunk=cfg.id)
                continue
            members = tuple(
                MemberConfig(int(t.itf.name.removeprefix("Eth-Trunk")),
                             t.itf.etrunk_mode or "auto")
                for t in self.trunks.values() if t.itf.etrunk == cfg.id)
            machine = ETrunkMachine(ETrunkConfig(
                etrunk_id=cfg.id, priority=cfg.priority, system_id=device_mac(self.cfg),
                hello_100ms=cfg.hello_100ms, hold_multiplier=cfg.hold_multiplier,
                revert_delay_s=cfg.revert_delay_s, revert_enabled=cfg.revert_enabled,
                members=members, track_bfd=cfg.track_bfd is not None),
                sequence_start=sequence_origin(time.time()))
            endpoint = UdpEndpoint(str(cfg.source_address), cfg.port)
            transport = _PeerUdp(endpoint, str(cfg.peer_address), cfg.port)
            key = cfg.security_key.key if cfg.security_key else b""
            service = ETrunkService(machine, key, str(cfg.peer_address), transport,
                                    lambda out, eid=cfg.id: self._on_etrunk(eid, out),
                                    self.log.child("etrunk"))
            self.etrunks[cfg.id] = ETrunk(cfg, machine, service, endpoint)

    def _on_etrunk(self, etrunk_id: int, out: ETrunkOutput) -> None:
        log = self.log.child("etrunk")
        if isinstance(out, ETrunkStateChanged):
            log.info("e-trunk state", old=out.old.name, new=out.new.name, cause=out.cause.value)
            if out.cause is ETrunkCause.PRI:  # the peer is heard (again): no RBS backoff wait
                peer = self.etrunks[etrunk_id].cfg.peer_address
                for name, svc in self.rbs.items():
                    if self.cfg.rbs[name].peer == peer:
                        svc.peer_appeared()
        elif isinstance(out, MemberRoleChanged):
            log.info("member role", trunk=f"Eth-Trunk{out.trunk_id}", role=out.role.value,
                     cause=out.cause.value)
            role = Role.MASTER if out.role.value == "master" else Role.BACKUP
            old = self.member_roles.get((etrunk_id, out.trunk_id))
            self.member_roles[(etrunk_id, out.trunk_id)] = role
            trunk = self.trunks.get(f"Eth-Trunk{out.trunk_id}")
            if trunk is not None:
                trunk.set_role(role)
            if role != old:
                self._update_serving()

    def trunk_attached(self, trunk: EthTrunk, attached: bool) -> None:
        """The switch put an Eth-Trunk's link in its aggregate (or took it out): the E-Trunk
        advertises it, and it settles which member keeps the role when both claim it."""
        et = self.etrunks.get(trunk.itf.etrunk) if trunk.itf.etrunk is not None else None
        if et is not None:
            et.service.member_attached(trunk.number, attached)

    def _member_phy(self, trunk: EthTrunk) -> None:
        et = self.etrunks.get(trunk.itf.etrunk) if trunk.itf.etrunk is not None else None
        if et is not None:
            et.service.member_phy(trunk.number, trunk.phy_up())

    def _bfd_state_name(self, name: str | None) -> str | None:
        if name is None or self.bfd is None:
            return None
        for snap, _peer in self.bfd.snapshots():
            if snap.name == name:
                return _BFD_STATE_NAMES[snap.state]
        return None

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
        c.add("display e-trunk", self._cmd_etrunk, "E-Trunk state, peer and members")
        c.add("display e-trunk <1-16>", self._cmd_etrunk, "one E-Trunk")
        c.add("display bfd session all", self._cmd_bfd_all, "every BFD session")
        c.add("display bfd session name <word> verbose", self._cmd_bfd_verbose,
              "one BFD session in detail")
        c.add("display igmp group", self._cmd_igmp_group, "IGMP groups, local and remote backup")
        c.add("display igmp group interface <ifname>", self._cmd_igmp_group,
              "IGMP groups of one interface")
        c.add("display igmp interface", self._cmd_igmp_interface, "IGMP interfaces, querier")
        c.add("display igmp interface <ifname>", self._cmd_igmp_interface, "one IGMP interface")
        for kw, fn in (("remote-backup-service", self._cmd_rbs),
                       ("remote-backup-profile", self._cmd_rbp)):
            c.add(f"display {kw}", fn, f"every {kw}")
            c.add(f"display {kw} <word>", fn, f"one {kw}")
            c.add(f"display {kw} <word> verbose", fn, f"one {kw} with counters")
        c.add("display pim neighbor", self._cmd_pim_neighbor, "PIM neighbors")
        c.add("display pim interface", self._cmd_pim_interface, "PIM interfaces, DR")
        c.add("display pim routing-table", self._cmd_pim_rt, "PIM (*,G) join state")
        c.add("display multicast routing-table", self._cmd_mrt,
              "the kernel's multicast forwarding entries with counters")
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

    def _cmd_etrunk(self, args: list, as_json: bool):
        chosen = [et for et in self.etrunks.values() if not args or et.cfg.id == args[0]]
        if args and not chosen:
            raise CommandError(f"Error: E-Trunk {args[0]} does not exist.")
        out = []
        for et in chosen:
            fields = (et.machine.snapshot(), str(et.cfg.peer_address), str(et.cfg.source_address),
                      et.cfg.track_bfd, self._bfd_state_name(et.cfg.track_bfd))
            out.append(etrunk_json(*fields) if as_json else render_etrunk(*fields))
        return out if as_json else "\n\n".join(out)

    def _bfd_entries(self) -> list[tuple]:
        if self.bfd is None:
            return []
        return [(snap, peer, self.cfg.bfd_sessions[snap.name].interface)
                for snap, peer in self.bfd.snapshots()]

    def _cmd_bfd_all(self, args: list, as_json: bool):
        entries = self._bfd_entries()
        return sessions_json(entries) if as_json else render_session_all(entries)

    def _cmd_bfd_verbose(self, args: list, as_json: bool):
        for snap, peer, interface in self._bfd_entries():
            if snap.name == args[0]:
                source = self.cfg.bfd_sessions[snap.name].source_ip
                fields = (snap, peer, str(source) if source else "-", interface)
                now = trio.current_time()
                return (session_json(*fields, now=now) if as_json
                        else render_session_verbose(*fields, now=now))
        raise CommandError(f"Error: The BFD session {args[0]} does not exist.")

    def _igmp_snaps(self, args: list) -> list:
        if args and args[0] not in self.igmp:
            raise CommandError(f"Error: IGMP is not enabled on {args[0]}.")
        return [svc.snapshot() for name, svc in self.igmp.items() if not args or name == args[0]]

    def _cmd_igmp_group(self, args: list, as_json: bool):
        snaps, remote = self._igmp_snaps(args), self.remote_groups()
        interface = args[0] if args else None
        if as_json:
            return igmp_group_json(snaps, remote, interface=interface)
        return render_igmp_group(snaps, remote, interface=interface)

    def _cmd_igmp_interface(self, args: list, as_json: bool):
        snaps = self._igmp_snaps(args)
        return igmp_interface_json(snaps) if as_json else render_igmp_interface(snaps)

    def _named(self, table: dict, args: list, what: str) -> list:
        if args and args[0] not in table:
            raise CommandError(f"Error: The {what} {args[0]} does not exist.")
        return [v for k, v in table.items() if not args or k == args[0]]

    def _cmd_rbs(self, args: list, as_json: bool):
        out = []
        for cfg in self._named(self.cfg.rbs, args, "remote-backup-service"):
            svc = self.rbs.get(cfg.name)
            fields = (svc.snapshot() if svc else None, cfg.name, cfg.peer, cfg.source, cfg.port,
                      cfg.index)
            out.append(rbs_json(*fields) if as_json
                       else render_rbs(*fields, verbose=len(args) == 2))
        return out if as_json else "\n".join(out)

    def _cmd_rbp(self, args: list, as_json: bool):
        out = []
        for p in self._named(self.cfg.rbp, args, "remote-backup-profile"):
            svc = self.rbs.get(p.rbs or "")
            interface = self._profile_interface(p)
            fields = (p.name, p.index, p.service_types, p.rbs, p.backup_id, p.etrunk,
                      p.eth_trunk, [interface] if interface else [], p.peer_backup,
                      svc.snapshot() if svc else None)
            out.append(rbp_json(*fields) if as_json
                       else render_rbp(*fields, verbose=len(args) == 2))
        return out if as_json else "\n".join(out)

    def _pim_snap(self):
        if self.pim is None:
            raise CommandError("Error: PIM is not enabled on any interface.")
        return self.pim.snapshot()

    def _cmd_pim_neighbor(self, args: list, as_json: bool):
        snap = self._pim_snap()
        return pim_neighbor_json(snap) if as_json else render_pim_neighbor(snap)

    def _cmd_pim_interface(self, args: list, as_json: bool):
        snap = self._pim_snap()
        return pim_interface_json(snap) if as_json else render_pim_interface(snap)

    def _cmd_pim_rt(self, args: list, as_json: bool):
        snap = self._pim_snap()
        return pim_routing_table_json(snap) if as_json else render_pim_routing_table(snap)

    def _cmd_mrt(self, args: list, as_json: bool):
        if self.mfib is None:
            raise CommandError("Error: multicast routing is not enabled.")
        rows = self.mfib.rows()
        return rows if as_json else render_multicast_routing_table(rows)

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
            self._build_bfd()
            self._build_etrunks()
            self._build_multicast()
            self._build_rbs()
            async with trio.open_nursery() as nursery:
                # E-Trunk first: it presets its members' LACP roles before LACP speaks
                for et in self.etrunks.values():
                    # the first hello must carry the members' real phy state: a peer that
                    # heard "down" would take the member role and, with revert disabled,
                    # keep it
                    for trunk in self.trunks.values():
                        if trunk.itf.etrunk == et.cfg.id:
                            et.machine.member_phy(trunk.number, trunk.phy_up(),
                                                  trio.current_time())
                    await nursery.start(et.service.run)
                if self.bfd is not None:
                    await self.bfd.start()
                for trunk in self.trunks.values():
                    await nursery.start(trunk.run)
                    for vrp, linux in trunk.linux.items():
                        st = self.links.get(linux)
                        trunk.member_link(vrp, st is not None and st.oper_up)
                for rbs in self.rbs.values():
                    await nursery.start(rbs.run)
                if self.mroute is not None:
                    nursery.start_soon(self._mroute_reader)
                if self.pim is not None:
                    await nursery.start(self.pim.run)
                    if self.mfib is not None:
                        nursery.start_soon(self._keepalive_poller)
                        if self.pim.router.config.spt_threshold_kbps is not None:
                            nursery.start_soon(self._spt_rate_poller)
                    for vrp in self.pim_port.by_name:  # type: ignore[union-attr]
                        link = self.links.get(self.cfg.interfaces[vrp].linux_name or "")
                        if link is not None and link.oper_up:
                            self.pim.interface_up(vrp)
                    self._update_rpf()
                for name, svc in self.igmp.items():
                    await nursery.start(svc.run)
                    link = self.links.get(self.cfg.interfaces[name].linux_name or "")
                    if link is not None and link.oper_up:
                        self._igmp_link(name, True)
                nursery.start_soon(watcher.run, self._on_link, self._resync_links)
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
        take over at once instead of waiting for their timers. Break before make: the
        Eth-Trunks stop distributing first (LACPDUs without synchronization), and only then
        does the E-Trunk GOODBYE let the peer's member take over. The other way round both
        routers forward for a moment, and a switch that has both members in one aggregate
        (one LACP system ID on both routers) delivers both copies. Then BFD AdminDown, RBS
        and PIM."""
        with trio.move_on_after(2):
            for trunk in self.trunks.values():
                await trunk.stop()
            for et in self.etrunks.values():
                await et.service.stop()
            if self.bfd is not None:
                await self.bfd.admin_down_all()
            for rbs in self.rbs.values():
                await rbs.stop()
            if self.pim is not None:
                await self.pim.stop()

    def _cleanup(self) -> None:
        """Remove the kernel objects this daemon created (also after a failed start)."""
        for trunk in self.trunks.values():
            try:
                trunk.destroy()
            except OSError as exc:
                self.log.error("trunk cleanup failed", trunk=trunk.itf.name, error=str(exc))
        for bridge in self.vlans:
            bridge.destroy()
        for et in self.etrunks.values():
            et.endpoint.close()
        if self.bfd is not None:
            self.bfd.stop()
            self.bfd_sockets.close()
        for port in self.igmp_ports.values():
            port.sender.close()
        if self.mfib is not None:
            self.mfib.remove_all()
        if self.pim_port is not None:
            self.pim_port.sock.close()
        if self.mroute is not None:
            self.mroute.close()
