"""pvdd applies what an unpatched kernel ignores inside an RFC 8801 PvD option.

A router namespace sends RAs whose only content is a PvD option (outer router lifetime 0)
carrying a PIO (A flag), a RIO, an RDNSS and an RA header (R flag) with a router lifetime,
all with short lifetimes.  Without pvdd the host gets nothing from them; with pvdd (root)
it gets the EUI-64 SLAAC address tagged ``proto 153``, the nested routes in the PvD's table
(never the main table) and traffic through ``pvdrun --pvd`` reaches a host behind the
router with that source; pvdd's stop keeps the address (it has its lifetimes), its rules
and the PvD's table but for the mark lookup; ``pvdrun daemon --cleanup`` removes them; the
end of the lifetimes removes address and routes.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Callable

import pytest

from fixtures.mininet import MiniNet, net  # noqa: F401 (fixture)
from fixtures.pvdd import Pvdd, start_pvdd  # noqa: F401 (fixture)
from pvdrun.discovery import ra as craft
from pvdrun.discovery.ra import parse_ra
from pvdrun.discovery.ratable import RaTable
from pvdrun.discovery.rasock import HeardRa
from pvdrun.routing.nested import eui64_address, nested_routes, plan_addresses

pytestmark = pytest.mark.root

from fixtures.commands import PVDRUN  # noqa: E402
PREFIX = "2001:db8:77::/64"
FAR_NET = "2001:db8:78::/64"
FAR_HOST = "2001:db8:78::1"
PVD_ID = "nest.example"
LIFETIME = 8  # seconds: every nested element ends this long after the last RA


def test_eui64_matches_rfc4291() -> None:
    """The modified EUI-64 identifier flips the U/L bit and inserts ff:fe (RFC 4291 app. A)."""
    assert eui64_address(PREFIX, "5e:13:8b:e4:4f:52") == "2001:db8:77:0:5c13:8bff:fee4:4f52"
    assert eui64_address("2001:db8:77::/48", "5e:13:8b:e4:4f:52") is None  # SLAAC needs a /64
    assert eui64_address(PREFIX, "not-a-mac") is None


def test_plan_leaves_plainly_advertised_prefixes_to_the_kernel() -> None:
    """A nested prefix also sent outside the PvD option is the kernel's (no pvdd address);
    a nested-only one gets the EUI-64 address, with on-link, RIO and default routes."""
    mac = "5e:13:8b:e4:4f:52"
    nested = craft.pio(PREFIX) + craft.pio("2001:db8:79::/64") + craft.rio(FAR_NET)
    option = craft.pvd_option(PVD_ID, nested, header=craft.ra_header(router_lifetime=600))
    ras = RaTable()
    ras.add(HeardRa(7, "fe80::1", parse_ra(craft.router_advert(option + craft.pio(PREFIX),
                                                               router_lifetime=0))), now=0.0)
    wanted = plan_addresses(ras, {7: mac})
    assert list(wanted) == [(7, "2001:db8:79:0:5c13:8bff:fee4:4f52")]
    assert wanted[(7, "2001:db8:79:0:5c13:8bff:fee4:4f52")].valid_until == 86400.0
    routes = {(r.dst, r.gateway) for r in nested_routes(ras, 7, "lan0", PVD_ID)}
    assert routes == {(PREFIX, None), ("2001:db8:79::/64", None), (FAR_NET, "fe80::1"),
                      ("default", "fe80::1")}


def _nested_only_ra() -> bytes:
    nested = (craft.pio(PREFIX, valid=LIFETIME, preferred=LIFETIME)
              + craft.rio(FAR_NET, lifetime=LIFETIME)
              + craft.rdnss(["2001:db8:77::53"], lifetime=LIFETIME))
    option = craft.pvd_option(PVD_ID, nested, sequence=1,
                              header=craft.ra_header(router_lifetime=LIFETIME))
    return craft.router_advert(option, router_lifetime=0)


def _mac(net: MiniNet, ifname: str) -> str:
    out = net.run("cat", f"/sys/class/net/{ifname}/address", check=True).stdout
    return out.strip()


def _addrs(net: MiniNet) -> str:
    return net.run("ip", "-6", "addr", "show", "dev", "lan0", check=True).stdout


PEER_SERVER = (f"import socket\ns = socket.create_server(('{FAR_HOST}', 7007), family=socket.AF_INET6)\n"
               "while True:\n"
               "    c, peer = s.accept()\n"
               "    c.sendall(peer[0].encode() + b'\\n')\n"
               "    c.close()\n")
TAGGED = ("from pyroute2 import IPRoute\n"
          "with IPRoute() as ipr:\n"
          "    print(' '.join(m.get_attr('IFA_ADDRESS') for m in ipr.get_addr(family=10)"
          " if m.get_attr('IFA_PROTO') == 153))")


def _tagged(net: MiniNet) -> list[str]:
    """Addresses of the host namespace tagged IFA_PROTO 153 (Debian 12's ip does not show it)."""
    return net.run(sys.executable, "-c", TAGGED, check=True).stdout.split()


def _routes(net: MiniNet, table: str = "all") -> list[str]:
    out = net.run("ip", "-6", "route", "show", "table", table, check=True).stdout
    return out.splitlines()


def _pvdd_routes(net: MiniNet) -> list[str]:
    """Routes tagged as pvdd's, but for the tables' markers (``throw 100::TAG``)."""
    return [line for line in _routes(net) if "proto 153" in line and not line.startswith("throw 100::")]


def test_prefix_only_inside_pvd_option(net: MiniNet, start_pvdd: Callable[..., Pvdd]) -> None:
    router = net.add_router("lan0", "rn")
    net.spaces.addresses(router, "r0", "2001:db8:77::1/64")
    net.spaces.addresses(router, "lo", f"{FAR_HOST}/128")
    net.spaces.popen(router, [sys.executable, "-c", PEER_SERVER], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    sender = net.repeat_ra(router, _nested_only_ra(), interval=0.5)
    address = eui64_address(PREFIX, _mac(net, "lan0"))
    assert address is not None

    # without pvdd: the RA is heard (the explicit PvD exists) but the kernel applied nothing
    listing = net.wait_for(lambda: [p for p in net.pvdrun_json("list", "--no-daemon")["pvds"]
                                    if p["pvd_id"] == PVD_ID], what="explicit PvD heard")
    assert listing[0]["dns_servers"] == ["2001:db8:77::53"]  # nested RDNSS is the PvD's DNS
    assert "2001:db8:77:" not in _addrs(net)
    assert not any("2001:db8:78::" in line or line.startswith("default") for line in _routes(net))

    pvdd = start_pvdd(net.host)
    net.wait_for(lambda: address in _addrs(net), what=f"pvdd adds {address}")
    net.wait_for(lambda: any(FAR_NET in line and "proto 153" in line for line in _routes(net)),
                 what="nested RIO route in the PvD's table")
    routes = _routes(net)
    assert any(line.startswith("default via fe80:") and "proto 153" in line for line in routes)
    assert not any(line.startswith("default") or FAR_NET in line for line in _routes(net, "main"))
    assert "dynamic" in _addrs(net)  # added with lifetimes: the kernel expires it on its own
    assert address in _tagged(net)  # IFA_PROTO 153: how pvdd finds exactly its own

    # traffic scoped to the PvD reaches the host behind the router with the SLAAC source
    reply = net.wait_for(lambda: (r := net.run(PVDRUN, "--pvd", PVD_ID, "--socket", pvdd.socket, "--",
                                               "socat", "-T3", "-", f"TCP6:[{FAR_HOST}]:7007")
                                  ).returncode == 0 and r.stdout.strip(),
                         timeout=10, what="reply through the PvD")
    assert reply.strip().strip("[]") == address, reply

    # pvdd stops: the address stays (the kernel expires it) and what leaves from it still
    # uses the PvD's table only; the mark lookup is gone
    assert pvdd.stop(timeout=15) == 0
    assert any(FAR_NET in line for line in _pvdd_routes(net))
    assert address in _tagged(net)
    rules = net.run("ip", "-6", "rule", check=True).stdout
    assert f"from {address} lookup 5" in rules and f"from {address} unreachable proto 153" in rules
    assert not [l for l in rules.splitlines() if "fwmark" in l and " lookup " in l], rules
    done = pvdd.remove_state()
    assert done.returncode == 0, done.stderr
    assert address not in _addrs(net) and not _tagged(net)
    assert not any("proto 153" in line for line in _routes(net))

    # pvdd again, then the router goes quiet: everything ends with its lifetime
    pvdd.start()
    net.wait_for(lambda: address in _addrs(net), what="address back with pvdd")
    os.killpg(sender.pid, signal.SIGTERM)
    sender.wait(timeout=5)
    net.wait_for(lambda: address not in _addrs(net) and not _pvdd_routes(net),
                 timeout=LIFETIME + 15, what="address and routes gone after their lifetime")
    assert pvdd.running()
    assert pvdd.stop(timeout=15) == 0
    assert pvdd.remove_state().returncode == 0
