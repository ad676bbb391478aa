"""Build Router Advertisements, RFC 8801 PvD options included (tests, labs).

The inverse of :mod:`pvdrun.discovery.ra`: it produces the ICMPv6 message
(type octet first, checksum zero: the kernel fills it in for raw ICMPv6
sockets).  Nothing here validates input beyond what struct requires, so
tests can also build malformed messages with it.
"""
from __future__ import annotations

import ipaddress
import struct

from pvdrun.discovery.ra import (OPT_DNSSL, OPT_PIO, OPT_PVD, OPT_RDNSS, OPT_RIO, PVD_FLAG_H,
                                 PVD_FLAG_L, PVD_FLAG_R)

_PREF_BITS = {1: 1, 0: 0, -1: 3}


def encode_name(name: str) -> bytes:
    """DNS wire format of ``name`` (no compression), root label included."""
    out = b""
    for label in name.strip(".").split("."):
        raw = label.encode("ascii")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def _option(opt_type: int, body: bytes) -> bytes:
    """Wrap body into an option padded to a multiple of 8 octets."""
    total = len(body) + 2
    padded = (total + 7) // 8 * 8
    return bytes([opt_type, padded // 8]) + body + bytes(padded - total)


def ra_header(router_lifetime: int = 1800, preference: int = 0, hop_limit: int = 64,
              managed: bool = False, other: bool = False) -> bytes:
    """The 16-octet RA header (type 134, code 0, checksum 0)."""
    flags = (0x80 if managed else 0) | (0x40 if other else 0) | (_PREF_BITS[preference] << 3)
    return struct.pack("!BBHBBHII", 134, 0, 0, hop_limit, flags, router_lifetime, 0, 0)


def pio(prefix: str, valid: int = 86400, preferred: int = 14400, on_link: bool = True,
        autonomous: bool = True) -> bytes:
    """A Prefix Information Option."""
    net = ipaddress.IPv6Network(prefix)
    flags = (0x80 if on_link else 0) | (0x40 if autonomous else 0)
    body = struct.pack("!BBIII", net.prefixlen, flags, valid, preferred, 0) + net.network_address.packed
    return _option(OPT_PIO, body)


def rio(prefix: str, lifetime: int = 1800, preference: int = 0) -> bytes:
    """A Route Information Option (full 16-octet prefix)."""
    net = ipaddress.IPv6Network(prefix)
    body = struct.pack("!BBI", net.prefixlen, _PREF_BITS[preference] << 3, lifetime)
    return _option(OPT_RIO, body + net.network_address.packed)


def rdnss(servers: list[str], lifetime: int = 1800) -> bytes:
    """A Recursive DNS Server option."""
    body = struct.pack("!HI", 0, lifetime) + b"".join(ipaddress.IPv6Address(s).packed for s in servers)
    return _option(OPT_RDNSS, body)


def dnssl(domains: list[str], lifetime: int = 1800) -> bytes:
    """A DNS Search List option."""
    body = struct.pack("!HI", 0, lifetime) + b"".join(encode_name(d) for d in domains)
    return _option(OPT_DNSSL, body)


def pvd_option(pvd_id: str, nested: bytes = b"", sequence: int = 0, h: bool = False,
               l: bool = False, header: bytes | None = None, delay: int = 0) -> bytes:
    """An RFC 8801 PvD ID option; ``header`` (16 octets) sets the R flag."""
    flags = (PVD_FLAG_H if h else 0) | (PVD_FLAG_L if l else 0) | (PVD_FLAG_R if header else 0)
    flags |= delay & 0xF
    head = struct.pack("!HH", flags, sequence) + encode_name(pvd_id)
    total = len(head) + 2
    head += bytes((total + 7) // 8 * 8 - total)
    body = head + (header or b"") + nested
    return bytes([OPT_PVD, (len(body) + 2) // 8]) + body


def router_advert(options: bytes = b"", router_lifetime: int = 1800, preference: int = 0) -> bytes:
    """A complete RA: header followed by already-encoded options."""
    return ra_header(router_lifetime, preference) + options
