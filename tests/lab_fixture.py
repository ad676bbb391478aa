"""Lab fixtures: one session-scoped multihoming lab per scenario (``lab1``, ``lab2``, ``lab3``).

Each lab is built with the same code as ``pvdrun lab up`` (the Python API
``pvdrun.lab.up``: the product's own topology, which the lab tests exercise; commands run
inside it with fixtures/netns.py), named ``pvt<pid>s<scenario>`` so concurrent test runs never
collide, and torn down in a finalizer even when tests fail.  A fixture yields
a :class:`Lab`:

* ``lab.exec(["curl", ...])`` runs a command in the host namespace (or ``ns="ispa"``...);
* ``lab.popen(...)`` starts one there;
* ``with lab.capture("ispb") as cap: ...`` runs the suite's capture
  (fixtures/capture.py: proven live by markers, lost frames counted) on ispb's
  side of the host's link for the duration of the block; afterwards ``cap.lines``,
  ``cap.saw(text)``, ``cap.packets_from(addr)``, ``cap.packets_to(addr)``
  and ``cap.frames`` (raw Ethernet frames) tell what that ISP really received.
  Leak verdicts are ``fixtures.capture.assert_no_leak(cap, ...)``.
"""
from __future__ import annotations

import atexit
import os
import signal
import subprocess
from typing import Any, Iterator

import pytest

from fixtures.capture import LinkCapture
from fixtures.netns import IP, in_ns, sh  # noqa: F401 (IP: imported from here)
from fixtures.prereq import require
from pvdrun import lab as lab_api

#: The suite's one capture (tests/fixtures/capture.py): proven live by markers, counts lost frames.
Capture = LinkCapture


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
        return in_ns(self.ns(ns), args)

    def exec(self, args: list[str], check: bool = False, timeout: float = 30,
             env: dict[str, str] | None = None, ns: str = "host") -> subprocess.CompletedProcess:
        """Run ``args`` in a namespace; text mode, output captured.  ``env`` is added to ours."""
        full_env = {**os.environ, **env} if env is not None else None
        return sh(*args, ns=self.ns(ns), check=check, timeout=timeout, env=full_env)

    def popen(self, args: list[str], ns: str = "host", **kwargs: Any) -> subprocess.Popen:
        """Start ``args`` in a namespace (``subprocess.Popen`` keyword arguments pass through)."""
        return subprocess.Popen(self.argv(args, ns), **kwargs)

    def capture(self, isp: str | None = None, bpf: str = "", *, ns: str | None = None,
                ifname: str | None = None, pcap: bool = True) -> LinkCapture:
        """The suite's capture (fixtures/capture.py) on ``isp``'s capture interface (its side of
        the host's link, or of the gateway's upstream in scenario 2), or on role ``ns``'s ``ifname``."""
        if isp is not None:
            return LinkCapture(self.isp(isp)["capture_ns"], self.isp(isp)["capture_if"], bpf, label=isp)
        if ns is None or ifname is None:
            raise ValueError("capture needs an ISP, or both ns and ifname")
        return LinkCapture(self.ns(ns), ifname, bpf, label=f"{ns}/{ifname}")


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
    require(os.geteuid() == 0, "root (the lab builds network namespaces)")
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
