"""The lab's RFC 8801 Router Advertisements: what an ISP's router advertises, and the
small process that sends it.

The wire format is :mod:`pvdrun.discovery.ra`'s (the one place that builds and parses
RAs); this module only says what the lab's RA holds (:func:`build_pvd_ra`).  It also
offers that module's builders under the names docs/lab.md gives them, for tests that
inject RAs, and :func:`parse_ra` / :func:`parse_options`, which read a captured RA as
plain dicts in wire order, raw bytes included.

The sender (``python -m pvdrun.lab.ra --config FILE``) runs inside a router
namespace, sends the configured RAs to ff02::1 from the interface's
link-local address with hop limit 255 every ``interval`` seconds, and
answers Router Solicitations at once.  The RA of a PvD stays byte-for-byte
the same until the config changes (SIGHUP re-reads it), so its sequence number (derived from
the content, or given in the config) only changes when one of them does.
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
from collections.abc import Callable, Iterable
from typing import Any

from pvdrun.discovery.ra import (ND_ROUTER_ADVERT, ND_ROUTER_SOLICIT, OPT_DNSSL, OPT_PIO,
                                 OPT_PVD, OPT_RDNSS, OPT_RIO, PVD_DELAY_MASK, PVD_FLAG_H, PVD_FLAG_L,
                                 PVD_FLAG_R, RA_HEADER_LEN, Preference, decode_name, dnssl,
                                 encode_name, pio, pvd_option, pvd_option_head, ra_header, rdnss, rio,
                                 router_advert, walk_options)
from pvdrun.discovery.rasock import ICMP6_FILTER, icmp6_filter_only
from pvdrun.errors import EXIT_OK

__all__ = ["ND_ROUTER_ADVERT", "OPT_DNSSL", "OPT_PIO", "OPT_PVD", "OPT_RDNSS", "OPT_RIO",
           "build_dnssl", "build_pio", "build_pvd_option", "build_pvd_ra", "build_ra", "build_ra_header",
           "build_rdnss", "build_rio", "content_sequence", "decode_fqdn", "encode_fqdn", "main",
           "parse_options", "parse_ra", "run_sender", "spec_sequence"]

ALL_NODES = "ff02::1"


# -- the lab's RA ------------------------------------------------------------------------

def content_sequence(nested: bytes) -> int:
    """A sequence number derived from the nested options: changes iff they change."""
    return zlib.crc32(nested) & 0xFFFF


def _nested_options(spec: dict[str, Any]) -> list[bytes]:
    lifetime = int(spec.get("lifetime", 3600))
    prefix_lifetime = int(spec.get("prefix_lifetime", lifetime))
    nested = [pio(spec["prefix"], valid=prefix_lifetime, preferred=prefix_lifetime)]
    nested += [rio(p, lifetime) for p in spec.get("routes", [])]
    if spec.get("rdnss"):
        nested.append(rdnss(spec["rdnss"], lifetime))
    if spec.get("dnssl"):
        nested.append(dnssl(spec["dnssl"], lifetime))
    return nested


def spec_sequence(spec: dict[str, Any]) -> int:
    """The Sequence Number of a config entry's PvD option: ``sequence`` when given (``lab
    pvd-info --bump-sequence`` sets it), else :func:`content_sequence` of the nested options."""
    if spec.get("sequence") is not None:
        return int(spec["sequence"]) & 0xFFFF
    return content_sequence(b"".join(_nested_options(spec)))


def build_pvd_ra(spec: dict[str, Any]) -> bytes:
    """The lab's RA for one PvD from a config entry (see :func:`main`).

    The PvD option (H from ``h``, L=0, R=0; sequence from :func:`spec_sequence`) nests the
    PIO, RIOs, RDNSS and DNSSL;
    the RIOs are also repeated outside it (``top_level_routes``), so a host
    that ignores option 21 still learns the route to the ISP's services.
    ``top_level_all`` repeats every option outside (what a plain router's RA holds), and
    without a ``pvd_id`` there is no PvD option at all.  ``prefix_lifetime`` (default:
    ``lifetime``) is the PIO's valid and preferred lifetime (0 withdraws the prefix).
    """
    lifetime = int(spec.get("lifetime", 3600))
    nested = _nested_options(spec)
    if spec.get("top_level_all") or not spec.get("pvd_id"):
        outside = list(nested)
    else:
        outside = [rio(p, lifetime) for p in spec.get("routes", [])] \
            if spec.get("top_level_routes") else []
    options = outside
    if spec.get("pvd_id"):
        options = [pvd_option(spec["pvd_id"], b"".join(nested), sequence=spec_sequence(spec),
                              h=bool(spec.get("h"))), *outside]
    return router_advert(options, router_lifetime=int(spec.get("router_lifetime", 0)))


# -- the builders under the lab's names (docs/lab.md) ----------------------------------

build_pio = pio
build_rio = rio
build_rdnss = rdnss
build_dnssl = dnssl
encode_fqdn = encode_name


def build_ra_header(hop_limit: int = 64, managed: bool = False, other: bool = False,
                    router_lifetime: int = 0, reachable_time: int = 0, retrans_timer: int = 0,
                    preference: Preference = Preference.MEDIUM) -> bytes:
    """:func:`pvdrun.discovery.ra.ra_header`, router lifetime 0 unless given."""
    return ra_header(router_lifetime, preference, hop_limit=hop_limit, managed=managed,
                     other=other, reachable_time=reachable_time, retrans_timer=retrans_timer)


def build_ra(options: Iterable[bytes] | bytes = (), **header: Any) -> bytes:
    """:func:`pvdrun.discovery.ra.router_advert`, router lifetime 0 unless given (docs/lab.md
    says why the lab's own sender gives the router's real lifetime)."""
    return build_ra_header(**header) + (options if isinstance(options, bytes) else b"".join(options))


def build_pvd_option(pvd_id: str, sequence: int = 0, h: bool = False, l: bool = False,
                     r: bool = False, delay: int = 0, ra_header: bytes | None = None,
                     options: Iterable[bytes] | bytes = (), length: int | None = None,
                     fqdn_wire: bytes | None = None) -> bytes:
    """:func:`pvdrun.discovery.ra.pvd_option` with an explicit R flag, which needs ``ra_header``
    (the 16-octet copy it announces)."""
    if r and (ra_header is None or len(ra_header) != RA_HEADER_LEN):
        raise ValueError("R flag set: a 16-octet RA header copy is required")
    return pvd_option(pvd_id, options, sequence=sequence, h=h, l=l, delay=delay,
                      header=ra_header if r else None, r=r, length=length, fqdn_wire=fqdn_wire)


# -- reading captures --------------------------------------------------------------------

def decode_fqdn(data: bytes) -> tuple[str, int]:
    """A wire-format FQDN at the start of ``data``: (name, octets it takes)."""
    name, end = decode_name(data, 0, len(data))
    return name or "", end


def parse_options(data: bytes) -> list[dict[str, Any]]:
    """RA options in wire order as dicts ``{"type", "raw", ...}``; PvD options are decoded
    (``pvd_id``, ``h``, ``l``, ``r``, ``delay``, ``sequence``, ``ra_header``, ``options``).
    Raises ValueError for an option list that does not add up."""
    errors: list[str] = []
    result: list[dict[str, Any]] = []
    for opt_type, raw in walk_options(data, 0, errors, "RA"):
        entry: dict[str, Any] = {"type": opt_type, "raw": raw}
        if opt_type == OPT_PVD:
            flags, sequence, pvd_id, start = pvd_option_head(raw[2:])
            start += 2
            if flags & PVD_FLAG_R:
                entry["ra_header"] = raw[start:start + RA_HEADER_LEN]
                start += RA_HEADER_LEN
            entry.update(pvd_id=pvd_id, h=bool(flags & PVD_FLAG_H), l=bool(flags & PVD_FLAG_L),
                         r=bool(flags & PVD_FLAG_R), delay=flags & PVD_DELAY_MASK, sequence=sequence,
                         options=parse_options(raw[start:]))
        result.append(entry)
    if errors:
        raise ValueError(errors[0])
    return result


def parse_ra(message: bytes) -> dict[str, Any]:
    """A captured ICMPv6 RA (from the type octet) as a dict: header fields and
    :func:`parse_options`."""
    if len(message) < RA_HEADER_LEN or message[0] != ND_ROUTER_ADVERT:
        raise ValueError("not a Router Advertisement")
    hop, flags, lifetime, reachable, retrans = struct.unpack("!BBHII", message[4:RA_HEADER_LEN])
    return {"hop_limit": hop, "flags": flags, "router_lifetime": lifetime,
            "reachable_time": reachable, "retrans_timer": retrans,
            "options": parse_options(message[RA_HEADER_LEN:])}


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


def open_ra_socket(ifname: str, mark: int = 0) -> tuple[socket.socket, int]:
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
    if mark:  # lets nftables tell this sender's RAs from the router's own (lab faults)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter_only(ND_ROUTER_SOLICIT))
    sock.bind((ll, 0, 0, ifindex))
    return sock, ifindex


def load_messages(path: str) -> tuple[dict[str, Any], list[bytes]]:
    """The config file at ``path`` and the RAs it describes."""
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    return config, [build_pvd_ra(spec) for spec in config["ras"]]


def run_sender(ifname: str, messages: list[bytes], interval: float, mark: int = 0,
               reload: Callable[[], list[bytes]] | None = None) -> None:
    """Send ``messages`` periodically and on every RS, until SIGTERM.  With ``reload``, a
    SIGHUP replaces ``messages`` by what it returns and sends them at once."""
    def stop(_sig: int, _frame: Any) -> None:
        raise SystemExit(EXIT_OK)  # leaves select() at once (PEP 475 would otherwise resume it)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    if reload is not None:
        signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGHUP, lambda _sig, _frame: None)
    sock, ifindex = open_ra_socket(ifname, mark)
    next_send = 0.0
    while True:
        now = time.monotonic()
        if now >= next_send:
            for message in messages:
                try:
                    sock.sendto(message, (ALL_NODES, 0, 0, ifindex))
                except OSError:
                    pass  # the link is down (lab fault --down): send again at the next interval
            next_send = now + interval
        ready, _, _ = select.select([sock, wake_r], [], [],
                                    max(0.0, next_send - time.monotonic()))
        if wake_r in ready:
            signals = _drain(wake_r)
            if reload is not None and signal.SIGHUP in signals:
                try:
                    messages = reload()
                except (OSError, ValueError, KeyError) as exc:
                    print(f"ra: reload failed, keeping the old RAs: {exc}", file=sys.stderr,
                          flush=True)
                next_send = 0.0
        if sock in ready:
            sock.recvfrom(2048)  # a Router Solicitation: answer at once (rate: 1 per 0.2 s)
            next_send = min(next_send, time.monotonic() + 0.2)


def _drain(wake: socket.socket) -> set[int]:
    """The signal numbers written to the wakeup socket since the last call."""
    got: set[int] = set()
    while True:
        try:
            data = wake.recv(64)
        except BlockingIOError:
            return got
        if not data:
            return got
        got.update(data)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m pvdrun.lab.ra --config FILE [--lab NAME]``.

    The config is JSON: ``{"ifname": "down0", "interval": 2, "ras": [
    {"pvd_id", "prefix", "routes", "rdnss", "dnssl", "router_lifetime",
    "lifetime", "prefix_lifetime", "top_level_routes", "top_level_all", "h",
    "sequence"}, ...], "mark": 0}``
    (``mark``: the SO_MARK of the sender's socket).  SIGHUP re-reads the file and sends the
    new RAs at once (``lab pvd-info --bump-sequence``).
    """
    parser = argparse.ArgumentParser(prog="pvdrun.lab.ra")
    parser.add_argument("--config", required=True)
    parser.add_argument("--lab", help="lab name (marks the process as the lab's)")
    args = parser.parse_args(argv)
    config, messages = load_messages(args.config)
    run_sender(config["ifname"], messages, float(config.get("interval", 2)),
               int(config.get("mark", 0)), reload=lambda: load_messages(args.config)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
