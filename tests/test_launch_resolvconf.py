"""The launcher's last steps before exec, in the shared labs:

* as root it gives the program a private /etc/resolv.conf naming only the PvD's servers, so
  programs that read resolv.conf themselves (dig) ask the PvD's DNS (R25);
* a PvD that shares its interface with another PvD is refused without pvdd's routing tables,
  as root too, rather than sent by the main table's next-hop (R7).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fixtures.capture import assert_caught, assert_no_leak
from fixtures.pvdd import no_pvdd
from fixtures.resolvconf import with_resolv_conf
from pvdrun.resolve.resolvconf import NO_SERVER_PLACEHOLDER

pytestmark = pytest.mark.root

from fixtures.commands import PVDRUN  # noqa: E402
OTHER = {"ispa": "ispb", "ispb": "ispa"}


def leak_rules(lab: Any, isp: str) -> dict[str, list[str]]:
    """What the other ISP's link must not hold of a program scoped to ``isp`` (scenario 3): no
    frame from ``isp``'s host addresses, none to its DNS servers (the IPv4 one is the same
    address in both ISPs), nothing but link control from the other link's own addresses."""
    info = lab.isp(isp)
    return {"sources": info["host_addresses"], "quiet": lab.isp(OTHER[isp])["host_addresses"],
            "destinations": [info[k] for k in ("dns_v4", "dns_v6") if info[k]]}


DIG = ["dig", "+short", "+tries=1", "+time=3", "AAAA", "svc.example"]


@pytest.mark.parametrize("isp", ["ispa", "ispb"])
def test_dig_reads_the_pvds_resolv_conf(lab3: Any, tmp_path: Path, isp: str) -> None:
    """dig reads the private resolv.conf and its query stays on the PvD's link.  Control: dig
    without pvdrun, with the very resolv.conf pvdrun gave it, is found on ispa's link by the
    same verdict (the host's default route)."""
    env = no_pvdd(tmp_path)
    with lab3.capture(OTHER[isp]) as other:
        done = lab3.exec([PVDRUN, "--pvd", isp, *DIG], env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [lab3.isp(isp)["service_v6"]], done.stdout
    assert_no_leak(other, done.stdout, **leak_rules(lab3, isp))
    if isp == "ispb":
        given = lab3.exec([PVDRUN, "--pvd", isp, "cat", "/etc/resolv.conf"], env=env)
        with lab3.capture(OTHER[isp]) as control:
            plain = lab3.exec(with_resolv_conf(DIG, given.stdout))
        assert_caught(control, given.stdout, plain.stdout, **leak_rules(lab3, isp))


def test_private_resolv_conf_does_not_touch_the_hosts(lab3: Any, tmp_path: Path) -> None:
    env = no_pvdd(tmp_path)
    before = lab3.exec(["cat", "/etc/resolv.conf"]).stdout
    inside = lab3.exec([PVDRUN, "--pvd", "ispa", "cat", "/etc/resolv.conf"], env=env)
    after = lab3.exec(["cat", "/etc/resolv.conf"]).stdout
    assert inside.returncode == 0, inside.stderr
    assert "resolv.conf of PvD" in inside.stdout and f"nameserver {lab3.isp('ispa')['dns_v6']}" in inside.stdout
    assert before == after and "resolv.conf of PvD" not in after


def test_null_pvd_resolv_conf_names_no_real_server(lab3: Any, tmp_path: Path) -> None:
    """The null PvD's private resolv.conf names only the placeholder (no server of either ISP,
    none of the host's), so dig, which reads it itself, asks no one: it runs, gets no answer
    (its socket is refused, EACCES), and neither link carries anything of it."""
    env = no_pvdd(tmp_path)
    host = lab3.exec(["cat", "/etc/resolv.conf"]).stdout
    given = lab3.exec([PVDRUN, "--pvd", "null", "cat", "/etc/resolv.conf"], env=env)
    assert given.returncode == 0, given.stderr
    servers = [line.split()[1] for line in given.stdout.splitlines() if line.startswith("nameserver")]
    assert servers == [NO_SERVER_PLACEHOLDER], given.stdout
    real = {lab3.isp(i)[k] for i in ("ispa", "ispb") for k in ("dns_v4", "dns_v6")} | \
        {line.split()[1] for line in host.splitlines() if line.startswith("nameserver")}
    assert not [word for word in given.stdout.split() if word in real], given.stdout
    hosts = lab3.isp("ispa")["host_addresses"] + lab3.isp("ispb")["host_addresses"]
    with lab3.capture("ispa") as cap_a, lab3.capture("ispb") as cap_b:
        done = lab3.exec([PVDRUN, "--pvd", "null", "dig", "+tries=1", "+time=1", "svc.example"], env=env)
    assert done.returncode != 0 and not done.stdout.strip().endswith("NOERROR"), done.stdout
    assert done.returncode not in (3, 4, 5), done.stderr  # pvdrun's own: dig never ran
    assert "dig" in done.stderr or ";" in done.stdout, (done.stdout, done.stderr)  # dig's own words
    for cap in (cap_a, cap_b):
        assert_no_leak(cap, done.stdout, done.stderr, quiet=hosts, destinations=sorted(real))


@pytest.mark.parametrize("scenario", ["lab1", "lab2"])
def test_shared_interface_pvd_refused_without_pvdd_even_as_root(request: pytest.FixtureRequest,
                                                                tmp_path: Path, scenario: str) -> None:
    lab = request.getfixturevalue(scenario)
    env = no_pvdd(tmp_path)
    done = lab.exec([PVDRUN, "--pvd", lab.isp("ispb")["pvd_id"], "true"], env=env)
    assert done.returncode == 4, (done.returncode, done.stderr)
    assert "needs pvdd's routing tables" in done.stderr


def test_inner_pvdrun_gets_its_own_resolv_conf(lab3: Any, tmp_path: Path) -> None:
    """An inner pvdrun overrides the outer one for resolv.conf readers too."""
    env = no_pvdd(tmp_path)
    done = lab3.exec([PVDRUN, "--pvd", "ispa", PVDRUN, "--pvd", "ispb", "cat", "/etc/resolv.conf"], env=env)
    assert done.returncode == 0, done.stderr
    assert f"nameserver {lab3.isp('ispb')['dns_v6']}" in done.stdout, done.stdout
    assert lab3.isp("ispa")["dns_v6"] not in done.stdout
