"""RFC 6724 destination ordering from inside a PvD (the Python twin of shim/dns/dns_sort.c).

Destinations are ordered by rules 1 (no PvD source of the family: last),
2 (matching scope), 5 (matching label), 6 (precedence), 8 (smaller scope),
9 (longest matching prefix with the source, IPv6 only, up to 64 bits) and
10 (given order), with the default policy table of section 2.1.  The
source each destination would use is chosen among the PvD's addresses
(section 5: same address, scope, label, longest prefix).  Rules 3, 4 and 7
need state a Pvd does not carry.
"""
from __future__ import annotations

import ipaddress

from pvdrun.model import Pvd

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: RFC 6724 section 2.1: (prefix, precedence, label), longest prefixes first.
POLICY = [(ipaddress.ip_network(prefix), precedence, label) for prefix, precedence, label in (
    ("::1/128", 50, 0), ("::ffff:0:0/96", 35, 4), ("::/96", 1, 3), ("2001::/32", 5, 5),
    ("2002::/16", 30, 2), ("3ffe::/16", 1, 12), ("fec0::/10", 1, 11), ("fc00::/7", 3, 13),
    ("::/0", 40, 1))]


def _as_v6(addr: Address) -> ipaddress.IPv6Address:
    if addr.version == 4:
        return ipaddress.IPv6Address(f"::ffff:{addr}")
    return addr  # type: ignore[return-value]


def _policy(addr: Address) -> tuple[int, int]:
    v6 = _as_v6(addr)
    for network, precedence, label in POLICY:
        if v6 in network:
            return precedence, label
    return 40, 1


def scope(addr: Address) -> int:
    """RFC 6724 section 3.1 scope (IPv4 per section 3.2)."""
    if addr.version == 4:
        return 2 if addr.is_loopback or addr.is_link_local else 14
    if addr.is_multicast:
        return addr.packed[1] & 0x0F
    if addr.is_link_local or addr.is_loopback:
        return 2
    if addr.is_site_local:
        return 5
    return 14


def common_prefix(a: Address, b: Address, limit: int = 128) -> int:
    diff = int(_as_v6(a)) ^ int(_as_v6(b))
    length = 128 - diff.bit_length()
    return min(length, limit)


def _parse(text: str) -> Address:
    return ipaddress.ip_address(text.split("%", 1)[0].split("/", 1)[0])


def choose_source(sources: list[Address], dst: Address) -> Address | None:
    """The PvD source address RFC 6724 section 5 picks for dst (None: no address of its family)."""
    best: Address | None = None
    dscope, dlabel = scope(dst), _policy(dst)[1]
    for cand in sources:
        if cand.version != dst.version:
            continue
        if best is None or cand == dst:
            best = cand
            continue
        if best == dst:
            continue
        cs, bs = scope(cand), scope(best)
        if cs != bs:  # rule 2
            if (bs < dscope) if bs < cs else (cs >= dscope):
                best = cand
            continue
        cl, bl = _policy(cand)[1] == dlabel, _policy(best)[1] == dlabel
        if cl != bl:  # rule 6
            if cl:
                best = cand
            continue
        if common_prefix(cand, dst) > common_prefix(best, dst):  # rule 8
            best = cand
    return best


def sort_destinations(pvd: Pvd, destinations: list[str]) -> list[str]:
    """destinations in RFC 6724 order as seen from the PvD's own addresses."""
    sources = [_parse(a) for a in pvd.addresses]

    def key(item: tuple[int, str]) -> tuple:
        index, text = item
        dst = _parse(text)
        precedence, label = _policy(dst)
        src = choose_source(sources, dst)
        usable = src is not None
        scope_match = usable and scope(src) == scope(dst)  # type: ignore[arg-type]
        label_match = usable and _policy(src)[1] == label  # type: ignore[arg-type]
        prefix = common_prefix(src, dst, 64) if usable and dst.version == 6 else 0  # type: ignore[arg-type]
        return (not usable, not scope_match, not label_match, -precedence, scope(dst), -prefix, index)

    return [text for _, text in sorted(enumerate(destinations), key=key)]


__all__ = ["choose_source", "common_prefix", "scope", "sort_destinations"]
