"""End to end: ``pvdrun --pvd NAME curl http://svc.example/`` with the shim
core and the shim's resolver together.  The name means a different server in
each PvD (split horizon); the DNS query and the HTTP connection both stay in
the PvD: the capture on the PvD's own link holds both, the one on the other
ISP's link (nothing filtered out, proven live) holds nothing of the client.
Control: curl without pvdrun, its resolv.conf naming the other ISP's server,
is found on that link by the same verdict."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.capture import assert_caught, assert_no_leak, tcp_segment
from fixtures.pvdd import config_only
from fixtures.resolve_lab import SPLIT_PVDS, ResolveLab, split_lab  # noqa: F401

pytestmark = pytest.mark.root


def pvdrun(lab: ResolveLab, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``pvdrun ARGS`` in the client namespace; PvDs from a configuration file, no daemon."""
    return lab.run([sys.executable, "-m", "pvdrun.cli", *args], env=config_only(tmp_path, SPLIT_PVDS))


@pytest.mark.parametrize("own,other,expected", [("a", "b", "hello from ISP A"),
                                                ("b", "a", "hello from ISP B")])
def test_curl_split_horizon_name_in_each_pvd(split_lab: ResolveLab, tmp_path: Path, own: str,
                                             other: str, expected: str) -> None:
    with split_lab.capture(own) as own_pcap, split_lab.capture(other) as other_pcap:
        proc = pvdrun(split_lab, tmp_path, "--pvd", f"isp{own}", "curl", "-sS", "-m", "10",
                      "http://svc.example/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected
    assert split_lab.packets(own_pcap), "the PvD's DNS server was not asked"
    http = [f for f in own_pcap.frames_from(split_lab.isps[own].client_addrs)
            if (seg := tcp_segment(f)) and seg[1] == 80]
    assert http, "the HTTP connection is not on the PvD's link: " + own_pcap.show()
    assert_no_leak(other_pcap, proc.stdout, **split_lab.leak_rules(own))
    with split_lab.capture(other) as control:
        plain = split_lab.run(["curl", "-sS", "-m", "10", "http://svc.example/"],
                              resolv_conf=split_lab.isps[other].dns)
    assert_caught(control, plain.stdout, plain.stderr, **split_lab.leak_rules(own))


def test_curl_local_name_only_in_its_pvd(split_lab: ResolveLab, tmp_path: Path) -> None:
    # "www" goes through each PvD's own search list: www.isp-b.example exists only under B.
    proc = pvdrun(split_lab, tmp_path, "--pvd", "ispa", "curl", "-sS", "-m", "10", "http://www/")
    assert proc.returncode == 6, (proc.returncode, proc.stdout, proc.stderr)  # curl: could not resolve
    assert "Could not resolve host" in proc.stderr


def test_getent_ahostsv6_answers_from_the_pvd(split_lab: ResolveLab, tmp_path: Path) -> None:
    """getent (glibc's own tool) calls getaddrinfo: under B it gets B's split-horizon answer."""
    proc = pvdrun(split_lab, tmp_path, "--pvd", "ispb", "getent", "ahostsv6", "svc.example")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "2001:db8:b::80"
