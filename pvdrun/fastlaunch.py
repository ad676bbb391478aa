"""The ``pvdrun-cli`` console script: the launcher form without click, everything else through it.

``pvdrun`` itself is the native launcher (launcher/, docs/architecture.md): it runs the launcher
form when pvdd answers and the program is one the shim surely holds, and hands every other
command line, unchanged, to this console script.  Here too the launcher form skips click, whose
import would be most of a launch without pvdd.  So the console script (:func:`main`) recognises
the launcher form (:func:`pvdrun.launch_args.is_launcher_form`: options before the command,
one of them ``--pvd``) and runs it through :func:`pvdrun.launch_core.run_launcher` with the
one parser of the launcher's words, which the click commands ``run`` and ``exec`` use too;
only ``-h`` there loads click, to print ``run``'s help.  Anything else (a subcommand, the
group's help or version, a shell completion request) goes to the click path,
:data:`pvdrun.cli.main`, unchanged.  ``python -m pvdrun.cli`` takes the same fast path.
"""
from __future__ import annotations

import os
import sys
from typing import NoReturn

from pvdrun.launch_args import is_launcher_form, parse
from pvdrun.shim import LIBRARY_NAME, PRELOAD_ENV, preload_entries


def leave_outer_scope() -> None:
    """Re-exec this pvdrun without our preload library when an outer ``pvdrun`` put it there.

    pvdrun is the control plane: an inner ``pvdrun --pvd B`` overrides an outer ``--pvd A``
    (the shim), and its own discovery (netlink, Router Solicitations on every link) must not be
    held inside A, or it would not hear B's Router Advertisements.  The user's other preloads
    are kept; the program pvdrun finally runs gets the shim again from the launcher.
    """
    entries = preload_entries(os.environ.get(PRELOAD_ENV))
    kept = [item for item in entries if os.path.basename(item) != LIBRARY_NAME]
    if len(kept) == len(entries):
        return
    env = dict(os.environ)
    if kept:
        env[PRELOAD_ENV] = ":".join(kept)
    else:
        env.pop(PRELOAD_ENV, None)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(sys.orig_argv), env)


def _completing() -> bool:
    """A shell asks for completions (click's ``_PROG_COMPLETE`` variables): click answers."""
    return any(key.startswith("_") and key.endswith("_COMPLETE") and value
               for key, value in os.environ.items())


def _end_as_click_does(error: BaseException) -> NoReturn:
    """End on ``error`` (Ctrl-C, end of input, an OSError such as a closed stderr) exactly as
    the click path does: raised inside a click command run in standalone mode, it prints
    "Aborted!" and exits 1 for Ctrl-C, exits 1 for a closed pipe, and re-raises the rest."""
    import click

    def fail_again() -> None:
        raise error

    click.Command("pvdrun", callback=fail_again, add_help_option=False).main(args=[], prog_name="pvdrun")
    raise error  # (main() always exits)


def _run_help() -> NoReturn:
    from pvdrun.launch import show_run_help

    show_run_help()


def _verify_help() -> NoReturn:
    from pvdrun.verify_command import show_verify_help

    show_verify_help()


def launch_fast() -> None:
    """Run ``pvdrun ARGV`` without click when it is the launcher form (execs CMD or exits) or
    ``pvdrun verify`` (exits).  Returns otherwise; the caller then runs the click path."""
    leave_outer_scope()
    if _completing():
        return
    try:
        if sys.argv[1:2] == ["verify"]:
            from pvdrun.verify_core import run

            run(sys.argv[2:], _verify_help)
        if not is_launcher_form(sys.argv[1:]):
            return
        from pvdrun.launch_core import run_launcher

        run_launcher(sys.argv[1:], parse, _run_help)
    except (EOFError, KeyboardInterrupt, OSError) as error:
        _end_as_click_does(error)


def main() -> None:
    """The ``pvdrun-cli`` console script (pyproject.toml): the fast path, else the click path."""
    launch_fast()
    from pvdrun.cli import main as click_main

    click_main(prog_name="pvdrun")  # run as pvdrun-cli by the native launcher: say pvdrun
