"""VRP configuration text -> :class:`DeviceConfig`.

Layout rules (those of ``display current-configuration``, plus typed-in procedures):

* A line that is only ``#`` ends the current block and returns to the system view.
* An indented line belongs to the nearest less-indented view command above it.
* Procedure style also works: unindented sub-commands follow their view command until
  ``quit``, ``#`` or a command that only an outer view knows. ``commit`` is accepted (it
  commits a static BFD session, elsewhere it does nothing).
* ``return`` ends the configuration; only blank and ``#`` lines may follow it, anything else
  is an error (silently ignoring it would hide a mistake).
* A command we do not model is kept in ``DeviceConfig.unknown`` (never an error), together
  with the lines indented below it. A command we model but given in the wrong view, or with
  a bad value, is a :class:`ConfigError` naming file, line, text and reason.
* Each view block is defined once: a second ``interface GE0/1/1`` block is an error (in a
  configuration file it is almost always a copy-paste mistake).
* ``undo X`` turns a flag off or puts a setting back to its default; ``undo`` of a view
  command (``undo interface ...``) is an error: delete the block instead.
* References (Eth-Trunk, E-Trunk, RBS, RBP, BFD session, VLAN, local addresses) are checked
  after the whole file is read and reported at the line of the referencing command.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from . import ifnames
from .model import (
    CIPHER_MARK,
    DEFAULT_ETRUNK_PORT,
    RBP_FIRST_INDEX,
    BfdSession,
    DeviceConfig,
    ETrunk,
    Interface,
    InterfaceKind,
    Ospf,
    Pim,
    RemoteBackupProfile,
    RemoteBackupService,
    SecurityKey,
    UnknownCommand,
)

__all__ = ["ConfigError", "load", "parse"]


class ConfigError(Exception):
    """A configuration the lab refuses, with where and why (one line when printed)."""

    def __init__(self, source: str, line: int, text: str, reason: str) -> None:
        super().__init__(source, line, text, reason)
        self.source = source
        self.line = line
        self.text = text
        self.reason = reason

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}: {self.reason}"
        return f"{where}: '{self.text}'" if self.text else where


def parse(text: str, source: str = "<config>") -> DeviceConfig:
    """Parse configuration text; ``source`` names it in error messages."""
    return _Parser(source).run(text)


def load(path: str | os.PathLike[str]) -> DeviceConfig:
    """Read and parse a configuration file; unreadable files are ConfigErrors (line 0)."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(source, 0, "", f"cannot read file: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(source, line, "", "not UTF-8 text") from exc
    return parse(text, source)


# --- value parsers: each raises ValueError whose text is the reason -----------------------


class _Usage(Exception):
    """Wrong number or order of arguments; the dispatcher adds the command's usage."""


class _NotOurs(Exception):
    """A command word we know, used for something we do not model (``interface Tunnel1``)."""


_DIGITS = re.compile(r"[0-9]{1,10}", re.ASCII)
_MAC = re.compile(r"[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}", re.ASCII)
_ALL_ONES = 0xFFFFFFFF


def _int(word: str, lo: int, hi: int, what: str) -> int:
    value = int(word) if _DIGITS.fullmatch(word) else None
    if value is None or not lo <= value <= hi:
        raise ValueError(f"{what} must be an integer {lo}..{hi}, got {word!r}")
    return value


def _ranged(lo: int, hi: int, what: str) -> Callable[[str], int]:
    return lambda word: _int(word, lo, hi, what)


def _choice(word: str, choices: tuple[str, ...], what: str) -> str:
    if word.lower() not in choices:
        raise ValueError(f"{what} must be one of {', '.join(choices)}, got {word!r}")
    return word.lower()


def _one_of(choices: tuple[str, ...], what: str) -> Callable[[str], str]:
    return lambda word: _choice(word, choices, what)


def _ipv4(word: str, what: str) -> IPv4Address:
    try:
        return IPv4Address(word)
    except ValueError:
        raise ValueError(f"bad IPv4 address for {what}: {word!r}") from None


def _unicast(word: str, what: str) -> IPv4Address:
    addr = _ipv4(word, what)
    if addr.is_multicast or addr.is_reserved or addr.is_loopback or addr.packed[0] == 0:
        raise ValueError(f"{what} must be a unicast host address, got {addr}")
    return addr


def _prefix_of(mask: int) -> int | None:
    """Prefix length of a contiguous netmask, None if its ones are not contiguous."""
    prefix = mask.bit_count()
    return prefix if mask == (_ALL_ONES << (32 - prefix)) & _ALL_ONES else None


def _mask_len(word: str) -> int:
    """``255.255.255.0`` or ``24``."""
    if _DIGITS.fullmatch(word):
        return _int(word, 1, 32, "mask length")
    prefix = _prefix_of(int(_ipv4(word, "mask")))
    if prefix is None:
        raise ValueError(f"mask {word} is not contiguous")
    if prefix == 0:
        raise ValueError("mask must not be 0.0.0.0")
    return prefix


def _host(addr_word: str, mask_word: str) -> IPv4Interface:
    addr = _unicast(addr_word, "ip address")
    iface = IPv4Interface(f"{addr}/{_mask_len(mask_word)}")
    net = iface.network
    if net.prefixlen <= 30 and addr in (net.network_address, net.broadcast_address):
        raise ValueError(f"{addr} is the network or broadcast address of {net}")
    return iface


def _wildcard_network(addr_word: str, wildcard_word: str) -> IPv4Network:
    addr = _ipv4(addr_word, "network")
    wildcard = int(_ipv4(wildcard_word, "wildcard mask"))
    prefix = _prefix_of(~wildcard & _ALL_ONES)
    if prefix is None:
        raise ValueError(f"wildcard mask {wildcard_word} is not contiguous")
    if int(addr) & wildcard:
        raise ValueError(f"network {addr} has host bits inside wildcard {wildcard_word}")
    return IPv4Network(f"{addr}/{prefix}")


def _area(word: str) -> str:
    """Area IDs are written as integers or dotted quads; we keep the dotted form."""
    if _DIGITS.fullmatch(word):
        return str(IPv4Address(_int(word, 0, _ALL_ONES, "area ID")))
    return str(_ipv4(word, "area ID"))


def _name(word: str, max_len: int, what: str) -> str:
    if not (len(word) <= max_len and word.isascii() and word.isprintable() and "?" not in word):
        raise ValueError(f"{what} must be 1..{max_len} printable ASCII characters, no '?'")
    return word


def _mac(word: str) -> str:
    mac = word.lower()
    if _MAC.fullmatch(mac) is None:
        raise ValueError(f"system ID must look like 00e0-fc12-3455, got {word!r}")
    raw = bytes.fromhex(mac.replace("-", ""))
    if raw[0] & 1 or not any(raw):
        raise ValueError(f"system ID {mac} must be a unicast, non-zero MAC address")
    return mac


def _trunk_id(word: str) -> int:
    number = _int(word, 0, _ALL_ONES, "Eth-Trunk ID")
    ifnames.canonical(f"Eth-Trunk{number}")  # ifnames is the one place that knows the range
    return number


def _vlans(args: list[str]) -> set[int]:
    """``100 200 to 210`` -> {100, 200, ..., 210}."""
    if not args:
        raise _Usage
    out: set[int] = set()
    i = 0
    while i < len(args):
        low = _int(args[i], 1, 4094, "VLAN ID")
        if i + 1 < len(args) and args[i + 1].lower() == "to":
            if i + 2 == len(args):
                raise _Usage
            high = _int(args[i + 2], 1, 4094, "VLAN ID")
            if high < low:
                raise ValueError(f"VLAN range {low} to {high} is reversed")
            out.update(range(low, high + 1))
            i += 3
        else:
            out.add(low)
            i += 1
    return out


def _one(args: list[str]) -> str:
    if len(args) != 1:
        raise _Usage
    return args[0]


def _none(args: list[str]) -> None:
    if args:
        raise _Usage


def _undo_args(args: list[str], *allowed: int) -> None:
    """``undo X`` may repeat the configured value; we accept it without comparing."""
    if len(args) not in (0, *allowed):
        raise _Usage


def _keywords(args: list[str], count: int, at: dict[int, str]) -> None:
    """Exactly ``count`` arguments with the given keywords at the given positions."""
    if len(args) != count or any(args[i].lower() != word for i, word in at.items()):
        raise _Usage


# --- interface checks ---------------------------------------------------------------------

_Check = Callable[[Interface], None]
_L3 = (
    InterfaceKind.GE,
    InterfaceKind.XGE,
    InterfaceKind.ETH_TRUNK,
    InterfaceKind.LOOPBACK,
    InterfaceKind.VLANIF,
)
_SWITCHABLE = (InterfaceKind.GE, InterfaceKind.XGE, InterfaceKind.ETH_TRUNK)
_SHUTTABLE = (*_SWITCHABLE, InterfaceKind.VLANIF)
_PHYSICAL = (InterfaceKind.GE, InterfaceKind.XGE)
_TRUNK = (InterfaceKind.ETH_TRUNK,)


def _kinds(kinds: tuple[InterfaceKind, ...], what: str) -> _Check:
    def check(intf: Interface) -> None:
        if intf.kind not in kinds:
            raise ValueError(f"'{what}' is not supported on {intf.name}")

    return check


def _not_member(intf: Interface, what: str) -> None:
    if intf.eth_trunk is not None:
        raise ValueError(f"'{what}' not allowed: {intf.name} is in Eth-Trunk{intf.eth_trunk}")


def _routed(what: str) -> _Check:
    """Layer-3 settings need a routed port that is not an Eth-Trunk member."""
    kinds = _kinds(_L3, what)

    def check(intf: Interface) -> None:
        kinds(intf)
        _not_member(intf, what)
        if intf.portswitch:
            raise ValueError(f"'{what}' not allowed on layer-2 (portswitch) {intf.name}")

    return check


def _switched(what: str) -> _Check:
    def check(intf: Interface) -> None:
        if not intf.portswitch:
            raise ValueError(f"'{what}' needs 'portswitch' on {intf.name} first")

    return check


def _bindable(intf: Interface) -> None:
    _kinds(_SHUTTABLE, "remote-backup-profile")(intf)
    _not_member(intf, "remote-backup-profile")


# --- views, commands and generic handlers -------------------------------------------------


@dataclass
class _View:
    kind: str  # key of _TABLES; "unknown" for blocks we do not model
    label: str  # for messages and UnknownCommand.view
    obj: Any = None  # the model object this view edits


@dataclass
class _Frame:
    indent: int
    view: _View
    nested: bool = False  # has indented children, so a line at its own indent closes it


_Handler = Callable[["_Parser", Any, list[str]], "_View | None"]


@dataclass(frozen=True)
class _Cmd:
    words: tuple[str, ...]
    usage: str
    do: _Handler
    undo: _Handler | None = None


def _reset(field: str, default: Any = None) -> _Handler:
    """``undo X [VALUE]`` puts ``field`` back to ``default``."""

    def undo(_: _Parser, obj: Any, args: list[str]) -> None:
        _undo_args(args, 1)
        setattr(obj, field, default)

    return undo


def _setting(
    field: str, convert: Callable[[str], Any], default: Any = None, check: _Check | None = None
) -> tuple[_Handler, _Handler]:
    """``X VALUE`` sets ``field``; ``undo X [VALUE]`` puts back ``default``."""

    def do(parser: _Parser, obj: Any, args: list[str]) -> None:
        value = convert(_one(args))
        if check is not None:
            check(obj)
        setattr(obj, field, value)
        parser.mark(obj, field)

    return do, _reset(field, default)


def _flag(field: str, on: bool = True, check: _Check | None = None) -> tuple[_Handler, _Handler]:
    """``X`` sets ``field`` to ``on``; ``undo X`` to the opposite."""

    def do(parser: _Parser, obj: Any, args: list[str]) -> None:
        _none(args)
        if check is not None:
            check(obj)
        setattr(obj, field, on)
        parser.mark(obj, field)

    def undo(_: _Parser, obj: Any, args: list[str]) -> None:
        _none(args)
        setattr(obj, field, not on)

    return do, undo


class _Parser:
    """One parse: the model being built plus where each reference was written."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.cfg = DeviceConfig(source=source)
        self.lines: list[str] = []
        self.line = 0
        self.stack = [_Frame(-1, _View("system", "system", self.cfg))]
        # (id(model object), field) -> line that last set it, for the reference checks
        self.where: dict[tuple[int, str], int] = {}

    def mark(self, obj: object, field: str) -> None:
        self.where[(id(obj), field)] = self.line

    def at(self, obj: object, field: str) -> int:
        return self.where[(id(obj), field)]

    # --- driver ---------------------------------------------------------------------------

    def run(self, text: str) -> DeviceConfig:
        raw_lines = text.split("\n")
        self.lines = [raw.strip() for raw in raw_lines]
        ended = False
        for number, (raw, stripped) in enumerate(zip(raw_lines, self.lines, strict=True), 1):
            if not stripped:
                continue
            self.line = number
            if stripped == "#":
                del self.stack[1:]
                continue
            try:
                if ended:
                    raise ValueError("text after 'return' (the configuration ends there)")
                words = stripped.split()
                if [w.lower() for w in words] == ["return"]:
                    ended = True
                else:
                    self.dispatch(len(raw) - len(raw.lstrip()), words, stripped)
            except ValueError as exc:
                raise ConfigError(self.source, number, stripped, str(exc)) from None
        self.check_references()
        return self.cfg

    def dispatch(self, indent: int, words: list[str], text: str) -> None:
        """Find the view that takes this line, run its command or keep it as unknown."""
        stack = self.stack
        while stack[-1].indent > indent or (
            stack[-1].indent == indent and (stack[-1].nested or stack[-1].view.kind == "unknown")
        ):
            stack.pop()
        if stack[-1].indent < indent:  # indented below the top view: only it may take it
            stack[-1].nested = True
            candidates = [len(stack) - 1]
        else:  # procedure style: open views at this indent, innermost first, then the parent
            candidates = []
            i = len(stack) - 1
            while stack[i].indent == indent:
                candidates.append(i)
                i -= 1
            candidates.append(i)
        innermost = stack[candidates[0]].view
        lowered = [w.lower() for w in words]
        if lowered == ["quit"]:
            del stack[max(candidates[0], 1) :]
            return
        if lowered == ["commit"]:
            if innermost.kind == "bfd-session":
                innermost.obj.committed = True
                self.mark(innermost.obj, "committed")
            return
        foreign = _lookup(_FOREIGN, words)
        for i in candidates:
            view = stack[i].view
            found = _lookup(_TABLES.get(view.kind, ()), words)
            # "pim sm" in the system view is the interface command, not "pim" + junk
            if found is None or (
                foreign is not None and len(foreign[0].words) > len(found[0].words)
            ):
                continue
            del stack[i + 1 :]
            cmd, args, undo = found
            handler = cmd.undo if undo else cmd.do
            if handler is None:
                raise ValueError(f"'undo {' '.join(cmd.words)}' is not supported")
            try:
                opened = handler(self, view.obj, args)
            except _Usage:
                usage = f"undo {' '.join(cmd.words)}" if undo else cmd.usage
                raise ValueError(f"wrong arguments, expected '{usage}'") from None
            except _NotOurs:  # e.g. "interface Tunnel1": kept as unknown in this view
                innermost = view
                break
            if opened is not None:
                stack.append(_Frame(indent, opened))
            return
        else:  # no view takes it: ours but misplaced (an error), or not ours (kept)
            if foreign is not None and innermost.kind in _TABLES:
                raise ValueError(
                    f"'{' '.join(foreign[0].words)}' is not valid in view '{innermost.label}'"
                    f" (it belongs to the {foreign[0].usage} view)"
                )
        self.cfg.unknown.append(UnknownCommand(self.line, text, innermost.label))
        stack.append(_Frame(indent, _View("unknown", text)))

    # --- system view ----------------------------------------------------------------------

    def sysname(self, cfg: DeviceConfig, args: list[str]) -> None:
        cfg.sysname = _name(_one(args), 246, "sysname")

    def sysname_undo(self, cfg: DeviceConfig, args: list[str]) -> None:
        _none(args)
        cfg.sysname = DeviceConfig.sysname

    def vlan_batch(self, cfg: DeviceConfig, args: list[str]) -> None:
        cfg.vlans = sorted(set(cfg.vlans) | _vlans(args))

    def vlan_batch_undo(self, cfg: DeviceConfig, args: list[str]) -> None:
        cfg.vlans = sorted(set(cfg.vlans) - _vlans(args))

    def vlan(self, cfg: DeviceConfig, args: list[str]) -> _View:
        vlan = _int(_one(args), 1, 4094, "VLAN ID")
        cfg.vlans = sorted({*cfg.vlans, vlan})
        return _View("vlan", f"vlan {vlan}")

    def vlan_undo(self, cfg: DeviceConfig, args: list[str]) -> None:
        vlan = _int(_one(args), 1, 4094, "VLAN ID")
        cfg.vlans = [v for v in cfg.vlans if v != vlan]

    def bfd(self, cfg: DeviceConfig, args: list[str]) -> _View:
        """``bfd`` enables BFD; ``bfd NAME bind peer-ip ... [auto]`` defines a static session
        (with ``auto``, one whose discriminators are negotiated)."""
        if not args:
            cfg.bfd_enabled = True
            return _View("bfd", "bfd")
        if len(args) < 4 or [a.lower() for a in args[1:3]] != ["bind", "peer-ip"]:
            raise _Usage
        name = _name(args[0], 64, "BFD session name")
        for other in cfg.bfd_sessions.values():
            if other.name.lower() == name.lower():  # VRP session names ignore case
                raise ValueError(f"BFD session {name} already defined at line {other.line}")
        session = BfdSession(name=name, line=self.line, peer_ip=_unicast(args[3], "peer-ip"))
        rest = args[4:]
        while rest:
            key = rest[0].lower()
            if key == "source-ip" and session.source_ip is None and len(rest) >= 2:
                session.source_ip = _unicast(rest[1], "source-ip")
                rest = rest[2:]
            elif key == "auto" and len(rest) == 1:
                session.auto = True
                rest = []
            elif key == "interface" and session.interface is None and len(rest) >= 2:
                # the name may be spelled in two words: "GigabitEthernet 0/1/1"
                n = 3 if len(rest) >= 3 and rest[2].lower() not in ("source-ip", "auto") else 2
                session.interface = ifnames.canonical(" ".join(rest[1:n]))
                rest = rest[n:]
            else:
                raise _Usage
        cfg.bfd_sessions[name] = session
        return _View("bfd-session", f"bfd {name}", session)

    def bfd_undo(self, cfg: DeviceConfig, args: list[str]) -> None:
        if args:
            raise ValueError("'undo bfd NAME' is not supported: delete the session block")
        cfg.bfd_enabled = False

    def etrunk(self, cfg: DeviceConfig, args: list[str]) -> _View:
        number = _int(_one(args), 1, 16, "E-Trunk ID")
        if number in cfg.etrunks:
            raise ValueError(f"e-trunk {number} already defined at line {cfg.etrunks[number].line}")
        cfg.etrunks[number] = et = ETrunk(id=number, line=self.line)
        return _View("e-trunk", f"e-trunk {number}", et)

    def rbs(self, cfg: DeviceConfig, args: list[str]) -> _View:
        name = _name(_one(args), 31, "remote-backup-service name")
        if name in cfg.rbs:
            raise ValueError(f"{name} already defined at line {cfg.rbs[name].line}")
        index = len(cfg.rbs) + 1
        cfg.rbs[name] = rbs = RemoteBackupService(name=name, line=self.line, index=index)
        return _View("rbs", f"remote-backup-service {name}", rbs)

    def rbp(self, cfg: DeviceConfig, args: list[str]) -> _View:
        name = _name(_one(args), 31, "remote-backup-profile name")
        if name in cfg.rbp:
            raise ValueError(f"{name} already defined at line {cfg.rbp[name].line}")
        index = RBP_FIRST_INDEX + len(cfg.rbp)
        cfg.rbp[name] = rbp = RemoteBackupProfile(name=name, line=self.line, index=index)
        return _View("rbp", f"remote-backup-profile {name}", rbp)

    def interface(self, cfg: DeviceConfig, args: list[str]) -> _View:
        if not args:
            raise _Usage
        spelled = " ".join(args)
        if not ifnames.known_type(spelled):
            raise _NotOurs
        name = ifnames.canonical(spelled)
        if name in cfg.interfaces:
            raise ValueError(
                f"interface {name} already defined at line {cfg.interfaces[name].line}"
            )
        cfg.interfaces[name] = intf = Interface(name=name, kind=ifnames.kind(name), line=self.line)
        return _View("interface", f"interface {name}", intf)

    def ospf(self, cfg: DeviceConfig, args: list[str]) -> _View:
        rest = list(args)
        process = 1
        if rest and rest[0].lower() != "router-id":
            process = _int(rest.pop(0), 1, 65535, "OSPF process ID")
        router_id = None
        if rest:
            _keywords(rest, 2, {0: "router-id"})
            router_id = _ipv4(rest[1], "router-id")
            if router_id.is_unspecified:
                raise ValueError("router-id must not be 0.0.0.0")
        if process in cfg.ospf:
            raise ValueError(f"ospf {process} already defined at line {cfg.ospf[process].line}")
        cfg.ospf[process] = ospf = Ospf(process=process, line=self.line, router_id=router_id)
        return _View("ospf", f"ospf {process}", ospf)

    def pim(self, cfg: DeviceConfig, args: list[str]) -> _View:
        _none(args)
        if cfg.pim is not None:
            raise ValueError(f"pim already defined at line {cfg.pim.line}")
        cfg.pim = Pim(line=self.line)
        return _View("pim", "pim", cfg.pim)

    # --- e-trunk, remote-backup-service and remote-backup-profile views -------------------

    def et_peer(self, et: ETrunk, args: list[str]) -> None:
        _keywords(args, 3, {1: "source-address"})
        peer = _unicast(args[0], "peer-address")
        source = _unicast(args[2], "source-address")
        if peer == source:
            raise ValueError("peer-address and source-address must differ")
        et.peer_address, et.source_address = peer, source
        self.mark(et, "source_address")

    def et_peer_undo(self, et: ETrunk, args: list[str]) -> None:
        _undo_args(args, 3)
        et.peer_address = et.source_address = None

    def et_key(self, et: ETrunk, args: list[str]) -> None:
        if len(args) != 2:
            raise _Usage
        mode = _choice(args[0], ("cipher", "simple"), "security-key mode")
        if mode == "cipher" and args[1].startswith(CIPHER_MARK):
            et.security_key = SecurityKey.from_cipher(args[1])
        else:
            et.security_key = SecurityKey.from_clear(args[1])

    def et_key_undo(self, et: ETrunk, args: list[str]) -> None:
        _undo_args(args, 2)
        et.security_key = None

    def et_track(self, et: ETrunk, args: list[str]) -> None:
        _keywords(args, 2, {0: "session-name"})
        et.track_bfd = _name(args[1], 64, "BFD session name")
        self.mark(et, "track_bfd")

    def et_track_undo(self, et: ETrunk, args: list[str]) -> None:
        _undo_args(args, 2)
        et.track_bfd = None

    def rbs_peer(self, rbs: RemoteBackupService, args: list[str]) -> None:
        _keywords(args, 5, {1: "source", 3: "port"})
        peer = _unicast(args[0], "peer")
        source = _unicast(args[2], "source")
        if peer == source:
            raise ValueError("peer and source must differ")
        rbs.peer, rbs.source = peer, source
        rbs.port = _int(args[4], 1, 65535, "TCP port")
        self.mark(rbs, "source")

    def rbs_peer_undo(self, rbs: RemoteBackupService, args: list[str]) -> None:
        _undo_args(args, 5)
        rbs.peer = rbs.source = rbs.port = None

    def rbp_service(self, rbp: RemoteBackupProfile, args: list[str]) -> None:
        service = _choice(_one(args), ("igmp",), "service-type")
        if service not in rbp.service_types:
            rbp.service_types.append(service)

    def rbp_service_undo(self, rbp: RemoteBackupProfile, args: list[str]) -> None:
        _undo_args(args, 1)
        gone = [a.lower() for a in args] or rbp.service_types
        rbp.service_types = [s for s in rbp.service_types if s not in gone]

    def rbp_backup_id(self, rbp: RemoteBackupProfile, args: list[str]) -> None:
        _keywords(args, 3, {1: "remote-backup-service"})
        rbp.backup_id = _int(args[0], 1, 65535, "backup-id")
        rbp.rbs = _name(args[2], 31, "remote-backup-service name")
        self.mark(rbp, "rbs")

    def rbp_backup_id_undo(self, rbp: RemoteBackupProfile, args: list[str]) -> None:
        _undo_args(args, 1, 3)
        rbp.backup_id = rbp.rbs = None

    def rbp_etrunk(self, rbp: RemoteBackupProfile, args: list[str]) -> None:
        _keywords(args, 3, {1: "eth-trunk"})
        rbp.etrunk = _int(args[0], 1, 16, "E-Trunk ID")
        rbp.eth_trunk = _trunk_id(args[2])
        self.mark(rbp, "etrunk")

    def rbp_etrunk_undo(self, rbp: RemoteBackupProfile, args: list[str]) -> None:
        _undo_args(args, 3)
        rbp.etrunk = rbp.eth_trunk = None

    # --- interface view -------------------------------------------------------------------

    def if_address(self, intf: Interface, args: list[str]) -> None:
        if len(args) == 3:
            _keywords(args, 3, {2: "sub"})
        elif len(args) != 2:
            raise _Usage
        sub = len(args) == 3
        new = _host(args[0], args[1])
        _routed("ip address")(intf)
        if sub and intf.address is None:
            raise ValueError("a sub address needs a primary address first")
        replacing = None if sub else intf.address
        for other in self.cfg.interfaces.values():
            for addr in (other.address, *other.sub_addresses):
                if addr is None or (other is intf and addr == replacing):
                    continue
                if addr.network.overlaps(new.network):
                    raise ValueError(f"{new} conflicts with {addr} on {other.name}")
        if sub:
            intf.sub_addresses.append(new)
        else:
            intf.address = new

    def if_address_undo(self, intf: Interface, args: list[str]) -> None:
        if len(args) == 3:
            _keywords(args, 3, {2: "sub"})
            gone = _host(args[0], args[1])
            intf.sub_addresses = [a for a in intf.sub_addresses if a != gone]
        elif not args or (len(args) == 2 and intf.address == _host(args[0], args[1])):
            intf.address = None  # sub addresses cannot outlive the primary
            intf.sub_addresses = []
        elif len(args) != 2:
            raise _Usage

    def if_portswitch(self, intf: Interface, args: list[str]) -> None:
        _none(args)
        _kinds(_SWITCHABLE, "portswitch")(intf)
        _not_member(intf, "portswitch")
        if intf.address is not None or intf.pim_sm or intf.igmp_enable:
            raise ValueError(f"remove ip address, pim sm and igmp enable from {intf.name} first")
        intf.portswitch = True

    def if_portswitch_undo(self, intf: Interface, args: list[str]) -> None:
        _none(args)
        intf.portswitch = False
        intf.link_type = intf.default_vlan = None  # port settings live only on layer 2

    def if_eth_trunk(self, intf: Interface, args: list[str]) -> None:
        trunk = _trunk_id(_one(args))
        _kinds(_PHYSICAL, "eth-trunk")(intf)
        layer3 = intf.address is not None or intf.pim_sm or intf.igmp_enable
        if layer3 or intf.portswitch or intf.rbp is not None:
            raise ValueError(
                f"{intf.name} cannot join Eth-Trunk{trunk}: remove its ip address, pim sm,"
                " igmp enable, portswitch and remote-backup-profile first"
            )
        intf.eth_trunk = trunk
        self.mark(intf, "eth_trunk")

    def if_mode(self, intf: Interface, args: list[str]) -> None:
        low = [a.lower() for a in args]
        if low not in (["lacp-static"], ["manual"], ["manual", "load-balance"]):
            raise _Usage
        _kinds(_TRUNK, "mode")(intf)
        intf.trunk_mode = low[0]

    def if_mode_undo(self, intf: Interface, args: list[str]) -> None:
        _undo_args(args, 1, 2)
        intf.trunk_mode = None

    def if_least_links(self, intf: Interface, args: list[str]) -> None:
        least = _int(_one(args), 1, 16, "least active-linknumber")
        _kinds(_TRUNK, "least active-linknumber")(intf)
        if intf.max_active_links is not None and least > intf.max_active_links:
            raise ValueError(f"least active-linknumber exceeds max ({intf.max_active_links})")
        intf.least_active_links = least

    def if_max_links(self, intf: Interface, args: list[str]) -> None:
        most = _int(_one(args), 1, 16, "max active-linknumber")
        _kinds(_TRUNK, "max active-linknumber")(intf)
        if intf.least_active_links is not None and most < intf.least_active_links:
            raise ValueError(f"max active-linknumber below least ({intf.least_active_links})")
        intf.max_active_links = most

    # --- ospf, pim and bfd-session views --------------------------------------------------

    def ospf_area(self, ospf: Ospf, args: list[str]) -> _View:
        area = _area(_one(args))
        if area in ospf.areas:
            raise ValueError(f"area {area} already defined at line {self.at(ospf, area)}")
        ospf.areas[area] = []
        self.mark(ospf, area)
        return _View("area", f"ospf {ospf.process} area {area}", (ospf, area))

    def area_network(self, ref: tuple[Ospf, str], args: list[str]) -> None:
        ospf, area = ref
        net = _wildcard_network(*_two(args))
        for other, nets in ospf.areas.items():
            if net in nets and other != area:
                raise ValueError(f"network {net} is already in area {other}")
        if net not in ospf.areas[area]:
            ospf.areas[area].append(net)

    def area_network_undo(self, ref: tuple[Ospf, str], args: list[str]) -> None:
        ospf, area = ref
        net = _wildcard_network(*_two(args))
        ospf.areas[area] = [n for n in ospf.areas[area] if n != net]

    def pim_rp(self, pim: Pim, args: list[str]) -> None:
        rp = _unicast(_one(args), "static-rp")
        if rp not in pim.static_rps:
            pim.static_rps.append(rp)

    def pim_rp_undo(self, pim: Pim, args: list[str]) -> None:
        rp = _unicast(_one(args), "static-rp")
        pim.static_rps = [r for r in pim.static_rps if r != rp]

    def pim_spt(self, pim: Pim, args: list[str]) -> None:
        if len(args) > 1 and args[1].lower() == "group-policy":
            raise ValueError("spt-switch-threshold: group-policy is not supported (the "
                             "threshold applies to every group)")
        value = _one(args)
        if value.lower() == "infinity":
            pim.spt_switch_infinity, pim.spt_switch_kbps = True, None
        else:
            pim.spt_switch_kbps = _int(value, 1, 4194304, "spt-switch-threshold (kbit/s)")
            pim.spt_switch_infinity = False

    def pim_spt_undo(self, pim: Pim, args: list[str]) -> None:
        pim.spt_switch_infinity, pim.spt_switch_kbps = False, None

    def bfd_local(self, session: BfdSession, args: list[str]) -> None:
        value = _int(_one(args), 1, _ALL_ONES, "local discriminator")
        for other in self.cfg.bfd_sessions.values():
            if other is not session and other.discriminator_local == value:
                raise ValueError(f"local discriminator {value} already used by {other.name}")
        session.discriminator_local = value

    # --- references, checked once the whole file is read ----------------------------------

    def check_references(self) -> None:
        """Raise the first (lowest-line) broken reference as a ConfigError."""
        cfg = self.cfg
        problems: list[tuple[int, str]] = []
        local = {
            a.ip
            for i in cfg.interfaces.values()
            for a in (i.address, *i.sub_addresses)
            if a is not None
        }

        def need(ok: bool, obj: object, field: str, reason: str) -> None:
            if not ok:
                problems.append((self.at(obj, field), reason))

        for et in cfg.etrunks.values():
            et.port = cfg.etrunk_port
            if et.source_address is not None:
                addr = et.source_address
                need(addr in local, et, "source_address", f"{addr} is not an address here")
            if et.track_bfd is not None:
                known = et.track_bfd.lower() in {s.lower() for s in cfg.bfd_sessions}
                need(known, et, "track_bfd", f"no BFD session {et.track_bfd}")
        for rbs in cfg.rbs.values():
            if rbs.source is not None:
                need(rbs.source in local, rbs, "source", f"{rbs.source} is not an address here")
        for rbp in cfg.rbp.values():
            if rbp.rbs is not None:
                need(rbp.rbs in cfg.rbs, rbp, "rbs", f"no remote-backup-service {rbp.rbs}")
            if rbp.etrunk is not None:
                trunk = cfg.interfaces.get(f"Eth-Trunk{rbp.eth_trunk}")
                if rbp.etrunk not in cfg.etrunks:
                    problems.append((self.at(rbp, "etrunk"), f"no e-trunk {rbp.etrunk}"))
                elif trunk is None:
                    reason = f"no interface Eth-Trunk{rbp.eth_trunk}"
                    problems.append((self.at(rbp, "etrunk"), reason))
                elif trunk.etrunk != rbp.etrunk:
                    reason = f"Eth-Trunk{rbp.eth_trunk} is not in e-trunk {rbp.etrunk}"
                    problems.append((self.at(rbp, "etrunk"), reason))
        for intf in cfg.interfaces.values():
            if intf.eth_trunk is not None:
                trunk_name = f"Eth-Trunk{intf.eth_trunk}"
                need(trunk_name in cfg.interfaces, intf, "eth_trunk", f"no interface {trunk_name}")
            if intf.etrunk is not None:
                need(intf.etrunk in cfg.etrunks, intf, "etrunk", f"no e-trunk {intf.etrunk}")
            if intf.rbp is not None:
                need(intf.rbp in cfg.rbp, intf, "rbp", f"no remote-backup-profile {intf.rbp}")
            if intf.default_vlan is not None:
                vlan = intf.default_vlan  # VLAN 1 always exists
                reason = f"VLAN {vlan} is not created (vlan batch)"
                need(vlan == 1 or vlan in cfg.vlans, intf, "default_vlan", reason)
            for flag in ("pim_sm", "igmp_enable"):
                if getattr(intf, flag):
                    need(cfg.multicast_routing, intf, flag, "needs 'multicast routing-enable'")
        if cfg.pim is not None and not cfg.multicast_routing:
            problems.append((cfg.pim.line, "needs 'multicast routing-enable'"))
        for session in cfg.bfd_sessions.values():
            if not cfg.bfd_enabled:
                problems.append((session.line, "BFD is not enabled (global 'bfd' command)"))
            if session.interface is not None and session.interface not in cfg.interfaces:
                problems.append((session.line, f"no interface {session.interface}"))
            if session.source_ip is not None and session.source_ip not in local:
                problems.append((session.line, f"{session.source_ip} is not an address here"))
            if session.auto:
                reason = "an auto session negotiates its discriminators"
                need(session.discriminator_local is None, session, "discriminator_local", reason)
                need(session.discriminator_remote is None, session, "discriminator_remote",
                     reason)
            elif session.committed:
                both = None not in (session.discriminator_local, session.discriminator_remote)
                reason = "commit needs discriminator local and remote (or 'auto' on the bind)"
                need(both, session, "committed", reason)
        if problems:
            line, reason = min(problems)
            raise ConfigError(self.source, line, self.lines[line - 1], reason)


def _two(args: list[str]) -> tuple[str, str]:
    if len(args) != 2:
        raise _Usage
    return args[0], args[1]


def _lookup(table: tuple[_Cmd, ...], words: list[str]) -> tuple[_Cmd, list[str], bool] | None:
    """The command of ``table`` that ``words`` invoke (longest keyword match), args, undo."""
    undo = words[0].lower() == "undo"
    body = words[1:] if undo else words
    low = tuple(w.lower() for w in body)
    for cmd in table:
        if low[: len(cmd.words)] == cmd.words:
            return cmd, body[len(cmd.words) :], undo
    return None


def _table(*cmds: _Cmd) -> tuple[_Cmd, ...]:
    """Longest keywords first, so ``e-trunk mode`` wins over ``e-trunk``."""
    return tuple(sorted(cmds, key=lambda c: -len(c.words)))


def _c(words: str, usage: str, do: _Handler, undo: _Handler | None = None) -> _Cmd:
    return _Cmd(tuple(words.split()), usage, do, undo)


P = _Parser
_ETRUNK_ID = _ranged(1, 16, "E-Trunk ID")
_TABLES: dict[str, tuple[_Cmd, ...]] = {
    "system": _table(
        _c("sysname", "sysname NAME", P.sysname, P.sysname_undo),
        _c("vlan batch", "vlan batch ID [ID to ID]...", P.vlan_batch, P.vlan_batch_undo),
        _c("vlan", "vlan ID", P.vlan, P.vlan_undo),
        _c("multicast routing-enable", "multicast routing-enable", *_flag("multicast_routing")),
        _c("bfd", "bfd [NAME bind peer-ip IP [interface IF] [source-ip IP] [auto]]", P.bfd,
           P.bfd_undo),
        _c(
            "e-trunk port",
            "e-trunk port 1025-65535",
            *_setting("etrunk_port", _ranged(1025, 65535, "E-Trunk port"), DEFAULT_ETRUNK_PORT),
        ),
        _c("e-trunk", "e-trunk ID", P.etrunk),
        _c(
            "lacp priority",
            "lacp priority 0-65535",
            *_setting("lacp_priority", _ranged(0, 65535, "LACP system priority")),
        ),
        _c(
            "lacp e-trunk system-id",
            "lacp e-trunk system-id XXXX-XXXX-XXXX",
            *_setting("lacp_etrunk_system_id", _mac),
        ),
        _c(
            "lacp e-trunk priority",
            "lacp e-trunk priority 0-65535",
            *_setting("lacp_etrunk_priority", _ranged(0, 65535, "LACP E-Trunk priority")),
        ),
        _c("remote-backup-service", "remote-backup-service NAME", P.rbs),
        _c("remote-backup-profile", "remote-backup-profile NAME", P.rbp),
        _c("interface", "interface NAME", P.interface),
        _c("ospf", "ospf [ID] [router-id IP]", P.ospf),
        _c("pim", "pim", P.pim),
    ),
    "e-trunk": _table(
        _c("peer-address", "peer-address IP source-address IP", P.et_peer, P.et_peer_undo),
        _c("security-key", "security-key {cipher|simple} KEY", P.et_key, P.et_key_undo),
        _c(
            "priority",
            "priority 1-254",
            *_setting("priority", _ranged(1, 254, "E-Trunk priority"), ETrunk.priority),
        ),
        _c(
            "timer hello",
            "timer hello 5-100",
            *_setting(
                "hello_100ms", _ranged(5, 100, "hello interval (x100 ms)"), ETrunk.hello_100ms
            ),
        ),
        _c(
            "timer hold-on-failure multiplier",
            "timer hold-on-failure multiplier 3-1000",
            *_setting(
                "hold_multiplier",
                _ranged(3, 1000, "hold-on-failure multiplier"),
                ETrunk.hold_multiplier,
            ),
        ),
        _c(
            "timer revert delay",
            "timer revert delay 0-3600",
            *_setting(
                "revert_delay_s", _ranged(0, 3600, "revert delay (s)"), ETrunk.revert_delay_s
            ),
        ),
        _c("revert disable", "revert disable", *_flag("revert_enabled", on=False)),
        _c(
            "e-trunk track bfd-session",
            "e-trunk track bfd-session session-name NAME",
            P.et_track,
            P.et_track_undo,
        ),
    ),
    "rbs": _table(
        _c("peer", "peer IP source IP port PORT", P.rbs_peer, P.rbs_peer_undo),
    ),
    "rbp": _table(
        _c("service-type", "service-type igmp", P.rbp_service, P.rbp_service_undo),
        _c(
            "backup-id",
            "backup-id ID remote-backup-service NAME",
            P.rbp_backup_id,
            P.rbp_backup_id_undo,
        ),
        _c(
            "peer-backup",
            "peer-backup {hot|cold}",
            *_setting("peer_backup", _one_of(("hot", "cold"), "peer-backup")),
        ),
        _c("e-trunk", "e-trunk ID eth-trunk ID", P.rbp_etrunk, P.rbp_etrunk_undo),
    ),
    "interface": _table(
        _c("shutdown", "shutdown", *_flag("shutdown", check=_kinds(_SHUTTABLE, "shutdown"))),
        _c("ip address", "ip address IP MASK [sub]", P.if_address, P.if_address_undo),
        _c("portswitch", "portswitch", P.if_portswitch, P.if_portswitch_undo),
        _c(
            "port link-type",
            "port link-type {access|trunk|hybrid}",
            *_setting(
                "link_type",
                _one_of(("access", "trunk", "hybrid"), "link-type"),
                check=_switched("port link-type"),
            ),
        ),
        _c(
            "port default vlan",
            "port default vlan ID",
            *_setting(
                "default_vlan",
                _ranged(1, 4094, "VLAN ID"),
                check=_switched("port default vlan"),
            ),
        ),
        _c(
            "eth-trunk",
            "eth-trunk ID",
            P.if_eth_trunk,
            _reset("eth_trunk"),
        ),
        _c("mode", "mode {lacp-static|manual [load-balance]}", P.if_mode, P.if_mode_undo),
        _c("pim sm", "pim sm", *_flag("pim_sm", check=_routed("pim sm"))),
        _c("igmp enable", "igmp enable", *_flag("igmp_enable", check=_routed("igmp enable"))),
        _c(
            "igmp version",
            "igmp version {2|3}",
            *_setting(
                "igmp_version", _ranged(2, 3, "IGMP version"), check=_kinds(_L3, "igmp version")
            ),
        ),
        _c(
            "e-trunk mode",
            "e-trunk mode {auto|force-master|force-backup}",
            *_setting(
                "etrunk_mode",
                _one_of(("auto", "force-master", "force-backup"), "e-trunk mode"),
                check=_kinds(_TRUNK, "e-trunk mode"),
            ),
        ),
        _c(
            "e-trunk",
            "e-trunk ID",
            *_setting("etrunk", _ETRUNK_ID, check=_kinds(_TRUNK, "e-trunk")),
        ),
        _c(
            "remote-backup-profile",
            "remote-backup-profile NAME",
            *_setting("rbp", lambda w: _name(w, 31, "remote-backup-profile name"), check=_bindable),
        ),
        _c(
            "lacp timeout",
            "lacp timeout {fast|slow}",
            *_setting(
                "lacp_timeout_fast",
                lambda w: _choice(w, ("fast", "slow"), "lacp timeout") == "fast",
                False,
                check=_kinds(_TRUNK, "lacp timeout"),
            ),
        ),
        _c(
            "least active-linknumber",
            "least active-linknumber 1-16",
            P.if_least_links,
            _reset("least_active_links"),
        ),
        _c(
            "max active-linknumber",
            "max active-linknumber 1-16",
            P.if_max_links,
            _reset("max_active_links"),
        ),
        _c(
            "lacp priority",
            "lacp priority 0-65535",
            *_setting(
                "lacp_port_priority",
                _ranged(0, 65535, "LACP port priority"),
                check=_kinds(_PHYSICAL, "lacp priority"),
            ),
        ),
    ),
    "ospf": _table(_c("area", "area ID", P.ospf_area)),
    "area": _table(_c("network", "network IP WILDCARD", P.area_network, P.area_network_undo)),
    "pim": _table(_c("static-rp", "static-rp IP", P.pim_rp, P.pim_rp_undo),
                  _c("spt-switch-threshold", "spt-switch-threshold {RATE|infinity}",
                     P.pim_spt, P.pim_spt_undo)),
    "bfd-session": _table(
        _c(
            "discriminator local",
            "discriminator local N",
            P.bfd_local,
            _reset("discriminator_local"),
        ),
        _c(
            "discriminator remote",
            "discriminator remote N",
            *_setting("discriminator_remote", _ranged(1, _ALL_ONES, "remote discriminator")),
        ),
        _c(
            "min-tx-interval",
            "min-tx-interval 3-1000",
            *_setting("min_tx_ms", _ranged(3, 1000, "min-tx-interval (ms)"), BfdSession.min_tx_ms),
        ),
        _c(
            "min-rx-interval",
            "min-rx-interval 3-1000",
            *_setting("min_rx_ms", _ranged(3, 1000, "min-rx-interval (ms)"), BfdSession.min_rx_ms),
        ),
        _c(
            "detect-multiplier",
            "detect-multiplier 3-50",
            *_setting(
                "detect_multiplier",
                _ranged(3, 50, "detect-multiplier"),
                BfdSession.detect_multiplier,
            ),
        ),
    ),
}
del P

# Sub-view commands, to tell "ours but misplaced" (an error) from "not ours" (kept as
# unknown). Left out: system-view words, which interface views use as prefixes of commands we
# do not model (``ospf cost 10``, ``bfd enable``), and words real VRP reuses in views we model
# (``timer hello`` in the pim view, ``peer`` in the ospf view). ``usage`` holds the view name.
_REUSED_ELSEWHERE = {("timer", "hello"), ("peer",)}
_FOREIGN = _table(
    *(
        _Cmd(cmd.words, view, cmd.do)
        for view, cmds in _TABLES.items()
        if view != "system"
        for cmd in cmds
        if cmd.words not in _REUSED_ELSEWHERE
    )
)
