"""A dnspython resolver that asks only one PvD's DNS servers (R25).

Queries go from sockets bound to the PvD's interface and source address
(:mod:`pvdrun.resolve.sockets`), handed to ``dns.query.udp``/``tcp`` through
their ``sock=`` argument.  Replies from another address, with another id or
question, are ignored (``ignore_unexpected``/``ignore_errors``).  A
truncated UDP reply is asked again over TCP from the same PvD.

Search list and ndots follow res_search(3); timeout (5 s), attempts (2) and
ndots (1) default as in resolv.conf(5).  The same rules as the shim's C
resolver (shim/dns/dns_client.c), so a name means the same to getaddrinfo
and to ``pvdrun resolve``.
"""
from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass, replace
from typing import Sequence

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from pvdrun.model import Pvd
from pvdrun.resolve.answer import Answer
from pvdrun.resolve.cache import DnsCache, dns_fingerprint
from pvdrun.resolve.errors import (BAD_NAME, NO_SERVER, NODATA, NXDOMAIN, SERVFAIL, TIMEOUT,
                                   ResolveError)
from pvdrun.resolve.order import sort_destinations
from pvdrun.resolve.sockets import connected_tcp_socket, scoped_socket, server_address, usable_servers

#: resolv.conf(5) defaults.
DEFAULT_TIMEOUT = 5.0
DEFAULT_ATTEMPTS = 2
DEFAULT_NDOTS = 1


@dataclass
class ResolverOptions:
    """Timeout per try and server (s), passes over the server list, search threshold."""

    timeout: float = DEFAULT_TIMEOUT
    attempts: int = DEFAULT_ATTEMPTS
    ndots: int = DEFAULT_NDOTS


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True)


def search_candidates(host: str, search_domains: Sequence[str], ndots: int) -> list[str]:
    """The names res_search(3) tries for ``host``, in order; ResolveError(BAD_NAME) when it is
    not a name."""
    if not host or len(host) > 253 or ".." in host or host.startswith("."):
        raise ResolveError(BAD_NAME, f"not a valid DNS name: {host!r}")
    try:
        dns.name.from_text(host)
    except dns.exception.DNSException as exc:  # a label over 63 octets, a name over 255, ...
        raise ResolveError(BAD_NAME, f"not a valid DNS name: {host!r} ({exc})") from None
    if host.endswith("."):
        return [host]
    searched = [f"{host}.{domain.rstrip('.')}" for domain in search_domains
                if len(host) + 1 + len(domain.rstrip(".")) <= 253]
    return [host, *searched] if host.count(".") >= ndots else [*searched, host]


#: Failures that end a search at once (res_search stops on them).
SEARCH_ENDERS = (TIMEOUT, NO_SERVER, BAD_NAME)


def search_failure(host: str, pvd_id: str, seen: list[ResolveError]) -> ResolveError:
    """Why a search whose every candidate failed with ``seen`` failed: NODATA when some
    candidate exists, SERVFAIL when one failed, else NXDOMAIN."""
    for kind in (NODATA, SERVFAIL):
        for exc in seen:
            if exc.kind == kind:
                return exc
    return ResolveError(NXDOMAIN, f"{host}: no such name in PvD {pvd_id}")


class PvdResolver:
    """Resolve names with one PvD's DNS configuration only."""

    def __init__(self, pvd: Pvd, options: ResolverOptions | None = None,
                 cache: DnsCache | None = None, observe: bool = True) -> None:
        """``observe``: tell ``cache`` about ``pvd`` first (a PvD whose DNS changed is flushed);
        False when its owner does that with every new table (pvdd: a lookup started before a
        change must not put the old view back)."""
        self.pvd = pvd
        self.options = options or ResolverOptions()
        self.cache = cache
        self._fingerprint = dns_fingerprint(pvd)  # what this resolver's answers come from
        if cache is not None and observe:
            cache.observe(pvd)

    # -- one exchange ------------------------------------------------------
    def _exchange(self, server: str, query: dns.message.Message) -> dns.message.Message:
        """Ask ``server`` once (UDP, then TCP when truncated)."""
        host = server.split("%", 1)[0]
        deadline = time.monotonic() + self.options.timeout
        with scoped_socket(self.pvd, server, socket.SOCK_DGRAM) as sock:
            if ipaddress.ip_address(host).is_link_local:
                reply = self._exchange_link_local(sock, server, query, deadline)
            else:
                reply = dns.query.udp(query, host, timeout=self.options.timeout, sock=sock,
                                      ignore_unexpected=True, ignore_errors=True)
        if reply.flags & dns.flags.TC:
            left = max(deadline - time.monotonic(), 1.0)
            with connected_tcp_socket(self.pvd, server, left) as tcp:
                reply = dns.query.tcp(query, host, timeout=left, sock=tcp)
        return reply

    @staticmethod
    def _exchange_link_local(sock: socket.socket, server: str, query: dns.message.Message,
                             deadline: float) -> dns.message.Message:
        """UDP to a link-local server: dns.query.udp compares the reply's source, which Python
        spells "fe80::1%eth0", with its destination and never matches; connect the socket
        instead, so the kernel accepts only the server's datagrams, and skip that check."""
        sock.connect(server_address(server))
        expiration = time.time() + max(deadline - time.monotonic(), 0.0)
        dns.query.send_udp(sock, query, None, expiration)
        received = dns.query.receive_udp(sock, None, expiration, ignore_errors=True, query=query)
        return received[0]  # (message, time[, source]) depending on the arguments

    def query(self, qname: str, rdtype: str | int) -> tuple[dns.message.Message, str]:
        """One question to the PvD's servers: (reply, server).

        The reply's rcode is NOERROR or NXDOMAIN, or the last failure rcode
        when every server failed.  Raises ResolveError(NO_SERVER, TIMEOUT).
        """
        usable = usable_servers(self.pvd)
        if not usable:
            why = "has no DNS server" if not self.pvd.dns_servers else \
                "has no DNS server reachable from its own addresses"
            raise ResolveError(NO_SERVER, f"PvD {self.pvd.pvd_id} {why}; not asking any other")
        last_failure: tuple[dns.message.Message, str] | None = None
        last_error: str = "timed out"
        for _attempt in range(max(1, self.options.attempts)):
            for server in usable:
                query = dns.message.make_query(qname, rdtype)
                try:
                    reply = self._exchange(server, query)
                except (dns.exception.Timeout, TimeoutError):
                    continue
                except (OSError, dns.exception.DNSException) as exc:
                    last_error = f"{server}: {exc}"  # e.g. device binding refused: say so
                    continue
                if reply.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                    return reply, server
                last_failure = (reply, server)
            if last_failure is not None:
                return last_failure
        raise ResolveError(TIMEOUT, f"no DNS server of PvD {self.pvd.pvd_id} answered for {qname} "
                                    f"({last_error})")

    # -- search ------------------------------------------------------------
    def candidates(self, host: str) -> list[str]:
        """The names res_search(3) would try for ``host``, in order."""
        return search_candidates(host, self.pvd.search_domains, self.options.ndots)

    def _lookup_candidate(self, qname: str, rdtype: str) -> Answer:
        if self.cache is not None:
            hit = self.cache.get_with_ttl(self.pvd.pvd_id, qname, rdtype)
            cached = hit[0] if hit is not None else None
            if isinstance(cached, Answer):
                # A hit says so: no server asked, and the TTL that is left (not the original).
                return replace(cached, server=None, ttl=hit[1] if hit is not None else cached.ttl)
            if isinstance(cached, ResolveError):
                raise cached
        try:
            reply, server = self.query(qname, rdtype)
        except ResolveError:
            raise
        rcode = reply.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise ResolveError(SERVFAIL, f"DNS of PvD {self.pvd.pvd_id} answered "
                                         f"{dns.rcode.to_text(rcode)} for {qname}")
        try:
            chain = reply.resolve_chaining()
        except dns.exception.DNSException as exc:
            raise ResolveError(SERVFAIL, f"unusable answer for {qname}: {exc}") from None
        has_soa = any(rrset.rdtype == dns.rdatatype.SOA for rrset in reply.authority)
        if rdtype == "ANY" and rcode == dns.rcode.NOERROR and chain.answer is None:
            return self._any_answer(qname, reply, server)
        if rcode == dns.rcode.NXDOMAIN or chain.answer is None:
            kind = NXDOMAIN if rcode == dns.rcode.NXDOMAIN else NODATA
            error = ResolveError(kind, f"{qname}: " + ("no such name" if kind == NXDOMAIN
                                                       else f"no {rdtype} record") +
                                 f" in PvD {self.pvd.pvd_id}")
            if self.cache is not None and has_soa:  # RFC 2308: negative caching needs the SOA
                self.cache.put(self.pvd.pvd_id, qname, rdtype, error, chain.minimum_ttl, self._fingerprint)
            raise error
        answer = Answer(qname=qname, rdtype=rdtype, canonical_name=_text(chain.canonical_name),
                        ttl=chain.minimum_ttl, records=[rd.to_text() for rd in chain.answer],
                        server=server)
        if self.cache is not None:
            self.cache.put(self.pvd.pvd_id, qname, rdtype, answer, chain.minimum_ttl, self._fingerprint)
        return answer

    def _any_answer(self, qname: str, reply: dns.message.Message, server: str) -> Answer:
        """ANY: every record the server gave for the name, each as ``TYPE VALUE`` (not cached)."""
        owner = dns.name.from_text(qname)
        rrsets = [rrset for rrset in reply.answer if rrset.name == owner]
        if not rrsets:
            raise ResolveError(NODATA, f"{qname}: no record in PvD {self.pvd.pvd_id}")
        return Answer(qname=qname, rdtype="ANY", canonical_name=_text(owner), ttl=min(r.ttl for r in rrsets),
                      records=[f"{dns.rdatatype.to_text(r.rdtype)} {rd.to_text()}" for r in rrsets for rd in r],
                      server=server)

    def resolve(self, host: str, rdtype: str = "A") -> Answer:
        """Resolve ``host`` with the search list: the first candidate with records wins.

        A timeout ends the search (as res_search does); otherwise the error
        is NODATA when some candidate exists, SERVFAIL when one failed, else
        NXDOMAIN.
        """
        rdtype = dns.rdatatype.to_text(dns.rdatatype.from_text(rdtype))
        seen: list[ResolveError] = []
        for qname in self.candidates(host):
            try:
                return self._lookup_candidate(qname, rdtype)
            except ResolveError as exc:
                if exc.kind in SEARCH_ENDERS:
                    raise
                seen.append(exc)
        raise search_failure(host, self.pvd.pvd_id, seen)

    def addresses(self, host: str, family: int = 0) -> list[str]:
        """Addresses of ``host`` (family 0: both, or 4 or 6), in RFC 6724 order from the PvD."""
        types = {0: ["AAAA", "A"], 4: ["A"], 6: ["AAAA"]}[family]
        found: list[str] = []
        errors: list[ResolveError] = []
        for rdtype in types:
            try:
                found += self.resolve(host, rdtype).records
            except ResolveError as exc:
                if exc.kind == TIMEOUT:
                    raise
                errors.append(exc)
        if found:
            return sort_destinations(self.pvd, found)
        for kind in (NO_SERVER, NODATA, SERVFAIL):
            for exc in errors:
                if exc.kind == kind:
                    raise exc
        raise errors[0]
