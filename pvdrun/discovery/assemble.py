"""Build the PvD table from kernel state, what RAs said, link stores and configuration.

Rules (docs/discovery.md has the long form):

* Only links that are up with carrier carry PvDs.  Addresses: all IPv4, and
  IPv6 that are neither link-local, deprecated, tentative nor DAD-failed (R16).
* An explicit PvD (RFC 8801) heard on a link owns the addresses inside its
  PIO prefixes, the routes inside its PIO/RIO prefixes, and the default
  routes via its routers: the routers that sent its PvD option, and those
  whose plain RAs advertise one of its prefixes (so a PvD option sent with
  router lifetime 0 still gets the default route of the router that serves
  its prefix).  A default route via a router shared by two PvDs belongs to both.
* A route belongs to a PvD by its next hop (:func:`_owns_route`): a default or a
  prefix route via one of the PvD's own routers, or an on-link prefix route inside its
  prefixes; never a route via another PvD's router, whatever its destination (a host
  route to ISP B's DNS server via ISP A's router is not ISP B's).  The implicit
  remainder takes no route via a router of another PvD on its link either.
* What remains stays in an implicit PvD ``implicit:<ifname>``.  When two or
  more routers on one link each advertise their own, different prefixes, it
  is split per router: ``implicit:<ifname>:<router>``, plus the remainder
  (IPv4 and unattributed addresses) in ``implicit:<ifname>`` if it has any
  address.  An implicit PvD exists only when it has at least one address.
* PvDs sharing an interface get ``needs_routing=True``.
* The default PvD (R9) is the configured ``default`` when present, else the
  one whose default route has the lowest metric over IPv6 and IPv4; ties go
  to IPv6, then to the higher RFC 4191 preference, then to the lower
  ifindex, then to the PvD ID in alphabetical order.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from pvdrun.config import Config, ConfiguredPvd
from pvdrun.discovery.kernel import RTPROT_RA, Address, KernelState, KRoute, Link, LinkObjects, group
from pvdrun.discovery.linkstate import LinkDns
from pvdrun.discovery.names import assign_names
from pvdrun.discovery.ratable import ExplicitRecord, RaTable, RouterRecord
from pvdrun.model import Pvd, Route, link_dns_server, make_handle

log = logging.getLogger("pvdrun.discovery")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class _Builder:
    """A PvD under construction."""

    pvd_id: str
    link: Link
    explicit: bool
    generation: int = 0
    addresses: list[Address] = field(default_factory=list)
    routes: list[KRoute] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    routers: list[str] = field(default_factory=list)
    record: ExplicitRecord | None = None
    #: what :func:`_to_pvd` made of it once (handle, routes, routers, addresses): a builder
    #: kept for an unchanged link is turned into a PvD again at the cost of a few copies
    made: tuple[int, list[Route], list[str], list[str]] | None = field(default=None, repr=False)

    def add_dns(self, servers: list[str], domains: list[str]) -> None:
        """Servers learned on this builder's link: a link-local one keeps the link as its zone
        (``fe80::1%eth0``); what is no server, or is zoned to another link, is left out."""
        for server in servers:
            held = link_dns_server(server, self.link.name, self.link.index)
            if held is None:
                log.info("%s: ignoring DNS server %s learned on %s", self.pvd_id, server, self.link.name)
            elif held not in self.dns:
                self.dns.append(held)
        self.search += [d for d in domains if d not in self.search]


def usable_address(addr: Address) -> bool:
    """Part of a PvD: every IPv4 address, non-deprecated global IPv6 ones (R16)."""
    if addr.family == socket.AF_INET:
        return True
    return not (addr.link_local or addr.deprecated or addr.tentative or addr.dadfailed)


def _nets(prefixes: list[str]) -> list[Network]:
    return [ipaddress.ip_network(p) for p in prefixes]


def _within(item: str, nets: list[Network]) -> bool:
    """Is an address or a prefix inside one of nets?"""
    try:
        net = ipaddress.ip_network(item, strict=False)
    except ValueError:
        return False
    return any(net.version == n.version and net.subnet_of(n) for n in nets)  # type: ignore[arg-type]


def _owns_route(route: KRoute, routers: list[str], nets: list[Network]) -> bool:
    """Whether an IPv6 route of the link belongs to the PvD with ``routers`` and prefixes
    ``nets``: a default via one of its routers; a prefix inside ``nets`` via one of its
    routers or on-link.  A route via any other router is never the PvD's."""
    if route.gateway is not None and route.gateway not in routers:
        return False
    if route.dst == "default":
        return route.gateway is not None
    return _within(route.dst, nets)


def _route_origin(route: KRoute) -> str:
    if route.proto == RTPROT_RA:
        return "rio" if route.dst != "default" and route.gateway else "ra"
    return "kernel"


def _split_link(link: Link, addrs: list[Address], routes: list[KRoute],
                heard: tuple[list[RouterRecord], list[ExplicitRecord]],
                store_dns: LinkDns | None, router_neighbours: list[str] | None = None
                ) -> list[_Builder]:
    """The PvDs of one link (see module docstring); ``heard``: what RAs said on it (the
    routers' records and the explicit PvDs')."""
    builders: list[_Builder] = []
    routers, explicit = heard
    claimed_addrs: set[int] = set()
    claimed_routes: set[int] = set()
    explicit_nets: list[Network] = []
    for rec in explicit:
        explicit_nets += _nets(list(rec.options.prefixes) + list(rec.options.routes))
    absorbed: set[str] = set()
    for router in routers:
        own = list(router.options.prefixes)
        if own and all(_within(p, explicit_nets) for p in own):
            absorbed.add(router.router)

    for rec in explicit:
        builder = _Builder(rec.pvd_id, link, True, generation=rec.generation, record=rec)
        pio_nets = _nets(list(rec.options.prefixes))
        all_nets = pio_nets + _nets(list(rec.options.routes))
        serving = list(rec.routers)
        for router in routers:
            if router.router not in serving and any(_within(p, pio_nets) for p in router.options.prefixes):
                serving.append(router.router)
        builder.routers = serving
        for i, addr in enumerate(addrs):
            if i not in claimed_addrs and addr.family == socket.AF_INET6 and _within(addr.address, pio_nets):
                builder.addresses.append(addr)
                claimed_addrs.add(i)
        for i, route in enumerate(routes):
            if route.family != socket.AF_INET6:
                continue
            # a default route via a router shared by two PvDs belongs to both
            if (route.dst == "default" or i not in claimed_routes) and _owns_route(route, serving, all_nets):
                builder.routes.append(route)
                claimed_routes.add(i)
        builder.add_dns(list(rec.options.rdnss), list(rec.options.dnssl))
        if not builder.dns:  # fall back to what its absorbed routers advertise
            for router in routers:
                if router.router in serving and router.router in absorbed:
                    builder.add_dns(list(router.options.rdnss), list(router.options.dnssl))
        builders.append(builder)

    free_routers = [r for r in routers if r.router not in absorbed]
    with_prefixes = [r for r in free_routers if r.options.prefixes]
    distinct = {frozenset(r.options.prefixes) for r in with_prefixes}
    split = len(with_prefixes) >= 2 and len(distinct) == len(with_prefixes)
    implicit: list[_Builder] = []
    if split:
        for router in with_prefixes:
            builder = _Builder(f"implicit:{link.name}:{router.router}", link, False)
            builder.routers = [router.router]
            nets = _nets(list(router.options.prefixes) + list(router.options.routes))
            for i, addr in enumerate(addrs):
                if i not in claimed_addrs and _within(addr.address, nets):
                    builder.addresses.append(addr)
                    claimed_addrs.add(i)
            for i, route in enumerate(routes):
                if i in claimed_routes or route.family != socket.AF_INET6:
                    continue
                if _owns_route(route, builder.routers, nets):
                    builder.routes.append(route)
                    claimed_routes.add(i)
            builder.add_dns(list(router.options.rdnss), list(router.options.dnssl))
            implicit.append(builder)
    rest = _Builder(f"implicit:{link.name}", link, False)
    rest.addresses = [a for i, a in enumerate(addrs) if i not in claimed_addrs]
    rest.routers = [r.router for r in free_routers if not split or r not in with_prefixes]
    others = {r for b in builders + implicit for r in b.routers} - set(rest.routers)
    rest.routes = [r for i, r in enumerate(routes) if i not in claimed_routes and r.gateway not in others]
    known = {r for b in builders for r in b.routers} | {r.router for r in routers}
    rest.routers += [n for n in router_neighbours or [] if n not in known and n not in rest.routers]
    if not split:
        for router in free_routers:
            rest.add_dns(list(router.options.rdnss), list(router.options.dnssl))
    if rest.addresses:
        implicit.append(rest)
    if store_dns is not None:
        for builder in ([rest] if rest.addresses else implicit):
            builder.add_dns(store_dns.servers, store_dns.domains)
    return builders + implicit


def _destination_order(family: int, dst: str) -> tuple[bytes, int]:
    if dst == "default":
        return (b"", 0)
    address, _, length = dst.partition("/")
    return (socket.inet_pton(family, address), int(length))


def _route_order(route: KRoute) -> tuple:
    """Routes in one order whatever order the kernel listed them in (a dump's, or the order
    notifications came in): IPv4 first, the default first, then by destination."""
    return (route.family, _destination_order(route.family, route.dst), route.metric, route.gateway or "")


def _to_pvd(builder: _Builder, kind: str | None) -> Pvd:
    """A new PvD of a builder (a new one each time: the rest of the table's making and pvdd's
    routing change it; its routes are shared, never changed)."""
    link = builder.link
    if builder.made is None:
        routes = [Route(dst=r.dst, gateway=r.gateway, ifname=link.name, metric=r.metric,
                        origin=_route_origin(r)) for r in sorted(builder.routes, key=_route_order)]
        gateways = [r.gateway for r in routes if r.gateway]
        builder.made = (make_handle(builder.pvd_id, link.index, link.carrier_up_count, builder.generation),
                        routes, list(dict.fromkeys([*builder.routers, *gateways])),
                        [a.with_prefix for a in builder.addresses])
    handle, routes, routers, addresses = builder.made
    pvd = Pvd(pvd_id=builder.pvd_id, handle=handle,
              explicit=builder.explicit, interfaces=[link.name], ifindexes=[link.index],
              addresses=list(addresses), routes=list(routes),
              dns_servers=list(builder.dns), search_domains=list(builder.search), kind=kind,
              routers=list(routers), source="ra" if builder.explicit else "kernel")
    if builder.record is not None:
        pvd.sequence = builder.record.sequence
        pvd.flags = dict(builder.record.flags)
        pvd.attributes["generation"] = builder.generation
    return pvd


def _default_key(pvd: Pvd, kroutes: dict[str, list[KRoute]]) -> tuple | None:
    best = None
    for route in kroutes.get(pvd.pvd_id, []):
        if route.dst != "default":
            continue
        key = (route.metric, 0 if route.family == socket.AF_INET6 else 1, -route.preference,
               pvd.ifindexes[0] if pvd.ifindexes else 0, pvd.pvd_id)
        best = key if best is None or key < best else best
    return best


def _apply_config(pvds: list[Pvd], config: Config) -> dict[str, Pvd]:
    """Name and override the PvDs the configuration selects; returns name -> PvD."""
    chosen: dict[str, Pvd] = {}
    for conf in config.pvds:
        matches = [p for p in pvds if _config_matches(conf, p)]
        if len(matches) > 1 and not conf.pvd_id:
            implicit = [p for p in matches if not p.explicit]
            matches = implicit if len(implicit) == 1 else matches
        if len(matches) != 1:
            if matches:
                log.warning("configured PvD %s matches %d PvDs (%s); give it a pvd_id", conf.name,
                            len(matches), ", ".join(p.pvd_id for p in matches))
            continue
        pvd = matches[0]
        pvd.names.insert(0, conf.name)
        pvd.kind = conf.kind or pvd.kind
        if conf.dns is not None:
            pvd.dns_servers = _servers_of(pvd, conf.dns, f"configured PvD {conf.name}")
        if conf.search is not None:
            pvd.search_domains = list(conf.search)
        pvd.attributes.update(conf.attributes)
        if conf.users or conf.groups or conf.restricted:
            pvd.attributes["policy"] = {"users": conf.users, "groups": conf.groups,
                                        "restricted": conf.restricted}
        pvd.attributes["configured"] = conf.name
        chosen[conf.name] = pvd
    return chosen


def _servers_of(pvd: Pvd, servers: list[str], where: str) -> list[str]:
    """``servers`` (from ``where``) as the PvD holds them: a link-local one zoned with the PvD's
    link; one zoned to another link is no server of this PvD (logged and left out)."""
    held = [link_dns_server(s, pvd.interfaces[0], pvd.ifindexes[0]) for s in servers]
    for server, kept in zip(servers, held):
        if kept is None:
            log.warning("%s: DNS server %s is not reachable on %s; not used", where, server,
                        pvd.interfaces[0])
    return [s for s in held if s is not None]


def _config_matches(conf: ConfiguredPvd, pvd: Pvd) -> bool:
    if conf.pvd_id and conf.pvd_id != pvd.pvd_id:
        return False
    if conf.interface and conf.interface not in pvd.interfaces:
        return False
    return True


def link_builders(link: Link, objects: LinkObjects | None,
                  heard: tuple[list[RouterRecord], list[ExplicitRecord]],
                  store_dns: LinkDns | None) -> list[_Builder]:
    """The PvDs of one usable link, under construction: the rules above, that link alone."""
    objects = objects or LinkObjects()
    addrs = [a for a in objects.addresses if usable_address(a)]
    neighbours = [n.address for n in objects.neighbours if n.router]
    return _split_link(link, addrs, objects.routes, heard, store_dns, neighbours)


_NOTHING_HEARD: tuple[list[RouterRecord], list[ExplicitRecord]] = ([], [])


def assemble(state: KernelState, ras: RaTable, config: Config,
             dns_of_link: Callable[[Link], LinkDns | None],
             kind_of_link: Callable[[Link], str | None],
             fallback_dns: Callable[[], LinkDns], infos: Mapping[str, dict[str, Any]] | None = None) -> list[Pvd]:
    """The PvD table (sorted: by interface index, explicit first, then by ID)."""
    grouped = group(state)
    heard = ras.per_link()
    builders: dict[int, list[_Builder]] = {}
    kinds: dict[int, str | None] = {}
    for link in state.links.values():
        if link.usable:
            builders[link.index] = link_builders(link, grouped.get(link.index),
                                                 heard.get(link.index, _NOTHING_HEARD), dns_of_link(link))
            kinds[link.index] = kind_of_link(link)
    return finish(builders, kinds, config, fallback_dns, infos)


class Assembler:
    """Assembles again only the links that changed: each usable link's builders and kind are
    kept until its kernel objects, what RAs said on it or the link itself change."""

    def __init__(self) -> None:
        self.builders: dict[int, list[_Builder]] = {}
        self.kinds: dict[int, str | None] = {}

    def assemble(self, links: dict[int, Link], objects: Callable[[int], LinkObjects],
                 changed: set[int] | None, ras: RaTable, config: Config,
                 dns_of_link: Callable[[Link], LinkDns | None],
                 kind_of_link: Callable[[Link], str | None],
                 fallback_dns: Callable[[], LinkDns],
                 infos: Mapping[str, dict[str, Any]] | None = None) -> list[Pvd]:
        """The PvD table; ``changed``: the links to build again (None: every one); ``infos``:
        the current RFC 8801 Additional Information by PvD ID."""
        if changed is None:
            self.builders, self.kinds = {}, {}
            changed = set(links)
        usable = {i for i, link in links.items() if link.usable}
        for index in list(self.builders):
            if index not in usable:
                del self.builders[index]
                self.kinds.pop(index, None)
        heard = ras.per_link() if changed & usable else {}
        for index in usable:
            if index in changed or index not in self.builders:
                link = links[index]
                self.builders[index] = link_builders(link, objects(index),
                                                     heard.get(index, _NOTHING_HEARD), dns_of_link(link))
                self.kinds[index] = kind_of_link(link)
        return finish(self.builders, self.kinds, config, fallback_dns, infos)


def finish(builders: dict[int, list[_Builder]], kinds: dict[int, str | None], config: Config,
           fallback_dns: Callable[[], LinkDns], infos: Mapping[str, dict[str, Any]] | None = None) -> list[Pvd]:
    """Every link's builders -> the PvD table: shared links, configuration, names, Additional
    Information, default (never one whose Additional Information says ``noInternet``, unless
    the configuration names it)."""
    pvds: list[Pvd] = []
    kroutes: dict[str, list[KRoute]] = {}
    for index in sorted(builders):
        link_builders_ = builders[index]
        shared = len(link_builders_) > 1
        for builder in link_builders_:
            pvd = _to_pvd(builder, kinds.get(index))
            pvd.needs_routing = shared
            if infos and pvd.explicit and pvd.flags.get("H"):
                pvd.additional_info = infos.get(pvd.pvd_id)
            pvds.append(pvd)
            kroutes[builder.pvd_id] = builder.routes
    pvds.sort(key=lambda p: (p.ifindexes[0], not p.explicit, p.pvd_id))
    configured = _apply_config(pvds, config)
    assign_names(pvds)
    default = configured.get(config.default) if config.default else None
    if default is None:
        keyed = [(key, p) for p in pvds if not p.no_internet and (key := _default_key(p, kroutes)) is not None]
        default = min(keyed, key=lambda kp: kp[0])[1] if keyed else None
    if default is not None:
        default.is_default = True
        if not default.dns_servers:  # last resort: the system resolv.conf (default PvD only)
            fallback = fallback_dns()
            servers = _servers_of(default, fallback.servers, fallback.store or "resolv.conf")
            if servers:
                default.dns_servers = servers
                default.search_domains = default.search_domains or list(fallback.domains)
                default.attributes["dns_from"] = fallback.store or "resolv.conf"
    return pvds
