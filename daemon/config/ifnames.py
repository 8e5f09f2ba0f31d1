"""The one mapping between VRP interface names and Linux interface names.

People see VRP names (``GigabitEthernet0/1/2``, ``GE0/1/2``, ``Eth-Trunk1``); the kernel needs
names of at most 15 characters without ``/``. Every part of the lab (config, CLI, namespace
builder, captures) goes through this module so the two spellings can never drift apart.

| VRP (canonical)          | short       | Linux        |
| ------------------------ | ----------- | ------------ |
| GigabitEthernet0/1/2     | GE0/1/2     | ge0-1-2      |
| XGigabitEthernet0/0/1    | XGE0/0/1    | xge0-0-1     |
| Eth-Trunk1               | Eth-Trunk1  | eth-trunk1   |
| Loopback0                | Loopback0   | lo           |
| Loopback1                | Loopback1   | loop1        |
| NULL0                    | NULL0       | (no device)  |
| Vlanif100                | Vlanif100   | vlanif100    |

Number ranges are chosen so that every Linux name fits in 15 characters.
"""

from __future__ import annotations

import enum
import re

__all__ = [
    "InterfaceKind",
    "canonical",
    "from_linux",
    "kind",
    "known_type",
    "short",
    "to_linux",
]


class InterfaceKind(enum.Enum):
    """The interface types the lab models (anything else in a config is an unknown command)."""

    GE = "GigabitEthernet"
    XGE = "XGigabitEthernet"
    ETH_TRUNK = "Eth-Trunk"
    LOOPBACK = "Loopback"
    NULL = "NULL"
    VLANIF = "Vlanif"

    @property
    def physical(self) -> bool:
        """True for ports with a cable (they default to shutdown and can join an Eth-Trunk)."""
        return self in (InterfaceKind.GE, InterfaceKind.XGE)


# Every accepted spelling of a type word (lower case) -> kind.
_TYPE_WORDS: dict[str, InterfaceKind] = {
    "gigabitethernet": InterfaceKind.GE,
    "ge": InterfaceKind.GE,
    "xgigabitethernet": InterfaceKind.XGE,
    "xge": InterfaceKind.XGE,
    "eth-trunk": InterfaceKind.ETH_TRUNK,
    "loopback": InterfaceKind.LOOPBACK,
    "null": InterfaceKind.NULL,
    "vlanif": InterfaceKind.VLANIF,
}
_SHORT_PREFIX = {InterfaceKind.GE: "GE", InterfaceKind.XGE: "XGE"}
_LINUX_PREFIX = {
    InterfaceKind.GE: "ge",
    InterfaceKind.XGE: "xge",
    InterfaceKind.ETH_TRUNK: "eth-trunk",
    InterfaceKind.LOOPBACK: "loop",
    InterfaceKind.VLANIF: "vlanif",
}
# Inclusive number ranges; slot/card/port for GE/XGE. Chosen to keep Linux names <= 15 chars.
_SLOT_MAX = 255
_NUMBER_RANGE = {
    InterfaceKind.ETH_TRUNK: (0, 1023),
    InterfaceKind.LOOPBACK: (0, 2147483647),
    InterfaceKind.NULL: (0, 0),
    InterfaceKind.VLANIF: (1, 4094),
}

_TYPE_WORD_RE = re.compile(r"[A-Za-z][A-Za-z-]*", re.ASCII)
_NAME_RE = re.compile(r"([A-Za-z][A-Za-z-]*?)\s*([0-9][0-9/]*)?", re.ASCII)
_LINUX_RE = re.compile(r"(xge|ge|eth-trunk|loop|vlanif)([0-9][0-9-]*)", re.ASCII)


def _parse(name: str) -> tuple[InterfaceKind, tuple[int, ...]]:
    """Split a VRP name in any accepted spelling into its kind and numbers."""
    m = _NAME_RE.fullmatch(name.strip())
    if m is None:
        raise ValueError(f"not an interface name: {name!r}")
    word, number = m.group(1), m.group(2)
    found = _TYPE_WORDS.get(word.lower())
    if found is None:
        raise ValueError(f"unknown interface type {word!r} in {name!r}")
    if number is None:
        raise ValueError(f"interface number missing in {name!r}")
    parts = number.split("/")
    if found.physical:
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"{found.value} needs slot/card/port, got {name!r}")
        nums = tuple(int(p) for p in parts)
        if max(nums) > _SLOT_MAX:
            raise ValueError(f"slot/card/port above {_SLOT_MAX} in {name!r}")
        return found, nums
    if len(parts) != 1:
        raise ValueError(f"{found.value} takes a single number, got {name!r}")
    low, high = _NUMBER_RANGE[found]
    value = int(parts[0])
    if not low <= value <= high:
        raise ValueError(f"{found.value} number must be {low}..{high}, got {name!r}")
    return found, (value,)


def known_type(name: str) -> bool:
    """Whether ``name`` starts with a type word we model.

    Lets a parser tell an interface it does not model (``Tunnel1``: unknown, kept) from a
    malformed one of ours (``GE0/1``: an error).
    """
    m = _TYPE_WORD_RE.match(name.strip())
    return m is not None and m.group(0).lower() in _TYPE_WORDS


def kind(name: str) -> InterfaceKind:
    """The kind of an interface given by any accepted spelling."""
    return _parse(name)[0]


def canonical(name: str) -> str:
    """Full VRP name (``GE0/1/2`` -> ``GigabitEthernet0/1/2``); ValueError if not a name."""
    found, nums = _parse(name)
    return found.value + "/".join(str(n) for n in nums)


def short(name: str) -> str:
    """Short VRP name as displays use it (``GigabitEthernet0/1/2`` -> ``GE0/1/2``)."""
    found, nums = _parse(name)
    return _SHORT_PREFIX.get(found, found.value) + "/".join(str(n) for n in nums)


def to_linux(name: str) -> str | None:
    """Linux device name, or None for NULL0 (it discards and has no device)."""
    found, nums = _parse(name)
    if found is InterfaceKind.NULL:
        return None
    if found is InterfaceKind.LOOPBACK and nums == (0,):
        return "lo"
    return _LINUX_PREFIX[found] + "-".join(str(n) for n in nums)


def from_linux(linux: str) -> str:
    """Canonical VRP name of a Linux device; ValueError for names outside the mapping."""
    if linux == "lo":
        return "Loopback0"
    m = _LINUX_RE.fullmatch(linux)
    if m is not None:
        prefix = next(k for k, v in _LINUX_PREFIX.items() if v == m.group(1))
        try:
            name = canonical(prefix.value + m.group(2).replace("-", "/"))
        except ValueError:
            pass
        else:
            # Only the exact spelling to_linux produces maps back (no "loop0", "ge00-1-2").
            if to_linux(name) == linux:
                return name
    raise ValueError(f"{linux!r} is not a Linux name of a lab interface")
