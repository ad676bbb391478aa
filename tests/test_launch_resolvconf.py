"""The launcher's last steps before exec, in the shared labs:

* as root it gives the program a private /etc/resolv.conf naming only the PvD's servers, so
  programs that read resolv.conf themselves (dig) ask the PvD's DNS (R25);
* a PvD that shares its interface with another PvD is refused without pvdd's routing tables,
  as root too, rather than sent by the main table's next-hop (R7).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.root

PVDRUN = shutil.which("pvdrun") or "pvdrun"
OTHER = {"ispa": "ispb", "ispb": "ispa"}


@pytest.mark.parametrize("isp", ["ispa", "ispb"])
def test_dig_reads_the_pvds_resolv_conf(lab3: Any, tmp_path: Path, isp: str) -> None:
    env = {"PVDRUN_SOCKET": str(tmp_path / "no-daemon.sock")}
    with lab3.capture(OTHER[isp]) as other:
        done = lab3.exec([PVDRUN, "--pvd", isp, "dig", "+short", "+tries=1", "+time=3", "AAAA",
                          "svc.example"], env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [lab3.isp(isp)["service_v6"]], done.stdout
    # The overlapping IPv4 DNS server (same address in both ISPs): only the PvD's link carried it.
    assert not [line for line in other.lines if ".53:" in line or ".53 " in line], other.lines


def test_private_resolv_conf_does_not_touch_the_hosts(lab3: Any, tmp_path: Path) -> None:
    env = {"PVDRUN_SOCKET": str(tmp_path / "no-daemon.sock")}
    before = lab3.exec(["cat", "/etc/resolv.conf"]).stdout
    inside = lab3.exec([PVDRUN, "--pvd", "ispa", "cat", "/etc/resolv.conf"], env=env)
    after = lab3.exec(["cat", "/etc/resolv.conf"]).stdout
    assert inside.returncode == 0, inside.stderr
    assert "resolv.conf of PvD" in inside.stdout and f"nameserver {lab3.isp('ispa')['dns_v6']}" in inside.stdout
    assert before == after and "resolv.conf of PvD" not in after


def test_null_pvd_resolv_conf_names_no_real_server(lab3: Any, tmp_path: Path) -> None:
    done = lab3.exec([PVDRUN, "--pvd", "null", "dig", "+short", "+tries=1", "+time=1", "svc.example"])
    assert done.returncode != 0 or not done.stdout.strip(), done.stdout


@pytest.mark.parametrize("scenario", ["lab1", "lab2"])
def test_shared_interface_pvd_refused_without_pvdd_even_as_root(request: pytest.FixtureRequest,
                                                                tmp_path: Path, scenario: str) -> None:
    lab = request.getfixturevalue(scenario)
    env = {"PVDRUN_SOCKET": str(tmp_path / "no-daemon.sock")}
    done = lab.exec([PVDRUN, "--pvd", lab.isp("ispb")["pvd_id"], "true"], env=env)
    assert done.returncode == 4, (done.returncode, done.stderr)
    assert "needs pvdd's routing tables" in done.stderr


def test_inner_pvdrun_gets_its_own_resolv_conf(lab3: Any, tmp_path: Path) -> None:
    """An inner pvdrun overrides the outer one for resolv.conf readers too."""
    env = {"PVDRUN_SOCKET": str(tmp_path / "no-daemon.sock")}
    done = lab3.exec([PVDRUN, "--pvd", "ispa", PVDRUN, "--pvd", "ispb", "cat", "/etc/resolv.conf"], env=env)
    assert done.returncode == 0, done.stderr
    assert f"nameserver {lab3.isp('ispb')['dns_v6']}" in done.stdout, done.stdout
    assert lab3.isp("ispa")["dns_v6"] not in done.stdout
