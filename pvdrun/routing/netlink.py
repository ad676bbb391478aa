"""Install and remove pvdd's per-PvD tables and rules with rtnetlink (pyroute2).

Everything pvdd creates carries ``proto 153`` (:data:`RTPROT_PVDD`); that tag is how a
new pvdd finds what a crashed one left, and the only thing it ever deletes.  Each
:meth:`RoutingTables.sync` compares the wanted rules and routes with what the kernel
holds under that tag (a dump, not a memory: the kernel drops routes of a link that went
down) and adds or deletes the difference.
"""
from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from typing import Any

from pvdrun.discovery.config import MAX_PVD_SLOTS, RoutingConfig
from pvdrun.model import Pvd
from pvdrun.routing.plan import (ACTION_LOOKUP, ACTION_UNREACHABLE, RTPROT_PVDD, RouteSpec, RuleSpec,
                                 SlotTable, mark_of, needs_mark, plan_routes, plan_rules, table_of)

log = logging.getLogger("pvdrun.routing")

FR_ACT_TO_TBL = 1
FR_ACT_UNREACHABLE = 7
_FAMILIES = (socket.AF_INET, socket.AF_INET6)


class RoutingConflict(RuntimeError):
    """Rules or routes not made by pvdd sit where the configuration puts pvdd's."""


def _default_metric(family: int) -> int:
    return 1024 if family == socket.AF_INET6 else 0


def normal_route(spec: RouteSpec) -> RouteSpec:
    """The spec as a dump reports it: normalised prefix, explicit metric."""
    dst = spec.dst if spec.dst == "default" else str(ipaddress.ip_network(spec.dst, strict=False))
    metric = spec.metric if spec.metric is not None else _default_metric(spec.family)
    return RouteSpec(spec.family, spec.table, dst, spec.gateway, spec.oif, metric)


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
    return RouteSpec(family=family, table=msg.get_attr("RTA_TABLE") or msg["table"],
                     dst=f"{dst}/{msg['dst_len']}" if dst else "default",
                     gateway=msg.get_attr("RTA_GATEWAY"), oif=msg.get_attr("RTA_OIF") or 0,
                     metric=msg.get_attr("RTA_PRIORITY") or _default_metric(family))


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
    args: dict[str, Any] = {"family": spec.family, "table": spec.table, "oif": spec.oif,
                            "proto": RTPROT_PVDD, "priority": spec.metric}
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

    # -- changes ---------------------------------------------------------------------
    def remove_all(self) -> int:
        """Delete every rule and route tagged as pvdd's (ours, or a crashed pvdd's)."""
        rules, routes = self.installed()
        for spec in rules:
            self._delete_rule(spec)
        for route in routes:
            self._delete_route(route)
        return len(rules) + len(routes)

    def sync(self, pvds: list[Pvd]) -> None:
        """Make the kernel hold exactly the tables and rules ``pvds`` ask for; set their marks."""
        slots = self.slots.assign([p.pvd_id for p in pvds])
        if len(slots) < len(pvds):
            log.error("more than %d PvDs: %d get no routing table", MAX_PVD_SLOTS, len(pvds) - len(slots))
        for pvd in pvds:
            if pvd.pvd_id in slots:
                pvd.attributes["table"] = table_of(slots[pvd.pvd_id], self.cfg)
                if needs_mark(pvd):
                    pvd.mark = mark_of(slots[pvd.pvd_id], self.cfg)
        ifindex_of = {name: index for p in pvds for name, index in zip(p.interfaces, p.ifindexes)}
        want_rules = plan_rules(pvds, slots, self.cfg)
        want_routes = {normal_route(r) for r in plan_routes(pvds, slots, self.cfg, ifindex_of)}
        have_rules, have_routes = self.installed()
        # connected routes first: a gateway must be reachable when its route is added
        for route in sorted(want_routes - have_routes, key=lambda r: (r.gateway is not None, repr(r))):
            self._add_route(route)
        for rule in sorted(want_rules - have_rules, key=repr):
            self._add_rule(rule)
        for rule in have_rules - want_rules:
            self._delete_rule(rule)
        for route in have_routes - want_routes:
            self._delete_route(route)

    def _add_rule(self, spec: RuleSpec) -> None:
        try:
            self.ipr.rule("add", **_rule_args(spec))
        except Exception as exc:  # noqa: BLE001 - one rule must not stop the others
            if getattr(exc, "code", None) != errno.EEXIST:
                log.warning("cannot add rule %s: %s", spec, exc)

    def _delete_rule(self, spec: RuleSpec) -> None:
        try:
            self.ipr.rule("del", **_rule_args(spec))
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "code", None) not in (errno.ENOENT, errno.ESRCH):
                log.warning("cannot delete rule %s: %s", spec, exc)

    def _add_route(self, spec: RouteSpec) -> None:
        try:
            self.ipr.route("add", **_route_args(spec))
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "code", None) != errno.EEXIST:
                log.warning("cannot add route %s: %s", spec, exc)

    def _delete_route(self, spec: RouteSpec) -> None:
        try:
            self.ipr.route("del", **_route_args(spec))
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "code", None) not in (errno.ENOENT, errno.ESRCH):
                log.warning("cannot delete route %s: %s", spec, exc)

    def close(self) -> None:
        """Remove everything pvdd made, then close the netlink socket."""
        try:
            self.remove_all()
        finally:
            self.ipr.close()
