"""Real programs scoped by ``pvdrun --pvd`` in lab scenario 3.

Scenario 3: the host has two interfaces, ``ispa`` and ``ispb``, with the SAME IPv4
address plan behind both (192.0.2.10/24, router 192.0.2.1, service 198.51.100.80), so
only scoping decides which ISP a packet reaches.  Each program is run scoped to one ISP
and then the other, by literal IPv4 and IPv6 address; the service answers with the ISP's
name, and a capture on the OTHER ISP's link must see nothing of the run.
Requirements: R3 (scope), R4 (one PvD per operation), R6 (source address), R20.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from pvdrun.shim import library_path

pytestmark = pytest.mark.root

ISPS = ("ispa", "ispb")
OTHER = {"ispa": "ispb", "ispb": "ispa"}
PVDRUN = shutil.which("pvdrun") or "pvdrun"
CASES = [(isp, version) for isp in ISPS for version in (4, 6)]


def service(lab: Any, isp: str, version: int) -> str:
    """The address of ``isp``'s service in IP ``version`` (same IPv4 address for both ISPs)."""
    return lab.isp(isp)["service_v4" if version == 4 else "service_v6"]


def url(address: str, port: int = 80) -> str:
    return f"http://[{address}]:{port}/" if ":" in address else f"http://{address}:{port}/"


def scoped(lab: Any, isp: str, args: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    """``pvdrun --pvd ISP ARGS`` inside the lab's host namespace (discovery finds the PvD)."""
    return lab.exec([PVDRUN, "--pvd", isp, *args], timeout=timeout)


#: Link control traffic the kernel (and the launcher's one-shot discovery, which sends a
#: Router Solicitation on every link) sends on its own: not traffic of the scoped program.
LINK_CONTROL = ("router solicitation", "router advertisement", "neighbor solicitation",
                "neighbor advertisement", "ARP,")


def assert_no_leak(cap: Any, lab: Any, isp: str, version: int) -> None:
    """Nothing of the run crossed the other ISP's link: no packet to the service address,
    and no packet other than link control (ND, RS) from any of the host's addresses."""
    target = service(lab, isp, version)
    assert not cap.packets_to(target), cap.lines
    other = OTHER[isp]
    for address in lab.isp(other)["host_addresses"] + lab.isp(isp)["host_addresses"]:
        data = [line for line in cap.packets_from(address) if not any(c in line for c in LINK_CONTROL)]
        assert not data, cap.lines


def check_program(lab: Any, isp: str, version: int, args: list[str], expect_in_output: str) -> None:
    """Run one scoped program while capturing the other ISP's link."""
    with lab.capture(OTHER[isp]) as cap:
        done = scoped(lab, isp, args)
    assert done.returncode == 0, done.stderr
    assert expect_in_output in done.stdout, done.stdout
    # the source address is the host's address from that ISP (R6)
    assert any(addr in done.stdout for addr in lab.isp(isp)["host_addresses"]), done.stdout
    assert_no_leak(cap, lab, isp, version)


@pytest.mark.parametrize("isp,version", CASES)
def test_curl(lab3: Any, isp: str, version: int) -> None:
    check_program(lab3, isp, version, ["curl", "-sS", "-m", "10", url(service(lab3, isp, version))],
                  f"{isp} ")


@pytest.mark.parametrize("isp,version", CASES)
def test_wget(lab3: Any, isp: str, version: int) -> None:
    check_program(lab3, isp, version, ["wget", "-q", "-T", "10", "-t", "1", "-O", "-",
                                       url(service(lab3, isp, version))], f"{isp} ")


@pytest.mark.parametrize("isp,version", CASES)
def test_python_urllib(lab3: Any, isp: str, version: int) -> None:
    code = ("import sys, urllib.request; "
            "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())")
    check_program(lab3, isp, version, [sys.executable, "-c", code, url(service(lab3, isp, version))],
                  f"{isp} ")


@pytest.mark.parametrize("isp,version", CASES)
def test_udp_echo_socat(lab3: Any, isp: str, version: int) -> None:
    address = service(lab3, isp, version)
    target = f"UDP4:{address}:7" if version == 4 else f"UDP6:[{address}]:7"
    check_program(lab3, isp, version, ["sh", "-c", f"echo hello-{isp} | socat -t 3 - {target}"],
                  f"{isp} ")


@pytest.mark.parametrize("isp,version", CASES)
def test_udp_echo_nc(lab3: Any, isp: str, version: int) -> None:
    address = service(lab3, isp, version)
    check_program(lab3, isp, version, ["sh", "-c", f"echo hi | nc -u -w 3 {address} 7"], f"{isp} ")


@pytest.mark.parametrize("isp", ISPS)
def test_server_accepts_only_through_its_pvd(lab3: Any, isp: str) -> None:
    """A scoped server (socat, dual-stack listener) accepts from its ISP, not the other."""
    port = 30000 + os.getpid() % 20000
    host_v4 = lab3.host_address(isp, 4)
    host_v6 = lab3.host_address(isp, 6)
    server = lab3.popen([PVDRUN, "--pvd", isp, "socat", "-T", "20",
                         f"TCP6-LISTEN:{port},reuseaddr,fork", f"SYSTEM:echo served-by-{isp}"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        probe = ["socat", "-T", "3", "-", f"TCP:{{}}:{port},connect-timeout=3"]

        def connect_from(ns: str, address: str) -> subprocess.CompletedProcess:
            target = f"[{address}]" if ":" in address else address
            argv = [part.replace("{}", target) for part in probe]
            for _ in range(50):  # wait for the listener (no wall-clock assertion)
                done = lab3.exec(argv, ns=ns, timeout=20)
                if done.returncode == 0 or ns != isp:
                    return done
                if server.poll() is not None:
                    break
                subprocess.run(["sleep", "0.1"])
            return done

        good_v4 = connect_from(isp, host_v4)
        assert good_v4.returncode == 0 and f"served-by-{isp}" in good_v4.stdout, good_v4.stderr
        good_v6 = connect_from(isp, host_v6)
        assert good_v6.returncode == 0 and f"served-by-{isp}" in good_v6.stdout, good_v6.stderr
        # the other ISP's router reaches the host's SAME IPv4 address through the other link
        bad_v4 = connect_from(OTHER[isp], host_v4)
        assert f"served-by-{isp}" not in bad_v4.stdout
        assert bad_v4.returncode != 0
    finally:
        server.kill()
        server.wait()


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
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ispb "), done.stdout
    assert not cap.packets_to("198.51.100.80"), cap.lines


def test_inner_pvdrun_overrides_outer(lab3: Any) -> None:
    done = scoped(lab3, "ispb", [PVDRUN, "--pvd", "ispa", "curl", "-sS", "-m", "10", "http://198.51.100.80/"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ispa "), done.stdout


def test_null_pvd_in_the_lab(lab3: Any) -> None:
    """R13: no network at all; curl fails fast and nothing reaches either ISP."""
    with lab3.capture("ispa") as cap_a, lab3.capture("ispb") as cap_b:
        done = scoped(lab3, "null", ["curl", "-sS", "-m", "10", "http://198.51.100.80/"])
    assert done.returncode != 0
    assert not cap_a.packets_to("198.51.100.80") and not cap_b.packets_to("198.51.100.80")


def test_unknown_pvd_lists_candidates(lab3: Any) -> None:
    done = scoped(lab3, "nosuchpvd", ["true"])
    assert done.returncode == 3
    assert "nosuchpvd" in done.stderr and "ispa" in done.stderr and "ispb" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_c_api_and_python_binding_with_pvdd(lab3: Any, tmp_path: Any) -> None:
    """With pvdd running: the C API lists both PvDs from pvdd's socket (R14, R16), a
    socket bound to one PvD through pvd.h reaches it (R24), the launcher finds the PvD
    through pvdd, and Python's ``with thread_scope(...)`` switches PvD per block."""
    lib = library_path()
    include = os.path.dirname(lib)
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "pvd_list.c")
    binary = str(tmp_path / "pvd_list")
    subprocess.run(["cc", "-Wall", "-Wextra", "-Werror", "-I", include, "-o", binary, example, lib,
                    f"-Wl,-rpath,{include}"], check=True)
    sock = str(tmp_path / "pvdd.sock")
    daemon = lab3.popen([PVDRUN, "daemon", "--socket", sock], stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            if os.path.exists(sock) or daemon.poll() is not None:
                break
            subprocess.run(["sleep", "0.1"])
        assert os.path.exists(sock), daemon.stderr.read() if daemon.poll() is not None else "no socket"
        listed = lab3.exec(["env", f"PVDRUN_SOCKET={sock}", binary])
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.startswith("2 PvD(s)"), listed.stdout
        assert "if=ispa:" in listed.stdout and "if=ispb:" in listed.stdout
        with lab3.capture("ispa") as cap:
            bound = lab3.exec(["env", f"PVDRUN_SOCKET={sock}", binary, "ispb", service(lab3, "ispb", 4), "80"])
        assert bound.returncode == 0 and "through PvD ispb" in bound.stdout, bound.stderr
        assert not cap.packets_to(service(lab3, "ispb", 4)), cap.lines
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
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


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
    assert not cap.packets_to("198.51.100.80") and not cap.packets_to("2001:db8:b:1::80"), cap.lines


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
    assert not cap.packets_to("198.51.100.80"), cap.lines
