"""DeviceConfig -> VRP text, in the layout of ``display current-configuration``.

Only configured commands are written: ``None`` fields and fields at their VRP default are
left out (as VRP itself does), so ``parse(render(cfg))`` gives back the same model. The
security key is always written in cipher form, never in clear.

Unknown commands (``DeviceConfig.unknown``) are NOT rendered: the daemon ignores them, so the
rendered text is the configuration that is actually in effect.
"""

from __future__ import annotations

from collections.abc import Iterator

from .model import (
    DEFAULT_ETRUNK_PORT,
    BfdSession,
    DeviceConfig,
    ETrunk,
    Interface,
    Ospf,
    RemoteBackupProfile,
    RemoteBackupService,
)

__all__ = ["render"]

_MODE_TEXT = {"lacp-static": "lacp-static", "manual": "manual load-balance"}


def render(cfg: DeviceConfig) -> str:
    """The whole configuration: ``#``-separated blocks ending with ``return``."""
    out = ["#"]
    for block in _blocks(cfg):
        out.extend(block)
        out.append("#")
    out.append("return")
    return "\n".join(out) + "\n"


def _blocks(cfg: DeviceConfig) -> Iterator[list[str]]:
    yield [f"sysname {cfg.sysname}"]
    if cfg.vlans:
        yield [f"vlan batch {_vlan_ranges(cfg.vlans)}"]
    if cfg.multicast_routing:
        yield ["multicast routing-enable"]
    if cfg.bfd_enabled:
        yield ["bfd"]
    if cfg.etrunk_port != DEFAULT_ETRUNK_PORT:
        yield [f"e-trunk port {cfg.etrunk_port}"]
    for et in cfg.etrunks.values():
        yield _etrunk(et)
    lacp = []
    if cfg.lacp_priority is not None:
        lacp.append(f"lacp priority {cfg.lacp_priority}")
    if cfg.lacp_etrunk_system_id is not None:
        lacp.append(f"lacp e-trunk system-id {cfg.lacp_etrunk_system_id}")
    if cfg.lacp_etrunk_priority is not None:
        lacp.append(f"lacp e-trunk priority {cfg.lacp_etrunk_priority}")
    if lacp:
        yield lacp
    for rbs in cfg.rbs.values():
        yield _rbs(rbs)
    for rbp in cfg.rbp.values():
        yield _rbp(rbp)
    for intf in cfg.interfaces.values():
        yield _interface(intf)
    for session in cfg.bfd_sessions.values():
        yield _bfd_session(session)
    for ospf in cfg.ospf.values():
        yield _ospf(ospf)
    if cfg.pim is not None:
        yield ["pim", *(f" static-rp {rp}" for rp in cfg.pim.static_rps),
               *([" spt-switch-threshold infinity"] if cfg.pim.spt_switch_infinity else []),
               *([f" spt-switch-threshold {cfg.pim.spt_switch_kbps}"]
                 if cfg.pim.spt_switch_kbps else [])]


def _vlan_ranges(vlans: list[int]) -> str:
    """[100, 200, 201, 202] -> ``100 200 to 202``."""
    runs: list[list[int]] = []
    for vlan in vlans:
        if runs and vlan == runs[-1][1] + 1:
            runs[-1][1] = vlan
        else:
            runs.append([vlan, vlan])
    return " ".join(str(a) if a == b else f"{a} to {b}" for a, b in runs)


def _etrunk(et: ETrunk) -> list[str]:
    lines = [f"e-trunk {et.id}"]
    if et.peer_address is not None:
        lines.append(f" peer-address {et.peer_address} source-address {et.source_address}")
    if et.priority != ETrunk.priority:
        lines.append(f" priority {et.priority}")
    if et.hello_100ms != ETrunk.hello_100ms:
        lines.append(f" timer hello {et.hello_100ms}")
    if et.hold_multiplier != ETrunk.hold_multiplier:
        lines.append(f" timer hold-on-failure multiplier {et.hold_multiplier}")
    if et.revert_delay_s != ETrunk.revert_delay_s:
        lines.append(f" timer revert delay {et.revert_delay_s}")
    if not et.revert_enabled:
        lines.append(" revert disable")
    if et.security_key is not None:
        lines.append(f" security-key cipher {et.security_key.render_cipher()}")
    if et.track_bfd is not None:
        lines.append(f" e-trunk track bfd-session session-name {et.track_bfd}")
    return lines


def _rbs(rbs: RemoteBackupService) -> list[str]:
    lines = [f"remote-backup-service {rbs.name}"]
    if rbs.peer is not None:
        lines.append(f" peer {rbs.peer} source {rbs.source} port {rbs.port}")
    return lines


def _rbp(rbp: RemoteBackupProfile) -> list[str]:
    lines = [f"remote-backup-profile {rbp.name}"]
    lines.extend(f" service-type {service}" for service in rbp.service_types)
    if rbp.backup_id is not None:
        lines.append(f" backup-id {rbp.backup_id} remote-backup-service {rbp.rbs}")
    if rbp.peer_backup is not None:
        lines.append(f" peer-backup {rbp.peer_backup}")
    if rbp.etrunk is not None:
        lines.append(f" e-trunk {rbp.etrunk} eth-trunk {rbp.eth_trunk}")
    return lines


def _interface(intf: Interface) -> list[str]:
    lines = [f"interface {intf.name}"]
    if intf.portswitch:
        lines.append(" portswitch")
    if intf.shutdown is not None:
        lines.append(" shutdown" if intf.shutdown else " undo shutdown")
    if intf.address is not None:
        lines.append(f" ip address {intf.address.ip} {intf.address.netmask}")
    lines.extend(f" ip address {a.ip} {a.netmask} sub" for a in intf.sub_addresses)
    optional = [
        ("port link-type", intf.link_type),
        ("port default vlan", intf.default_vlan),
        ("pim sm", intf.pim_sm or None),
        ("igmp enable", intf.igmp_enable or None),
        ("igmp version", intf.igmp_version),
        ("mode", intf.trunk_mode and _MODE_TEXT[intf.trunk_mode]),
        ("lacp timeout fast", intf.lacp_timeout_fast or None),
        ("least active-linknumber", intf.least_active_links),
        ("max active-linknumber", intf.max_active_links),
        ("e-trunk", intf.etrunk),
        ("e-trunk mode", intf.etrunk_mode),
        ("remote-backup-profile", intf.rbp),
        ("eth-trunk", intf.eth_trunk),
        ("lacp priority", intf.lacp_port_priority),
    ]
    for command, value in optional:
        if value is True:
            lines.append(f" {command}")
        elif value is not None:
            lines.append(f" {command} {value}")
    return lines


def _bfd_session(session: BfdSession) -> list[str]:
    bind = f"bfd {session.name} bind peer-ip {session.peer_ip}"
    if session.interface is not None:
        bind += f" interface {session.interface}"
    if session.source_ip is not None:
        bind += f" source-ip {session.source_ip}"
    if session.auto:
        bind += " auto"
    lines = [bind]
    if session.discriminator_local is not None:
        lines.append(f" discriminator local {session.discriminator_local}")
    if session.discriminator_remote is not None:
        lines.append(f" discriminator remote {session.discriminator_remote}")
    if session.min_tx_ms != BfdSession.min_tx_ms:
        lines.append(f" min-tx-interval {session.min_tx_ms}")
    if session.min_rx_ms != BfdSession.min_rx_ms:
        lines.append(f" min-rx-interval {session.min_rx_ms}")
    if session.detect_multiplier != BfdSession.detect_multiplier:
        lines.append(f" detect-multiplier {session.detect_multiplier}")
    if session.committed:
        lines.append(" commit")
    return lines


def _ospf(ospf: Ospf) -> list[str]:
    head = f"ospf {ospf.process}"
    if ospf.router_id is not None:
        head += f" router-id {ospf.router_id}"
    lines = [head]
    for area, networks in ospf.areas.items():
        lines.append(f" area {area}")
        lines.extend(f"  network {net.network_address} {net.hostmask}" for net in networks)
    return lines
