"""Strict mode with pvdd: the kernel holds real programs the shim cannot see in their PvD.

Scenario 3 (lab3: two links, overlapping IPv4; implicit PvD ``ispb``) and scenario 1 (lab1: one
shared link; PvD ``ispb.example``), pvdd serving each (tests/fixtures/pvdd_lab.py), as root and
as a real unprivileged user (fixtures/unprivileged.py), each run as
``pvdrun --pvd PVD --strict PROGRAM`` with a private /etc/resolv.conf naming ISP A's DNS server
(fixtures/resolvconf.py: as root the launcher shows the PvD's own instead; a user's static
program reads ISP A's, and the cgroup's programs send its queries to ISP B).  Programs
(fixtures/strict_programs.py): busybox-static's wget and a static Go HTTP client (Go's own
resolver) by name, a set-user-ID copy of curl by name, TCP connect by raw system calls and
through io_uring, and curl started by a scoped program with an empty environment.

Verdicts: the suite's capture (fixtures/capture.py, proven live by markers) on ISP A's link holds
nothing of the program, and on ISP B's link every DNS frame is to or from ISP B's servers; the
program gets ISP B's answer.  Each program's control, unscoped, is caught on ISP A's link by the
same verdict (in scenario 1 with host routes sending ISP B's addresses through ISP A's router
for unmarked packets: fixtures/detour.py).

Then: a user the policy refuses; what the kernel refuses a program without the shim (binds to
another PvD's address, socket options, multicast and link-local scopes naming ISP A's link, a
destination the PvD cannot reach, the host's nscd socket); DNS to another server answered by the
PvD's, reading as from the server asked; the PvD's link deleted under a running program; pvdd
killed or stopped and restarted under one.
"""
from __future__ import annotations

import contextlib
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest

from fixtures.capture import assert_caught, assert_no_leak, ip_destination, ip_source, tcp_segment, udp_ports
from fixtures.detour import unmarked_via
from fixtures.lab_rules import leak_rules_separate, leak_rules_shared
from fixtures.netns import wait_for
from fixtures.pvdd_lab import PvddInLab
from fixtures.resolvconf import nameservers, with_resolv_conf
from fixtures.strict_programs import (busybox_wget, empty_env_child, go_httpget, setuid_curl,  # noqa: F401
                                      setuid_dir, syscall_connect, uring_connect)
from fixtures.unprivileged import User, unprivileged_user, user_for, who  # noqa: F401 (fixtures)

pytestmark = pytest.mark.root

REQUEST = "GET / HTTP/1.0\r\n\r\n"


@dataclass
class Scenario:
    lab: Any
    pvdd: PvddInLab
    pvd: str                      # ISP B's PvD, the one programs are scoped to
    rules: dict[str, Any]         # the verdict on ISP A's link
    other_dns: str                # ISP A's DNS server: what the programs' resolv.conf names
    service: str                  # ISP B's service address for the connect programs

    @property
    def own_dns(self) -> set[str]:
        info = self.lab.isp("ispb")
        return {a for a in (info["dns_v4"], info["dns_v6"]) if a}

    def detour(self) -> contextlib.AbstractContextManager[None]:
        if self.lab.scenario == 3:
            return contextlib.nullcontext()  # the main table sends everything out of ispa
        info = self.lab.isp("ispb")
        return unmarked_via(self.lab, "ispa", [info["dns_v6"], info["service_v6"]])


@pytest.fixture(scope="module")
def scenario3(lab3: Any) -> Iterator[Scenario]:
    with PvddInLab(lab3) as pvdd:
        wait_for(lambda: any(p["pvd_id"] == "implicit:ispb" and p["dns_servers"] for p in pvdd.list_pvds()),
                 what="pvdd learning ispb's DNS server")
        yield Scenario(lab3, pvdd, "ispb", leak_rules_separate(lab3, "ispb"), lab3.isp("ispa")["dns_v4"],
                       lab3.isp("ispb")["service_v4"])


@pytest.fixture(scope="module")
def scenario1(lab1: Any) -> Iterator[Scenario]:
    with PvddInLab(lab1) as pvdd:
        yield Scenario(lab1, pvdd, lab1.isp("ispb")["pvd_id"], leak_rules_shared(lab1, "ispb"),
                       lab1.isp("ispa")["dns_v6"], lab1.isp("ispb")["service_v6"])


def url(address: str) -> str:
    return f"http://[{address}]/" if ":" in address else f"http://{address}/"


@dataclass(frozen=True)
class Program:
    argv: Callable[[Scenario, str], list[str]]  # (scenario, setuid_dir) -> argv
    answered: Callable[[str], bool]


ISPB = lambda out: out.startswith("ispb")  # noqa: E731 - the lab's service names its ISP
PROGRAMS = {
    "busybox-wget": Program(lambda sc, d: [*busybox_wget(), "-q", "-O-", "http://svc.example/"], ISPB),
    "go-httpget": Program(lambda sc, d: [go_httpget(), "http://svc.example/"], ISPB),
    "setuid-curl": Program(lambda sc, d: [setuid_curl(d), "-s", "-m", "10", "http://svc.example/"], ISPB),
    "syscall-connect": Program(lambda sc, d: [syscall_connect(), sc.service, "80", REQUEST],
                               lambda out: out.strip() == "connected"),
    "uring-connect": Program(lambda sc, d: [uring_connect(), sc.service, "80", REQUEST],
                             lambda out: out.strip() == "connected"),
    "empty-env-curl": Program(lambda sc, d: [empty_env_child(), "/usr/bin/curl", "-s", "-m", "10", url(sc.service)],
                              ISPB),
}


def launch(sc: Scenario, who: str, user: User | None, argv: list[str], pvd: str | None = None,
           strict: bool = True, timeout: float = 90) -> subprocess.CompletedProcess:
    """``pvdrun --pvd PVD [--strict] ARGV`` in the lab's host namespace, as root or the user,
    with a private /etc/resolv.conf naming ISP A's server."""
    args = ["-m", "pvdrun.cli", "--pvd", pvd or sc.pvd, "--socket", sc.pvdd.socket,
            *(["--strict"] if strict else []), *argv]
    if who == "user":
        assert user is not None
        command = user.python(args)
    else:
        command = [sys.executable, *args]
    return sc.lab.exec(with_resolv_conf(command, nameservers(sc.other_dns), keep=True), timeout=timeout)


def foreign_dns(sc: Scenario) -> Callable[[bytes], bool]:
    own = sc.own_dns

    def check(frame: bytes) -> bool:
        ports = udp_ports(frame) or tcp_segment(frame)
        return (ports is not None and 53 in ports[:2]
                and ip_destination(frame) not in own and ip_source(frame) not in own)
    return check


# ---- real programs stay in their PvD ------------------------------------------------------------

@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("scenario", ["scenario3", "scenario1"])
def test_program_is_held_in_its_pvd(request: pytest.FixtureRequest, setuid_dir: str, scenario: str, who: str,
                                    program: str) -> None:
    sc: Scenario = request.getfixturevalue(scenario)
    user = user_for(who, request)
    spec = PROGRAMS[program]
    with sc.detour(), sc.lab.capture("ispa") as other, sc.lab.capture("ispb") as own:
        done = launch(sc, who, user, spec.argv(sc, setuid_dir))
    assert_no_leak(other, done.stdout, done.stderr, **sc.rules)
    assert_no_leak(own, done.stdout, done.stderr, matching={"DNS not to ISP B's servers": foreign_dns(sc)})
    assert spec.answered(done.stdout), (done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("scenario", ["scenario3", "scenario1"])
def test_control_program_unscoped_is_caught(request: pytest.FixtureRequest, setuid_dir: str, scenario: str,
                                            program: str) -> None:
    sc: Scenario = request.getfixturevalue(scenario)
    argv = ["timeout", "10", *PROGRAMS[program].argv(sc, setuid_dir)]  # a connect ISP A drops would hang
    with sc.detour(), sc.lab.capture("ispa") as other:
        done = sc.lab.exec(with_resolv_conf(argv, nameservers(sc.other_dns)), timeout=90)
    assert_caught(other, done.stdout, done.stderr, **sc.rules)


def test_go_program_enters_strict_mode_by_itself_with_one_line(scenario3: Scenario, unprivileged_user: User) -> None:
    sc = scenario3
    with sc.lab.capture("ispa") as other:
        done = launch(sc, "user", unprivileged_user, [go_httpget(), "http://svc.example/"], strict=False)
    assert_no_leak(other, done.stdout, done.stderr, **sc.rules)
    assert done.stdout.startswith("ispb"), (done.stdout, done.stderr)
    notes = [line for line in done.stderr.splitlines() if line.startswith("pvdrun:")]
    assert len(notes) == 1 and "running it in strict mode" in notes[0], done.stderr


# ---- who may ----------------------------------------------------------------------------------

def test_user_the_policy_refuses_gets_the_error(scenario3: Scenario, unprivileged_user: User) -> None:
    sc = scenario3
    config = '[pvd.secure]\ninterface = "ispb"\nrestricted = true\nusers = ["root"]\n'
    sc.pvdd.write_config(config)
    sc.pvdd.signal(signal.SIGHUP)
    try:
        wait_for(lambda: any("secure" in p["names"] for p in sc.pvdd.list_pvds()), what="pvdd serving secure")
        with sc.lab.capture("ispb") as own:
            done = launch(sc, "user", unprivileged_user, [go_httpget(), url(sc.service)], pvd="secure")
        assert done.returncode == 4, (done.stdout, done.stderr)
        assert "may not use PvD" in done.stderr and done.stderr.count("\n") == 1, done.stderr
        assert_no_leak(own, done.stdout, done.stderr, destinations=[sc.service])
        allowed = launch(sc, "root", None, [go_httpget(), url(sc.service)], pvd="secure")
        assert allowed.stdout.startswith("ispb"), (allowed.stdout, allowed.stderr)
    finally:
        sc.pvdd.write_config("")
        sc.pvdd.signal(signal.SIGHUP)
        wait_for(lambda: not any("secure" in p["names"] for p in sc.pvdd.list_pvds()), what="secure gone")


# ---- what the kernel refuses a program without the shim -------------------------------------------

HOSTILE = r"""
import errno, socket, struct, sys
mine6, other6, other_if = sys.argv[1], sys.argv[2], int(sys.argv[3])
def attempt(name, fn):
    try:
        fn(); print(name, "ok")
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
def bind(family, address):
    s = socket.socket(family, socket.SOCK_DGRAM); s.bind((address, 0))
attempt("bind-other", lambda: bind(socket.AF_INET6, other6))
attempt("bind-own", lambda: bind(socket.AF_INET6, mine6))
attempt("bind-any", lambda: bind(socket.AF_INET, "0.0.0.0"))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
attempt("so-mark", lambda: s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, 0x1234))
attempt("bindtodevice", lambda: s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"ispa"))
def mcast4():
    m = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    m.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, struct.pack("iii", 0, 0, other_if))
    m.sendto(b"strict-mcast4", ("239.1.2.3", 9))
attempt("mcast4-other-if", mcast4)
def mcast6():
    m = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    m.sendto(b"strict-mcast6", ("ff02::1", 9, 0, other_if))
attempt("ff02-other-if", mcast6)
"""


def empty_env_python(code: str, *args: str) -> list[str]:
    """Python started with an empty environment: no shim, no scope; only the cgroup holds it."""
    return [empty_env_child(), sys.executable, "-c", code, *args]


def test_kernel_refuses_what_would_leave_the_pvd(scenario3: Scenario) -> None:
    sc = scenario3
    other_if = sc.lab.exec(["cat", "/sys/class/net/ispa/ifindex"], check=True).stdout.strip()
    mine6 = next(a for a in sc.lab.isp("ispb")["host_addresses"] if ":" in a)
    other6 = next(a for a in sc.lab.isp("ispa")["host_addresses"] if ":" in a)
    argv = empty_env_python(HOSTILE, mine6, other6, other_if)
    with sc.lab.capture("ispa") as other:
        done = launch(sc, "root", None, argv)
    results = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert results == {"bind-other": "EADDRNOTAVAIL", "bind-own": "ok", "bind-any": "ok", "so-mark": "EPERM",
                       "bindtodevice": "EPERM", "mcast4-other-if": "EPERM", "ff02-other-if": "EPERM"}, done.stderr
    assert_no_leak(other, done.stdout, done.stderr, tokens=["strict-mcast"], **sc.rules)
    with sc.lab.capture("ispa") as control:
        unscoped = sc.lab.exec(argv)
    assert_caught(control, unscoped.stdout, unscoped.stderr, tokens=["strict-mcast"])


PKTINFO = r"""
import errno, socket, struct, sys
source, target, mapped_other = sys.argv[1], sys.argv[2], sys.argv[3]
def attempt(name, fn):
    try:
        fn(); print(name, "ok")
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
def pktinfo():
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    info = socket.inet_pton(socket.AF_INET6, source) + struct.pack("I", 0)
    s.sendmsg([b"strict-pktinfo"], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info)], 0, (target, 9))
attempt("pktinfo-other-source", pktinfo)
def bind_mapped():
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind((mapped_other, 0))
attempt("bind-mapped-other", bind_mapped)
"""


def test_other_pvds_source_is_refused_on_a_shared_link(scenario1: Scenario) -> None:
    """Scenario 1, without the shim: a datagram whose IPV6_PKTINFO names ISP A's address is
    refused by the cgroup's sendmsg program, which sees the chosen source (ENETUNREACH; pvdd's
    table for ISP B's mark would drop it next); a bind to ISP A's IPv4 address in its
    IPv4-mapped form is refused (EADDRNOTAVAIL)."""
    sc = scenario1
    other_source = next(a for a in sc.lab.isp("ispa")["host_addresses"] if ":" in a)
    other_v4 = next(a for a in sc.lab.isp("ispa")["host_addresses"] if ":" not in a)
    argv = empty_env_python(PKTINFO, other_source, sc.lab.isp("ispb")["service_v6"], f"::ffff:{other_v4}")
    with sc.detour(), sc.lab.capture("ispa") as other:
        done = launch(sc, "root", None, argv)
    results = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert results == {"pktinfo-other-source": "ENETUNREACH", "bind-mapped-other": "EADDRNOTAVAIL"}, (done.stdout,
                                                                                                   done.stderr)
    assert_no_leak(other, done.stdout, done.stderr, tokens=["strict-pktinfo"], **sc.rules)
    with sc.detour(), sc.lab.capture("ispa") as control:
        unscoped = sc.lab.exec(argv)
    assert_caught(control, unscoped.stdout, unscoped.stderr, tokens=["strict-pktinfo"])


UNREACHABLE = r"""
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(b"strict-v4", (sys.argv[1], 9)); print("sent")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
"""


def test_destination_the_pvd_cannot_reach_fails_and_never_takes_the_main_table(scenario1: Scenario) -> None:
    """Scenario 1: ISP B has no IPv4; the main table sends IPv4 through ISP A."""
    sc = scenario1
    target = sc.lab.isp("ispa")["service_v4"]
    with sc.lab.capture("ispa") as other:
        done = launch(sc, "root", None, empty_env_python(UNREACHABLE, target))
    assert done.stdout.strip() == "ENETUNREACH", (done.stdout, done.stderr)
    assert_no_leak(other, done.stdout, done.stderr, destinations=[target], tokens=["strict-v4"])
    with sc.lab.capture("ispa") as control:
        unscoped = sc.lab.exec(empty_env_python(UNREACHABLE, target))
    assert_caught(control, unscoped.stdout, unscoped.stderr, destinations=[target])


DNS_QUERY = r"""
import socket, sys
import dns.message, dns.query
server, family = sys.argv[1], socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
query = dns.message.make_query("mail.ispb.example", "AAAA")
s = socket.socket(family, socket.SOCK_DGRAM)
s.sendto(query.to_wire(), (server, 53))
s.settimeout(10)
data, source = s.recvfrom(4096)
answer = dns.message.from_wire(data)
print("from", source[0], source[1])
print("answer", " ".join(r.address for rrset in answer.answer for r in rrset))
c = socket.socket(family, socket.SOCK_DGRAM)
c.connect((server, 53))
print("peer", c.getpeername()[0])
c.settimeout(10)
c.send(query.to_wire())
print("connected-answer", " ".join(r.address for rrset in dns.message.from_wire(c.recv(4096)).answer for r in rrset))
"""


@pytest.mark.parametrize("server", ["ispa-v6", "ispa-v4", "loopback-stub"])
def test_dns_to_another_server_is_answered_by_the_pvds(scenario3: Scenario, who: str,
                                                       request: pytest.FixtureRequest, server: str) -> None:
    """A program without the shim asks ISP A's server (IPv6; IPv4, which ISP B's PvD has none of:
    pvdd's forwarder), or a host stub resolver's address: ISP B's server answers, and the
    answer reads as from the server asked."""
    sc = scenario3
    user = user_for(who, request)
    asked = {"ispa-v6": sc.lab.isp("ispa")["dns_v6"], "ispa-v4": sc.lab.isp("ispa")["dns_v4"],
             "loopback-stub": "127.0.0.53"}[server]
    python = [empty_env_child(), sys.executable, "-c", f"import sys; sys.path[:0] = {sys.path!r}\n" + DNS_QUERY, asked]
    with sc.lab.capture("ispa") as other, sc.lab.capture("ispb") as own:
        done = launch(sc, who, user, python)
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    mail = sc.lab.isp("ispb")["mail_v6"]
    assert lines.get("answer") == mail and lines.get("connected-answer") == mail, (done.stdout, done.stderr)
    assert lines["from"] == f"{asked} 53" and lines["peer"] == asked, done.stdout
    assert_no_leak(other, done.stdout, done.stderr, **sc.rules)
    assert_no_leak(own, done.stdout, done.stderr, matching={"DNS not to ISP B's servers": foreign_dns(sc)})


NSCD = r"""
import errno, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
for path in ("/run/nscd/socket", "/var/run/nscd/socket"):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.connect(path); print(path, "connected")
    except OSError as e:
        print(path, errno.errorcode.get(e.errno, e.errno))
"""
LISTEN = ("import socket, sys, os\ns = socket.socket(socket.AF_UNIX)\ns.bind('/run/nscd/socket')\n"
          "s.listen(8)\nprint('ready', flush=True)\nsys.stdin.read()")


def test_host_resolver_socket_is_refused_by_the_kernel(scenario3: Scenario) -> None:
    """A listener at /run/nscd/socket (a private /run): strict, without the shim, connect() is
    refused (ECONNREFUSED) under both spellings; unscoped it connects."""
    sc = scenario3
    scoped = ["-m", "pvdrun.cli", "--pvd", sc.pvd, "--socket", sc.pvdd.socket, "--strict",
              *empty_env_python(NSCD)]
    script = (f"mount -t tmpfs -o mode=755 tmpfs /run && mkdir -p /run/nscd && "
              f"{{ sleep 30 | {sys.executable} -c {shlex.quote(LISTEN)} & }} && sleep 1 && "
              f"echo '=== strict' && {sys.executable} {shlex.join(scoped)}; "
              f"echo '=== unscoped' && {shlex.join(empty_env_python(NSCD))}; kill %1 2>/dev/null; true")
    done = sc.lab.exec(["unshare", "-m", "--propagation", "private", "sh", "-c", script], timeout=60)
    strict, _, unscoped = done.stdout.partition("=== unscoped")
    assert "/run/nscd/socket ECONNREFUSED" in strict and "/var/run/nscd/socket ECONNREFUSED" in strict, done
    assert "/run/nscd/socket connected" in unscoped, done


LAYERS = r"""
import errno, socket, sys
from pvdrun.model import HANDLE_NULL
from pvdrun.shim import binding
own, other = sys.argv[1], sys.argv[2]
def attempt(name, fn):
    try:
        fn(); print(name, "ok")
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
def connect(target, scope=None):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(5)
    if scope is not None:
        binding.bind_socket(s, scope)
    s.connect((target, 80))
ispa = binding.find("ispa")
attempt("own", lambda: connect(own))
attempt("socket-scope-other", lambda: connect(other, ispa))
def thread_other():
    with binding.thread_scope(ispa):
        connect(other)
attempt("thread-scope-other", thread_other)
def thread_null():
    with binding.thread_scope(HANDLE_NULL):
        connect(own)
attempt("thread-scope-null", thread_null)
"""


def test_shim_scope_to_another_pvd_fails_in_a_strict_cgroup(scenario3: Scenario) -> None:
    """A dynamic program under both layers: the C API's per-socket or per-thread scope to another
    PvD fails (the kernel refuses the other PvD's device on a strict socket: EPERM), to the null
    PvD fails (the shim: EACCES); its own PvD works; nothing reaches ISP A."""
    sc = scenario3
    own, other = sc.lab.isp("ispb")["service_v6"], sc.lab.isp("ispa")["service_v6"]
    with sc.lab.capture("ispa") as capture:
        done = launch(sc, "root", None, [sys.executable, "-c", LAYERS, own, other])
    results = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert results == {"own": "ok", "socket-scope-other": "EPERM", "thread-scope-other": "EPERM",
                       "thread-scope-null": "EACCES"}, (done.stdout, done.stderr)
    assert_no_leak(capture, done.stdout, done.stderr, **sc.rules)


# ---- lifecycle ----------------------------------------------------------------------------------

LOOP = r"""
import errno, socket, sys, time
target, port, seconds = sys.argv[1], 9, float(sys.argv[2])
family = socket.AF_INET6 if ":" in target else socket.AF_INET
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.sendto(b"strict-loop", (target, port)); s.close(); print("ok", flush=True)
    except OSError as e:
        print(errno.errorcode.get(e.errno, e.errno), flush=True)
    time.sleep(0.05)
"""


@contextlib.contextmanager
def side_link(sc: Scenario) -> Iterator[str]:
    """A link ``strc0`` from the host to ISP B's namespace (10.77.0.2 <-> 10.77.0.1): a PvD of
    its own, deleted by the test (removed afterwards if still there)."""
    ns_b = sc.lab.ns("ispb")
    sc.lab.exec(["ip", "link", "add", "strc0", "type", "veth", "peer", "name", "strc1", "netns", ns_b], check=True)
    try:
        sc.lab.exec(["ip", "addr", "add", "10.77.0.2/24", "dev", "strc0"], check=True)
        sc.lab.exec(["ip", "link", "set", "strc0", "up"], check=True)
        sc.lab.exec(["ip", "addr", "add", "10.77.0.1/24", "dev", "strc1"], check=True, ns="ispb")
        sc.lab.exec(["ip", "link", "set", "strc1", "up"], check=True, ns="ispb")
        wait_for(lambda: any(p["pvd_id"] == "implicit:strc0" for p in sc.pvdd.list_pvds()), what="PvD strc0")
        yield "strc0"
    finally:
        sc.lab.exec(["ip", "link", "del", "strc0"])
        wait_for(lambda: not any(p["pvd_id"] == "implicit:strc0" for p in sc.pvdd.list_pvds()), what="strc0 gone")


def test_link_deleted_mid_run_fails_and_nothing_leaves_elsewhere(scenario3: Scenario) -> None:
    sc = scenario3
    with side_link(sc) as link:
        proc = sc.lab.popen([sys.executable, "-m", "pvdrun.cli", "--pvd", link, "--socket", sc.pvdd.socket, "--strict",
                             *empty_env_python(LOOP, "10.77.0.1", "6")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
        try:
            with sc.lab.capture("ispa") as other:
                time.sleep(2)
                sc.lab.exec(["ip", "link", "del", link], check=True)
                out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    results = out.split()
    assert results and results[0] == "ok", (out, err)
    assert results[-1] != "ok" and "ok" not in results[results.index(next(r for r in results if r != "ok")):], out
    assert_no_leak(other, out, err, destinations=["10.77.0.1"], sources=["10.77.0.2"], tokens=["strict-loop"])
    with sc.lab.capture("ispa") as control:  # the main table now sends 10.77.0.1 out of ispa
        unscoped = sc.lab.exec(empty_env_python(LOOP, "10.77.0.1", "0.3"))
    assert_caught(control, unscoped.stdout, unscoped.stderr, destinations=["10.77.0.1"])


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_pvdd_killed_or_stopped_and_restarted_programs_stay_held(scenario3: Scenario, how: str) -> None:
    """SIGKILL (a crash: its rules stay) or SIGTERM (parked marks: sends fail): never unscoped;
    the process stays in the PvD's cgroup, and works again with the next pvdd."""
    sc = scenario3
    target = sc.lab.isp("ispb")["service_v6"]
    proc = sc.lab.popen([sys.executable, "-m", "pvdrun.cli", "--pvd", sc.pvd, "--socket", sc.pvdd.socket, "--strict",
                         *empty_env_python(LOOP, target, "12")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True)
    try:
        wait_for(lambda: _held(sc) >= 1, what="the program held")
        cgroup = _cgroup_of_child(proc.pid)
        with sc.lab.capture("ispa") as other:
            time.sleep(1)
            if how == "kill":
                sc.pvdd.kill()
            else:
                sc.pvdd.stop()
            time.sleep(2)
            assert _cgroup_of_child(proc.pid) == cgroup
            sc.pvdd.start()
            time.sleep(2)
            assert _cgroup_of_child(proc.pid) == cgroup
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert_no_leak(other, out, err, **sc.rules, tokens=["strict-loop"])
    results = out.split()
    assert results[0] == "ok" and results[-1] == "ok", out
    if how == "stop":
        assert any(r != "ok" for r in results), out  # the parked marks: sends failed meanwhile


def _held(sc: Scenario) -> int:
    reply = sc.pvdd.request({"op": "list"})
    return int(reply.get("strict", {}).get("processes", {}).get("implicit:ispb", 0))


def _cgroup_of_child(pid: int) -> str:
    """The cgroup of the program (the launcher's ``ip netns exec`` execs it, same pid)."""
    with open(f"/proc/{pid}/cgroup", encoding="ascii") as handle:
        return next(line[3:].strip() for line in handle if line.startswith("0::"))
