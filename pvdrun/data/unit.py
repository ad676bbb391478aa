"""pvdd's systemd unit as installed: the template of this package (``pvdd.service``) with
``ExecStart=`` naming the ``pvdd`` of the installation this package belongs to."""
from __future__ import annotations

import importlib.metadata
import os
import sys

from pvdrun.data import PVDD_PLACEHOLDER, UNIT_NAME, read

#: The console script that runs the daemon (pyproject.toml, [project.scripts]).
PVDD_SCRIPT = "pvdd"


def installed_pvdd() -> str:
    """The absolute path of the ``pvdd`` installed with this package: the one its
    installation recorded (a venv's, pipx's, ``--user``'s or the system's scripts directory),
    else the one beside the running interpreter.  Raises FileNotFoundError."""
    candidates: list[str] = []
    try:
        files = importlib.metadata.distribution("pvdrun").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == PVDD_SCRIPT and entry.parent.name == "bin":
            candidates.append(os.path.normpath(os.path.abspath(str(entry.locate()))))
    candidates.append(os.path.join(os.path.dirname(os.path.abspath(sys.executable)), PVDD_SCRIPT))
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(f"no installed {PVDD_SCRIPT} (looked at {', '.join(candidates)}): "
                            "reinstall pvdrun")


def exec_quote(word: str) -> str:
    """``word`` as one argument of a unit's ``ExecStart=``: ``%`` and ``$`` doubled (specifiers
    and variables), double quotes around anything with a blank, quote or backslash."""
    word = word.replace("%", "%%").replace("$", "$$")
    if any(c.isspace() or c in "\"'\\;" for c in word):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def render(pvdd: str) -> str:
    """The unit's text with ``ExecStart=`` running ``pvdd`` (an absolute path)."""
    if not os.path.isabs(pvdd):
        raise ValueError(f"{pvdd}: the unit needs an absolute path")
    return read(UNIT_NAME).replace(PVDD_PLACEHOLDER, exec_quote(pvdd))
