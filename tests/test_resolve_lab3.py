"""Name resolution in the shared lab, scenario 3 (Figure 3 of the Troan document):
two uplinks whose IPv4 plans overlap completely, DNS server 198.51.100.53 in
BOTH ISPs.  PvDs come from the real discovery (RDNSS/DNSSL from the lab's
RAs), or from a configuration file that points both PvDs at the overlapping
IPv4 server.  The suite's capture (fixtures/capture.py: proven live, nothing filtered
out) on the other ISP's link proves no query went there (R25); the control, curl without
pvdrun given the same resolv.conf, is found on that link by the same verdict."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fixtures.capture import assert_caught, assert_no_leak
from fixtures.detour import main_table_prefers
from fixtures.lab_rules import OTHER, v4_dns_config
from fixtures.lab_rules import leak_rules_separate as leak_rules
from fixtures.pvdd import no_pvdd
from fixtures.resolvconf import nameservers, with_resolv_conf

pytestmark = pytest.mark.root

from fixtures.commands import PVDRUN  # noqa: E402


def no_daemon(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment that makes PvD lookups use one-shot discovery, never a pvdd of the host."""
    return no_pvdd(tmp_path, **extra)


@pytest.mark.parametrize("isp", ["ispa", "ispb"])
def test_curl_by_name_reaches_the_pvds_own_service(lab3: Any, tmp_path: Path, isp: str) -> None:
    info = lab3.isp(isp)
    targets = [info[k] for k in ("dns_v4", "dns_v6", "service_v4", "service_v6") if info[k]]
    # the main table sends the PvD's servers out of the other link: an untied socket would go there
    with main_table_prefers(lab3, OTHER[isp], targets), lab3.capture(OTHER[isp]) as other:
        done = lab3.exec([PVDRUN, "--pvd", isp, "curl", "-sS", "-m", "10", "http://svc.example/"],
                         env=no_daemon(tmp_path))
    assert_no_leak(other, done.stdout, **leak_rules(lab3, isp))  # neither the DNS query nor HTTP
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{isp} "), done.stdout


def test_control_curl_by_name_unscoped_is_caught(lab3: Any, tmp_path: Path) -> None:
    """Control of the tests of this module: curl without pvdrun, with the resolv.conf pvdrun
    gives PvD ispb's programs, asks ispb's servers through the host's default route (ispa):
    the same capture and verdict find it on ispa's link."""
    given = lab3.exec([PVDRUN, "--pvd", "ispb", "cat", "/etc/resolv.conf"], env=no_daemon(tmp_path))
    assert given.returncode == 0 and "nameserver" in given.stdout, given.stderr
    with lab3.capture("ispa") as other:
        plain = lab3.exec(with_resolv_conf(["curl", "-sS", "-m", "10", "http://svc.example/"], given.stdout))
    assert_caught(other, plain.stdout, plain.stderr, **leak_rules(lab3, "ispb"))
    with lab3.capture("ispa") as other:  # and the overlapping IPv4 server, as the v4 tests use
        plain = lab3.exec(with_resolv_conf(["getent", "ahostsv4", "intranet.ispa.example"],
                                           nameservers(lab3.isp("ispb")["dns_v4"])))
    assert_caught(other, plain.stdout, plain.stderr, **leak_rules(lab3, "ispb"))


def test_local_name_through_each_pvds_search_list(lab3: Any, tmp_path: Path) -> None:
    found = lab3.exec([PVDRUN, "resolve", "--pvd", "ispa", "--type", "AAAA", "intranet"],
                      env=no_daemon(tmp_path))
    assert found.returncode == 0, found.stderr
    assert found.stdout.split("\t")[0] == "intranet.ispa.example"
    assert found.stdout.split()[-1] == lab3.isp("ispa")["intranet_v6"]
    missing = lab3.exec([PVDRUN, "resolve", "--pvd", "ispb", "intranet.ispa.example"],
                        env=no_daemon(tmp_path))
    assert missing.returncode == 1 and "no such name" in missing.stderr, missing.stderr


@pytest.mark.parametrize("pvd,isp", [("v4a", "ispa"), ("v4b", "ispb")])
def test_overlapping_ipv4_dns_server_is_each_pvds_own(lab3: Any, tmp_path: Path, pvd: str, isp: str) -> None:
    """Both ISPs' DNS server is 198.51.100.53; only ISP A knows intranet.ispa.example."""
    env = v4_dns_config(tmp_path, lab3)
    dns_v4 = lab3.isp(isp)["dns_v4"]
    with lab3.capture(isp) as own, lab3.capture(OTHER[isp]) as other:
        python = lab3.exec([PVDRUN, "resolve", "--pvd", pvd, "--type", "A", "intranet.ispa.example"], env=env)
        shim = lab3.exec([PVDRUN, "--pvd", pvd, "getent", "ahostsv4", "intranet.ispa.example"], env=env)
    if isp == "ispa":
        assert python.returncode == 0 and python.stdout.split()[-1] == lab3.isp("ispa")["intranet_v4"], python
        assert shim.returncode == 0 and shim.stdout.split()[0] == lab3.isp("ispa")["intranet_v4"], shim
    else:
        assert python.returncode == 1, python
        assert shim.returncode == 2, shim  # getent: key not found
    assert own.packets_to(dns_v4)
    assert_no_leak(other, python.stdout, shim.stdout, **leak_rules(lab3, isp))
