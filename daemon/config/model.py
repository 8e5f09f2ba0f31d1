"""Typed model of one device's VRP configuration.

The parser fills it, the daemon builds its components from it and the renderer turns it back
into VRP text. Fields hold what the file says (``None`` = not configured) or, where VRP has a
well-known default, the effective value; defaults are never rendered back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from . import ifnames
from .ifnames import InterfaceKind

__all__ = [
    "CIPHER_MARK",
    "DEFAULT_ETRUNK_PORT",
    "DEFAULT_LACP_PRIORITY",
    "MAX_CLEAR_KEY",
    "RBP_FIRST_INDEX",
    "BfdSession",
    "DeviceConfig",
    "ETrunk",
    "Interface",
    "InterfaceKind",
    "Ospf",
    "Pim",
    "RemoteBackupProfile",
    "RemoteBackupService",
    "SecurityKey",
    "UnknownCommand",
]

DEFAULT_LACP_PRIORITY = 32768
DEFAULT_ETRUNK_PORT = 1025
RBP_FIRST_INDEX = 0x1000

# --- security-key obfuscation -------------------------------------------------------------
# VRP never shows a key in clear; neither do we. Our cipher form is
#   "%^%#" + base64(MAGIC + (key XOR pad)) + "%^%#"
# with the base64 characters "+/" replaced by "!_" and "=" padding dropped, and pad a fixed
# SHAKE-256 stream. This is OBFUSCATION, NOT SECURITY: anyone with this source can decode it.
# A cipher string that does not decode with MAGIC (such as a real device's) is an opaque key:
# its text itself is the shared secret, which is what both seed devices carry.
CIPHER_MARK = "%^%#"
_MAGIC = b"LAB1"
_PAD_SEED = b"igmp-hot-backup-lab security-key obfuscation v1"
_B64_TO_CIPHER = str.maketrans("+/", "!_")
_CIPHER_TO_B64 = str.maketrans("!_", "+/")
MAX_CLEAR_KEY = 16


def _xor_pad(data: bytes) -> bytes:
    pad = hashlib.shake_256(_PAD_SEED).digest(len(data))
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


def _encode_cipher(key: bytes) -> str:
    body = base64.b64encode(_MAGIC + _xor_pad(key)).decode("ascii").rstrip("=")
    return CIPHER_MARK + body.translate(_B64_TO_CIPHER) + CIPHER_MARK


def _decode_cipher(cipher: str) -> bytes | None:
    """The clear key inside one of our cipher strings, or None for a foreign (opaque) one."""
    body = cipher[len(CIPHER_MARK) : -len(CIPHER_MARK)]
    if not body.isascii() or "+" in body or "/" in body:
        return None
    b64 = body.translate(_CIPHER_TO_B64)
    try:
        raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
    except binascii.Error:
        return None
    if not raw.startswith(_MAGIC) or len(raw) == len(_MAGIC):
        return None
    return _xor_pad(raw[len(_MAGIC) :])


@dataclass(frozen=True)
class SecurityKey:
    """An E-Trunk shared key: ``key`` authenticates hellos, ``text`` is its cipher form.

    ``key`` is hidden from repr so that logging a config never leaks it.
    """

    key: bytes = field(repr=False)
    text: str

    @classmethod
    def from_clear(cls, clear: str) -> SecurityKey:
        """A key typed in clear (``security-key simple X`` or a plain ``cipher X``)."""
        if not 1 <= len(clear) <= MAX_CLEAR_KEY or not clear.isascii() or not clear.isprintable():
            raise ValueError(f"clear key must be 1..{MAX_CLEAR_KEY} printable ASCII characters")
        if " " in clear:
            raise ValueError("clear key must not contain spaces")
        key = clear.encode("ascii")
        return cls(key=key, text=_encode_cipher(key))

    @classmethod
    def from_cipher(cls, cipher: str) -> SecurityKey:
        """A ``%^%#...%^%#`` string: ours decodes to its clear key, any other is opaque."""
        if (
            len(cipher) <= 2 * len(CIPHER_MARK)
            or not cipher.startswith(CIPHER_MARK)
            or not cipher.endswith(CIPHER_MARK)
        ):
            raise ValueError(f"cipher key must look like {CIPHER_MARK}...{CIPHER_MARK}")
        if " " in cipher or not cipher.isprintable():
            raise ValueError("cipher key must be printable without spaces")
        clear = _decode_cipher(cipher)
        return cls(key=cipher.encode() if clear is None else clear, text=cipher)

    def render_cipher(self) -> str:
        """The form written to configuration text: never the clear key."""
        return self.text


# --- interfaces --------------------------------------------------------------------------


@dataclass
class Interface:
    """One ``interface X`` block."""

    name: str
    kind: InterfaceKind
    line: int
    shutdown: bool | None = None
    address: IPv4Interface | None = None
    sub_addresses: list[IPv4Interface] = field(default_factory=list)
    portswitch: bool = False
    link_type: str | None = None
    default_vlan: int | None = None
    eth_trunk: int | None = None
    trunk_mode: str | None = None
    pim_sm: bool = False
    igmp_enable: bool = False
    igmp_version: int | None = None
    etrunk: int | None = None
    etrunk_mode: str | None = None
    rbp: str | None = None
    lacp_timeout_fast: bool = False
    least_active_links: int | None = None
    max_active_links: int | None = None
    lacp_port_priority: int | None = None

    @property
    def admin_up(self) -> bool:
        """VRP 8 ports start shut down (hence ``undo shutdown``); logical ones start up."""
        if self.shutdown is None:
            return not self.kind.physical
        return not self.shutdown

    @property
    def igmp_version_effective(self) -> int:
        return 2 if self.igmp_version is None else self.igmp_version

    @property
    def linux_name(self) -> str | None:
        return ifnames.to_linux(self.name)

    @property
    def short_name(self) -> str:
        return ifnames.short(self.name)


# --- E-Trunk, RBS, RBP -------------------------------------------------------------------


@dataclass
class ETrunk:
    """One ``e-trunk N`` block; numeric fields hold effective values (defaults not rendered)."""

    id: int
    line: int
    peer_address: IPv4Address | None = None
    source_address: IPv4Address | None = None
    security_key: SecurityKey | None = None
    priority: int = 100
    hello_100ms: int = 10
    hold_multiplier: int = 20
    revert_delay_s: int = 120
    revert_enabled: bool = True
    track_bfd: str | None = None
    port: int = DEFAULT_ETRUNK_PORT  # copied from the system-wide ``e-trunk port N``


@dataclass
class RemoteBackupService:
    """One ``remote-backup-service NAME`` block (the RBS TCP channel)."""

    name: str
    line: int
    index: int
    peer: IPv4Address | None = None
    source: IPv4Address | None = None
    port: int | None = None


@dataclass
class RemoteBackupProfile:
    """One ``remote-backup-profile NAME`` block (which services are backed up, over what)."""

    name: str
    line: int
    index: int
    service_types: list[str] = field(default_factory=list)
    backup_id: int | None = None
    rbs: str | None = None
    peer_backup: str | None = None
    etrunk: int | None = None
    eth_trunk: int | None = None


# --- BFD, OSPF, PIM ----------------------------------------------------------------------


@dataclass
class BfdSession:
    """A static ``bfd NAME bind peer-ip ...`` session; with ``interface`` it is single hop.
    With ``auto`` its discriminators are negotiated: the local one chosen by the device, the
    remote one learned from the peer's packets (a peer such as FRR picks its own at random
    on every start, so a configured ``discriminator remote`` would go stale)."""

    name: str
    line: int
    peer_ip: IPv4Address
    source_ip: IPv4Address | None = None
    interface: str | None = None
    discriminator_local: int | None = None
    discriminator_remote: int | None = None
    min_tx_ms: int = 10
    min_rx_ms: int = 10
    detect_multiplier: int = 3
    committed: bool = False
    auto: bool = False

    @property
    def multihop(self) -> bool:
        """RFC 5883 (UDP 4784) when not bound to an interface, else RFC 5881 (UDP 3784)."""
        return self.interface is None


@dataclass
class Ospf:
    """``ospf N``: the lab uses its networks to compute routes between loopbacks."""

    process: int
    line: int
    router_id: IPv4Address | None = None
    areas: dict[str, list[IPv4Network]] = field(default_factory=dict)

    def covers(self, addr: IPv4Address) -> bool:
        """Whether a ``network`` statement of any area includes ``addr``."""
        return any(addr in net for nets in self.areas.values() for net in nets)


@dataclass
class Pim:
    """The ``pim`` block."""

    line: int
    static_rps: list[IPv4Address] = field(default_factory=list)
    # `spt-switch-threshold infinity`: last-hop routers stay on the RP's tree;
    # `spt-switch-threshold RATE`: they switch once a source sends faster (kbit/s); without
    # the command they switch on the first packet (VRP's default)
    spt_switch_infinity: bool = False
    spt_switch_kbps: int | None = None


@dataclass
class UnknownCommand:
    """A line the lab does not model; kept so the daemon can warn about it once."""

    line: int
    text: str
    view: str


# --- the device --------------------------------------------------------------------------


@dataclass
class DeviceConfig:
    """Everything one device's configuration file says."""

    sysname: str = "HUAWEI"
    source: str = "<config>"
    vlans: list[int] = field(default_factory=list)
    multicast_routing: bool = False
    lacp_priority: int | None = None
    lacp_etrunk_system_id: str | None = None
    lacp_etrunk_priority: int | None = None
    etrunk_port: int = DEFAULT_ETRUNK_PORT
    etrunks: dict[int, ETrunk] = field(default_factory=dict)
    rbs: dict[str, RemoteBackupService] = field(default_factory=dict)
    rbp: dict[str, RemoteBackupProfile] = field(default_factory=dict)
    interfaces: dict[str, Interface] = field(default_factory=dict)
    ospf: dict[int, Ospf] = field(default_factory=dict)
    pim: Pim | None = None
    bfd_enabled: bool = False
    bfd_sessions: dict[str, BfdSession] = field(default_factory=dict)
    unknown: list[UnknownCommand] = field(default_factory=list)

    @property
    def lacp_priority_effective(self) -> int:
        """LACP system priority of Eth-Trunks that are not in an E-Trunk."""
        return DEFAULT_LACP_PRIORITY if self.lacp_priority is None else self.lacp_priority

    @property
    def lacp_etrunk_priority_effective(self) -> int:
        """LACP system priority both E-Trunk devices present for their Eth-Trunks."""
        if self.lacp_etrunk_priority is None:
            return DEFAULT_LACP_PRIORITY
        return self.lacp_etrunk_priority

    @property
    def lacp_etrunk_system_id_bytes(self) -> bytes | None:
        """The shared LACP system ID of E-Trunk members as 6 bytes, as LACPDUs carry it."""
        if self.lacp_etrunk_system_id is None:
            return None
        return bytes.fromhex(self.lacp_etrunk_system_id.replace("-", ""))

    def interface(self, name: str) -> Interface:
        """Look an interface up by any spelling (``GE0/1/2``); KeyError if absent."""
        try:
            return self.interfaces[ifnames.canonical(name)]
        except ValueError:
            raise KeyError(name) from None

    def eth_trunk_members(self, trunk: int) -> list[Interface]:
        """Member ports of Eth-Trunk ``trunk`` in configuration order."""
        return [i for i in self.interfaces.values() if i.eth_trunk == trunk]

    def loopback_address(self) -> IPv4Address | None:
        """Loopback0's address: the device's identity for E-Trunk, RBS and BFD."""
        lo = self.interfaces.get("Loopback0")
        return None if lo is None or lo.address is None else lo.address.ip
