"""pvdd applies what an unpatched kernel ignores: the options nested in an RFC 8801 PvD option.

The kernel skips the PvD option (type 21) as an unknown option, so a prefix, a route, a
router lifetime or DNS servers sent *only* inside it never reach the kernel.  pvdd reads
them from its RA table (:mod:`pvdrun.discovery.ratable`) and:

* SLAAC (RFC 4862) for every nested PIO with the A flag and a /64: the address is the
  prefix plus the modified EUI-64 interface identifier of the link's MAC, the one the
  kernel derives with ``addr_gen_mode eui64`` (the default).  The address is added with
  the PIO's valid and preferred lifetimes (so the kernel also expires it on its own) and
  tagged ``proto 153`` (IFA_PROTO, kernel >= 5.18): that tag is how pvdd removes exactly
  its own addresses, also those an earlier pvdd left.  DAD runs as for any address.
* routes: the nested on-link PIO prefixes, the nested RIO routes and the default route
  (the PvD's router lifetime, from the option's RA header when R=1, else the RA's) are
  added to the PvD's own table only (:func:`add_nested_routes`; they never enter the
  main table), via the routers that sent the option.
* nested RDNSS/DNSSL are already the PvD's DNS (:mod:`pvdrun.discovery.assemble`).

Everything is withdrawn when its lifetime ends (the RA table expires it and pvdd
re-syncs) or the PvD goes away.  When pvdd stops, the routes leave the PvD's table with
all others, but the addresses stay until their lifetimes end (a restart keeps connections
that use them; pvdd's ``from ADDR unreachable`` rules stay too, so nothing leaves from them
while pvdd is away).  A new pvdd takes over the tagged addresses it still wants (``replace``
refreshes their lifetimes); ``pvdrun daemon --cleanup`` removes them all.
"""
from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

from pvdrun.discovery.kernel import INFINITY_LIFETIME
from pvdrun.discovery.ratable import FOREVER, RaTable
from pvdrun.model import Pvd, Route
from pvdrun.routing.plan import RTPROT_PVDD

log = logging.getLogger("pvdrun.routing")

#: Metrics of the routes pvdd derives (those the kernel uses for RA routes).
PREFIX_METRIC = 256
RA_METRIC = 1024
#: An address is re-added (lifetimes refreshed) only when an RA moved its end this far.
REFRESH_SLACK = 1.0


@dataclass(frozen=True)
class NestedAddress:
    """One SLAAC address pvdd wants on a link, with absolute (monotonic) lifetime ends."""

    ifindex: int
    address: str
    valid_until: float
    preferred_until: float


def eui64_address(prefix: str, mac: str) -> str | None:
    """prefix (a /64) + the modified EUI-64 identifier of a 48-bit MAC (RFC 4291 appendix A)."""
    try:
        network = ipaddress.IPv6Network(prefix, strict=False)
        octets = bytes(int(part, 16) for part in mac.split(":"))
    except ValueError:
        return None
    if network.prefixlen != 64 or len(octets) != 6:
        return None
    iid = bytes([octets[0] ^ 0x02, octets[1], octets[2], 0xFF, 0xFE, octets[3], octets[4], octets[5]])
    return str(ipaddress.IPv6Address(network.network_address.packed[:8] + iid))


def plan_addresses(ras: RaTable, macs: dict[int, str]) -> dict[tuple[int, str], NestedAddress]:
    """The SLAAC addresses of every nested autonomous /64 PIO, keyed by (ifindex, address).

    A prefix some router also advertises outside any PvD option is left to the kernel,
    which applies that PIO itself (pvdd must never take over, or remove, its address)."""
    wanted: dict[tuple[int, str], NestedAddress] = {}
    for (ifindex, _pvd_id), record in sorted(ras.explicit.items()):
        mac = macs.get(ifindex)
        if not mac:
            continue
        plain = {p for router in ras.routers_on(ifindex) for p in router.options.prefixes}
        for prefix, valid_until in record.options.prefixes.items():
            if prefix in plain:
                continue
            _on_link, autonomous, preferred_until = record.options.prefix_flags.get(
                prefix, (True, False, 0.0))
            address = eui64_address(prefix, mac) if autonomous else None
            if address is not None:
                wanted[(ifindex, address)] = NestedAddress(ifindex, address, valid_until,
                                                           min(preferred_until, valid_until))
    return wanted


def nested_routes(ras: RaTable, ifindex: int, ifname: str, pvd_id: str) -> list[Route]:
    """The routes the PvD option of pvd_id on ifindex carries (for the PvD's table only)."""
    record = ras.explicit.get((ifindex, pvd_id))
    if record is None:
        return []
    routers = [r for r in record.routers if r]
    routes = [Route(dst=str(ipaddress.ip_network(prefix, strict=False)), ifname=ifname,
                    metric=PREFIX_METRIC, origin="pvd")
              for prefix, flags in sorted(record.options.prefix_flags.items()) if flags[0]]
    for router in routers[:1]:  # one next-hop per route: the first router that sent the option
        routes += [Route(dst=str(ipaddress.ip_network(prefix, strict=False)), gateway=router,
                         ifname=ifname, metric=RA_METRIC, origin="pvd")
                   for prefix in sorted(record.options.routes)]
        if record.options.default_until > 0.0:
            routes.append(Route(dst="default", gateway=router, ifname=ifname, metric=RA_METRIC,
                                origin="pvd"))
    return routes


def add_nested_routes(pvds: list[Pvd], ras: RaTable) -> None:
    """Append each explicit PvD's nested routes to its route list (what pvdd's table holds)."""
    for pvd in pvds:
        if not pvd.explicit or not pvd.ifindexes:
            continue
        have = {(r.dst, r.gateway) for r in pvd.routes}
        for route in nested_routes(ras, pvd.ifindexes[0], pvd.interfaces[0], pvd.pvd_id):
            if (route.dst, route.gateway) not in have:
                pvd.routes.append(route)
                have.add((route.dst, route.gateway))


def _lifetime(until: float, now: float) -> int:
    if until == FOREVER:
        return INFINITY_LIFETIME
    return max(1, int(until - now))


class NestedAddresses:
    """The SLAAC addresses pvdd added (tagged ``proto 153``) in the current namespace."""

    def __init__(self, ipr: Any) -> None:
        self.ipr = ipr
        self.installed: dict[tuple[int, str], NestedAddress] = {}

    def tagged(self) -> list[tuple[int, str, int]]:
        """(ifindex, address, prefixlen) of every address tagged as pvdd's in the kernel."""
        return [(i, a, p) for i, a, p, ours in self._dump() if ours]

    def _dump(self) -> list[tuple[int, str, int, bool]]:
        return [(m["index"], m.get_attr("IFA_ADDRESS"), m["prefixlen"],
                 m.get_attr("IFA_PROTO") == RTPROT_PVDD)
                for m in self.ipr.get_addr(family=socket.AF_INET6)]

    def remove_all(self) -> int:
        """Delete every address tagged as pvdd's (ours, or an earlier pvdd's)."""
        found = self.tagged()
        for ifindex, address, prefixlen in found:
            self._delete(ifindex, address, prefixlen)
        self.installed.clear()
        return len(found)

    def macs(self) -> dict[int, str]:
        """ifindex -> MAC of every link with a 48-bit hardware address."""
        out: dict[int, str] = {}
        for link in self.ipr.get_links():
            mac = link.get_attr("IFLA_ADDRESS")
            if isinstance(mac, str) and mac.count(":") == 5 and mac != "00:00:00:00:00:00":
                out[link["index"]] = mac
        return out

    def sync(self, ras: RaTable) -> None:
        """Add (or refresh the lifetimes of) wanted addresses; delete those no longer wanted."""
        if not ras.explicit and not self.installed:
            return  # nothing nested wanted, nothing of ours to remove: no dump needed
        now = time.monotonic()
        wanted = plan_addresses(ras, self.macs())
        dump = self._dump()
        present = {(i, a) for i, a, _, ours in dump if ours}
        others = {(i, a) for i, a, _, ours in dump if not ours}
        for key, want in wanted.items():
            if key in others:
                continue  # the kernel (or an administrator) has it: never ours to change
            have = self.installed.get(key)
            if have is not None and key in present and \
                    want.valid_until - have.valid_until < REFRESH_SLACK and \
                    want.preferred_until - have.preferred_until < REFRESH_SLACK:
                continue  # re-adding on every RA would wake pvdd (RTM_NEWADDR) for nothing
            try:  # "add" unless it is ours: an address the kernel made meanwhile stays its own
                self.ipr.addr("replace" if key in present else "add", index=want.ifindex, address=want.address, prefixlen=64,
                              family=socket.AF_INET6, proto=RTPROT_PVDD,
                              valid_lft=_lifetime(want.valid_until, now),
                              preferred_lft=_lifetime(want.preferred_until, now))
            except Exception as exc:  # noqa: BLE001 - one address must not stop the others
                if getattr(exc, "code", None) != errno.EEXIST:
                    log.warning("cannot add nested-prefix address %s: %s", want.address, exc)
                continue
            if have is None:
                log.info("added %s from a prefix nested in a PvD option", want.address)
            self.installed[key] = want
        for key in list(self.installed):
            if key in others:
                del self.installed[key]  # no longer tagged as ours: not ours to remove
            elif key not in wanted:
                log.info("removed %s (its nested prefix ended)", key[1])
                self._delete(key[0], key[1], 64)
                del self.installed[key]

    def _delete(self, ifindex: int, address: str, prefixlen: int) -> None:
        try:
            self.ipr.addr("del", index=ifindex, address=address, prefixlen=prefixlen,
                          family=socket.AF_INET6)
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "code", None) not in (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ESRCH):
                log.warning("cannot delete address %s: %s", address, exc)
