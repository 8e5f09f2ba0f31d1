"""`display interface brief` and `display ip interface brief` renderers (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class IfRow:
    """One interface as a person reads it: VRP name, states, address, error counters."""

    name: str
    phy: str  # "up", "down", "*down" (administratively down), "^down" (standby)
    protocol: str  # "up", "down", "up(s)" (spoofing: loopback, NULL)
    address: str  # "10.0.13.1/24" or "unassigned"
    linux: str | None
    member_of: str | None = None
    in_errors: int = 0
    out_errors: int = 0

    def json(self) -> dict:
        return asdict(self)


_LEGEND = """PHY: Physical
*down: administratively down
^down: standby
(l): loopback
(s): spoofing
(E): E-Trunk down
"""


def _ordered(rows: list[IfRow]) -> list[tuple[IfRow, bool]]:
    """Rows in display order, members right under their Eth-Trunk (VRP indents them)."""
    out: list[tuple[IfRow, bool]] = []
    members = {r.name: [m for m in rows if m.member_of == r.name] for r in rows}
    for r in rows:
        if r.member_of and r.member_of in members:
            continue
        out.append((r, False))
        out += [(m, True) for m in members.get(r.name, [])]
    return out


def render_interface_brief(rows: list[IfRow]) -> str:
    lines = [_LEGEND.rstrip("\n")]
    lines.append(f"{'Interface':28}{'PHY':9}{'Protocol':10}{'IP Address/Mask':20}"
                 f"{'inErrors':>10} {'outErrors':>10}")
    for r, member in _ordered(rows):
        name = ("  " + r.name) if member else r.name
        lines.append(f"{name:28}{r.phy:9}{r.protocol:10}{r.address:20}"
                     f"{r.in_errors:>10} {r.out_errors:>10}")
    return "\n".join(lines)


def render_ip_interface_brief(rows: list[IfRow]) -> str:
    l3 = [r for r in rows if r.member_of is None and (r.address != "unassigned"
                                                       or r.name.startswith("NULL"))]

    def count(attr: str, up: bool) -> int:
        return sum(1 for r in l3 if getattr(r, attr).startswith("up") == up)

    lines = [
        "*down: administratively down",
        "^down: standby",
        "(l): loopback",
        "(s): spoofing",
        "(E): E-Trunk down",
        f"The number of interface that is UP in Physical is {count('phy', True)}",
        f"The number of interface that is DOWN in Physical is {count('phy', False)}",
        f"The number of interface that is UP in Protocol is {count('protocol', True)}",
        f"The number of interface that is DOWN in Protocol is {count('protocol', False)}",
        "",
        f"{'Interface':34}{'IP Address/Mask':21}{'Physical':11}{'Protocol':8}",
    ]
    lines += [f"{r.name:34}{r.address:21}{r.phy:11}{r.protocol:8}".rstrip() for r in l3]
    return "\n".join(lines)
