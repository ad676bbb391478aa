"""Real programs scoped by ``pvdrun --pvd`` in lab scenario 3.

Scenario 3: the host has two interfaces, ``ispa`` and ``ispb``, with the SAME IPv4
address plan behind both (192.0.2.10/24, router 192.0.2.1, service 198.51.100.80), so
only scoping decides which ISP a packet reaches.  Each program is run scoped to one ISP
and then the other, by literal IPv4 and IPv6 address; the service answers with the ISP's
name, and a capture on the OTHER ISP's link must see nothing of the run: the suite's capture
(fixtures/capture.py), proven live by markers, with nothing filtered out (ND and ARP from the
scoped ISP's addresses count).  Each family of these tests has a negative control: the same
program, not scoped, is found on that link by the same capture and verdict.
Requirements: R3 (scope), R4 (one PvD per operation), R6 (source address), R20.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any, Callable

import pytest

from fixtures.capture import assert_caught, assert_no_leak, describe, ip_source, tcp_segment
from fixtures.detour import main_table_prefers
from fixtures.prereq import require
from fixtures.pvdd import Pvdd, start_pvdd  # noqa: F401 (fixture)
from pvdrun.shim import library_path

pytestmark = pytest.mark.root

ISPS = ("ispa", "ispb")
OTHER = {"ispa": "ispb", "ispb": "ispa"}
from fixtures.commands import PVDRUN  # noqa: E402
CASES = [(isp, version) for isp in ISPS for version in (4, 6)]


def service(lab: Any, isp: str, version: int) -> str:
    """The address of ``isp``'s service in IP ``version`` (same IPv4 address for both ISPs)."""
    return lab.isp(isp)["service_v4" if version == 4 else "service_v6"]


def url(address: str, port: int = 80) -> str:
    return f"http://[{address}]:{port}/" if ":" in address else f"http://{address}:{port}/"


def scoped(lab: Any, isp: str, args: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    """``pvdrun --pvd ISP ARGS`` inside the lab's host namespace (discovery finds the PvD)."""
    return lab.exec([PVDRUN, "--pvd", isp, *args], timeout=timeout)


def leak_rules(lab: Any, isp: str, *targets: str) -> dict[str, list[str]]:
    """What the other ISP's link must not hold of a program scoped to ``isp``: no frame at all
    from ``isp``'s host addresses (ARP and ND included; scenario 3's IPv4 address is the same
    on both links, so no IPv4 frame of the host either), none to ``isp``'s services or
    ``targets``, and nothing but link control (ND, ARP, MLD) from the other link's own
    addresses."""
    services = [a for a in (service(lab, isp, 4), service(lab, isp, 6)) if a]
    return {"sources": lab.isp(isp)["host_addresses"], "quiet": lab.isp(OTHER[isp])["host_addresses"],
            "destinations": [*services, *targets]}


def program(name: str, lab: Any, isp: str, version: int) -> list[str]:
    """The argv of one of the real programs, talking to ``isp``'s service in IP ``version``."""
    address = service(lab, isp, version)
    if name == "curl":
        return ["curl", "-sS", "-m", "10", url(address)]
    if name == "wget":
        return ["wget", "-q", "-T", "10", "-t", "1", "-O", "-", url(address)]
    if name == "python_urllib":
        code = ("import sys, urllib.request; "
                "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())")
        return [sys.executable, "-c", code, url(address)]
    if name == "udp_echo_socat":
        target = f"UDP4:{address}:7" if version == 4 else f"UDP6:[{address}]:7"
        return ["sh", "-c", f"echo hello-{isp} | socat -t 3 - {target}"]
    if name == "udp_echo_nc":
        return ["sh", "-c", f"echo hi | nc -u -w 3 {address} 7"]
    raise ValueError(name)


PROGRAMS = ("curl", "wget", "python_urllib", "udp_echo_socat", "udp_echo_nc")


def check_program(lab: Any, isp: str, version: int, args: list[str], expect_in_output: str) -> None:
    """Run one scoped program while capturing the other ISP's link, where the main table sends
    the service's traffic (fixtures/detour.py: without that, an untied socket of a program
    scoped to ispa would leave by ispa anyway, the host's lowest metric)."""
    with main_table_prefers(lab, OTHER[isp], [service(lab, isp, version)]), lab.capture(OTHER[isp]) as cap:
        done = scoped(lab, isp, args)
    assert_no_leak(cap, done.stdout, done.stderr, **leak_rules(lab, isp))  # first: the worst failure
    assert done.returncode == 0, done.stderr
    assert expect_in_output in done.stdout, done.stdout
    # the source address is the host's address from that ISP (R6)
    assert any(addr in done.stdout for addr in lab.isp(isp)["host_addresses"]), done.stdout


@pytest.mark.parametrize("isp,version", CASES)
def test_curl(lab3: Any, isp: str, version: int) -> None:
    check_program(lab3, isp, version, program("curl", lab3, isp, version), f"{isp} ")


@pytest.mark.parametrize("isp,version", CASES)
def test_wget(lab3: Any, isp: str, version: int) -> None:
    check_program(lab3, isp, version, program("wget", lab3, isp, version), f"{isp} ")


@pytest.mark.parametrize("isp,version", CASES)
def test_python_urllib(lab3: Any, isp: str, version: int) -> None:
    check_program(lab3, isp, version, program("python_urllib", lab3, isp, version), f"{isp} ")


@pytest.mark.parametrize("isp,version", CASES)
def test_udp_echo_socat(lab3: Any, isp: str, version: int) -> None:
    check_program(lab3, isp, version, program("udp_echo_socat", lab3, isp, version), f"{isp} ")


@pytest.mark.parametrize("isp,version", CASES)
def test_udp_echo_nc(lab3: Any, isp: str, version: int) -> None:
    check_program(lab3, isp, version, program("udp_echo_nc", lab3, isp, version), f"{isp} ")


@pytest.mark.parametrize("isp,version", CASES)
@pytest.mark.parametrize("name", PROGRAMS)
def test_control_unscoped_program_is_caught(lab3: Any, name: str, isp: str, version: int) -> None:
    """Negative control of the tests above (and of the other leak tests of this module, which
    use the same verdict): the same program, not scoped (no pvdrun, no shim), talking to
    ISP's service, leaves through the other ISP's link (where the main table sends it, as in
    check_program), where the same capture and verdict find it; so those tests can fail."""
    with main_table_prefers(lab3, OTHER[isp], [service(lab3, isp, version)]), lab3.capture(OTHER[isp]) as cap:
        done = lab3.exec(program(name, lab3, isp, version), timeout=60)
    assert_caught(cap, done.stdout, done.stderr, **leak_rules(lab3, isp))


def syn_acks(caps: tuple[Any, ...], address: str, port: int) -> list[bytes]:
    """Frames in which ``address``:``port`` answers a SYN (SYN+ACK): a listener took it."""
    return [f for cap in caps for f in cap.frames
            if ip_source(f) == address and (seg := tcp_segment(f)) and seg[0] == port and seg[2] & 0x12 == 0x12]


def serve_and_probe(lab: Any, isp: str, port: int, scoped_server: bool) -> dict[str, Any]:
    """A dual-stack socat listener (scoped to ``isp`` through pvdrun, or not), connected to from
    ``isp``'s router (v4, v6; scoped only), then from the OTHER ISP's router to the host's same IPv4 address
    with both links captured."""
    argv = ["socat", "-T", "20", f"TCP6-LISTEN:{port},reuseaddr,fork", f"SYSTEM:echo served-by-{isp}"]
    server = lab.popen([PVDRUN, "--pvd", isp, *argv] if scoped_server else argv,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    probe = ["socat", "-T", "3", "-", f"TCP:{{}}:{port},connect-timeout=3"]

    def connect_from(ns: str, address: str) -> subprocess.CompletedProcess:
        target = f"[{address}]" if ":" in address else address
        argv = [part.replace("{}", target) for part in probe]
        for _ in range(50):  # wait for the listener (no wall-clock assertion)
            done = lab.exec(argv, ns=ns, timeout=20)
            if done.returncode == 0 or ns != isp:
                return done
            if server.poll() is not None:
                break
            subprocess.run(["sleep", "0.1"])
        return done

    try:
        out: dict[str, Any] = {}
        if scoped_server:
            out = {"good_v4": connect_from(isp, lab.host_address(isp, 4)),
                   "good_v6": connect_from(isp, lab.host_address(isp, 6))}
        else:  # an unscoped listener's replies all leave by ispa: wait for it to listen instead
            for _ in range(100):
                if lab.exec(["ss", "-Hltn", f"sport = :{port}"]).stdout.strip() or server.poll() is not None:
                    break
                subprocess.run(["sleep", "0.1"])
        with lab.capture("ispa") as cap_a, lab.capture("ispb") as cap_b:
            out["bad_v4"] = connect_from(OTHER[isp], lab.host_address(isp, 4))
        out["caps"] = (cap_a, cap_b)
        return out
    finally:
        server.kill()
        server.wait()


@pytest.mark.parametrize("isp", ISPS)
def test_server_accepts_only_through_its_pvd(lab3: Any, isp: str) -> None:
    """A scoped server (socat, dual-stack listener) accepts from its ISP, not the other.

    The other ISP's router reaches the host's SAME IPv4 address through the other link.  The
    connection failing proves nothing (for ispa it always fails: the host's main table sends
    any reply out of ispa, not back where the SYN came from); what shows whether the listener
    took the SYN is a SYN+ACK from it on either link.  Control: an unscoped listener does send
    one, so the check can fail."""
    port = 30000 + os.getpid() % 20000 + (0 if isp == "ispa" else 2)
    host_v4 = lab3.host_address(isp, 4)
    run = serve_and_probe(lab3, isp, port, scoped_server=True)
    for key in ("good_v4", "good_v6"):
        assert run[key].returncode == 0 and f"served-by-{isp}" in run[key].stdout, (key, run[key].stderr)
    bad = run["bad_v4"]
    assert f"served-by-{isp}" not in bad.stdout and bad.returncode != 0, bad.stdout
    problems = [p for cap in run["caps"] for p in cap.live_problems()]
    taken = syn_acks(run["caps"], host_v4, port)
    assert not problems and not taken, problems + [describe(f) for f in taken]

    control = serve_and_probe(lab3, isp, port + 1, scoped_server=False)
    problems = [p for cap in control["caps"] for p in cap.live_problems()]
    assert not problems and syn_acks(control["caps"], host_v4, port + 1), (
        "control: an unscoped listener sent no SYN+ACK to the other ISP's router, so the test "
        "cannot fail", problems, [cap.show() for cap in control["caps"]])


def test_two_threads_two_pvds(lab3: Any, tmp_path: Any) -> None:
    """A C program whose two threads are scoped to ispa and ispb at once reaches both,
    each on its own, at the same (overlapping) IPv4 address and by IPv6 (R20).  The scope
    lines come from pvdrun.api.lookup, as the launcher's do."""
    lib = library_path()
    include = os.path.dirname(lib)
    source = os.path.join(os.path.dirname(__file__), "c", "two_threads.c")
    binary = str(tmp_path / "two_threads")
    subprocess.run(["cc", "-Wall", "-Wextra", "-Werror", "-I", include, "-o", binary, source, lib,
                    f"-Wl,-rpath,{include}", "-pthread"],
                   check=True)
    scopes = {}
    for isp in ISPS:
        got = lab3.exec([sys.executable, "-c", "import sys; from pvdrun.api import lookup; "
                         "print(lookup(sys.argv[1]).to_scope())", isp], check=True)
        scopes[isp] = got.stdout.strip()
    for version in (4, 6):
        dst = service(lab3, "ispa", 4) if version == 4 else None
        targets = [dst] if dst else [service(lab3, "ispa", 6), service(lab3, "ispb", 6)]
        for target in targets:
            done = lab3.exec(["env", f"LD_PRELOAD={lib}", binary, scopes["ispa"], scopes["ispb"], target])
            assert done.returncode == 0, done.stderr
            lines = done.stdout.splitlines()
            a, b = lines[0], lines[1]
            if version == 4:
                assert "reply=ispa 192.0.2.10" in a and "reply=ispb 192.0.2.10" in b, done.stdout
            elif target == service(lab3, "ispa", 6):
                assert "reply=ispa " in a and "error=connect" in b, done.stdout
            else:
                assert "error=connect" in a and "reply=ispb " in b, done.stdout
            for line, isp in ((a, "ispa"), (b, "ispb")):
                if "reply=" in line:
                    handle = line.split("handle=")[1].split()[0]
                    assert f"socket={handle}" in line and f"thread={handle}" in line
            assert lines[2] == "main thread=0 process=0"


def test_children_inherit_the_scope(lab3: Any) -> None:
    """R20: a grandchild (sh -> sh -> curl) is scoped like its grandparent."""
    with lab3.capture("ispa") as cap:
        done = scoped(lab3, "ispb", ["sh", "-c", "sh -c 'curl -sS -m 10 http://198.51.100.80/'"])
    assert_no_leak(cap, done.stdout, **leak_rules(lab3, "ispb"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ispb "), done.stdout


def test_inner_pvdrun_overrides_outer(lab3: Any) -> None:
    done = scoped(lab3, "ispb", [PVDRUN, "--pvd", "ispa", "curl", "-sS", "-m", "10", "http://198.51.100.80/"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ispa "), done.stdout


NULL_PROBE = r"""
import errno, socket
print("ran")
for family in (socket.AF_INET, socket.AF_INET6):
    try:
        socket.socket(family, socket.SOCK_DGRAM).sendto(b"null", ("198.51.100.80", 7))
        print("sent")
    except OSError as exc:
        print(errno.errorcode.get(exc.errno, exc.errno), exc.strerror)
"""


def null_rules(lab: Any) -> dict[str, list[str]]:
    """Under the null PvD nothing of the program may appear on either link: only link control
    from any of the host's addresses, nothing to the services."""
    hosts = lab.isp("ispa")["host_addresses"] + lab.isp("ispb")["host_addresses"]
    return {"quiet": hosts, "destinations": ["198.51.100.80", service(lab, "ispa", 6), service(lab, "ispb", 6)]}


def test_null_pvd_in_the_lab(lab3: Any) -> None:
    """R13: no network at all; curl runs and fails fast at its own connect (curl's exit 7 and
    message, not one of pvdrun's statuses: 3, 4, 5 would mean curl never ran), socket() fails
    with EACCES, and nothing reaches either ISP.  Control: curl unscoped is seen on ispa's link
    by the same verdict."""
    with lab3.capture("ispa") as cap_a, lab3.capture("ispb") as cap_b:
        done = scoped(lab3, "null", ["curl", "-sS", "-m", "10", "http://198.51.100.80/"])
        probe = scoped(lab3, "null", [sys.executable, "-c", NULL_PROBE])
    assert done.returncode == 7, (done.returncode, done.stderr)  # curl: could not connect
    assert done.stderr.startswith("curl: (7) "), done.stderr
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.splitlines() == ["ran", "EACCES Permission denied", "EACCES Permission denied"], \
        probe.stdout
    assert_no_leak(cap_a, done.stderr, **null_rules(lab3))
    assert_no_leak(cap_b, done.stderr, **null_rules(lab3))
    with lab3.capture("ispa") as control:
        plain = lab3.exec(["curl", "-sS", "-m", "10", "http://198.51.100.80/"])
    assert_caught(control, plain.stdout, plain.stderr, **null_rules(lab3))


def test_unknown_pvd_lists_candidates(lab3: Any) -> None:
    done = scoped(lab3, "nosuchpvd", ["true"])
    assert done.returncode == 3
    assert "nosuchpvd" in done.stderr and "ispa" in done.stderr and "ispb" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_c_api_and_python_binding_with_pvdd(lab3: Any, tmp_path: Any, start_pvdd: Callable[..., Pvdd]) -> None:
    """With pvdd running: the C API lists both PvDs from pvdd's socket (R14, R16), a
    socket bound to one PvD through pvd.h reaches it (R24), the launcher finds the PvD
    through pvdd, and Python's ``with thread_scope(...)`` switches PvD per block."""
    lib = library_path()
    include = os.path.dirname(lib)
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "pvd_list.c")
    binary = str(tmp_path / "pvd_list")
    subprocess.run(["cc", "-Wall", "-Wextra", "-Werror", "-I", include, "-o", binary, example, lib,
                    f"-Wl,-rpath,{include}"], check=True)
    sock = start_pvdd(lab3.host_ns).socket  # answering
    listed = lab3.exec(["env", f"PVDRUN_SOCKET={sock}", binary])
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("2 PvD(s)"), listed.stdout
    assert "if=ispa:" in listed.stdout and "if=ispb:" in listed.stdout
    with lab3.capture("ispa") as cap:
        bound = lab3.exec(["env", f"PVDRUN_SOCKET={sock}", binary, "ispb", service(lab3, "ispb", 4), "80"])
    assert_no_leak(cap, bound.stdout, **leak_rules(lab3, "ispb"))
    assert bound.returncode == 0 and "through PvD ispb" in bound.stdout, bound.stderr
    code = ("import urllib.request\nfrom pvdrun.shim import binding\n"
            "for name in ('ispa', 'ispb', 'ispa'):\n"
            "    with binding.thread_scope(binding.find(name)):\n"
            "        body = urllib.request.urlopen('http://198.51.100.80/', timeout=10).read()\n"
            "        print(name, body.decode().split()[0])\n"
            "print('process', urllib.request.urlopen('http://198.51.100.80/', timeout=10).read().decode()"
            ".split()[0])\n")
    done = lab3.exec([PVDRUN, "--pvd", "ispb", "--socket", sock, sys.executable, "-c", code])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["ispa ispa", "ispb ispb", "ispa ispa", "process ispb"]


ESCAPES = r'''
import socket, struct, sys
IP_PKTINFO = 8
other_index, other_v6 = int(sys.argv[1]), sys.argv[2]
def attempt(fn):
    try:
        fn(); return "sent"
    except OSError as exc:
        return exc.errno
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(b"first", ("198.51.100.80", 7))
print(s.recv(100).decode().split()[0])
pkt = struct.pack("I4s4s", other_index, bytes(4), bytes(4))
print(attempt(lambda: s.sendmsg([b"x"], [(socket.IPPROTO_IP, IP_PKTINFO, pkt)], 0, ("198.51.100.80", 7))))
src = struct.pack("I4s4s", 0, socket.inet_aton("127.0.0.1"), bytes(4))  # ipi_spec_dst: a source
print(attempt(lambda: s.sendmsg([b"x"], [(socket.IPPROTO_IP, IP_PKTINFO, src)], 0, ("198.51.100.80", 7))))
print(attempt(lambda: s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"ispa")))
print(attempt(lambda: s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"")))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
pkt6 = socket.inet_pton(socket.AF_INET6, other_v6) + struct.pack("I", 0)
print(attempt(lambda: s6.sendmsg([b"x"], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pkt6)], 0,
                                  ("2001:db8:b:1::80", 7))))
fresh = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print(attempt(lambda: fresh.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"ispa")))
print(attempt(lambda: s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pkt6)))
'''


def test_escape_attempts_are_refused(lab3: Any) -> None:
    """A (root) program scoped to ispb cannot leave through ispa: IP_PKTINFO naming ispa's
    interface or a foreign source, IPV6_PKTINFO (per message or sticky) with ispa's source,
    SO_BINDTODEVICE to ispa or unbinding."""
    index = int(lab3.exec(["cat", "/sys/class/net/ispa/ifindex"], check=True).stdout)
    with lab3.capture("ispa") as cap:
        done = scoped(lab3, "ispb", [sys.executable, "-c", ESCAPES, str(index),
                                     lab3.host_address("ispa", 6)])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    assert lines[0] == "ispb"
    assert lines[1:] == ["22", "99", "1", "1", "99", "1", "99"], lines  # EINVAL, EADDRNOTAVAIL, EPERM...
    assert_no_leak(cap, done.stdout, **leak_rules(lab3, "ispb"))


INHERIT = r'''
import os, socket, subprocess, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(b"parent", ("198.51.100.80", 7))
print(s.recv(100).decode().split()[0])
child = ("import os, socket, sys; os.setgid(65534); os.setuid(65534); "
         "s = socket.socket(fileno=int(sys.argv[1])); s.settimeout(5); "
         "s.sendto(b'child', ('198.51.100.80', 7)); print(s.recv(100).decode().split()[0])")
done = subprocess.run([sys.executable, "-c", child, str(s.fileno())], pass_fds=[s.fileno()],
                      capture_output=True, text=True)
print(done.stdout.strip() or done.stderr.strip().splitlines()[-1])
'''


def test_socket_inherited_by_unprivileged_child(lab3: Any) -> None:
    """A tied socket passed across exec to a child that dropped root stays in its PvD: the
    child's shim recognises the socket (already bound to the PvD's interface) and uses it."""
    with lab3.capture("ispa") as cap:
        done = scoped(lab3, "ispb", [sys.executable, "-c", INHERIT])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ispb", "ispb"], done.stdout
    assert_no_leak(cap, done.stdout, **leak_rules(lab3, "ispb"))


#: Descriptor copies of sockets.  Every datagram carries TOKEN:CASE; and is sent to the UDP echo
#: service (198.51.100.80: the same address behind both ISPs).  Prints, per case, the ISP that
#: answered and the interface the KERNEL says the socket is bound to (SO_BINDTOIFINDEX read back).
DUPS = r"""
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)  # dup, dup2, dup3, fcntl: what the shim hooks
F_DUPFD, F_DUPFD_CLOEXEC, SO_BINDTOIFINDEX = 0, 1030, 62
token, dst = sys.argv[1], ("198.51.100.80", 7)

def ifname(fd):
    s = socket.socket(fileno=os.dup(fd))  # os.dup: only to read, the copy is closed at once
    try:
        index = s.getsockopt(socket.SOL_SOCKET, SO_BINDTOIFINDEX)
        return socket.if_indextoname(index) if index else "unbound"
    finally:
        s.close()

def use(case, fd):
    s = socket.socket(fileno=fd)
    s.settimeout(5)
    try:
        s.sendto(f"{token}:{case};".encode(), dst)
        answer = s.recv(200).decode().split()[0]
    except OSError as exc:
        answer = f"errno={exc.errno}"
    print(case, answer, ifname(fd), flush=True)
    s.detach()

def tied():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    use("first_use", s.fileno())
    return s.detach()

def check(rc):
    if rc < 0:
        raise OSError(ctypes.get_errno(), "dup")
    return rc

t = tied()
use("dup", check(libc.dup(t)))
use("dup2", check(libc.dup2(t, 200)))
use("dup3", check(libc.dup3(t, 201, os.O_CLOEXEC)))
use("fcntl_dupfd", check(libc.fcntl(t, F_DUPFD, 300)))
use("fcntl_dupfd_cloexec", check(libc.fcntl(t, F_DUPFD_CLOEXEC, 310)))
# a fresh (never used, so never tied) socket copied over a tied socket's number: the number
# now names the fresh socket, which must be tied at its first use like any other, not
# taken as already tied (then it would leave by the default route, ispa)
for how in ("dup2", "dup3", "close_dup"):
    victim = tied()
    fresh = socket.socket(socket.AF_INET, socket.SOCK_DGRAM).detach()
    if how == "dup2":
        check(libc.dup2(fresh, victim))
    elif how == "dup3":
        check(libc.dup3(fresh, victim, 0))
    else:  # close the tied one; the next dup() gets its (lowest free) number
        libc.close(victim)
        got = check(libc.dup(fresh))
        assert got == victim, (got, victim)
    use(f"fresh_over_tied_{how}", victim)
print("done")
"""

DUP_CASES = ["first_use", "dup", "dup2", "dup3", "fcntl_dupfd", "fcntl_dupfd_cloexec",
             "fresh_over_tied_dup2", "fresh_over_tied_dup3", "fresh_over_tied_close_dup"]


def test_descriptor_copies_keep_their_sockets_pvd(lab3: Any) -> None:
    """dup/dup2/dup3/fcntl(F_DUPFD[_CLOEXEC]) of a socket tied to ispb stay in ispb; a fresh
    socket dup2()ed (or dup3()ed, or dup()ed after a close) onto a tied socket's number does not
    inherit the tied state: it is tied to ispb at its own first use.  The proof is the kernel's
    (SO_BINDTOIFINDEX read back, the ISP that answered) and the wire: every datagram on ispb's
    link, none on ispa's.  Control: the same program unscoped goes out of ispa, where the
    same capture and verdict find it."""
    token = "D" + os.urandom(5).hex()
    rules = {**leak_rules(lab3, "ispb"), "tokens": [token]}
    with lab3.capture("ispa") as other, lab3.capture("ispb") as own:
        done = scoped(lab3, "ispb", [sys.executable, "-c", DUPS, token])
    assert done.returncode == 0 and done.stdout.endswith("done\n"), (done.stdout, done.stderr)
    got = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[:-1]}
    assert got == {case: ["ispb", "ispb"] for case in DUP_CASES}, done.stdout
    assert_no_leak(other, done.stdout, **rules)
    seen = {case for case in DUP_CASES if own.carrying(f"{token}:{case};")}
    assert not own.live_problems() and seen == set(DUP_CASES), (own.live_problems(), own.show())

    with lab3.capture("ispa") as control:
        plain = lab3.exec([sys.executable, "-c", DUPS, token])
    assert_caught(control, plain.stdout, plain.stderr, **rules)


#: A socket tied to the process's PvD (ispa), used again inside ``with thread_scope(ispb)``;
#: in "control" mode the socket is first used inside the block (so it is ispb's).
THREAD_SWITCH = r"""
import os, socket, sys
from pvdrun.shim import binding
token, other_line, mode = sys.argv[1], sys.argv[2], sys.argv[3]
dst, SO_BINDTOIFINDEX = ("198.51.100.80", 7), 62
def use(case, s):
    s.sendto(f"{token}:{case};".encode(), dst)
    index = s.getsockopt(socket.SOL_SOCKET, SO_BINDTOIFINDEX)
    print(case, s.recv(200).decode().split()[0], socket.if_indextoname(index) if index else "unbound")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
if mode == "reuse":
    use("tied_before", s)
with binding.thread_scope(binding.add_scope(other_line)):
    use("reused_in_b", s)
    fresh = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fresh.settimeout(5)
    use("fresh_in_b", fresh)
use("after_block", s)
"""


@pytest.mark.parametrize("mode", ["reuse", "control"])
def test_socket_tied_before_a_thread_scope_switch_stays(lab3: Any, mode: str) -> None:
    """R4: one PvD per socket.  A socket tied to ispa (the process's PvD) and used again after
    the thread's scope switched to ispb stays in ispa (kernel binding, answering ISP, and no
    datagram of it on ispb's link); a fresh socket in that block is ispb's.  Control: the
    same program whose socket is first used inside the block: its datagrams are on ispb's
    link, where the same capture and verdict find them."""
    token = "T" + os.urandom(5).hex()
    ispb_line = lab3.exec([sys.executable, "-c", "import sys; from pvdrun.api import lookup; "
                           "print(lookup(sys.argv[1]).to_scope())", "ispb"], check=True).stdout.strip()
    stays_a = [f"{token}:{case};" for case in ("tied_before", "reused_in_b", "after_block")]
    with lab3.capture("ispa") as cap_a, lab3.capture("ispb") as cap_b:
        done = scoped(lab3, "ispa", [sys.executable, "-c", THREAD_SWITCH, token, ispb_line, mode])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    if mode == "reuse":
        assert lines == ["tied_before ispa ispa", "reused_in_b ispa ispa", "fresh_in_b ispb ispb",
                         "after_block ispa ispa"], done.stdout
        assert_no_leak(cap_b, done.stdout, tokens=stays_a)
        assert_no_leak(cap_a, done.stdout, tokens=[f"{token}:fresh_in_b;"])
    else:
        assert lines == ["reused_in_b ispb ispb", "fresh_in_b ispb ispb", "after_block ispb ispb"], done.stdout
        assert_caught(cap_b, done.stdout, tokens=stays_a)


@pytest.mark.parametrize("version", (4, 6))
def test_ping_under_pvd(lab3: Any, version: int) -> None:
    """ICMP: ping (a raw or ICMP socket) scoped to ispb reaches ispb's service (same IPv4
    address behind both ISPs), its echo requests on ispb's link and nothing on ispa's.
    Control: ping unscoped goes out of ispa, where the same capture and verdict find it."""
    require(shutil.which("ping") is not None, "ping (Debian: iputils-ping)")
    target = service(lab3, "ispb", version)
    argv = ["ping", f"-{version}", "-c", "2", "-W", "3", "-p", "70766470696e67", target]  # "pvdping"
    with lab3.capture("ispa") as other, lab3.capture("ispb") as own:
        done = scoped(lab3, "ispb", argv)
    assert done.returncode == 0 and " 0% packet loss" in done.stdout, (done.stdout, done.stderr)
    assert_no_leak(other, done.stdout, **leak_rules(lab3, "ispb"))
    requests = [f for f in own.frames_to([target]) if f.count(b"pvdping")]
    assert not own.live_problems() and len(requests) >= 2, own.show()
    with lab3.capture("ispa") as control:
        plain = lab3.exec(argv)
    assert_caught(control, plain.stdout, plain.stderr, **leak_rules(lab3, "ispb"))
