"""What machine and which software a bench run measured."""
from __future__ import annotations

import os
import platform
import subprocess
from typing import Any


def _first_line(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total_mib() -> int:
    """Total memory in MiB."""
    with open("/proc/meminfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 0


def deb_version(package: str) -> str:
    """Installed Debian version of a package, or 'not installed'."""
    return _first_line(["dpkg-query", "-W", "-f", "${Version}", package])


def describe_machine() -> dict[str, Any]:
    """Cores, kernel, CPU, memory, load, and versions of the tools compared."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return {
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "cpu": cpu_model(),
        "memory_mib": memory_total_mib(),
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "git_commit": _first_line(["git", "-C", repo, "rev-parse", "--short", "HEAD"]),
        "tools": {
            "hyperfine": _first_line(["hyperfine", "--version"]),
            "strace": _first_line(["strace", "-V"]),
            "curl": _first_line(["curl", "--version"]),
            "iperf3": _first_line(["iperf3", "--version"]),
            "proxychains4": deb_version("proxychains4"),
            "torsocks": deb_version("torsocks"),
            "dnsmasq": _first_line(["dnsmasq", "--version"]),
            "glibc": platform.libc_ver()[1],
        },
    }
