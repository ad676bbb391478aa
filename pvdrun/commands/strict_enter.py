"""The launcher's side of strict mode: move this process into its PvD's cgroup before exec.

Through pvdd when it answers (it checks the policy and moves the process that asked; nothing
else can be moved), else, as root, by itself (device binding only: without pvdd there are no
marks, so a PvD sharing its interface cannot be held).  Children inherit the cgroup.
"""
from __future__ import annotations

import os

from pvdrun.errors import EXIT_CANNOT_HONOUR, PvdrunError
from pvdrun.model import NULL_PVD_NAME, Pvd


class StrictRefused(PvdrunError):
    """The process was not put in strict mode; the message says why (exit 4)."""

    exit_status = EXIT_CANNOT_HONOUR


def enter_via_pvdd(name: str, socket_path: str | None) -> str | None:
    """Ask pvdd to move this process into the PvD ``name``'s cgroup: its path, or None when
    pvdd does not answer.  Raises StrictRefused with pvdd's reason."""
    from pvdrun.api import _client
    from pvdrun.daemon.protocol import DaemonError, DaemonUnavailable

    client = _client(socket_path)
    if client is None:
        return None
    with client:
        try:
            reply = client.request("strict", name)
        except DaemonError as exc:
            raise StrictRefused(f"pvdd refused strict mode: {exc}") from None
        except DaemonUnavailable:
            return None
    return str(reply.get("cgroup", ""))


def enter_itself(pvd: Pvd | None) -> str:
    """As root without pvdd: hold ``pvd`` (None: the null PvD) and move this process in.
    Raises StrictRefused."""
    from pvdrun.strict import cgroups
    from pvdrun.strict.holder import DENY, CannotHold, StrictCgroups, install, policy_for, why_unavailable

    why = why_unavailable()
    if why is not None:
        raise StrictRefused(f"strict mode is unavailable: {why}")
    try:
        held = StrictCgroups.here()
        if pvd is None:
            path = held.path_of(NULL_PVD_NAME)
            install(path, DENY)
        else:
            path = held.path_of(pvd.pvd_id)
            install(path, policy_for(pvd, None))
        cgroups.move(os.getpid(), path)
    except CannotHold as exc:
        raise StrictRefused(str(exc)) from None
    except OSError as exc:
        raise StrictRefused(f"cannot enter strict mode: {exc.strerror or exc}") from None
    return path


def enter(name: str, pvd: Pvd | None, socket_path: str | None) -> str:
    """Put this process in strict mode for the PvD ``name`` (``pvd``, None for the null PvD):
    the cgroup's path.  Raises StrictRefused, saying what is missing when it cannot."""
    path = enter_via_pvdd(name, socket_path)
    if path is not None:
        return path
    if os.geteuid() != 0:
        raise StrictRefused("strict mode needs pvdd (none answers) or root")
    return enter_itself(pvd)
