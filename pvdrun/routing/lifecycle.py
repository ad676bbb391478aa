"""pvdd's routing state over its life (docs/routing.md, "Tagging, stop, restart, crash,
clean-up"): start, sync after every change of the PvD table, stop.

* **start** (as root): check that nobody else uses pvdd's priorities and tables, take over
  what an earlier pvdd left (each PvD gets the slot its table's marker names; identical
  rules and routes stay as they are), then build; nothing is removed before its
  replacement is in place, and the nftables table is replaced in one transaction;
* **sync**: nested PvD options (addresses, routes), the per-PvD tables and rules (which
  assign the marks; only the difference to what pvdd remembers is sent: netlink.py), then
  the nftables table, replaced when its text changes (it also marks packets arriving for
  each PvD, so that the kernel's replies to them, with ``fwmark_reflect`` turned on at
  start, take the PvD's table);
* **stop** (park): the nftables table drops every mark and marks no arriving packet, then
  only the ``fwmark M lookup T`` rules go; the tables, the other rules and the nested-prefix addresses stay, so that a
  PvD's traffic fails rather than reach another PvD while no pvdd runs.
"""
from __future__ import annotations

import logging
import os

from pvdrun.config import RoutingConfig
from pvdrun.discovery.ratable import RaTable
from pvdrun.model import Pvd
from pvdrun.routing.firewall import Firewall
from pvdrun.routing.nested import NestedAddresses, add_nested_routes
from pvdrun.routing.netlink import RoutingTables
from pvdrun.routing.sysctls import turn_on

log = logging.getLogger("pvdrun.pvdd")


class PvddRouting:
    """The routing state of one pvdd: its tables and rules, the addresses it made from nested
    prefixes, its nftables table."""

    def __init__(self, tables: RoutingTables, nested: NestedAddresses, firewall: Firewall) -> None:
        self.tables = tables
        self.nested = nested
        self.firewall = firewall

    @classmethod
    def start(cls, config: RoutingConfig, pvds: list[Pvd], ras: RaTable, record: str) -> PvddRouting | None:
        """Take over and build the routing state for ``pvds``, turn ``fwmark_reflect`` on
        (the values found recorded in ``record``, pvdrun/routing/sysctls.py); None when not
        root (no per-PvD routing then).

        Raises RoutingConflict when rules or routes of others use pvdd's priorities or
        tables."""
        if os.geteuid() != 0:
            log.warning("not root: no per-PvD routing tables or socket marks (docs/routing.md)")
            return None
        tables = RoutingTables(config)
        try:
            tables.check_conflicts()
            rules, routes = tables.take_over()
        except Exception:
            tables.close()
            raise
        if rules or routes:
            log.warning("taking over %d rules and %d routes an earlier pvdd left (%d slots)",
                        rules, routes, len(tables.slots.parked))
        try:
            changed = turn_on(record)
        except OSError as exc:
            log.error("cannot turn fwmark_reflect on (the kernel's replies to a PvD's packets "
                      "are routed by the main table): %s", exc)
        else:
            if changed:
                log.info("turned on %s (found %s; recorded in %s for --cleanup)",
                         ", ".join(changed), ", ".join(changed.values()), record)
        routing = cls(tables, NestedAddresses(tables.ipr), Firewall())
        if routing.firewall.exists():
            log.warning("replacing the nftables table an earlier pvdd left")
        routing.sync(pvds, ras, config)
        if pvds:
            kept = sum(1 for p in pvds if "table" in p.attributes)
            log.info("routing %d PvDs; %d slots parked", kept, len(tables.slots.parked))
        return routing

    def sync(self, pvds: list[Pvd], ras: RaTable, config: RoutingConfig) -> None:
        """Apply nested PvD options (addresses, routes), then sync the per-PvD tables and the
        nftables table.  A failure is logged: it must not stop pvdd."""
        try:
            self.nested.sync(ras)
            add_nested_routes(pvds, ras)
            changes = self.tables.sync(pvds)  # assigns the marks the firewall needs
            self.firewall.sync(pvds, config, self.tables.parked_marks(), self.tables.slot_marks())
        except Exception:  # a netlink failure must not stop pvdd
            log.exception("updating the per-PvD routing tables failed")
            self.tables.resync()  # the next sync reads the kernel again
            self.firewall.current = None
        else:
            log.debug("routing: %d rule and route changes (dumps since start: %s)", changes,
                      ", ".join(f"{n} {kind}" for kind, n in self.tables.dumps.items()))

    def config_changed(self) -> None:
        """The configuration was re-read (SIGHUP): the next sync reads pvdd's rules and routes
        from the kernel again and re-installs the nftables table even when it did not change."""
        self.tables.resync()
        self.firewall.current = None

    def stop(self, pvds: list[Pvd], config: RoutingConfig) -> None:
        """Park: the nftables table drops every mark, and marks no arriving packet, before the
        mark lookups go (an IPv4 device-bound socket whose lookup fails would be sent on-link;
        a reply marked for a PvD would fail); everything else that
        keeps PvDs apart stays (``pvdrun daemon --cleanup`` removes it)."""
        try:
            self.firewall.sync(pvds, config, self.tables.marks())
        except Exception:  # noqa: BLE001 - stopping must go on
            log.exception("dropping the marks in the nftables table failed")
        try:
            deleted, rules, routes = self.tables.park()
            log.info("stopped: removed %d mark rules, kept %d rules and %d routes "
                     "(`pvdrun daemon --cleanup` removes them)", deleted, rules, routes)
        except Exception:  # noqa: BLE001 - stopping must go on
            log.exception("parking the per-PvD routing tables failed")
        finally:
            self.tables.close()
            self.firewall.close()
