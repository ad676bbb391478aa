"""The Router Advertisement wire format, both ways (RFC 4861, 4191, 8106, and RFC 8801's PvD
option): :func:`parse_ra` reads one RA, the builders below write one.

``parse_ra(data) -> RaInfo`` takes the ICMPv6 message (starting at the type
octet, as a raw ICMPv6 socket returns it) and never raises on malformed
options: a truncated or malformed option is skipped and described in
``RaInfo.errors`` (the caller logs it).  Only a message too short for the RA
header, or not an RA, raises :class:`RaParseError`.  Every length is
bound-checked, so the function is safe on arbitrary bytes (it is fuzzed).

The builders (:func:`router_advert`, :func:`ra_header`, :func:`pvd_option`, :func:`pio`,
:func:`rio`, :func:`rdnss`, :func:`dnssl`) return wire bytes, checksum zero (the kernel
fills it in for raw ICMPv6 sockets).  They check no more than they must, so that a test
can also build a malformed option on purpose (``pvd_option``'s ``length``, ``fqdn_wire``
and ``r``).

Wire format of the PvD option (RFC 8801 section 3.1): Type=21, Length in
8-octet units, 16 bits of flags (H=0x8000, L=0x4000, R=0x2000, 9 reserved
bits, Delay in the low 4 bits), a 16-bit sequence number, the PvD ID FQDN in
DNS wire format (no compression), zero padding to the next 8-octet boundary
counted from the option start, a 16-octet copy of an RA header when R=1, then
nested options (PIO 3, RIO 24, RDNSS 25, DNSSL 31).
"""
from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

ND_ROUTER_SOLICIT = 133
ND_ROUTER_ADVERT = 134
OPT_SLLA = 1
OPT_PIO = 3
OPT_MTU = 5
OPT_RIO = 24
OPT_RDNSS = 25
OPT_DNSSL = 31
OPT_PVD = 21

PVD_FLAG_H = 0x8000
PVD_FLAG_L = 0x4000
PVD_FLAG_R = 0x2000
PVD_DELAY_MASK = 0x000F
#: RA header flags: managed address configuration, other configuration (RFC 4861 4.2).
RA_FLAG_MANAGED = 0x80
RA_FLAG_OTHER = 0x40
#: PIO flags: on-link, autonomous address configuration (RFC 4861 4.6.2).
PIO_FLAG_ON_LINK = 0x80
PIO_FLAG_AUTONOMOUS = 0x40

RA_HEADER_LEN = 16
#: A lifetime of all ones never runs out (RFC 4861 4.6.2, RFC 4191, RFC 8106).
INFINITE_LIFETIME = 0xFFFFFFFF
_LABEL_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")  # fullmatch: no "\n" before the end


class Preference(IntEnum):
    """A router's or a route's preference (RFC 4191 2.1): -1 low, 0 medium, 1 high.

    ``Preference("high")`` (any letter case) also works, for configuration files."""

    LOW = -1
    MEDIUM = 0
    HIGH = 1

    @classmethod
    def _missing_(cls, value: object) -> "Preference | None":
        return cls.__members__.get(value.upper()) if isinstance(value, str) else None

    @classmethod
    def from_bits(cls, bits: int) -> "Preference":
        """The 2-bit wire value: 01 high, 00 medium, 11 low, 10 reserved (read as medium)."""
        return {1: cls.HIGH, 0: cls.MEDIUM, 3: cls.LOW}.get(bits & 3, cls.MEDIUM)

    @property
    def bits(self) -> int:
        """The 2-bit wire value."""
        return {Preference.HIGH: 1, Preference.MEDIUM: 0, Preference.LOW: 3}[self]


class RaParseError(ValueError):
    """The message is not a Router Advertisement or is shorter than its header."""


@dataclass(frozen=True)
class PrefixInfo:
    """A Prefix Information Option (RFC 4861 4.6.2)."""

    prefix: str  # "2001:db8:a::/64"
    on_link: bool
    autonomous: bool
    valid_lifetime: int
    preferred_lifetime: int


@dataclass(frozen=True)
class RouteInfo:
    """A Route Information Option (RFC 4191 2.3)."""

    prefix: str
    preference: Preference
    lifetime: int


@dataclass(frozen=True)
class DnsServers:
    """A Recursive DNS Server option (RFC 8106 5.1)."""

    servers: tuple[str, ...]
    lifetime: int


@dataclass(frozen=True)
class SearchList:
    """A DNS Search List option (RFC 8106 5.2)."""

    domains: tuple[str, ...]
    lifetime: int


@dataclass(frozen=True)
class RaHeader:
    """The RA header fields after the ICMPv6 type/code/checksum."""

    hop_limit: int
    managed: bool
    other: bool
    preference: Preference
    router_lifetime: int
    reachable_time: int
    retrans_timer: int


@dataclass
class Options:
    """The configuration options one RA (or one PvD option) carries."""

    prefixes: list[PrefixInfo] = field(default_factory=list)
    routes: list[RouteInfo] = field(default_factory=list)
    rdnss: list[DnsServers] = field(default_factory=list)
    dnssl: list[SearchList] = field(default_factory=list)


@dataclass
class PvdOption(Options):
    """An RFC 8801 PvD ID option with its nested options."""

    pvd_id: str = ""
    flag_h: bool = False
    flag_l: bool = False
    flag_r: bool = False
    delay: int = 0
    sequence: int = 0
    header: RaHeader | None = None  # the copied RA header when R=1


@dataclass
class RaInfo(Options):
    """Everything parse_ra understood in one RA."""

    header: RaHeader | None = None
    mtu: int | None = None
    source_lladdr: str | None = None
    pvds: list[PvdOption] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _parse_header(data: bytes) -> RaHeader:
    hop_limit, flags, lifetime, reachable, retrans = struct.unpack_from("!BBHII", data, 0)
    return RaHeader(hop_limit=hop_limit, managed=bool(flags & RA_FLAG_MANAGED),
                    other=bool(flags & RA_FLAG_OTHER), preference=Preference.from_bits(flags >> 3),
                    router_lifetime=lifetime,
                    reachable_time=reachable, retrans_timer=retrans)


def decode_name(data: bytes, offset: int, end: int) -> tuple[str | None, int]:
    """Decode one uncompressed DNS wire-format name in data[offset:end].

    Returns (name, next offset); name is None for the root (a zero octet,
    i.e. padding).  Raises ValueError when the name overruns ``end``, uses
    compression, or has a label that is not a hostname label.
    """
    labels: list[str] = []
    total = 0
    while True:
        if offset >= end:
            raise ValueError("domain name runs past the end of the option")
        length = data[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0:
            raise ValueError("compressed or extended label in domain name")
        if offset + length > end:
            raise ValueError("label runs past the end of the option")
        try:
            label = data[offset:offset + length].decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("non-ASCII label in domain name") from None
        if not _LABEL_RE.fullmatch(label):
            raise ValueError(f"invalid label {label!r} in domain name")
        labels.append(label.lower())
        total += length + 1
        if total > 254:
            raise ValueError("domain name longer than 255 octets")
        offset += length
    return (".".join(labels) if labels else None), offset


def _prefix(raw: bytes, plen: int) -> str:
    padded = raw + bytes(16 - len(raw))
    net = ipaddress.IPv6Network((padded, plen), strict=False)
    return str(net)


def _parse_pio(body: bytes) -> PrefixInfo:
    if len(body) != 30:
        raise ValueError(f"PIO of length {len(body) + 2} octets (expected 32)")
    plen, flags, valid, preferred = struct.unpack_from("!BBII", body, 0)
    if plen > 128:
        raise ValueError(f"PIO prefix length {plen} > 128")
    return PrefixInfo(prefix=_prefix(body[14:30], plen), on_link=bool(flags & PIO_FLAG_ON_LINK),
                      autonomous=bool(flags & PIO_FLAG_AUTONOMOUS), valid_lifetime=valid,
                      preferred_lifetime=preferred)


def _parse_rio(body: bytes) -> RouteInfo:
    if len(body) not in (6, 14, 22):
        raise ValueError(f"RIO of length {len(body) + 2} octets")
    plen, flags, lifetime = struct.unpack_from("!BBI", body, 0)
    if plen > 128 or (plen > 64 and len(body) < 22) or (plen > 0 and len(body) < 14):
        raise ValueError(f"RIO prefix length {plen} does not fit its option length")
    return RouteInfo(prefix=_prefix(body[6:22], plen), preference=Preference.from_bits(flags >> 3),
                     lifetime=lifetime)


def _parse_rdnss(body: bytes) -> DnsServers:
    if len(body) < 22 or (len(body) - 6) % 16:
        raise ValueError(f"RDNSS of length {len(body) + 2} octets")
    (lifetime,) = struct.unpack_from("!I", body, 2)
    servers = tuple(str(ipaddress.IPv6Address(body[i:i + 16])) for i in range(6, len(body), 16))
    return DnsServers(servers=servers, lifetime=lifetime)


def _parse_dnssl(body: bytes) -> SearchList:
    if len(body) < 14:
        raise ValueError(f"DNSSL of length {len(body) + 2} octets")
    (lifetime,) = struct.unpack_from("!I", body, 2)
    domains: list[str] = []
    offset = 6
    while offset < len(body):
        if body[offset] == 0:  # padding (or an empty name): skip
            offset += 1
            continue
        name, offset = decode_name(body, offset, len(body))
        if name:
            domains.append(name)
    return SearchList(domains=tuple(domains), lifetime=lifetime)


def pvd_option_head(body: bytes) -> tuple[int, int, str, int]:
    """(flags, sequence, PvD ID, offset of what follows the padding) of a PvD option body
    (everything after type and length); raises ValueError when it is malformed."""
    if len(body) < 6:
        raise ValueError("PvD option shorter than 8 octets")
    flags, sequence = struct.unpack_from("!HH", body, 0)
    name, after_name = decode_name(body, 4, len(body))
    if not name:
        raise ValueError("PvD option with an empty PvD ID")
    # padding to the next 8-octet boundary counted from the option start
    # (the body starts 2 octets after the option start)
    option_offset = after_name + 2
    nested_start = ((option_offset + 7) // 8) * 8 - 2
    if nested_start > len(body):
        raise ValueError("PvD option truncated inside its padding")
    if any(body[after_name:nested_start]):
        raise ValueError("PvD option with non-zero padding after the PvD ID")
    return flags, sequence, name, nested_start


def _parse_pvd(body: bytes, errors: list[str]) -> PvdOption:
    """Parse a PvD option body (everything after type and length)."""
    flags, sequence, name, nested_start = pvd_option_head(body)
    pvd = PvdOption(pvd_id=name, flag_h=bool(flags & PVD_FLAG_H), flag_l=bool(flags & PVD_FLAG_L),
                    flag_r=bool(flags & PVD_FLAG_R), delay=flags & PVD_DELAY_MASK, sequence=sequence)
    if pvd.flag_r:
        if nested_start + RA_HEADER_LEN > len(body):
            raise ValueError("PvD option with R flag but no room for the RA header copy")
        copy = body[nested_start:nested_start + RA_HEADER_LEN]
        if copy[0] != ND_ROUTER_ADVERT:
            raise ValueError("PvD option's RA header copy is not an RA header")
        pvd.header = _parse_header(copy[4:])
        nested_start += RA_HEADER_LEN
    parse_options_into(body, nested_start, pvd, errors, nested=True, context=f"PvD {name}")
    return pvd


def walk_options(data: bytes, offset: int, errors: list[str], context: str) -> Iterator[tuple[int, bytes]]:
    """(type, the whole option, type and length octets included) for each option of
    ``data[offset:]``, in wire order; an option list that goes wrong (a truncated header,
    a length of 0, an option running past the end) ends with a line in ``errors``."""
    end = len(data)
    while offset < end:
        if offset + 2 > end:
            errors.append(f"{context}: truncated option header at offset {offset}")
            return
        opt_type, opt_len = data[offset], data[offset + 1]
        if opt_len == 0:
            errors.append(f"{context}: option type {opt_type} with length 0; rest ignored")
            return
        opt_end = offset + opt_len * 8
        if opt_end > end:
            errors.append(f"{context}: option type {opt_type} runs past the end; rest ignored")
            return
        yield opt_type, data[offset:opt_end]
        offset = opt_end


def parse_options_into(data: bytes, offset: int, into: Options, errors: list[str],
                       nested: bool, context: str) -> None:
    """Parse the option list data[offset:] into ``into``; problems go to errors."""
    for opt_type, option in walk_options(data, offset, errors, context):
        body = option[2:]
        try:
            if opt_type == OPT_PIO:
                into.prefixes.append(_parse_pio(body))
            elif opt_type == OPT_RIO:
                into.routes.append(_parse_rio(body))
            elif opt_type == OPT_RDNSS:
                into.rdnss.append(_parse_rdnss(body))
            elif opt_type == OPT_DNSSL:
                into.dnssl.append(_parse_dnssl(body))
            elif opt_type == OPT_PVD:
                if nested:
                    raise ValueError("PvD option nested inside a PvD option")
                assert isinstance(into, RaInfo)
                into.pvds.append(_parse_pvd(body, errors))
            elif opt_type == OPT_MTU and isinstance(into, RaInfo):
                if len(body) != 6:
                    raise ValueError("MTU option of wrong length")
                into.mtu = struct.unpack_from("!I", body, 2)[0]
            elif opt_type == OPT_SLLA and isinstance(into, RaInfo):
                into.source_lladdr = ":".join(f"{b:02x}" for b in body[:6])
        except (ValueError, struct.error) as exc:
            errors.append(f"{context}: option type {opt_type} ignored: {exc}")


def parse_ra(data: bytes) -> RaInfo:
    """Parse one ICMPv6 Router Advertisement (RFC 4861, 4191, 8106, 8801).

    Raises RaParseError only when ``data`` is not an RA or is shorter than
    the 16-octet RA header; malformed options are skipped and listed in
    ``RaInfo.errors``.
    """
    data = bytes(data)
    if len(data) < RA_HEADER_LEN:
        raise RaParseError(f"RA of {len(data)} octets is shorter than its header")
    if data[0] != ND_ROUTER_ADVERT or data[1] != 0:
        raise RaParseError(f"ICMPv6 type {data[0]} code {data[1]} is not a Router Advertisement")
    info = RaInfo(header=_parse_header(data[4:RA_HEADER_LEN]))
    parse_options_into(data, RA_HEADER_LEN, info, info.errors, nested=False, context="RA")
    return info


# -- building --------------------------------------------------------------------------

def encode_name(name: str) -> bytes:
    """``name`` in DNS wire format: length-prefixed labels, a zero octet, no compression
    (a trailing dot is ignored); raises ValueError for an empty label or one over 63 octets."""
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not raw or len(raw) > 63:
            raise ValueError(f"bad DNS label in {name!r}")
        out += bytes([len(raw)]) + raw
    out.append(0)
    return bytes(out)


def _joined(options: bytes | Iterable[bytes]) -> bytes:
    return options if isinstance(options, bytes) else b"".join(options)


def _option(opt_type: int, body: bytes) -> bytes:
    """Type, Length and ``body``, zero-padded to a multiple of 8 octets."""
    padded = body + bytes(-(len(body) + 2) % 8)
    return bytes([opt_type, (len(padded) + 2) // 8]) + padded


def ra_header(router_lifetime: int = 1800, preference: Preference = Preference.MEDIUM, *,
              hop_limit: int = 64, managed: bool = False, other: bool = False,
              reachable_time: int = 0, retrans_timer: int = 0) -> bytes:
    """The 16-octet RA header (type 134, code 0, checksum 0)."""
    flags = (RA_FLAG_MANAGED if managed else 0) | (RA_FLAG_OTHER if other else 0) \
        | (Preference(preference).bits << 3)
    return struct.pack("!BBHBBHII", ND_ROUTER_ADVERT, 0, 0, hop_limit, flags, router_lifetime,
                       reachable_time, retrans_timer)


def router_advert(options: bytes | Iterable[bytes] = b"", router_lifetime: int = 1800,
                  preference: Preference = Preference.MEDIUM, **header: Any) -> bytes:
    """A whole RA: :func:`ra_header` (``header``: its other fields) and the options."""
    return ra_header(router_lifetime, preference, **header) + _joined(options)


def pio(prefix: str, valid: int = 86400, preferred: int = 14400, on_link: bool = True,
        autonomous: bool = True) -> bytes:
    """A Prefix Information option (type 3, 32 octets)."""
    net = ipaddress.IPv6Network(prefix)
    flags = (PIO_FLAG_ON_LINK if on_link else 0) | (PIO_FLAG_AUTONOMOUS if autonomous else 0)
    body = struct.pack("!BBIII", net.prefixlen, flags, valid, preferred, 0) + net.network_address.packed
    return _option(OPT_PIO, body)


def rio(prefix: str, lifetime: int = 1800, preference: Preference = Preference.MEDIUM) -> bytes:
    """A Route Information option (type 24): the prefix cut to 0, 8 or 16 octets, as its
    length needs."""
    net = ipaddress.IPv6Network(prefix)
    prefix_octets = 0 if net.prefixlen == 0 else (8 if net.prefixlen <= 64 else 16)
    body = struct.pack("!BBI", net.prefixlen, Preference(preference).bits << 3, lifetime)
    return _option(OPT_RIO, body + net.network_address.packed[:prefix_octets])


def rdnss(servers: Iterable[str], lifetime: int = 1800) -> bytes:
    """A Recursive DNS Server option (type 25)."""
    packed = b"".join(ipaddress.IPv6Address(s).packed for s in servers)
    return _option(OPT_RDNSS, struct.pack("!HI", 0, lifetime) + packed)


def dnssl(domains: Iterable[str], lifetime: int = 1800) -> bytes:
    """A DNS Search List option (type 31), the names in wire format, zero-padded."""
    return _option(OPT_DNSSL, struct.pack("!HI", 0, lifetime) + b"".join(encode_name(d) for d in domains))


def pvd_option(pvd_id: str, options: bytes | Iterable[bytes] = b"", *, sequence: int = 0,
               h: bool = False, l: bool = False, delay: int = 0, header: bytes | None = None,
               r: bool | None = None, length: int | None = None,
               fqdn_wire: bytes | None = None) -> bytes:
    """An RFC 8801 PvD option nesting ``options``; ``header`` (16 octets, as :func:`ra_header`)
    is the RA header copy and sets the R flag.

    For malformed options: ``r`` sets or clears the R flag whatever ``header`` is,
    ``length`` replaces the Length field, ``fqdn_wire`` the encoded PvD ID."""
    r_flag = header is not None if r is None else r
    flags = (PVD_FLAG_H if h else 0) | (PVD_FLAG_L if l else 0) | (PVD_FLAG_R if r_flag else 0) \
        | (delay & PVD_DELAY_MASK)
    name = encode_name(pvd_id) if fqdn_wire is None else fqdn_wire
    head = struct.pack("!HH", flags, sequence & 0xFFFF) + name
    head += bytes(-(len(head) + 2) % 8)
    option = _option(OPT_PVD, head + (header or b"") + _joined(options))
    return option if length is None else option[:1] + bytes([length & 0xFF]) + option[2:]
