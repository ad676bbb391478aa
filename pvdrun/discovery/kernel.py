"""The kernel's network state, read with rtnetlink dumps (rtnl.py), as plain dataclasses.

The rest of discovery never touches netlink messages.  No pyroute2 here: importing it
would cost a one-shot discovery most of its time.  The ``*_from_msg`` parsers serve the
dumps here and the notifications pvdrun/discovery/kernelmodel.py applies; :func:`group`
sorts a state per link once, so nothing walks every address or route once per link.
"""
from __future__ import annotations

import functools
import ipaddress
import socket
import struct
from dataclasses import dataclass, field

from pvdrun.discovery import rtnl
from pvdrun.discovery.ra import Preference

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_LOWER_UP = 0x10000
IFA_F_SECONDARY = 0x01
IFA_F_DADFAILED = 0x08
IFA_F_DEPRECATED = 0x20
IFA_F_TENTATIVE = 0x40
NTF_ROUTER = 0x80
RTPROT_RA = 9
RT_TABLE_MAIN = 254
RT_TABLE_COMPAT = 252
RTN_UNICAST = 1
ARPHRD_ETHER = 1
ARPHRD_PPP = 512
#: rta_expires counts clock ticks (USER_HZ).
USER_HZ = 100
#: An address lifetime the kernel never counts down (INFINITY_LIFE_TIME).
INFINITY_LIFETIME = 0xFFFFFFFF


@dataclass
class Link:
    """One network interface."""

    index: int
    name: str
    up: bool
    carrier: bool
    loopback: bool
    carrier_up_count: int
    link_kind: str | None  # IFLA_INFO_KIND: veth, wireguard, tun, ...
    arphrd: int
    lladdr: str | None = None  # IFLA_ADDRESS: with the name and index, which link this is

    @property
    def usable(self) -> bool:
        """Up with carrier, and not loopback: it can carry a PvD."""
        return self.up and self.carrier and not self.loopback


@dataclass
class Address:
    """One address of an interface, with its RFC 4862 state."""

    index: int
    family: int
    address: str
    prefixlen: int
    deprecated: bool
    tentative: bool
    dadfailed: bool
    preferred_lifetime: int | None
    valid_lifetime: int | None

    @property
    def link_local(self) -> bool:
        return _link_local(self.address)

    @property
    def with_prefix(self) -> str:
        return f"{self.address}/{self.prefixlen}"


@dataclass
class KRoute:
    """One unicast route of the main table (one next-hop of a multipath route)."""

    family: int
    dst: str  # "default" or "prefix/len"
    gateway: str | None
    oif: int
    metric: int
    proto: int
    preference: Preference  # RFC 4191 (RTA_PREF) for IPv6, medium for IPv4
    #: seconds until the kernel drops it (RTA_CACHEINFO rta_expires), None when it never does
    expires: float | None = None


@dataclass
class Neighbour:
    """A neighbour cache entry; ``router`` when the kernel knows it is a router."""

    index: int
    address: str
    router: bool


@dataclass
class KernelState:
    """Links, addresses, routes and neighbours at one moment."""

    links: dict[int, Link] = field(default_factory=dict)
    addresses: list[Address] = field(default_factory=list)
    routes: list[KRoute] = field(default_factory=list)
    neighbours: list[Neighbour] = field(default_factory=list)


@dataclass
class LinkObjects:
    """What the kernel holds on one link: its addresses, routes (by output interface) and
    neighbours."""

    addresses: list[Address] = field(default_factory=list)
    routes: list[KRoute] = field(default_factory=list)
    neighbours: list[Neighbour] = field(default_factory=list)


def group(state: KernelState) -> dict[int, LinkObjects]:
    """The state sorted per link, in one pass over each list (order kept within a link)."""
    grouped: dict[int, LinkObjects] = {}
    for addr in state.addresses:
        grouped.setdefault(addr.index, LinkObjects()).addresses.append(addr)
    for route in state.routes:
        grouped.setdefault(route.oif, LinkObjects()).routes.append(route)
    for neighbour in state.neighbours:
        grouped.setdefault(neighbour.index, LinkObjects()).neighbours.append(neighbour)
    return grouped


@functools.lru_cache(maxsize=4096)
def _link_local(address: str) -> bool:
    return ipaddress.ip_address(address.split("%", 1)[0]).is_link_local


@functools.lru_cache(maxsize=16384)
def _destination(family: int, raw: bytes, dst_len: int) -> str | None:
    """A route's destination as text ("prefix/len"); None for link-local and multicast ones,
    which no PvD holds.  Cached: a thousand links share fe80::/64 and the like."""
    dst_addr = rtnl.address(family, raw) if raw else ("0.0.0.0" if family == socket.AF_INET else "::")
    net = ipaddress.ip_network(f"{dst_addr}/{dst_len}", strict=False)
    if net.is_link_local or net.is_multicast:
        return None
    return str(net)


# rtnetlink attribute numbers (<linux/if_link.h>, <linux/if_addr.h>, <linux/rtnetlink.h>,
# <linux/neighbour.h>)
IFLA_ADDRESS, IFLA_IFNAME, IFLA_LINKINFO, IFLA_CARRIER_UP_COUNT = 1, 3, 18, 47
IFLA_INFO_KIND = 1
IFA_ADDRESS, IFA_LOCAL, IFA_CACHEINFO, IFA_FLAGS = 1, 2, 6, 8
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_MULTIPATH = 1, 4, 5, 6, 9
RTA_CACHEINFO, RTA_TABLE, RTA_PREF = 12, 15, 20
NDA_DST = 1


def _link_from_msg(ifi: bytes, attrs: rtnl.Attrs) -> Link:
    _family, arphrd, index, flags, _change = rtnl.IFINFOMSG.unpack(ifi)
    linkinfo = rtnl.parse_attrs(attrs[IFLA_LINKINFO]) if IFLA_LINKINFO in attrs else {}
    kind = rtnl.cstring(linkinfo[IFLA_INFO_KIND]) if IFLA_INFO_KIND in linkinfo else None
    hw = attrs.get(IFLA_ADDRESS)
    return Link(index=index, name=rtnl.cstring(attrs[IFLA_IFNAME]) if IFLA_IFNAME in attrs else f"if{index}",
                up=bool(flags & IFF_UP), carrier=bool(flags & IFF_LOWER_UP),
                loopback=bool(flags & IFF_LOOPBACK),
                carrier_up_count=rtnl.u32(attrs[IFLA_CARRIER_UP_COUNT]) if IFLA_CARRIER_UP_COUNT in attrs else 0,
                link_kind=kind, arphrd=arphrd,
                lladdr=":".join(f"{b:02x}" for b in hw) if hw is not None else None)


def _addr_from_msg(ifa: bytes, attrs: rtnl.Attrs) -> Address | None:
    family, prefixlen, header_flags, _scope, index = rtnl.IFADDRMSG.unpack(ifa)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    raw = attrs.get(IFA_LOCAL) if family == socket.AF_INET else None
    raw = raw or attrs.get(IFA_ADDRESS)
    if not raw:
        return None
    flags = rtnl.u32(attrs[IFA_FLAGS]) if IFA_FLAGS in attrs else header_flags
    preferred = valid = None
    if IFA_CACHEINFO in attrs and len(attrs[IFA_CACHEINFO]) >= 8:
        preferred, valid = struct.unpack_from("=II", attrs[IFA_CACHEINFO])
    return Address(index=index, family=family, address=rtnl.address(family, raw),
                   prefixlen=prefixlen, deprecated=bool(flags & IFA_F_DEPRECATED),
                   tentative=bool(flags & IFA_F_TENTATIVE), dadfailed=bool(flags & IFA_F_DADFAILED),
                   preferred_lifetime=None if preferred in (None, INFINITY_LIFETIME) else preferred,
                   valid_lifetime=None if valid in (None, INFINITY_LIFETIME) else valid)


def route_base(rtm: bytes, attrs: rtnl.Attrs) -> tuple[int, str, int] | None:
    """(family, destination, metric) of a main-table route message of any type: what the
    kernel replaces as one (NLM_F_REPLACE); None for other tables and other families."""
    family, dst_len, _src_len, _tos, header_table, _proto, _scope, _rtype, _flags = rtnl.RTMSG.unpack(rtm)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    table = rtnl.u32(attrs[RTA_TABLE]) if RTA_TABLE in attrs else header_table
    if table != RT_TABLE_MAIN:
        return None
    dst = "default" if dst_len == 0 else _destination(family, attrs.get(RTA_DST, b""), dst_len)
    if dst is None:
        return None
    return family, dst, rtnl.u32(attrs[RTA_PRIORITY]) if RTA_PRIORITY in attrs else 0


def main_unicast(rtm: bytes) -> bool:
    """A route header the main table's unicast routes can have (the rest is skipped unparsed;
    a table above 255 says RT_TABLE_COMPAT here and its number in RTA_TABLE)."""
    return rtm[7] == RTN_UNICAST and rtm[4] in (RT_TABLE_MAIN, RT_TABLE_COMPAT)


def address_rank(ifa: bytes, attrs: rtnl.Attrs) -> tuple[int, int]:
    """Where the kernel lists an address among its link's: (secondary, scope) of an IPv4
    address (primaries first), (scope, 0) of an IPv6 one (the widest scope first)."""
    family, _prefixlen, header_flags, scope, _index = rtnl.IFADDRMSG.unpack(ifa)
    if family == socket.AF_INET:
        flags = rtnl.u32(attrs[IFA_FLAGS]) if IFA_FLAGS in attrs else header_flags
        return int(bool(flags & IFA_F_SECONDARY)), scope
    return scope, 0


def _routes_from_msg(rtm: bytes, attrs: rtnl.Attrs) -> list[KRoute]:
    if rtm[7] != RTN_UNICAST:
        return []
    base = route_base(rtm, attrs)
    if base is None:
        return []
    family, dst, metric = base
    proto = rtm[5]
    pref = Preference.from_bits(attrs[RTA_PREF][0] if attrs.get(RTA_PREF) else 0)  # ICMPV6_ROUTER_PREF_*
    expires = None
    if RTA_CACHEINFO in attrs and len(attrs[RTA_CACHEINFO]) >= 12:
        ticks = struct.unpack_from("=i", attrs[RTA_CACHEINFO], 8)[0]  # rta_expires
        expires = ticks / USER_HZ if ticks > 0 else None

    def gateway(hop: rtnl.Attrs) -> str | None:
        return rtnl.address(family, hop[RTA_GATEWAY]) if RTA_GATEWAY in hop else None

    hops: list[tuple[str | None, int]] = []
    if RTA_MULTIPATH in attrs:
        hops = [(gateway(hop), oif) for oif, hop in rtnl.next_hops(attrs[RTA_MULTIPATH])]
    else:
        if RTA_OIF not in attrs:
            return []
        hops.append((gateway(attrs), struct.unpack_from("=i", attrs[RTA_OIF])[0]))
    return [KRoute(family=family, dst=dst, gateway=gw, oif=oif, metric=metric, proto=proto,
                   preference=pref, expires=expires) for gw, oif in hops]


def _neighbour_from_msg(ndm: bytes, attrs: rtnl.Attrs) -> Neighbour | None:
    family, index, _state, flags, _type = rtnl.NDMSG.unpack(ndm)
    if family != socket.AF_INET6 or NDA_DST not in attrs:
        return None
    return Neighbour(index=index, address=rtnl.address(socket.AF_INET6, attrs[NDA_DST]),
                     router=bool(flags & NTF_ROUTER))


def dump_links(ipr: rtnl.Rtnl) -> dict[int, Link]:
    links: dict[int, Link] = {}
    for _kind, head, attrs in ipr.dump(rtnl.RTM_GETLINK, bytes(rtnl.IFINFOMSG.size), rtnl.IFINFOMSG.size):
        link = _link_from_msg(head, attrs)
        links[link.index] = link
    return links


def dump_addresses(ipr: rtnl.Rtnl) -> list[Address]:
    found = []
    for _kind, head, attrs in ipr.dump(rtnl.RTM_GETADDR, bytes(rtnl.IFADDRMSG.size), rtnl.IFADDRMSG.size):
        addr = _addr_from_msg(head, attrs)
        if addr is not None:
            found.append(addr)
    return found


def dump_routes(ipr: rtnl.Rtnl, families: tuple[int, ...] = (socket.AF_INET, socket.AF_INET6)
                ) -> list[KRoute]:
    """The main table's unicast routes (the kernel filters by table when it checks dump
    requests strictly; else the other tables' messages are skipped before parsing)."""
    found: list[KRoute] = []
    for family in families:
        request = rtnl.RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN if ipr.strict else 0, 0, 0, 0, 0)
        for _kind, head, attrs in ipr.dump(rtnl.RTM_GETROUTE, request, rtnl.RTMSG.size, main_unicast):
            found.extend(_routes_from_msg(head, attrs))
    return found


def dump_neighbours(ipr: rtnl.Rtnl) -> list[Neighbour]:
    found = []
    request = rtnl.NDMSG.pack(socket.AF_INET6, 0, 0, 0, 0)
    for _kind, head, attrs in ipr.dump(rtnl.RTM_GETNEIGH, request, rtnl.NDMSG.size):
        neighbour = _neighbour_from_msg(head, attrs)
        if neighbour is not None:
            found.append(neighbour)
    return found


def snapshot(ipr: rtnl.Rtnl | None = None) -> KernelState:
    """Dump links, addresses, routes and neighbours of the current netns: one dump per kind
    (routes: one per family)."""
    own = ipr is None
    ipr = ipr or rtnl.Rtnl()
    try:
        return KernelState(links=dump_links(ipr), addresses=dump_addresses(ipr),
                           routes=dump_routes(ipr), neighbours=dump_neighbours(ipr))
    finally:
        if own:
            ipr.close()


def known_routers(objects: LinkObjects | None) -> set[str]:
    """The routers the kernel knows on a link (its :class:`LinkObjects`): link-local next
    hops of its IPv6 routes and neighbours flagged as routers (RAs come from link-local
    addresses only)."""
    if objects is None:
        return set()
    found = {r.gateway for r in objects.routes if r.family == socket.AF_INET6 and r.gateway}
    found |= {n.address for n in objects.neighbours if n.router}
    return {a for a in found if _link_local(a)}


def ra_default_expiry(objects: LinkObjects | None, router: str) -> float | None:
    """Seconds left on the kernel's RA-learned default route via ``router`` on the link."""
    for route in objects.routes if objects is not None else ():
        if (route.family == socket.AF_INET6 and route.dst == "default"
                and route.gateway == router and route.proto == RTPROT_RA):
            return route.expires
    return None


def _sysctl(ifname: str, name: str) -> int | None:
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/{name}", encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def mirrors_ra_defaults(link: Link) -> bool:
    """Does the kernel itself install the default routes that RAs on this link announce
    (accept_ra 1 without forwarding, or 2; accept_ra_defrtr)?  Then a router lifetime we
    heard and the kernel's default route must agree."""
    accept = _sysctl(link.name, "accept_ra")
    forwarding = _sysctl(link.name, "forwarding")
    defrtr = _sysctl(link.name, "accept_ra_defrtr")
    if accept is None or forwarding is None:
        return False
    return (accept == 2 or (accept == 1 and forwarding == 0)) and defrtr != 0
