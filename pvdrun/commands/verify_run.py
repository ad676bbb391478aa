"""``pvdrun verify``'s words to its exit, without click: the console script's fast path
(:mod:`pvdrun.fastlaunch`) runs it directly, the click command (:mod:`pvdrun.commands.verify`)
for its help and completion.  A verified ``true`` must cost little more than a launch."""
from __future__ import annotations

import json
import sys
from typing import Callable, NoReturn, Sequence

from pvdrun.commands.common import fail, fail_with
from pvdrun.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, PvdrunError
from pvdrun.launch_args import LaunchUsageError, parse_verify


def run(words: Sequence[str], show_help: Callable[[], NoReturn]) -> NoReturn:
    """Parse ``words``, run the program verified, write the report; exit 0 when nothing left
    the PvD, 1 when something did, else as the launcher."""
    from pvdrun.verify.runner import verify

    try:
        found = parse_verify(words)
    except LaunchUsageError as exc:
        fail(str(exc).replace("pvdrun --pvd NAME", "pvdrun verify --pvd NAME"), EXIT_USAGE, "pvdrun verify")
    if found.launch.help:
        show_help()
    try:
        report = verify(found.launch)
    except PvdrunError as exc:
        fail_with(exc)
    document = report.to_dict()
    if found.report:
        from pvdrun.atomicfile import replace_file

        try:
            replace_file(found.report, json.dumps(document, indent=1) + "\n")
        except OSError as exc:
            sys.stderr.write(f"pvdrun: cannot write the report to {found.report}: {exc.strerror}\n")
    if found.json:
        sys.stdout.write(json.dumps(document) + "\n")
    else:
        sys.stderr.write("".join(line + "\n" for line in report.lines()))
    sys.stdout.flush()
    sys.exit(EXIT_FAILED if report.left else EXIT_OK)
