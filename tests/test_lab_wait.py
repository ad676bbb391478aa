"""``pvdrun lab up --wait`` and ``lab heal --wait``: when they return, pvdrun itself (a one-shot
discovery in the lab's host namespace, no pvdd) knows every ISP's PvD, with its DNS server.

Each test builds its own lab with a unique name and removes it in a ``finally``.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import zlib
from collections.abc import Iterator

import pytest

from fixtures.commands import PVDRUN
from fixtures.prereq import require
from pvdrun import lab as lab_api
from pvdrun.errors import EXIT_FAILED, EXIT_USAGE

pytestmark = pytest.mark.root

#: what each ISP's PvD must carry in every scenario: its name and its own DNS server
DNS = {"ispa": "2001:db8:a:1::53", "ispb": "2001:db8:b:1::53"}


def _name(tag: str) -> str:
    return f"pvw{os.getpid() % 100000}{tag}"


def cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([PVDRUN, "lab", *args], capture_output=True, text=True, check=False,
                          timeout=timeout)


def one_shot_list(name: str) -> dict[str, dict]:
    """``pvdrun list --json --no-daemon`` in the host namespace: each PvD by each of its names."""
    done = cli("exec", "--name", name, "--", PVDRUN, "list", "--json", "--no-daemon", timeout=30)
    assert done.returncode == 0, done.stderr
    return {n: p for p in json.loads(done.stdout)["pvds"] for n in p["names"]}


@pytest.fixture
def root() -> None:
    require(os.geteuid() == 0, "root (the lab builds network namespaces)")


@pytest.fixture
def lab_name(root: None, request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique lab name; whatever lab of that name exists at the end is removed."""
    name = _name(str(zlib.crc32(request.node.name.encode()) % 10000))
    lab_api.down(name)
    try:
        yield name
    finally:
        lab_api.down(name)


@pytest.mark.parametrize("scenario", ["3", "1", "2"])
def test_up_wait_then_one_shot_list_knows_both_isps(lab_name: str, scenario: str) -> None:
    started = time.monotonic()
    done = cli("up", "--scenario", scenario, "--name", lab_name, "--wait", "--json")
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == lab_name
    assert took < 30, f"up --wait took {took:.1f} s"
    pvds = one_shot_list(lab_name)  # at once: no sleep, no retry
    for isp, server in DNS.items():
        assert isp in pvds, f"{isp} not listed: {sorted(pvds)}"
        assert server in pvds[isp]["dns_servers"], pvds[isp]
    # and `pvdrun --pvd ispa` reaches ispa's service by name at once (scenarios 1 and 2 share
    # one host link between the PvDs: launching there needs pvdd's routing tables)
    for isp in DNS if scenario == "3" else ():
        got = cli("exec", "--name", lab_name, "--", PVDRUN, "--pvd", isp, "curl", "-sS", "-m",
                  "5", "http://svc.example/", timeout=30)
        assert got.returncode == 0, got.stderr
        assert got.stdout.split()[0] == isp


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "nan", "1e9", ""])
def test_bad_timeout_is_one_line_and_exit_2(lab_name: str, bad: str) -> None:
    for command in (["up", "--scenario", "3"], ["heal"]):
        done = cli(*command, "--name", lab_name, "--wait", "--timeout", bad)
        assert done.returncode == EXIT_USAGE, done
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "--timeout" in done.stderr
        assert "Traceback" not in done.stderr
    assert not os.path.exists(f"/run/netns/{lab_name}-host")


def test_timeout_without_wait_is_refused(lab_name: str) -> None:
    done = cli("up", "--scenario", "3", "--name", lab_name, "--timeout", "5")
    assert done.returncode == EXIT_USAGE
    assert done.stderr.strip() == "pvdrun lab: --timeout needs --wait"


def test_up_wait_timeout_is_one_line_exit_1_and_removes_everything(lab_name: str) -> None:
    # 0.3 s: the host cannot have finished DAD of its SLAAC addresses yet
    done = cli("up", "--scenario", "3", "--name", lab_name, "--wait", "--timeout", "0.3")
    assert done.returncode == EXIT_FAILED, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "ispa" in lines[0] and "0.3 s" in lines[0]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            check=True).stdout
    assert lab_name not in listed
    assert not os.path.exists(f"/run/pvdrun/lab/{lab_name}")
    assert cli("status", "--name", lab_name).returncode == 10


def test_discovery_wait_names_what_was_not_heard(lab_name: str) -> None:
    """The waiting child's one line names the ISP whose PvD (or DNS server) is missing."""
    lab_api.up(3, lab_name, wait=30)
    expect = [{"isp": "ispc", "name": "ispc", "prefix": "2001:db8:c::/64", "dns": []},
              {"isp": "ispa", "name": "ispa", "prefix": "2001:db8:a::/64",
               "dns": ["2001:db8:a:1::99"]}]
    done = subprocess.run(["ip", "netns", "exec", f"{lab_name}-host", "python3", "-m",
                           "pvdrun.lab.pvdwait", "--expect", json.dumps(expect),
                           "--timeout", "0.5"], capture_output=True, text=True, check=False,
                          timeout=30)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "ispc: unknown PvD 'ispc'" in lines[0]
    assert "ispa: PvD implicit:ispa has no DNS server 2001:db8:a:1::99" in lines[0]


@pytest.mark.parametrize("fault", [["--ra-lifetime", "0"], ["--down"], ["--dns-down"]])
def test_heal_wait_returns_with_the_isp_known_and_answering(lab_name: str,
                                                            fault: list[str]) -> None:
    assert cli("up", "--scenario", "3", "--name", lab_name, "--wait").returncode == 0
    assert cli("fault", "--name", lab_name, "ispa", *fault).returncode == 0
    started = time.monotonic()
    done = cli("heal", "--name", lab_name, "--wait", "--timeout", "20", "ispa")
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    # the host's router solicitation brought the RA at once, not at dnsmasq's next one
    assert took < 8, f"heal --wait took {took:.1f} s"
    pvds = one_shot_list(lab_name)
    assert DNS["ispa"] in pvds["ispa"]["dns_servers"]
    assert any(r["dst"] == "default" and r["origin"] == "ra" for r in pvds["ispa"]["routes"])
    got = cli("exec", "--name", lab_name, "--", PVDRUN, "--pvd", "ispa", "curl", "-sS", "-m",
              "5", "http://svc.example/", timeout=30)
    assert got.returncode == 0 and got.stdout.startswith("ispa"), got


def test_heal_wait_times_out_with_one_line_when_the_isp_stays_broken(lab_name: str) -> None:
    """ispb keeps its fault: waiting for it times out (exit 1); the lab stays up."""
    assert cli("up", "--scenario", "3", "--name", lab_name, "--wait").returncode == 0
    assert cli("fault", "--name", lab_name, "ispb", "--dns-down").returncode == 0
    with pytest.raises(lab_api.LabWaitTimeout) as caught:
        lab_api.wait_known(lab_name, 2, ("ispb",))
    assert "\n" not in str(caught.value) and "2 s" in str(caught.value)
    assert cli("status", "--name", lab_name).returncode == 0
