"""What a launcher gives a program of one PvD, or why it cannot: one rule for every launcher.

The Python launcher (:mod:`pvdrun.launch_core`) and pvdd's ``scope`` request (which the native
launcher, launcher/, asks) both call :func:`refusal` and :func:`scope_line`, so a PvD is
launchable, and gets the same scope line, whichever launcher runs the program.
"""
from __future__ import annotations

from pvdrun.model import Pvd


def refusal(pvd: Pvd) -> str | None:
    """Why a program cannot be scoped to ``pvd`` by the shim (None: it can)."""
    if not pvd.ifindexes:
        return f"PvD {pvd.pvd_id} has no interface to scope to"
    if pvd.needs_routing and not pvd.mark:
        # No pvdd routes for this PvD (docs/routing.md): its interface is shared, so device
        # binding cannot hold it and the main table would pick the next-hop, possibly another
        # PvD's router.  Fail closed, root or not.
        return (f"PvD {pvd.pvd_id} shares its interface with other PvDs: it needs pvdd's "
                "routing tables (run `pvdrun daemon` as root)")
    return None


def scope_line(pvd: Pvd) -> str:
    """The scope line (PVDRUN_SCOPE) of ``pvd``; raises ValueError, saying why, when the
    shim could not hold it (e.g. too large)."""
    try:
        return pvd.to_scope()
    except ValueError as exc:
        raise ValueError(f"cannot honour PvD {pvd.pvd_id}: {exc}") from None
