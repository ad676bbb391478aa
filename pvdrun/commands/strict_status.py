"""Whether strict mode is available to the caller, and how many processes each PvD holds
(``pvdrun list``/``show``): pvdd's word in its ``list`` reply when it answers
(:func:`from_reply`), else what this process can see (:func:`local`)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from pvdrun.model import Pvd


@dataclass(frozen=True)
class StrictStatus:
    """``available``: a launcher here can enter strict mode (``why``: else what is missing);
    ``processes``: PvD ID -> processes its strict cgroup holds."""

    available: bool
    why: str | None = None
    by: str = "pvdd"  # pvdd | root (the launcher itself, device binding only)
    processes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"available": self.available, "why": self.why, "by": self.by, "processes": self.processes}


def from_reply(data: dict[str, Any]) -> StrictStatus:
    """pvdd's ``strict`` object of a ``list`` reply."""
    processes = {str(k): int(v) for k, v in (data.get("processes") or {}).items()}
    return StrictStatus(bool(data.get("available")), data.get("why"), "pvdd", processes)


def local(pvds: list[Pvd]) -> StrictStatus:
    """Without pvdd: root may hold a PvD alone on its interface itself; the counts are read from
    the cgroup tree (as root, mounted as a root launcher would: cgroups.find_or_mount)."""
    from pvdrun.strict import cgroups
    from pvdrun.strict.holder import why_unavailable

    processes: dict[str, int] = {}
    mount = cgroups.cgroup2_mount()
    if mount is None and os.geteuid() == 0:
        try:
            mount = cgroups.find_or_mount()  # what a root launcher here would use
        except OSError:
            mount = None
    if mount is not None:
        base = cgroups.base_directory(mount)
        for pvd in pvds:
            count = len(cgroups.processes(os.path.join(base, cgroups.name_of(pvd.pvd_id))))
            if count:
                processes[pvd.pvd_id] = count
    if os.geteuid() != 0:
        return StrictStatus(False, "no pvdd answers and not root", "root", processes)
    why = why_unavailable(may_mount=False)
    return StrictStatus(why is None, why, "root", processes)


def describe(state: StrictStatus) -> str:
    """One line for ``pvdrun list``."""
    if not state.available:
        return f"strict mode: unavailable ({state.why})"
    how = "through pvdd" if state.by == "pvdd" else "as root without pvdd (device binding only)"
    return f"strict mode: available {how}"
