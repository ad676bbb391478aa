"""The lab's state file: what a lab created, so that ``lab down`` can remove it.

``/run/pvdrun/lab/<NAME>.json`` holds the scenario, the namespaces (role ->
name), the processes started (pid, namespace, what) and the run directory
``/run/pvdrun/lab/<NAME>/`` (logs, configs, pid files).  The file is claimed
atomically (O_EXCL) so two ``lab up`` of one name cannot both proceed, and
rewritten after every step so a half-built lab can still be torn down.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pvdrun.lab.errors import LabAlreadyUp, LabBadInput

STATE_DIR = Path("/run/pvdrun/lab")
DEFAULT_NAME = "pvl"
# Namespace names are "<NAME>-<role>"; interface names never contain NAME.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{0,31}$")


def check_name(name: str) -> str:
    """Return ``name`` if usable as a lab name, else raise :class:`LabBadInput`."""
    if not _NAME_RE.match(name):
        raise LabBadInput(f"bad lab name {name!r}: use 1-32 letters, digits or '_' "
                          "(starting with a letter or digit)")
    return name


def state_path(name: str) -> Path:
    """Path of the state file of lab ``name``."""
    return STATE_DIR / f"{name}.json"


def run_dir(name: str) -> Path:
    """Directory holding the lab's logs, configs and pid files."""
    return STATE_DIR / name


def claim(name: str, data: dict[str, Any]) -> None:
    """Create the state file, failing with :class:`LabAlreadyUp` if it exists."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(state_path(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise LabAlreadyUp(f"lab {name!r} is already up (pvdrun lab down --name {name})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
    run_dir(name).mkdir(parents=True, exist_ok=True)


def save(name: str, data: dict[str, Any]) -> None:
    """Atomically rewrite the state file."""
    path = state_path(name)
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
    os.replace(tmp, path)


def load(name: str) -> dict[str, Any] | None:
    """The state of lab ``name``, or None when it is not up."""
    try:
        with open(state_path(name), encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def remove(name: str) -> None:
    """Remove the state file and the run directory (missing ones are fine)."""
    directory = run_dir(name)
    if directory.is_dir():
        for entry in directory.iterdir():
            entry.unlink(missing_ok=True)
        directory.rmdir()
    state_path(name).unlink(missing_ok=True)
    state_path(name).with_suffix(".json.tmp").unlink(missing_ok=True)
