"""PVDRUN_TRACE for lookups: one JSON line per query the shim's resolver sends to a PvD's DNS
server (name, type, server, PvD, verdict answered/failed, rcode, errno) and per lookup it answers
from /etc/hosts or refuses without a query; nothing without the variable.  Real programs under
the installed shim, against the real dnsmasq of fixtures/resolve_lab.py's two-ISP lab; as root
and as an unprivileged user."""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.resolve_lab import ResolveLab, probe, shim_lib, split_lab  # noqa: F401 - fixtures
from fixtures.unprivileged import User, unprivileged_user, user_for, who  # noqa: F401 - fixtures

pytestmark = pytest.mark.root

NULL_SCOPE = "v=1 id=null handle=4294967295"


@pytest.fixture(scope="module")
def shared(probe: Path, shim_lib: str) -> Iterator[Path]:
    """A world-readable directory with copies of the probe and the shim (an unprivileged user
    runs them from there); removed at the end of the module."""
    where = Path(tempfile.mkdtemp(prefix="pvdtrace-bin-"))
    try:
        where.chmod(0o755)
        for src in (probe, Path(shim_lib)):
            shutil.copy(src, where / src.name)
            (where / src.name).chmod(0o755)
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
def trace_dir() -> Iterator[Path]:
    """A directory any user may write to (the traced program appends its trace there)."""
    where = Path(tempfile.mkdtemp(prefix="pvdtrace-"))
    os.chmod(where, 0o1777)
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


def run_probe(lab: ResolveLab, shared: Path, user: User | None, args: list[str], scope: str,
              trace: Path | None, **env: str):
    """The probe with ``args`` in the lab's client namespace under the shim, as ``user`` (None:
    root), tracing to ``trace`` (None: PVDRUN_TRACE unset)."""
    settings = {"PVDRUN_SCOPE": scope, "LD_PRELOAD": str(shared / "libpvdshim.so"),
                "RES_OPTIONS": "timeout:2 attempts:1", "PVDRUN_SOCKET": str(shared / "no-pvdd.sock"), **env}
    if trace is not None:
        settings["PVDRUN_TRACE"] = str(trace)
    argv = [str(shared / "dns_gai_probe"), *args]
    if user is not None:
        return lab.run(user.drop(argv, settings))
    return lab.run(["env", *[f"{k}={v}" for k, v in settings.items()], *argv])


def lookups(trace: Path) -> list[dict]:
    """The trace's lookup lines; every line of the file must be one JSON object."""
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert all(next(iter(line)) == "pid" for line in lines), lines
    return [line for line in lines if line["op"] == "lookup"]


def test_answered_lookup_names_type_server_and_pvd(split_lab: ResolveLab, shared: Path, trace_dir: Path,
                                                   who: str, request: pytest.FixtureRequest) -> None:
    user = user_for(who, request)
    trace = trace_dir / "trace.jsonl"
    done = run_probe(split_lab, shared, user, ["gai", "svc.example", "unspec", "none"], split_lab.scope("a"), trace)
    assert done.stdout.startswith("rc=0 "), (done.stdout, done.stderr)
    seen = lookups(trace)
    assert {line["type"] for line in seen} == {"A", "AAAA"}, seen
    for line in seen:
        assert line == {"pid": line["pid"], "op": "lookup", "name": "svc.example", "type": line["type"],
                        "server": "10.1.0.1:53", "pvd": "ispa.example", "verdict": "answered", "why": "",
                        "rcode": "NOERROR", "errno": ""}, line
    assert len({line["pid"] for line in seen}) == 1
    assert oct(trace.stat().st_mode & 0o777) == "0o600"
    assert trace.stat().st_uid == (user.uid if user else 0)
    # an IPv6 server (ISP B's), written as [address]:port
    trace6 = trace_dir / "trace6.jsonl"
    done = run_probe(split_lab, shared, user, ["gai", "svc.example", "inet6", "none"], split_lab.scope("b"), trace6)
    assert done.stdout.startswith("rc=0 "), (done.stdout, done.stderr)
    assert [(d["type"], d["server"], d["pvd"], d["verdict"]) for d in lookups(trace6)] == [
        ("AAAA", "[2001:db8:b::1]:53", "ispb.example", "answered")]


def test_nxdomain_is_answered_with_its_rcode(split_lab: ResolveLab, shared: Path, trace_dir: Path,
                                             who: str, request: pytest.FixtureRequest) -> None:
    user = user_for(who, request)
    trace = trace_dir / "trace.jsonl"
    done = run_probe(split_lab, shared, user, ["gai", "nosuch.example", "inet", "none"], split_lab.scope("a"), trace)
    assert not done.stdout.startswith("rc=0 "), done.stdout
    seen = [(d["name"], d["type"], d["server"], d["verdict"], d["rcode"], d["errno"]) for d in lookups(trace)]
    # the name as is (it has a dot), then with the PvD's search domain: both asked, both NXDOMAIN
    assert seen == [("nosuch.example", "A", "10.1.0.1:53", "answered", "NXDOMAIN", ""),
                    ("nosuch.example.isp-a.example", "A", "10.1.0.1:53", "answered", "NXDOMAIN", "")], seen


def test_silent_server_is_failed_with_errno(split_lab: ResolveLab, shared: Path, trace_dir: Path,
                                            who: str, request: pytest.FixtureRequest) -> None:
    user = user_for(who, request)
    trace = trace_dir / "trace.jsonl"
    scope = split_lab.scope("a", dns_servers=["10.1.0.99"])  # on-link, nobody home
    done = run_probe(split_lab, shared, user, ["gai", "svc.example", "inet", "none"], scope, trace,
                     RES_OPTIONS="timeout:1 attempts:1")
    assert not done.stdout.startswith("rc=0 "), done.stdout
    seen = lookups(trace)
    assert [(d["name"], d["type"], d["server"], d["verdict"], d["rcode"], d["errno"]) for d in seen] == [
        ("svc.example", "A", "10.1.0.99:53", "failed", "", "ETIMEDOUT")], seen
    assert seen[0]["why"] == "no reply in time"


def test_odd_bytes_in_a_name_stay_valid_json(split_lab: ResolveLab, shared: Path, trace_dir: Path) -> None:
    trace = trace_dir / "trace.jsonl"
    odd = 'we"ird\\na\x01me\x1f.example'
    done = run_probe(split_lab, shared, None, ["gai", odd, "inet", "none"], split_lab.scope("a"), trace)
    assert not done.stdout.startswith("rc=0 "), done.stdout
    raw = trace.read_text()
    assert "\x01" not in raw and "\x1f" not in raw and "\\u0001" in raw, raw
    seen = lookups(trace)  # each line parses
    assert seen and seen[0]["name"] == odd, seen
    assert all(d["server"] == "10.1.0.1:53" for d in seen), seen


def test_hosts_and_null_pvd_lines_have_no_server(split_lab: ResolveLab, shared: Path, trace_dir: Path,
                                                 who: str, request: pytest.FixtureRequest) -> None:
    """In the null PvD DNS is refused without a query; /etc/hosts still answers."""
    user = user_for(who, request)
    trace = trace_dir / "trace.jsonl"
    refused = run_probe(split_lab, shared, user, ["gai", "svc.example", "inet", "none"], NULL_SCOPE, trace)
    assert not refused.stdout.startswith("rc=0 "), refused.stdout
    hosts = run_probe(split_lab, shared, user, ["gai", "localhost", "inet", "none"], NULL_SCOPE, trace)
    assert hosts.stdout.startswith("rc=0 "), hosts.stdout
    seen = [(d["name"], d["type"], d["server"], d["pvd"], d["verdict"], d["why"]) for d in lookups(trace)]
    assert seen == [("svc.example", "A", "", "null", "refused", "the null PvD"),
                    ("localhost", "A", "", "null", "answered", "hosts")], seen


def test_no_dns_server_is_refused(split_lab: ResolveLab, shared: Path, trace_dir: Path) -> None:
    trace = trace_dir / "trace.jsonl"
    done = run_probe(split_lab, shared, None, ["gai", "svc.example", "unspec", "none"],
                     split_lab.scope("a", dns_servers=[]), trace)
    assert not done.stdout.startswith("rc=0 "), done.stdout
    seen = [(d["type"], d["server"], d["verdict"], d["why"]) for d in lookups(trace)]
    assert seen == [("A", "", "refused", "no DNS server in the PvD"),
                    ("AAAA", "", "refused", "no DNS server in the PvD")], seen


def test_reverse_lookup_is_traced(split_lab: ResolveLab, shared: Path, trace_dir: Path) -> None:
    trace = trace_dir / "trace.jsonl"
    done = run_probe(split_lab, shared, None, ["gni", "10.1.0.98", "namereqd"], split_lab.scope("a"), trace)
    assert "printer.isp-a.example" in done.stdout, (done.stdout, done.stderr)
    seen = [(d["name"], d["type"], d["server"], d["verdict"], d["rcode"]) for d in lookups(trace)]
    assert seen == [("98.0.1.10.in-addr.arpa", "PTR", "10.1.0.1:53", "answered", "NOERROR")], seen


def test_no_trace_without_the_variable(split_lab: ResolveLab, shared: Path, trace_dir: Path,
                                       who: str, request: pytest.FixtureRequest) -> None:
    user = user_for(who, request)
    done = run_probe(split_lab, shared, user, ["gai", "svc.example", "unspec", "none"], split_lab.scope("a"), None)
    assert done.stdout.startswith("rc=0 "), done.stdout
    relative = run_probe(split_lab, shared, user, ["gai", "svc.example", "unspec", "none"], split_lab.scope("a"),
                         None, PVDRUN_TRACE="trace.jsonl")  # relative: ignored
    assert relative.stdout.startswith("rc=0 "), relative.stdout
    assert list(trace_dir.iterdir()) == []
    assert not done.stderr and not relative.stderr


PYTHON_PROGRAM = r"""
import ctypes, os, socket, sys
socket.getaddrinfo("svc.example", 80, socket.AF_INET)
# close every descriptor but the standard ones (the shim's kept trace descriptor with them), then
# put a file of the program's own at the numbers the trace may have used
os.closerange(3, 4096)
own = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
for fd in range(900, 910):
    os.dup2(own, fd)
socket.getaddrinfo("www.example", 80, socket.AF_INET)
answer = ctypes.create_string_buffer(4096)
libc = ctypes.CDLL(None)  # the global res_query: the preloaded shim's
print(libc.res_query(b"isp-a.example", 1, 15, answer, 4096))
"""


def test_lines_survive_a_program_closing_its_descriptors_and_res_query_is_traced(
        split_lab: ResolveLab, shared: Path, trace_dir: Path) -> None:
    trace, own = trace_dir / "trace.jsonl", trace_dir / "own.txt"
    done = run_probe_argv(split_lab, shared, [sys.executable, "-c", PYTHON_PROGRAM, str(own)],
                          split_lab.scope("a"), trace)
    assert done.returncode == 0 and int(done.stdout.strip()) > 0, (done.stdout, done.stderr)
    assert own.read_bytes() == b""  # no line went to the program's own file
    seen = [(d["name"], d["type"], d["server"], d["verdict"], d["rcode"]) for d in lookups(trace)]
    assert seen == [("svc.example", "A", "10.1.0.1:53", "answered", "NOERROR"),
                    ("www.example", "A", "10.1.0.1:53", "answered", "NOERROR"),
                    ("isp-a.example", "MX", "10.1.0.1:53", "answered", "NOERROR")], seen


def run_probe_argv(lab: ResolveLab, shared: Path, argv: list[str], scope: str, trace: Path):
    """argv (as root) in the lab's client namespace under the shim, tracing to trace."""
    settings = {"PVDRUN_SCOPE": scope, "LD_PRELOAD": str(shared / "libpvdshim.so"),
                "RES_OPTIONS": "timeout:2 attempts:1", "PVDRUN_TRACE": str(trace)}
    return lab.run(["env", *[f"{k}={v}" for k, v in settings.items()], *argv])
