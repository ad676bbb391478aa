"""What a scoped program's lookup sees, in the shim's order: an IP literal is its own answer (no
query); otherwise the sources of nsswitch.conf's ``hosts:`` line in order, /etc/hosts
(:mod:`pvdrun.resolve.hosts`) and the PvD's DNS (:class:`~pvdrun.resolve.resolver.PvdResolver`),
the first that answers winning, as ``shim/hooks/gai.c`` and ``getnameinfo``/``gethostbyaddr``
do.  /etc/hosts holds addresses only: other record types are DNS's alone.
"""
from __future__ import annotations

import ipaddress
import socket

import dns.reversename

from pvdrun.resolve import hosts
from pvdrun.resolve.errors import NODATA, NXDOMAIN, ResolveError
from pvdrun.resolve.resolver import Answer, PvdResolver

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

FILES = hosts.FILES
DNS = hosts.DNS
LITERAL = "literal"
#: record type -> the IP version of its addresses
ADDRESS_TYPES = {"A": 4, "AAAA": 6}
_TYPE_OF = {version: rdtype for rdtype, version in ADDRESS_TYPES.items()}


def literal_address(host: str) -> IpAddress | None:
    """``host`` as getaddrinfo reads a numeric host (inet_aton's forms, such as ``10.1``, and
    IPv6 with an optional ``%zone``, the zone dropped), else None."""
    if not host or any(c.isspace() for c in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_ntoa(socket.inet_aton(host)))
    except OSError:
        pass
    try:
        return ipaddress.IPv6Address(host.split("%", 1)[0]) if ":" in host else None
    except ValueError:
        return None


def reverse_address(text: str) -> IpAddress:
    """The address ``-x`` names (a zone dropped; an IPv4-mapped IPv6 address as IPv4, as
    glibc asks it); ValueError when it is none."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _literal(host: str, address: IpAddress, rdtypes: list[str]) -> tuple[list[Answer], list[ResolveError]]:
    rdtype = _TYPE_OF[address.version]
    if rdtype not in rdtypes:
        return [], [ResolveError(NODATA, f"{host} is an IPv{address.version} address, not {' or '.join(rdtypes)}")]
    return [Answer(qname=host, rdtype=rdtype, canonical_name=str(address), ttl=0, records=[str(address)],
                   source=LITERAL)], []


def _from_hosts(host: str, rdtypes: list[str]) -> list[Answer]:
    found = hosts.lookup_name(host, tuple(ADDRESS_TYPES[t] for t in rdtypes))
    if found is None:
        return []
    answers = []
    for rdtype in rdtypes:
        records = [a for a in found.addresses if ipaddress.ip_address(a).version == ADDRESS_TYPES[rdtype]]
        if records:
            answers.append(Answer(qname=host, rdtype=rdtype, canonical_name=found.canonical_name, ttl=0,
                                  records=records, source=FILES))
    return answers


def _from_dns(resolver: PvdResolver, host: str, rdtypes: list[str]) -> tuple[list[Answer], list[ResolveError]]:
    answers, errors = [], []
    for rdtype in rdtypes:
        try:
            answers.append(resolver.resolve(host, rdtype))
        except ResolveError as exc:
            exc.rdtype = exc.rdtype or rdtype
            errors.append(exc)
    return answers, errors


def forward(resolver: PvdResolver, host: str, rdtypes: list[str],
            order: tuple[str, ...] | None = None) -> tuple[list[Answer], list[ResolveError]]:
    """Answers for ``host`` of each type in ``rdtypes`` and the errors of those without one.

    Raises ResolveError(BAD_NAME) for a name DNS cannot carry (before any source is asked).
    """
    literal = literal_address(host)
    if literal is not None:
        return _literal(host, literal, rdtypes)
    resolver.candidates(host)  # BAD_NAME before anything is asked
    only_addresses = all(t in ADDRESS_TYPES for t in rdtypes)
    sources = (order if order is not None else hosts.source_order()) if only_addresses else (DNS,)
    errors: list[ResolveError] = []
    for source in sources:
        if source == FILES:
            answers = _from_hosts(host, rdtypes)
            if answers:
                return answers, []
            continue
        answers, errors = _from_dns(resolver, host, rdtypes)
        if answers:
            return answers, errors
    if not errors:
        errors = [ResolveError(NXDOMAIN, f"{host}: not in {hosts.hosts_path()}" if FILES in sources
                               else f"{host}: nsswitch.conf's hosts line names no source usable in a PvD")]
    return [], errors


def reverse(resolver: PvdResolver, address: IpAddress,
            order: tuple[str, ...] | None = None) -> tuple[list[Answer], list[ResolveError]]:
    """The name of ``address``: /etc/hosts and a PTR query to the PvD's servers, in nsswitch's
    order (CNAMEs followed, RFC 2317)."""
    revname = dns.reversename.from_address(str(address)).to_text()
    errors: list[ResolveError] = []
    for source in order if order is not None else hosts.source_order():
        if source == FILES:
            name = hosts.lookup_address(address)
            if name is not None:
                return [Answer(qname=revname, rdtype="PTR", canonical_name=revname.rstrip("."), ttl=0,
                               records=[name], source=FILES)], []
            continue
        try:
            return [resolver.resolve(revname, "PTR")], []
        except ResolveError as exc:
            exc.rdtype = exc.rdtype or "PTR"
            errors = [exc]
    if not errors:
        errors = [ResolveError(NXDOMAIN, f"{address}: not in {hosts.hosts_path()}")]
    return [], errors
