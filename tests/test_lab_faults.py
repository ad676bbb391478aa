"""``pvdrun lab fault`` / ``lab heal``: each fault is applied, seen, and healed.

Seen: the ISP's service or DNS server stops answering a client bound to that ISP (inside the
host namespace), while the other ISP still answers.  Healed: it answers again, and every
namespace of the lab (links, addresses, routes of every table, qdiscs, nftables ruleset) is
as ``lab up`` left it, the host's default routes included.  Each scenario gets its own lab
with a unique name, removed at the end.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fixtures.capture import assert_no_leak
from fixtures.commands import PVDRUN
from fixtures.lab import Lab
from fixtures.prereq import require
from pvdrun import lab as lab_api
from pvdrun.errors import EXIT_LAB_NOT_UP, EXIT_MISSING_PREREQ, EXIT_USAGE

pytestmark = pytest.mark.root

#: per-namespace fields that change by themselves (lifetimes count down)
VOLATILE = {"valid_life_time", "preferred_life_time", "expires"}


def _lab(scenario: int) -> Iterator[Lab]:
    require(os.geteuid() == 0, "root (the lab builds network namespaces)")
    name = f"pvf{os.getpid() % 100000}s{scenario}"
    lab_api.down(name)
    try:
        yield Lab(name, scenario, lab_api.up(scenario, name))
    finally:
        lab_api.down(name)


@pytest.fixture(scope="module")
def flab3() -> Iterator[Lab]:
    yield from _lab(3)


@pytest.fixture(scope="module")
def flab1() -> Iterator[Lab]:
    yield from _lab(1)


@pytest.fixture(scope="module")
def flab2() -> Iterator[Lab]:
    yield from _lab(2)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PVDRUN, "lab", *args], capture_output=True, text=True, check=False,
                          timeout=60)


def fault(lab: Lab, *args: str) -> None:
    done = cli("fault", "--name", lab.name, *args)
    assert done.returncode == 0, done.stderr


def heal(lab: Lab, *args: str) -> None:
    done = cli("heal", "--name", lab.name, *args)
    assert done.returncode == 0, done.stderr


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return sorted((_strip(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


def _out(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout


def snapshot(lab: Lab) -> dict[str, Any]:
    """Links, addresses, routes (all tables), rules, qdiscs and nftables of every namespace."""
    state: dict[str, Any] = {}
    for ns in lab.status["namespaces"].values():
        ip = ["ip", "-n", ns, "-json"]
        state[ns] = {
            "link": _strip(json.loads(_out([*ip, "link"]))),
            "addr": _strip(json.loads(_out([*ip, "addr"]))),
            "route4": _strip(json.loads(_out([*ip, "-4", "route", "show", "table", "all"]))),
            "route6": _strip(json.loads(_out([*ip, "-6", "route", "show", "table", "all"]))),
            "rule6": _strip(json.loads(_out([*ip, "-6", "rule"]))),
            "qdisc": _strip(json.loads(_out(["ip", "netns", "exec", ns, "tc", "-json", "qdisc"]))),
            "nft": _out(["ip", "netns", "exec", ns, "nft", "list", "ruleset"]),
        }
    return state


def assert_healed(lab: Lab, before: dict[str, Any], timeout: float = 20) -> None:
    """The lab's namespaces come back to ``before`` (the host re-runs DAD, hears RAs again)."""
    deadline = time.monotonic() + timeout
    while True:
        now = snapshot(lab)
        if now == before:
            return
        if time.monotonic() > deadline:
            diff = {ns: [k for k in before[ns] if before[ns][k] != now.get(ns, {}).get(k)]
                    for ns in before}
            pytest.fail(f"not as lab up left it after heal: {diff}")
        time.sleep(0.5)


def host_routers(lab: Lab) -> set[str]:
    """The link-local routers of the host's IPv6 default routes."""
    routes = json.loads(_out(["ip", "-n", lab.host_ns, "-json", "-6", "route", "show",
                              "default"]))
    return {r["gateway"] for r in routes if "gateway" in r}


def host_prefix_routes(lab: Lab) -> set[str]:
    routes = json.loads(_out(["ip", "-n", lab.host_ns, "-json", "-6", "route", "show"]))
    return {r["dst"] for r in routes}


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    """RAs: dnsmasq's next unsolicited RA comes within about 20 s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def http(lab: Lab, isp: str, timeout: int = 3) -> subprocess.CompletedProcess:
    """curl to ``isp``'s IPv6 service from the host, from that ISP's address (or interface)."""
    info = lab.isp(isp)
    bind = info["host_interfaces"][0] if lab.scenario == 3 else lab.host_address(isp, 6)
    return lab.exec(["curl", "-sS", "-m", str(timeout), "--interface", bind,
                     f"http://[{info['service_v6']}]/"], timeout=timeout + 10)


def dns(lab: Lab, isp: str) -> subprocess.CompletedProcess:
    info = lab.isp(isp)
    bind = (["--device", info["host_interfaces"][0]] if lab.scenario == 3
            else ["--source", lab.host_address(isp, 6)])
    argv = ["python3", "-m", "pvdrun.lab.probe", "dns", info["dns_v6"], "svc.example",
            "--timeout", "2", *bind]
    try:
        return lab.exec(argv, timeout=8)
    except subprocess.TimeoutExpired:  # no answer at all: a failed query too
        return subprocess.CompletedProcess(argv, 124, "", "timed out")


def answers(lab: Lab, isp: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        done = http(lab, isp)
        if done.returncode == 0 and done.stdout.startswith(isp):
            return
        assert time.monotonic() < deadline, f"{isp} never answered again: {done.stderr}"
        time.sleep(0.5)


@pytest.mark.parametrize("scenario", [1, 2, 3])
def test_down_is_seen_and_healed(request: pytest.FixtureRequest, scenario: int) -> None:
    lab: Lab = request.getfixturevalue(f"flab{scenario}")
    before = snapshot(lab)
    fault(lab, "ispa", "--down")
    try:
        _seen_down(lab)
    finally:
        heal(lab, "ispa")
    answers(lab, "ispa")
    assert_healed(lab, before)
    assert json.loads(cli("status", "--name", lab.name, "--json").stdout)["faults"] == \
        {"ispa": [], "ispb": []}


def _seen_down(lab: Lab) -> None:
    status = json.loads(cli("status", "--name", lab.name, "--json").stdout)
    assert status["faults"] == {"ispa": [{"kind": "down", "value": None}], "ispb": []}
    assert "ispa down" in cli("status", "--name", lab.name).stdout
    assert http(lab, "ispa").returncode != 0
    assert http(lab, "ispb").stdout.startswith("ispb")


def test_loss_100_is_seen_and_healed(flab3: Lab) -> None:
    before = snapshot(flab3)
    fault(flab3, "ispb", "--loss", "100")
    try:
        assert json.loads(cli("status", "--name", flab3.name, "--json").stdout)["faults"][
            "ispb"] == [{"kind": "loss", "value": 100.0}]
        assert http(flab3, "ispb").returncode != 0
        assert http(flab3, "ispa").stdout.startswith("ispa")
    finally:
        heal(flab3)
    answers(flab3, "ispb")
    assert_healed(flab3, before)


def test_partial_loss_drops_some(flab3: Lab) -> None:
    """50 % loss: some of 40 UDP echoes are lost, some come back."""
    before = snapshot(flab3)
    fault(flab3, "ispa", "--loss", "50")
    code = ("import socket\nok = 0\nfor i in range(40):\n"
            "    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
            "    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'ispa')\n"
            "    s.settimeout(0.2)\n"
            "    s.sendto(b'x', ('2001:db8:a:1::80', 7))\n"
            "    try:\n        s.recv(100); ok += 1\n    except OSError:\n        pass\n"
            "print(ok)\n")
    try:
        done = flab3.exec(["python3", "-c", code], timeout=30)
    finally:
        heal(flab3, "ispa")
    got = int(done.stdout)
    assert 0 < got < 40, got
    assert_healed(flab3, before)


def test_dns_down_is_seen_and_healed(flab3: Lab) -> None:
    before = snapshot(flab3)
    fault(flab3, "ispa", "--dns-down")
    try:
        assert dns(flab3, "ispa").returncode != 0
        assert json.loads(dns(flab3, "ispb").stdout)["answers"]
        assert http(flab3, "ispa").stdout.startswith("ispa")  # only DNS is down
    finally:
        heal(flab3, "ispa")
    assert json.loads(dns(flab3, "ispa").stdout)["answers"]
    assert_healed(flab3, before)


def test_delay(flab3: Lab) -> None:
    before = snapshot(flab3)
    done = cli("fault", "--name", flab3.name, "ispa", "--delay", "300")
    if done.returncode == EXIT_MISSING_PREREQ:
        assert "netem" in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert_healed(flab3, before, timeout=0)
        pytest.skip("this kernel has no netem qdisc: --delay is refused (exit 5), as documented")
    assert done.returncode == 0, done.stderr
    start = time.monotonic()
    assert http(flab3, "ispa", timeout=10).stdout.startswith("ispa")
    assert time.monotonic() - start >= 0.3
    heal(flab3, "ispa")
    assert_healed(flab3, before)


@pytest.mark.parametrize("scenario,isp", [(3, "ispb"), (1, "ispa")])
def test_ra_lifetime_0_drops_the_default_route(request: pytest.FixtureRequest, scenario: int,
                                               isp: str) -> None:
    lab: Lab = request.getfixturevalue(f"flab{scenario}")
    before = snapshot(lab)
    router = lab.isp(isp)["router_ll"]
    other = lab.isp("ispa" if isp == "ispb" else "ispb")["router_ll"]
    assert {router, other} <= host_routers(lab)
    fault(lab, isp, "--ra-lifetime", "0")
    try:
        assert json.loads(cli("status", "--name", lab.name, "--json").stdout)["faults"][isp] == \
            [{"kind": "ra-lifetime", "value": 0}]
        wait_for(lambda: router not in host_routers(lab), 10, "the default route via it stayed")
        assert other in host_routers(lab)
    finally:
        heal(lab, isp)
    wait_for(lambda: router in host_routers(lab), 40, "the default route never came back")
    assert_healed(lab, before)


def test_withdraw_prefix(flab3: Lab) -> None:
    before = snapshot(flab3)
    fault(flab3, "ispb", "--withdraw-prefix")
    try:
        wait_for(lambda: "2001:db8:b::/64" not in host_prefix_routes(flab3), 10,
                 "the prefix route stayed")
        links = json.loads(_out(["ip", "-n", flab3.host_ns, "-json", "-6", "addr", "show",
                                 "dev", "ispb", "scope", "global"]))
        addresses = [a for link in links for a in link.get("addr_info", []) if "local" in a]
        assert addresses and all(a.get("deprecated") or a.get("preferred_life_time") == 0
                                 for a in addresses), links
    finally:
        heal(flab3, "ispb")
    wait_for(lambda: "2001:db8:b::/64" in host_prefix_routes(flab3), 40,
             "the prefix route never came back")
    assert_healed(flab3, before)


def test_ra_fault_not_in_scenario_2(flab2: Lab) -> None:
    done = cli("fault", "--name", flab2.name, "ispa", "--ra-lifetime", "0")
    assert done.returncode == EXIT_USAGE and len(done.stderr.strip().splitlines()) == 1


def test_scoped_program_facing_down_sends_nothing_on_the_other_link(flab3: Lab) -> None:
    before = snapshot(flab3)
    info = flab3.isp("ispa")
    fault(flab3, "ispa", "--down")
    try:
        with flab3.capture("ispb") as cap:
            done = flab3.exec([PVDRUN, "--pvd", "ispa", "curl", "-sS", "-m", "5",
                               f"http://[{info['service_v6']}]/"], timeout=30)
        assert done.returncode != 0, done.stdout
        assert_no_leak(cap, done.stderr, sources=info["host_addresses"],
                       destinations=[info["service_v4"], info["service_v6"]])
    finally:
        heal(flab3)
    answers(flab3, "ispa")
    assert_healed(flab3, before)


def test_down_removes_a_lab_with_faults_in_force(flab3: Lab) -> None:
    """lab down with faults in force: a separate lab, so the module's lab stays."""
    name = f"pvf{os.getpid() % 100000}d"
    lab_api.down(name)
    try:
        lab_api.up(3, name)
        for args in (["ispa", "--down"], ["ispb", "--loss", "20"], ["ispb", "--dns-down"],
                     ["ispb", "--ra-lifetime", "0"]):
            done = cli("fault", "--name", name, *args)
            assert done.returncode == 0, done.stderr
    finally:
        done = cli("down", "--name", name)
    assert done.returncode == 0, done.stderr
    listed = _out(["ip", "netns", "list"])
    assert f"{name}-" not in listed
    assert not os.path.exists(f"/run/pvdrun/lab/{name}.json")
    assert f"{name}-fault-ra" not in _out(["ps", "-eo", "args"])


@pytest.mark.parametrize("args", [
    ["ispc", "--down"],
    ["ispa"],
    ["ispa", "--down", "--dns-down"],
    ["ispa", "--loss", "0"],
    ["ispa", "--loss", "101"],
    ["ispa", "--loss", "lots"],
    ["ispa", "--delay", "0"],
    ["ispa", "--delay", "10001"],
    ["ispa", "--ra-lifetime", "5"],
    ["ispa", "--withdraw-prefix", "--loss", "5"],
], ids=lambda a: " ".join(a))
def test_bad_input(flab3: Lab, args: list[str]) -> None:
    before = json.loads(cli("status", "--name", flab3.name, "--json").stdout)["faults"]
    done = cli("fault", "--name", flab3.name, *args)
    assert done.returncode == EXIT_USAGE, done
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("pvdrun lab:")
    assert json.loads(cli("status", "--name", flab3.name, "--json").stdout)["faults"] == before


def test_heal_unknown_isp(flab3: Lab) -> None:
    done = cli("heal", "--name", flab3.name, "ispc")
    assert done.returncode == EXIT_USAGE and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [["fault", "ispa", "--down"], ["heal"], ["heal", "ispa"]])
def test_lab_not_up(command: list[str]) -> None:
    require(os.geteuid() == 0, "root")
    done = cli(command[0], "--name", "pvfnotup", *command[1:])
    assert done.returncode == EXIT_LAB_NOT_UP
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
