"""The kernel's own replies to a PvD's packets leave through that PvD (docs/routing.md,
"Kernel replies"): pvdd marks a packet arriving for a PvD with the PvD's mark (its
nftables table, prerouting) and turns ``fwmark_reflect`` on, so the ICMP error the kernel
sends on no socket's behalf is routed by the PvD's table, not the main table.

Scenario 3 (two links, overlapping IPv4: the host is 192.0.2.10 on both, so no ``from ADDR``
rule can name ispb; the main table sends everything out of ispa).  A program under
``pvdrun --pvd implicit:ispb`` holds a connected UDP socket to a peer behind ISP B's router;
a datagram from a foreign source (another address in ISP B's namespace) reaches that
socket's port, which refuses it, and a SYN from there to a closed TCP port: the kernel's
ICMP port unreachable, quoting the datagram, and its TCP reset must be captured on ISP B's
side and nothing of them on ISP A's.  The peer's own datagram
still reaches the program (the mark does not change which socket receives).  Control: the
same with ``fwmark_reflect`` off (pvdd's marks not carried by the reply) is caught on A's
link.
"""
from __future__ import annotations

import secrets
import subprocess
import sys
from typing import Any, Iterator

import pytest

from fixtures.capture import assert_caught, assert_no_leak, ip_destination, tcp_segment, transport
from fixtures.pvdd_lab import PVDRUN, PvddInLab

pytestmark = pytest.mark.root

PVD = "implicit:ispb"
#: A foreign source in ISP B's namespace (not the peer), and the peer's port.
FOREIGN, PORT = "198.51.100.58", 7777
REFLECT = ("net.ipv4.fwmark_reflect", "net.ipv6.fwmark_reflect")

#: The scoped program: connect, send once, print what arrives until the peer's "good".
PROGRAM = r"""
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.connect((sys.argv[1], int(sys.argv[2])))
sock.send(b"hello")
sock.settimeout(20)
while True:
    try:
        data = sock.recv(512)
    except ConnectionRefusedError:
        continue
    print(data.decode(), flush=True)
    if data.startswith(b"good"):
        break
"""
#: In ISP B's namespace: the peer answers the program's first datagram, after a datagram
#: from FOREIGN (same port numbers, another source address) reached the program's port.
PEER = r"""
import socket, sys
server, foreign, port, token = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
peer, forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
peer.bind((server, port))
forger.bind((foreign, port))
print("ready", flush=True)
data, host = peer.recvfrom(512)
forger.sendto(b"forged " + token.encode(), host)
closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # and a SYN to a closed port
closed.bind((foreign, 0))
closed.settimeout(5)
try:
    closed.connect((host[0], CLOSED_PORT))
except OSError as exc:
    print(type(exc).__name__, flush=True)
peer.sendto(b"good " + token.encode(), host)
""".replace("CLOSED_PORT", "9")


@pytest.fixture(scope="module")
def foreign(lab3: Any) -> Iterator[None]:
    """FOREIGN on an interface of its own in ISP B's namespace for the module (a veth pair
    inside that namespace)."""
    try:
        lab3.exec(["ip", "link", "add", "foreign0", "type", "veth", "peer", "name", "foreign1"], ns="ispb",
                  check=True)
        for end in ("foreign0", "foreign1"):
            lab3.exec(["ip", "link", "set", end, "up"], ns="ispb", check=True)
        lab3.exec(["ip", "addr", "add", f"{FOREIGN}/32", "dev", "foreign0"], ns="ispb", check=True)
        yield
    finally:
        lab3.exec(["ip", "link", "del", "foreign0"], ns="ispb")


@pytest.fixture(scope="module")
def pvdd3(lab3: Any) -> Iterator[PvddInLab]:
    with PvddInLab(lab3) as daemon:
        yield daemon


def port_unreachable(token: str) -> Any:
    """Predicate: an ICMP port unreachable quoting the datagram that carries ``token``."""
    def match(frame: bytes) -> bool:
        found = transport(frame)
        return found is not None and found[0] == 1 and found[1][:2] == b"\x03\x03" and token.encode() in frame
    return match


def reset_to_foreign(frame: bytes) -> bool:
    """A TCP reset to FOREIGN (the host's answer to its SYN to a closed port)."""
    segment = tcp_segment(frame)
    return segment is not None and bool(segment[2] & 0x04) and ip_destination(frame) == FOREIGN


def kernel_replies(token: str) -> dict[str, Any]:
    """The verdict's rules: the ICMP error quoting the refused datagram, the TCP reset."""
    return {"matching": {"ICMP port unreachable": port_unreachable(token), "TCP reset": reset_to_foreign}}


def refused_datagram(lab: Any, daemon: PvddInLab) -> tuple[str, subprocess.CompletedProcess, Any, Any]:
    """The scoped program and the peer, captured on both ISPs' links: (token, the program's
    run, ISP A's capture, ISP B's capture)."""
    token = secrets.token_hex(6)
    server = lab.isp("ispb")["dns_v4"]
    with lab.capture("ispa") as other, lab.capture("ispb") as own:
        peer = lab.popen([sys.executable, "-c", PEER, server, FOREIGN, str(PORT), token], ns="ispb",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert peer.stdout is not None and peer.stdout.readline().strip() == "ready", peer.stderr
            done = lab.exec([PVDRUN, "--pvd", PVD, "--socket", daemon.socket, sys.executable, "-c", PROGRAM,
                             server, str(PORT)], timeout=60)
            peer.wait(timeout=30)
        finally:
            if peer.poll() is None:
                peer.kill()
                peer.wait()
    return token, done, other, own


def test_icmp_error_for_a_refused_datagram_leaves_through_the_pvd(lab3: Any, pvdd3: PvddInLab,
                                                                   foreign: None) -> None:
    assert pvdd3.pvd(PVD)["mark"] == 0  # alone on its link and unrestricted: its sockets carry none
    token, done, other, own = refused_datagram(lab3, pvdd3)
    assert_no_leak(other, done.stdout, done.stderr, tokens=[token], **kernel_replies(token))
    for rule, predicate in kernel_replies(token)["matching"].items():
        assert_caught(own, done.stdout, done.stderr, matching={rule: predicate})
    # the socket received the peer's datagram, not the foreign one: demultiplexing is unchanged
    assert done.returncode == 0 and done.stdout.split() == ["good", token], (done.stdout, done.stderr)


def test_control_without_reflected_marks_the_icmp_error_leaves_by_the_main_table(lab3: Any, pvdd3: PvddInLab,
                                                                                 foreign: None) -> None:
    assert lab3.exec(["sysctl", "-n", REFLECT[0]], check=True).stdout.strip() == "1"
    lab3.exec(["sysctl", "-qw", f"{REFLECT[0]}=0"], check=True)
    try:
        token, done, other, own = refused_datagram(lab3, pvdd3)
    finally:
        lab3.exec(["sysctl", "-qw", f"{REFLECT[0]}=1"], check=True)
    for rule, predicate in kernel_replies(token)["matching"].items():
        assert_caught(other, done.stdout, done.stderr, matching={rule: predicate})


def reflect(lab: Any) -> list[str]:
    return [lab.exec(["sysctl", "-n", name], check=True).stdout.strip() for name in REFLECT]


def test_reflection_is_set_at_start_kept_on_stop_and_restored_by_cleanup(lab1: Any) -> None:
    """fwmark_reflect: 1 while pvdd runs and after it stops (its nftables table then marks no
    arriving packet: a reply marked for a PvD whose lookup rule is gone would fail), back to
    the value pvdd found after ``--cleanup``."""
    for name in REFLECT:  # what pvdd finds (an earlier run's pvdd may have left 1 in the lab)
        lab1.exec(["sysctl", "-qw", f"{name}=0"], check=True)
    daemon = PvddInLab(lab1)
    try:
        daemon.start()
        assert reflect(lab1) == ["1", "1"]
        table = lab1.exec(["nft", "list", "table", "inet", "pvdd"], check=True).stdout
        ispb = daemon.pvd(lab1.isp("ispb")["pvd_id"])
        address = ispb["addresses"][0].split("/")[0]
        assert f'iifname "lan0" ip6 daddr {address} meta mark & 0x0000ffff == 0x00000000 ' \
               f'meta mark set meta mark | 0x{ispb["mark"]:08x}' in table, table
        assert daemon.stop() == 0
        assert reflect(lab1) == ["1", "1"]
        kept = lab1.exec(["nft", "list", "table", "inet", "pvdd"], check=True).stdout
        assert "prerouting" not in kept and "meta mark set" not in kept, kept
        done = daemon.remove_state()
        assert done.returncode == 0 and "fwmark_reflect back to 0" in done.stdout, (done.stdout, done.stderr)
        assert reflect(lab1) == ["0", "0"]
    finally:
        daemon.cleanup()
