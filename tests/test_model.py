"""The PvD model contract: handles (R5, R11, R13), serialisation, scope line."""
from __future__ import annotations

import pytest

from pvdrun.model import (HANDLE_NULL, HANDLE_UNSPEC, Pvd, Route, link_dns_server, make_handle, parse_scope,
                          zone_interface)


def test_handle_is_stable_for_one_association() -> None:
    """R5: the same PvD on the same association keeps its handle."""
    assert make_handle("ispa.example", 2, 1) == make_handle("ispa.example", 2, 1)


@pytest.mark.parametrize("other", [("ispa.example", 2, 2, 0), ("ispa.example", 2, 1, 1),
                                   ("ispa.example", 3, 1, 0), ("ispb.example", 2, 1, 0)])
def test_handle_changes_on_reassociation(other: tuple[str, int, int, int]) -> None:
    """R5: a new carrier-up count, generation, link or ID gives another handle."""
    assert make_handle("ispa.example", 2, 1, 0) != make_handle(*other)


def test_handles_never_reserved() -> None:
    """R11/R13: no derived handle equals the unspecified or null handle."""
    for index in range(2000):
        handle = make_handle(f"implicit:eth{index}", index, index % 7)
        assert handle not in (HANDLE_UNSPEC, HANDLE_NULL)
        assert 0 < handle < 2 ** 31


def _sample() -> Pvd:
    return Pvd(pvd_id="ispa.example", handle=make_handle("ispa.example", 2, 1), explicit=True,
               names=["ispa"], interfaces=["lan0"], ifindexes=[2],
               addresses=["2001:db8:a::10/64", "192.0.2.10/24"],
               routes=[Route(dst="default", gateway="fe80::1", ifname="lan0", metric=1024,
                             origin="ra")],
               dns_servers=["2001:db8:a:1::53"], search_domains=["ispa.example"], sequence=7,
               flags={"H": False, "L": False, "R": False}, needs_routing=True,
               attributes={"metered": True})


def test_dict_round_trip_keeps_every_attribute() -> None:
    """R18: unknown attributes pass through to_dict/from_dict unchanged."""
    pvd = _sample()
    again = Pvd.from_dict(pvd.to_dict())
    assert again == pvd
    assert again.to_dict()["attributes"] == {"metered": True}


def test_scope_line_carries_the_pvd() -> None:
    """The scope line (shim contract) holds id, handle, interface, addresses and DNS."""
    scope = parse_scope(_sample().to_dict()["scope"])
    assert scope["id"] == ["ispa.example"]
    assert scope["if"] == ["lan0:2"]
    assert scope["addr"] == ["2001:db8:a::10", "192.0.2.10"]
    assert scope["dns"] == ["2001:db8:a:1::53"]
    assert scope["srcbind"] == ["1"]


def test_link_local_dns_server_is_held_with_its_link() -> None:
    assert link_dns_server("fe80::1", "lan0", 3) == "fe80::1%lan0"
    assert link_dns_server("FE80::0001%3", "lan0", 3) == "fe80::1%lan0"
    assert link_dns_server("fe80::1%lan0", "lan0", 3) == "fe80::1%lan0"
    assert link_dns_server("fe80::1%4", "lan0", 3) is None  # learned for another link
    assert link_dns_server("2001:db8::53", "lan0", 3) == "2001:db8::53"
    for not_a_server in ("ff02::fb", "::", "224.0.0.251", "0.0.0.0", "nonsense"):
        assert link_dns_server(not_a_server, "lan0", 3) is None
    assert zone_interface("4", ["lan0", "lan1"], [3, 4]) == "lan1"
    assert zone_interface("lan2", ["lan0", "lan1"], [3, 4]) is None


def test_scope_line_keeps_the_zone_of_a_link_local_server() -> None:
    pvd = Pvd(pvd_id="implicit:lan0", handle=5, interfaces=["lan0"], ifindexes=[3],
              addresses=["2001:db8:a::10/64"], dns_servers=["fe80::1%lan0", "2001:db8:a::53"])
    line = pvd.to_scope()
    assert "dns=fe80::1%lan0 dns=2001:db8:a::53" in line
    assert parse_scope(line)["dns"] == ["fe80::1%lan0", "2001:db8:a::53"]
    assert Pvd.from_dict(pvd.to_dict()).dns_servers == pvd.dns_servers
    for bad in (["fe80::1%lan1"], ["ff02::fb"], ["not-an-address"]):  # no scope line: the launcher refuses
        pvd.dns_servers = bad
        assert pvd.to_dict()["scope"] is None
    pvd.dns_servers = ["fe80::1%lan1"]  # another link's server
    with pytest.raises(ValueError):
        pvd.to_scope()
    assert pvd.to_dict()["scope"] is None
