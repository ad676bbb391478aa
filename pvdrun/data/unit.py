"""pvdd's systemd unit as installed: the template of this package (``pvdd.service``) with
``ExecStart=`` naming the ``pvdd`` of the installation this package belongs to."""
from __future__ import annotations

import importlib.metadata
import os
import sys

from pvdrun.data import PVDD_PLACEHOLDER, UNIT_NAME, read

#: The console script that runs the daemon (pyproject.toml, [project.scripts]).
PVDD_SCRIPT = "pvdd"
#: What ProtectHome=yes makes inaccessible to the service.
HOME_DIRECTORIES = ("/home", "/root", "/run/user")
#: The template's line, and what it becomes when pvdd's files live in a home directory.
PROTECT_HOME = "ProtectHome=yes"
PROTECT_HOME_READ_ONLY = ("# pvdd's files live in a home directory, which it must read: install pvdrun\n"
                          "# elsewhere (a venv in /opt, say) for ProtectHome=yes.\n"
                          "ProtectHome=read-only")


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


def files_run(pvdd: str) -> list[str]:
    """The real paths pvdd's start reads: the script, the interpreter its ``#!`` line names
    (a venv's python is often a link into a home directory: pyenv, uv), this package."""
    paths = [os.path.realpath(pvdd)]
    try:
        with open(pvdd, "rb") as script:
            first = script.readline(4096)
    except OSError:
        first = b""
    if first.startswith(b"#!") and first[2:].split():
        paths.append(os.path.realpath(os.fsdecode(first[2:].split()[0])))
    paths.append(os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    return paths


def in_home(path: str) -> bool:
    """Whether ``path`` is in a directory ProtectHome=yes hides."""
    return any(path == home or path.startswith(home + "/") for home in HOME_DIRECTORIES)


def render(pvdd: str, reads_home: bool = False) -> str:
    """The unit's text with ``ExecStart=`` running ``pvdd`` (an absolute path); with
    ``reads_home``, home directories read-only instead of hidden."""
    if not os.path.isabs(pvdd):
        raise ValueError(f"{pvdd}: the unit needs an absolute path")
    text = read(UNIT_NAME).replace(PVDD_PLACEHOLDER, exec_quote(pvdd))
    if reads_home:
        text = text.replace(f"\n{PROTECT_HOME}\n", f"\n{PROTECT_HOME_READ_ONLY}\n")
    return text
