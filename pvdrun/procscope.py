"""Which PvD a process runs in, read from /proc: its strict cgroup, else its shim's scope line.

A process is held by the kernel when its cgroup v2 path ends in a PvD's strict cgroup
(``pvd-<hash of the PvD ID>``, pvdrun/strict/cgroups.py); it is scoped by the shim when the
shim is mapped into it (``/proc/PID/maps``) and its environment at exec named a scope
(``PVDRUN_SCOPE``, the line the launcher gave it).  A program that changed its own scope
through the C API afterwards (``pvd_set_process_scope``) is not seen here: only the process
knows.  Another user's environment is readable only by root (or that user): such a process is
``unreadable``, never guessed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from pvdrun.model import NULL_PVD_NAME, SCOPE_ENV, parse_scope
from pvdrun.shim import LIBRARY_NAME
from pvdrun.strict.cgroups import name_of, own_cgroup


@dataclass
class ProcessPvd:
    """What /proc says of one process's PvD."""

    pid: int
    command: str = ""
    #: the PvD ID of the strict cgroup holding it (None: not in one this table knows)
    strict_pvd: str | None = None
    cgroup: str | None = None
    #: the PvD ID of the scope line its environment gave the shim (None: none, or no shim)
    shim_pvd: str | None = None
    shim_loaded: bool = False
    #: what could not be read (e.g. "environment: permission denied")
    unreadable: list[str] = field(default_factory=list)

    @property
    def pvd_id(self) -> str | None:
        """The PvD it runs in: the kernel's hold first, else the shim's scope."""
        return self.strict_pvd or self.shim_pvd

    def to_dict(self) -> dict[str, object]:
        return {"pid": self.pid, "command": self.command, "pvd_id": self.pvd_id,
                "strict_pvd": self.strict_pvd, "cgroup": self.cgroup, "shim_pvd": self.shim_pvd,
                "shim_loaded": self.shim_loaded, "unreadable": list(self.unreadable)}


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _scope_id(environ: bytes) -> str | None:
    prefix = SCOPE_ENV.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(prefix):
            try:
                return parse_scope(entry[len(prefix):].decode(errors="replace"))["id"][0]
            except (ValueError, KeyError, IndexError):
                return None
    return None


def of_process(pid: int, pvd_ids: list[str]) -> ProcessPvd:
    """The PvD of process ``pid``, the strict cgroups matched against ``pvd_ids`` (the null PvD
    always).  Raises ProcessLookupError when there is no such process."""
    if not os.path.exists(f"/proc/{pid}"):
        raise ProcessLookupError(f"no process {pid}")
    found = ProcessPvd(pid=pid)
    try:
        found.command = _read(f"/proc/{pid}/comm").decode(errors="replace").strip()
    except OSError:
        raise ProcessLookupError(f"no process {pid}") from None
    found.cgroup = own_cgroup(pid)
    if found.cgroup:
        leaf = found.cgroup.rstrip("/").rsplit("/", 1)[-1]
        by_name = {name_of(pvd_id): pvd_id for pvd_id in [*pvd_ids, NULL_PVD_NAME]}
        found.strict_pvd = by_name.get(leaf)
    for what, path in (("memory map", f"/proc/{pid}/maps"), ("environment", f"/proc/{pid}/environ")):
        try:
            data = _read(path)
        except OSError as exc:
            found.unreadable.append(f"{what}: {exc.strerror or exc}")
            continue
        if what == "memory map":
            found.shim_loaded = f"/{LIBRARY_NAME}".encode() in data
        elif found.shim_loaded:
            found.shim_pvd = _scope_id(data)
    return found


def processes_in(pvd_id: str, pvd_ids: list[str]) -> tuple[list[ProcessPvd], int]:
    """The processes running in the PvD ``pvd_id``, and how many could not be read."""
    held: list[ProcessPvd] = []
    unreadable = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            found = of_process(int(entry), pvd_ids)
        except ProcessLookupError:
            continue  # exited meanwhile
        if found.pvd_id == pvd_id:
            held.append(found)
        elif found.unreadable and found.strict_pvd is None:
            unreadable += 1
    return sorted(held, key=lambda p: p.pid), unreadable
