"""What pvdd installs for a PvD table: one routing table per PvD, its rules, its mark.

Pure functions (no netlink), so the layout is testable without root.  Layout
(``P`` = ``[routing] rule_priority_base``, ``T`` = ``table_base + slot``,
``M`` = ``mark_base + slot + 1``; docs/routing.md):

* ``P``:   ``fwmark M/mask lookup T`` for every PvD;
* ``P+1``: ``fwmark M/mask unreachable``: marked traffic whose table has no route ends
  here, before any source rule (IPv6 retries a failed lookup with the source it chose);
* ``P+2``: ``oif DEV lookup T`` for an unrestricted PvD alone on its interface;
* ``P+3``: ``from ADDR lookup T`` for an unrestricted PvD's addresses (an address
  two PvDs hold is left to device binding);
* ``P+4``: ``from ADDR unreachable`` for every PvD, and ``oif DEV unreachable`` for a
  restricted PvD alone on its interface: its traffic never reaches the main table.

Each table also holds a *marker*, ``throw 100::TAG/128`` (:func:`marker_route`; RFC 6666's
discard-only prefix, ``throw`` = as if there were no route), where TAG is a 64-bit hash of
the PvD ID (:func:`pvd_tag`).  It names the table's PvD in the kernel itself, so a new pvdd
gives every PvD the slot (mark, table) an earlier one gave it: a socket marked before a
restart or a crash never lands in another PvD's table.

A slot whose PvD went away is *parked* (:class:`SlotTable`): it keeps its marker and its
``fwmark M unreachable`` rules (:func:`plan_parked`; pvdd's nftables table also drops
its mark), so the PvD's marked sockets fail instead of reaching the main table, and the
PvD gets the same slot back when it returns.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from pvdrun.config import MAX_PVD_SLOTS, RoutingConfig
from pvdrun.model import Pvd, fnv1a

#: rtnetlink protocol number that tags every rule and route pvdd makes (``proto 153``).
RTPROT_PVDD = 0x99

ACTION_LOOKUP = "lookup"
ACTION_UNREACHABLE = "unreachable"
#: Route types pvdd installs: the PvD's own routes, and the marker of a table.
KIND_UNICAST = "unicast"
KIND_THROW = "throw"
#: RFC 6666 discard-only prefix: a table's marker route is ``throw 100::TAG/128``.
MARKER_NET = ipaddress.IPv6Network("100::/64")
MARKER_METRIC = 1024


@dataclass(frozen=True, order=True)
class RuleSpec:
    """One ``ip rule`` pvdd wants; ``table`` is 0 for an unreachable rule."""

    family: int
    priority: int
    action: str
    table: int = 0
    src: str | None = None  # a host address (/32 or /128)
    oifname: str | None = None
    fwmark: int | None = None
    fwmask: int | None = None


@dataclass(frozen=True, order=True)
class RouteSpec:
    """One route of a PvD table."""

    family: int
    table: int
    dst: str  # "default" or "prefix/len"
    gateway: str | None
    oif: int
    metric: int | None
    kind: str = KIND_UNICAST


def pvd_tag(pvd_id: str) -> int:
    """64-bit FNV-1a hash of a PvD ID: what a table's marker route carries."""
    return fnv1a(pvd_id.encode("utf-8"), 64)


def marker_route(table: int, tag: int) -> RouteSpec:
    """The marker of ``table``: ``throw 100::TAG/128`` (matches nothing a program sends to)."""
    address = ipaddress.IPv6Address(int(MARKER_NET.network_address) | tag)
    return RouteSpec(int(socket.AF_INET6), table, f"{address}/128", None, 0, MARKER_METRIC, KIND_THROW)


def marker_tag(route: RouteSpec) -> int | None:
    """The TAG of a marker route, None for any other route."""
    if route.kind != KIND_THROW or route.family != socket.AF_INET6 or not route.dst.endswith("/128"):
        return None
    address = ipaddress.IPv6Address(route.dst[:-4])
    if address not in MARKER_NET:
        return None
    return int(address) & 0xFFFFFFFFFFFFFFFF


class SlotTable:
    """Stable slot numbers for PvD IDs, also across pvdd restarts.

    ``slots`` maps the present PvDs to their slot.  ``parked`` maps each slot whose PvD went
    away (or that an earlier pvdd left, :meth:`adopt`) to that PvD's tag (None: unknown),
    oldest first.  A parked slot goes back to its own PvD when it returns, and to another
    PvD only when no slot was left that nobody ever held."""

    def __init__(self) -> None:
        self.slots: dict[str, int] = {}
        self.parked: dict[int, int | None] = {}

    def adopt(self, held: Mapping[int, int | None]) -> None:
        """Take over the slots an earlier pvdd left (slot -> tag of its PvD, None: unknown)."""
        for slot in sorted(held):
            if slot not in self.slots.values():
                self.parked[slot] = held[slot]

    def assign(self, pvd_ids: list[str]) -> dict[str, int]:
        """Keep the slots of known IDs, park those of vanished IDs, give new IDs their parked
        slot, else the lowest slot never held, else the slot parked longest ago."""
        for pvd_id, slot in list(self.slots.items()):
            if pvd_id not in pvd_ids:
                del self.slots[pvd_id]
                self.parked[slot] = pvd_tag(pvd_id)
        by_tag = {tag: slot for slot, tag in self.parked.items() if tag is not None}
        for pvd_id in pvd_ids:
            if pvd_id in self.slots:
                continue
            slot = by_tag.get(pvd_tag(pvd_id))
            if slot is None:
                used = set(self.slots.values()) | set(self.parked)
                slot = next((s for s in range(MAX_PVD_SLOTS) if s not in used), None)
            if slot is None and self.parked:
                slot = next(iter(self.parked))  # every slot held once: reuse the oldest parked
            if slot is None:
                break  # more PvDs than tables: the rest get none (logged by the caller)
            self.parked.pop(slot, None)
            self.slots[pvd_id] = slot
        return dict(self.slots)


def table_of(slot: int, cfg: RoutingConfig) -> int:
    return cfg.table_base + slot


def mark_of(slot: int, cfg: RoutingConfig) -> int:
    return cfg.mark_base + slot + 1


def is_restricted(pvd: Pvd) -> bool:
    """A PvD the configuration restricts (reachable only through a mark pvdd sets)."""
    policy = pvd.attributes.get("policy")
    return isinstance(policy, dict) and bool(policy.get("restricted"))


def needs_mark(pvd: Pvd) -> bool:
    """Whether the shim must ask pvdd to mark this PvD's sockets (scope line ``mark=``)."""
    return is_restricted(pvd) or pvd.needs_routing


def _family(address: str) -> int:
    version = ipaddress.ip_address(address.split("%", 1)[0]).version
    return int(socket.AF_INET6) if version == 6 else int(socket.AF_INET)


def host_of(address: str) -> str:
    """The address alone: no prefix length, no zone."""
    return address.split("/", 1)[0].split("%", 1)[0]


def _routable(address: str) -> bool:
    ip = ipaddress.ip_address(host_of(address))
    return not (ip.is_link_local or ip.is_loopback)


def sharing(pvds: list[Pvd]) -> tuple[dict[str, int], dict[str, int]]:
    """How many PvDs hold each interface, and each address (no prefix length, no zone)."""
    per_iface: dict[str, int] = {}
    holders: dict[str, int] = {}
    for pvd in pvds:
        for ifname in pvd.interfaces:
            per_iface[ifname] = per_iface.get(ifname, 0) + 1
        for address in {host_of(a) for a in pvd.addresses}:
            holders[address] = holders.get(address, 0) + 1
    return per_iface, holders


def plan_rules(pvds: list[Pvd], slots: dict[str, int], cfg: RoutingConfig) -> set[RuleSpec]:
    """Every rule the PvD table asks for."""
    base, mask = cfg.rule_priority_base, cfg.mark_mask
    per_iface, holders = sharing(pvds)
    rules: set[RuleSpec] = set()
    for pvd in pvds:
        if pvd.pvd_id not in slots:
            continue
        table, mark = table_of(slots[pvd.pvd_id], cfg), mark_of(slots[pvd.pvd_id], cfg)
        restricted = is_restricted(pvd)
        for family in (int(socket.AF_INET), int(socket.AF_INET6)):
            rules.add(RuleSpec(family, base, ACTION_LOOKUP, table, fwmark=mark, fwmask=mask))
            rules.add(RuleSpec(family, base + 1, ACTION_UNREACHABLE, fwmark=mark, fwmask=mask))
            for ifname in pvd.interfaces:
                if per_iface.get(ifname) != 1 or pvd.needs_routing:
                    continue  # a shared interface says nothing about the PvD
                if restricted:
                    rules.add(RuleSpec(family, base + 4, ACTION_UNREACHABLE, oifname=ifname))
                else:
                    rules.add(RuleSpec(family, base + 2, ACTION_LOOKUP, table, oifname=ifname))
        for address in sorted({host_of(a) for a in pvd.addresses}):
            if holders[address] != 1 or not _routable(address):
                continue
            family = _family(address)
            if not restricted:
                rules.add(RuleSpec(family, base + 3, ACTION_LOOKUP, table, src=address))
            rules.add(RuleSpec(family, base + 4, ACTION_UNREACHABLE, src=address))
    return rules


def plan_parked(parked: Mapping[int, int | None], cfg: RoutingConfig) -> tuple[set[RuleSpec], set[RouteSpec]]:
    """What a parked slot keeps: ``fwmark M unreachable`` (both families) and its marker."""
    rules: set[RuleSpec] = set()
    routes: set[RouteSpec] = set()
    for slot, tag in parked.items():
        for family in (int(socket.AF_INET), int(socket.AF_INET6)):
            rules.add(RuleSpec(family, cfg.rule_priority_base + 1, ACTION_UNREACHABLE,
                               fwmark=mark_of(slot, cfg), fwmask=cfg.mark_mask))
        if tag is not None:
            routes.add(marker_route(table_of(slot, cfg), tag))
    return rules, routes


def is_fail_closed(item: RuleSpec | RouteSpec) -> bool:
    """An unreachable rule, or a table's marker: what stops traffic rather than routes it."""
    if isinstance(item, RuleSpec):
        return item.action == ACTION_UNREACHABLE
    return marker_tag(item) is not None


def is_grant(rule: RuleSpec) -> bool:
    """A ``fwmark M lookup T`` rule: what a mark from pvdd grants, the only rule pvdd takes
    away when it stops (its marked sockets then fail at ``fwmark M unreachable``)."""
    return rule.action == ACTION_LOOKUP and rule.fwmark is not None


#: The link-local prefix every IPv6 link has (the kernel's ``fe80::/64 dev IF metric 256``).
LINK_LOCAL_PREFIX, LINK_LOCAL_METRIC = "fe80::/64", 256


def plan_routes(pvds: list[Pvd], slots: dict[str, int], cfg: RoutingConfig,
                ifindex_of: dict[str, int]) -> set[RouteSpec]:
    """Every route of every PvD table: the PvD's own routes (kernel, RA, RIO, configured), the
    link-local prefix of each of its links (a link-local DNS server, RFC 8106, is reached
    there by its marked sockets, which would otherwise stop at ``fwmark M unreachable``), and
    the table's marker."""
    routes: set[RouteSpec] = set()
    for pvd in pvds:
        if pvd.pvd_id not in slots:
            continue
        table = table_of(slots[pvd.pvd_id], cfg)
        routes.add(marker_route(table, pvd_tag(pvd.pvd_id)))
        for ifname in pvd.interfaces:
            if ifindex_of.get(ifname):
                routes.add(RouteSpec(socket.AF_INET6, table, LINK_LOCAL_PREFIX, None, ifindex_of[ifname],
                                     LINK_LOCAL_METRIC))
        for route in pvd.routes:
            oif = ifindex_of.get(route.ifname or "")
            if not oif:
                continue
            if route.dst == "default":
                family = _family(route.gateway) if route.gateway else \
                    int(socket.AF_INET6 if pvd.has_family(6) and not pvd.has_family(4) else socket.AF_INET)
            else:
                family = _family(route.dst.split("/", 1)[0])
            routes.add(RouteSpec(family, table, route.dst, route.gateway, oif, route.metric))
    return routes
