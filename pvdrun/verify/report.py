"""The verdict of a verified run, and its report (text and JSON; docs/cli.md, "verify").

Something *left* the PvD when:

* the shim tied a socket to another PvD (a program that asked for one through the C API);
* a lookup went to a server that is not one of the PvD's;
* a packet of the program's process tree left on a link that is not the PvD's, or on the
  PvD's link from an address that is not the PvD's (the wrong source address on a shared link).

Packets on loopback never leave the host: counted, not held against the program.  A refused
socket or lookup is the shim holding the line, not a leak.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from pvdrun.model import Pvd
from pvdrun.verify.nftwatch import Flow, Seen
from pvdrun.verify.trace import Trace

NOT_SEEN = "not seen by the shim: made without it (raw system calls, a static program)"


@dataclass
class Outcome:
    """How the command ended: its exit status or the signal that ended it."""

    argv: list[str]
    pid: int
    status: int | None
    signal: str | None


@dataclass
class Links:
    """The link check: whether it ran (``why`` not when not) and what it saw."""

    watched: bool
    why: str | None = None
    seen: Seen = field(default_factory=Seen)
    ended: list[int] = field(default_factory=list)


def host_of(address: str) -> str:
    """The address of ``[addr]:port``, ``addr:port`` (IPv4) or ``addr%zone``, without zone."""
    text = address.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text.split("%", 1)[0]


def _same(left: str, right: str) -> bool:
    try:
        return ipaddress.ip_address(host_of(left)) == ipaddress.ip_address(host_of(right))
    except ValueError:
        return host_of(left) == host_of(right)


def _own_source(source: str | None, pvd: Pvd) -> bool:
    if source is None:
        return True  # a link made during the run: no source recorded
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return False
    if address.is_link_local or address.is_unspecified:
        return True
    return any(_same(source, mine) for mine in pvd.ip_addresses())


def _pid_of(flow: Flow, trace: Trace) -> int | None:
    """The process the shim saw sending to the flow's destination, if it saw one."""
    for record in trace.sockets:
        destination = str(record.get("destination", ""))
        if destination and _same(destination, flow.destination):
            port = destination.rsplit(":", 1)[-1]
            if flow.destination_port is None or port == str(flow.destination_port):
                pid = record.get("pid")
                return pid if isinstance(pid, int) else None
    return None


@dataclass
class Report:
    """Everything ``pvdrun verify`` found, and what left the PvD."""

    name: str
    pvd: Pvd
    outcome: Outcome
    trace: Trace
    links: Links
    offending: list[dict[str, Any]] = field(default_factory=list)

    @property
    def left(self) -> bool:
        return bool(self.offending)

    @classmethod
    def build(cls, name: str, pvd: Pvd, outcome: Outcome, trace: Trace, links: Links) -> Report:
        made = cls(name, pvd, outcome, trace, links)
        made.offending = made._offending()
        return made

    def _offending(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for record in self.trace.sockets:
            if record.get("verdict") == "tied" and record.get("pvd") not in ("", self.pvd.pvd_id):
                found.append({"kind": "socket", "why": f"tied to another PvD, {record.get('pvd')}",
                              "pid": record.get("pid"), "protocol": record.get("protocol"),
                              "source": record.get("source"), "destination": record.get("destination")})
        for record in self.trace.lookups:
            server = str(record.get("server", ""))
            if server and record.get("verdict") != "refused" and not any(
                    _same(server, mine) for mine in self.pvd.dns_servers):
                found.append({"kind": "lookup", "why": "sent to a server that is not the PvD's",
                              "pid": record.get("pid"), "name": record.get("name"),
                              "type": record.get("type"), "server": server})
        inside = set(self.pvd.interfaces)
        for flow in self.links.seen.flows:
            if flow.link not in inside:
                why = "left on another link"
            elif not _own_source(flow.source, self.pvd):
                why = "left from an address that is not the PvD's"
            else:
                continue
            pid = _pid_of(flow, self.trace)
            found.append({"kind": "link", "why": why, **flow.to_dict(), "pid": pid,
                          "seen_by_shim": pid is not None})
        return found

    # -- rendering -------------------------------------------------------------------------

    def inside_packets(self) -> int:
        inside = set(self.pvd.interfaces)
        return sum(f.packets for f in self.links.seen.flows
                   if f.link in inside and _own_source(f.source, self.pvd))

    def to_dict(self) -> dict[str, Any]:
        sockets = self.trace.sockets
        return {
            "verdict": "left" if self.left else "stayed",
            "pvd": {"name": self.name, "pvd_id": self.pvd.pvd_id, "interfaces": list(self.pvd.interfaces),
                    "addresses": self.pvd.ip_addresses(), "dns_servers": list(self.pvd.dns_servers)},
            "command": {"argv": self.outcome.argv, "pid": self.outcome.pid, "status": self.outcome.status,
                        "signal": self.outcome.signal},
            "sockets": {verdict: sum(1 for r in sockets if r.get("verdict") == verdict)
                        for verdict in ("tied", "refused", "not_tied")} | {"records": sockets},
            "lookups": {"count": len(self.trace.lookups), "records": self.trace.lookups},
            "trace_lines_unreadable": self.trace.unreadable,
            "links": {"watched": self.links.watched, "why": self.links.why,
                      "packets_inside": self.inside_packets(),
                      "packets_loopback": self.links.seen.loopback_packets,
                      "flows": [f.to_dict() for f in self.links.seen.flows]},
            "ended_after_the_command": self.links.ended,
            "offending": self.offending,
        }

    def lines(self) -> list[str]:
        """The report for people (verify writes it to stderr)."""
        pvd, outcome = self.pvd, self.outcome
        head = "LEFT the PvD" if self.left else "stayed in the PvD"
        lines = [f"pvdrun verify: {self.name} ({pvd.pvd_id}): {head}"]
        ended = f"killed by {outcome.signal}" if outcome.signal else f"exit {outcome.status}"
        lines.append(f"  command: {ended}")
        tied = sum(1 for r in self.trace.sockets if r.get("verdict") == "tied")
        refused = sum(1 for r in self.trace.sockets if r.get("verdict") == "refused")
        lines.append(f"  sockets: {tied} tied, {refused} refused (the shim's trace)")
        servers = sorted({str(r.get("server")) for r in self.trace.lookups if r.get("server")})
        lines.append(f"  lookups: {len(self.trace.lookups)}" + (f", to {', '.join(servers)}" if servers else ""))
        if self.links.watched:
            links = ", ".join(pvd.interfaces) or "none"
            lines.append(f"  links: {self.inside_packets()} packets on the PvD's links ({links}), "
                         f"{self.links.seen.loopback_packets} on loopback")
        else:
            lines.append(f"  links: not watched ({self.links.why})")
        if self.links.ended:
            lines.append(f"  ended after the command: {len(self.links.ended)} process(es) left running "
                         f"({', '.join(map(str, self.links.ended))})")
        for item in self.offending:
            lines.append("  LEFT: " + describe(item))
        return lines


def describe(item: dict[str, Any]) -> str:
    """One offending flow, socket or lookup, in a line."""
    pid = item.get("pid")
    who = f"pid {pid}" if pid is not None else NOT_SEEN
    if item["kind"] == "link":
        def end(address: Any, port: Any) -> str:
            if address is None:
                return "?"
            text = f"[{address}]" if ":" in str(address) and port is not None else str(address)
            return f"{text}:{port}" if port is not None else text
        return (f"{item['protocol']} {end(item['source'], item['source_port'])} -> "
                f"{end(item['destination'], item['destination_port'])} on {item['link']}, "
                f"{item['packets']} packet(s): {item['why']}; {who}")
    if item["kind"] == "lookup":
        return f"lookup {item.get('name')} {item.get('type')} to {item.get('server')}: {item['why']}; {who}"
    return f"socket to {item.get('destination') or '?'}: {item['why']}; {who}"
