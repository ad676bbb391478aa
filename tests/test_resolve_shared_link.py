"""Name resolution where PvDs share an interface: lab scenario 1 (one link, two
routers) and scenario 2 (one gateway, two upstreams), Figures 1 and 2 of the
Troan document.  Device binding cannot tell the PvDs apart there; the
resolver's source-address binding (R25) must, so that each PvD's query reaches
its own DNS server and its split-horizon answer comes back.  The suite's capture
(fixtures/capture.py: proven live, nothing filtered out) on the other ISP's side
holds nothing of the program; the control, curl without pvdrun given a resolv.conf
naming the other ISP's server, is found there by the same verdict."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from fixtures.capture import assert_caught, assert_no_leak, ip_destination
from fixtures.detour import main_table_prefers
from fixtures.netns import wait_for
from fixtures.pvdd import no_pvdd
from fixtures.resolvconf import nameservers, with_resolv_conf
from fixtures.lab_rules import OTHER
from fixtures.lab_rules import leak_rules_shared as leak_rules
from fixtures.pvdd_lab import PvddInLab, mac_of, routes

pytestmark = pytest.mark.root

from fixtures.commands import PVDRUN  # noqa: E402
CASES = [(scenario, isp) for scenario in ("lab1", "lab2") for isp in ("ispa", "ispb")]


@pytest.fixture(scope="module")
def pvdds(request: pytest.FixtureRequest) -> Iterator[dict[str, PvddInLab]]:
    """pvdd in each shared-link lab: a PvD sharing its interface needs pvdd's routing tables
    (pvdd), and the launcher refuses it without them."""
    daemons: dict[str, PvddInLab] = {}
    try:
        for scenario in ("lab1", "lab2"):
            daemons[scenario] = PvddInLab(request.getfixturevalue(scenario)).start()
        yield daemons
    finally:
        for daemon in daemons.values():
            daemon.cleanup()


@pytest.mark.parametrize("scenario,isp", CASES)
def test_curl_by_name_in_each_pvd_of_a_shared_link(request: pytest.FixtureRequest, pvdds: dict[str, PvddInLab],
                                                   scenario: str, isp: str) -> None:
    lab = request.getfixturevalue(scenario)
    pvd_id = lab.isp(isp)["pvd_id"]
    sock = pvdds[scenario].socket
    with lab.capture(OTHER[isp]) as other:
        done = lab.exec([PVDRUN, "--pvd", pvd_id, "--socket", sock, "curl", "-sS", "-m", "10",
                         "http://svc.example/"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{isp} "), done.stdout  # the PvD's own split-horizon answer
    assert_no_leak(other, done.stdout, **leak_rules(lab, isp))  # the other DNS never asked
    # control: the system's resolver, given the other ISP's server, asks it there
    with lab.capture(OTHER[isp]) as control:
        plain = lab.exec(with_resolv_conf(["curl", "-sS", "-m", "10", "http://svc.example/"],
                                          nameservers(lab.isp(OTHER[isp])["dns_v6"])))
    assert_caught(control, plain.stdout, plain.stderr, **leak_rules(lab, isp))


@pytest.mark.parametrize("scenario", ["lab1", "lab2"])
def test_local_name_only_in_its_pvd(request: pytest.FixtureRequest, tmp_path: Path, pvdds: dict[str, PvddInLab],
                                    scenario: str) -> None:
    lab = request.getfixturevalue(scenario)
    env = no_pvdd(tmp_path)
    found = lab.exec([PVDRUN, "resolve", "--pvd", lab.isp("ispa")["pvd_id"], "--type", "AAAA", "intranet"],
                     env=env)
    assert found.returncode == 0, found.stderr
    assert found.stdout.split()[-1] == lab.isp("ispa")["intranet_v6"]
    missing = lab.exec([PVDRUN, "--pvd", lab.isp("ispb")["pvd_id"], "--socket", pvdds[scenario].socket,
                        "getent", "ahosts", "intranet.ispa.example"])
    assert missing.returncode == 2, (missing.stdout, missing.stderr)  # getent: not found


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def test_route_via_another_pvds_router_stays_out_of_the_pvds_table(lab1: Any, pvdds: dict[str, PvddInLab]) -> None:
    """Scenario 1: a main-table host route to ISP B's DNS server via ISP A's router (an
    administrator's, for unscoped traffic) is never copied into ispb.example's table: a
    program under ``pvdrun --pvd ispb.example`` reaches B's server through B's router.  On the
    shared link the next hop is the destination MAC of the frames on the host's lan0; nothing
    of the program on A's side either.  Control: unscoped, the query leaves through A's router
    (the verdict by MAC finds it)."""
    daemon, a, b = pvdds["lab1"], lab1.isp("ispa"), lab1.isp("ispb")
    server, table = b["dns_v6"], daemon.pvd(b["pvd_id"])["attributes"]["table"]
    mac_a, mac_b = mac(mac_of(lab1, "ispa", "down0")), mac(mac_of(lab1, "ispb", "down0"))
    # a route via B's own router inside B's service prefix: in B's table once pvdd has synced
    synced = "2001:db8:b:1:77::/80"
    own = ["ip", "-6", "route", "add", synced, "via", b["router_ll"], "dev", "lan0"]

    def held() -> list[str]:
        return [r for r in routes(lab1) if f"table {table} " in r]

    def via(router_mac: bytes) -> dict[str, Any]:
        return {"matching": {f"to {server} through that router": lambda f: f[:6] == router_mac
                             and ip_destination(f) == server}}

    lab1.exec(own, check=True)
    try:
        with main_table_prefers(lab1, "ispa", [server]):
            wait_for(lambda: [r for r in held() if r.startswith(synced)], what=f"pvdd copying {synced}")
            with lab1.capture(ns="host", ifname="lan0") as wire, lab1.capture("ispa") as other:
                done = lab1.exec([PVDRUN, "--pvd", b["pvd_id"], "--socket", daemon.socket, "curl", "-sS",
                                  "-m", "10", "http://svc.example/"])
            assert_no_leak(wire, done.stdout, done.stderr, **via(mac_a))
            assert_no_leak(other, done.stdout, done.stderr, **leak_rules(lab1, "ispb"))
            assert_caught(wire, **via(mac_b))  # B's server was asked, through B's router
            assert done.returncode == 0 and done.stdout.startswith("ispb "), (done.stdout, done.stderr)
            assert not [r for r in held() if a["router_ll"] in r], held()
            with lab1.capture(ns="host", ifname="lan0") as control:
                lab1.exec([sys.executable, "-c", "import socket, sys; socket.socket(socket.AF_INET6, "
                           "socket.SOCK_DGRAM).sendto(b'control', (sys.argv[1], 53))", server], check=True)
            assert_caught(control, **via(mac_a))
    finally:
        lab1.exec(["ip", "-6", "route", "del", *own[4:]])
