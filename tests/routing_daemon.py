"""Helper for the routing tests: pvdd running in a lab's host namespace (root), stopped after.

``PvddInLab(lab, config_text)`` starts ``pvdrun daemon`` in the host namespace with its
socket in a world-traversable temporary directory (so an unprivileged test user can reach
it), waits until the PvD table is served and the tables are built; ``stop()`` sends
SIGTERM (pvdd keeps its fail-closed rules), ``kill()`` SIGKILL, and ``cleanup()`` stops it,
runs ``pvdrun daemon --cleanup`` (nothing tagged as pvdd's is left) and removes the
directory.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

PVDRUN = shutil.which("pvdrun") or "pvdrun"


def rules(lab: Any, family: str = "-6") -> list[str]:
    """``ip rule`` lines of the lab's host namespace tagged as pvdd's (proto 153)."""
    out = subprocess.run(["ip", "-n", lab.host_ns, family, "rule"], capture_output=True, text=True,
                         check=True).stdout
    return [line for line in out.splitlines() if "proto 153" in line]


def routes(lab: Any) -> list[str]:
    """Routes of every table of the host namespace tagged as pvdd's."""
    out = []
    for family in ("-4", "-6"):
        out += subprocess.run(["ip", "-n", lab.host_ns, family, "route", "show", "table", "all"],
                              capture_output=True, text=True, check=True).stdout.splitlines()
    return [line for line in out if "proto 153" in line]


class PvddInLab:
    """pvdd in ``lab``'s host namespace with ``config_text`` as its pvd.toml."""

    def __init__(self, lab: Any, config_text: str = "") -> None:
        self.lab = lab
        self.dir = tempfile.mkdtemp(prefix=f"pvdrt{os.getpid()}-")
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "pvdd.sock")
        self.config = os.path.join(self.dir, "pvd.toml")
        with open(self.config, "w", encoding="utf-8") as handle:
            handle.write(config_text)
        self.log = os.path.join(self.dir, "pvdd.log")
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> "PvddInLab":
        with open(self.log, "ab") as log:
            self.proc = self.lab.popen([PVDRUN, "daemon", "--socket", self.socket, "--config", self.config,
                                        "--log-level", "info"], stdout=log, stderr=log)
        if wait:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"pvdd exited {self.proc.returncode}: {self.log_text()}")
                pvds = self.list_pvds()
                if pvds and all(p["mark"] or not p["needs_routing"] for p in pvds) and rules(self.lab):
                    return self
                time.sleep(0.2)
            raise RuntimeError(f"pvdd did not build its tables: {self.log_text()}")
        return self

    def request(self, message: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(self.socket)
            data = (json.dumps({"v": 1, **message}) + "\n").encode()
            if fds:
                socket.send_fds(sock, [data], fds)
            else:
                sock.sendall(data)
            return json.loads(sock.makefile("rb").readline())

    def list_pvds(self) -> list[dict[str, Any]]:
        try:
            return self.request({"op": "list"})["pvds"]
        except (OSError, ValueError):
            return []

    def pvd(self, pvd_id: str) -> dict[str, Any]:
        return next(p for p in self.list_pvds() if p["id"] == pvd_id or pvd_id in p["names"])

    def log_text(self) -> str:
        with open(self.log, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def _end(self, sig: int) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def stop(self) -> int | None:
        """SIGTERM: pvdd parks its tables (the unreachable rules and markers stay)."""
        return self._end(signal.SIGTERM)

    def kill(self) -> int | None:
        """SIGKILL: a crash; the tables and rules stay behind as they were."""
        return self._end(signal.SIGKILL)

    def remove_state(self) -> subprocess.CompletedProcess:
        """``pvdrun daemon --cleanup`` on this pvdd's socket, in the lab's host namespace."""
        return self.lab.exec([PVDRUN, "daemon", "--cleanup", "--socket", self.socket], timeout=60)

    def cleanup(self) -> None:
        """Stop pvdd if it runs, remove whatever is tagged as pvdd's, remove the directory."""
        try:
            self.stop()
            self.remove_state()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
