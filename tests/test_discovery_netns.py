"""One-shot discovery and the monitor stream in namespaces of our own (no pvdd, no lab).

Routers are dnsmasq (RAs with RDNSS/DNSSL) or a crafted-RA sender (RFC 8801
PvD options); the host side runs the real ``pvdrun`` CLI.
"""
from __future__ import annotations

import json
import os
import queue
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from fixtures.mininet import MiniNet, net  # noqa: F401 (fixture)
from pvdrun.errors import EXIT_UNKNOWN_PVD
from pvdrun.discovery import ra as craft

pytestmark = pytest.mark.root


def _two_isps(net: MiniNet) -> None:
    net.add_router("ispa", "ra", "2001:db8:a::/64", ("192.0.2.10/24", "192.0.2.1/24"),
                   rdnss="2001:db8:a::53", dnssl="ispa.example")
    net.add_router("ispb", "rb", "2001:db8:b::/64", ("192.0.2.10/24", "192.0.2.1/24"),
                   rdnss="2001:db8:b::53", dnssl="ispb.example")


def _listing(net: MiniNet, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    data = net.pvdrun_json("list", "--no-daemon", env=env)
    return {p["pvd_id"]: p for p in data["pvds"]}


def _has_v6(pvd: dict[str, Any] | None, prefix: str) -> bool:
    return bool(pvd) and any(a.startswith(prefix) for a in pvd["addresses"])


def test_one_pvd_per_interface_with_dns_from_ras(net: MiniNet) -> None:
    """Scenario-3 shape: RDNSS/DNSSL heard by the one-shot RS+listen."""
    _two_isps(net)
    pvds = net.wait_for(lambda: (l := _listing(net)) and _has_v6(l.get("implicit:ispb"), "2001:db8:b:")
                        and _has_v6(l.get("implicit:ispa"), "2001:db8:a:") and l,
                        what="both PvDs with SLAAC addresses")
    ispa, ispb = pvds["implicit:ispa"], pvds["implicit:ispb"]
    assert ispa["dns_servers"] == ["2001:db8:a::53"] and ispa["search_domains"] == ["ispa.example"]
    assert ispb["dns_servers"] == ["2001:db8:b::53"] and ispb["search_domains"] == ["ispb.example"]
    assert "192.0.2.10/24" in ispa["addresses"] and "192.0.2.10/24" in ispb["addresses"]
    assert ispa["names"][0] == "ispa" and not ispa["needs_routing"]
    assert any(r["dst"] == "default" and r["gateway"].startswith("fe80::") for r in ispa["routes"])
    assert ispa["scope"].startswith("v=1 id=implicit:ispa ")


def test_unknown_name_exits_3_listing_names(net: MiniNet) -> None:
    _two_isps(net)
    result = net.run(sys.executable, "-m", "pvdrun.cli", "show", "wifi", "--no-daemon")
    assert result.returncode == EXIT_UNKNOWN_PVD
    assert "unknown PvD 'wifi'" in result.stderr
    assert "ispa (implicit:ispa)" in result.stderr and "ispb (implicit:ispb)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_explicit_pvd_from_crafted_ra(net: MiniNet) -> None:
    """RFC 8801 PvD option heard on the raw socket: explicit PvD owning its prefix."""
    router = net.add_router("lan0", "ra", "2001:db8:a::/64", rdnss="2001:db8:a::1")
    nested = (craft.pio("2001:db8:a::/64") + craft.rio("2001:db8:a:1::/64")
              + craft.rdnss(["2001:db8:a:1::53"]) + craft.dnssl(["ispa.example"]))
    # the router's real lifetime (as the lab does): an RA with lifetime 0 from the
    # router's address would make the kernel drop its default route
    net.repeat_ra(router, craft.router_advert(craft.pvd_option("ispa.example", nested, sequence=9),
                                              router_lifetime=1800))
    pvds = net.wait_for(lambda: (l := _listing(net)) and _has_v6(l.get("ispa.example"), "2001:db8:a:")
                        and l, what="explicit PvD ispa.example")
    ispa = pvds["ispa.example"]
    assert ispa["explicit"] and ispa["sequence"] == 9 and ispa["source"] == "ra"
    assert ispa["dns_servers"] == ["2001:db8:a:1::53"] and ispa["search_domains"] == ["ispa.example"]
    assert ispa["names"][0] == "ispa"
    assert any(r["dst"] == "default" for r in ispa["routes"])  # via the router serving its prefix
    assert "implicit:lan0" not in pvds  # nothing left on the link


def test_link_store_dns(net: MiniNet, tmp_path: Path) -> None:
    """Per-link DNS from a resolvconf store (PVDRUN_LINKSTATE_ROOT points at a test tree)."""
    net.add_router("eth9", "ra", None, ("198.18.0.2/24", "198.18.0.1/24"))
    store = tmp_path / "run" / "resolvconf" / "interface"
    store.mkdir(parents=True)
    (store / "eth9.dhclient").write_text("nameserver 198.18.0.53\nsearch corp.example\n")
    env = {**os.environ, "PVDRUN_LINKSTATE_ROOT": str(tmp_path)}
    pvd = _listing(net, env=env)["implicit:eth9"]
    assert pvd["dns_servers"] == ["198.18.0.53"] and pvd["search_domains"] == ["corp.example"]


class Monitor:
    """``pvdrun monitor --json`` in the host netns; a thread queues its lines (selecting on a
    buffered pipe would miss lines that arrive together)."""

    def __init__(self, net: MiniNet, *args: str) -> None:
        self.proc = net.popen(sys.executable, "-m", "pvdrun.cli", "monitor", "--json", *args)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def next(self, timeout: float = 30) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no event within the timeout") from None
        assert line, f"monitor exited: {self.proc.stderr.read() if self.proc.stderr else ''}"
        return json.loads(line)

    def until(self, predicate: Any, timeout: float = 30) -> dict[str, Any]:
        seen = []
        for _ in range(50):
            event = self.next(timeout)
            if predicate(event):
                return event
            seen.append(event.get("event"))
        raise AssertionError(f"no matching event among {seen}")


def test_monitor_stream_and_handles(net: MiniNet) -> None:
    """Address added -> changed; link down -> removed; up -> added with a new handle;
    the handle does not change on a mere configuration change (R5, R15, R17)."""
    net.add_router("ispa", "ra", None, ("192.0.2.10/24", "192.0.2.1/24"))
    monitor = Monitor(net, "--no-daemon")
    snapshot = monitor.next()
    assert snapshot["event"] == "snapshot"
    [pvd] = snapshot["pvds"]
    handle = pvd["handle"]
    net.run("ip", "addr", "add", "198.18.7.7/24", "dev", "ispa", check=True)
    changed = monitor.until(lambda e: e["event"] == "changed")
    assert "198.18.7.7/24" in changed["changed"]["addresses"]["new"]
    assert "handle" not in changed["changed"]
    net.run("ip", "link", "set", "ispa", "down", check=True)
    removed = monitor.until(lambda e: e["event"] == "removed")
    assert removed["pvd_id"] == "implicit:ispa"
    net.run("ip", "link", "set", "ispa", "up", check=True)
    added = monitor.until(lambda e: e["event"] == "added")
    assert added["pvd_id"] == "implicit:ispa" and added["pvd"]["handle"] != handle


USEROPT_LISTENER = r"""
import json, time
from pvdrun.discovery.engine import Discovery
discovery = Discovery(config_path="/dev/null", listen_ras=False)   # no raw socket, like a non-root user
discovery.start_notifications()
end = time.monotonic() + 25
while time.monotonic() < end and not any(r.options.rdnss for r in discovery.ras.routers.values()):
    discovery.wait_for_change(extra_timeout=1)
print(json.dumps([p.to_dict() for p in discovery.pvds()]))
"""


def test_ra_dns_from_netlink_user_options(net: MiniNet) -> None:
    """Without the raw socket, RDNSS/DNSSL still arrive as RTM_NEWNDUSEROPT events."""
    net.add_router("ispa", "ra", "2001:db8:a::/64", rdnss="2001:db8:a::53", dnssl="ispa.example")
    result = net.run(sys.executable, "-c", USEROPT_LISTENER, timeout=60)
    assert result.returncode == 0, result.stderr
    pvds = {p["pvd_id"]: p for p in json.loads(result.stdout)}
    assert pvds["implicit:ispa"]["dns_servers"] == ["2001:db8:a::53"]
    assert pvds["implicit:ispa"]["search_domains"] == ["ispa.example"]


def test_router_gone_shows_on_monitor(net: MiniNet) -> None:
    """A router announcing its departure (router lifetime 0): its default route goes,
    the monitor reports the change and the default PvD change (R10, R17)."""
    router = net.add_router("lan0", "ra", None)
    hello = craft.router_advert(craft.pio("2001:db8:c::/64") + craft.rdnss(["2001:db8:c::53"]),
                                router_lifetime=1800)
    net.wait_for(lambda: net.run("ip", "-6", "addr", "show", "dev", "lan0").returncode == 0,
                 what="lan0")
    monitor = Monitor(net, "--no-daemon")
    assert monitor.next()["event"] == "snapshot"
    net.send_ra(router, hello)
    became_default = monitor.until(lambda e: e["event"] == "default")
    assert became_default["new"] == "implicit:lan0"
    net.send_ra(router, craft.router_advert(b"", router_lifetime=0))
    gone = monitor.until(lambda e: e["event"] == "default")
    assert gone == {**gone, "old": "implicit:lan0", "new": None}
    listing = _listing(net)
    assert not any(r["dst"] == "default" for r in listing["implicit:lan0"]["routes"])


KINDS = r"""
import json
from pvdrun.discovery.kernel import snapshot
from pvdrun.discovery.linkstate import link_kind
print(json.dumps({l.name: link_kind(l) for l in snapshot().links.values()}))
"""


def test_kind_aliases_from_the_link(net: MiniNet) -> None:
    """tun -> vpn; a veth is not ethernet (no device behind it)."""
    net.add_router("ispa", "ra", None, ("192.0.2.10/24", "192.0.2.1/24"))
    net.run("ip", "tuntap", "add", "dev", "tun9", "mode", "tun", check=True)
    result = net.run(sys.executable, "-c", KINDS)
    assert result.returncode == 0, result.stderr
    kinds = json.loads(result.stdout)
    assert kinds["tun9"] == "vpn"
    assert kinds["ispa"] is None and kinds["lo"] is None


BURST_LISTENER = r"""
import json, subprocess, sys
from pvdrun.discovery.engine import Discovery
discovery = Discovery(config_path="/dev/null", listen_ras=False)
discovery.start_notifications()
discovery.pvds()

def addresses():
    return sorted(a for p in discovery.pvds() if "ispa" in p.interfaces for a in p.addresses)

result = {}
# One change: the round it wakes up takes in all of its messages (address, local and
# prefix routes), so the dump right after shows it and nothing is left for another round.
subprocess.run(["ip", "addr", "add", "198.18.7.1/24", "dev", "ispa"], check=True)
result["woke"] = discovery.wait_for_change(extra_timeout=20)
result["after_one"] = addresses()
result["leftover"] = discovery.wait_for_change(extra_timeout=0.5)
# A burst (20 adds, 19 deletes): rounds until quiet end with the kernel's final table.
batch = "".join(f"address add 198.18.8.{i}/32 dev ispa\n" for i in range(1, 21))
batch += "".join(f"address del 198.18.8.{i}/32 dev ispa\n" for i in range(1, 20))
subprocess.run(["ip", "-batch", "-"], input=batch, text=True, check=True)
rounds = 0
while discovery.wait_for_change(extra_timeout=0.5):
    rounds += 1
result["rounds"] = rounds
result["after_burst"] = addresses()
print(json.dumps(result))
"""


def test_change_processed_in_one_round_and_burst_ends_consistent(net: MiniNet) -> None:
    """The engine behind monitor and pvdd (R17): the first notification is handled at once
    (drain, then the rest of the burst until it is quiet), so one change is one round whose
    dump shows it, with no message left over for a spurious second round; after a burst of
    adds and deletes, the rounds end with the kernel's final table."""
    net.add_router("ispa", "ra", None, ("192.0.2.10/24", "192.0.2.1/24"))
    result = net.run(sys.executable, "-c", BURST_LISTENER, timeout=90)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["woke"] is True
    assert found["after_one"] == ["192.0.2.10/24", "198.18.7.1/24"]
    assert found["leftover"] is False
    assert found["rounds"] >= 1
    assert found["after_burst"] == ["192.0.2.10/24", "198.18.7.1/24", "198.18.8.20/32"]
