"""Find the program a command name means, as a shell would (the PATH search of execvp).

A name with a slash is a path and is taken as it is; any other name is looked for in
each directory of the search path in turn (an empty entry is the current directory),
and the first executable regular file wins.  A file that is found but not executable
only counts when no executable one is: the shell then says "not executable" (126), and
"not found" (127) when there is nothing at all.
"""
from __future__ import annotations

import os

from pvdrun.errors import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, PvdrunError


class ProgramNotFound(PvdrunError):
    """No file answers to the name."""

    exit_status = EXIT_NOT_FOUND


class ProgramNotExecutable(ProgramNotFound):
    """A file answers to the name, but none that may be executed."""

    exit_status = EXIT_NOT_EXECUTABLE


def find_program(name: str, search_path: str | None) -> str:
    """The file execve would run for ``name`` with ``search_path`` as PATH (None: the
    system's default path); raises ProgramNotFound or ProgramNotExecutable."""
    if "/" in name:
        if not os.path.exists(name):
            raise ProgramNotFound(f"{name}: command not found")
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            raise ProgramNotExecutable(f"{name}: not executable")
        return name
    search = search_path if search_path is not None else os.defpath
    non_executable = None
    for directory in search.split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            non_executable = non_executable or candidate
    if non_executable:
        raise ProgramNotExecutable(f"{non_executable}: not executable")
    raise ProgramNotFound(f"{name}: command not found")
