"""Install and remove pvdd's per-PvD tables and rules with rtnetlink (pyroute2).

Everything pvdd creates carries ``proto 153`` (:data:`RTPROT_PVDD`); that tag is how a
new pvdd finds what an earlier one left, and the only thing it ever deletes.  Each
:meth:`RoutingTables.sync` compares the wanted rules and routes with what the kernel
holds under that tag (a dump, not a memory: the kernel drops routes of a link that went
down) and adds the missing ones before it deletes the stale ones.

Lifecycle (docs/routing.md): at start pvdd takes over what it finds
(:meth:`RoutingTables.take_over`: the tables' markers give every PvD its earlier slot, and
identical rules and routes are kept as they are); on stop it *parks*
(:meth:`RoutingTables.park`): only the ``fwmark M lookup T`` rules go, so a marked socket
fails at ``fwmark M unreachable``, while the source and device rules, the unreachable rules
and the tables stay: traffic that names a PvD by its address or device keeps using that
PvD's (last) table or fails, and never reaches the main table while pvdd is away.  Only
:meth:`RoutingTables.remove_all` (``pvdrun daemon --cleanup``) deletes everything.
"""
from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from typing import Any

from pvdrun.config import MAX_PVD_SLOTS, RoutingConfig
from pvdrun.errors import EXIT_BAD_CONFIG, PvdrunError
from pvdrun.model import Pvd
from pvdrun.routing.plan import (ACTION_LOOKUP, ACTION_UNREACHABLE, KIND_THROW, KIND_UNICAST, RTPROT_PVDD,
                                 RouteSpec, RuleSpec, SlotTable, is_fail_closed, is_grant, mark_of,
                                 marker_tag, needs_mark, plan_parked, plan_routes, plan_rules, table_of)

log = logging.getLogger("pvdrun.routing")

FR_ACT_TO_TBL = 1
FR_ACT_UNREACHABLE = 7
#: rtm_type of the route kinds pvdd installs.
_RTN_TYPES = {KIND_UNICAST: 1, KIND_THROW: 9}
_RTN_KINDS = {number: kind for kind, number in _RTN_TYPES.items()}
_FAMILIES = (socket.AF_INET, socket.AF_INET6)
#: The errors that say an add or a delete found things as it wanted them.
_ALREADY_SO = {"add": (errno.EEXIST,), "del": (errno.ENOENT, errno.ESRCH)}


class RoutingConflict(PvdrunError, RuntimeError):
    """Rules or routes not made by pvdd sit where the configuration puts pvdd's."""

    exit_status = EXIT_BAD_CONFIG


def _default_metric(family: int) -> int:
    return 1024 if family == socket.AF_INET6 else 0


def normal_route(spec: RouteSpec) -> RouteSpec:
    """The spec as a dump reports it: normalised prefix, explicit metric."""
    dst = spec.dst if spec.dst == "default" else str(ipaddress.ip_network(spec.dst, strict=False))
    metric = spec.metric if spec.metric is not None else _default_metric(spec.family)
    return RouteSpec(spec.family, spec.table, dst, spec.gateway, spec.oif, metric, spec.kind)


def rule_from_msg(msg: Any) -> RuleSpec | None:
    """A dumped rule as a RuleSpec (None for an action pvdd never uses)."""
    action = {FR_ACT_TO_TBL: ACTION_LOOKUP, FR_ACT_UNREACHABLE: ACTION_UNREACHABLE}.get(msg["action"])
    if action is None:
        return None
    table = (msg.get_attr("FRA_TABLE") or msg["table"]) if action == ACTION_LOOKUP else 0
    return RuleSpec(family=msg["family"], priority=msg.get_attr("FRA_PRIORITY") or 0, action=action,
                    table=table, src=msg.get_attr("FRA_SRC"), oifname=msg.get_attr("FRA_OIFNAME"),
                    fwmark=msg.get_attr("FRA_FWMARK"), fwmask=msg.get_attr("FRA_FWMASK"))


def route_from_msg(msg: Any) -> RouteSpec:
    """A dumped route as a RouteSpec."""
    family = msg["family"]
    dst = msg.get_attr("RTA_DST")
    kind = _RTN_KINDS.get(msg["type"], str(msg["type"]))
    return RouteSpec(family=family, table=msg.get_attr("RTA_TABLE") or msg["table"],
                     dst=f"{dst}/{msg['dst_len']}" if dst else "default",
                     gateway=msg.get_attr("RTA_GATEWAY"),
                     # the kernel reports lo as the device of an IPv6 throw route
                     oif=(msg.get_attr("RTA_OIF") or 0) if kind == KIND_UNICAST else 0,
                     metric=msg.get_attr("RTA_PRIORITY") or _default_metric(family), kind=kind)


def _rule_args(spec: RuleSpec) -> dict[str, Any]:
    args: dict[str, Any] = {"family": spec.family, "priority": spec.priority, "protocol": RTPROT_PVDD}
    if spec.action == ACTION_LOOKUP:
        args["table"] = spec.table
    else:
        args["action"] = "unreachable"
    if spec.src:
        args["src"] = spec.src
        args["src_len"] = 128 if spec.family == socket.AF_INET6 else 32
    if spec.oifname:
        args["oifname"] = spec.oifname
    if spec.fwmark is not None:
        args["fwmark"] = spec.fwmark
        args["fwmask"] = spec.fwmask
    return args


def _route_args(spec: RouteSpec) -> dict[str, Any]:
    args: dict[str, Any] = {"family": spec.family, "table": spec.table, "proto": RTPROT_PVDD,
                            "priority": spec.metric,
                            "type": _RTN_TYPES.get(spec.kind) or int(spec.kind)}
    if spec.oif:
        args["oif"] = spec.oif
    if spec.dst != "default":
        network = ipaddress.ip_network(spec.dst, strict=False)
        args["dst"], args["dst_len"] = str(network.network_address), network.prefixlen
    else:
        args["dst_len"] = 0
    if spec.gateway:
        args["gateway"] = spec.gateway
    return args


class RoutingTables:
    """pvdd's tables, rules and marks in the current network namespace."""

    def __init__(self, cfg: RoutingConfig) -> None:
        from pyroute2 import IPRoute  # heavy: imported only when pvdd routes

        self.cfg = cfg
        self.ipr = IPRoute()
        self.slots = SlotTable()

    # -- what the kernel holds -----------------------------------------------------
    def _rule_msgs(self) -> list[Any]:
        return [m for f in _FAMILIES for m in self.ipr.get_rules(family=f)]

    def _route_msgs(self) -> list[Any]:
        return [m for f in _FAMILIES for m in self.ipr.route("dump", family=f)]

    def installed(self) -> tuple[set[RuleSpec], set[RouteSpec]]:
        """The rules and routes tagged as pvdd's, as specs."""
        rules = {s for m in self._rule_msgs() if m.get_attr("FRA_PROTOCOL") == RTPROT_PVDD
                 and (s := rule_from_msg(m)) is not None}
        routes = {route_from_msg(m) for m in self._route_msgs() if m["proto"] == RTPROT_PVDD}
        return rules, routes

    def check_conflicts(self) -> None:
        """Refuse priorities or tables that rules/routes of others already use."""
        low, high = self.cfg.rule_priority_base, self.cfg.rule_priority_base + 4
        for msg in self._rule_msgs():
            priority = msg.get_attr("FRA_PRIORITY") or 0
            if low <= priority <= high and msg.get_attr("FRA_PROTOCOL") != RTPROT_PVDD:
                raise RoutingConflict(f"rule priority {priority} is already used by a rule pvdd did "
                                      f"not make; choose another [routing] rule_priority_base")
        first, last = self.cfg.table_base, self.cfg.table_base + MAX_PVD_SLOTS - 1
        for msg in self._route_msgs():
            table = msg.get_attr("RTA_TABLE") or msg["table"]
            if first <= table <= last and msg["proto"] != RTPROT_PVDD:
                raise RoutingConflict(f"table {table} already holds routes pvdd did not make; "
                                      f"choose another [routing] table_base")

    def held_slots(self, rules: set[RuleSpec], routes: set[RouteSpec]) -> dict[int, int | None]:
        """Slots that ``rules`` and ``routes`` (pvdd's, as dumped) use: slot -> tag of the
        table's marker (None: no marker).  A slot is held when its table has a route of ours
        or a rule of ours uses its mark."""
        first, count = self.cfg.table_base, MAX_PVD_SLOTS
        held: dict[int, int | None] = {}
        for route in routes:
            if 0 <= route.table - first < count:
                held.setdefault(route.table - first, None)
        for rule in rules:
            if rule.fwmark is not None and rule.fwmask == self.cfg.mark_mask:
                slot = rule.fwmark - self.cfg.mark_base - 1
                if 0 <= slot < count:
                    held.setdefault(slot, None)
        for route in routes:
            tag = marker_tag(route)
            if tag is not None and 0 <= route.table - first < count:
                held[route.table - first] = tag
        return held

    def parked_marks(self) -> list[int]:
        """Marks of the parked slots (no PvD uses them now)."""
        return [mark_of(slot, self.cfg) for slot in self.slots.parked]

    def slot_marks(self) -> dict[str, int]:
        """The mark of every present PvD's slot (PvD ID -> mark), whether or not its sockets
        are marked: what pvdd's nftables table gives packets arriving for the PvD."""
        return {pvd_id: mark_of(slot, self.cfg) for pvd_id, slot in self.slots.slots.items()}

    def marks(self) -> list[int]:
        """Marks of every slot pvdd holds, present and parked (what the shim may have set)."""
        held = set(self.slots.slots.values()) | set(self.slots.parked)
        return [mark_of(slot, self.cfg) for slot in sorted(held)]

    # -- changes ---------------------------------------------------------------------
    def take_over(self) -> tuple[int, int]:
        """At start: adopt the slots an earlier pvdd left (parked until their PvD is seen, so
        the next :meth:`sync` gives each PvD its earlier mark and table).  Nothing is deleted
        here.  Returns (rules, routes) found."""
        rules, routes = self.installed()
        self.slots.adopt(self.held_slots(rules, routes))
        return len(rules), len(routes)

    def park(self) -> tuple[int, int, int]:
        """On stop: delete the ``fwmark M lookup T`` rules only.  A marked socket then fails at
        ``fwmark M unreachable``; everything else stays (source and device rules with their
        tables, unreachable rules, markers).  Returns (rules deleted, rules kept, routes kept)."""
        rules, routes = self.installed()
        grants = sorted((r for r in rules if is_grant(r)), key=repr)
        for spec in grants:
            self._change("del", spec)
        return len(grants), len(rules) - len(grants), len(routes)

    def remove_all(self) -> int:
        """Delete every rule and route tagged as pvdd's, markers included (``--cleanup``);
        the lookup rules before the unreachable ones, the rules before the routes."""
        rules, routes = self.installed()
        for spec in sorted(rules, key=lambda r: (is_fail_closed(r), repr(r))):
            self._change("del", spec)
        for route in sorted(routes, key=repr):
            self._change("del", route)
        return len(rules) + len(routes)

    def sync(self, pvds: list[Pvd]) -> None:
        """Make the kernel hold exactly the tables and rules ``pvds`` ask for (and the parked
        slots keep); set their marks.  New routes and rules go in before stale ones go out."""
        slots = self.slots.assign([p.pvd_id for p in pvds])
        if len(slots) < len(pvds):
            log.error("more than %d PvDs: %d get no routing table", MAX_PVD_SLOTS, len(pvds) - len(slots))
        for pvd in pvds:
            if pvd.pvd_id in slots:
                pvd.attributes["table"] = table_of(slots[pvd.pvd_id], self.cfg)
                if needs_mark(pvd):
                    pvd.mark = mark_of(slots[pvd.pvd_id], self.cfg)
        ifindex_of = {name: index for p in pvds for name, index in zip(p.interfaces, p.ifindexes)}
        parked_rules, parked_routes = plan_parked(self.slots.parked, self.cfg)
        want_rules = plan_rules(pvds, slots, self.cfg) | parked_rules
        want_routes = {normal_route(r) for r in plan_routes(pvds, slots, self.cfg, ifindex_of) | parked_routes}
        have_rules, have_routes = self.installed()
        # connected routes first: a gateway must be reachable when its route is added
        for route in sorted(want_routes - have_routes, key=lambda r: (r.gateway is not None, repr(r))):
            self._change("add", route)
        for rule in sorted(want_rules - have_rules, key=repr):
            self._change("add", rule)
        # stale lookup rules before stale unreachable ones: in between, the unreachable rule
        # still stops what the lookup rule let through
        for rule in sorted(have_rules - want_rules, key=lambda r: (is_fail_closed(r), repr(r))):
            self._change("del", rule)
        for route in have_routes - want_routes:
            self._change("del", route)

    def _change(self, action: str, spec: RuleSpec | RouteSpec) -> None:
        """``action`` ("add" or "del") one rule or route.  What is already so (it exists, it is
        gone) is no error; any other failure is logged: one change must not stop the others."""
        if isinstance(spec, RuleSpec):
            what, call, args = "rule", self.ipr.rule, _rule_args(spec)
        else:
            what, call, args = "route", self.ipr.route, _route_args(spec)
        try:
            call(action, **args)
        except Exception as exc:  # noqa: BLE001 - one change must not stop the others
            if getattr(exc, "code", None) not in _ALREADY_SO[action]:
                log.warning("cannot %s %s %s: %s", "add" if action == "add" else "delete", what, spec, exc)

    def close(self) -> None:
        """Close the netlink socket (what pvdd installed stays: :meth:`park` first on stop)."""
        self.ipr.close()
