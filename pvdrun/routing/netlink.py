"""Install and remove pvdd's per-PvD tables and rules with rtnetlink (pvdrun/routing/rtnetlink.py).

Everything pvdd creates carries ``proto 153`` (:data:`RTPROT_PVDD`); that tag is how a
new pvdd finds what an earlier one left, and the only thing it ever deletes.  Each
:meth:`RoutingTables.sync` compares the wanted rules and routes with what the kernel
holds under that tag and adds the missing ones before it deletes the stale ones.

What the kernel holds is kept in memory (:class:`Held`): read with a dump at start, then
kept current from pvdd's own changes and from the notifications of a socket subscribed to
rule and route changes (someone deleting one of pvdd's rules is seen there).  The kernel
removes routes without a notification (IPv4 flushes a link's routes when it goes down or
loses its last IPv4 address; a deleted link's routes go), so a link or IPv4 address change
makes the next sync dump the routes again (only pvdd's: the kernel filters the dump by
protocol); a lost notification (the socket overran), a SIGHUP (:meth:`RoutingTables.resync`)
or a change the kernel refused dumps everything again.

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
from dataclasses import dataclass, field

from pvdrun.config import MAX_PVD_SLOTS, RoutingConfig
from pvdrun.errors import EXIT_BAD_CONFIG, PvdrunError
from pvdrun.model import Pvd
from pvdrun.routing.plan import (
    RTPROT_PVDD,
    RouteSpec,
    RuleSpec,
    SlotTable,
    is_fail_closed,
    is_grant,
    mark_of,
    marker_tag,
    needs_mark,
    plan_parked,
    plan_routes,
    plan_rules,
    table_of,
)
from pvdrun.routing.rtnetlink import (
    FAMILIES,
    Notifications,
    Requests,
    decode_routes,
    decode_rule,
    default_metric,
    route_table,
    rule_priority,
    rule_protocol,
)

log = logging.getLogger("pvdrun.routing")

#: The errors that say an add or a delete found things as it wanted them.
_ALREADY_SO = {"add": (errno.EEXIST,), "del": (errno.ENOENT, errno.ESRCH)}


class RoutingConflict(PvdrunError, RuntimeError):
    """Rules or routes not made by pvdd sit where the configuration puts pvdd's."""

    exit_status = EXIT_BAD_CONFIG


def normal_route(spec: RouteSpec) -> RouteSpec:
    """The spec as a dump reports it: normalised prefix, explicit metric."""
    dst = spec.dst if spec.dst == "default" else str(ipaddress.ip_network(spec.dst, strict=False))
    metric = spec.metric if spec.metric is not None else default_metric(spec.family)
    return RouteSpec(spec.family, spec.table, dst, spec.gateway, spec.oif, metric, spec.kind)


@dataclass
class Held:
    """pvdd's rules and routes as the kernel holds them, in memory; None: not known (dump)."""

    rules: set[RuleSpec] | None = None
    routes: dict[int, set[RouteSpec]] | None = None  # family -> routes
    stale: set[int] = field(default_factory=set)      # families whose routes must be dumped again

    def all_routes(self) -> set[RouteSpec]:
        return set().union(*self.routes.values()) if self.routes else set()


class RoutingTables:
    """pvdd's tables, rules and marks in the current network namespace."""

    def __init__(self, cfg: RoutingConfig) -> None:
        from pyroute2 import (
            IPRoute,  # heavy: imported only when pvdd routes (nested addresses)
        )

        self.cfg = cfg
        self.ipr = IPRoute()
        self.requests = Requests()
        self.notifications: Notifications | None = None  # opened by take_over (pvdd), not --cleanup
        self.held = Held()
        self.slots = SlotTable()
        #: dumps since start (rules and routes: "full"; routes of some families: "routes")
        self.dumps = {"full": 0, "routes": 0}

    # -- what the kernel holds -----------------------------------------------------
    def installed(self) -> tuple[set[RuleSpec], set[RouteSpec]]:
        """The rules and routes tagged as pvdd's, as specs: a dump."""
        return self._dump_rules(), {r for f in FAMILIES for r in self._dump_routes(f)}

    def _dump_rules(self) -> set[RuleSpec]:
        found = set()
        for family in FAMILIES:
            for parts in self.requests.dump_rules(family):
                rule, protocol = decode_rule(*parts)
                if rule is not None and protocol == RTPROT_PVDD:
                    found.add(rule)
        return found

    def _dump_routes(self, family: int) -> set[RouteSpec]:
        found = set()
        for parts in self.requests.dump_routes(family, RTPROT_PVDD):
            routes, protocol = decode_routes(*parts)
            if protocol == RTPROT_PVDD:
                found.update(routes)
        return found

    def check_conflicts(self) -> None:
        """Refuse priorities or tables that rules/routes of others already use."""
        low, high = self.cfg.rule_priority_base, self.cfg.rule_priority_base + 4
        for family in FAMILIES:
            for head, attrs in self.requests.dump_rules(family):
                priority = rule_priority(head, attrs)
                if low <= priority <= high and rule_protocol(attrs) != RTPROT_PVDD:
                    raise RoutingConflict(f"rule priority {priority} is already used by a rule pvdd did "
                                          f"not make; choose another [routing] rule_priority_base")
        first, last = self.cfg.table_base, self.cfg.table_base + MAX_PVD_SLOTS - 1
        for family in FAMILIES:
            for head, attrs in self.requests.dump_routes(family):
                table = route_table(head, attrs)
                if first <= table <= last and decode_routes(head, attrs)[1] != RTPROT_PVDD:
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

    # -- what pvdd remembers ---------------------------------------------------------
    def resync(self) -> None:
        """Forget what pvdd remembers: the next :meth:`sync` dumps the kernel's rules and
        routes again (SIGHUP, an error)."""
        self.held = Held()

    def _bring_up_to_date(self) -> None:
        """Take in the notifications queued since the last sync, then dump what is not known."""
        held = self.held
        if self.notifications is not None:
            seen = self.notifications.drain()
            if seen.lost:
                log.info("rule and route notifications were lost: reading pvdd's rules and routes again")
                held = self.held = Held()
            if held.rules is not None:
                for added, rule in seen.rules:
                    (held.rules.add if added else held.rules.discard)(rule)
            if held.routes is not None:
                for added, route in seen.routes:
                    per = held.routes.setdefault(route.family, set())
                    (per.add if added else per.discard)(route)
            held.stale |= seen.routes_stale
        if held.rules is None or held.routes is None:
            if self.notifications is not None:
                self.notifications.links = self.requests.link_states()
            held.rules = self._dump_rules()
            held.routes = {f: self._dump_routes(f) for f in FAMILIES}
            held.stale = set()
            self.dumps["full"] += 1
        elif held.stale:
            for family in sorted(held.stale):
                held.routes[family] = self._dump_routes(family)
            held.stale = set()
            self.dumps["routes"] += 1

    # -- changes ---------------------------------------------------------------------
    def take_over(self) -> tuple[int, int]:
        """At start: adopt the slots an earlier pvdd left (parked until their PvD is seen, so
        the next :meth:`sync` gives each PvD its earlier mark and table), and start following
        the kernel's rule and route notifications.  Nothing is deleted here.  Returns (rules,
        routes) found."""
        if self.notifications is None:
            self.notifications = Notifications()  # before the dump: nothing done meanwhile is missed
        self.held = Held()
        self._bring_up_to_date()
        rules, routes = set(self.held.rules or ()), self.held.all_routes()
        self.slots.adopt(self.held_slots(rules, routes))
        return len(rules), len(routes)

    def park(self) -> tuple[int, int, int]:
        """On stop: delete the ``fwmark M lookup T`` rules only.  A marked socket then fails at
        ``fwmark M unreachable``; everything else stays (source and device rules with their
        tables, unreachable rules, markers).  Returns (rules deleted, rules kept, routes kept)."""
        rules, routes = self.installed()
        grants = sorted((r for r in rules if is_grant(r)), key=repr)
        self._apply([("del", spec) for spec in grants])
        return len(grants), len(rules) - len(grants), len(routes)

    def remove_all(self) -> int:
        """Delete every rule and route tagged as pvdd's, markers included (``--cleanup``);
        the lookup rules before the unreachable ones, the rules before the routes."""
        rules, routes = self.installed()
        self._apply([("del", spec) for spec in sorted(rules, key=lambda r: (is_fail_closed(r), repr(r)))]
                    + [("del", route) for route in sorted(routes, key=repr)])
        return len(rules) + len(routes)

    def sync(self, pvds: list[Pvd]) -> int:
        """Make the kernel hold exactly the tables and rules ``pvds`` ask for (and the parked
        slots keep); set their marks.  New routes and rules go in before stale ones go out.
        Returns the number of changes sent."""
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
        self._bring_up_to_date()
        have_rules, have_routes = set(self.held.rules or ()), self.held.all_routes()
        changes: list[tuple[str, RuleSpec | RouteSpec]] = []
        # connected routes first: a gateway must be reachable when its route is added
        changes += [("add", r) for r in sorted(want_routes - have_routes, key=lambda r: (r.gateway is not None, repr(r)))]
        changes += [("add", r) for r in sorted(want_rules - have_rules, key=repr)]
        # stale lookup rules before stale unreachable ones: in between, the unreachable rule
        # still stops what the lookup rule let through
        changes += [("del", r) for r in sorted(have_rules - want_rules, key=lambda r: (is_fail_closed(r), repr(r)))]
        changes += [("del", r) for r in sorted(have_routes - want_routes, key=repr)]
        self._apply(changes)
        return len(changes)

    def _apply(self, changes: list[tuple[str, RuleSpec | RouteSpec]]) -> None:
        """Send ``changes`` ("add" or "del", spec) in order and remember what they did.  What is
        already so (it exists, it is gone) is no error; any other failure is logged (one change
        must not stop the others) and makes the next sync read the kernel again."""
        if not changes:
            return
        results = self.requests.apply(changes)
        held = self.held
        for (action, spec), code in zip(changes, results):
            what = "rule" if isinstance(spec, RuleSpec) else "route"
            if isinstance(spec, RuleSpec):
                target = held.rules
            else:
                target = held.routes.setdefault(spec.family, set()) if held.routes is not None else None
            if code == 0 or (action == "del" and code in _ALREADY_SO["del"]):
                if target is not None:
                    (target.add if action == "add" else target.discard)(spec)  # type: ignore[arg-type]
                continue
            if code not in _ALREADY_SO[action]:
                log.warning("cannot %s %s %s: %s", "add" if action == "add" else "delete", what, spec,
                            f"[Errno {code}] {errno.errorcode.get(code, code)}")
            # it exists but whose it is, or why it failed, only a dump says
            if isinstance(spec, RuleSpec):
                held.rules = None
            else:
                held.stale.add(spec.family)

    def close(self) -> None:
        """Close the netlink sockets (what pvdd installed stays: :meth:`park` first on stop)."""
        self.ipr.close()
        self.requests.close()
        if self.notifications is not None:
            self.notifications.close()
