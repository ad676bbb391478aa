"""Building the PvD table from synthetic kernel state: ownership, splits, names, default."""
from __future__ import annotations

import pytest

from pvdrun.discovery import ra as craft
from pvdrun.discovery.assemble import assemble
from pvdrun.config import Config, ConfiguredPvd
from pvdrun.discovery.kernel import KernelState, Link
from pvdrun.discovery.linkstate import LinkDns
from pvdrun.discovery.ratable import RaTable
from pvdrun.discovery.names import PvdLookupError as ResolveError, lookup as resolve
from pvdrun.model import make_handle

from fixtures.kernel_state import V6, RA_A, RA_B, make_link, make_addr, default_route, build_pvds, hear, scenario1, shared_link_with_detour

def test_explicit_pvds_own_their_prefixes() -> None:
    state, table = scenario1()
    pvds = {p.pvd_id: p for p in build_pvds(state, table)}
    assert set(pvds) == {"ispa.example", "ispb.example", "implicit:lan0"}
    ispa = pvds["ispa.example"]
    assert ispa.explicit and ispa.addresses == ["2001:db8:a::10/64"]  # not deprecated (R16)
    assert ispa.dns_servers == ["2001:db8:a:1::53"] and ispa.search_domains == ["ispa.example"]
    assert [r.gateway for r in ispa.routes if r.dst == "default"] == [RA_A]
    assert pvds["implicit:lan0"].addresses == ["192.0.2.10/24"]
    assert all(p.needs_routing for p in pvds.values())
    assert ispa.handle == make_handle("ispa.example", 2, 1, 0)
    assert ispa.names[0] == "ispa"


def test_route_via_another_pvds_router_is_nobodys_but_its_routers() -> None:
    """A route belongs to a PvD by its next hop, not by its destination: the host route to
    B's DNS server via A's router is not B's (nor the implicit remainder's); B keeps its RIO
    route via its own router and its on-link route."""
    pvds = {p.pvd_id: p for p in shared_link_with_detour()}
    held = {(r.dst, r.gateway) for r in pvds["ispb.example"].routes}
    assert ("2001:db8:b:1::53/128", RA_A) not in held, held
    assert {("2001:db8:b:1::/64", RA_B), ("2001:db8:b:2::/64", None), ("default", RA_B)} <= held, held
    assert not [r for p in pvds.values() for r in p.routes if r.dst == "2001:db8:b:1::53/128"]
    assert RA_A not in pvds["ispb.example"].routers


def test_interface_name_shared_by_pvds_is_ambiguous() -> None:
    state, table = scenario1()
    pvds = build_pvds(state, table)
    with pytest.raises(ResolveError) as info:
        resolve(pvds, "lan0")
    assert info.value.ambiguous and len(info.value.candidates) == 3
    assert resolve(pvds, "ispb").pvd_id == "ispb.example"
    assert resolve(pvds, "ISPB.example.").pvd_id == "ispb.example"
    with pytest.raises(ResolveError) as unknown:
        resolve(pvds, "ispc")
    assert not unknown.value.ambiguous and "ispa (ispa.example)" in unknown.value.candidates


def test_default_is_lowest_metric_then_ipv6() -> None:
    """R9: IPv4 metric 100 beats IPv6 1024; on equal metric IPv6 wins."""
    state, table = scenario1()
    default = [p for p in build_pvds(state, table) if p.is_default]
    assert [p.pvd_id for p in default] == ["implicit:lan0"]
    state.routes[2].metric = 1024
    default = [p for p in build_pvds(state, table) if p.is_default]
    assert [p.pvd_id for p in default] == ["ispa.example"]  # IPv6 tie, then by ID


def test_configured_default_and_overrides() -> None:
    state, table = scenario1()
    config = Config(default="home", pvds=[ConfiguredPvd(name="home", pvd_id="ispb.example",
                                                        dns=["2001:db8::53"],
                                                        attributes={"metered": True})])
    pvds = {p.pvd_id: p for p in build_pvds(state, table, config)}
    ispb = pvds["ispb.example"]
    assert ispb.is_default and ispb.names[0] == "home"
    assert ispb.dns_servers == ["2001:db8::53"] and ispb.attributes["metered"] is True


def test_implicit_split_per_router() -> None:
    """Two routers on one link with different prefixes and no PvD option."""
    state = KernelState(links={2: make_link(2, "lan0")})
    state.addresses = [make_addr(2, "2001:db8:a::10"), make_addr(2, "2001:db8:b::10")]
    state.routes = [default_route(2, RA_A), default_route(2, RA_B)]
    table = RaTable()
    for source, letter in ((RA_A, "a"), (RA_B, "b")):
        hear(table, source, craft.router_advert(craft.pio(f"2001:db8:{letter}::/64")
                                                 + craft.dnssl([f"isp{letter}.example"])))
    pvds = {p.pvd_id: p for p in build_pvds(state, table)}
    assert set(pvds) == {f"implicit:lan0:{RA_A}", f"implicit:lan0:{RA_B}"}
    split_a = pvds[f"implicit:lan0:{RA_A}"]
    assert split_a.addresses == ["2001:db8:a::10/64"] and split_a.search_domains == ["ispa.example"]
    assert split_a.needs_routing
    # short, stable names, listed first, and found by lookup as the ID still is
    assert split_a.names[:2] == ["lan0/1", "lan0/2001:db8:a::"] and split_a.name == "lan0/1"
    assert pvds[f"implicit:lan0:{RA_B}"].names[:2] == ["lan0/2", "lan0/2001:db8:b::"]
    table_list = list(pvds.values())
    for typed, expected in (("lan0/2", RA_B), ("lan0/2001:db8:a::", RA_A), (f"implicit:lan0:{RA_B}", RA_B)):
        assert resolve(table_list, typed).pvd_id == f"implicit:lan0:{expected}"


def test_one_pvd_per_interface_and_resolv_conf_fallback() -> None:
    """Scenario 3 shape; resolv.conf only feeds the default PvD, when it has no DNS."""
    state = KernelState(links={2: make_link(2, "ispa"), 3: make_link(3, "ispb"),
                               4: Link(4, "down0", True, False, False, 0, None, 1)})
    state.addresses = [make_addr(2, "192.0.2.10", 24), make_addr(3, "192.0.2.10", 24),
                       make_addr(3, "2001:db8:b::10", tentative=True)]
    state.routes = [default_route(2, "192.0.2.1", 100), default_route(3, "192.0.2.1", 200)]
    pvds = build_pvds(state, RaTable(), fallback=LinkDns(servers=["198.51.100.53"], store="resolv.conf"))
    assert [p.pvd_id for p in pvds] == ["implicit:ispa", "implicit:ispb"]
    assert pvds[0].is_default and pvds[0].dns_servers == ["198.51.100.53"]
    assert pvds[1].dns_servers == [] and pvds[1].addresses == ["192.0.2.10/24"]
    assert not pvds[0].needs_routing


def test_link_local_rdnss_keeps_the_link_it_was_heard_on() -> None:
    """RFC 8106: a router may announce its own link-local address.  The same fe80::1 on two
    links is two servers, each held by the PvD of its own link with that link as its zone;
    multicast and unspecified "servers" are dropped."""
    state = KernelState(links={2: make_link(2, "lan0"), 3: make_link(3, "lan1")})
    state.addresses = [make_addr(2, "2001:db8:a::10"), make_addr(3, "2001:db8:b::10")]
    state.routes = [default_route(2, RA_A), default_route(3, RA_B)]
    table = RaTable()
    hear(table, RA_A, craft.router_advert(craft.pio("2001:db8:a::/64")
                                           + craft.rdnss(["fe80::1", "ff02::fb", "::"])), ifindex=2)
    hear(table, RA_B, craft.router_advert(craft.pio("2001:db8:b::/64") + craft.rdnss(["fe80::1"])),
          ifindex=3)
    pvds = {p.pvd_id: p for p in build_pvds(state, table)}
    assert pvds["implicit:lan0"].dns_servers == ["fe80::1%lan0"]
    assert pvds["implicit:lan1"].dns_servers == ["fe80::1%lan1"]
    assert "dns=fe80::1%lan0" in pvds["implicit:lan0"].to_scope()
    assert pvds["implicit:lan1"].to_dict()["dns_servers"] == ["fe80::1%lan1"]


def test_link_local_server_from_a_store_or_resolv_conf_is_the_links() -> None:
    """A per-link store's zone (name or index) must be its own link's; resolv.conf's link-local
    nameserver serves the default PvD only when its zone is that PvD's link."""
    state = KernelState(links={2: make_link(2, "lan0")})
    state.addresses = [make_addr(2, "192.0.2.10", 24)]
    state.routes = [default_route(2, "192.0.2.1", 100)]
    stores = {2: LinkDns(servers=["fe80::53%2", "fe80::54%lan9", "fe80::55"])}
    pvds = assemble(state, RaTable(), Config(), lambda link: stores.get(link.index), lambda link: None,
                    LinkDns)
    assert pvds[0].dns_servers == ["fe80::53%lan0", "fe80::55%lan0"]
    for fallback, expected in ((["fe80::1%lan0"], ["fe80::1%lan0"]), (["fe80::1%eth7"], [])):
        pvds = build_pvds(state, RaTable(), fallback=LinkDns(servers=fallback, store="resolv.conf"))
        assert pvds[0].is_default and pvds[0].dns_servers == expected


def test_link_local_rdnss_inside_a_pvd_option_is_that_pvds_on_its_link() -> None:
    """An RFC 8801 PvD option may nest RDNSS fe80::1: the explicit PvD holds it with its link."""
    state, table = scenario1()
    nested = craft.pio("2001:db8:a::/64") + craft.rdnss(["fe80::1"])
    hear(table, RA_A, craft.router_advert(craft.pvd_option("ispa.example", nested, sequence=1),
                                           router_lifetime=0))
    pvds = {p.pvd_id: p for p in build_pvds(state, table)}
    assert pvds["ispa.example"].dns_servers == ["fe80::1%lan0"]
    assert "dns=fe80::1%lan0" in pvds["ispa.example"].to_scope().split()
    assert "fe80::1%lan0" not in pvds["ispb.example"].dns_servers


def test_link_local_rdnss_from_an_nd_user_option_takes_its_ifindex() -> None:
    """Without the raw socket (pvdd unprivileged, monitor), RDNSS fe80::1 arrives as an
    RTM_NEWNDUSEROPT event: its ifindex is the link, and the zone."""
    import ipaddress
    import struct

    from pvdrun.discovery.nduseropt import RTM_NEWNDUSEROPT, parse_datagram

    opts = craft.rdnss(["fe80::1"])
    body = struct.pack("=BBHiBBHI", V6, 0, len(opts), 3, 134, 0, 0, 0) + opts
    body += struct.pack("=HH", 20, 1) + ipaddress.IPv6Address(RA_B).packed
    [event], _ = parse_datagram(struct.pack("=IHHII", 16 + len(body), RTM_NEWNDUSEROPT, 0, 0, 0) + body)
    state = KernelState(links={2: make_link(2, "lan0"), 3: make_link(3, "lan1")})
    state.addresses = [make_addr(2, "2001:db8:a::10"), make_addr(3, "2001:db8:b::10")]
    table = RaTable()
    assert table.add_user_options(event.ifindex, event.source, event.options, now=0)
    pvds = {p.pvd_id: p for p in build_pvds(state, table)}
    assert pvds["implicit:lan1"].dns_servers == ["fe80::1%lan1"]
    assert pvds["implicit:lan0"].dns_servers == []
