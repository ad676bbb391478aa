"""The kernel's network state kept current from rtnetlink notifications.

:class:`KernelModel` is loaded with one dump per kind (links, addresses, main-table routes,
IPv6 neighbours), then takes in each ``RTM_NEW``/``DEL`` ``LINK``/``ADDR``/``ROUTE``/``NEIGH``
message the notification socket delivers, so pvdd and ``pvdrun monitor`` never re-dump the
whole kernel per change.  It records which links changed (``take_dirty``) so that only
their PvDs are assembled again.  A link's addresses keep the order the kernel lists them in
(IPv4: primaries, then secondaries, each in the order they came; IPv6: the widest scope
first, the newest first), which the scope line's ``addr=`` order follows.

Every notification carries the whole object (a link with all its attributes, an address, a
route with its next hops), so applying the messages of a key in order ends where the kernel
is, whatever dump they are applied on top of.  Where the kernel changes routes without a
message (IPv4 routes flushed when a link goes down or goes away, or when an IPv4 address
goes; an RA refreshing a route's preference), the routes are marked stale and dumped again
(``refresh``).  When the notification socket overran (ENOBUFS: messages were lost),
:meth:`lost` marks the whole model stale and the next :meth:`refresh` dumps everything.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass, field

from pvdrun.discovery import rtnl
from pvdrun.discovery.kernel import (Address, KernelState, KRoute, Link, LinkObjects, Neighbour,
                                     _addr_from_msg, _link_from_msg, _neighbour_from_msg,
                                     _routes_from_msg, address_rank, dump_links, dump_neighbours,
                                     dump_routes, route_base)

AddrKey = tuple[int, str, int]                      # family, address, prefix length
Rank = tuple[int, int, int, int]                    # family's place, then as address_rank, then age
RouteKey = tuple[int, str, int, "str | None", int]  # family, destination, metric, gateway, oif
_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def _addr_key(addr: Address) -> AddrKey:
    return addr.family, addr.address, addr.prefixlen


def _route_key(route: KRoute) -> RouteKey:
    return route.family, route.dst, route.metric, route.gateway, route.oif


def _same_address(old: Address, new: Address) -> bool:
    """Equal but for the lifetimes the kernel counts down."""
    return (old.deprecated, old.tentative, old.dadfailed) == (new.deprecated, new.tentative, new.dadfailed)


def _same_route(old: KRoute, new: KRoute) -> bool:
    """Equal but for the expiry the kernel counts down (the key holds the rest)."""
    return (old.proto, old.preference) == (new.proto, new.preference)


@dataclass
class _Stale:
    """What must be dumped again before the model can be read."""

    everything: bool = False
    route_families: set[int] = field(default_factory=set)


class KernelModel:
    """Links, addresses, routes and neighbours, per link, kept current."""

    def __init__(self) -> None:
        self.links: dict[int, Link] = {}
        self.addresses: dict[int, dict[AddrKey, tuple[Rank, Address]]] = {}
        self._arrivals = 0
        self.routes: dict[int, dict[RouteKey, KRoute]] = {}
        #: (family, destination, metric) -> the links that may hold a next hop of it (a
        #: superset: what a replacing route replaces is found without a scan of every route)
        self._bases: dict[tuple[int, str, int], set[int]] = {}
        self.neighbours: dict[int, dict[str, Neighbour]] = {}
        self.stale = _Stale(everything=True)
        #: links whose objects changed since :meth:`take_dirty` (None: all of them)
        self.dirty: set[int] | None = None
        #: full dumps (the first load and every resync after an overrun)
        self.full_dumps = 0

    # -- reading ---------------------------------------------------------------------
    def objects(self, ifindex: int) -> LinkObjects:
        """One link's addresses, routes and neighbours."""
        return LinkObjects(addresses=[a for _, a in sorted(self.addresses.get(ifindex, {}).values(),
                                                           key=lambda ra: ra[0])],
                           routes=list(self.routes.get(ifindex, {}).values()),
                           neighbours=list(self.neighbours.get(ifindex, {}).values()))

    def grouped(self) -> dict[int, LinkObjects]:
        """Every link's objects (links that have some)."""
        indexes = set(self.addresses) | set(self.routes) | set(self.neighbours)
        return {i: self.objects(i) for i in indexes}

    def state(self) -> KernelState:
        """A :class:`KernelState` of the model (as a dump would give it)."""
        return KernelState(links=dict(self.links),
                           addresses=[a for i in self.addresses for a in self.objects(i).addresses],
                           routes=[r for per in self.routes.values() for r in per.values()],
                           neighbours=[n for per in self.neighbours.values() for n in per.values()])

    def take_dirty(self) -> set[int] | None:
        """The links changed since the last call (None: every link), and start afresh."""
        dirty, self.dirty = self.dirty, set()
        return dirty

    def _touch(self, ifindex: int) -> None:
        if self.dirty is not None:
            self.dirty.add(ifindex)

    # -- dumps -----------------------------------------------------------------------
    def needs_refresh(self) -> bool:
        return self.stale.everything or bool(self.stale.route_families)

    def lost(self) -> None:
        """Notifications were lost (the socket overran): dump everything at the next refresh."""
        self.stale.everything = True

    def refresh(self, ipr: rtnl.Rtnl) -> None:
        """Dump again what is stale (nothing when nothing is)."""
        if self.stale.everything:
            self.load(ipr)
        elif self.stale.route_families:
            families = tuple(f for f in _FAMILIES if f in self.stale.route_families)
            self.stale.route_families = set()
            self._replace_routes(dump_routes(ipr, families), families)

    def load(self, ipr: rtnl.Rtnl) -> None:
        """One dump of each kind; every link counts as changed."""
        self.stale = _Stale()
        self.full_dumps += 1
        self.links = dump_links(ipr)
        self.addresses = {}
        for position, (_kind, head, attrs) in enumerate(ipr.dump(rtnl.RTM_GETADDR, bytes(rtnl.IFADDRMSG.size),
                                                                 rtnl.IFADDRMSG.size)):
            addr = _addr_from_msg(head, attrs)
            if addr is not None:  # in the dump's order: an IPv6 address listed later is older
                age = position if addr.family == socket.AF_INET else -position
                self.addresses.setdefault(addr.index, {})[_addr_key(addr)] = \
                    (self._rank(addr, address_rank(head, attrs), age), addr)
            self._arrivals = max(self._arrivals, position + 1)
        self.routes = {}
        for route in dump_routes(ipr):
            self.routes.setdefault(route.oif, {})[_route_key(route)] = route
        self._index_routes()
        self.neighbours = {}
        for neighbour in dump_neighbours(ipr):
            self.neighbours.setdefault(neighbour.index, {})[neighbour.address] = neighbour
        self.dirty = None

    def _replace_routes(self, routes: list[KRoute], families: tuple[int, ...]) -> None:
        """Put a fresh dump of ``families``' routes in place; links whose routes differ change."""
        fresh: dict[int, dict[RouteKey, KRoute]] = {}
        for route in routes:
            fresh.setdefault(route.oif, {})[_route_key(route)] = route
        for ifindex in set(self.routes) | set(fresh):
            old = self.routes.get(ifindex, {})
            kept = {k: r for k, r in old.items() if r.family not in families}
            new = {**kept, **fresh.get(ifindex, {})}
            if new != old:
                self._touch(ifindex)
            if new:
                self.routes[ifindex] = new
            else:
                self.routes.pop(ifindex, None)
        self._index_routes()

    def _index_routes(self) -> None:
        self._bases = {}
        for ifindex, per in self.routes.items():
            for key in per:
                self._bases.setdefault(key[:3], set()).add(ifindex)  # type: ignore[index]

    def routes_stale(self, *families: int) -> None:
        """The kernel may have changed these families' routes without a message."""
        self.stale.route_families.update(families or _FAMILIES)

    # -- notifications ---------------------------------------------------------------
    def apply(self, kind: int, flags: int, body: bytes) -> bool:
        """Take in one notification; True when the model changed (or must be dumped)."""
        if kind in (rtnl.RTM_NEWLINK, rtnl.RTM_DELLINK):
            return self._link(kind, body)
        if kind in (rtnl.RTM_NEWADDR, rtnl.RTM_DELADDR):
            return self._address(kind, body)
        if kind in (rtnl.RTM_NEWROUTE, rtnl.RTM_DELROUTE):
            return self._route(kind, flags, body)
        if kind in (rtnl.RTM_NEWNEIGH, rtnl.RTM_DELNEIGH):
            return self._neighbour(kind, body)
        return False

    def _link(self, kind: int, body: bytes) -> bool:
        parts = rtnl.split(body, rtnl.IFINFOMSG.size)
        if parts is None or parts[0][0] != socket.AF_UNSPEC:
            return False  # AF_INET6/AF_BRIDGE link messages carry only part of the link
        link = _link_from_msg(*parts)
        old = self.links.get(link.index)
        if kind == rtnl.RTM_DELLINK:
            if old is None:
                return False
            del self.links[link.index]
            for table in (self.addresses, self.routes, self.neighbours):
                table.pop(link.index, None)
            self.routes_stale()  # a multipath route with a hop there went too
            self._touch(link.index)
            return True
        if old == link:
            return False
        self.links[link.index] = link
        if old is not None and (old.up, old.carrier) != (link.up, link.carrier):
            self.routes_stale()  # IPv4 flushes a downed link's routes without a message
        self._touch(link.index)
        return True

    @staticmethod
    def _rank(addr: Address, rank: tuple[int, int], age: int) -> Rank:
        """Sorts as the kernel lists a link's addresses: IPv4 (primaries first) in the order
        they came, then IPv6 by scope, the newest first."""
        if addr.family == socket.AF_INET:
            return 0, rank[0], rank[1], age
        return 1, rank[0], rank[1], -age

    def _address(self, kind: int, body: bytes) -> bool:
        parts = rtnl.split(body, rtnl.IFADDRMSG.size)
        addr = _addr_from_msg(*parts) if parts is not None else None
        if addr is None or parts is None:
            return False
        per = self.addresses.setdefault(addr.index, {})
        key = _addr_key(addr)
        if kind == rtnl.RTM_DELADDR:
            if per.pop(key, None) is None:
                return False
            if addr.family == socket.AF_INET:
                self.routes_stale(socket.AF_INET)  # routes from that source went silently
        else:
            held = per.get(key)
            if held is None:
                self._arrivals += 1
                age = self._arrivals
            else:  # it keeps its place; an IPv4 address promoted to primary moves up
                age = held[0][3] if addr.family == socket.AF_INET else -held[0][3]
            rank = self._rank(addr, address_rank(*parts), age)
            per[key] = (rank, addr)
            if held is not None and held[0] == rank and _same_address(held[1], addr):
                return False  # only its lifetimes counted on
        self._touch(addr.index)
        return True

    def _route(self, kind: int, flags: int, body: bytes) -> bool:
        parts = rtnl.split(body, rtnl.RTMSG.size)
        if parts is None:
            return False
        routes = _routes_from_msg(*parts)
        changed = False
        if kind == rtnl.RTM_NEWROUTE and flags & rtnl.NLM_F_REPLACE:
            base = route_base(*parts)  # the route it replaces goes, whatever its next hops
            if base is not None:
                for ifindex in self._bases.pop(base, set()):
                    per = self.routes.get(ifindex, {})
                    for key in [k for k in per if k[:3] == base]:
                        del per[key]
                        self._touch(ifindex)
                        changed = True
        for route in routes:
            per = self.routes.setdefault(route.oif, {})
            key = _route_key(route)
            if kind == rtnl.RTM_DELROUTE:
                if per.pop(key, None) is not None:
                    self._touch(route.oif)
                    changed = True
            else:
                old = per.get(key)
                per[key] = route
                self._bases.setdefault(key[:3], set()).add(route.oif)  # type: ignore[index]
                if old is None or not _same_route(old, route):
                    self._touch(route.oif)
                    changed = True
        return changed

    def _neighbour(self, kind: int, body: bytes) -> bool:
        if not body or body[0] != socket.AF_INET6:  # ARP's churn: not even parsed
            return False
        parts = rtnl.split(body, rtnl.NDMSG.size)
        neighbour = _neighbour_from_msg(*parts) if parts is not None else None
        if neighbour is None:
            return False
        per = self.neighbours.setdefault(neighbour.index, {})
        old = per.get(neighbour.address)
        if kind == rtnl.RTM_DELNEIGH:
            if old is None:
                return False
            del per[neighbour.address]
        else:
            per[neighbour.address] = neighbour
        # a neighbour only matters as a router: its reachability changes nothing
        if (old is not None and old.router) == (kind == rtnl.RTM_NEWNEIGH and neighbour.router):
            return False
        self._touch(neighbour.index)
        return True

    def comparable(self) -> dict[str, object]:
        """What a fresh dump must equal (tests): everything but the counters the kernel
        counts down between two reads (address and route lifetimes)."""
        state = self.state()
        return comparable(state)


def comparable(state: KernelState) -> dict[str, object]:
    """A kernel state without its running lifetimes, sorted: two reads of the same state
    compare equal.  Tentative IPv6 addresses are left out: the kernel announces an address
    once its duplicate address detection is done (a dump shows it before), and a tentative
    address is part of no PvD."""
    return {
        "links": sorted((l.index, l.name, l.up, l.carrier, l.loopback, l.carrier_up_count,
                         l.link_kind, l.arphrd, l.lladdr) for l in state.links.values()),
        "addresses": sorted((a.index, a.family, a.address, a.prefixlen, a.deprecated, a.tentative,
                             a.dadfailed) for a in state.addresses if not a.tentative),
        "routes": sorted((r.family, r.dst, str(r.gateway), r.oif, r.metric, r.proto, int(r.preference))
                         for r in state.routes),
        "routers": sorted((n.index, n.address) for n in state.neighbours if n.router),
    }
