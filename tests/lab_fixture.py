"""Lab fixtures: one session-scoped multihoming lab per scenario (``lab1``, ``lab2``, ``lab3``).

Each lab is built with the same code as ``pvdrun lab up`` (the Python API
``pvdrun.lab.up``), named ``pvt<pid>s<scenario>`` so concurrent test runs never
collide, and torn down in a finalizer even when tests fail.  A fixture yields
a :class:`Lab`:

* ``lab.exec(["curl", ...])`` runs a command in the host namespace (or ``ns="ispa"``...);
* ``lab.popen(...)`` starts one there;
* ``with lab.capture("ispb") as cap: ...`` runs tcpdump on ispb's side of the
  host's link for the duration of the block; afterwards ``cap.lines``,
  ``cap.saw(text)``, ``cap.packets_from(addr)``, ``cap.packets_to(addr)``
  (or, with ``pcap=True``, ``cap.frames`` raw Ethernet frames) tell what that
  ISP really received.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
from typing import Any, Iterator

import pytest

from pvdrun import lab as lab_api

IP = shutil.which("ip") or "/usr/sbin/ip"
TCPDUMP = shutil.which("tcpdump") or "/usr/bin/tcpdump"

#: "HH:MM:SS.us IP6 SRC > DST: ..." in ``tcpdump -n`` output.
_ADDR_RE = re.compile(r"\bIP6? (\S+) > (\S+?):? ")


def _addr_matches(field: str, addr: str) -> bool:
    """tcpdump prints ``ADDR`` or ``ADDR.PORT``; compare the address part only."""
    return field == addr or field.startswith(addr + ".")


class Capture:
    """tcpdump on one interface of one namespace, for the duration of a ``with`` block."""

    def __init__(self, ns: str, ifname: str, bpf: str = "", pcap: bool = False,
                 settle: float = 0.3) -> None:
        self.ns, self.ifname, self.bpf, self.pcap, self.settle = ns, ifname, bpf, pcap, settle
        self.lines: list[str] = []
        self.frames: list[bytes] = []
        self.stderr: list[str] = []
        self._listening = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._pcap_path: str | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------
    def __enter__(self) -> "Capture":
        argv = [IP, "netns", "exec", self.ns, TCPDUMP, "-n", "-l", "-i", self.ifname, "-Z", "root"]
        if self.pcap:
            fd, self._pcap_path = tempfile.mkstemp(prefix="pvdlab-", suffix=".pcap")
            os.close(fd)
            argv += ["-U", "-w", self._pcap_path]
        argv += self.bpf.split() if self.bpf else []
        self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      stdin=subprocess.DEVNULL, text=True)
        self._threads = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for thread in self._threads:
            thread.start()
        if not self._listening.wait(10) or self._proc.poll() is not None:
            self._stop()
            raise RuntimeError(f"tcpdump on {self.ns}/{self.ifname} did not start: "
                               f"{' '.join(self.stderr)}")
        return self

    def __exit__(self, *exc: Any) -> None:
        time.sleep(self.settle)  # let the last packets of the block arrive
        self._stop()

    def _stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._pcap_path:
            self.frames = self.read_frames()
            os.unlink(self._pcap_path)
            self._pcap_path = None
        self._proc = None

    def _read_stdout(self) -> None:
        assert self._proc and self._proc.stdout
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _read_stderr(self) -> None:
        assert self._proc and self._proc.stderr
        for line in self._proc.stderr:
            self.stderr.append(line.rstrip("\n"))
            if "listening on" in line:
                self._listening.set()
        self._listening.set()  # tcpdump exited: stop waiting (the check reports it)

    # -- results -----------------------------------------------------------------
    def read_frames(self) -> list[bytes]:
        """Raw frames of a ``pcap=True`` capture (also usable while it still runs)."""
        if not self._pcap_path:
            return list(self.frames)
        with open(self._pcap_path, "rb") as handle:
            data = handle.read()
        if len(data) < 24:
            return []
        endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        frames, pos = [], 24
        while pos + 16 <= len(data):
            incl_len = struct.unpack(endian + "IIII", data[pos:pos + 16])[2]
            if pos + 16 + incl_len > len(data):
                break
            frames.append(data[pos + 16:pos + 16 + incl_len])
            pos += 16 + incl_len
        return frames

    def saw(self, text: str) -> bool:
        """True if any captured line contains ``text``."""
        return any(text in line for line in self.lines)

    def packets_from(self, addr: str) -> list[str]:
        """Captured lines whose source address is ``addr``."""
        return [l for l in self.lines if (m := _ADDR_RE.search(l)) and _addr_matches(m[1], addr)]

    def packets_to(self, addr: str) -> list[str]:
        """Captured lines whose destination address is ``addr``."""
        return [l for l in self.lines if (m := _ADDR_RE.search(l)) and _addr_matches(m[2], addr)]


class Lab:
    """A running lab: its status and helpers to act inside its namespaces."""

    def __init__(self, name: str, scenario: int, status: dict[str, Any]) -> None:
        self.name = name
        self.scenario = scenario
        self.status = status

    @property
    def host_ns(self) -> str:
        """Name of the host namespace."""
        return self.status["host_ns"]

    def ns(self, role: str) -> str:
        """Namespace name of a role (host, ispa, ispb, link, gw)."""
        return self.status["namespaces"][role]

    def isp(self, name: str) -> dict[str, Any]:
        """The status entry of one ISP."""
        return self.status["isps"][name]

    def host_address(self, isp: str, version: int) -> str:
        """The host's address from ``isp`` in IP ``version`` (4 or 6)."""
        for address in self.isp(isp)["host_addresses"]:
            if (":" in address) == (version == 6):
                return address
        raise LookupError(f"host has no IPv{version} address from {isp}")

    def refresh(self) -> dict[str, Any]:
        """Re-read the status (live addresses)."""
        self.status = lab_api.status(self.name)
        return self.status

    def argv(self, args: list[str], ns: str = "host") -> list[str]:
        """argv running ``args`` inside the namespace of role ``ns``."""
        return [IP, "netns", "exec", self.ns(ns), *args]

    def exec(self, args: list[str], check: bool = False, timeout: float = 30,
             env: dict[str, str] | None = None, ns: str = "host") -> subprocess.CompletedProcess:
        """Run ``args`` in a namespace; text mode, output captured.  ``env`` is added to ours."""
        full_env = {**os.environ, **env} if env is not None else None
        return subprocess.run(self.argv(args, ns), capture_output=True, text=True,
                              check=check, timeout=timeout, env=full_env)

    def popen(self, args: list[str], ns: str = "host", **kwargs: Any) -> subprocess.Popen:
        """Start ``args`` in a namespace (``subprocess.Popen`` keyword arguments pass through)."""
        return subprocess.Popen(self.argv(args, ns), **kwargs)

    def capture(self, isp: str | None = None, bpf: str = "", *, ns: str | None = None,
                ifname: str | None = None, pcap: bool = False) -> Capture:
        """tcpdump on ``isp``'s capture interface (or on role ``ns``'s ``ifname``)."""
        if isp is not None:
            return Capture(self.isp(isp)["capture_ns"], self.isp(isp)["capture_if"], bpf, pcap)
        if ns is None or ifname is None:
            raise ValueError("capture needs an ISP, or both ns and ifname")
        return Capture(self.ns(ns), ifname, bpf, pcap)


#: Labs this process brought up and has not yet torn down (atexit safety net).
_LIVE_LABS: set[str] = set()


def _down_leftovers() -> None:
    """At interpreter exit, remove labs whose finalizer never ran (e.g. after SIGTERM)."""
    for name in sorted(_LIVE_LABS):
        try:
            lab_api.down(name)
        except Exception:  # noqa: BLE001 - best effort at exit; nothing to report to
            pass
    _LIVE_LABS.clear()


def _sigterm_as_interrupt(_signum: int, _frame: Any) -> None:
    """SIGTERM (e.g. from ``timeout``) ends the session like Ctrl-C, so finalizers run."""
    raise KeyboardInterrupt("SIGTERM")


def pytest_configure(config: pytest.Config) -> None:
    """Install the safety nets: SIGTERM runs teardown, atexit downs what is left."""
    atexit.register(_down_leftovers)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


def lab_name(scenario: int) -> str:
    """Per-run unique lab name for a scenario."""
    return f"pvt{os.getpid() % 100000}s{scenario}"


def _lab(scenario: int) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    name = lab_name(scenario)
    # A state file with our own pid-derived name can only be a crashed earlier run's.
    lab_api.down(name)
    _LIVE_LABS.add(name)
    try:
        status = lab_api.up(scenario, name)
        yield Lab(name, scenario, status)
    finally:
        lab_api.down(name)
        _LIVE_LABS.discard(name)


@pytest.fixture(scope="session")
def lab1() -> Iterator[Lab]:
    """Scenario 1: shared link, two ISP routers, RFC 8801 PvD RAs."""
    yield from _lab(1)


@pytest.fixture(scope="session")
def lab2() -> Iterator[Lab]:
    """Scenario 2: one gateway, two upstream ISPs, source-prefix forwarding."""
    yield from _lab(2)


@pytest.fixture(scope="session")
def lab3() -> Iterator[Lab]:
    """Scenario 3: two host interfaces, overlapping IPv4 plans."""
    yield from _lab(3)
