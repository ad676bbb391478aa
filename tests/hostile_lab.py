"""Shared parts of the hostile shim tests (tests/test_shim_hostile_*.py).

A hostile program (tests/c/hostile_*.c) prints one line per case, ``CASE RESULT``
(``ok`` or an errno name), and every datagram it sends carries ``TOKEN:CASE;``, so a
capture says which case crossed which link.  The proof that nothing leaked is a
:class:`Watch`: tcpdump (``--immediate-mode -U``, raw frames) on the OTHER ISP's link,
proven live at the end by a marker datagram sent on that link from the ISP's own
namespace, which it must have captured (the suite's one capture, tests/fixtures/capture.py).

Where the programs run (:class:`HostileEnv`):

* scenario 3 (``env3``): two host links ``ispa``/``ispb``, overlapping IPv4, no pvdd;
* scenario 1 (``env1``): one shared link ``lan0``, pvdd running (its socket marks and
  per-PvD tables separate the ISPs).

The program is always scoped to ISP ``ispb`` and the capture that must stay empty is
``ispa``'s (the ISP an unscoped program reaches: lowest metric in scenario 3, the only
IPv4 router and the RIO route to its services in scenario 1).  ``who="root"`` runs it
through ``pvdrun --pvd``; ``who="user"`` runs it as a real unprivileged user created for
the module (``useradd`` + ``setpriv``: fixtures/unprivileged.py), with what pvdrun
would set in its environment (``LD_PRELOAD`` of a world-readable copy of the shim,
``PVDRUN_SCOPE`` from discovery or from pvdd, ``PVDRUN_SOCKET`` when pvdd runs).
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from typing import Any, Iterator

import pytest

from fixtures.capture import LinkCapture, describe, ip_source, membership_reports  # noqa: F401
from fixtures.capture import leak_problems as link_leak_problems
from fixtures.unprivileged import User, readable_shim_dir
from routing_daemon import PvddInLab

PVDRUN = shutil.which("pvdrun") or "pvdrun"
PRLIMIT = shutil.which("prlimit") or "/usr/bin/prlimit"
C_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "c")
#: The PvD every hostile program is scoped to, and the ISP whose link must see nothing.
PVD, OTHER = "ispb", "ispa"


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


# ---- the capture: the suite's one (tests/fixtures/capture.py) ------------------------------

class Watch(LinkCapture):
    """The suite's capture on one ISP's side of its link (proven live by markers sent on that
    link from the ISP's namespace, lost frames counted), with the hostile programs' tokens."""

    def __init__(self, lab: Any, isp: str) -> None:
        super().__init__(lab.isp(isp)["capture_ns"], lab.isp(isp)["capture_if"], label=isp)
        self.lab, self.isp = lab, isp

    def leak_problems(self, token: str) -> list[str]:
        """Problems: the capture is not proven live, or it holds frames of the program."""
        problems = link_leak_problems(self, tokens=[token])
        if self.carrying(token):
            problems.append(f"(leaked cases: {self.cases(token)})")
        return problems

    def cases(self, token: str) -> list[str]:
        """The cases (``TOKEN:CASE;`` payloads) of the frames carrying ``token``."""
        found = set()
        for frame in self.carrying(token):
            for match in re.finditer(re.escape(token.encode()) + rb":([A-Za-z0-9_]+);", frame):
                found.add(match[1].decode())
        return sorted(found)

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

    def __init__(self, lab: Any, daemon: PvddInLab | None, user: User, bindir: str) -> None:
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
        return self.user.drop(argv, env)

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
def hostile_user() -> Iterator[User]:
    """A real unprivileged user (no home, no groups, no capabilities)."""
    user = User()
    try:
        yield user
    finally:
        user.remove()


@pytest.fixture(scope="module")
def hostile_bindir() -> Iterator[str]:
    """A world-readable directory with a copy of the shim; the programs are compiled there."""
    with readable_shim_dir("pvdhostile") as directory:
        yield directory


@pytest.fixture(scope="module")
def env3(lab3: Any, hostile_user: User, hostile_bindir: str) -> HostileEnv:
    """Scenario 3 (two links, overlapping IPv4), no pvdd."""
    return HostileEnv(lab3, None, hostile_user, hostile_bindir)


@pytest.fixture(scope="module")
def env1(lab1: Any, hostile_user: User, hostile_bindir: str) -> Iterator[HostileEnv]:
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
