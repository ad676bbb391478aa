"""The lab serves PvD Additional Information (RFC 8801 section 4) in scenarios 1 and 2.

Real parts only: the lab's own CA made by openssl, each ISP's HTTPS server in its namespace,
the ISPs' dnsmasq, tinyproxy in ispb, the RAs as the host namespace receives them (read with
pvdrun's own RA parser), curl as the client.  Every command runs inside the lab's
namespaces; each module-level lab has a unique name and is removed even when a test fails.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.commands import PVDRUN
from fixtures.lab import Lab
from fixtures.prereq import require
from pvdrun import lab as lab_api
from pvdrun.errors import EXIT_LAB_NOT_UP, EXIT_MISSING_PREREQ, EXIT_USAGE
from pvdrun.lab import pvdinfo
from pvdrun.lab import state as lab_state

pytestmark = pytest.mark.root

ISPS = ("ispa", "ispb")

#: Prints one JSON line per PvD option of every RA heard on an interface, for SECONDS.
LISTEN_RA = r"""
import json, socket, sys, time
from pvdrun.lab.ra import OPT_PVD, parse_ra
ifname, seconds = sys.argv[1], float(sys.argv[2])
sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
print(json.dumps({"listening": True}), flush=True)
end = time.monotonic() + seconds
while (left := end - time.monotonic()) > 0:
    sock.settimeout(left)
    try:
        data, peer = sock.recvfrom(65535)
    except socket.timeout:
        break
    if not data or data[0] != 134:
        continue
    for option in parse_ra(data)["options"]:
        if option["type"] == OPT_PVD:
            print(json.dumps({"t": time.time(), "src": peer[0], "pvd_id": option["pvd_id"],
                              "h": option["h"], "sequence": option["sequence"]}), flush=True)
"""


def _require_tools() -> None:
    require(os.geteuid() == 0, "root (the lab builds network namespaces)")
    for program in ("openssl", "tinyproxy", "curl"):
        require(shutil.which(program) is not None, f"{program} (Debian package {program})")


#: lab name -> ISP -> the object ``lab up`` made (tests that change it put it back)
ORIGINAL: dict[str, dict[str, dict[str, Any]]] = {}


def _private_lab(scenario: int) -> Iterator[Lab]:
    _require_tools()
    name = f"pvp{os.getpid() % 100000}s{scenario}"
    lab_api.down(name)
    try:
        status = lab_api.up(scenario, name)
        ORIGINAL[name] = {isp: entry["pvd_info"]["object"]
                          for isp, entry in status["isps"].items() if entry["pvd_info"]}
        yield Lab(name, scenario, status)
    finally:
        lab_api.down(name)


@pytest.fixture(scope="module", params=[1, 2], ids=["scenario1", "scenario2"])
def plab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    yield from _private_lab(request.param)


@pytest.fixture(scope="module")
def plab3() -> Iterator[Lab]:
    yield from _private_lab(3)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PVDRUN, "lab", *args], capture_output=True, text=True, check=False,
                          timeout=60, env=env)


def pvd_info(lab: Lab, isp: str, *args: str) -> subprocess.CompletedProcess:
    done = cli("pvd-info", "--name", lab.name, isp, *args)
    assert done.returncode == 0, done.stderr
    return done


def _info(lab: Lab, isp: str) -> dict[str, Any]:
    return lab.refresh()["isps"][isp]["pvd_info"]


def fetch(lab: Lab, isp: str, address: str | None = None,
          extra: tuple[str, ...] = ()) -> tuple[int, bytes, str]:
    """curl https://<PvD ID>/.well-known/pvd from the host namespace, trusting the lab's CA,
    with the PvD ID pinned to ``address`` (default: the server's IPv6 address):
    (curl's exit status, body, content type)."""
    info = _info(lab, isp)
    pvd_id = lab.isp(isp)["pvd_id"]
    address = address or info["addresses"][0]
    pinned = f"[{address}]" if ":" in address else address
    done = subprocess.run(
        lab.argv(["curl", "-sS", "--max-time", "10", "--cacert", lab.status["ca_file"],
                  "--resolve", f"{pvd_id}:443:{pinned}", "-o", "-",
                  "-w", "\n%{content_type}", *extra, info["url"]]),
        capture_output=True, check=False, timeout=30)
    body, _, content_type = done.stdout.rpartition(b"\n")
    return done.returncode, body, content_type.decode()


def log_lines(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as log:
        return [json.loads(line) for line in log if line.strip()]


def dns(lab: Lab, server: str, name: str, rdtype: str = "AAAA") -> dict[str, Any]:
    done = lab.exec([sys.executable, "-m", "pvdrun.lab.probe", "dns", server, name,
                     "--type", rdtype], check=True)
    return json.loads(done.stdout)


def _restore(lab: Lab, isp: str) -> None:
    """Serve the object ``lab up`` made again (tests that change it call this in finally)."""
    original = ORIGINAL[lab.name][isp]
    args = [f"--set={key}={json.dumps(value)}" for key, value in original.items()]
    state = lab_state.load(lab.name)
    assert state is not None
    recorded = state["pvd_info"][isp]["object"]  # the object, also while --raw bytes are served
    args += [f"--unset={key}" for key in recorded if key not in original]
    pvd_info(lab, isp, *args)


# -- what lab up makes -----------------------------------------------------------------------

def test_status_gives_ca_urls_objects_logs_and_proxy(plab: Lab) -> None:
    status = plab.refresh()
    assert Path(status["ca_file"]).is_file()
    for isp in ISPS:
        entry = status["isps"][isp]
        info = entry["pvd_info"]
        assert info["url"] == f"https://{entry['pvd_id']}/.well-known/pvd"
        assert info["h_flag"] is True and isinstance(info["sequence"], int)
        assert Path(info["log"]).is_file() and info["raw"] is None
        obj = info["object"]
        assert obj["identifier"] == entry["pvd_id"]
        assert obj["prefixes"] == [entry["prefix_v6"]]
        assert obj["dnsZones"] == [entry["search_domain"]]
        assert datetime.datetime.fromisoformat(obj["expires"].replace("Z", "+00:00")) > \
            datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=23)
    assert status["isps"]["ispa"]["pvd_info"]["object"]["noInternet"] is True
    assert "noInternet" not in status["isps"]["ispb"]["pvd_info"]["object"]
    proxy = status["isps"]["ispb"]["proxy"]
    assert status["isps"]["ispb"]["pvd_info"]["object"]["proxies"] == [
        {"protocol": "http-connect", "proxy": f"{proxy['name']}:{proxy['port']}"}]
    assert Path(proxy["log"]).is_file() and status["isps"]["ispa"]["proxy"] is None


def test_ra_carries_h_flag_and_sequence(plab: Lab) -> None:
    done = plab.exec([sys.executable, "-c", LISTEN_RA, "lan0", "5"], check=True, timeout=30)
    heard = [json.loads(line) for line in done.stdout.splitlines()][1:]
    for isp in ISPS:
        mine = [h for h in heard if h["pvd_id"] == plab.isp(isp)["pvd_id"]]
        assert mine, f"no PvD option for {isp} in 5 s"
        assert all(h["h"] for h in mine)
        assert {h["sequence"] for h in mine} == {_info(plab, isp)["sequence"]}


def test_fetch_over_https_with_the_lab_ca_is_logged(plab: Lab) -> None:
    for isp in ISPS:
        info = _info(plab, isp)
        for address in info["addresses"]:
            before = len(log_lines(info["log"]))
            code, body, content_type = fetch(plab, isp, address)
            assert code == 0, body
            assert content_type == "application/pvd+json"
            assert json.loads(body) == info["object"]
            logged = log_lines(info["log"])
            assert len(logged) == before + 1
            assert logged[-1]["path"] == "/.well-known/pvd" and logged[-1]["status"] == 200
            assert logged[-1]["client"] in plab.isp(isp)["host_addresses"]
    # TLS is real: without the lab's CA, or for another name, curl refuses
    info = _info(plab, "ispa")
    address = f"[{info['addresses'][0]}]"
    untrusted = plab.exec(["curl", "-sS", "--max-time", "10", "--resolve",
                           f"ispa.example:443:{address}", info["url"]])
    assert untrusted.returncode == 60, untrusted.stderr
    wrong_name = plab.exec(["curl", "-sS", "--max-time", "10", "--cacert",
                            plab.status["ca_file"], "--resolve", f"ispb.example:443:{address}",
                            "https://ispb.example/.well-known/pvd"])
    assert wrong_name.returncode == 60, wrong_name.stderr


def test_pvd_ids_and_zones_resolve_only_at_their_own_isp(plab: Lab) -> None:
    a, b = plab.isp("ispa"), plab.isp("ispb")
    assert dns(plab, a["dns_v6"], "ispa.example")["answers"] == [a["pvd_info"]["addresses"][0]]
    assert dns(plab, a["dns_v6"], "ispa.example", "A")["answers"] == \
        a["pvd_info"]["addresses"][1:]
    assert dns(plab, b["dns_v6"], "ispb.example")["answers"] == [b["pvd_info"]["addresses"][0]]
    assert dns(plab, b["dns_v6"], "ispa.example")["rcode"] == "NXDOMAIN"
    assert dns(plab, a["dns_v6"], "ispb.example")["rcode"] == "NXDOMAIN"
    # a split-horizon name inside each zone, answered by that zone's ISP only
    assert dns(plab, a["dns_v6"], "intranet.ispa.example")["answers"] == [a["intranet_v6"]]
    assert dns(plab, b["dns_v6"], "intranet.ispa.example")["rcode"] == "NXDOMAIN"
    assert dns(plab, b["dns_v6"], "mail.ispb.example")["answers"] == [b["mail_v6"]]
    assert dns(plab, a["dns_v6"], "mail.ispb.example")["rcode"] == "NXDOMAIN"
    assert dns(plab, b["dns_v6"], "proxy.ispb.example")["answers"] == [b["proxy"]["address"]]
    assert dns(plab, a["dns_v6"], "proxy.ispb.example")["rcode"] == "NXDOMAIN"


def test_ispb_proxy_reaches_ispb_service_and_logs_it(plab: Lab) -> None:
    b = plab.isp("ispb")
    proxy = b["proxy"]
    target = f"http://[{b['service_v6']}]/"
    done = plab.exec(["curl", "-sS", "--max-time", "10", "-x", proxy["url"], target])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ispb ")
    log = Path(proxy["log"]).read_text(encoding="utf-8", errors="replace")
    assert f"GET {target}" in log
    # CONNECT (what "http-connect" means) to ispb's PvD server, TLS end to end
    info = b["pvd_info"]
    tunnel = plab.exec(["curl", "-sS", "--max-time", "10", "-p", "-x", proxy["url"],
                        "--cacert", plab.status["ca_file"], "--connect-to",
                        f"ispb.example:443:[{info['addresses'][0]}]:443", info["url"]])
    assert tunnel.returncode == 0, tunnel.stderr
    assert json.loads(tunnel.stdout)["identifier"] == "ispb.example"
    assert "CONNECT" in Path(proxy["log"]).read_text(encoding="utf-8", errors="replace")


# -- lab pvd-info ------------------------------------------------------------------------------

def test_set_unset_and_show(plab: Lab) -> None:
    try:
        pvd_info(plab, "ispa", "--set", "noInternet=false", "--set", 'dnsZones=["x.example"]',
                 "--set", "metered=true", "--unset", "name")
        code, body, _ = fetch(plab, "ispa")
        served = json.loads(body)
        assert code == 0
        assert served["noInternet"] is False and served["dnsZones"] == ["x.example"]
        assert served["metered"] is True and "name" not in served
        assert json.loads(pvd_info(plab, "ispa").stdout) == served
        info = _info(plab, "ispa")
        assert info["object"] == served
        assert info["changes"][-1]["set"] == {"noInternet": False, "dnsZones": ["x.example"],
                                              "metered": True}
        assert info["changes"][-1]["unset"] == ["name"]
    finally:
        _restore(plab, "ispa")
    assert json.loads(fetch(plab, "ispa")[1]) == ORIGINAL[plab.name]["ispa"]


def test_expires(plab: Lab) -> None:
    try:
        pvd_info(plab, "ispb", "--expires", "-60")
        expires = json.loads(fetch(plab, "ispb")[1])["expires"]
        when = datetime.datetime.fromisoformat(expires.replace("Z", "+00:00"))
        now = datetime.datetime.now(datetime.timezone.utc)
        assert now - datetime.timedelta(seconds=120) < when < now
        pvd_info(plab, "ispb", "--expires=30")
        when = datetime.datetime.fromisoformat(
            json.loads(fetch(plab, "ispb")[1])["expires"].replace("Z", "+00:00"))
        assert now < when < now + datetime.timedelta(seconds=120)
    finally:
        _restore(plab, "ispb")


def test_raw_bytes_are_served_exactly(plab: Lab, tmp_path: Path) -> None:
    cases = {"invalid.json": b'{"identifier": "ispa.example", "expires": ',
             "big.json": b'{"identifier": "ispa.example", "pad": "' + b"x" * 300_000 + b'"}',
             "wrong.json": json.dumps({"identifier": "other.example",
                                       "expires": "2099-01-01T00:00:00Z",
                                       "prefixes": ["2001:db8:a::/64"]}).encode()}
    try:
        for file_name, data in cases.items():
            path = tmp_path / file_name
            path.write_bytes(data)
            pvd_info(plab, "ispa", "--raw", str(path))
            code, body, content_type = fetch(plab, "ispa")
            assert code == 0 and body == data and content_type == "application/pvd+json"
            info = _info(plab, "ispa")
            assert info["raw"]["size"] == len(data) and info["object"] is None
    finally:
        _restore(plab, "ispa")
    assert _info(plab, "ispa")["raw"] is None
    assert json.loads(fetch(plab, "ispa")[1])["identifier"] == "ispa.example"


def test_bump_sequence_announces_at_once(plab: Lab) -> None:
    isp = "ispb"
    pvd_id = plab.isp(isp)["pvd_id"]
    old = _info(plab, isp)["sequence"]
    listener = plab.popen([sys.executable, "-c", LISTEN_RA, "lan0", "15"],
                          stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None
        assert json.loads(listener.stdout.readline()) == {"listening": True}
        for line in listener.stdout:  # right after a periodic RA: the next is 2 s away
            heard = json.loads(line)
            if heard["pvd_id"] == pvd_id and heard["sequence"] == old:
                break
        else:
            pytest.fail(f"no RA for {pvd_id} with sequence {old}")
        pvdinfo.change(plab.name, isp, bump_sequence=True)
        bumped = time.time()
        new = [json.loads(line) for line in listener.stdout]
    finally:
        listener.kill()
        listener.wait()
    wanted = (old + 1) & 0xFFFF
    first = next((h for h in new if h["pvd_id"] == pvd_id and h["sequence"] == wanted), None)
    assert first is not None, f"no RA with sequence {wanted}: {new[:4]}"
    assert first["t"] - bumped < 1.0, "the new sequence waited for the periodic RA"
    assert first["h"]
    info = _info(plab, isp)
    assert info["sequence"] == wanted and info["changes"][-1]["sequence"] == wanted
    other = plab.isp("ispa")["pvd_id"]
    assert {h["sequence"] for h in new if h["pvd_id"] == other} <= {_info(plab, "ispa")["sequence"]}


def test_ra_fault_keeps_h_flag_and_sequence_and_heal_keeps_changes(plab: Lab) -> None:
    """An RA fault's sender announces the same H flag and sequence; ``lab heal`` undoes the
    fault but not ``lab pvd-info`` changes (docs/lab.md)."""
    if plab.scenario == 2:
        pytest.skip("RA faults are refused in scenario 2 (one gateway advertises both ISPs)")
    sequence = _info(plab, "ispa")["sequence"]
    try:
        pvd_info(plab, "ispa", "--set", "metered=true")
        done = cli("fault", "--name", plab.name, "ispa", "--ra-lifetime", "0")
        assert done.returncode == 0, done.stderr
        heard = plab.exec([sys.executable, "-c", LISTEN_RA, "lan0", "5"], check=True, timeout=30)
        mine = [json.loads(line) for line in heard.stdout.splitlines()[1:]]
        mine = [h for h in mine if h["pvd_id"] == "ispa.example"]
        assert mine and all(h["h"] and h["sequence"] == sequence for h in mine)
    finally:
        healed = cli("heal", "--name", plab.name, "ispa")
    assert healed.returncode == 0, healed.stderr
    try:
        assert json.loads(fetch(plab, "ispa")[1])["metered"] is True
        assert _info(plab, "ispa")["object"]["metered"] is True
    finally:
        _restore(plab, "ispa")


# -- bad input ---------------------------------------------------------------------------------

def test_bad_input_one_line_and_nothing_changes(plab: Lab, tmp_path: Path) -> None:
    before = pvdinfo.served(plab.name, "ispa")
    sequence = _info(plab, "ispa")["sequence"]
    cases = [
        (("ispc",), EXIT_USAGE, "unknown ISP"),
        (("ispa", "--set", "noInternet=nope"), EXIT_USAGE, "not JSON"),
        (("ispa", "--set", "noInternet"), EXIT_USAGE, "KEY=JSON"),
        (("ispa", "--set", "=1"), EXIT_USAGE, "KEY=JSON"),
        (("ispa", "--expires", "soon"), EXIT_USAGE, "--expires"),
        (("ispa", "--expires", "inf"), EXIT_USAGE, "--expires"),
        (("ispa", "--raw", str(tmp_path / "missing")), EXIT_USAGE, "--raw"),
        (("ispa", "--raw", __file__, "--set", "a=1"), EXIT_USAGE, "--raw"),
        (("ispa", "--set", "a=1", "--set", "b={", "--bump-sequence"), EXIT_USAGE, "not JSON"),
    ]
    for args, status, words in cases:
        done = cli("pvd-info", "--name", plab.name, *args)
        assert done.returncode == status, (args, done.stderr)
        assert done.stderr.count("\n") == 1 and words in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert pvdinfo.served(plab.name, "ispa") == before
    assert _info(plab, "ispa")["sequence"] == sequence


def test_lab_not_up() -> None:
    _require_tools()
    done = cli("pvd-info", "--name", f"pvpgone{os.getpid() % 100000}", "ispa")
    assert done.returncode == EXIT_LAB_NOT_UP and done.stderr.count("\n") == 1, done.stderr


def test_scenario_without_pvd_options(plab3: Lab) -> None:
    status = plab3.refresh()
    assert status["ca_file"] is None
    assert all(status["isps"][i]["pvd_info"] is None and status["isps"][i]["proxy"] is None
               for i in ISPS)
    for args in (("ispa",), ("ispb", "--set", "noInternet=true")):
        done = cli("pvd-info", "--name", plab3.name, *args)
        assert done.returncode == EXIT_USAGE and done.stderr.count("\n") == 1, done.stderr
        assert "scenario 3" in done.stderr


def test_missing_tinyproxy_is_a_missing_prerequisite(tmp_path: Path) -> None:
    _require_tools()
    for program in ("ip", "dnsmasq", "sysctl", "openssl"):
        found = shutil.which(program)
        assert found is not None
        (tmp_path / program).symlink_to(found)
    name = f"pvpnotp{os.getpid() % 100000}"
    env = {**os.environ, "PATH": str(tmp_path)}
    try:
        done = subprocess.run([PVDRUN, "lab", "up", "--scenario", "1", "--name", name],
                              capture_output=True, text=True, check=False, timeout=60, env=env)
        assert done.returncode == EXIT_MISSING_PREREQ, done.stderr
        assert done.stderr.count("\n") == 1 and "tinyproxy" in done.stderr, done.stderr
        assert cli("status", "--name", name).returncode == EXIT_LAB_NOT_UP
    finally:
        lab_api.down(name)
