"""Real programs' name lookups stay inside the PvD (R3, R25), as root and as a real
unprivileged user (useradd + setpriv: fixtures/unprivileged.py), each run as
``pvdrun --pvd PVD PROGRAM`` with pvdd serving the PvD table (tests/fixtures/pvdd_lab.py), as
the service would.

The programs, one per way a program resolves:

=====================  ==========================================================  =============
program                what it calls                                               resolved by
=====================  ==========================================================  =============
getent hosts           gethostbyname2 (AAAA first)                                 the shim
getent ahosts          getaddrinfo (AI_ADDRCONFIG: A only where the PvD has IPv4)   the shim
python gethostbyaddr   gethostbyaddr_r: /etc/hosts first, then a PTR query          the shim
perl Net::DNS          its own resolver, servers from /etc/resolv.conf              the program
node dns.resolve4      c-ares (bundled), servers from /etc/resolv.conf              the program
res_query MX, SRV      libresolv's res_query (tests/c/glibc_paths_probe.c)          the shim
getaddrinfo_a          glibc's asynchronous getaddrinfo (the same probe)            the shim
=====================  ==========================================================  =============

Scenario 3 (lab3: two links, overlapping IPv4; PvD ``v4b`` on ispb whose DNS server is
198.51.100.53, the address of ISP A's server too) and scenario 1 (lab1: one shared link,
PvD ``ispb.example``).  Each scoped program must print ISP B's split-horizon answer (names
and records only ISP B's DNS has: ``mail.ispb.example``, the MX of ``svc.example`` and the
SRV ``_imap._tcp.svc.example`` pointing to it, the PTR of ISP B's DNS address), and the
suite's capture (fixtures/capture.py: proven live by markers) on ISP A's link must hold no
frame of it.  The program's own /etc/resolv.conf names ISP A's server (a private mount
namespace, fixtures/resolvconf.py): as root the launcher shows the program the PvD's
resolv.conf instead; as a user, programs that read it themselves depend on the shim serving
the PvD's view.  Each program's control, the same program unscoped with that resolv.conf, is
found on ISP A's link by the same verdict.  For the scoped run, an untied socket to ISP B's
server would leave by ISP A's link: scenario 3's main table sends everything there; in
scenario 1, unmarked packets to it are sent through ISP A's router (fixtures/detour.py
``unmarked_via``; pvdd's PvDs are marked).

Bad input, scenario 3, a PvD on ispb whose one DNS server is a small Python server in ISP B's
namespace: one that never answers (the programs fail after their timeouts, and asked nobody
else), one that sets TC on every UDP reply (the answer comes over TCP), and one whose every
reply is raced by a forged one from another address of the ISP, with the query's id and port
(the forged answer never wins, and the kernel's ICMP errors for the refused forgeries leave
through ISP B: docs/routing.md, "Kernel replies"; Perl's own resolver does not hold, FORGED_OPEN).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from fixtures.capture import (assert_caught, assert_no_leak, ip_destination, ip_source, tcp_segment,
                              udp_ports)
from fixtures.detour import unmarked_via
from fixtures.netns import wait_for
from fixtures.prereq import require
from fixtures.resolvconf import nameservers, with_resolv_conf
from fixtures.unprivileged import User, unprivileged_user, user_for, who  # noqa: F401 (fixtures)
from fixtures.pvdd_lab import PvddInLab
from fixtures.lab_rules import leak_rules_separate as lab3_leak_rules
from fixtures.lab_rules import v4_dns_config
from fixtures.lab_rules import leak_rules_shared as shared_leak_rules

pytestmark = pytest.mark.root

PROBE_SRC = Path(__file__).resolve().parent / "c" / "glibc_paths_probe.c"
#: Short resolver timeouts for every run (glibc, the shim, Net::DNS and c-ares all read it).
RES_OPTIONS = "timeout:1 attempts:2"

PY_REVERSE = "import socket, sys; print(socket.gethostbyaddr(sys.argv[1])[0])"
PERL_A = r"""
use Net::DNS;
my $resolver = Net::DNS::Resolver->new;
my $reply = $resolver->query($ARGV[0], "A") or die "no answer: " . $resolver->errorstring . "\n";
print $_->address, "\n" for grep { $_->type eq "A" } $reply->answer;
"""
NODE_A = r"""
require("dns").resolve4(process.argv[1], (err, addresses) => {
  if (err) { console.error(err.code); process.exit(1); }
  console.log(addresses.join("\n"));
});
"""


@dataclass(frozen=True)
class View:
    """What one PvD's DNS answers and no other's: a name and its addresses, the MX and SRV
    target, and an address whose PTR names ``reverse_name``."""

    name: str
    v4: str
    v6: str
    target: str
    reverse: str
    reverse_name: str
    has_v4: bool = True      # the PvD has an IPv4 address (AI_ADDRCONFIG asks A records)


def isp_view(lab: Any, isp: str) -> View:
    info = lab.isp(isp)
    mail = f"mail.{info['search_domain']}"
    return View(mail, info["mail_v4"], info["mail_v6"], mail, info["dns_v4"] or info["dns_v6"],
                f"dns.{info['search_domain']}", any(":" not in a for a in info["host_addresses"]))


@dataclass(frozen=True)
class Program:
    argv: Callable[[View, str], list[str]]       # (view, probe path) -> argv
    answered: Callable[[View, str], bool]        # (view, stdout) -> the view's answer is there


def _gaia_answered(view: View, out: str) -> bool:
    return any(line.split()[:2] == [view.name, "rc=0"] and {view.v4, view.v6} <= set(line.split())
               for line in out.splitlines())


PROGRAMS = {
    "getent-hosts": Program(lambda v, p: ["getent", "hosts", v.name],
                            lambda v, out: out.split()[:2] == [v.v6, v.name]),
    # getent ahosts: AI_ADDRCONFIG, judged on the PvD's addresses (R26)
    "getent-ahosts": Program(lambda v, p: ["getent", "ahosts", v.name],
                             lambda v, out: v.v6 in out.split() and (v.v4 in out.split()) == v.has_v4),
    "python-gethostbyaddr": Program(lambda v, p: [sys.executable, "-c", PY_REVERSE, v.reverse],
                                    lambda v, out: out.strip() == v.reverse_name),
    "perl-net-dns": Program(lambda v, p: ["perl", "-e", PERL_A, v.name],
                            lambda v, out: out.split() == [v.v4]),
    "node-resolve4": Program(lambda v, p: ["node", "-e", NODE_A, v.name],
                             lambda v, out: out.split() == [v.v4]),
    "res_query-mx": Program(lambda v, p: [p, "res", "query", "svc.example", "MX"],
                            lambda v, out: f"MX 10 {v.target}" in out.splitlines()),
    "res_query-srv": Program(lambda v, p: [p, "res", "query", "_imap._tcp.svc.example", "SRV"],
                             lambda v, out: f"SRV 0 0 143 {v.target}" in out.splitlines()),
    "getaddrinfo_a": Program(lambda v, p: [p, "gaia", "wait", v.name], _gaia_answered),
}


def is_dns(frame: bytes) -> bool:
    """A UDP or TCP frame to or from port 53."""
    ports = udp_ports(frame) or tcp_segment(frame)
    return ports is not None and 53 in ports[:2]


# ---- the two scenarios ------------------------------------------------------------------------

@dataclass
class Scenario:
    """A lab, pvdd serving it, the PvD the programs are scoped to (on ispb) and the rules of
    the verdict on ispa's link."""

    lab: Any
    pvdd: PvddInLab
    pvd: str
    rules: dict[str, Any]
    other_dns: str           # ISP A's DNS server: what the programs' own resolv.conf names

    @property
    def view(self) -> View:
        return isp_view(self.lab, "ispb")

    def detour(self) -> contextlib.AbstractContextManager[None]:
        """Where an untied socket to ISP B's DNS would leave by ISP A's link for the block.
        Scenario 3: already so (the main table sends everything out of ispa).  Scenario 1: the
        host has a route to each ISP's service prefix through that ISP's router, so unmarked
        packets to ISP B's server are sent through ISP A's (pvdd's PvDs are marked)."""
        if self.lab.scenario == 3:
            return contextlib.nullcontext()
        return unmarked_via(self.lab, "ispa", [self.lab.isp("ispb")["dns_v6"]])


@pytest.fixture(scope="module")
def probe() -> Iterator[str]:
    """tests/c/glibc_paths_probe.c, compiled where the test user can run it."""
    where = tempfile.mkdtemp(prefix="pvdrun-programs-")
    try:
        os.chmod(where, 0o755)
        out = os.path.join(where, "glibc_paths_probe")
        subprocess.run([os.environ.get("CC", "cc"), "-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror",
                        "-D_GNU_SOURCE", "-o", out, str(PROBE_SRC), "-pthread", "-lresolv", "-ldl"],
                       check=True, capture_output=True)
        yield out
    finally:
        shutil.rmtree(where, ignore_errors=True)


#: The bad-input PvDs of scenario 3 (on ispb, each in turn) and their one DNS server each.
HOSTILE = {"dead": "198.51.100.54", "truncating": "198.51.100.55", "raced": "198.51.100.56"}
FORGER = "198.51.100.57"


class ConfiguredPvdd:
    """pvdd in lab3 whose pvd.toml changes between tests (one configured PvD per interface:
    the bad-input PvDs take ispb's in turn), re-read on SIGHUP."""

    def __init__(self, pvdd: PvddInLab, text: str) -> None:
        self.pvdd, self.text = pvdd, text

    def serve(self, text: str, pvd: str, dns: str) -> None:
        """``text`` as pvd.toml; set-up waits until pvdd serves ``pvd`` with ``dns``."""
        if self.text != text:
            self.pvdd.write_config(text)
            self.text = text
            self.pvdd.signal(signal.SIGHUP)
        wait_for(lambda: any(pvd in p["names"] and p["dns_servers"] == [dns] for p in self.pvdd.list_pvds()),
                 what=f"pvdd serving {pvd} with DNS {dns}")


@pytest.fixture(scope="module")
def base_config3(lab3: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """test_resolve_lab3's v4a/v4b: both ISPs' DNS at 198.51.100.53."""
    return Path(v4_dns_config(tmp_path_factory.mktemp("programs3"), lab3)["PVDRUN_CONFIG"]).read_text()


@pytest.fixture(scope="module")
def pvdd3(lab3: Any, base_config3: str) -> Iterator[ConfiguredPvdd]:
    pvdd = PvddInLab(lab3, base_config3)
    try:
        pvdd.start()
        yield ConfiguredPvdd(pvdd, base_config3)
    finally:
        pvdd.cleanup()


@pytest.fixture
def scenario3(lab3: Any, pvdd3: ConfiguredPvdd, base_config3: str) -> Scenario:
    """Scenario 3, PvD v4b on ispb."""
    pvdd3.serve(base_config3, "v4b", lab3.isp("ispb")["dns_v4"])
    return Scenario(lab3, pvdd3.pvdd, "v4b", lab3_leak_rules(lab3, "ispb"), lab3.isp("ispa")["dns_v4"])


def hostile_pvd(lab: Any, pvdd3: ConfiguredPvdd, kind: str) -> Scenario:
    """Scenario 3 with the bad-input PvD ``kind`` on ispb, its one server HOSTILE[kind]."""
    pvdd3.serve(f'[pvd.{kind}]\ninterface = "ispb"\ndns = ["{HOSTILE[kind]}"]\n', kind, HOSTILE[kind])
    return Scenario(lab, pvdd3.pvdd, kind, lab3_leak_rules(lab, "ispb"), lab.isp("ispa")["dns_v4"])


@pytest.fixture(scope="module")
def scenario1(lab1: Any) -> Iterator[Scenario]:
    """pvdd in lab1 (a PvD sharing its link needs pvdd's routing tables)."""
    pvdd = PvddInLab(lab1)
    try:
        pvdd.start()
        yield Scenario(lab1, pvdd, lab1.isp("ispb")["pvd_id"], shared_leak_rules(lab1, "ispb"),
                       lab1.isp("ispa")["dns_v6"])
    finally:
        pvdd.cleanup()


def scoped(sc: Scenario, who: str, user: User | None, pvd: str, argv: list[str],
           hosts: str | None = None) -> subprocess.CompletedProcess:
    """``pvdrun --pvd PVD ARGV`` in the lab's host namespace, as root or as the test user, with
    a private /etc/resolv.conf naming ISP A's server (and ``hosts`` as /etc/hosts)."""
    env = {"RES_OPTIONS": RES_OPTIONS}
    launch = ["-m", "pvdrun.cli", "--pvd", pvd, "--socket", sc.pvdd.socket, *argv]
    if who == "user":
        assert user is not None
        command = user.python(launch, env)
    else:
        command = [sys.executable, *launch]
    text = nameservers(sc.other_dns)
    return sc.lab.exec(with_resolv_conf(command, text, hosts, keep=True), env=env, timeout=120)


def unscoped(sc: Scenario, argv: list[str]) -> subprocess.CompletedProcess:
    """The control: ``argv`` without pvdrun, its /etc/resolv.conf naming ISP A's server."""
    env = {"RES_OPTIONS": RES_OPTIONS}
    return sc.lab.exec(with_resolv_conf(argv, nameservers(sc.other_dns)), env=env, timeout=120)


def program_prereqs() -> None:
    for command in ("getent", "perl", "node"):
        require(shutil.which(command) is not None, f"{command} (Makefile DEB_PACKAGES)")
    has_net_dns = subprocess.run(["perl", "-MNet::DNS", "-e", "1"], capture_output=True).returncode == 0
    require(has_net_dns, "Perl's Net::DNS (Debian: libnet-dns-perl)")


# ---- each program gets its PvD's answer, and nothing crosses ISP A's link ------------------

@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("scenario", ["scenario3", "scenario1"])
def test_program_gets_its_pvds_answer_and_nothing_leaves(request: pytest.FixtureRequest, probe: str,
                                                         scenario: str, who: str, program: str) -> None:
    program_prereqs()
    sc: Scenario = request.getfixturevalue(scenario)
    user = user_for(who, request)
    view, spec = sc.view, PROGRAMS[program]
    with sc.detour(), sc.lab.capture("ispa") as other:
        done = scoped(sc, who, user, sc.pvd, spec.argv(view, probe))
    assert_no_leak(other, done.stdout, done.stderr, **sc.rules)
    assert spec.answered(view, done.stdout), (done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("scenario", ["scenario3", "scenario1"])
def test_control_program_unscoped_is_caught(request: pytest.FixtureRequest, probe: str, scenario: str,
                                            program: str) -> None:
    """Unscoped, the same program asks the server its resolv.conf names, out of ISP A's link:
    the verdict of the scoped test finds it there."""
    program_prereqs()
    sc: Scenario = request.getfixturevalue(scenario)
    with sc.lab.capture("ispa") as other:
        done = unscoped(sc, PROGRAMS[program].argv(sc.view, probe))
    assert_caught(other, done.stdout, done.stderr, **sc.rules)


def test_reverse_lookup_reads_hosts_file_first(request: pytest.FixtureRequest, scenario3: Scenario,
                                               who: str) -> None:
    """/etc/hosts answers gethostbyaddr before any DNS (nsswitch's ``files dns``): no DNS frame
    on either link."""
    sc, user = scenario3, user_for(who, request)
    hosts = f"127.0.0.1 localhost\n{sc.view.reverse} from-hosts-file.test\n"
    with sc.lab.capture("ispa") as other, sc.lab.capture("ispb") as own:
        done = scoped(sc, who, user, sc.pvd, [sys.executable, "-c", PY_REVERSE, sc.view.reverse], hosts=hosts)
    assert_no_leak(other, done.stdout, done.stderr, **sc.rules)
    assert_no_leak(own, done.stdout, done.stderr, matching={"a DNS query": is_dns})
    assert done.stdout.strip() == "from-hosts-file.test", (done.stdout, done.stderr)


# ---- bad input: a server that never answers, truncates, or is raced by a forger -------------

HOSTILE_SERVER = r"""
import socket, sys, threading, time
import dns.flags, dns.message, dns.rdatatype, dns.rrset

DEAD, TRUNCATING, RACED, FORGER = sys.argv[1:5]
REAL = {"A": "198.51.100.99", "AAAA": "2001:db8:b:1::99", "PTR": "real.ispb.example.",
        "MX": "10 real.ispb.example.", "SRV": "0 0 143 real.ispb.example."}
FORGED = {"A": "6.6.6.6", "AAAA": "2001:db8:666::6", "PTR": "forged.example.",
          "MX": "10 forged.example.", "SRV": "0 0 143 forged.example."}

def reply(query, records, tc=False):
    out = dns.message.make_response(query)
    question = query.question[0]
    text = None if tc else records.get(dns.rdatatype.to_text(question.rdtype))
    if text:
        out.answer.append(dns.rrset.from_text(question.name, 60, "IN", question.rdtype, text))
    if tc:
        out.flags |= dns.flags.TC
    return out.to_wire()

def udp(address):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    return sock

def tcp(address, answer):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, 53))
    listener.listen(16)
    def serve(conn):
        with conn:
            while answer:
                head = conn.recv(2, socket.MSG_WAITALL)
                if len(head) < 2:
                    return
                data = conn.recv(int.from_bytes(head, "big"), socket.MSG_WAITALL)
                wire = reply(dns.message.from_wire(data), REAL)
                conn.sendall(len(wire).to_bytes(2, "big") + wire)
            conn.recv(1)  # the dead server holds the connection and never answers
    def accept():
        while True:
            threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()

def loop(sock, handle):
    def run():
        while True:
            data, peer = sock.recvfrom(4096)
            handle(sock, dns.message.from_wire(data), peer)
    threading.Thread(target=run, daemon=True).start()

forger = udp(FORGER)
def race(sock, query, peer):
    for _ in range(3):  # from another address, the query's id, to the query's port
        forger.sendto(reply(query, FORGED), peer)
    time.sleep(0.3)
    sock.sendto(reply(query, REAL), peer)

loop(udp(DEAD), lambda sock, query, peer: None)
loop(udp(TRUNCATING), lambda sock, query, peer: sock.sendto(reply(query, REAL, tc=True), peer))
loop(udp(RACED), race)
tcp(DEAD, False)
tcp(TRUNCATING, True)
tcp(RACED, True)
print("ready", flush=True)
threading.Event().wait()
"""

BAD_VIEW = View("anything.ispb.example", "198.51.100.99", "2001:db8:b:1::99", "real.ispb.example",
                "198.51.100.99", "real.ispb.example")


@pytest.fixture(scope="module")
def hostile(lab3: Any) -> Iterator[None]:
    """HOSTILE_SERVER in ISP B's namespace, on an interface of its own for the module (a veth
    pair inside that namespace; not lo, where the ISP's dnsmasq, --bind-dynamic, would take
    every new address)."""
    lab = lab3
    proc: subprocess.Popen | None = None
    try:
        lab.exec(["ip", "link", "add", "hostile0", "type", "veth", "peer", "name", "hostile1"], ns="ispb",
                 check=True)
        for end in ("hostile0", "hostile1"):
            lab.exec(["ip", "link", "set", end, "up"], ns="ispb", check=True)
        for address in [*HOSTILE.values(), FORGER]:
            lab.exec(["ip", "addr", "add", f"{address}/32", "dev", "hostile0"], ns="ispb", check=True)
        proc = lab.popen([sys.executable, "-c", HOSTILE_SERVER, *HOSTILE.values(), FORGER], ns="ispb",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")
        yield
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        lab.exec(["ip", "link", "del", "hostile0"], ns="ispb")


@dataclass
class BadRun:
    """A program's run under a bad-input PvD: its result and both links' captures."""

    server: str
    done: subprocess.CompletedProcess
    other: Any               # ISP A's link
    own: Any                 # ISP B's link

    def dns_frames(self, source: str | None = None, destination: str | None = None) -> list[bytes]:
        return [f for f in self.own.frames if is_dns(f) and source in (None, ip_source(f))
                and destination in (None, ip_destination(f))]


def run_bad(request: pytest.FixtureRequest, lab3: Any, pvdd3: ConfiguredPvdd, kind: str, who: str,
            argv: list[str]) -> BadRun:
    """``argv`` under the bad-input PvD ``kind``, captured on both links; ISP A's link must hold
    nothing of it (also when the program failed)."""
    program_prereqs()
    sc = hostile_pvd(lab3, pvdd3, kind)
    with sc.lab.capture("ispa") as other, sc.lab.capture("ispb") as own:
        done = scoped(sc, who, user_for(who, request), sc.pvd, argv)
    assert_no_leak(other, done.stdout, done.stderr, **sc.rules)
    return BadRun(HOSTILE[kind], done, other, own)


def only_to(server: str) -> dict[str, Callable[[bytes], bool]]:
    """Verdict rule for the PvD's own link: DNS only with ``server``."""
    return {f"DNS with another server than {server}":
            lambda f: is_dns(f) and server not in (ip_source(f), ip_destination(f))}


@pytest.mark.parametrize("program", PROGRAMS)
def test_server_that_never_answers_fails_and_nobody_else_is_asked(request: pytest.FixtureRequest, probe: str,
                                                                 lab3: Any, pvdd3: ConfiguredPvdd, hostile: None,
                                                                 who: str, program: str) -> None:
    spec = PROGRAMS[program]
    run = run_bad(request, lab3, pvdd3, "dead", who, spec.argv(BAD_VIEW, probe))
    out = run.done.stdout
    assert_no_leak(run.own, out, run.done.stderr, matching=only_to(run.server))
    assert run.dns_frames(destination=run.server), run.own.show()  # it was asked
    assert not spec.answered(BAD_VIEW, out), out
    failed = run.done.returncode != 0 or any(line.startswith("rc=-1 ") or " rc=-" in line for line in out.splitlines())
    assert failed, (run.done.returncode, out, run.done.stderr)


@pytest.mark.parametrize("program", PROGRAMS)
def test_truncated_udp_reply_is_answered_over_tcp(request: pytest.FixtureRequest, probe: str,
                                                  lab3: Any, pvdd3: ConfiguredPvdd, hostile: None, who: str,
                                                  program: str) -> None:
    spec = PROGRAMS[program]
    run = run_bad(request, lab3, pvdd3, "truncating", who, spec.argv(BAD_VIEW, probe))
    assert_no_leak(run.own, run.done.stdout, run.done.stderr, matching=only_to(run.server))
    syns = [f for f in run.dns_frames(destination=run.server) if (seg := tcp_segment(f)) and seg[2] & 0x12 == 0x02]
    assert syns, run.own.show()  # the answer came over TCP
    assert spec.answered(BAD_VIEW, run.done.stdout), (run.done.returncode, run.done.stdout, run.done.stderr)


#: Open, each an xfail with the reason (strict: a fix shows as XPASS and removes the marker).
FORGED_OPEN = {
    "perl-net-dns": "Net::DNS reads UDP replies on an unconnected socket and takes one from any address "
                    "whose id and question match: the forged answer wins (the program resolves itself; "
                    "the shim ties its socket but never sees its replies)",
}


@pytest.mark.parametrize("program", [pytest.param(p, marks=pytest.mark.xfail(reason=FORGED_OPEN[p], strict=True))
                                     if p in FORGED_OPEN else p for p in PROGRAMS])
def test_forged_reply_from_another_address_never_wins(request: pytest.FixtureRequest, probe: str,
                                                      lab3: Any, pvdd3: ConfiguredPvdd, hostile: None, who: str,
                                                      program: str) -> None:
    spec = PROGRAMS[program]
    run = run_bad(request, lab3, pvdd3, "raced", who, spec.argv(BAD_VIEW, probe))
    out = run.done.stdout
    assert "forged" not in out and "6.6.6.6" not in out and "666" not in out, out
    assert run.dns_frames(source=FORGER), run.own.show()  # the forger raced
    assert run.dns_frames(source=run.server), run.own.show()  # and the server answered
    assert spec.answered(BAD_VIEW, out) or run.done.returncode != 0, (out, run.done.stderr)
