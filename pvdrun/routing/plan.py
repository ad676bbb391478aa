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
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from pvdrun.discovery.config import MAX_PVD_SLOTS, RoutingConfig
from pvdrun.model import Pvd

#: rtnetlink protocol number that tags every rule and route pvdd makes (``proto 153``).
RTPROT_PVDD = 0x99

ACTION_LOOKUP = "lookup"
ACTION_UNREACHABLE = "unreachable"


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


class SlotTable:
    """Stable slot numbers for PvD IDs while pvdd runs; a vanished PvD frees its slot."""

    def __init__(self) -> None:
        self.slots: dict[str, int] = {}

    def assign(self, pvd_ids: list[str]) -> dict[str, int]:
        """Keep the slots of known IDs, give the lowest free ones to new IDs, drop the rest."""
        self.slots = {i: s for i, s in self.slots.items() if i in pvd_ids}
        used = set(self.slots.values())
        free = (s for s in range(MAX_PVD_SLOTS) if s not in used)
        for pvd_id in pvd_ids:
            if pvd_id not in self.slots:
                slot = next(free, None)
                if slot is None:
                    break  # more PvDs than tables: the rest get none (logged by the caller)
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


def _host(address: str) -> str:
    return address.split("/", 1)[0].split("%", 1)[0]


def _routable(address: str) -> bool:
    ip = ipaddress.ip_address(_host(address))
    return not (ip.is_link_local or ip.is_loopback)


def plan_rules(pvds: list[Pvd], slots: dict[str, int], cfg: RoutingConfig) -> set[RuleSpec]:
    """Every rule the PvD table asks for."""
    base, mask = cfg.rule_priority_base, cfg.mark_mask
    holders: dict[str, int] = {}
    per_iface: dict[str, int] = {}
    for pvd in pvds:
        for address in {_host(a) for a in pvd.addresses}:
            holders[address] = holders.get(address, 0) + 1
        for ifname in pvd.interfaces:
            per_iface[ifname] = per_iface.get(ifname, 0) + 1
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
        for address in sorted({_host(a) for a in pvd.addresses}):
            if holders[address] != 1 or not _routable(address):
                continue
            family = _family(address)
            if not restricted:
                rules.add(RuleSpec(family, base + 3, ACTION_LOOKUP, table, src=address))
            rules.add(RuleSpec(family, base + 4, ACTION_UNREACHABLE, src=address))
    return rules


def plan_routes(pvds: list[Pvd], slots: dict[str, int], cfg: RoutingConfig,
                ifindex_of: dict[str, int]) -> set[RouteSpec]:
    """Every route of every PvD table: the PvD's own routes (kernel, RA, RIO, configured)."""
    routes: set[RouteSpec] = set()
    for pvd in pvds:
        if pvd.pvd_id not in slots:
            continue
        table = table_of(slots[pvd.pvd_id], cfg)
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
