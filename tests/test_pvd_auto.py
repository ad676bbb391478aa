"""``pvdrun --pvd auto``: each lookup in the PvD claiming the name's zone (RFC 8801 Additional
Information ``dnsZones``), each connection in the PvD its destination address came from, the
default PvD for everything else (docs/cli.md, docs/shim.md "The auto PvD").

The lab of scenario 2 (both ISPs' PvDs on the host's one link, pvdd fetching each ISP's
Additional Information: ISP A claims ``ispa.example``, ISP B ``ispb.example``; the default PvD
is the implicit IPv4 one, ``implicit:lan0``), with captures on each ISP's upstream link:

* ``intranet.ispa.example`` (answered by ISP A's DNS only) is asked of ISP A's server and
  connected to through ISP A: ISP A's link carries the connection, ISP B's nothing of it;
* ``mail.ispb.example`` (ISP B's DNS only) the same through ISP B;
* a name neither claims is asked of the default PvD's server, and an address from no lookup is
  connected to in the default PvD;
* no default PvD: exit 3, one line; ``--strict``: exit 4; a malformed ``PVDRUN_AUTO``: the
  program's network fails closed;
* the address table's overflow (the oldest addresses go: the default PvD's again), and its
  per-entry sequence counters under four threads: tests/c/auto_addrs_harness.c.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Iterator

import pytest
from fixtures.capture import assert_caught, assert_no_leak
from fixtures.commands import PVDRUN
from fixtures.lab import Lab
from fixtures.prereq import require
from fixtures.pvdd import Pvdd
from fixtures.pvdinfo_lab import info_lab, run


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))




@pytest.fixture(scope="module")
def alab() -> Iterator[tuple[Lab, Pvdd]]:
    with info_lab("pau") as made:
        yield made


def traced(lab: Lab, daemon: Pvdd, argv: list[str]) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run argv under ``pvdrun --pvd auto`` with the shim's trace: the result and its lines."""
    with tempfile.TemporaryDirectory(prefix="pvdauto") as tmp:
        path = os.path.join(tmp, "trace.jsonl")
        done = run(lab, daemon, [PVDRUN, "--pvd", "auto", *argv], PVDRUN_TRACE=path)
        try:
            with open(path, encoding="utf-8") as handle:
                lines = [json.loads(line) for line in handle if line.strip()]
        except FileNotFoundError:
            lines = []
    return done, lines


def curl(url: str) -> list[str]:
    return ["curl", "-sS", "-m", "5", "-o", "/dev/null", url]


@pytest.mark.root
def test_verbose_says_the_pvds_and_their_zones(alab: tuple[Lab, Pvdd]) -> None:
    lab, daemon = alab
    done = run(lab, daemon, [PVDRUN, "--pvd", "auto", "-v", "true"])
    assert done.returncode == 0, done.stderr
    assert "--pvd auto: default PvD implicit:lan0" in done.stderr, done.stderr
    assert "PvD ispa.example claims ispa.example" in done.stderr, done.stderr
    assert "PvD ispb.example claims ispb.example" in done.stderr, done.stderr
    env = run(lab, daemon, [PVDRUN, "--pvd", "auto", "sh", "-c", 'printf %s "$PVDRUN_AUTO"']).stdout
    lines = env.splitlines()
    assert any("id=ispa.example " in f"{line} " and "zone=ispa.example" in line for line in lines), env
    assert any("id=ispb.example " in f"{line} " and "zone=ispb.example" in line for line in lines), env
    handed = run(lab, daemon, [PVDRUN, "--pvd", "auto", "true"], PVDRUN_LAUNCHER_TRACE="1")
    assert handed.returncode == 0 and "the auto PvD" in handed.stderr, handed.stderr  # to Python
    # an inner launch in one PvD does not inherit the auto PvDs
    inner = run(lab, daemon, [PVDRUN, "--pvd", "auto", PVDRUN, "--pvd", "ispb.example", "sh", "-c",
                              'printf %s "${PVDRUN_AUTO-unset}"'])
    assert inner.stdout == "unset", inner


CLAIMED = [("intranet.ispa.example", "ispa", "ispb"), ("mail.ispb.example", "ispb", "ispa")]


@pytest.mark.root
@pytest.mark.parametrize("name,isp,other", CLAIMED, ids=[c[0] for c in CLAIMED])
def test_a_claimed_name_is_asked_and_reached_through_its_isp(alab: tuple[Lab, Pvdd], name: str, isp: str,
                                                              other: str) -> None:
    lab, daemon = alab
    pvd_id, other_id = lab.isp(isp)["pvd_id"], lab.isp(other)["pvd_id"]
    # the name is split-horizon: the other ISP's DNS does not answer it (else nothing is shown)
    control = run(lab, daemon, [PVDRUN, "--pvd", other_id, "getent", "ahosts", name])
    assert control.returncode != 0, f"{other_id} answers {name} too: the test proves nothing"
    v6 = lab.isp(isp)["intranet_v6"] if name.startswith("intranet.") else lab.isp(isp)["mail_v6"]
    v4 = [a for a in (lab.isp(isp).get("intranet_v4") if name.startswith("intranet.") else
                      lab.isp(isp).get("mail_v4"),) if a]
    mine, theirs = set(lab.isp(isp)["host_addresses"]), set(lab.isp(other)["host_addresses"])
    dns = [a for a in (lab.isp(isp)["dns_v6"], lab.isp(isp).get("dns_v4")) if a]
    with lab.capture(isp) as own, lab.capture(other) as elsewhere:
        done, trace = traced(lab, daemon, curl(f"http://{name}/"))
    context = (done.stderr, json.dumps(trace, indent=1))
    lookups = [t for t in trace if t.get("op") == "lookup" and t.get("name") == name]
    assert lookups and all(t["pvd"] == pvd_id for t in lookups), context
    assert all(t["server"].startswith(f"[{lab.isp(isp)['dns_v6']}]") for t in lookups), context
    assert any(t["verdict"] == "answered" for t in lookups), context
    ties = [t for t in trace if t.get("op") == "connect" and t.get("verdict") == "tied"]
    assert ties and all(t["pvd"] == pvd_id for t in ties), context
    assert any(t["destination"] == f"[{v6}]:80" for t in ties), context
    assert_caught(own, *context, destinations=[v6])
    assert_no_leak(elsewhere, *context, sources=sorted(mine - theirs), quiet=sorted(mine & theirs),
                   destinations=[v6, *v4, *dns])


@pytest.mark.root
def test_an_unclaimed_name_and_an_address_from_no_lookup_are_the_default_pvds(alab: tuple[Lab, Pvdd]) -> None:
    """svc.example (both ISPs answer it, neither claims it) is asked of the default PvD's server
    (the lab's implicit IPv4 PvD, whose server does not answer: the trace shows where it went);
    the ISPs' DNS servers see nothing.  An IPv4 literal is reached in the default PvD (its IPv4
    route leaves through ISP A's upstream), and ISP B's link holds nothing of it."""
    lab, daemon = alab
    listed = daemon.request({"v": 1, "op": "list"})
    default = listed["default"]
    assert default not in ("ispa.example", "ispb.example"), listed
    isp_dns = [a for i in ("ispa", "ispb") for a in (lab.isp(i)["dns_v6"], lab.isp(i).get("dns_v4")) if a]
    with lab.capture("ispa") as a_link, lab.capture("ispb") as b_link:
        done, trace = traced(lab, daemon, ["env", "RES_OPTIONS=timeout:1 attempts:1", "getent", "ahosts",
                                           "svc.example"])
    context = (done.stderr, json.dumps(trace, indent=1))
    lookups = [t for t in trace if t.get("op") == "lookup" and t.get("name") == "svc.example"]
    assert lookups and all(t["pvd"] == default for t in lookups), context
    for cap in (a_link, b_link):
        assert_no_leak(cap, *context, destinations=isp_dns)

    service = lab.isp("ispa")["service_v4"]
    theirs = set(lab.isp("ispb")["host_addresses"])
    with lab.capture("ispa") as a_link, lab.capture("ispb") as b_link:
        done, trace = traced(lab, daemon, curl(f"http://{service}/"))
    context = (done.stderr, json.dumps(trace, indent=1))
    assert done.returncode == 0, context
    ties = [t for t in trace if t.get("op") == "connect" and t.get("verdict") == "tied"]
    assert ties and all(t["pvd"] == default for t in ties), context
    assert_caught(a_link, *context, destinations=[service])
    assert_no_leak(b_link, *context, destinations=[service], quiet=sorted(theirs))


@pytest.mark.root
def test_no_default_pvd_is_exit_3_in_one_line() -> None:
    require(os.geteuid() == 0 and shutil.which("unshare") is not None, "root and unshare (an empty netns)")
    done = subprocess.run(["unshare", "-n", PVDRUN, "--pvd", "auto", "--no-daemon", "true"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3, done
    assert done.stderr.count("\n") == 1 and "no default PvD" in done.stderr, done.stderr
    strict = subprocess.run(["unshare", "-n", PVDRUN, "--pvd", "auto", "--no-daemon", "--strict", "true"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert strict.returncode == 4 and "not with --pvd auto" in strict.stderr, strict


CONNECT = """
import errno, socket, sys
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", 9))
except OSError as exc:
    print(errno.errorcode[exc.errno]); sys.exit(0)
print("connected")
"""


@pytest.mark.parametrize("auto", ["v=1 id=x handle=7 if=lo:1 zone=..bad", "zone=a.example",
                                  "v=1 id=null handle=4294967295 zone=a.example"])
def test_malformed_auto_fails_closed(auto: str) -> None:
    """A PVDRUN_AUTO the shim cannot read: every network operation fails, as in the null PvD
    (its sockets are refused: EACCES)."""
    from pvdrun.shim import library_path

    assert "connected" in subprocess.run([sys.executable, "-c", CONNECT], capture_output=True, text=True,
                                         timeout=60, check=False).stdout, "control: unscoped, the connect succeeds"
    env = {**os.environ, "LD_PRELOAD": library_path(), "PVDRUN_AUTO": auto,
           "PVDRUN_SCOPE": "v=1 id=d handle=5 if=lo:1 addr=192.0.2.10"}
    done = subprocess.run([sys.executable, "-c", CONNECT], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip() in ("EACCES", "ENETUNREACH"), done
    assert "malformed PVDRUN_AUTO" in done.stderr, done.stderr
    env.pop("PVDRUN_SCOPE")
    done = subprocess.run([sys.executable, "-c", CONNECT], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip() in ("EACCES", "ENETUNREACH") and "PVDRUN_AUTO without PVDRUN_SCOPE" in done.stderr, done


def test_address_table_overflow_falls_back_to_the_default() -> None:
    """tests/c/auto_addrs_harness.c: the table alone, built here (with ThreadSanitizer when the
    compiler has it)."""
    cc = shutil.which(os.environ.get("CC", "cc"))
    require(cc is not None, "a C compiler")
    with tempfile.TemporaryDirectory(prefix="pvdauto") as tmp:
        exe = os.path.join(tmp, "harness")
        base = [cc, "-O1", "-g", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", "-pthread",
                *(f"-I{os.path.join(ROOT, 'shim', d)}" for d in ("include", "core", "dns")), "-o", exe,
                os.path.join(ROOT, "tests", "c", "auto_addrs_harness.c"),
                os.path.join(ROOT, "shim", "dns", "auto_addrs.c")]
        built = subprocess.run([*base, "-fsanitize=thread"], capture_output=True, text=True, check=False)
        if built.returncode != 0:
            subprocess.run(base, check=True, capture_output=True, text=True)
        done = subprocess.run([exe], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and "FAIL" not in done.stdout, done.stdout + done.stderr
    assert "overflow: the oldest" in done.stdout, done.stdout
