"""The incremental model behind pvdd and ``pvdrun monitor``: kept from notifications, it must
equal a fresh dump of the kernel, and its table the one a one-shot discovery assembles.

Real namespaces (fixtures/mininet.py), real ``ip`` commands, nothing mocked: random sequences
of link, address and route changes (added, deleted, up, down, a link deleted with its
addresses, renamed, routes replaced, multipath), a burst of 1,000 changes with a receive
buffer small enough to overrun (ENOBUFS: the model is dumped again), and pvdd's list after
such a burst against one-shot discovery.
"""
from __future__ import annotations

import json
import os
import random
import sys
from typing import Any

import pytest

from fixtures.mininet import MiniNet, net  # noqa: F401 (fixture)
from fixtures.netns import sh, wait_for
from fixtures.pvdd import PVDRUN_ARGV, Pvdd

pytestmark = pytest.mark.root

#: Runs in the host namespace: a Discovery kept from notifications, fed random changes by
#: ``ip -force -batch`` in rounds; after each round (once quiet) its model and its table are
#: compared with a fresh dump and a one-shot discovery.  Prints one JSON line.
MODEL_CHECK = r"""
import json, os, random, subprocess, sys
from pvdrun.discovery.engine import Discovery
from pvdrun.discovery.kernel import snapshot
from pvdrun.discovery.kernelmodel import comparable

seed, rounds, per_round, wait_between = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
rng = random.Random(seed)
discovery = Discovery(config_path="/dev/null", listen_ras=False)
discovery.start_notifications()
discovery.pvds()

names = []          # links that may exist
counter = [0]

def fresh_name(prefix):
    counter[0] += 1
    return f"{prefix}{seed % 100}n{counter[0]}"

def some_link():
    return rng.choice(names) if names else "lo"

def new_pair():
    a, b = fresh_name("va"), fresh_name("vb")
    names.extend([a, b])
    return [f"link add {a} type veth peer name {b}", f"link set {a} up", f"link set {b} up"]

def change():
    kind = rng.random()
    if kind < 0.05 or len(names) < 4:
        return new_pair()
    link = some_link()
    n = rng.randrange(1, 40)
    if kind < 0.08:                      # a link goes, with its addresses and routes
        names.remove(link)
        return [f"link del {link}"]
    if kind < 0.11:                      # renamed (a link is renamed while down)
        new = fresh_name("rn")
        names.remove(link)
        names.append(new)
        return [f"link set {link} down", f"link set {link} name {new}", f"link set {new} up"]
    if kind < 0.16:
        return [f"link set {link} down"]
    if kind < 0.23:
        return [f"link set {link} up"]
    if kind < 0.45:
        verb = rng.choice(["add", "add", "del"])
        return [f"address {verb} 10.{seed % 200}.{n}.{rng.randrange(1, 4)}/24 dev {link}"]
    if kind < 0.6:
        verb = rng.choice(["add", "add", "del"])
        return [f"-6 address {verb} 2001:db8:{n:x}::{rng.randrange(1, 4)}/64 dev {link}"]
    if kind < 0.72:
        verb = rng.choice(["add", "replace", "del"])
        return [f"route {verb} 198.51.{n}.0/24 via 10.{seed % 200}.{n}.254 dev {link} onlink"]
    if kind < 0.8:
        verb = rng.choice(["add", "del"])
        return [f"route {verb} default via 10.{seed % 200}.{n}.254 dev {link} metric {n} onlink"]
    if kind < 0.9:
        verb = rng.choice(["add", "replace", "del"])
        return [f"-6 route {verb} 2001:db8:f{n:x}::/64 via fe80::{n:x} dev {link} metric {rng.choice([100, 1024])}"]
    if kind < 0.93:
        verb = rng.choice(["add", "del"])
        return [f"-6 route {verb} default via fe80::1 dev {link} metric {n}"]
    if kind < 0.95:                      # a neighbour the kernel takes for a router
        if rng.random() < 0.6:
            return [f"-6 neigh replace fe80::{n:x} lladdr 02:00:00:00:00:{n:02x} dev {link} router"]
        return [f"-6 neigh del fe80::{n:x} dev {link}"]
    other = some_link()
    return [f"route replace 203.0.113.0/24 nexthop via 10.9.{n}.1 dev {link} onlink "
            f"nexthop via 10.9.{n}.2 dev {other} onlink"]

def settle():
    while discovery.wait_for_change(extra_timeout=0.3):
        pass
    return discovery.pvds()

def tables(pvds):
    return [p.to_dict() for p in pvds]

for _ in range(3):
    subprocess.run(["ip", "-batch", "-"], input="\n".join(new_pair()) + "\n", text=True, check=True)
result = {"rounds": [], "overruns": 0}
for round_index in range(rounds):
    batch = []
    while len(batch) < per_round:
        batch += change()
    subprocess.run(["ip", "-force", "-batch", "-"], input="\n".join(batch) + "\n", text=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_between and round_index < rounds - 1:
        continue
    mismatch = None
    attempts = 0
    for attempt in range(3):   # the kernel may still be adding what a change implies
        attempts += 1
        kept = tables(settle())
        model = discovery.model.comparable()
        fresh_model = comparable(snapshot())
        fresh = Discovery(config_path="/dev/null", listen_ras=False)
        try:
            fresh_table = tables(fresh.pvds())
        finally:
            fresh.close()
        if model == fresh_model and kept == fresh_table:
            mismatch = None
            break
        mismatch = {key: {"model_only": [x for x in model[key] if x not in fresh_model[key]],
                          "dump_only": [x for x in fresh_model[key] if x not in model[key]]}
                    for key in model if model[key] != fresh_model[key]}
        mismatch["table_equal"] = kept == fresh_table
        if kept != fresh_table:
            mismatch["kept_only"] = [p for p in kept if p not in fresh_table]
            mismatch["fresh_only"] = [p for p in fresh_table if p not in kept]
    result["rounds"].append({"changes": len(batch), "pvds": len(kept), "mismatch": mismatch, "attempts": attempts,
                             "routes": len(fresh_model["routes"]), "addresses": len(fresh_model["addresses"])})
result["overruns"] = discovery.overruns
result["full_dumps"] = discovery.model.full_dumps
print(json.dumps(result, default=str))
"""


def _model_check(net: MiniNet, seed: int, rounds: int, per_round: int, wait_between: bool = True,
                 env: dict[str, str] | None = None) -> dict[str, Any]:
    result = net.run(sys.executable, "-c", MODEL_CHECK, str(seed), str(rounds), str(per_round),
                     "1" if wait_between else "0", timeout=240, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_model_equals_a_fresh_dump_after_random_changes(net: MiniNet, seed: int) -> None:
    """Links, addresses and routes added, deleted, up and down, links deleted with their
    addresses on them and renamed, routes replaced and multipath: after each round of
    changes, the model equals a fresh dump and its table a one-shot discovery's."""
    found = _model_check(net, seed, rounds=8, per_round=25)
    bad = [r for r in found["rounds"] if r["mismatch"] is not None]
    assert not bad, bad
    assert found["full_dumps"] == 1 + found["overruns"]  # loaded once, dumped again only on overrun


def test_burst_of_1000_changes_overruns_and_resyncs(net: MiniNet) -> None:
    """1,000 changes at once into a notification socket of a few kilobytes: it overruns
    (ENOBUFS), the model is dumped again, and it ends equal to a fresh dump."""
    env = {"PVDRUN_NOTIFY_RCVBUF": "4096"}
    found = _model_check(net, 7, rounds=1, per_round=1000, env={**os.environ, **env})
    assert found["overruns"] >= 1, found
    assert found["full_dumps"] >= 2, found
    assert found["rounds"][-1]["mismatch"] is None, found["rounds"][-1]


def test_burst_of_1000_changes_without_overrun(net: MiniNet) -> None:
    """The same burst with the usual receive buffer: every message taken in, none lost."""
    found = _model_check(net, 8, rounds=4, per_round=250, wait_between=False)
    assert found["rounds"][-1]["mismatch"] is None, found["rounds"][-1]


def _burst(count: int, seed: int) -> str:
    """``count`` changes on 20 veth pairs: addresses added and deleted, links down and up."""
    rng = random.Random(seed)
    lines = [f"link add bu{i}a type veth peer name bu{i}b" for i in range(10)]
    names = [f"bu{i}{end}" for i in range(10) for end in "ab"]
    lines += [f"link set {name} up" for name in names]
    while len(lines) < count:
        name = rng.choice(names)
        n = rng.randrange(1, 30)
        pick = rng.random()
        if pick < 0.4:
            lines.append(f"address add 10.77.{n}.{names.index(name) + 1}/24 dev {name}")
        elif pick < 0.6:
            lines.append(f"address del 10.77.{n}.{names.index(name) + 1}/24 dev {name}")
        elif pick < 0.75:
            lines.append(f"-6 address add 2001:db8:77:{n:x}::{names.index(name) + 1}/64 dev {name}")
        elif pick < 0.85:
            lines.append(f"-6 address del 2001:db8:77:{n:x}::{names.index(name) + 1}/64 dev {name}")
        else:
            lines.append(f"link set {name} {rng.choice(['down', 'up', 'up'])}")
    return "\n".join(lines[:count]) + "\n"


def _comparable(pvds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What pvdd and a one-shot discovery both say of a PvD: all of it but what pvdd's routing
    adds (the mark, the table in the attributes, and the scope line that carries the mark)."""
    kept = []
    for pvd in pvds:
        data = {k: v for k, v in pvd.items() if k not in ("mark", "scope")}
        data["attributes"] = {k: v for k, v in pvd.get("attributes", {}).items() if k != "table"}
        kept.append(data)
    return kept


def test_pvdd_list_after_a_burst_equals_one_shot_discovery(net: MiniNet) -> None:
    """pvdd with a notification socket that overruns under a burst of 1,000 changes: once it
    settled, its list equals what a one-shot discovery finds (it dumped again)."""
    with Pvdd(net.host, log_level="info", env={"PVDRUN_NOTIFY_RCVBUF": "4096"}) as daemon:
        sh("ip", "-force", "-batch", "-", ns=net.host, check=False, timeout=120, input=_burst(1000, 5))

        def one_shot() -> list[dict[str, Any]]:
            out = net.run(*PVDRUN_ARGV, "list", "--no-daemon", "--json", env={**os.environ, "PVDRUN_NO_RS": "1",
                                                                            "PVDRUN_CONFIG": daemon.config})
            assert out.returncode == 0, out.stderr
            return _comparable(json.loads(out.stdout)["pvds"])

        def agree() -> bool:
            return _comparable(daemon.list_pvds()) == one_shot()

        wait_for(agree, timeout=30, what="pvdd's list equal to one-shot discovery's")
        assert "overran" in daemon.log_text()
        assert len(daemon.list_pvds()) >= 10


ONE_SHOT_DUMPS = r"""
import json, os
from pvdrun.discovery import engine, rtnl
dumps = []
original = rtnl.Rtnl.dump
def counted(self, msg_type, *args, **kwargs):
    found = original(self, msg_type, *args, **kwargs)
    dumps.append(msg_type)
    return found
rtnl.Rtnl.dump = counted
pvds = engine.discover(config_path="/dev/null")
print(json.dumps({"dumps": dumps, "pvds": len(pvds)}))
"""


def test_one_shot_discovery_of_1000_links_dumps_once_per_kind(net: MiniNet) -> None:
    """One-shot discovery of 1,000 links (root: the RA cache read, the links asked, the
    notifications of what changed meanwhile taken in): one dump of links, one of addresses,
    one of routes per family, one of neighbours; nothing per link, nothing dumped twice."""
    lines = [f"link add sc{i}a type veth peer name sc{i}b" for i in range(500)]
    for i in range(1000):
        name = f"sc{i // 2}{'ab'[i % 2]}"
        lines += [f"address add 10.{60 + i // 256}.{i % 256}.1/24 dev {name}", f"link set {name} up"]
    sh("ip", "-batch", "-", ns=net.host, timeout=120, input="\n".join(lines) + "\n")
    result = net.run(sys.executable, "-c", ONE_SHOT_DUMPS, timeout=120,
                     env={**os.environ, "PVDRUN_RA_CACHE": os.path.join(net.tmp, "ras.json")})
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["pvds"] == 1000
    assert sorted(found["dumps"]) == sorted([18, 22, 26, 26, 30])  # GETLINK, GETADDR, GETROUTE x2, GETNEIGH
