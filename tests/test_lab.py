"""The multihoming lab (``pvdrun lab``) is wired as docs/lab.md says.

For every scenario: each ISP's HTTP, UDP echo and DNS answer through that
ISP only (checked with captures on the other ISP's side), DNS is
split-horizon, the host's main table holds both ISPs' defaults, and in
scenarios 1/2 the RFC 8801 PvD options really arrive at the host.  Then the
CLI's bad-input paths, exit statuses, and complete teardown.

Clients are bound the way a scoped program would be: in scenario 3 to the
interface (SO_BINDTODEVICE: ``curl --interface ispb``; the IPv4 source
address is the same on both interfaces, so ``dig -b`` cannot choose and the
DNS queries use ``pvdrun.lab.probe --device``), in scenarios 1/2 to the
source address (``curl --interface ADDR``, ``dig -b ADDR``).
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fixtures.capture import assert_no_leak
from fixtures.unprivileged import User, unprivileged_user  # noqa: F401 (fixture)
from fixtures.lab import Lab, lab_name
from pvdrun import lab as lab_api
from pvdrun.lab import ra as ra_wire
from pvdrun.lab.errors import EXIT_ALREADY_UP, EXIT_NOT_UP, EXIT_SETUP_FAILED, LabBadInput
from pvdrun.errors import EXIT_MISSING_PREREQ

ISPS = ("ispa", "ispb")
pytestmark = pytest.mark.root


@pytest.fixture(params=[1, 2, 3], ids=lambda n: f"scenario{n}")
def any_lab(request: pytest.FixtureRequest) -> Lab:
    """Each scenario's session lab in turn."""
    return request.getfixturevalue(f"lab{request.param}")


#: (scenario, isp, IP version) where that ISP offers that family (scenarios 1/2: IPv4 from ispa only).
FAMILY_COMBOS = [(n, isp, v) for n in (1, 2, 3) for isp in ISPS for v in (4, 6)
                 if not (n in (1, 2) and isp == "ispb" and v == 4)]


def combo_id(combo: tuple[int, str, int]) -> str:
    return f"scenario{combo[0]}-{combo[1]}-v{combo[2]}"


@pytest.fixture(params=FAMILY_COMBOS, ids=combo_id)
def lab_isp_family(request: pytest.FixtureRequest) -> tuple[Lab, str, int]:
    """(lab, isp, version) for every family an ISP offers in every scenario."""
    scenario, isp, version = request.param
    return request.getfixturevalue(f"lab{scenario}"), isp, version


@pytest.fixture(params=[1, 2], ids=lambda n: f"scenario{n}")
def pvd_lab(request: pytest.FixtureRequest) -> Lab:
    """The scenarios with RFC 8801 PvD options."""
    return request.getfixturevalue(f"lab{request.param}")


def pvdrun_cli(*args: str, env: dict[str, str] | None = None,
               prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run ``pvdrun ARGS`` (as ``python -m pvdrun.cli``, independent of PATH)."""
    return subprocess.run([*(prefix or []), sys.executable, "-m", "pvdrun.cli", *args],
                          capture_output=True, text=True, timeout=120, env=env, cwd="/")


def url(address: str) -> str:
    return f"http://[{address}]/" if ":" in address else f"http://{address}/"


def binding(lab: Lab, isp: str, version: int) -> str:
    """What ``curl --interface`` gets: the device in scenario 3, else the source address."""
    return isp if lab.scenario == 3 else lab.host_address(isp, version)


def service_of(lab: Lab, isp: str, version: int) -> str:
    """The ISP's service address in that family (present for every FAMILY_COMBOS entry)."""
    service = lab.isp(isp)[f"service_v{version}"]
    assert service, f"status lacks {isp} service_v{version}"
    return service


def dns_query(lab: Lab, isp: str, server: str, name: str, rdtype: str) -> tuple[str, list[str]]:
    """(rcode, answers) of one query to ``server`` sent the way ``isp``'s traffic goes."""
    if lab.scenario == 3:
        done = lab.exec([sys.executable, "-m", "pvdrun.lab.probe", "dns", server, name,
                         "--type", rdtype, "--device", isp])
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        return result["rcode"], result["answers"]
    version = ipaddress.ip_address(server).version
    done = lab.exec(["dig", "+time=2", "+tries=2", "+noall", "+comments", "+answer",
                     "-b", lab.host_address(isp, version), f"@{server}", name, rdtype])
    assert done.returncode == 0, done.stdout + done.stderr
    rcode = re.search(r"status: (\w+)", done.stdout)
    assert rcode, done.stdout
    answers = [line.split()[-1] for line in done.stdout.splitlines()
               if line and not line.startswith(";") and f"\t{rdtype}\t" in line]
    return rcode[1], answers


# -- services ------------------------------------------------------------------

def test_http_answers_from_the_chosen_isp_only(lab_isp_family: tuple[Lab, str, int]) -> None:
    any_lab, isp, version = lab_isp_family
    service = service_of(any_lab, isp, version)
    other = "ispb" if isp == "ispa" else "ispa"
    with any_lab.capture(isp) as mine, any_lab.capture(other) as theirs:
        done = any_lab.exec(["curl", "-sS", "--max-time", "5", "--interface",
                             binding(any_lab, isp, version), url(service)])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [isp, any_lab.host_address(isp, version)]
    assert mine.packets_to(service), "the chosen ISP's capture saw nothing"
    assert_no_leak(theirs, done.stdout, sources=[any_lab.host_address(isp, version)],
                   quiet=any_lab.isp(other)["host_addresses"], destinations=[service])


def test_udp_echo_answers(lab_isp_family: tuple[Lab, str, int]) -> None:
    any_lab, isp, version = lab_isp_family
    service = service_of(any_lab, isp, version)
    source = any_lab.host_address(isp, version)
    if version == 6:
        target = f"UDP6:[{service}]:7"
    else:
        target = f"UDP4:{service}:7"
    option = f"so-bindtodevice={isp}" if any_lab.scenario == 3 else \
        (f"bind=[{source}]" if version == 6 else f"bind={source}")
    done = subprocess.run(any_lab.argv(["socat", "-t", "2", "-T", "3", "-", f"{target},{option}"]),
                          input="hello\n", capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [isp, source, "hello"]


# -- DNS -------------------------------------------------------------------------

@pytest.mark.parametrize("rdtype", ["A", "AAAA"])
def test_svc_example_is_split_horizon(lab_isp_family: tuple[Lab, str, int], rdtype: str) -> None:
    """svc.example, asked over the combo's family, gives that ISP's own addresses."""
    any_lab, isp, transport = lab_isp_family
    info = any_lab.isp(isp)
    server = info[f"dns_v{transport}"]
    expected = info["service_v4"] if rdtype == "A" else info["service_v6"]
    rcode, answers = dns_query(any_lab, isp, server, "svc.example", rdtype)
    assert rcode == "NOERROR"
    assert answers == ([expected] if expected else [])


def test_ispb_has_no_ipv4_in_scenarios_1_and_2(pvd_lab: Lab) -> None:
    ispb = pvd_lab.isp("ispb")
    assert [ispb[k] for k in ("router_v4", "dns_v4", "service_v4")] == [None, None, None]
    assert all(":" in a for a in ispb["host_addresses"])


def test_scenario2_gateway_forwards_by_source_prefix(lab2: Lab) -> None:
    """A packet from ispa's prefix to ispb's service goes to ispa (and dies there), never ispb."""
    target = lab2.isp("ispb")["service_v6"]
    source = lab2.host_address("ispa", 6)
    with lab2.capture("ispa") as ispa, lab2.capture("ispb") as ispb:
        done = lab2.exec(["curl", "-sS", "--max-time", "3", "--interface", source, url(target)])
    assert done.returncode != 0
    assert ispa.packets_from(source)
    assert_no_leak(ispb, done.stderr, sources=[source])


def test_intranet_exists_only_at_ispa(any_lab: Lab) -> None:
    ispa, ispb = any_lab.isp("ispa"), any_lab.isp("ispb")
    rcode, answers = dns_query(any_lab, "ispa", ispa["dns_v6"], "intranet.ispa.example", "AAAA")
    assert (rcode, answers) == ("NOERROR", [ispa["intranet_v6"]])
    rcode, answers = dns_query(any_lab, "ispb", ispb["dns_v6"], "intranet.ispa.example", "AAAA")
    assert (rcode, answers) == ("NXDOMAIN", [])


def test_scenario3_ipv4_plans_overlap(lab3: Lab) -> None:
    for ifname in ISPS:
        done = lab3.exec(["ip", "-j", "-4", "addr", "show", "dev", ifname], check=True)
        addrs = [(a["local"], a["prefixlen"]) for link in json.loads(done.stdout)
                 for a in link["addr_info"]]
        assert addrs == [("192.0.2.10", 24)], ifname
    ispa, ispb = lab3.isp("ispa"), lab3.isp("ispb")
    for key in ("router_v4", "dns_v4", "service_v4"):
        assert ispa[key] == ispb[key], key
    # the same DNS server address gives each ISP's own answer, by interface only
    for isp in ISPS:
        rcode, answers = dns_query(lab3, isp, ispa["dns_v4"], "svc.example", "AAAA")
        assert answers == [lab3.isp(isp)["service_v6"]]


# -- routes ---------------------------------------------------------------------

def test_host_main_table_has_both_isps_defaults(any_lab: Lab) -> None:
    v4 = json.loads(any_lab.exec(["ip", "-j", "-4", "route", "show", "default"],
                                 check=True).stdout)
    got4 = sorted((r["dev"], r["gateway"], r.get("metric")) for r in v4)
    if any_lab.scenario == 3:
        assert got4 == [("ispa", "192.0.2.1", 100), ("ispb", "192.0.2.1", 200)]
    else:
        assert got4 == [("lan0", "192.0.2.1", 100)]
    v6 = json.loads(any_lab.exec(["ip", "-j", "-6", "route", "show", "default"],
                                 check=True).stdout)
    got6 = sorted((r["dev"], r["gateway"]) for r in v6 if r.get("protocol") == "ra")
    expected = sorted({(any_lab.isp(i)["host_interfaces"][0], any_lab.isp(i)["router_ll"])
                       for i in ISPS})
    assert got6 == expected
    assert len(expected) == (1 if any_lab.scenario == 2 else 2)


# -- RFC 8801 RAs ------------------------------------------------------------------

SEND_RS = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[1].encode())
s.sendto(bytes([133, 0, 0, 0, 0, 0, 0, 0]), ("ff02::2", 0, 0, socket.if_nametoindex(sys.argv[1])))
"""


def _ras(frames: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    """(source address, parsed RA) for every Ethernet/IPv6 RA frame."""
    result = []
    for frame in frames:
        packet = frame[14:]
        if len(packet) > 40 and packet[6] == 58 and packet[40] == ra_wire.ND_ROUTER_ADVERT:
            source = str(ipaddress.IPv6Address(packet[8:24]))
            result.append((source, ra_wire.parse_ra(packet[40:])))
    return result


def _pvd_options(ra: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in ra["options"] if o["type"] == ra_wire.OPT_PVD]


def _prefixes(options: list[dict[str, Any]]) -> set[str]:
    return {f"{ipaddress.IPv6Address(o['raw'][16:32])}/{o['raw'][2]}"
            for o in options if o["type"] == ra_wire.OPT_PIO}


def test_host_receives_pvd_options_for_both_isps(pvd_lab: Lab) -> None:
    wanted = {pvd_lab.isp(i)["pvd_id"] for i in ISPS}
    with pvd_lab.capture(ns="host", ifname="lan0", bpf="icmp6 and ip6[40]==134",
                         pcap=True) as cap:
        pvd_lab.exec([sys.executable, "-c", SEND_RS, "lan0"], check=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            ras = _ras(cap.read_frames())
            seen = {o["pvd_id"] for _, ra in ras for o in _pvd_options(ra)}
            plain = {p for _, ra in ras if not _pvd_options(ra) for p in _prefixes(ra["options"])}
            if seen >= wanted and plain >= {pvd_lab.isp(i)["prefix_v6"] for i in ISPS}:
                break
            time.sleep(0.3)
    ras = _ras(cap.frames)
    for isp in ISPS:
        info = pvd_lab.isp(isp)
        mine = [(src, ra, o) for src, ra in ras for o in _pvd_options(ra)
                if o["pvd_id"] == info["pvd_id"]]
        assert mine, f"no RA with PvD option {info['pvd_id']}"
        for source, ra, option in mine:
            assert source == info["router_ll"]
            assert (option["h"], option["l"], option["r"]) == (True, False, False)  # H: the lab serves Additional Information
            nested = option["options"]
            assert _prefixes(nested) == {info["prefix_v6"]}
            rdnss = [o for o in nested if o["type"] == ra_wire.OPT_RDNSS]
            assert [str(ipaddress.IPv6Address(rdnss[0]["raw"][8:24]))] == [info["dns_v6"]]
            dnssl = [o for o in nested if o["type"] == ra_wire.OPT_DNSSL]
            assert ra_wire.decode_fqdn(dnssl[0]["raw"][8:])[0] == info["search_domain"]
            assert ra["router_lifetime"] > 0  # same router: 0 would withdraw its default route
        assert len({o["sequence"] for _, _, o in mine}) == 1, "sequence changed without content"
        # the same ISP's options OUTSIDE a PvD option (dnsmasq), for PvD-unaware hosts
        plain = [ra for src, ra in ras if src == info["router_ll"] and not _pvd_options(ra)
                 and info["prefix_v6"] in _prefixes(ra["options"])]
        assert plain, f"no plain RA with {info['prefix_v6']}"
    if pvd_lab.scenario == 2:
        assert pvd_lab.isp("ispa")["router_ll"] == pvd_lab.isp("ispb")["router_ll"]


# -- status and exec -------------------------------------------------------------------

def test_status_json(any_lab: Lab) -> None:
    done = pvdrun_cli("lab", "status", "--json", "--name", any_lab.name)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["scenario"] == any_lab.scenario and status["host_ns"] == any_lab.host_ns
    assert set(status["isps"]) == set(ISPS)
    keys = {"host_interfaces", "host_addresses", "router_v4", "router_v6", "router_ll", "dns_v4",
            "dns_v6", "service_v4", "service_v6", "prefix_v6", "pvd_id", "search_domain",
            "capture_ns", "capture_if"}
    for isp, info in status["isps"].items():
        assert keys <= set(info)
        assert info["search_domain"] == f"{isp}.example"
        assert info["pvd_id"] == (None if any_lab.scenario == 3 else f"{isp}.example")
        assert all("/" not in a for a in info["host_addresses"])
    for role, ns in status["namespaces"].items():
        assert ns == f"{any_lab.name}-{role}" and os.path.exists(f"/run/netns/{ns}")
    table = pvdrun_cli("lab", "status", "--name", any_lab.name)
    assert table.returncode == 0 and "service_v6" in table.stdout


def test_exec_runs_in_host_namespace_with_the_commands_status(lab3: Lab) -> None:
    done = pvdrun_cli("lab", "exec", "--name", lab3.name, "--", "ip", "-o", "link", "show", "ispb")
    assert done.returncode == 0, done.stderr
    done = pvdrun_cli("lab", "exec", "--name", lab3.name, "--ns", "ispb", "--",
                      "ip", "-o", "link", "show", "down0")
    assert done.returncode == 0, done.stderr
    assert pvdrun_cli("lab", "exec", "--name", lab3.name, "--", "sh", "-c", "exit 42").returncode == 42
    done = pvdrun_cli("lab", "exec", "--name", lab3.name, "--ns", "gw", "--", "true")
    assert done.returncode == 2 and "no namespace role 'gw'" in done.stderr


# -- bad input -----------------------------------------------------------------------

def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_up_twice_says_already_up(lab3: Lab) -> None:
    done = pvdrun_cli("lab", "up", "--scenario", "3", "--name", lab3.name)
    assert done.returncode == EXIT_ALREADY_UP
    assert "already up" in _one_line(done.stderr)
    assert lab_api.status(lab3.name)["namespaces"] == lab3.status["namespaces"]


def test_down_with_nothing_up_is_quiet() -> None:
    done = pvdrun_cli("lab", "down", "--name", f"{lab_name(0)}none")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_status_and_exec_of_a_lab_that_is_not_up() -> None:
    for args in (["status"], ["exec", "--", "true"]):
        done = pvdrun_cli("lab", *args[:1], "--name", f"{lab_name(0)}none", *args[1:])
        assert done.returncode == EXIT_NOT_UP and "not up" in _one_line(done.stderr)


def test_unknown_scenario_and_bad_name() -> None:
    done = pvdrun_cli("lab", "up", "--scenario", "4", "--name", f"{lab_name(0)}bad")
    assert done.returncode == 2 and "'4' is not one of" in done.stderr
    with pytest.raises(LabBadInput):
        lab_api.up(4, f"{lab_name(0)}bad")
    done = pvdrun_cli("lab", "up", "--scenario", "3", "--name", "bad name")
    assert done.returncode == 2 and "bad lab name" in _one_line(done.stderr)


def _bin_dir(tmp_path: Path, fake_dnsmasq: str | None,
             tools: tuple[str, ...] = ("ip", "sysctl")) -> dict[str, str]:
    """An environment whose PATH holds ``tools`` (and maybe a fake dnsmasq) only."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in tools:
        (bindir / tool).symlink_to(subprocess.check_output(["sh", "-c", f"command -v {tool}"],
                                                           text=True).strip())
    if fake_dnsmasq is not None:
        (bindir / "dnsmasq").write_text(fake_dnsmasq)
        (bindir / "dnsmasq").chmod(0o755)
    return {**os.environ, "PATH": str(bindir)}


def _leftovers(name: str) -> list[str]:
    netns = [n for n in os.listdir("/run/netns") if n.startswith(f"{name}-")] \
        if os.path.isdir("/run/netns") else []
    files = [p for p in (f"/run/pvdrun/lab/{name}.json", f"/run/pvdrun/lab/{name}")
             if os.path.exists(p)]
    return netns + files


@pytest.mark.parametrize("missing", ["dnsmasq", "ip"])
def test_missing_program_stops_with_exit_5(tmp_path: Path, missing: str) -> None:
    name = f"{lab_name(0)}no{missing}"
    present = tuple(t for t in ("ip", "sysctl", "dnsmasq") if t != missing)
    done = pvdrun_cli("lab", "up", "--scenario", "3", "--name", name,
                      env=_bin_dir(tmp_path, None, present))
    assert done.returncode == EXIT_MISSING_PREREQ
    assert f"needs '{missing}'" in _one_line(done.stderr)
    assert _leftovers(name) == []


def test_not_root_stops_with_exit_5(unprivileged_user: User) -> None:
    """Without root, ``up`` refuses before touching anything: ``pvdrun lab up`` run by a real
    unprivileged user (useradd + setpriv; fixtures/unprivileged.py makes the interpreter under
    /root reachable for it) exits 5 with one line, and leaves nothing."""
    name = f"{lab_name(0)}user"
    done = subprocess.run(unprivileged_user.python(["-m", "pvdrun.cli", "lab", "up", "--scenario", "3",
                                                    "--name", name]),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_MISSING_PREREQ, (done.returncode, done.stderr)
    assert "needs root" in _one_line(done.stderr)
    assert _leftovers(name) == []


def test_failure_midway_tears_down_what_was_made(tmp_path: Path) -> None:
    name = f"{lab_name(0)}fail"
    fake = "#!/bin/sh\necho 'fake dnsmasq: refusing to start' >&2\nexit 3\n"
    done = pvdrun_cli("lab", "up", "--scenario", "3", "--name", name,
                      env=_bin_dir(tmp_path, fake))
    assert done.returncode == EXIT_SETUP_FAILED
    assert "refusing to start" in _one_line(done.stderr)
    assert _leftovers(name) == []


def test_down_removes_every_namespace_process_and_file() -> None:
    name = f"{lab_name(0)}down"
    try:
        done = pvdrun_cli("lab", "up", "--scenario", "3", "--name", name)
        assert done.returncode == 0, done.stderr
        state = json.loads(Path(f"/run/pvdrun/lab/{name}.json").read_text())
        pids = [p["pid"] for p in state["processes"]]
        assert {p["what"] for p in state["processes"]} == {"dnsmasq", "service"}
        lingering = subprocess.Popen(["ip", "netns", "exec", f"{name}-host", "sleep", "300"])
        done = pvdrun_cli("lab", "down", "--name", name)
        assert (done.returncode, done.stderr) == (0, "")
        lingering.wait(timeout=10)
        assert [p for p in pids if os.path.exists(f"/proc/{p}")
                and Path(f"/proc/{p}/stat").read_text().split(") ")[1][0] != "Z"] == []
        assert _leftovers(name) == []
    finally:
        pvdrun_cli("lab", "down", "--name", name)
