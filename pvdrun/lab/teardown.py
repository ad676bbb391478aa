"""Removing a lab (``lab down``): processes, namespaces, files.

Processes are found two ways: every process inside one of the lab's
namespaces (``ip netns pids``: the namespaces carry the lab's unique name,
so whatever runs there is the lab's), and the pids recorded in the state
file, killed only if their command line still names this lab (a recycled
pid is never touched).
"""
from __future__ import annotations

import shutil
from typing import Any

from pvdrun.lab import state as lab_state
from pvdrun.lab.errors import LabError
from pvdrun.lab.netns import NetnsTool, terminate
from pvdrun.lab.topology import wait_for_children_exit


def _names_lab(pid: int, name: str) -> bool:
    """True if the process's argv shows it belongs to lab ``name``."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = cmdline.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    marker = f"/run/pvdrun/lab/{name}/".encode()
    lab_flag = any(a == b"--lab" and b == name.encode() for a, b in zip(argv, argv[1:]))
    return lab_flag or any(marker in arg for arg in argv)


def down(name: str) -> bool:
    """Tear lab ``name`` down completely; False if there was nothing to remove."""
    lab_state.check_name(name)
    lab: dict[str, Any] | None = lab_state.load(name)
    if lab is None:
        return False
    net = NetnsTool(shutil.which("ip") or "/usr/sbin/ip")
    namespaces = list(lab.get("namespaces", {}).values())
    recorded = [p["pid"] for p in lab.get("processes", [])]
    pids = {pid for ns in namespaces for pid in net.netns_pids(ns)}
    pids |= {pid for pid in recorded if _names_lab(pid, name)}
    terminate(sorted(pids))
    wait_for_children_exit(recorded)
    errors = []
    for ns in namespaces:
        try:
            net.del_netns(ns)
        except LabError as exc:
            errors.append(str(exc))
    lab_state.remove(name)
    if errors:
        raise LabError(f"lab {name}: teardown incomplete: {'; '.join(errors)}")
    return True
