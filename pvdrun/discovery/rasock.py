"""Hear Router Advertisements on a raw ICMPv6 socket, and send Router Solicitations.

The kernel does not pass the RFC 8801 PvD option to netlink listeners, so
pvdrun reads RAs itself: socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6) with an
ICMP6_FILTER passing only type 134 and IPV6_RECVPKTINFO for the arrival
interface.  RAs whose hop limit is not 255 or whose source is not link-local
are dropped (RFC 4861 6.1.2).  Needs CAP_NET_RAW.
"""
from __future__ import annotations

import ipaddress
import logging
import select
import socket
import struct
import time
from dataclasses import dataclass

from pvdrun.discovery.ra import ND_ROUTER_ADVERT, ND_ROUTER_SOLICIT, RaInfo, RaParseError, parse_ra

log = logging.getLogger("pvdrun.discovery")

ICMP6_FILTER = 1  # <netinet/icmp6.h>, level IPPROTO_ICMPV6
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
ALL_ROUTERS = "ff02::2"


@dataclass
class HeardRa:
    """One RA as heard: arrival interface, router link-local source, content."""

    ifindex: int
    source: str
    info: RaInfo


def icmp6_filter_only(icmp_type: int) -> bytes:
    """struct icmp6_filter that blocks every ICMPv6 type but ``icmp_type`` (a set bit blocks)."""
    words = [0xFFFFFFFF] * 8
    words[icmp_type >> 5] &= ~(1 << (icmp_type & 31)) & 0xFFFFFFFF
    return struct.pack("=8I", *words)


class RaListener:
    """A raw ICMPv6 socket receiving only Router Advertisements."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        try:
            self.sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter_only(ND_ROUTER_ADVERT))
            self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def solicit(self, ifindex: int) -> None:
        """Send a Router Solicitation to ff02::2 on ifindex (errors are logged)."""
        message = struct.pack("!BBHI", ND_ROUTER_SOLICIT, 0, 0, 0)
        try:
            self.sock.sendto(message, (ALL_ROUTERS, 0, 0, ifindex))
        except OSError as exc:
            log.debug("router solicitation on ifindex %d failed: %s", ifindex, exc)

    def receive(self) -> list[HeardRa]:
        """Read every queued RA (non-blocking); malformed ones are logged and dropped."""
        heard: list[HeardRa] = []
        while True:
            try:
                data, ancdata, _flags, addr = self.sock.recvmsg(65535, 256)
            except (BlockingIOError, InterruptedError):
                return heard
            ifindex = int(addr[3]) if len(addr) > 3 else 0
            hop_limit = None
            for level, ctype, cdata in ancdata:
                if level == socket.IPPROTO_IPV6 and ctype == IPV6_PKTINFO and len(cdata) >= 20:
                    ifindex = struct.unpack_from("=I", cdata, 16)[0]
                elif level == socket.IPPROTO_IPV6 and ctype == IPV6_HOPLIMIT and len(cdata) >= 4:
                    hop_limit = struct.unpack_from("=i", cdata, 0)[0]
            source = str(addr[0]).split("%", 1)[0]
            if hop_limit is not None and hop_limit != 255:
                log.info("RA from %s on ifindex %d dropped: hop limit %d", source, ifindex, hop_limit)
                continue
            if not ipaddress.IPv6Address(source).is_link_local:
                log.info("RA from non-link-local %s dropped", source)
                continue
            try:
                info = parse_ra(data)
            except RaParseError as exc:
                log.warning("RA from %s on ifindex %d dropped: %s", source, ifindex, exc)
                continue
            for problem in info.errors:
                log.warning("RA from %s on ifindex %d: %s", source, ifindex, problem)
            heard.append(HeardRa(ifindex=ifindex, source=source, info=info))


def solicit_and_listen(listener: RaListener, ifindexes: list[int], max_wait: float = 1.5,
                       quiet: float = 0.3) -> list[HeardRa]:
    """Solicit RAs on ifindexes and collect them for at most max_wait seconds.

    Ends early once nothing new arrived for ``quiet`` seconds after the
    first RA (or after max_wait when none arrives at all).
    """
    for ifindex in ifindexes:
        listener.solicit(ifindex)
    heard: list[HeardRa] = []
    start = time.monotonic()
    last = None
    while True:
        now = time.monotonic()
        deadline = start + max_wait
        if last is not None:
            deadline = min(deadline, last + quiet)
        if now >= deadline:
            return heard
        ready, _, _ = select.select([listener], [], [], deadline - now)
        if ready:
            batch = listener.receive()
            if batch:
                heard.extend(batch)
                last = time.monotonic()
