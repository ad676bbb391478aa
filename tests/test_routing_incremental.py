"""pvdd's incremental routing sync (docs/routing.md, "How a sync works") leaves the kernel
exactly as a full sync would.

* The same sequence of PvD tables and kernel changes, in two fresh network namespaces: in
  one, pvdd's routing syncs from what it remembers (its own changes and the rule and route
  notifications); in the other it reads the kernel again before every sync (the full sync).
  The changes include some made behind pvdd's back: one of its rules deleted, a route of
  its tables deleted, a link taken down and up (IPv4 flushes its routes without a
  notification), a link's last IPv4 address deleted.  After every step the rules, the routes
  of pvdd's tables and the nftables table are the same in both, and the incremental side
  dumped everything only once (at start).
* A running pvdd through real changes (addresses added and deleted, a link down and up, a
  route added, one of its rules deleted by hand): the deleted rule is back after the next
  change, and a new pvdd taking over after a crash (a full sync) changes nothing.
"""
from __future__ import annotations

import json
import signal
import sys
import time
from typing import Any

import pytest
from fixtures.netns import IP, Namespaces, sh, wait_for
from fixtures.pvdd import Pvdd

pytestmark = pytest.mark.root

#: Run inside a namespace: argv[1] "incremental" or "full"; prints a JSON list of states.
SCENARIO = r'''
import copy, json, logging, subprocess, sys
from pvdrun.config import RoutingConfig
from pvdrun.discovery.ratable import RaTable
from pvdrun.model import Pvd, Route
from pvdrun.routing.lifecycle import PvddRouting

logging.basicConfig(level=logging.ERROR)
full = sys.argv[1] == "full"

def out(*argv):
    return subprocess.run(argv, capture_output=True, text=True).stdout

def state():
    lines = []
    for family in ("-4", "-6"):
        lines += ["rule " + l for l in out("ip", "-d", family, "rule").splitlines() if "proto 153" in l]
        lines += ["route " + l for l in out("ip", "-d", family, "route", "show", "table", "all", "proto", "153").splitlines()]
    return lines + ["nft " + l for l in out("nft", "list", "table", "inet", "pvdd").splitlines()]

def ifindex(name):
    return int(open(f"/sys/class/net/{name}/ifindex").read())

def ip(*argv):
    subprocess.run(["ip", *argv], check=False, capture_output=True)

v0, d0 = ifindex("v0"), ifindex("d0")
A = Pvd("a.example", 1, explicit=True, interfaces=["v0"], ifindexes=[v0], addresses=["2001:db8:a::10/64"],
        routes=[Route("2001:db8:a::/64", None, "v0", 256), Route("default", "fe80::1", "v0", 1024)],
        needs_routing=True)
B = Pvd("b.example", 2, explicit=True, interfaces=["v0"], ifindexes=[v0], addresses=["2001:db8:b::10/64"],
        routes=[Route("2001:db8:b::/64", None, "v0", 256), Route("default", "fe80::2", "v0", 1024)],
        needs_routing=True, attributes={"policy": {"restricted": True, "users": [], "groups": []}})
C = Pvd("implicit:d0", 3, interfaces=["d0"], ifindexes=[d0], addresses=["198.51.100.2/24"],
        routes=[Route("198.51.100.0/24", None, "d0", 0), Route("default", "198.51.100.1", "d0", 0)])
steps = [
    ("start", [], [A, B, C]),
    ("a rule deleted by hand", [["-6", "rule", "del", "priority", "5000", "fwmark", "0x5001/0xffff"]], [A, B, C]),
    ("a route deleted by hand", [["-6", "route", "del", "default", "via", "fe80::1", "dev", "v0", "table", "5000"]], [A, B, C]),
    ("d0 down", [["link", "set", "d0", "down"]], [A, B, C]),
    ("d0 up", [["link", "set", "d0", "up"]], [A, B, C]),
    ("b goes", [], [A, C]),
    ("d0's last IPv4 address deleted", [["addr", "del", "198.51.100.2/24", "dev", "d0"]], [A, C]),
    ("d0's address back", [["addr", "add", "198.51.100.2/24", "dev", "d0"]], [A, C]),
    ("b back", [], [A, B, C]),
    ("an IPv4 rule deleted by hand, a goes", [["-4", "rule", "del", "priority", "5003"]], [B, C]),
    ("everything goes", [], []),
    ("a back", [], [A]),
]
cfg = RoutingConfig()
routing = PvddRouting.start(cfg, [], RaTable(), "/nonexistent/sysctls-record.json")
result = []
for name, actions, pvds in steps:
    for argv in actions:
        ip(*argv)
    if full:
        routing.tables.resync()
    pvds = copy.deepcopy(pvds)
    routing.sync(pvds, RaTable(), cfg)
    result.append({"step": name, "marks": sorted((p.pvd_id, p.mark, p.attributes.get("table")) for p in pvds),
                   "state": state()})
routing.stop([], cfg)
result.append({"step": "stopped", "state": state(), "dumps": routing.tables.dumps})
print(json.dumps(result))
'''


def run_scenario(nets: Namespaces, mode: str) -> list[dict[str, Any]]:
    ns = nets.add(f"pvdinc-{mode}")
    for ifname, peer in (("v0", "v1"), ("d0", "d1")):
        sh(IP, "-n", ns, "link", "add", ifname, "type", "veth", "peer", "name", peer)
        for link in (ifname, peer):
            sh(IP, "-n", ns, "link", "set", link, "up")
    nets.addresses(ns, "v0", "2001:db8:a::10/64", "2001:db8:b::10/64")
    nets.addresses(ns, "d0", "198.51.100.2/24")
    done = nets.run(ns, [sys.executable, "-c", SCENARIO, mode], timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_incremental_sync_equals_full_sync() -> None:
    """Step by step, the incremental sync and the full one leave the same kernel state."""
    with Namespaces() as nets:
        incremental = run_scenario(nets, "incremental")
        full = run_scenario(nets, "full")
    assert [s["step"] for s in incremental] == [s["step"] for s in full]
    for inc, ref in zip(incremental, full):
        assert inc.get("marks") == ref.get("marks"), inc["step"]
        assert inc["state"] == ref["state"], inc["step"]
    first = incremental[0]["state"]
    assert any("fwmark 0x5001/0xffff lookup 5000" in l for l in first), first
    assert any("default via 198.51.100.1 dev d0 table 5002" in l for l in first), first
    # the rule and the route deleted by hand are back at the next sync
    for step in incremental[1:3]:
        assert sorted(step["state"]) == sorted(first), step["step"]
    # down, the link's IPv4 routes are gone (the kernel refuses them); up again, they are back
    down = {s["step"]: s["state"] for s in incremental}["d0 down"]
    assert not any("table 5002" in l and "198.51.100" in l for l in down), down
    assert sorted({s["step"]: s["state"] for s in incremental}["d0 up"]) == sorted(first)
    # the incremental side read everything from the kernel once, at start
    assert incremental[-1]["dumps"]["full"] == 1, incremental[-1]["dumps"]
    assert full[-1]["dumps"]["full"] == len(full), full[-1]["dumps"]  # start, then before every step


def pvdd_state(ns: str) -> list[str]:
    """pvdd's rules, the routes of its tables and its nftables table, as `ip`/`nft` list them."""
    lines: list[str] = []
    for family in ("-4", "-6"):
        lines += ["rule " + l for l in sh(IP, "-d", family, "rule", ns=ns).stdout.splitlines() if "proto 153" in l]
        lines += ["route " + l for l in sh(IP, "-d", family, "route", "show", "table", "all", "proto", "153",
                                              ns=ns).stdout.splitlines()]
    nft = sh("nft", "list", "table", "inet", "pvdd", ns=ns, check=False).stdout.splitlines()
    return sorted(lines) + ["nft " + l for l in nft]


def settled(ns: str, daemon: Pvdd, check: Any = None) -> list[str]:
    """The state once it stopped changing for 0.5 s (and ``check(state)`` holds)."""
    def stable() -> list[str] | None:
        before = pvdd_state(ns)
        time.sleep(0.5)
        after = pvdd_state(ns)
        if before == after and (check is None or check(after)):
            return after
        return None
    assert daemon.running(), daemon.log_text()
    return wait_for(stable, timeout=20, what="pvdd's routing settled", interval=0.1)


def test_running_pvdd_restores_a_deleted_rule_and_matches_a_fresh_one() -> None:
    """Through real changes, pvdd's state stays what a new pvdd (a full sync) makes of it."""
    with Namespaces() as nets:
        ns = nets.add("pvdinc-daemon")
        sh(IP, "-n", ns, "link", "add", "bm0", "type", "veth", "peer", "name", "bm1")
        for link in ("bm0", "bm1"):
            sh(IP, "-n", ns, "link", "set", link, "up")
        daemon = Pvdd(ns, log_level="debug")
        try:
            daemon.start()
            nets.addresses(ns, "bm0", "10.250.0.1/24")
            state = settled(ns, daemon, lambda s: any("from 10.250.0.1 lookup" in l for l in s))
            nets.addresses(ns, "bm0", "2001:db8:250::1/64")
            sh(IP, "-n", ns, "route", "add", "10.99.0.0/16", "via", "10.250.0.2", "dev", "bm0")
            state = settled(ns, daemon, lambda s: any("10.99.0.0/16 via 10.250.0.2" in l for l in s))
            sh(IP, "-n", ns, "link", "set", "bm0", "down")
            settled(ns, daemon, lambda s: not any("10.99.0.0/16" in l for l in s))
            sh(IP, "-n", ns, "link", "set", "bm0", "up")
            settled(ns, daemon, lambda s: any("from 10.250.0.1 lookup" in l for l in s))
            # the kernel flushed the main table's route with the link: added again, it is back
            sh(IP, "-n", ns, "route", "replace", "10.99.0.0/16", "via", "10.250.0.2", "dev", "bm0")
            state = settled(ns, daemon, lambda s: any("10.99.0.0/16 via 10.250.0.2" in l for l in s))
            grant = next(l for l in state if l.startswith("rule ") and "fwmark" in l and " lookup " in l
                         and "from all" in l)
            priority, rest = grant[len("rule "):].split(":", 1)
            mark = rest.split("fwmark ", 1)[1].split()[0]
            for fam in ("-4", "-6"):
                sh(IP, "-n", ns, fam, "rule", "del", "priority", priority, "fwmark", mark, check=False)
            assert not any(f"fwmark {mark} lookup" in l for l in pvdd_state(ns))
            # the next change: pvdd puts the rules back (they were deleted behind its back)
            nets.addresses(ns, "bm1", "10.251.0.1/24")
            state = settled(ns, daemon, lambda s: sum(f"fwmark {mark} lookup" in l for l in s) == 2
                            and any("from 10.251.0.1 lookup" in l for l in s))
            nets.run(ns, [IP, "addr", "del", "10.250.0.1/24", "dev", "bm0"], check=True)
            state = settled(ns, daemon, lambda s: not any("from 10.250.0.1 lookup" in l for l in s))
            # SIGHUP reads the kernel again: nothing to change
            daemon.signal(signal.SIGHUP)
            time.sleep(0.5)
            assert settled(ns, daemon) == state
            # a crash, then a new pvdd: its full sync finds nothing to change
            assert daemon.kill() == -9
            daemon.start()
            assert settled(ns, daemon) == state
            assert "cannot" not in daemon.log_text(), daemon.log_text()
        finally:
            daemon.close()
