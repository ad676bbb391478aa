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
from dataclasses import dataclass, field

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
    #: when it arrived (monotonic clock): its lifetimes count from then
    at: float = field(default_factory=time.monotonic)


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


def solicit_and_listen(listener: RaListener, expected: dict[int, set[str]], max_wait: float,
                       settle: float) -> list[HeardRa]:
    """Solicit RAs on each link of ``expected`` and hear the answers.

    ``expected`` maps each link to the routers known there.  Listening ends once every
    expected router has answered and ``settle`` seconds passed without a new RA (a router
    may answer with several RAs, one per PvD), and in any case ``max_wait`` seconds after
    the solicitation: routers answer within MAX_RA_DELAY_TIME (RFC 4861), so a link where
    no router is known, or one that stays silent, is waited on for that bound and no more.
    """
    for ifindex in expected:
        listener.solicit(ifindex)
    heard: list[HeardRa] = []
    start = time.monotonic()
    deadline = start + max_wait
    waiting = {(i, r) for i, routers in expected.items() for r in routers}
    open_ended = any(not routers for routers in expected.values())
    last = start
    while True:
        now = time.monotonic()
        until = deadline if waiting or open_ended else min(deadline, last + settle)
        if now >= until:
            break
        ready, _, _ = select.select([listener], [], [], until - now)
        if ready:
            batch = [h for h in listener.receive() if h.ifindex in expected]
            if batch:
                heard.extend(batch)
                waiting -= {(h.ifindex, h.source) for h in batch}
                last = time.monotonic()
    answered = {(h.ifindex, h.source) for h in heard}
    how = (f"to the bound ({max_wait:.1f} s)" if open_ended or waiting
           else "until every known router answered")
    for ifindex, routers in expected.items():
        got = sorted(r for i, r in answered if i == ifindex)
        log.info("ifindex %d: solicited; answered: %s; silent: %s; listened %s", ifindex,
                 ", ".join(got) or "none", ", ".join(sorted(set(routers) - set(got))) or "none", how)
    return heard
