"""The multihoming lab: scenarios 1-3 of the Troan et al. draft in network namespaces.

Python API (used by the pytest fixtures in tests/fixtures/lab.py)::

    from pvdrun import lab
    info = lab.up(3, "mylab")     # -> status dict (see docs/lab.md)
    lab.up(3, "ci", wait=30.0)   # ... and until pvdrun's discovery knows both ISPs' PvDs
    lab.status("mylab")
    lab.heal_and_wait("mylab", "ispa", 30.0)
    lab.down("mylab")

Errors are :class:`pvdrun.lab.errors.LabError` subclasses carrying the
CLI's exit status.
"""
from __future__ import annotations

import time
from typing import Any

from pvdrun.lab import prereq
from pvdrun.lab import state as lab_state
from pvdrun.lab.errors import (LabAlreadyUp, LabBadInput, LabError, LabNotUp,
                               LabPrereqMissing, LabWaitTimeout)
from pvdrun.lab.plan import ISPS, SCENARIOS
from pvdrun.lab.state import DEFAULT_NAME
from pvdrun.lab.status import lab_status as status
from pvdrun.lab.teardown import down
from pvdrun.lab.topology import LabBuilder
from pvdrun.lab.netns import NetnsTool

__all__ = ["up", "down", "status", "heal_and_wait", "wait_known", "LabWaitTimeout", "DEFAULT_NAME", "LabError", "LabBadInput",
           "LabPrereqMissing", "LabAlreadyUp", "LabNotUp"]

#: ``lab up`` gives up (and tears down) when the lab is not ready after this long.
READY_TIMEOUT = 15.0
ROLES_BY_SCENARIO = {1: ("host", "link", "ispa", "ispb"), 2: ("host", "gw", "ispa", "ispb"),
                     3: ("host", "ispa", "ispb")}


def up(scenario: int, name: str = DEFAULT_NAME, timeout: float = READY_TIMEOUT,
       wait: float | None = None) -> dict[str, Any]:
    """Build scenario ``scenario`` as lab ``name``, wait until it works, return its status.

    With ``wait`` (seconds, instead of ``timeout``), also wait until pvdrun's own PvD
    discovery in the host namespace knows every ISP's PvD completely (name, address,
    DNS server: :mod:`pvdrun.lab.pvdwait`); :class:`LabWaitTimeout` when it does not.
    On any failure everything already created is removed before the error
    propagates.
    """
    from pvdrun.lab.pvdwait import parse_timeout, run_in_host  # not at import: it runs with -m

    if wait is not None:
        wait = parse_timeout(wait)
    lab_state.check_name(name)
    if scenario not in SCENARIOS:
        raise LabBadInput(f"unknown scenario {scenario!r}: choose 1, 2 or 3")
    tools = prereq.check()
    if scenario in (1, 2):
        tools.update(prereq.check_pvd_info())
    net = NetnsTool(tools["ip"])
    taken = [f"{name}-{role}" for role in ROLES_BY_SCENARIO[scenario]
             if net.netns_exists(f"{name}-{role}")]
    if taken and lab_state.load(name) is None:
        raise LabAlreadyUp(f"namespace {taken[0]} already exists (not made by this lab)")
    lab = {"name": name, "scenario": scenario, "namespaces": {}, "processes": [],
           "created": time.time()}
    lab_state.claim(name, lab)
    try:
        builder = LabBuilder(name, scenario, tools, lab)
        builder.build()
        if wait is None:
            builder.wait_ready(timeout)
        else:
            deadline = time.monotonic() + wait
            builder.wait_ready(wait)
            run_in_host(name, builder.ns("host"), scenario,
                        max(0.5, deadline - time.monotonic()))
    except BaseException:
        down(name)
        raise
    return status(name)


def wait_known(name: str, timeout: float, isps: tuple[str, ...] = ISPS) -> None:
    """Wait until lab ``name`` works for each ISP of ``isps`` (host addresses, services and
    DNS answer) and pvdrun's PvD discovery in its host namespace knows their PvDs
    completely.  Raises :class:`LabWaitTimeout` after ``timeout`` seconds."""
    from pvdrun.lab.pvdwait import parse_timeout, run_in_host

    lab_state.check_name(name)
    timeout = parse_timeout(timeout)
    lab = lab_state.load(name)
    if lab is None:
        raise LabNotUp(f"lab {name!r} is not up (pvdrun lab up --scenario N --name {name})")
    scenario = int(lab["scenario"])
    builder = LabBuilder(name, scenario, prereq.check(), lab)
    deadline = time.monotonic() + timeout
    try:
        builder.wait_ready(timeout, isps)
    except LabError as exc:
        raise LabWaitTimeout(str(exc)) from None
    run_in_host(name, lab["namespaces"]["host"], scenario,
                max(0.5, deadline - time.monotonic()), isps)


def heal_and_wait(name: str, isp: str | None, timeout: float) -> list[dict[str, Any]]:
    """``lab heal --wait``: undo the faults of ``isp`` (every ISP when None; the healed
    ISPs' routers are asked for an RA at once) and wait as :func:`wait_known` does."""
    from pvdrun.lab import faults
    from pvdrun.lab.pvdwait import parse_timeout

    timeout = parse_timeout(timeout)
    healed = faults.heal(name, isp)
    wait_known(name, timeout, (isp,) if isp is not None else ISPS)
    return healed
