"""The nftables table that sees what a cgroup's processes send, link by link.

One table per watch (``inet pvdrun_verify_<owner pid>_<token>``), one output chain at priority
300 (after every filter that may drop a packet: a packet counted here was not dropped on this
host) that sends the packets of the watched cgroup (``socket cgroupv2``: the cgroup of the
socket's creator, so every process of the tree, whatever its libraries) to:

* a counter for loopback (such a packet never leaves the host);
* one chain per link that existed when the watch began, adding each packet to a dynamic set
  keyed by its 5-tuple (protocol, source, source port, destination, destination port), with a
  counter per element;
* for a link made during the run, a set keyed by link, protocol, destination and destination
  port (nftables keeps at most five fields in a key: the source is what is lost).

For a protocol without ports the "ports" are the transport header's first four bytes (ICMP's
type, code and checksum): :func:`parse_flows` drops them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

TABLE_PREFIX = "pvdrun_verify_"
PORTED = frozenset({"tcp", "udp", "sctp", "dccp", "udplite"})
#: Elements a set holds; past it a new flow is not recorded (its packets still counted in
#: nothing): docs/cli.md says so.
SET_SIZE = 65535


@dataclass
class Flow:
    """Packets of one 5-tuple that left on one link."""

    link: str
    protocol: str
    source: str | None
    source_port: int | None
    destination: str
    destination_port: int | None
    packets: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"link": self.link, "protocol": self.protocol, "source": self.source,
                "source_port": self.source_port, "destination": self.destination,
                "destination_port": self.destination_port, "packets": self.packets, "bytes": self.bytes}


@dataclass
class Seen:
    """What a watch's table counted."""

    flows: list[Flow] = field(default_factory=list)
    loopback_packets: int = 0


def table_name(owner: int, token: str) -> str:
    return f"{TABLE_PREFIX}{owner}_{token}"


def quotable(name: str) -> bool:
    """Whether an interface name can stand in an nft script as a quoted string."""
    return bool(name) and all(c.isprintable() and c not in '"\\' for c in name)


def script(table: str, cgroup_path: str, level: int, links: list[str]) -> str:
    """The table (created anew) for the cgroup ``cgroup_path`` (as nft finds it: relative to
    /sys/fs/cgroup) at ``level`` in the cgroup2 hierarchy, one chain per link of ``links``."""
    links = [link for link in links if link != "lo" and quotable(link)]
    lines = [f"table inet {table} {{",
             "  counter loopback { }",
             f"  set u4 {{ type ifname . inet_proto . ipv4_addr . inet_service; flags dynamic; size {SET_SIZE}; counter; }}",
             f"  set u6 {{ type ifname . inet_proto . ipv6_addr . inet_service; flags dynamic; size {SET_SIZE}; counter; }}"]
    for index in range(len(links)):
        for version, kind in ((4, "ipv4_addr"), (6, "ipv6_addr")):
            lines.append(f"  set f{version}_{index} {{ type inet_proto . {kind} . inet_service . {kind} . "
                         f"inet_service; flags dynamic; size {SET_SIZE}; counter; }}")
    lines += ["  chain out {",
              "    type filter hook output priority 300; policy accept;",
              f"    socket cgroupv2 level {level} {json.dumps(cgroup_path)} goto held",
              "  }",
              "  chain held {",
              '    oifname "lo" counter name loopback accept']
    if links:
        pairs = ", ".join(f'"{link}" : goto link_{index}' for index, link in enumerate(links))
        lines.append(f"    oifname vmap {{ {pairs} }}")
    lines += ["    meta nfproto ipv4 add @u4 { oifname . meta l4proto . ip daddr . th dport }",
              "    meta nfproto ipv6 add @u6 { oifname . meta l4proto . ip6 daddr . th dport }",
              "  }"]
    for index in range(len(links)):
        lines += [f"  chain link_{index} {{",
                  f"    meta nfproto ipv4 add @f4_{index} {{ meta l4proto . ip saddr . th sport . ip daddr . th dport }}",
                  f"    meta nfproto ipv6 add @f6_{index} {{ meta l4proto . ip6 saddr . th sport . ip6 daddr . th dport }}",
                  "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def link_names(listing: dict[str, Any]) -> dict[str, str]:
    """Chain name -> link, from the ``oifname vmap`` rule of a JSON listing."""
    found: dict[str, str] = {}
    for item in listing.get("nftables", []):
        rule = item.get("rule")
        if not rule or rule.get("chain") != "held":
            continue
        for expr in rule.get("expr", []):
            vmap = expr.get("vmap") if isinstance(expr, dict) else None
            if not vmap:
                continue
            for key, verdict in vmap.get("data", {}).get("set", []):
                target = verdict.get("goto", {}).get("target") if isinstance(verdict, dict) else None
                if isinstance(key, str) and isinstance(target, str):
                    found[target] = key
    return found


def _port(protocol: str, value: Any) -> int | None:
    return int(value) if protocol in PORTED and isinstance(value, int) else None


def parse(listing: dict[str, Any]) -> Seen:
    """The flows and the loopback count of a JSON listing (``nft -j list table inet T``)."""
    seen = Seen()
    chains = link_names(listing)
    for item in listing.get("nftables", []):
        counter = item.get("counter")
        if counter and counter.get("name") == "loopback":
            seen.loopback_packets = int(counter.get("packets", 0))
        found = item.get("set")
        if not found:
            continue
        name = str(found.get("name", ""))
        for element in found.get("elem", []):
            inner = element.get("elem", element) if isinstance(element, dict) else {}
            values = inner.get("val", {}).get("concat") if isinstance(inner, dict) else None
            count = inner.get("counter", {}) if isinstance(inner, dict) else {}
            if not isinstance(values, list):
                continue
            packets, size = int(count.get("packets", 0)), int(count.get("bytes", 0))
            if name in ("u4", "u6") and len(values) == 4:
                link, protocol, destination, dport = values
                protocol = str(protocol)
                seen.flows.append(Flow(str(link), protocol, None, None, str(destination),
                                       _port(protocol, dport), packets, size))
            elif name[:1] == "f" and "_" in name and len(values) == 5:
                link = chains.get(f"link_{name.split('_', 1)[1]}", "?")
                protocol, source, sport, destination, dport = values
                protocol = str(protocol)
                seen.flows.append(Flow(link, protocol, str(source), _port(protocol, sport), str(destination),
                                       _port(protocol, dport), packets, size))
    seen.flows = _merged(seen.flows)
    return seen


def _merged(flows: list[Flow]) -> list[Flow]:
    """One flow per 5-tuple and link: elements that differed only in a portless protocol's
    header bytes (each ICMP echo has its own checksum) are one flow."""
    merged: dict[tuple[Any, ...], Flow] = {}
    for flow in flows:
        key = (flow.link, flow.protocol, flow.source, flow.source_port, flow.destination, flow.destination_port)
        if key in merged:
            merged[key].packets += flow.packets
            merged[key].bytes += flow.bytes
        else:
            merged[key] = flow
    return sorted(merged.values(), key=lambda f: (f.link, f.protocol, f.destination, f.destination_port or 0,
                                                  f.source or "", f.source_port or 0))
