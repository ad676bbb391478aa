"""Property tests of the Router Advertisement parser (pvdrun/discovery/ra.py), PvD options
with nested options included.

- Round trip: an RA built with the lab's builder (pvdrun/lab/ra.py) from generated PvD IDs,
  flags, RA header copies and nested PIO/RIO/RDNSS/DNSSL options parses back to exactly
  what was built, with no error.
- Robustness: any bytes, and mutations of valid RAs, either parse or raise RaParseError
  (only for a message that is not an RA or is shorter than its header), never another
  exception; what is accepted is well-formed.
- What an accepted RA carries becomes PvDs that pvdd can serialise for its clients.
"""
from __future__ import annotations

import ipaddress
import re
import socket
import struct

import pytest
from hypothesis import example, given, strategies as st

from fixtures.property_settings import PROPERTY
from pvdrun.discovery.assemble import assemble
from pvdrun.config import Config
from pvdrun.discovery.kernel import RTPROT_RA, Address, KernelState, KRoute, Link
from pvdrun.discovery.linkstate import LinkDns
from pvdrun.discovery.ra import (DnsServers, PrefixInfo, RaHeader, RaInfo, RaParseError, RouteInfo,
                                 SearchList, parse_ra)
from pvdrun.discovery.ratable import RaTable
from pvdrun.discovery.rasock import HeardRa
from pvdrun.lab import ra as build

PREFERENCE = {"medium": 0, "high": 1, "low": -1}
HOSTNAME_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*")

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
_ENDS = "abcdefghijklmnopqrstuvwxyz0123456789_"
label = st.one_of(st.sampled_from(_ENDS), st.tuples(
    st.sampled_from(_ENDS), st.text(_ENDS + "-", max_size=12), st.sampled_from(_ENDS)).map("".join))
hostname = st.lists(label, min_size=1, max_size=4).map(".".join)
ipv6 = st.binary(min_size=16, max_size=16).map(lambda b: str(ipaddress.IPv6Address(b)))
network = st.tuples(st.binary(min_size=16, max_size=16), st.integers(0, 128)).map(
    lambda t: str(ipaddress.IPv6Network(t, strict=False)))
preference = st.sampled_from(sorted(PREFERENCE))


@st.composite
def ra_header_args(draw: st.DrawFn) -> dict:
    return {"hop_limit": draw(u8), "managed": draw(st.booleans()), "other": draw(st.booleans()),
            "router_lifetime": draw(u16), "reachable_time": draw(u32),
            "retrans_timer": draw(u32), "preference": draw(preference)}


def expected_header(args: dict) -> RaHeader:
    return RaHeader(hop_limit=args["hop_limit"], managed=args["managed"], other=args["other"],
                    preference=PREFERENCE[args["preference"]],
                    router_lifetime=args["router_lifetime"], reachable_time=args["reachable_time"],
                    retrans_timer=args["retrans_timer"])


@st.composite
def options(draw: st.DrawFn) -> tuple[bytes, dict[str, list]]:
    """Configuration options in a random order: (wire bytes, expected parse by kind)."""
    items: list[tuple[str, bytes, object]] = []
    for prefix, valid, preferred, on_link, auto in draw(st.lists(
            st.tuples(network, u32, u32, st.booleans(), st.booleans()), max_size=2)):
        items.append(("prefixes", build.build_pio(prefix, valid, preferred, on_link, auto),
                      PrefixInfo(prefix, on_link, auto, valid, preferred)))
    for prefix, lifetime, pref in draw(st.lists(st.tuples(network, u32, preference), max_size=2)):
        items.append(("routes", build.build_rio(prefix, lifetime, pref),
                      RouteInfo(prefix, PREFERENCE[pref], lifetime)))
    for servers, lifetime in draw(st.lists(st.tuples(st.lists(ipv6, min_size=1, max_size=3), u32),
                                           max_size=2)):
        items.append(("rdnss", build.build_rdnss(servers, lifetime),
                      DnsServers(tuple(servers), lifetime)))
    for domains, lifetime in draw(st.lists(
            st.tuples(st.lists(hostname, min_size=1, max_size=3), u32), max_size=1)):
        items.append(("dnssl", build.build_dnssl(domains, lifetime),
                      SearchList(tuple(domains), lifetime)))
    items = draw(st.permutations(items))
    expected: dict[str, list] = {"prefixes": [], "routes": [], "rdnss": [], "dnssl": []}
    for kind, _, value in items:
        expected[kind].append(value)
    return b"".join(wire for _, wire, _ in items), expected


@st.composite
def pvd_options(draw: st.DrawFn) -> tuple[bytes, dict]:
    """One PvD option with nested options: (wire bytes, expected PvdOption fields)."""
    pvd_id = draw(hostname)
    sequence, delay = draw(u16), draw(st.integers(0, 15))
    h, l, r = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    header = draw(ra_header_args()) if r else None
    nested, expected = draw(options())
    wire = build.build_pvd_option(pvd_id, sequence=sequence, h=h, l=l, r=r, delay=delay,
                                  ra_header=build.build_ra_header(**header) if header else None,
                                  options=nested)
    expected.update(pvd_id=pvd_id, sequence=sequence, delay=delay, flag_h=h, flag_l=l, flag_r=r,
                    header=expected_header(header) if header else None)
    return wire, expected


@st.composite
def router_adverts(draw: st.DrawFn) -> tuple[bytes, dict]:
    """A whole RA: header, top-level options and PvD options, shuffled."""
    header = draw(ra_header_args())
    top, expected = draw(options())
    pvds = draw(st.lists(pvd_options(), max_size=2))
    parts = draw(st.permutations([(top, None), *pvds]))
    expected.update(header=expected_header(header),
                    pvds=[fields for _, fields in parts if fields is not None])
    return build.build_ra([wire for wire, _ in parts], **header), expected


@st.composite
def mutated_ras(draw: st.DrawFn) -> bytes:
    """A valid RA with a few bytes changed, and perhaps cut short or extended."""
    data = bytearray(draw(router_adverts())[0])
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(u8)
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data) + draw(st.binary(max_size=24))


def option_soup() -> st.SearchStrategy[bytes]:
    """RA header + options of the known types with arbitrary lengths and bodies."""
    option = st.tuples(st.sampled_from([1, 3, 5, 21, 24, 25, 31, 0, 255]), u8,
                       st.binary(max_size=64)).map(lambda t: bytes(t[:2]) + t[2])
    return st.lists(option, max_size=8).map(
        lambda opts: build.build_ra_header() + b"".join(opts))


def check_well_formed(info: RaInfo) -> None:
    """What parse_ra accepted is well-formed."""
    assert all(isinstance(e, str) and e for e in info.errors)
    for group in [info, *info.pvds]:
        for p in group.prefixes:
            ipaddress.IPv6Network(p.prefix)
        for r in group.routes:
            ipaddress.IPv6Network(r.prefix)
            assert r.preference in (-1, 0, 1)
        for d in group.rdnss:
            assert d.servers and all(ipaddress.IPv6Address(s) for s in d.servers)
        for s in group.dnssl:
            assert all(d and d == d.lower() for d in s.domains)
    for pvd in info.pvds:
        assert pvd.pvd_id and pvd.pvd_id == pvd.pvd_id.lower()
        assert 0 <= pvd.delay <= 15 and 0 <= pvd.sequence <= 0xFFFF
        assert (pvd.header is not None) == pvd.flag_r


def parse_or_refuse(data: bytes) -> RaInfo | None:
    """parse_ra(data), or None when it raised RaParseError (the only exception allowed)."""
    try:
        info = parse_ra(data)
    except RaParseError:
        assert len(data) < 16 or data[0] != 134 or data[1] != 0
        return None
    assert len(data) >= 16 and data[0] == 134 and data[1] == 0
    check_well_formed(info)
    return info


@PROPERTY
@given(router_adverts())
def test_round_trip(ra: tuple[bytes, dict]) -> None:
    wire, expected = ra
    info = parse_ra(wire)
    assert info.errors == []
    assert info.header == expected["header"]
    for kind in ("prefixes", "routes", "rdnss", "dnssl"):
        assert getattr(info, kind) == expected[kind], kind
    assert len(info.pvds) == len(expected["pvds"])
    for pvd, fields in zip(info.pvds, expected["pvds"]):
        for key, value in fields.items():
            assert getattr(pvd, key) == value, key


@PROPERTY
@given(st.binary(max_size=300))
@example(b"")
@example(bytes([134, 0]) + bytes(14))
@example(bytes([134, 1]) + bytes(14))
def test_any_bytes_parse_or_raise_ra_parse_error(data: bytes) -> None:
    parse_or_refuse(data)


@PROPERTY
@given(option_soup())
def test_option_soup_never_raises(data: bytes) -> None:
    assert parse_or_refuse(data) is not None


@PROPERTY
@given(mutated_ras())
def test_mutated_ras_parse_or_raise_ra_parse_error(data: bytes) -> None:
    parse_or_refuse(data)


@PROPERTY
@given(hostname, st.binary(min_size=1, max_size=40))
def test_pvd_option_with_garbage_nested_options(pvd_id: str, nested: bytes) -> None:
    """Garbage after a valid PvD ID: the PvD is kept, problems are listed, nothing raises."""
    nested += bytes(-len(nested) % 8)
    info = parse_ra(build.build_ra([build.build_pvd_option(pvd_id, options=nested)]))
    check_well_formed(info)
    assert [p.pvd_id for p in info.pvds] == [pvd_id]


def _pvd_id_wire(labels: list[bytes]) -> bytes:
    return b"".join(bytes([len(x)]) + x for x in labels) + b"\0"


@PROPERTY
@given(st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=3))
@example([b"abc\n", b"example"])
def test_accepted_names_are_hostnames(labels: list[bytes]) -> None:
    """A PvD ID or DNSSL name that parse_ra accepts holds only hostname characters."""
    wire = _pvd_id_wire(labels)
    dnssl = struct.pack("!BBHI", 31, 0, 0, 600) + wire
    dnssl += bytes(-len(dnssl) % 8)
    dnssl = dnssl[:1] + bytes([len(dnssl) // 8]) + dnssl[2:]
    info = parse_ra(build.build_ra([build.build_pvd_option("x", fqdn_wire=wire, options=dnssl)]))
    names = [p.pvd_id for p in info.pvds] + [d for p in info.pvds for s in p.dnssl for d in s.domains]
    for name in names:
        assert HOSTNAME_RE.fullmatch(name), repr(name)


def _pvd_table(message: bytes) -> list:
    """The PvD table pvdd builds when a router on lan0 (fe80::a) sends ``message``."""
    v6 = socket.AF_INET6
    state = KernelState(links={2: Link(index=2, name="lan0", up=True, carrier=True, loopback=False,
                                       carrier_up_count=1, link_kind="veth", arphrd=1)})
    state.addresses = [Address(index=2, family=v6, address="2001:db8:a::10", prefixlen=64,
                               deprecated=False, tentative=False, dadfailed=False,
                               preferred_lifetime=None, valid_lifetime=None)]
    state.routes = [KRoute(family=v6, dst="default", gateway="fe80::a", oif=2, metric=1024,
                           proto=RTPROT_RA, preference=0),
                    KRoute(v6, "2001:db8:a::/64", None, 2, 256, 2, 0)]
    table = RaTable()
    table.add(HeardRa(ifindex=2, source="fe80::a", info=parse_ra(message)), now=0)
    return assemble(state, table, Config(), lambda link: None, lambda link: None, lambda: LinkDns())


@PROPERTY
@given(hostname, st.lists(ipv6, min_size=1, max_size=12, unique=True),
       st.lists(hostname, min_size=1, max_size=12, unique=True))
@example("isp.example", [f"2001:db8:a::{i:x}" for i in range(1, 10)], ["corp.example"])
def test_pvds_from_any_ra_serialise(pvd_id: str, servers: list[str], domains: list[str]) -> None:
    """Whatever an accepted RA carries, the PvDs built from it can be sent to clients
    (to_dict, with the scope line the shim gets), as pvdd does on every change."""
    nested = (build.build_pio("2001:db8:a::/64") + build.build_rdnss(servers)
              + build.build_dnssl(domains))
    pvds = _pvd_table(build.build_ra([build.build_pvd_option(pvd_id, options=nested)],
                                     router_lifetime=1800))
    assert pvds
    for pvd in pvds:
        pvd.to_dict()
