"""Stopping, restarting and retiring pvdd never opens a gap in isolation (lab scenario 1).

Scenario 1 puts both ISPs' routers on one link; the main table sends ispa's service
prefix to ispa's router.  A program scoped to ispb keeps one UDP socket, tied to ispb
(device, source address, mark) by its first send, and sends one datagram every 50 ms to
ispa's service address: with pvdd it leaves through ispb (ispb's table has only ispb's
default route), and with no rule for its mark or source it would follow the main table
to ispa.  While pvdd is stopped (SIGTERM) and restarted, a capture on ispa's link must
show none of those datagrams, and it must show a marker packet sent at the end (the
capture was live).  Each send is tagged with the phase the test was in when the sender
read it, so a result is attributed to a phase by the sender itself, not by timing.

Also here: ``pvdrun daemon --cleanup`` (refused while pvdd runs, removes everything
after), and the kernel's ICMPv6 port unreachable for a late reply to a closed scoped
socket (it must leave through the PvD's router, not the main table's), with pvdd and
while it is away.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator

import pytest

from fixtures.capture import arp_request_for, assert_no_leak, ip_source, udp_ports
from fixtures.netns import sh
from fixtures.lab import Capture
from fixtures.pvdd_lab import PVDRUN, PvddInLab, routes, rules

pytestmark = pytest.mark.root

#: Sent from the tied socket every 50 ms.  The test writes "PHASE PORT" lines on stdin: the
#: sends that follow are tagged PHASE and go to PORT (so a capture tells the phases apart).
SENDER = r"""
import errno, os, select, socket, sys
dst = sys.argv[1]
sock = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM)
phase, port, seq, pending = "", 0, 0, b""
while True:
    ready, _, _ = select.select([0], [], [], 0.05)
    if ready:
        data = os.read(0, 4096)
        if not data:
            break
        pending += data
        *lines, pending = pending.split(b"\n")
        if lines:
            phase, port = lines[-1].decode().split()
            port = int(port)
    if phase == "quit":
        break
    if not phase:
        continue
    seq += 1
    try:
        sock.sendto(b"tied %d" % seq, (dst, port))
        result = "ok"
    except OSError as exc:
        result = errno.errorcode.get(exc.errno, str(exc.errno))
    print(phase, seq, result, sock.getsockname()[0], flush=True)
"""
#: How a send may fail while pvdd is away: IPv6 at pvdd's `fwmark M unreachable` rule,
#: IPv4 (whose failed lookup a device-bound socket turns into "on-link") at the nftables
#: drop of every pvdd mark.
FAILED_CLOSED = {"ENETUNREACH", "EHOSTUNREACH", "EPERM"}
#: The phases of the stop/restart test, in order, and the destination port of each.
PHASES = ("up", "stopping", "away", "starting", "restarted", "restarting", "again")
BASE_PORT = 40000


def port_of(phase: str) -> int:
    return BASE_PORT + PHASES.index(phase)
#: Generous bounds that only keep a broken run from hanging; nothing asserts a duration.
PATIENCE = 60.0
TAGGED_ADDRESSES = ("from pyroute2 import IPRoute\n"
                    "with IPRoute() as ipr:\n"
                    "    print(' '.join(m.get_attr('IFA_ADDRESS') for m in ipr.get_addr()"
                    " if m.get_attr('IFA_PROTO') == 153))")


def wait_for(condition: Callable[[], Any], what: str, timeout: float = PATIENCE) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


class TiedSender:
    """The scoped program: one UDP socket tied to the PvD, a datagram every 50 ms."""

    def __init__(self, lab: Any, daemon: PvddInLab, pvd_id: str, dst: str) -> None:
        self.proc = lab.popen([PVDRUN, "--pvd", pvd_id, "--socket", daemon.socket, sys.executable,
                               "-u", "-c", SENDER, dst],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.results: list[tuple[str, int, str, str]] = []  # (phase, seq, result, source)
        self.stderr = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            phase, seq, result, source = line.decode().split()
            self.results.append((phase, int(seq), result, source))

    def announce(self, name: str) -> None:
        """The sends from now on belong to phase ``name`` (and go to its port)."""
        assert self.proc.stdin is not None and self.proc.poll() is None, self.diagnose()
        self.proc.stdin.write(f"{name} {port_of(name)}\n".encode())
        self.proc.stdin.flush()

    def wait(self, name: str, sends: int) -> None:
        """Wait until ``sends`` datagrams were tried in phase ``name``."""
        wait_for(lambda: len(self.of(name)) >= sends or self.proc.poll() is not None,
                 f"{sends} sends in phase {name}")
        assert self.proc.poll() is None, self.diagnose()

    def of(self, name: str) -> list[tuple[str, int, str, str]]:
        return [r for r in list(self.results) if r[0] == name]

    def summary(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for phase, _seq, result, _source in list(self.results):
            counts.setdefault(phase, {}).setdefault(result, 0)
            counts[phase][result] += 1
        return counts

    def diagnose(self) -> str:
        return f"sender exited {self.proc.poll()}: {self.summary()} {self.stderr!r}"

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(b"quit 0\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)
        if self.proc.stderr is not None:
            self.stderr = self.proc.stderr.read()
            self.proc.stderr.close()


def capture_of(lab: Any, isp: str, bpf: str = "ip6") -> Capture:
    """The suite's capture (fixtures/capture.py: proven live, lost frames counted) on ``isp``'s
    side of its link."""
    return lab.capture(isp, bpf)


def rule_lines(lab: Any) -> list[str]:
    return rules(lab) + rules(lab, "-4")


def tagged_addresses(lab: Any) -> list[str]:
    return lab.exec([sys.executable, "-c", TAGGED_ADDRESSES], check=True).stdout.split()


def nft_table(lab: Any) -> str:
    done = lab.exec(["nft", "list", "table", "inet", "pvdd"])
    return done.stdout if done.returncode == 0 else ""


@pytest.fixture
def daemon(lab1: Any) -> Iterator[PvddInLab]:
    """pvdd in lab 1; whatever happens, it is stopped and its state removed after."""
    pvdd = PvddInLab(lab1)
    try:
        yield pvdd
    finally:
        pvdd.cleanup()
    assert not rule_lines(lab1) and not routes(lab1)


def enter(senders: list[TiedSender], name: str, sends: int = 1) -> None:
    """Every sender enters phase ``name``; return once each tried ``sends`` datagrams in it."""
    for sender in senders:
        sender.announce(name)
    for sender in senders:
        sender.wait(name, sends)


def test_stop_and_restart_never_leak_a_tied_socket(lab1: Any, daemon: PvddInLab) -> None:
    """IPv6: a socket tied to ispb sends to ispa's service (the main table's route goes to
    ispa).  IPv4: a socket tied to lan0's IPv4 PvD sends to ispa's IPv4 service (its own
    router, but on-link, by ARP, if its lookup fails).  Neither may reach ispa's link in
    another way than through its PvD's table: none of the IPv6 datagrams, no IPv4 datagram
    while pvdd is away and no ARP request for the IPv4 service, ever."""
    daemon.start()
    ispb = daemon.pvd(lab1.isp("ispb")["pvd_id"])
    v4_pvd = daemon.pvd("implicit:lan0")
    source = lab1.host_address("ispb", 6)
    source_v4 = lab1.host_address("ispa", 4)
    target, target_v4 = lab1.isp("ispa")["service_v6"], lab1.isp("ispa")["service_v4"]
    with capture_of(lab1, "ispa", "ip6 or ip or arp") as cap:
        v6 = TiedSender(lab1, daemon, ispb["pvd_id"], target)
        v4 = TiedSender(lab1, daemon, v4_pvd["pvd_id"], target_v4)
        senders = [v6, v4]
        try:
            enter(senders, "up", 5)
            # the sends tagged "stopping" raced the teardown; those tagged "away" were all
            # tried after pvdd had exited
            enter(senders, "stopping")
            assert daemon.stop() == 0
            kept = rule_lines(lab1)
            enter(senders, "away", 20)
            # a new pvdd takes over: sends work again, with the same marks
            enter(senders, "starting")
            daemon.start()
            assert daemon.pvd(ispb["pvd_id"])["mark"] == ispb["mark"]
            assert daemon.pvd(v4_pvd["pvd_id"])["mark"] == v4_pvd["mark"]
            enter(senders, "restarted", 10)
            # a restart as systemd does it: stop, start at once
            enter(senders, "restarting")
            assert daemon.stop() == 0
            daemon.start()
            enter(senders, "again", 10)
        finally:
            for sender in senders:
                sender.close()
    summary, summary_v4 = v6.summary(), v4.summary()
    print(f"\nIPv6 sends per phase: {summary}\nIPv4 sends per phase: {summary_v4}")
    # one L2 segment: the bridge floods the host's multicast ND from ispb's address to ispa too
    assert_no_leak(cap, summary, summary_v4, sources=[source], shared_link=True, matching={
        "IPv4 datagrams sent while pvdd was away": lambda f: ip_source(f) == source_v4 and
        (udp_ports(f) or (0, 0))[1] == port_of("away"),
        f"ARP requests for {target_v4}": lambda f: arp_request_for(f) == target_v4})
    assert [l for l in cap.packets_from(source_v4) if f".{port_of('again')}:" in l]  # v4 did arrive
    assert {r[3] for r in v6.results} == {source}, summary  # tied to ispb's address
    assert {r[3] for r in v4.results} == {source_v4}, summary_v4
    assert kept and not [l for l in kept if "fwmark" in l and " lookup " in l], kept  # grants gone
    assert [l for l in kept if "fwmark" in l and l.endswith(" unreachable proto 153")], kept
    for counts in (summary, summary_v4):
        for phase in ("up", "restarted", "again"):
            assert set(counts[phase]) == {"ok"}, counts
        assert set(counts["away"]) <= FAILED_CLOSED, counts
        for phase in ("stopping", "starting", "restarting"):
            assert set(counts.get(phase, {})) <= {"ok"} | FAILED_CLOSED, counts
    assert set(summary["away"]) <= {"ENETUNREACH", "EHOSTUNREACH"}, summary  # IPv6: routing


def test_cleanup_removes_everything_and_is_refused_while_pvdd_runs(lab1: Any) -> None:
    """With a restricted PvD (so the nftables table exists): --cleanup while pvdd runs exits
    11 and changes nothing; SIGTERM keeps all but the mark lookup rules, the tables and the
    nftables table; --cleanup then removes every rule, route and address tagged 153 and the
    table."""
    restricted = f'[pvd.secure]\npvd_id = "{lab1.isp("ispb")["pvd_id"]}"\nrestricted = true\nusers = ["root"]\n'
    daemon = PvddInLab(lab1, restricted)
    try:
        daemon.start()
        before = sorted(rule_lines(lab1))
        assert nft_table(lab1)
        refused = daemon.remove_state()
        assert refused.returncode == 11, (refused.returncode, refused.stderr)
        assert refused.stderr.count("\n") == 1 and "pvdd is running" in refused.stderr, refused.stderr
        assert sorted(rule_lines(lab1)) == before and nft_table(lab1)
        assert daemon.proc is not None and daemon.proc.poll() is None

        built_routes = sorted(routes(lab1))
        assert daemon.stop() == 0
        kept = rule_lines(lab1)
        assert sorted(kept) == [l for l in before if not ("fwmark" in l and " lookup " in l)], kept
        assert sorted(routes(lab1)) == built_routes
        assert nft_table(lab1)  # the restricted PvD's unmarked packets stay dropped

        done = daemon.remove_state()
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert not rule_lines(lab1) and not routes(lab1)
        assert nft_table(lab1) == "" and not tagged_addresses(lab1)
        again = daemon.remove_state()  # nothing left: still success
        assert again.returncode == 0, again.stderr
    finally:
        daemon.cleanup()


def test_icmp_for_a_late_reply_leaves_through_the_pvds_router(lab1: Any, daemon: PvddInLab) -> None:
    """A scoped program talks to a peer through ispb and closes its socket; the peer's late
    reply reaches the closed port and the kernel answers with ICMPv6 port unreachable from
    ispb's address.  The peer's address is one the main table sends to ispa (ispa's service
    prefix, here on ispb's side): the `from ADDR` rule must send the ICMP to ispb, while
    pvdd runs and while it is away."""
    peer = "2001:db8:a:1::99"
    source = lab1.host_address("ispb", 6)
    ispb_ns = lab1.isp("ispb")["capture_ns"]
    subprocess.run(["ip", "-n", ispb_ns, "-6", "addr", "add", f"{peer}/128", "dev", "lo", "nodad"],
                   check=True)
    try:
        daemon.start()
        ispb_id = lab1.isp("ispb")["pvd_id"]
        talk = ("import socket,sys\n"
                "s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
                "s.sendto(b'hello', (sys.argv[1], 9))\n"
                "print(s.getsockname()[1]); s.close()\n")
        done = lab1.exec([PVDRUN, "--pvd", ispb_id, "--socket", daemon.socket, sys.executable, "-c",
                          talk, peer])
        assert done.returncode == 0, done.stderr
        port = int(done.stdout)
        late = ("import socket,sys\n"
                "s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
                "s.bind((sys.argv[1], 9))\n"
                "s.sendto(b'late reply', (sys.argv[2], int(sys.argv[3])))\n")

        def late_reply() -> None:
            sh(sys.executable, "-c", late, peer, source, str(port), ns=ispb_ns)

        def unreachables(cap: Capture) -> list[str]:
            return [l for l in cap.packets_from(source) if "destination unreachable" in l]

        for state in ("running", "stopped"):
            if state == "stopped":
                assert daemon.stop() == 0
            with capture_of(lab1, "ispa") as cap_a, capture_of(lab1, "ispb") as cap_b:
                wait_for(lambda: late_reply() or unreachables(cap_b),
                         f"the ICMPv6 error on ispb's link (pvdd {state})")
            assert [l for l in unreachables(cap_b) if f"> {peer}:" in l], (state, cap_b.lines)
            assert_no_leak(cap_a, state, sources=[source], shared_link=True)
    finally:
        subprocess.run(["ip", "-n", ispb_ns, "-6", "addr", "del", f"{peer}/128", "dev", "lo"], check=False)
