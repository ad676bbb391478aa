"""The PvD model: what one Provisioning Domain is, and its programmatic reference.

This module is the contract between every part of pvdrun:

* discovery builds :class:`Pvd` objects from kernel state, RAs and configuration;
* pvdd serves them (``Pvd.to_dict``) on its Unix socket;
* the launcher serialises the chosen one into the environment
  (``Pvd.to_scope``, variable :data:`SCOPE_ENV`), where the C shim parses it.

Handles (R5, R11, R13): a PvD's programmatic reference is a 32-bit unsigned
integer.  ``HANDLE_UNSPEC`` (0) is the unspecified PvD and ``HANDLE_NULL``
(0xFFFFFFFF) the null PvD; the same values are ``PVD_HANDLE_UNSPEC`` and
``PVD_HANDLE_NULL`` in ``shim/include/pvd.h``.  Every other handle is derived from
the PvD identifier and the *association* it belongs to (interface index and
the link's carrier-up count, plus a generation that pvdd bumps when an
explicit PvD is lost and heard again), so that pvdd and a one-shot discovery
compute the same handle, the handle stays constant while the host stays
attached, and it changes on every re-association.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from typing import Any

HANDLE_UNSPEC = 0
HANDLE_NULL = 0xFFFFFFFF

NULL_PVD_NAME = "null"
#: The reserved name of ``pvdrun --pvd auto``: each lookup in the PvD claiming the name's zone,
#: each connection in the PvD its destination address came from (docs/cli.md).
AUTO_PVD_NAME = "auto"
#: Environment variable carrying the auto PvDs (one scope line and its zones per line).
AUTO_ENV = "PVDRUN_AUTO"

#: Environment variable carrying the scope line that the shim reads.
SCOPE_ENV = "PVDRUN_SCOPE"
#: Environment variable naming pvdd's socket, for the shim's C API.
SOCKET_ENV = "PVDRUN_SOCKET"
#: Default path of pvdd's Unix socket.
DEFAULT_SOCKET = "/run/pvd/pvdd.sock"

#: Version of the scope-line format below.  The shim refuses other versions.
SCOPE_VERSION = 1

# Limits the C shim's fixed-size tables hold (shim/include/pvd.h); the launcher
# refuses a PvD larger than this rather than silently truncating it.
MAX_ADDRS = 32
MAX_DNS = 8
MAX_SEARCH = 8
MAX_IFACES = 8

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.:%/\-]+$")


#: FNV-1a (offset basis, prime) by width in bits.
_FNV1A = {32: (0x811C9DC5, 0x01000193), 64: (0xCBF29CE484222325, 0x100000001B3)}


def fnv1a(data: bytes, bits: int = 32) -> int:
    """The FNV-1a hash of ``data``, 32 or 64 bits wide."""
    value, prime = _FNV1A[bits]
    mask = (1 << bits) - 1
    for byte in data:
        value = ((value ^ byte) * prime) & mask
    return value


def split_zone(address: str) -> tuple[str, str | None]:
    """``"fe80::1%eth0"`` -> ``("fe80::1", "eth0")``; an address without a zone -> (it, None)."""
    host, sep, zone = address.partition("%")
    return host, (zone if sep else None)


def zone_interface(zone: str, interfaces: list[str], ifindexes: list[int]) -> str | None:
    """The interface among ``interfaces`` (with ``ifindexes``) that a ``%zone`` names, by index
    (decimal, as libc reads a numeric zone) or by name; None when it names none of them."""
    try:
        index = _u32(zone)
    except ValueError:
        return zone if zone in interfaces else None
    return next((name for name, i in zip(interfaces, ifindexes) if i == index), None)


def link_dns_server(server: str, ifname: str, ifindex: int) -> str | None:
    """A DNS server learned on link ``ifname`` (an RA's RDNSS, an ND user option, a per-link
    store), as a PvD of that link holds it: the address in canonical text, and a link-local
    one (RFC 8106 lets a router announce its own) with the link as its zone, ``fe80::1%eth0``:
    it is reachable on that link only.  None for what is no DNS server (multicast, the
    unspecified address) and for a zone naming another link."""
    host, zone = split_zone(server)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.is_multicast or address.is_unspecified:
        return None
    if zone is not None and zone_interface(zone, [ifname], [ifindex]) is None:
        return None
    if address.version == 6 and address.is_link_local:
        return f"{address}%{ifname}"
    return str(address)


def make_handle(pvd_id: str, ifindex: int, association: int, generation: int = 0) -> int:
    """Derive a PvD's handle from its identifier and its association.

    ``association`` is the link's carrier-up count (IFLA_CARRIER_UP_COUNT):
    it grows on every link down/up, so the handle changes on re-association
    and only then.  The result never equals a reserved handle.
    """
    raw = f"{pvd_id}|{ifindex}|{association}|{generation}".encode()
    value = fnv1a(raw) & 0x7FFFFFFF
    return value or 1


@dataclass
class Route:
    """One route of a PvD: destination prefix, next-hop, interface, metric."""

    dst: str  # "default" or a prefix, e.g. "2001:db8:a::/64"
    gateway: str | None = None
    ifname: str | None = None
    metric: int | None = None
    origin: str = "kernel"  # kernel | ra | rio | config

    def to_dict(self) -> dict[str, Any]:
        return {"dst": self.dst, "gateway": self.gateway, "ifname": self.ifname,
                "metric": self.metric, "origin": self.origin}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Route":
        return cls(dst=data["dst"], gateway=data.get("gateway"), ifname=data.get("ifname"),
                   metric=data.get("metric"), origin=data.get("origin", "kernel"))


@dataclass
class Pvd:
    """One Provisioning Domain: a consistent set of network configuration.

    ``pvd_id`` is the stable identifier: the RFC 8801 PvD ID (an FQDN) for an
    explicit PvD, ``implicit:<ifname>`` (or ``implicit:<ifname>:<router>``
    where several routers on one link advertise different prefixes) for an
    implicit one, and the configured name for a PvD from the configuration
    file.  ``handle`` is the programmatic reference (see module docstring).
    """

    pvd_id: str
    handle: int
    explicit: bool = False
    names: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    ifindexes: list[int] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)  # "addr/plen"
    routes: list[Route] = field(default_factory=list)
    dns_servers: list[str] = field(default_factory=list)  # link-local ones zoned: "fe80::1%eth0"
    search_domains: list[str] = field(default_factory=list)
    kind: str | None = None  # wifi | ethernet | cellular | vpn | None
    is_default: bool = False
    sequence: int | None = None  # RFC 8801 sequence number
    flags: dict[str, bool] = field(default_factory=dict)  # RFC 8801 H/L/R
    routers: list[str] = field(default_factory=list)  # advertising routers
    mark: int = 0  # socket mark pvdd uses for this PvD (0: none yet)
    needs_routing: bool = False  # device binding alone cannot isolate it
    source: str = "kernel"  # kernel | ra | config
    attributes: dict[str, Any] = field(default_factory=dict)  # R18: pass-through
    #: RFC 8801 Additional Information: the validated object fetched from the PvD, every key
    #: (docs/pvdinfo.md); None when the PvD publishes none or none is current
    additional_info: dict[str, Any] | None = None

    # -- derived views -------------------------------------------------------
    def _info(self, key: str, default: Any = None) -> Any:
        return (self.additional_info or {}).get(key, default)

    @property
    def no_internet(self) -> bool:
        """RFC 8801 ``noInternet``: the PvD reaches no Internet (never the default PvD)."""
        return self._info("noInternet") is True

    @property
    def metered(self) -> bool:
        """RFC 8801 ``metered``."""
        return self._info("metered") is True

    @property
    def dns_zones(self) -> list[str]:
        """RFC 8801 ``dnsZones``: the zones this PvD's DNS servers answer for."""
        zones = self._info("dnsZones", [])
        return [z for z in zones if isinstance(z, str)] if isinstance(zones, list) else []

    @property
    def captive_portal_url(self) -> str | None:
        """RFC 8908 ``captivePortalURL``."""
        url = self._info("captivePortalURL")
        return url if isinstance(url, str) else None

    @property
    def proxies(self) -> list[dict[str, Any]]:
        """draft-ietf-intarea-proxy-config ``proxies``: the PvD's proxies, as published."""
        found = self._info("proxies", [])
        return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []

    @property
    def name(self) -> str:
        """The name a person would type first: configured name, else the ID."""
        return self.names[0] if self.names else self.pvd_id

    def ip_addresses(self) -> list[str]:
        """Addresses without prefix length."""
        return [a.split("/", 1)[0] for a in self.addresses]

    def has_family(self, version: int) -> bool:
        return any(ipaddress.ip_address(a.split("%", 1)[0]).version == version
                   for a in self.ip_addresses())

    # -- (de)serialisation ---------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every attribute, as JSON-ready data (pvdd protocol, --json output)."""
        return {
            "pvd_id": self.pvd_id,
            "handle": self.handle,
            "explicit": self.explicit,
            "names": list(self.names),
            "interfaces": list(self.interfaces),
            "ifindexes": list(self.ifindexes),
            "addresses": list(self.addresses),
            "routes": [r.to_dict() for r in self.routes],
            "dns_servers": list(self.dns_servers),
            "search_domains": list(self.search_domains),
            "kind": self.kind,
            "is_default": self.is_default,
            "sequence": self.sequence,
            "flags": dict(self.flags),
            "routers": list(self.routers),
            "mark": self.mark,
            "needs_routing": self.needs_routing,
            "source": self.source,
            "attributes": dict(self.attributes),
            "additional_info": self.additional_info,
            "scope": self._scope_or_none(),
        }

    def _scope_or_none(self) -> str | None:
        """The scope line, or None for a PvD the shim cannot hold (too many addresses or
        interfaces, a value a scope line cannot carry): pvdd still lists such a PvD, and the
        launcher refuses it (exit 4) when asked to run a program in it."""
        try:
            return self.to_scope()
        except ValueError:
            return None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Pvd":
        return cls(
            pvd_id=data.get("pvd_id", data.get("id")), handle=int(data["handle"]), explicit=bool(data.get("explicit")),
            names=list(data.get("names", [])), interfaces=list(data.get("interfaces", [])),
            ifindexes=[int(i) for i in data.get("ifindexes", [])],
            addresses=list(data.get("addresses", [])),
            routes=[Route.from_dict(r) for r in data.get("routes", [])],
            dns_servers=list(data.get("dns_servers", [])),
            search_domains=list(data.get("search_domains", [])),
            kind=data.get("kind"), is_default=bool(data.get("is_default", data.get("default"))),
            sequence=data.get("sequence"), flags=dict(data.get("flags", {})),
            routers=list(data.get("routers", [])), mark=int(data.get("mark", 0)),
            needs_routing=bool(data.get("needs_routing")), source=data.get("source", "kernel"),
            attributes=dict(data.get("attributes", {})),
            additional_info=data.get("additional_info") if isinstance(data.get("additional_info"), dict) else None,
        )

    def to_scope(self) -> str:
        """The one-line scope the shim parses (see docs/architecture.md).

        ``v=1 id=ID handle=N if=NAME:INDEX... addr=A... dns=A... search=D...
        mark=HEX srcbind=0|1``: space-separated ``key=value`` tokens; list
        keys repeat.  Values never contain spaces, quotes or backslashes.
        """
        if len(self.addresses) > MAX_ADDRS or len(self.interfaces) > MAX_IFACES:
            raise ValueError(f"PvD {self.pvd_id} is larger than the shim's tables")
        tokens = [f"v={SCOPE_VERSION}", f"id={self.pvd_id}", f"handle={self.handle}"]
        for ifname, ifindex in zip(self.interfaces, self.ifindexes):
            tokens.append(f"if={ifname}:{ifindex}")
        tokens += [f"addr={a.split('/', 1)[0]}" for a in self.addresses]
        # Like resolv.conf's readers, the shim uses the first servers and domains it can hold.
        tokens += [f"dns={d}" for d in self.dns_servers[:MAX_DNS]]
        for token in tokens:
            _check_zone(token, self.interfaces, self.ifindexes)
        tokens += [f"search={s}" for s in self.search_domains[:MAX_SEARCH]]
        tokens.append(f"mark={self.mark:#x}")
        tokens.append(f"srcbind={1 if self.needs_routing else 0}")
        for token in tokens:
            if not _TOKEN_RE.match(token.split("=", 1)[1]):
                raise ValueError(f"PvD {self.pvd_id}: value not allowed in a scope line: {token!r}")
        return " ".join(tokens)


def default_of(pvds: list[Pvd]) -> Pvd | None:
    """The default PvD of a table (R9), or None."""
    return next((p for p in pvds if p.is_default), None)


def null_scope() -> str:
    """The scope line of the null PvD (R13): no network at all."""
    return f"v={SCOPE_VERSION} id={NULL_PVD_NAME} handle={HANDLE_NULL}"


_SEPARATORS = re.compile(r"[ \t\n]+")
_SINGLE_KEYS = ("v", "id", "handle", "mark", "srcbind")
_LIMITS = {"if": MAX_IFACES, "addr": MAX_ADDRS, "dns": MAX_DNS, "search": MAX_SEARCH}
#: sizes of the C struct's buffers (shim/include/pvd.h), NUL included
_ID_MAX, _IFNAME_MAX, _ADDRSTR_MAX, _SEARCH_MAX = 256, 16, 64, 256


def _u32(value: str, allow_hex: bool = False) -> int:
    """A scope-line number: decimal digits ("010" is ten), or 0x hex where allowed; 32 bits."""
    digits, base = value, 10
    if allow_hex and len(value) > 2 and value[:2] in ("0x", "0X"):
        digits, base = value[2:], 16
    allowed = "0123456789abcdefABCDEF" if base == 16 else "0123456789"
    if not digits or any(c not in allowed for c in digits):
        raise ValueError(f"not a 32-bit unsigned number: {value!r}")
    number = int(digits, base)
    if number > 0xFFFFFFFF:
        raise ValueError(f"not a 32-bit unsigned number: {value!r}")
    return number


def _scope_address(value: str) -> None:
    """ADDR or IPv6ADDR%ZONE, as libc's inet_pton reads it (the C parser's own test)."""
    if len(value.encode()) >= _ADDRSTR_MAX:
        raise ValueError(f"address too long: {value!r}")
    bare, zone = value.split("%", 1) if "%" in value else (value, None)
    families = (socket.AF_INET6,) if zone is not None else (socket.AF_INET, socket.AF_INET6)
    for family in families:
        try:
            socket.inet_pton(family, bare)
            return
        except (OSError, ValueError):
            continue
    raise ValueError(f"bad address: {value!r}")


def _check_zone(token: str, interfaces: list[str], ifindexes: list[int]) -> None:
    """An ``addr=``/``dns=`` value's ``%zone`` must name one of the PvD's own interfaces, and a
    ``dns=`` value must be a server (not multicast, not unspecified): ValueError otherwise."""
    key, _, value = token.partition("=")
    if key not in ("addr", "dns"):
        return
    host, zone = split_zone(value)
    if zone is not None and zone_interface(zone, interfaces, ifindexes) is None:
        raise ValueError(f"{token}: the zone is not one of the PvD's interfaces")
    if key == "dns" and _not_a_server(host):
        raise ValueError(f"{token}: not a DNS server (multicast or unspecified)")


def _not_a_server(host: str) -> bool:
    """Multicast or unspecified: read as the C parser reads it (inet_pton's bytes)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        raw = socket.inet_pton(family, host)
    except OSError:
        raise ValueError(f"bad address: {host!r}") from None
    multicast = raw[0] == 0xFF if family == socket.AF_INET6 else raw[0] >> 4 == 0xE
    return multicast or not any(raw)


def parse_scope(line: str) -> dict[str, list[str]]:
    """Parse a scope line into key -> values, by the grammar of docs/shim.md ("The scope
    line"), which the C parser (shim/core/scope_parse.c) implements too; both are held to the
    vectors in tests/vectors/scope_lines.json.

    Raises ValueError on a malformed line.  The null PvD is the line whose handle is
    HANDLE_NULL (its id is not looked at).
    """
    result: dict[str, list[str]] = {}
    for token in _SEPARATORS.split(line):
        if not token:
            continue
        if "=" not in token:
            raise ValueError(f"scope token without '=': {token!r}")
        key, value = token.split("=", 1)
        if not key:
            raise ValueError(f"scope token with empty key: {token!r}")
        if not value:
            raise ValueError(f"scope token with empty value: {token!r}")
        if any(c in value for c in '="\\\0'):
            raise ValueError(f"forbidden character in scope value: {token!r}")
        if key in _SINGLE_KEYS and key in result:
            raise ValueError(f"repeated {key}=")
        if key in _LIMITS and len(result.get(key, [])) >= _LIMITS[key]:
            raise ValueError(f"more than {_LIMITS[key]} {key}= values")
        if key == "v" and _u32(value) != SCOPE_VERSION:
            raise ValueError(f"scope line version is not {SCOPE_VERSION}")
        if key == "id" and len(value.encode()) >= _ID_MAX:
            raise ValueError("id too long")
        if key == "handle" and _u32(value) == HANDLE_UNSPEC:
            raise ValueError("handle 0 is the unspecified PvD, not a PvD")
        if key == "if":
            name, sep, index = value.rpartition(":")
            if not sep or not name:
                raise ValueError("if= needs NAME:INDEX")
            if len(name.encode()) >= _IFNAME_MAX:
                raise ValueError("interface name too long")
            if not 0 < _u32(index) <= 0x7FFFFFFF:
                raise ValueError("bad interface index in if=")
        if key in ("addr", "dns"):
            _scope_address(value)
        if key == "search" and len(value.encode()) >= _SEARCH_MAX:
            raise ValueError("search domain too long")
        if key == "mark":
            _u32(value, allow_hex=True)
        if key == "srcbind" and value not in ("0", "1"):
            raise ValueError("srcbind= must be 0 or 1")
        result.setdefault(key, []).append(value)
    for key in ("v", "id", "handle"):
        if key not in result:
            raise ValueError(f"no {key}=")
    if _u32(result["handle"][0]) != HANDLE_NULL and "if" not in result:
        raise ValueError(f"PvD {result['id'][0]} has no interface (if=)")
    links = [value.rpartition(":") for value in result.get("if", [])]
    for key in ("addr", "dns"):
        for value in result.get(key, []):
            _check_zone(f"{key}={value}", [name for name, _, _ in links], [int(i) for _, _, i in links])
    return result
