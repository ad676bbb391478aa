"""The exit statuses of every ``pvdrun`` command, and the root of the exceptions that carry
one: the one table docs/cli.md ("Exit statuses") shows, held to it by tests/test_exit_statuses.py.

Libraries raise (a ``PvdrunError`` subclass, or their own exception with ``exit_status``);
only the command line turns an error into one line on stderr and an exit status.
"""
from __future__ import annotations

#: success
EXIT_OK = 0
#: a name that does not exist (resolve); a lab that failed to come up; a daemon that could not
#: start or clean up completely (the message says what); no process in the PvD (pids); something left
#: the PvD (verify); an internal error (the last resort)
EXIT_FAILED = 1
#: usage error (unknown option, missing argument, bad value)
EXIT_USAGE = 2
#: unknown or ambiguous PvD name
EXIT_UNKNOWN_PVD = 3
#: a PvD that cannot be honoured (static, Go, setuid program; the null PvD asked to resolve)
EXIT_CANNOT_HONOUR = 4
#: a missing prerequisite (not root, a program or the shim library missing)
EXIT_MISSING_PREREQ = 5
#: pvdd does not answer at an explicit --socket, or went away
EXIT_NO_DAEMON = 6
#: malformed configuration file
EXIT_BAD_CONFIG = 7
#: temporary resolution failure
EXIT_TEMPORARY = 8
#: a lab of that name is already up
EXIT_LAB_UP = 9
#: no lab of that name is up
EXIT_LAB_NOT_UP = 10
#: daemon --cleanup refused: a pvdd is running on the socket
EXIT_PVDD_RUNNING = 11
#: the command is not executable, as a shell would say
EXIT_NOT_EXECUTABLE = 126
#: the command is not found, as a shell would say
EXIT_NOT_FOUND = 127

#: status -> the meaning docs/cli.md gives it (first words), for the table test
#: PVDRUN_DEBUG=1: an internal error shows its traceback instead of the last resort's one line
DEBUG_ENV = "PVDRUN_DEBUG"

EXIT_STATUSES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_FAILED: "`resolve`: the name does not exist",
    EXIT_USAGE: "usage error",
    EXIT_UNKNOWN_PVD: "unknown or ambiguous PvD name",
    EXIT_CANNOT_HONOUR: "a PvD that cannot be honoured",
    EXIT_MISSING_PREREQ: "a missing prerequisite",
    EXIT_NO_DAEMON: "`--socket` given and pvdd does not answer there",
    EXIT_BAD_CONFIG: "malformed configuration file",
    EXIT_TEMPORARY: "`resolve`: temporary failure",
    EXIT_LAB_UP: "`lab up`: a lab of that name is already up",
    EXIT_LAB_NOT_UP: "`lab status`, `lab exec`, `lab fault`, `lab heal`: no lab of that name is up",
    EXIT_PVDD_RUNNING: "`daemon --cleanup`: refused",
}


class PvdrunError(Exception):
    """Root of pvdrun's errors; ``str(err)`` is the one line for the user."""

    exit_status = EXIT_FAILED
