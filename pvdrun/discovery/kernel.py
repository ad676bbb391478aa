"""A snapshot of the kernel's network state, read with pyroute2 (rtnetlink dumps).

Plain dataclasses come out, so the rest of discovery never touches netlink
messages.  pyroute2 is imported inside the functions that need it.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

from pvdrun.discovery.ra import Preference

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_LOWER_UP = 0x10000
IFA_F_DADFAILED = 0x08
IFA_F_DEPRECATED = 0x20
IFA_F_TENTATIVE = 0x40
NTF_ROUTER = 0x80
RTPROT_RA = 9
RT_TABLE_MAIN = 254
RTN_UNICAST = 1
ARPHRD_ETHER = 1
ARPHRD_PPP = 512
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
        return ipaddress.ip_address(self.address).is_link_local

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


def _link_from_msg(msg: Any) -> Link:
    flags = int(msg["flags"])
    linkinfo = msg.get_attr("IFLA_LINKINFO")
    kind = linkinfo.get_attr("IFLA_INFO_KIND") if linkinfo is not None else None
    return Link(index=int(msg["index"]), name=msg.get_attr("IFLA_IFNAME") or f"if{msg['index']}",
                up=bool(flags & IFF_UP), carrier=bool(flags & IFF_LOWER_UP),
                loopback=bool(flags & IFF_LOOPBACK),
                carrier_up_count=int(msg.get_attr("IFLA_CARRIER_UP_COUNT") or 0),
                link_kind=kind, arphrd=int(msg.get("ifi_type", 0) or 0))


def _addr_from_msg(msg: Any) -> Address | None:
    family = int(msg["family"])
    address = msg.get_attr("IFA_LOCAL") if family == socket.AF_INET else None
    address = address or msg.get_attr("IFA_ADDRESS")
    if not address:
        return None
    flags = msg.get_attr("IFA_FLAGS")
    flags = int(flags if flags is not None else msg["flags"])
    cache = msg.get_attr("IFA_CACHEINFO") or {}
    preferred = cache.get("ifa_preferred") if cache else None
    valid = cache.get("ifa_valid") if cache else None
    return Address(index=int(msg["index"]), family=family, address=address,
                   prefixlen=int(msg["prefixlen"]), deprecated=bool(flags & IFA_F_DEPRECATED),
                   tentative=bool(flags & IFA_F_TENTATIVE), dadfailed=bool(flags & IFA_F_DADFAILED),
                   preferred_lifetime=None if preferred in (None, INFINITY_LIFETIME) else preferred,
                   valid_lifetime=None if valid in (None, INFINITY_LIFETIME) else valid)


def _routes_from_msg(msg: Any) -> list[KRoute]:
    if int(msg["type"]) != RTN_UNICAST:
        return []
    table = msg.get_attr("RTA_TABLE") or msg["table"]
    if int(table) != RT_TABLE_MAIN:
        return []
    family = int(msg["family"])
    dst_len = int(msg["dst_len"])
    dst_addr = msg.get_attr("RTA_DST")
    dst = "default" if dst_len == 0 else str(ipaddress.ip_network(f"{dst_addr}/{dst_len}", strict=False))
    if dst != "default":
        net = ipaddress.ip_network(dst)
        if net.is_link_local or net.is_multicast:
            return []
    metric = int(msg.get_attr("RTA_PRIORITY") or 0)
    proto = int(msg["proto"])
    pref = Preference.from_bits(int(msg.get_attr("RTA_PREF") or 0))  # ICMPV6_ROUTER_PREF_*
    hops: list[tuple[str | None, int]] = []
    multipath = msg.get_attr("RTA_MULTIPATH")
    if multipath:
        for hop in multipath:
            hops.append((hop.get_attr("RTA_GATEWAY"), int(hop["oif"])))
    else:
        oif = msg.get_attr("RTA_OIF")
        if oif is None:
            return []
        hops.append((msg.get_attr("RTA_GATEWAY"), int(oif)))
    return [KRoute(family=family, dst=dst, gateway=gw, oif=oif, metric=metric, proto=proto,
                   preference=pref) for gw, oif in hops]


def snapshot(ipr: Any = None) -> KernelState:
    """Dump links, addresses, routes and neighbours of the current netns."""
    from pyroute2 import IPRoute  # heavy: imported only here

    own = ipr is None
    ipr = ipr or IPRoute()
    try:
        state = KernelState()
        for msg in ipr.get_links():
            link = _link_from_msg(msg)
            state.links[link.index] = link
        for msg in ipr.get_addr():
            addr = _addr_from_msg(msg)
            if addr is not None:
                state.addresses.append(addr)
        for family in (socket.AF_INET, socket.AF_INET6):
            for msg in ipr.get_routes(family=family, table=RT_TABLE_MAIN):
                state.routes.extend(_routes_from_msg(msg))
        for msg in ipr.get_neighbours(family=socket.AF_INET6):
            dst = msg.get_attr("NDA_DST")
            if dst:
                state.neighbours.append(Neighbour(index=int(msg["ifindex"]), address=dst,
                                                  router=bool(int(msg["flags"]) & NTF_ROUTER)))
        return state
    finally:
        if own:
            ipr.close()
