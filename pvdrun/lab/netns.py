"""Thin wrappers around the ``ip`` and ``sysctl`` programs, always inside a namespace.

Nothing here ever runs against the root namespace: every helper takes the
namespace to act in (``ip -n NS`` / ``ip netns exec NS``).  Veths are
created directly inside their namespaces, so the host's own interface list
never sees them.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

from pvdrun.lab.errors import LabError


class NetnsTool:
    """Runs ``ip`` (found by :func:`pvdrun.lab.prereq.check`) in lab namespaces."""

    def __init__(self, ip_path: str, sysctl_path: str = "sysctl") -> None:
        self.ip_path = ip_path
        self.sysctl_path = sysctl_path

    def ip(self, ns: str | None, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``ip [-n NS] ARGS``; raise :class:`LabError` with ip's message on failure."""
        argv = [self.ip_path, *(["-n", ns] if ns else []), *args]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise LabError(f"{' '.join(argv)}: {done.stderr.strip() or 'failed'}")
        return done

    def ip_json(self, ns: str, *args: str) -> Any:
        """``ip -j -n NS ARGS`` parsed from JSON."""
        out = self.ip(ns, "-j", *args).stdout
        return json.loads(out) if out.strip() else []

    def exec_argv(self, ns: str, argv: list[str]) -> list[str]:
        """The argv that runs ``argv`` inside namespace ``ns``."""
        return [self.ip_path, "netns", "exec", ns, *argv]

    def run_in(self, ns: str, argv: list[str], check: bool = True,
               timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a command inside ``ns`` and wait for it."""
        done = subprocess.run(self.exec_argv(ns, argv), capture_output=True, text=True,
                              check=False, timeout=timeout)
        if check and done.returncode != 0:
            raise LabError(f"in {ns}: {' '.join(argv)}: {done.stderr.strip() or 'failed'}")
        return done

    def add_netns(self, ns: str) -> None:
        """Create a namespace and bring its loopback up."""
        self.ip(None, "netns", "add", ns)
        self.ip(ns, "link", "set", "lo", "up")

    def sysctl(self, ns: str, settings: dict[str, str | int]) -> None:
        """Set sysctls inside ``ns`` (one ``sysctl -w`` for all of them)."""
        self.run_in(ns, [self.sysctl_path, "-q", "-w", *(f"{k}={v}" for k, v in settings.items())])

    def veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        """A veth pair created directly inside its two namespaces."""
        self.ip(None, "link", "add", if_a, "netns", ns_a, "type", "veth",
                "peer", "name", if_b, "netns", ns_b)

    def netns_exists(self, ns: str) -> bool:
        """Whether a named namespace of that name exists."""
        return os.path.exists(f"/run/netns/{ns}")

    def netns_pids(self, ns: str) -> list[int]:
        """Pids of every process inside ``ns``."""
        done = self.ip(None, "netns", "pids", ns, check=False)
        return [int(p) for p in done.stdout.split()] if done.returncode == 0 else []

    def del_netns(self, ns: str) -> None:
        """Delete a namespace (its veths and bridges go with it)."""
        if self.netns_exists(ns):
            self.ip(None, "netns", "del", ns)


def process_alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def terminate(pids: list[int], grace: float = 2.0) -> None:
    """SIGTERM ``pids``, wait up to ``grace`` seconds, then SIGKILL the rest."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while any(process_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = [p for p in pids if process_alive(p)]
        if not pids:
            return
