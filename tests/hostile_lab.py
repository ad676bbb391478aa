"""Shared parts of the hostile shim tests (tests/test_shim_hostile_*.py).

A hostile program (tests/c/hostile_*.c) prints one line per case, ``CASE RESULT``
(``ok`` or an errno name), and every datagram it sends carries ``TOKEN:CASE;``, so a
capture says which case crossed which link.  The proof that nothing leaked is a
:class:`Watch`: tcpdump (``--immediate-mode -U``, raw frames) on the OTHER ISP's link,
proven live at the end by a marker datagram sent on that link from the ISP's own
namespace, which it must have captured.

Where the programs run (:class:`HostileEnv`):

* scenario 3 (``env3``): two host links ``ispa``/``ispb``, overlapping IPv4, no pvdd;
* scenario 1 (``env1``): one shared link ``lan0``, pvdd running (its socket marks and
  per-PvD tables separate the ISPs).

The program is always scoped to ISP ``ispb`` and the capture that must stay empty is
``ispa``'s (the ISP an unscoped program reaches: lowest metric in scenario 3, the only
IPv4 router and the RIO route to its services in scenario 1).  ``who="root"`` runs it
through ``pvdrun --pvd``; ``who="user"`` runs it as a real unprivileged user created for
the module (``useradd`` + ``setpriv``, as in test_routing_policy.py), with what pvdrun
would set in its environment (``LD_PRELOAD`` of a world-readable copy of the shim,
``PVDRUN_SCOPE`` from discovery or from pvdd, ``PVDRUN_SOCKET`` when pvdd runs).
"""
from __future__ import annotations

import itertools
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any, Iterator

import pytest

from lab_fixture import Capture
from pvdrun.shim import library_path
from routing_daemon import PvddInLab

PVDRUN = shutil.which("pvdrun") or "pvdrun"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
PRLIMIT = shutil.which("prlimit") or "/usr/bin/prlimit"
C_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "c")
#: The PvD every hostile program is scoped to, and the ISP whose link must see nothing.
PVD, OTHER = "ispb", "ispa"
MARK_PORT = 47999
_users = itertools.count()


def new_token() -> str:
    """A tag no other packet of the run carries."""
    return "H" + secrets.token_hex(6)


# ---- results ---------------------------------------------------------------------------

def results(done: subprocess.CompletedProcess) -> dict[str, str]:
    """``{case: result}`` from a hostile program's ``CASE RESULT`` lines."""
    out: dict[str, str] = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[parts[0]] = " ".join(parts[1:])
    return out


def explain(done: subprocess.CompletedProcess) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"


def mismatches(got: dict[str, str], want: dict[str, str | tuple[str, ...]]) -> list[str]:
    """Cases whose result is not the one wanted (a tuple: any of them)."""
    bad = []
    for case, expected in want.items():
        allowed = expected if isinstance(expected, tuple) else (expected,)
        if got.get(case) not in allowed:
            bad.append(f"{case}: got {got.get(case, '<missing>')}, want {'|'.join(allowed)}")
    return bad


# ---- frames ----------------------------------------------------------------------------

def describe(frame: bytes) -> str:
    """One line for a raw Ethernet frame: addresses, protocol, ports, printable payload."""
    ethertype = struct.unpack("!H", frame[12:14])[0] if len(frame) >= 14 else 0
    body = frame[14:]
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in body[-64:])
    if ethertype == 0x0800 and len(body) >= 20:
        ihl = (body[0] & 0x0F) * 4
        proto, src, dst = body[9], socket.inet_ntop(socket.AF_INET, body[12:16]), \
            socket.inet_ntop(socket.AF_INET, body[16:20])
        ports = body[ihl:ihl + 4]
    elif ethertype == 0x86DD and len(body) >= 40:
        proto, src, dst = body[6], socket.inet_ntop(socket.AF_INET6, body[8:24]), \
            socket.inet_ntop(socket.AF_INET6, body[24:40])
        ports = body[40:44]
    else:
        return f"ethertype {ethertype:#06x} len {len(frame)} ...{text}"
    sport, dport = struct.unpack("!HH", ports) if len(ports) == 4 else (0, 0)
    extra = f" {sport} > {dport}" if proto in (6, 17) else ""
    return f"{src} > {dst} proto {proto}{extra} len {len(frame)} ...{text}"


def ip_source(frame: bytes) -> str | None:
    """The IP source address of a frame (None if it is not IPv4/IPv6)."""
    ethertype = struct.unpack("!H", frame[12:14])[0] if len(frame) >= 14 else 0
    if ethertype == 0x0800 and len(frame) >= 34:
        return socket.inet_ntop(socket.AF_INET, frame[26:30])
    if ethertype == 0x86DD and len(frame) >= 54:
        return socket.inet_ntop(socket.AF_INET6, frame[22:38])
    return None


def membership_reports(frame: bytes) -> list[str]:
    """Group addresses in an IGMP (v2, v3) or MLD (v1, v2) membership report frame."""
    groups: list[str] = []
    ethertype = struct.unpack("!H", frame[12:14])[0] if len(frame) >= 14 else 0
    body = frame[14:]
    try:
        if ethertype == 0x0800 and len(body) >= 20 and body[9] == 2:
            igmp = body[(body[0] & 0x0F) * 4:]
            if igmp[0] in (0x12, 0x16):
                groups.append(socket.inet_ntop(socket.AF_INET, igmp[4:8]))
            elif igmp[0] == 0x22:
                pos = 8
                for _ in range(struct.unpack("!H", igmp[6:8])[0]):
                    aux, nsrc = igmp[pos + 1], struct.unpack("!H", igmp[pos + 2:pos + 4])[0]
                    groups.append(socket.inet_ntop(socket.AF_INET, igmp[pos + 4:pos + 8]))
                    pos += 8 + 4 * nsrc + 4 * aux
        elif ethertype == 0x86DD and len(body) >= 40:
            nexthdr, off = body[6], 40
            while nexthdr in (0, 43, 60):
                nexthdr, off = body[off], off + (body[off + 1] + 1) * 8
            icmp = body[off:]
            if nexthdr == 58 and icmp and icmp[0] == 131:
                groups.append(socket.inet_ntop(socket.AF_INET6, icmp[8:24]))
            elif nexthdr == 58 and icmp and icmp[0] == 143:
                pos = 8
                for _ in range(struct.unpack("!H", icmp[6:8])[0]):
                    aux, nsrc = icmp[pos + 1], struct.unpack("!H", icmp[pos + 2:pos + 4])[0]
                    groups.append(socket.inet_ntop(socket.AF_INET6, icmp[pos + 4:pos + 20]))
                    pos += 20 + 16 * nsrc + 4 * aux
    except (IndexError, struct.error, ValueError):
        pass  # a truncated report: nothing more to read
    return groups


class Watch:
    """tcpdump on one ISP's link for the duration of a ``with`` block, proven live.

    On leaving the block, a marker datagram (unique payload, UDP port MARK_PORT) is sent
    on that link from the ISP's namespace, to ff02::1 (every link has IPv6), and the block
    waits until the capture holds it: ``marker_seen`` then says the capture was running
    from before the program started until after it ended."""

    def __init__(self, lab: Any, isp: str) -> None:
        self.lab, self.isp = lab, isp
        self.ns, self.ifname = lab.isp(isp)["capture_ns"], lab.isp(isp)["capture_if"]
        # --immediate-mode makes libpcap use a ring of snapshot-length slots: with the default
        # 262144-byte snapshot, its 2 MiB buffer holds 8 frames and a burst is dropped
        # (seen: 30 of 64).  A small snapshot and a large buffer keep every frame.
        self.capture = Capture(self.ns, self.ifname, bpf="--immediate-mode -s 2048 -B 32768", pcap=True)
        self.marker = ("HMARK" + secrets.token_hex(6)).encode()
        self.marker_seen = False
        self.frames: list[bytes] = []

    def __enter__(self) -> "Watch":
        self.capture.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.marker_seen = self._send_marker()
        finally:
            self.capture.__exit__(*exc)
            self.frames = self.capture.frames

    def _send_marker(self) -> bool:
        code = ("import socket, sys\n"
                "s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
                "s.sendto(sys.argv[1].encode(), ('ff02::1%' + sys.argv[2], int(sys.argv[3])))\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            subprocess.run(["ip", "netns", "exec", self.ns, sys.executable, "-c", code, self.marker.decode(),
                            self.ifname, str(MARK_PORT)], check=True, capture_output=True, timeout=30)
            for _ in range(10):
                if any(self.marker in frame for frame in self.capture.read_frames()):
                    return True
                time.sleep(0.1)
        return False

    def carrying(self, needle: str | bytes) -> list[bytes]:
        """Captured frames whose bytes contain ``needle``."""
        data = needle.encode() if isinstance(needle, str) else needle
        return [frame for frame in self.frames if data in frame]

    def show(self, frames: list[bytes] | None = None) -> str:
        chosen = self.frames if frames is None else frames
        return f"{self.isp} link, {len(chosen)} frame(s):\n" + "\n".join(describe(f) for f in chosen[:40])

    def dropped(self) -> int | None:
        """Frames tcpdump reported "dropped by kernel" (None if it did not say)."""
        for line in self.capture.stderr:
            if line.endswith("packets dropped by kernel") or line.endswith("packet dropped by kernel"):
                return int(line.split()[0])
        return None

    def live_problems(self) -> list[str]:
        """Why this capture cannot prove anything (empty: it ran through the block, lost nothing)."""
        if not self.marker_seen:
            return [f"the capture on {self.isp}'s link never saw its marker: " + self.show()]
        if self.dropped() != 0:
            return [f"tcpdump on {self.isp}'s link lost frames: {self.capture.stderr}"]
        return []

    def leak_problems(self, token: str) -> list[str]:
        """Problems: the capture is not proven live, or it holds frames of the program."""
        problems = self.live_problems()
        leaked = self.carrying(token)
        if leaked:
            problems.append(f"LEAK on {self.isp}'s link, cases {self.cases(token)}: " + self.show(leaked))
        return problems

    def cases(self, token: str) -> list[str]:
        """The cases (``TOKEN:CASE;`` payloads) of the frames carrying ``token``."""
        found = set()
        for frame in self.carrying(token):
            for match in re.finditer(re.escape(token.encode()) + rb":([A-Za-z0-9_]+);", frame):
                found.add(match[1].decode())
        return sorted(found)

    def reported_groups(self) -> set[str]:
        """Every group a membership report on this link named."""
        return {group for frame in self.frames for group in membership_reports(frame)}

    def missing(self, token: str, cases: list[str]) -> list[str]:
        """The cases of which no frame was captured."""
        seen = set(self.cases(token))
        return [case for case in cases if case not in seen]


def mixing_problems(watch: Watch, token: str, other_source: str | None) -> list[str]:
    """Problems: frames of the program on this link with another PvD's source address."""
    mixed = [frame for frame in watch.carrying(token) if other_source and ip_source(frame) == other_source]
    if not mixed:
        return []
    return [f"datagrams with another PvD's source {other_source} on {watch.isp}'s link, cases "
            f"{sorted({c for c in watch.cases(token)})}: " + watch.show(mixed)]


def finished(done: subprocess.CompletedProcess, name: str = "program") -> list[str]:
    """Problems: the program did not exit 0 after its last line ("done")."""
    if done.returncode == 0 and done.stdout.endswith("done\n"):
        return []
    how = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit {done.returncode}"
    return [f"{name} did not finish ({how}, last line {done.stdout.splitlines()[-1:]})"]


def control_problems(watch: Watch, token: str, cases: list[str]) -> list[str]:
    """Problems with a control run (unscoped): its capture must hold every case's frames,
    or the test could not fail."""
    problems = watch.live_problems()
    missing = watch.missing(token, cases)
    if missing:
        problems.append(f"control: unscoped, these cases did not reach {watch.isp}'s link, so the "
                        f"test cannot fail on them: {missing}\n" + watch.show())
    return problems


def verdict(problems: list[str], *runs: subprocess.CompletedProcess) -> None:
    """Fail with every problem found (and the programs' output), or pass."""
    assert not problems, "\n".join(problems) + "".join("\n---\n" + explain(done) for done in runs)


# ---- where and as whom the programs run --------------------------------------------------

class HostileEnv:
    """A lab (scenario 3 without pvdd, or scenario 1 with pvdd) plus a test user and the
    compiled hostile programs."""

    def __init__(self, lab: Any, daemon: PvddInLab | None, user: str, bindir: str) -> None:
        self.lab, self.daemon, self.user, self.bindir = lab, daemon, user, bindir
        self.shim = os.path.join(bindir, "libpvdshim.so")
        self._scopes: dict[str, str] = {}

    @property
    def where(self) -> str:
        return f"s{self.lab.scenario}"

    def pvd_name(self, isp: str = PVD) -> str:
        """The name ``pvdrun --pvd`` takes for ISP's PvD."""
        return self.lab.isp(isp)["pvd_id"] or isp

    def scope(self, isp: str = PVD) -> str:
        """The scope line pvdrun would put in PVDRUN_SCOPE (pvdd's, or discovery's)."""
        if isp not in self._scopes:
            if self.daemon is not None:
                self._scopes[isp] = self.daemon.pvd(self.pvd_name(isp))["scope"]
            else:
                done = self.lab.exec([sys.executable, "-c", "import sys; from pvdrun.api import lookup; "
                                      "print(lookup(sys.argv[1]).to_scope())", isp], check=True)
                self._scopes[isp] = done.stdout.strip()
        return self._scopes[isp]

    def ifindex(self, ifname: str) -> int:
        return int(self.lab.exec(["cat", f"/sys/class/net/{ifname}/ifindex"], check=True).stdout)

    def interface(self, isp: str) -> str:
        return self.lab.isp(isp)["host_interfaces"][0]

    def address(self, isp: str, version: int) -> str | None:
        try:
            return self.lab.host_address(isp, version)
        except LookupError:
            return None

    def service(self, isp: str, version: int) -> str | None:
        return self.lab.isp(isp)["service_v4" if version == 4 else "service_v6"]

    def program(self, name: str) -> str:
        """Compile tests/c/NAME.c (once per module, world-readable) with -Wall -Wextra -Werror."""
        binary = os.path.join(self.bindir, name)
        if not os.path.exists(binary):
            subprocess.run(["cc", "-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror", "-o", binary,
                            os.path.join(C_DIR, name + ".c")], check=True)
            os.chmod(binary, 0o755)
        return binary

    def user_argv(self, argv: list[str], env: dict[str, str]) -> list[str]:
        return [SETPRIV, "--reuid", self.user, "--regid", self.user, "--clear-groups", "env", "-i",
                "PATH=/usr/bin:/bin", *(f"{k}={v}" for k, v in env.items()), *argv]

    def scoped_argv(self, who: str, argv: list[str], isp: str = PVD) -> list[str]:
        """argv running ``argv`` scoped to ISP's PvD, as root (pvdrun) or as the test user."""
        if who == "root":
            sock = ["--socket", self.daemon.socket] if self.daemon is not None else []
            return [PVDRUN, "--pvd", self.pvd_name(isp), *sock, "--", *argv]
        env = {"LD_PRELOAD": self.shim, "PVDRUN_SCOPE": self.scope(isp)}
        if self.daemon is not None:
            env["PVDRUN_SOCKET"] = self.daemon.socket
        return self.user_argv(argv, env)

    def scoped_tail(self, who: str, argv: list[str], isp: str = PVD) -> list[str]:
        """What a process already running as ``who`` executes to run ``argv`` scoped (for a
        launcher that must itself stay unscoped): pvdrun for root, ``env`` for the user."""
        full = self.scoped_argv(who, argv, isp)
        return full if who == "root" else full[full.index("env"):]

    def unscoped_argv(self, who: str, argv: list[str]) -> list[str]:
        return list(argv) if who == "root" else self.user_argv(argv, {})

    def run(self, who: str, argv: list[str], scoped: bool = True, timeout: float = 60,
            prefix: list[str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
        full = self.scoped_argv(who, argv) if scoped else self.unscoped_argv(who, argv)
        return subprocess.run(self.lab.argv([*(prefix or []), *full]), capture_output=True, text=True,
                              timeout=timeout, input=stdin)

    def watch(self, isp: str = OTHER) -> Watch:
        return Watch(self.lab, isp)


# ---- fixtures (import them into a test module to use them) --------------------------------

@pytest.fixture(scope="module")
def hostile_user() -> Iterator[str]:
    """A real unprivileged user (no home, no groups, no capabilities)."""
    if os.geteuid() != 0:
        pytest.skip("creating a user needs root")
    name = f"pvdh{os.getpid() % 100000}x{next(_users)}"
    subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


@pytest.fixture(scope="module")
def hostile_bindir() -> Iterator[str]:
    """A world-readable directory with a copy of the shim; the programs are compiled there."""
    directory = tempfile.mkdtemp(prefix=f"pvdhostile{os.getpid()}-")
    os.chmod(directory, 0o755)
    target = os.path.join(directory, "libpvdshim.so")
    shutil.copy(library_path(), target)
    os.chmod(target, 0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def env3(lab3: Any, hostile_user: str, hostile_bindir: str) -> HostileEnv:
    """Scenario 3 (two links, overlapping IPv4), no pvdd."""
    return HostileEnv(lab3, None, hostile_user, hostile_bindir)


@pytest.fixture(scope="module")
def env1(lab1: Any, hostile_user: str, hostile_bindir: str) -> Iterator[HostileEnv]:
    """Scenario 1 (one shared link) with pvdd running; stopped and cleaned after the module."""
    daemon = PvddInLab(lab1)
    try:
        daemon.start()
        yield HostileEnv(lab1, daemon, hostile_user, hostile_bindir)
    finally:
        daemon.cleanup()


@pytest.fixture
def env(request: pytest.FixtureRequest, where: str) -> HostileEnv:
    """The environment of the ``where`` parameter ("s3" or "s1")."""
    return request.getfixturevalue({"s3": "env3", "s1": "env1"}[where])
