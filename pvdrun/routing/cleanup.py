"""``pvdrun daemon --cleanup``: remove, for good, everything pvdd keeps in a network namespace.

pvdd leaves its fail-closed state in place when it stops (docs/routing.md): the
unreachable rules and the tables' markers, the nftables table ``inet pvdd``, the
addresses it made from nested prefixes, and the ``fwmark_reflect`` switches it turned on
(pvdrun/routing/sysctls.py).  An administrator who retires pvdd removes them
with :func:`remove_everything` (through the CLI, which first makes sure no pvdd answers on
its socket: a running pvdd would re-install them and lose its own state).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from pvdrun.config import RoutingConfig

log = logging.getLogger("pvdrun.routing")


class CleanupError(RuntimeError):
    """Something tagged as pvdd's is still there after the removal."""


@dataclass(frozen=True)
class Removed:
    """What :func:`remove_everything` deleted."""

    rules_and_routes: int
    addresses: int
    nft_table: bool
    sysctls: dict[str, str]  # name -> the value written back


def remove_everything(record: str) -> Removed:
    """Delete every rule, route and address tagged ``proto 153`` and pvdd's nftables table
    in the current network namespace (needs CAP_NET_ADMIN), then write back the sysctls
    recorded in ``record`` (the values pvdd found before it turned them on).

    Raises CleanupError naming what is left when something could not be deleted."""
    from pvdrun.routing.firewall import Firewall
    from pvdrun.routing.nested import NestedAddresses
    from pvdrun.routing.netlink import RoutingTables
    from pvdrun.routing.sysctls import restore

    routing = RoutingTables(RoutingConfig())  # the layout does not matter: the tag decides
    try:
        nested = NestedAddresses(routing.ipr)
        count = routing.remove_all()
        addresses = nested.remove_all()
        firewall = Firewall()
        had_table = firewall.remove()
        rules, routes = routing.installed()
        left = [f"{len(rules)} rules" if rules else "", f"{len(routes)} routes" if routes else "",
                f"{len(nested.tagged())} addresses" if nested.tagged() else "",
                "nftables table inet pvdd" if firewall.exists() else ""]
        firewall.close()
    finally:
        routing.close()
    left = [item for item in left if item]
    if left:
        raise CleanupError(f"could not remove {', '.join(left)} tagged as pvdd's (see the log)")
    try:
        restored = restore(record)
    except OSError as exc:
        raise CleanupError(f"could not write back the sysctls recorded in {record}: {exc}") from exc
    return Removed(count, addresses, had_table, restored)
