"""The device's multicast forwarding: PIM's outgoing interfaces and the kernel's upcalls
turned into MFC entries on the namespace's mroute socket.

The kernel forwards; the daemon never touches a data packet. An (S,G) entry appears when the
kernel reports traffic it has no entry for (NOCACHE upcall). Its incoming interface is the
RPF interface: toward the source on the RP (the source is attached to it), toward the RP
everywhere else. Its outgoing interfaces are the group's, minus the incoming one. Where PIM
holds (S,G) state (the source's tree, a source pruned off the shared tree) its SgChanged
decides the entry's input and outputs instead (`set_sg`). An entry for a group without
state is installed with no outgoing interface, so the kernel drops that traffic itself
instead of upcalling per packet. Entries follow the group's interface set, and move when
the RPF interface moves (a WRONGVIF upcall or a route change).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address

from daemon.kernel.mroute import IGMPMSG_NOCACHE, IGMPMSG_WRONGVIF, MrouteSocket, Upcall
from daemon.log import Log


@dataclass
class MfcEntry:
    source: IPv4Address
    group: IPv4Address
    iif: str | None  # VRP interface name
    oifs: frozenset[str]
    created: float  # wall clock, for the display's uptime


class MulticastFib:
    def __init__(self, mroute: MrouteSocket, vif_of: Callable[[str], int | None],
                 iif_for: Callable[[IPv4Address], str | None], log: Log) -> None:
        self.mroute = mroute
        self.vif_of = vif_of  # VRP interface -> VIF number (None: not a VIF)
        self.iif_for = iif_for  # source -> RPF interface (VRP name), per the rule above
        self.log = log
        self.entries: dict[tuple[IPv4Address, IPv4Address], MfcEntry] = {}
        self.group_oifs: dict[IPv4Address, frozenset[str]] = {}
        # PIM's (S,G) state: (input, None meaning the default rule above; outputs)
        self.sg: dict[tuple[IPv4Address, IPv4Address], tuple[str | None, frozenset[str]]] = {}
        self.upcalls = {"nocache": 0, "wrongvif": 0, "other": 0}
        self.errors = 0

    def upcall(self, up: Upcall) -> None:
        if up.kind == IGMPMSG_NOCACHE:
            self.upcalls["nocache"] += 1
            self._ensure(up.source, up.group)
        elif up.kind == IGMPMSG_WRONGVIF:
            self.upcalls["wrongvif"] += 1
            entry = self.entries.get((up.source, up.group))
            if entry is not None and self._want(entry)[0] != entry.iif:
                self._install(entry, *self._want(entry))
        else:
            self.upcalls["other"] += 1

    def set_group_oifs(self, group: IPv4Address, oifs: frozenset[str]) -> None:
        if oifs:
            self.group_oifs[group] = oifs
        else:
            self.group_oifs.pop(group, None)
        for entry in [e for e in self.entries.values() if e.group == group]:
            if (entry.source, group) not in self.sg:
                self._install(entry, entry.iif, oifs)

    def set_sg(self, source: IPv4Address, group: IPv4Address, iif: str | None,
               oifs: frozenset[str], present: bool) -> None:
        """PIM's (S,G) state for one entry; `present` False hands it back to its group."""
        if present:
            self.sg[(source, group)] = (iif, oifs)
        else:
            self.sg.pop((source, group), None)
        entry = self.entries.get((source, group))
        if entry is not None:
            self._install(entry, *self._want(entry))

    def rpf_changed(self) -> None:
        """Routes moved: re-point every entry whose RPF interface changed."""
        for entry in list(self.entries.values()):
            iif, oifs = self._want(entry)
            if iif != entry.iif:
                self._install(entry, iif, oifs)

    def _want(self, entry: MfcEntry) -> tuple[str | None, frozenset[str]]:
        """(input, outputs) the entry should have now."""
        state = self.sg.get((entry.source, entry.group))
        if state is not None:
            return state[0] or self.iif_for(entry.source), state[1]
        return self.iif_for(entry.source), self.group_oifs.get(entry.group, frozenset())

    def _ensure(self, source: IPv4Address, group: IPv4Address) -> None:
        entry = self.entries.get((source, group))
        if entry is None:
            entry = MfcEntry(source, group, None, frozenset(), time.time())
            self.entries[(source, group)] = entry
        self._install(entry, *self._want(entry))

    def _install(self, entry: MfcEntry, iif: str | None, oifs: frozenset[str]) -> None:
        parent = self.vif_of(iif) if iif else None
        out = {v for o in oifs if o != iif and (v := self.vif_of(o)) is not None}
        try:
            if parent is None:
                # no RPF interface (no route to the RP or source): nothing may be forwarded
                self.mroute.del_mfc(entry.source, entry.group)
            else:
                if iif != entry.iif and entry.iif is not None:
                    # a new input: a new kernel entry, whose WRONGVIF reports are not held
                    # back by the old one's 3 s throttle (the packet that sets the SPT bit
                    # again after a moment on the register VIF must be reported at once)
                    self.mroute.del_mfc(entry.source, entry.group)
                self.mroute.add_mfc(entry.source, entry.group, parent, out)
        except OSError as exc:
            self.errors += 1
            self.log.error("mfc update failed", source=str(entry.source),
                           group=str(entry.group), error=str(exc))
            return
        if (entry.iif, entry.oifs) != (iif, oifs):
            self.log.info("mfc entry", source=str(entry.source), group=str(entry.group),
                          iif=iif or "-", oifs=",".join(sorted(oifs - {iif})) or "-")
        entry.iif, entry.oifs = iif, frozenset(oifs - {iif} if iif else oifs)

    def packets(self, source: IPv4Address, group: IPv4Address) -> int | None:
        """The kernel's packet count of an installed entry (None: no entry)."""
        return self._counter(source, group, 0)

    def octets(self, source: IPv4Address, group: IPv4Address) -> int | None:
        """The kernel's byte count of an installed entry (None: no entry)."""
        return self._counter(source, group, 1)

    def _counter(self, source: IPv4Address, group: IPv4Address, which: int) -> int | None:
        if (source, group) not in self.entries:
            return None
        try:
            return self.mroute.sg_counters(source, group)[which]
        except OSError:
            return None

    def remove_all(self) -> None:
        for entry in self.entries.values():
            try:
                self.mroute.del_mfc(entry.source, entry.group)
            except OSError:
                self.errors += 1
        self.entries.clear()

    def rows(self) -> list[dict]:
        """Every entry with the kernel's counters, for `display multicast routing-table`."""
        now = time.time()
        out = []
        for e in sorted(self.entries.values(), key=lambda e: (int(e.group), int(e.source))):
            pkts, nbytes, wrong = self.mroute.sg_counters(e.source, e.group)
            out.append({"source": str(e.source), "group": str(e.group),
                        "upstream_interface": e.iif, "downstream_interfaces": sorted(e.oifs),
                        "uptime_s": round(now - e.created, 1), "packets": pkts,
                        "bytes": nbytes, "wrong_interface": wrong})
        return out


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def render_multicast_routing_table(rows: list[dict]) -> str:
    """VRP's `display multicast routing-table` layout."""
    lines = ["Multicast routing table of VPN-Instance: public net",
             f" Total {len(rows)} entr{'y' if len(rows) == 1 else 'ies'}"]
    for i, r in enumerate(rows, 1):
        lines += ["", f" {i:05d}. ({r['source']}, {r['group']})",
                  f"       Uptime: {_hms(r['uptime_s'])}",
                  f"       Upstream Interface: {r['upstream_interface'] or 'NULL'}",
                  f"       List of {len(r['downstream_interfaces'])} downstream interface"
                  f"{'' if len(r['downstream_interfaces']) == 1 else 's'}"]
        lines += [f"           {j}:  {o}" for j, o in enumerate(r["downstream_interfaces"], 1)]
        lines.append(f"       Matched {r['packets']} packets ({r['bytes']} bytes), "
                     f"wrong interface {r['wrong_interface']}")
    return "\n".join(lines)
