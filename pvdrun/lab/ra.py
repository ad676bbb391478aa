"""RFC 8801 Router Advertisements: a byte builder and a small sender process.

The builder functions return wire bytes and never validate more than they
must, so that tests can also build *malformed* options on purpose (wrong
length, missing terminator, bad padding) and inject them.

Wire formats (RFC 4861 §4.2/§4.6, RFC 4191 §2.3, RFC 8106 §5, RFC 8801 §3.1):

* RA header (16 octets): type 134, code 0, checksum, cur hop limit,
  M/O/Prf flags, router lifetime, reachable time, retrans timer.
* PvD option: type 21, length (8-octet units), H|L|R flags + 9 reserved
  bits + 4-bit Delay, sequence number, PvD ID FQDN in DNS wire format,
  zero padding to the next 8-octet boundary, the RA header copy when R=1,
  then nested RA options.

The sender (``python -m pvdrun.lab.ra --config FILE``) runs inside a router
namespace, sends the configured RAs to ff02::1 from the interface's
link-local address with hop limit 255 every ``interval`` seconds, and
answers Router Solicitations at once.  The RA of a PvD stays byte-for-byte
the same for the process's life, so its sequence number (derived from the
content) only changes when the content does.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import select
import signal
import socket
import struct
import sys
import time
import zlib
from typing import Any, Iterable

ND_ROUTER_SOLICIT = 133
ND_ROUTER_ADVERT = 134

# Option numbers and PvD flags: one definition, shared with the parser (RFC 4861, 4191, 8106, 8801).
from pvdrun.errors import EXIT_OK  # noqa: E402
from pvdrun.discovery.ra import (OPT_DNSSL, OPT_PIO, OPT_PVD, OPT_RDNSS, OPT_RIO,  # noqa: E402,F401
                                 PVD_FLAG_H, PVD_FLAG_L, PVD_FLAG_R)

ALL_NODES = "ff02::1"
ICMP6_FILTER = 1  # <netinet/icmp6.h>, level IPPROTO_ICMPV6

#: Router preference values for the RA header and RIOs (RFC 4191 §2.1).
PREFERENCE = {"medium": 0, "high": 1, "low": 3}


def _pad8(data: bytes) -> bytes:
    """Zero-pad ``data`` to a multiple of 8 octets."""
    return data + b"\0" * (-len(data) % 8)


def encode_fqdn(name: str) -> bytes:
    """An FQDN in DNS wire format: length-prefixed labels, a zero byte, no compression."""
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not raw or len(raw) > 63:
            raise ValueError(f"bad DNS label in {name!r}")
        out += bytes([len(raw)]) + raw
    out.append(0)
    return bytes(out)


def build_ra_header(hop_limit: int = 64, managed: bool = False, other: bool = False,
                    router_lifetime: int = 0, reachable_time: int = 0, retrans_timer: int = 0,
                    preference: str = "medium") -> bytes:
    """The 16-octet RA message header (checksum 0: the kernel fills it in)."""
    flags = (0x80 if managed else 0) | (0x40 if other else 0) | (PREFERENCE[preference] << 3)
    return struct.pack("!BBHBBHII", ND_ROUTER_ADVERT, 0, 0, hop_limit, flags,
                       router_lifetime, reachable_time, retrans_timer)


def build_ra(options: Iterable[bytes] | bytes = (), **header: Any) -> bytes:
    """A whole RA message: header (see :func:`build_ra_header`) + options.

    Router lifetime defaults to 0 here; see docs/lab.md for why the lab's
    own sender uses the router's real lifetime instead.
    """
    body = options if isinstance(options, bytes) else b"".join(options)
    return build_ra_header(**header) + body


def build_pio(prefix: str, valid: int = 86400, preferred: int = 14400,
              on_link: bool = True, autonomous: bool = True) -> bytes:
    """Prefix Information option (type 3, 32 octets)."""
    net = ipaddress.IPv6Network(prefix)
    flags = (0x80 if on_link else 0) | (0x40 if autonomous else 0)
    return struct.pack("!BBBBIII", OPT_PIO, 4, net.prefixlen, flags, valid, preferred, 0) \
        + net.network_address.packed


def build_rio(prefix: str, lifetime: int = 1800, preference: str = "medium") -> bytes:
    """Route Information option (type 24): the prefix truncated to 0, 8 or 16 octets."""
    net = ipaddress.IPv6Network(prefix)
    prefix_octets = 0 if net.prefixlen == 0 else (8 if net.prefixlen <= 64 else 16)
    length = 1 + prefix_octets // 8
    return struct.pack("!BBBBI", OPT_RIO, length, net.prefixlen, PREFERENCE[preference] << 3,
                       lifetime) + net.network_address.packed[:prefix_octets]


def build_rdnss(servers: Iterable[str], lifetime: int = 1800) -> bytes:
    """Recursive DNS Server option (type 25)."""
    packed = b"".join(ipaddress.IPv6Address(s).packed for s in servers)
    return struct.pack("!BBHI", OPT_RDNSS, 1 + len(packed) // 8, 0, lifetime) + packed


def build_dnssl(domains: Iterable[str], lifetime: int = 1800) -> bytes:
    """DNS Search List option (type 31), names in wire format, zero-padded."""
    names = _pad8(b"".join(encode_fqdn(d) for d in domains))
    return struct.pack("!BBHI", OPT_DNSSL, 1 + len(names) // 8, 0, lifetime) + names


def build_pvd_option(pvd_id: str, sequence: int = 0, h: bool = False, l: bool = False,
                     r: bool = False, delay: int = 0, ra_header: bytes | None = None,
                     options: Iterable[bytes] | bytes = (), length: int | None = None,
                     fqdn_wire: bytes | None = None) -> bytes:
    """PvD option (RFC 8801 §3.1, type 21).

    ``r=True`` needs ``ra_header`` (16 octets, as :func:`build_ra_header`).
    ``length`` overrides the computed Length field and ``fqdn_wire`` the
    encoded PvD ID: both exist to build malformed options for tests.
    """
    nested = options if isinstance(options, bytes) else b"".join(options)
    flags = (PVD_FLAG_H if h else 0) | (PVD_FLAG_L if l else 0) | (PVD_FLAG_R if r else 0) \
        | (delay & 0x0F)
    name = encode_fqdn(pvd_id) if fqdn_wire is None else fqdn_wire
    head = _pad8(struct.pack("!BBHH", OPT_PVD, 0, flags, sequence & 0xFFFF) + name)
    if r:
        if ra_header is None or len(ra_header) != 16:
            raise ValueError("R flag set: a 16-octet RA header copy is required")
        head += ra_header
    body = head + nested
    field = length if length is not None else len(body) // 8
    return body[:1] + bytes([field & 0xFF]) + body[2:]


def content_sequence(nested: bytes) -> int:
    """A sequence number derived from the nested options: changes iff they change."""
    return zlib.crc32(nested) & 0xFFFF


def build_pvd_ra(spec: dict[str, Any]) -> bytes:
    """The lab's RA for one PvD from a config entry (see :func:`main`).

    The PvD option (H=0, L=0, R=0) nests the PIO, RIOs, RDNSS and DNSSL;
    the RIOs are also repeated outside it (``top_level_routes``), so a host
    that ignores option 21 still learns the route to the ISP's services.
    """
    lifetime = int(spec.get("lifetime", 3600))
    nested = [build_pio(spec["prefix"], valid=lifetime, preferred=lifetime)]
    nested += [build_rio(p, lifetime) for p in spec.get("routes", [])]
    if spec.get("rdnss"):
        nested.append(build_rdnss(spec["rdnss"], lifetime))
    if spec.get("dnssl"):
        nested.append(build_dnssl(spec["dnssl"], lifetime))
    nested_bytes = b"".join(nested)
    pvd = build_pvd_option(spec["pvd_id"], sequence=content_sequence(nested_bytes),
                           options=nested_bytes)
    outside = [build_rio(p, lifetime) for p in spec.get("routes", [])] \
        if spec.get("top_level_routes") else []
    return build_ra([pvd, *outside], router_lifetime=int(spec.get("router_lifetime", 0)))


# -- parsing (used by tests and for debugging) ---------------------------------

def decode_fqdn(data: bytes) -> tuple[str, int]:
    """Decode a wire-format FQDN; return (name, octets consumed)."""
    labels, pos = [], 0
    while True:
        if pos >= len(data):
            raise ValueError("FQDN without terminating zero")
        size = data[pos]
        pos += 1
        if size == 0:
            return ".".join(labels), pos
        if size > 63 or pos + size > len(data):
            raise ValueError("bad FQDN label")
        labels.append(data[pos:pos + size].decode("ascii"))
        pos += size


def parse_options(data: bytes) -> list[dict[str, Any]]:
    """Split RA options into dicts ``{"type", "raw", ...}``; PvD options are decoded."""
    result, pos = [], 0
    while pos + 2 <= len(data):
        opt_type, length = data[pos], data[pos + 1]
        if length == 0:
            raise ValueError("option with length 0")
        raw = data[pos:pos + 8 * length]
        entry: dict[str, Any] = {"type": opt_type, "raw": raw}
        if opt_type == OPT_PVD:
            flags, seq = struct.unpack("!HH", raw[2:6])
            name, used = decode_fqdn(raw[6:])
            start = 6 + used + (-(6 + used) % 8)
            if flags & PVD_FLAG_R:
                entry["ra_header"] = raw[start:start + 16]
                start += 16
            entry.update(pvd_id=name, h=bool(flags & PVD_FLAG_H), l=bool(flags & PVD_FLAG_L),
                         r=bool(flags & PVD_FLAG_R), delay=flags & 0x0F, sequence=seq,
                         options=parse_options(raw[start:]))
        result.append(entry)
        pos += 8 * length
    return result


def parse_ra(message: bytes) -> dict[str, Any]:
    """Parse an ICMPv6 RA message (starting at the ICMPv6 type octet)."""
    if len(message) < 16 or message[0] != ND_ROUTER_ADVERT:
        raise ValueError("not a Router Advertisement")
    hop, flags, lifetime, reachable, retrans = struct.unpack("!BBHII", message[4:16])
    return {"hop_limit": hop, "flags": flags, "router_lifetime": lifetime,
            "reachable_time": reachable, "retrans_timer": retrans,
            "options": parse_options(message[16:])}


# -- the sender process ---------------------------------------------------------

def link_local_address(ifname: str) -> str | None:
    """The interface's non-tentative link-local address, from /proc/net/if_inet6."""
    with open("/proc/net/if_inet6", encoding="ascii") as table:
        for line in table:
            hexaddr, _idx, _plen, scope, flags, name = line.split()
            tentative = int(flags, 16) & 0x40
            if name == ifname and int(scope, 16) == 0x20 and not tentative:
                return str(ipaddress.IPv6Address(bytes.fromhex(hexaddr)))
    return None


def open_ra_socket(ifname: str) -> tuple[socket.socket, int]:
    """A raw ICMPv6 socket bound to the interface's link-local address, hop limit 255."""
    deadline = time.monotonic() + 10
    ll = link_local_address(ifname)
    while ll is None and time.monotonic() < deadline:
        time.sleep(0.1)
        ll = link_local_address(ifname)
    if ll is None:
        raise SystemExit(f"ra: {ifname} has no usable link-local address")
    ifindex = socket.if_nametoindex(ifname)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    # ICMPv6 filter: block everything but Router Solicitations (bit set = block).
    words = [0xFFFFFFFF] * 8
    words[ND_ROUTER_SOLICIT >> 5] &= ~(1 << (ND_ROUTER_SOLICIT & 31))
    sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("=8I", *words))
    sock.bind((ll, 0, 0, ifindex))
    return sock, ifindex


def run_sender(ifname: str, messages: list[bytes], interval: float) -> None:
    """Send ``messages`` periodically and on every RS, until SIGTERM."""
    def stop(_sig: int, _frame: Any) -> None:
        raise SystemExit(EXIT_OK)  # leaves select() at once (PEP 475 would otherwise resume it)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sock, ifindex = open_ra_socket(ifname)
    next_send = 0.0
    while True:
        now = time.monotonic()
        if now >= next_send:
            for message in messages:
                sock.sendto(message, (ALL_NODES, 0, 0, ifindex))
            next_send = now + interval
        ready, _, _ = select.select([sock], [], [], max(0.0, next_send - time.monotonic()))
        if ready:
            sock.recvfrom(2048)  # a Router Solicitation: answer at once (rate: 1 per 0.2 s)
            next_send = min(next_send, time.monotonic() + 0.2)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m pvdrun.lab.ra --config FILE [--lab NAME]``.

    The config is JSON: ``{"ifname": "down0", "interval": 2, "ras": [
    {"pvd_id", "prefix", "routes", "rdnss", "dnssl", "router_lifetime",
    "lifetime", "top_level_routes"}, ...]}``.
    """
    parser = argparse.ArgumentParser(prog="pvdrun.lab.ra")
    parser.add_argument("--config", required=True)
    parser.add_argument("--lab", help="lab name (marks the process as the lab's)")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as handle:
        config = json.load(handle)
    messages = [build_pvd_ra(spec) for spec in config["ras"]]
    run_sender(config["ifname"], messages, float(config.get("interval", 2)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
