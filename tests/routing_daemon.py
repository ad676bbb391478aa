"""Helper for the routing tests: pvdd running in a lab's host namespace (root), stopped after.

``PvddInLab(lab, config_text)`` is fixtures/pvdd.py's ``Pvdd`` in the host namespace (its
socket in a world-traversable temporary directory, so an unprivileged test user can reach
it), whose ``start()`` returns once the PvD table is served and the tables are built; ``stop()`` sends
SIGTERM (pvdd keeps its fail-closed rules), ``kill()`` SIGKILL, and ``cleanup()`` (or the
end of ``with PvddInLab(lab) as daemon:``) stops it, runs ``pvdrun daemon --cleanup``
(nothing tagged as pvdd's is left) and removes the directory.
"""
from __future__ import annotations

import shutil
import subprocess
from typing import Any

from fixtures.pvdd import Pvdd

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


class PvddInLab(Pvdd):
    """pvdd in ``lab``'s host namespace with ``config_text`` as its pvd.toml
    (fixtures/pvdd.py); ready once every PvD that needs routing has its mark and pvdd's
    rules exist."""

    def __init__(self, lab: Any, config_text: str = "") -> None:
        super().__init__(lab.host_ns, config_text)
        self.lab = lab

    def tables_built(self) -> bool:
        pvds = self.list_pvds()
        return bool(pvds) and all(p["mark"] or not p["needs_routing"] for p in pvds) and bool(rules(self.lab))

    def start(self, wait: bool = True) -> "PvddInLab":  # type: ignore[override]
        super().start(wait=wait, until=self.tables_built)
        return self

    def close(self, remove_state: bool = True) -> None:
        """Stop pvdd if it runs, remove whatever is tagged as pvdd's (unless told not to),
        remove the directory."""
        super().close(remove_state=remove_state)

    def cleanup(self) -> None:
        """Stop pvdd if it runs, remove whatever is tagged as pvdd's, remove the directory."""
        self.close(remove_state=True)
