"""pvdd's nftables table: a restricted PvD's packets leave only with the PvD's mark, and a
parked mark's packets not at all.

Why: Linux treats a failed IPv4 route lookup of a device-bound socket as "on-link" and
sends anyway, even when the lookup ended at pvdd's ``oif DEV unreachable`` rule, so an
unprivileged ``curl --interface ispb`` reached a restricted PvD over IPv4 (docs/security.md).
Routing rules cannot close that; a filter on the way out can.

pvdd (root) keeps one table of its own, ``inet pvdd`` (:data:`TABLE`), with one chain in
the ``output`` hook (policy accept).  For every restricted PvD that has a mark it drops

* packets leaving the PvD's interface (when the PvD is alone on it) whose ``meta mark``
  under the mark mask is not the PvD's mark, and
* packets whose source is one of the PvD's addresses (held by no other PvD) without it.

It also drops every packet carrying a *parked* mark (a slot whose PvD went away, and every
slot while pvdd is away: docs/routing.md).  Routing alone fails such an IPv6 packet at
``fwmark M unreachable``, but the same IPv4 packet of a device-bound socket (every socket
the shim ties) would be sent on-link (an ARP request for its destination, and the packet
to whoever answers); the drop makes its ``send`` fail with EPERM instead.

A second chain, in the ``prerouting`` hook (:func:`plan_incoming`), gives a packet arriving
for a PvD that PvD's mark (by input interface where the PvD is alone on it, by input
interface and destination address where it shares it), so that the kernel's own reply to
it (an ICMP error, a TCP reset: ``fwmark_reflect``, pvdrun/routing/sysctls.py) is routed by
the PvD's table, never by the main table.  The mark does not choose the receiving socket
(UDP, TCP and raw socket lookups ignore it; ``tcp_fwmark_accept`` is left off) and only
routes what is not addressed to the host itself (the ``local`` table comes first).

Exempt, because the kernel or root-only programs send them unmarked and the PvD itself
needs them: ICMPv6 router/neighbour solicitations and advertisements and MLD reports
(sending any other ICMPv6 type than echo needs CAP_NET_RAW), and DHCP client traffic
(source ports 68 and 546 need CAP_NET_BIND_SERVICE).  The table is replaced atomically
(one nft transaction, through libnftables in pvdd's process: pvdrun/routing/nftlib.py) when
the wanted text changes, also at start (an earlier
pvdd's table is replaced in the same transaction that installs the new one: never a moment
without it), and deleted when it would be empty (no restricted PvD, no parked mark, no
PvD to mark packets for).  When pvdd stops it is replaced, before the mark rules go, by one
that also drops every mark pvdd gave out and marks no arriving packet (a reply marked for
a PvD whose ``fwmark M lookup T`` rule is gone would fail), and it stays (a restricted
PvD's unmarked packets stay dropped, no marked packet leaves while pvdd is away);
``pvdrun daemon --cleanup`` deletes it.  pvdd never
touches any other table.  Without the ``nft`` command pvdd logs an error and the IPv4 gaps
stay open.
"""
from __future__ import annotations

import ipaddress
import logging
import shutil
from collections.abc import Collection, Mapping

from pvdrun.config import RoutingConfig
from pvdrun.model import Pvd
from pvdrun.routing.nftlib import LibNft, NftCommand, NftError, open_nft
from pvdrun.routing.plan import host_of, is_restricted, sharing

log = logging.getLogger("pvdrun.routing")

#: Family and name of pvdd's table; the only nftables object pvdd creates or deletes.
TABLE = "inet pvdd"
#: The index of ``lo`` in every network namespace (the kernel's LOOPBACK_IFINDEX).
LOOPBACK_INDEX = 1
EXEMPT_ICMPV6 = ("nd-router-solicit", "nd-neighbor-solicit", "nd-neighbor-advert",
                 "mld-listener-report", "mld2-listener-report", "mld-listener-done")


FirewallError = NftError  # nft refused pvdd's table


def _which_nft() -> str | None:
    return shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")


def plan_rules(pvds: list[Pvd], cfg: RoutingConfig, parked_marks: Collection[int] = ()) -> list[str]:
    """The drop rules (nft syntax) for the parked marks and the restricted PvDs; empty when
    there are none."""
    per_iface, holders = sharing(pvds)
    rules: list[str] = []
    if parked_marks:
        marks = ", ".join(f"{mark:#x}" for mark in sorted(set(parked_marks)))
        rules.append(f"meta mark & {cfg.mark_mask:#x} {{ {marks} }} drop")
    for pvd in pvds:
        if not is_restricted(pvd) or not pvd.mark:
            continue
        unmarked = f"meta mark & {cfg.mark_mask:#x} != {pvd.mark:#x}"
        for ifname in pvd.interfaces:
            if per_iface.get(ifname) == 1 and '"' not in ifname:
                rules.append(f'oifname "{ifname}" {unmarked} drop')
        for address, family in _own_addresses(pvd, holders):
            rules.append(f"{family} saddr {address} {unmarked} drop")
    return rules


def plan_marked(pvds: list[Pvd], slot_marks: Mapping[str, int] | None = None) -> dict[int, list[str]]:
    """Mark -> the rules (nft syntax) of its chain: a packet with a PvD's mark (``slot_marks``,
    PvD ID -> its slot's mark, else ``Pvd.mark``) leaves only by the PvD's interfaces (or stays on
    ``lo``).  A marked socket that names another interface itself (a multicast or IPv6
    link-local scope, ``IP_UNICAST_IF``, ``IP_PKTINFO``, a broadcast address of another link, all
    routed by the ``local`` table or by that interface before any rule) is stopped here.  Where
    the PvD shares its interface, such a packet also carries one of the PvD's own source
    addresses (or a link-local one).  One verdict map sends each mark to its chain: an unmarked
    packet costs one lookup, whatever the number of PvDs."""
    _, holders = sharing(pvds)
    chains: dict[int, list[str]] = {}
    for pvd in pvds:
        mark = (slot_marks or {}).get(pvd.pvd_id) or pvd.mark
        if not mark or not pvd.ifindexes:
            continue
        # by index, not name: a number compare is cheaper on every marked packet than a name
        # compare, and pvdd replaces the table whenever a PvD's interfaces change
        indexes = ", ".join(str(i) for i in sorted({LOOPBACK_INDEX, *pvd.ifindexes}))
        rules = [f"oif != {{ {indexes} }} drop"]
        if pvd.needs_routing:
            own = _own_addresses(pvd, holders)
            for family, extra in (("ip", []), ("ip6", ["fe80::/10"])):
                addresses = [a for a, f in own if f == family] + extra
                if addresses:
                    rules.append(f'oif != {LOOPBACK_INDEX} {family} saddr != {{ {", ".join(addresses)} }} drop')
                else:
                    rules.append(f'oif != {LOOPBACK_INDEX} meta nfproto {"ipv4" if family == "ip" else "ipv6"} drop')
        chains[mark] = rules
    return chains


def _own_addresses(pvd: Pvd, holders: Mapping[str, int]) -> list[tuple[str, str]]:
    """(address, nft family keyword) of the PvD's addresses no other PvD holds, link-local
    ones left out: what names the PvD on a link it shares."""
    own = []
    for address in sorted({host_of(a) for a in pvd.addresses}):
        ip = ipaddress.ip_address(address)
        if holders.get(address) == 1 and not ip.is_link_local:
            own.append((address, "ip6" if ip.version == 6 else "ip"))
    return own


def plan_incoming(pvds: list[Pvd], marks: Mapping[str, int], cfg: RoutingConfig) -> list[str]:
    """The marking rules (nft syntax, prerouting) that give a packet arriving for a PvD the
    PvD's mark (``marks``: PvD ID -> the mark of its slot), so that the kernel's reply to it
    (``fwmark_reflect``, pvdrun/routing/sysctls.py) is routed by the PvD's table: by input
    interface where the PvD is alone on it, else by input interface and destination = one of
    the PvD's own addresses (an address two PvDs hold, or a link-local one, names neither).
    A packet that already carries a mark under the mask keeps it."""
    per_iface, holders = sharing(pvds)
    unmarked = f"meta mark & {cfg.mark_mask:#x} == 0"
    rules: list[str] = []
    for pvd in pvds:
        mark = marks.get(pvd.pvd_id)
        if not mark:
            continue
        for ifname in pvd.interfaces:
            if '"' in ifname:
                continue
            if per_iface.get(ifname) == 1 and not pvd.needs_routing:
                rules.append(f'iifname "{ifname}" {unmarked} meta mark set meta mark | {mark:#x}')
                continue
            for address, family in _own_addresses(pvd, holders):
                rules.append(f'iifname "{ifname}" {family} daddr {address} {unmarked} '
                             f'meta mark set meta mark | {mark:#x}')
    return rules


def ruleset(rules: list[str], incoming: list[str] | None = None, marked: Mapping[int, list[str]] | None = None,
            mask: int = 0xFFFF) -> str:
    """The nft script that replaces pvdd's table with one holding the drop ``rules`` (output),
    the chains of ``marked`` (mark -> rules, reached through one verdict map on ``meta mark &
    mask``) and the ``incoming`` marking rules (prerouting), in one transaction."""
    lines = [f"add table {TABLE}", f"delete table {TABLE}", f"table {TABLE} {{", "  chain output {",
             "    type filter hook output priority filter; policy accept;",
             f"    icmpv6 type {{ {', '.join(EXEMPT_ICMPV6)} }} accept",
             "    udp sport 68 udp dport 67 accept",
             "    udp sport 546 udp dport 547 accept"]
    lines += [f"    {rule}" for rule in rules]
    if marked:
        jumps = ", ".join(f"{mark:#x} : jump marked_{mark:x}" for mark in sorted(marked))
        lines += [f"    meta mark & {mask:#x} vmap {{ {jumps} }}"]
    lines += ["  }"]
    for mark in sorted(marked or {}):
        lines += [f"  chain marked_{mark:x} {{"] + [f"    {rule}" for rule in (marked or {})[mark]] + ["  }"]
    if incoming:
        lines += ["  chain prerouting {", "    type filter hook prerouting priority mangle; policy accept;"]
        lines += [f"    {rule}" for rule in incoming]
        lines += ["  }"]
    lines += ["}", ""]
    return "\n".join(lines)


class Firewall:
    """pvdd's nftables table in the current network namespace."""

    def __init__(self, nft: str | None = None) -> None:
        self.nft = nft or shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
        # the rules installed ([]: no table), None: not known (an earlier pvdd's may be there)
        self.current: list[str] | None = None
        self.warned = False
        self._runner: LibNft | NftCommand | None = None

    def _run(self, script: str) -> str:
        """Run an nft script (libnftables in this process, else the nft command)."""
        if self._runner is None:
            self._runner = NftCommand(self.nft) if self.nft and self.nft != _which_nft() else open_nft(self.nft)
        return self._runner.run(script)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def sync(self, pvds: list[Pvd], cfg: RoutingConfig, parked_marks: Collection[int] = (),
             incoming: Mapping[str, int] | None = None) -> bool:
        """Install, replace or remove the table so it holds exactly the rules ``pvds`` and
        ``parked_marks`` ask for, and the marking of packets arriving for the PvDs of
        ``incoming`` (PvD ID -> mark).  False when nft refused (logged once)."""
        drops, marking = plan_rules(pvds, cfg, parked_marks), plan_incoming(pvds, incoming or {}, cfg)
        marked = plan_marked(pvds, incoming)
        rules = drops + marking + [f"{mark:#x}: {rule}" for mark, chain in sorted(marked.items()) for rule in chain]
        if not rules:
            if self.current != []:
                self.remove()
            return True
        if rules == self.current:
            return True
        try:
            self._run(ruleset(drops, marking, marked, cfg.mark_mask))
        except (NftError, OSError) as exc:
            if not self.warned:
                log.error("cannot install nftables table %s (restricted PvDs stay reachable over "
                          "IPv4 by device binding, marked IPv4 sockets of a PvD that went away "
                          "are sent on-link, and the kernel's replies to a PvD's packets take the "
                          "main table; docs/security.md): %s", TABLE, exc)
                self.warned = True
            return False
        log.info("nftables table %s: %d rules", TABLE, len(rules))
        self.current = rules
        return True

    def exists(self) -> bool:
        """Whether the namespace holds a table named like pvdd's."""
        try:
            self._run(f"list table {TABLE}")
        except (NftError, OSError):
            return False
        return True

    def remove(self) -> bool:
        """Delete pvdd's table (ours, or an earlier pvdd's); True when one was there."""
        self.current = []
        if not self.exists():
            return False
        try:
            self._run(f"add table {TABLE}\ndelete table {TABLE}\n")
        except (NftError, OSError) as exc:
            log.warning("cannot delete nftables table %s: %s", TABLE, exc)
            return False
        return True
