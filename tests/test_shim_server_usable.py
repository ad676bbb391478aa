"""``pvd_dns_server_usable`` (pvd.h, version 3) through the cffi binding, without root or a
network: which of a PvD's DNS servers the shim's resolver, and so the Python one, may ask."""
from __future__ import annotations

import errno

import pytest

from pvdrun.model import HANDLE_NULL, Pvd
from pvdrun.shim import binding

ONE_LINK = Pvd(pvd_id="a.example", handle=0x5EE1, interfaces=["a0"], ifindexes=[2],
               addresses=["2001:db8:a::2/64", "fe80::2/64"])
V4_ONLY = Pvd(pvd_id="v4.example", handle=0x5EE2, interfaces=["a0"], ifindexes=[2], addresses=["10.1.0.2/24"])
TWO_LINKS = Pvd(pvd_id="ab.example", handle=0x5EE3, interfaces=["a0", "b0"], ifindexes=[2, 3],
                addresses=["2001:db8:a::2/64", "10.1.0.2/24"])


def test_version_three() -> None:
    assert binding.lib().PVD_API_VERSION >= 3


@pytest.mark.parametrize("pvd,server,usable", [
    (ONE_LINK, "2001:db8:53::1", True),      # an address of the server's family
    (ONE_LINK, "10.0.0.53", False),          # none of its family
    (V4_ONLY, "10.0.0.53", True),
    (V4_ONLY, "2001:db8:53::1", False),
    (ONE_LINK, "fe80::1%a0", True),          # zoned to the PvD's interface, by name
    (ONE_LINK, "fe80::1%2", True),           # by index
    (ONE_LINK, "fe80::1%b0", False),         # another interface
    (ONE_LINK, "fe80::1%3", False),
    (ONE_LINK, "fe80::1", True),             # no zone: the PvD's only link
    (V4_ONLY, "fe80::1%a0", True),           # its link: the link's own link-local address
    (TWO_LINKS, "fe80::1", False),           # no zone, two links: which one?
    (TWO_LINKS, "fe80::1%b0", True),
    (TWO_LINKS, "fe80::1%3", True),
    (TWO_LINKS, "fe80::1%c0", False),
])
def test_which_servers_a_pvd_can_ask(pvd: Pvd, server: str, usable: bool) -> None:
    assert binding.dns_server_usable(pvd.to_scope(), server) is usable


def test_the_null_pvd_asks_none() -> None:
    null = f"v=1 id=null handle={HANDLE_NULL}"
    for server in ["10.0.0.53", "2001:db8:53::1", "fe80::1%a0"]:
        assert binding.dns_server_usable(null, server) is False


@pytest.mark.parametrize("line,server", [
    ("v=1 id=broken", "10.0.0.53"),           # no handle, no interface
    ("", "10.0.0.53"),
    (ONE_LINK.to_scope(), "not-an-address"),
    (ONE_LINK.to_scope(), "10.0.0.53%a0"),     # an IPv4 address has no zone
])
def test_malformed_line_or_server_is_einval(line: str, server: str) -> None:
    with pytest.raises(OSError) as caught:
        binding.dns_server_usable(line, server)
    assert caught.value.errno == errno.EINVAL
