"""The RA parser (RFC 4861/4191/8106/8801) and the RA table: pure, no namespaces."""
from __future__ import annotations

import random

import pytest

from pvdrun.discovery import ra as craft
from pvdrun.discovery.ra import RaParseError, parse_ra
from pvdrun.discovery.ratable import RaTable
from pvdrun.discovery.rasock import HeardRa


def _pvd_ra(pvd_id: str = "ispa.example", prefix: str = "2001:db8:a::/64", sequence: int = 1,
            lifetime: int = 1800, header: bytes | None = None) -> bytes:
    nested = (craft.pio(prefix, valid=lifetime, preferred=lifetime)
              + craft.rio("2001:db8:a:1::/64", lifetime)
              + craft.rdnss(["2001:db8:a:1::53"], lifetime)
              + craft.dnssl([pvd_id], lifetime))
    return craft.router_advert(craft.pvd_option(pvd_id, nested, sequence=sequence, header=header),
                               router_lifetime=0)


def test_pvd_option_with_nested_options() -> None:
    """RFC 8801: PvD ID, sequence, flags, nested PIO/RIO/RDNSS/DNSSL."""
    info = parse_ra(_pvd_ra(sequence=42))
    assert info.errors == []
    assert info.prefixes == []  # nested options do not leak to the top level
    [pvd] = info.pvds
    assert pvd.pvd_id == "ispa.example" and pvd.sequence == 42
    assert (pvd.flag_h, pvd.flag_l, pvd.flag_r) == (False, False, False)
    assert [p.prefix for p in pvd.prefixes] == ["2001:db8:a::/64"]
    assert [r.prefix for r in pvd.routes] == ["2001:db8:a:1::/64"]
    assert pvd.rdnss[0].servers == ("2001:db8:a:1::53",)
    assert pvd.dnssl[0].domains == ("ispa.example",)


def test_pvd_option_with_ra_header_copy() -> None:
    """R=1: a 16-octet RA header copy sits between the padded name and nested options."""
    info = parse_ra(_pvd_ra(header=craft.ra_header(router_lifetime=600, preference=1)))
    [pvd] = info.pvds
    assert pvd.flag_r and pvd.header is not None
    assert pvd.header.router_lifetime == 600 and pvd.header.preference == 1
    assert [p.prefix for p in pvd.prefixes] == ["2001:db8:a::/64"]


def test_top_level_options() -> None:
    """A plain RA: router lifetime, PIO flags, RIO preference, RDNSS, DNSSL."""
    message = craft.router_advert(craft.pio("2001:db8:b::/64") + craft.rio("2001:db8:b:1::/64",
                                                                          preference=-1)
                                  + craft.rdnss(["2001:db8:b::53", "2001:db8:b::54"])
                                  + craft.dnssl(["ispb.example", "corp.example"]),
                                  router_lifetime=1800)
    info = parse_ra(message)
    assert info.header is not None and info.header.router_lifetime == 1800
    assert info.prefixes[0].autonomous and info.prefixes[0].on_link
    assert info.routes[0].preference == -1
    assert info.rdnss[0].servers == ("2001:db8:b::53", "2001:db8:b::54")
    assert info.dnssl[0].domains == ("ispb.example", "corp.example")


def test_truncated_pvd_option_is_ignored_not_fatal() -> None:
    """A PvD option whose length runs past the message is reported and skipped."""
    good = craft.pio("2001:db8:c::/64")
    bad = bytearray(craft.pvd_option("ispa.example", craft.pio("2001:db8:a::/64")))
    bad[1] += 4  # claims 32 more octets than there are
    info = parse_ra(craft.router_advert(good + bytes(bad)))
    assert info.pvds == []
    assert [p.prefix for p in info.prefixes] == ["2001:db8:c::/64"]
    assert any("runs past" in e for e in info.errors)


@pytest.mark.parametrize("mangle", ["compressed", "overrun", "badlabel", "padding", "noroom_r"])
def test_malformed_pvd_id_is_ignored(mangle: str) -> None:
    """Malformed PvD IDs (compression pointer, label overrun, bad chars, non-zero
    padding, R flag without room for the header) drop just that option."""
    option = bytearray(craft.pvd_option("ispa.example"))
    if mangle == "compressed":
        option[6] = 0xC0
    elif mangle == "overrun":
        option[6] = 60
    elif mangle == "badlabel":
        option[7] = ord(" ")
    elif mangle == "padding":
        option[-1] = 1
    elif mangle == "noroom_r":
        option[2] |= 0x20
    trailer = craft.pio("2001:db8:d::/64")
    info = parse_ra(craft.router_advert(bytes(option) + trailer))
    assert info.pvds == []
    assert info.errors
    assert [p.prefix for p in info.prefixes] == ["2001:db8:d::/64"]


def test_zero_length_option_stops_parsing() -> None:
    info = parse_ra(craft.router_advert(b"\x03\x00" + bytes(6)))
    assert info.errors and info.prefixes == []


def test_not_an_ra() -> None:
    with pytest.raises(RaParseError):
        parse_ra(b"\x85\x00" + bytes(14))
    with pytest.raises(RaParseError):
        parse_ra(bytes(8))


def test_fuzzed_messages_never_crash() -> None:
    """Random mutations and truncations raise nothing but RaParseError."""
    rng = random.Random(8801)
    seeds = [_pvd_ra(), _pvd_ra(header=craft.ra_header(300)),
             craft.router_advert(craft.pio("2001:db8:a::/64") + craft.dnssl(["a.example"]))]
    for _ in range(5000):
        message = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            message[rng.randrange(len(message))] = rng.randrange(256)
        message = message[:rng.randint(0, len(message))]
        try:
            parse_ra(bytes(message))
        except RaParseError:
            pass


def _heard(message: bytes, source: str = "fe80::1", ifindex: int = 2) -> HeardRa:
    return HeardRa(ifindex=ifindex, source=source, info=parse_ra(message))


def test_table_merges_ras_that_split_one_pvd() -> None:
    """Two RAs each carrying part of one PvD (same sequence) merge by PvD ID."""
    table = RaTable()
    first = craft.pvd_option("ispa.example", craft.pio("2001:db8:a::/64"), sequence=5)
    second = craft.pvd_option("ispa.example", craft.rdnss(["2001:db8:a::53"]), sequence=5)
    table.add(_heard(craft.router_advert(first, router_lifetime=0)), now=0)
    table.add(_heard(craft.router_advert(second, router_lifetime=0)), now=1)
    [record] = table.explicit_on(2)
    assert list(record.options.prefixes) == ["2001:db8:a::/64"]
    assert list(record.options.rdnss) == ["2001:db8:a::53"]


def test_two_pvds_from_one_router_address() -> None:
    """Scenario 2: one link-local source, two PvDs, keyed by PvD ID."""
    table = RaTable()
    table.add(_heard(_pvd_ra("ispa.example", "2001:db8:a::/64")), now=0)
    table.add(_heard(_pvd_ra("ispb.example", "2001:db8:b::/64")), now=0)
    assert sorted(r.pvd_id for r in table.explicit_on(2)) == ["ispa.example", "ispb.example"]


def test_new_sequence_replaces_content() -> None:
    table = RaTable()
    table.add(_heard(_pvd_ra(prefix="2001:db8:a::/64", sequence=1)), now=0)
    table.add(_heard(_pvd_ra(prefix="2001:db8:e::/64", sequence=2)), now=1)
    [record] = table.explicit_on(2)
    assert list(record.options.prefixes) == ["2001:db8:e::/64"] and record.sequence == 2


def test_expiry_and_generation() -> None:
    """An explicit PvD whose elements all expire is dropped; heard again, its
    generation grows (so its handle changes, R5)."""
    table = RaTable()
    table.add(_heard(_pvd_ra(lifetime=10)), now=0)
    assert table.next_expiry() == 10
    assert table.expire(now=5) is False
    assert table.expire(now=11) is True
    assert table.explicit_on(2) == []
    table.add(_heard(_pvd_ra(lifetime=10)), now=20)
    assert table.explicit_on(2)[0].generation == 1


def test_zero_lifetime_withdraws() -> None:
    table = RaTable()
    table.add(_heard(_pvd_ra(lifetime=100)), now=0)
    table.add(_heard(_pvd_ra(lifetime=0)), now=1)
    assert table.explicit_on(2) == []


def test_table_is_bounded_per_link() -> None:
    """A flood of forged PvD IDs cannot grow the table without bound."""
    from pvdrun.discovery.ratable import MAX_PER_LINK

    table = RaTable()
    for index in range(MAX_PER_LINK + 10):
        table.add(_heard(_pvd_ra(f"pvd{index}.example")), now=0)
    assert len(table.explicit_on(2)) == MAX_PER_LINK


def test_nduseropt_datagram() -> None:
    """RTM_NEWNDUSEROPT as the kernel frames it: header, options, NDUSEROPT_SRCADDR."""
    import ipaddress
    import socket
    import struct

    from pvdrun.discovery.nduseropt import RTM_NEWNDUSEROPT, parse_datagram

    opts = craft.rdnss(["2001:db8:a::53"])
    body = struct.pack("=BBHiBBHI", socket.AF_INET6, 0, len(opts), 7, 134, 0, 0, 0) + opts
    body += struct.pack("=HH", 20, 1) + ipaddress.IPv6Address("fe80::1").packed
    message = struct.pack("=IHHII", 16 + len(body), RTM_NEWNDUSEROPT, 0, 0, 0) + body
    other = struct.pack("=IHHII", 16, 16, 0, 0, 0)
    [found], saw_other = parse_datagram(message + other)
    assert saw_other and found.ifindex == 7 and found.source == "fe80::1"
    assert found.options.rdnss[0].servers == ("2001:db8:a::53",)
    for cut in range(len(message)):  # truncated datagrams never raise
        parse_datagram(message[:cut])
