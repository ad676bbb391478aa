"""The multihoming lab: scenarios 1-3 of the Troan et al. draft in network namespaces.

Python API (used by the pytest fixtures in tests/fixtures/lab.py)::

    from pvdrun import lab
    info = lab.up(3, "mylab")     # -> status dict (see docs/lab.md)
    lab.status("mylab")
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
                               LabPrereqMissing)
from pvdrun.lab.plan import SCENARIOS
from pvdrun.lab.state import DEFAULT_NAME
from pvdrun.lab.status import lab_status as status
from pvdrun.lab.teardown import down
from pvdrun.lab.topology import LabBuilder
from pvdrun.lab.netns import NetnsTool

__all__ = ["up", "down", "status", "DEFAULT_NAME", "LabError", "LabBadInput",
           "LabPrereqMissing", "LabAlreadyUp", "LabNotUp"]

#: ``lab up`` gives up (and tears down) when the lab is not ready after this long.
READY_TIMEOUT = 15.0
ROLES_BY_SCENARIO = {1: ("host", "link", "ispa", "ispb"), 2: ("host", "gw", "ispa", "ispb"),
                     3: ("host", "ispa", "ispb")}


def up(scenario: int, name: str = DEFAULT_NAME, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
    """Build scenario ``scenario`` as lab ``name``, wait until it works, return its status.

    On any failure everything already created is removed before the error
    propagates.
    """
    lab_state.check_name(name)
    if scenario not in SCENARIOS:
        raise LabBadInput(f"unknown scenario {scenario!r}: choose 1, 2 or 3")
    tools = prereq.check()
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
        builder.wait_ready(timeout)
    except BaseException:
        down(name)
        raise
    return status(name)
