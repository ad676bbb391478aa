"""Errors of the lab, each with the exit status the CLI uses for it (docs/lab.md)."""
from __future__ import annotations

from pvdrun.errors import EXIT_FAILED, EXIT_LAB_NOT_UP, EXIT_LAB_UP, EXIT_MISSING_PREREQ, EXIT_USAGE, PvdrunError

EXIT_SETUP_FAILED = EXIT_FAILED
EXIT_BAD_INPUT = EXIT_USAGE
EXIT_ALREADY_UP = EXIT_LAB_UP
EXIT_NOT_UP = EXIT_LAB_NOT_UP


class LabError(PvdrunError):
    """A lab operation failed; ``str(err)`` is the one-line message for the user."""

    exit_status = EXIT_SETUP_FAILED

    @property
    def exit_code(self) -> int:
        """The earlier name of ``exit_status``."""
        return self.exit_status


class LabBadInput(LabError):
    """An argument the lab cannot use (unknown scenario, bad name or role)."""

    exit_status = EXIT_BAD_INPUT


class LabPrereqMissing(LabError):
    """Not root, or a needed program (ip, dnsmasq) is not installed."""

    exit_status = EXIT_MISSING_PREREQ


class LabAlreadyUp(LabError):
    """A lab of that name (or one of its namespaces) already exists."""

    exit_status = EXIT_ALREADY_UP


class LabNotUp(LabError):
    """No lab of that name is up."""

    exit_status = EXIT_NOT_UP


class LabWaitTimeout(LabError):
    """``--wait``: the lab's PvDs were not all known in time (``up`` removes the lab)."""
