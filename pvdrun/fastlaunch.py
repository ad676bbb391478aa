"""The ``pvdrun-cli`` console script: the launcher form without click, everything else through it.

``pvdrun`` itself is the native launcher (launcher/, docs/architecture.md): it runs the launcher
form when pvdd answers and the program is one the shim surely holds, and hands every other
command line, unchanged, to this console script.  Here too the launcher form skips click, whose
import would be most of a launch without pvdd.  So the console script (:func:`main`) recognises
exactly the launcher form it can run without click::

    pvdrun --pvd NAME|-p NAME|--pvd=NAME [--pvd ...|--socket PATH|--socket=PATH|--strict|--no-strict]... [--] CMD [ARGS...]

and calls :func:`pvdrun.launch_core.launch`, the function the click command ``run`` calls too.
Anything else (help, ``--version``, a subcommand, an option it does not know, a missing or
empty value, no command, a shell completion request) goes to the click path,
:data:`pvdrun.cli.main`, unchanged.  ``python -m pvdrun.cli`` takes the same fast path.
"""
from __future__ import annotations

import os
import sys
from typing import NoReturn, Sequence

from pvdrun.shim import LIBRARY_NAME, PRELOAD_ENV, preload_entries

#: Options of the launcher that take a value: option -> the launch() parameter.
_VALUED = {"--pvd": "pvd_name", "-p": "pvd_name", "--socket": "socket_path"}
_FLAGS = {"--strict": True, "--no-strict": False}


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


def is_launcher_form(args: Sequence[str]) -> bool:
    """``pvdrun --pvd NAME ...``, ``-p NAME``, ``--pvd=NAME``: the launcher, ``pvdrun run``."""
    return bool(args) and (args[0] in ("--pvd", "-p") or args[0].startswith("--pvd="))


def launcher_arguments(args: Sequence[str]) -> dict | None:
    """``launch()``'s arguments for ``pvdrun ARGS`` when ARGS are the launcher form above, as
    click's ``run`` command would parse them (the last of a repeated option wins, parsing stops
    at ``--`` or at the first word that is no option); None for anything else."""
    if not is_launcher_form(args):
        return None
    found: dict = {"pvd_name": None, "socket_path": None, "strict": None}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        name, sep, value = arg.partition("=")
        if arg == "--":
            break
        if arg in _FLAGS:
            found["strict"] = _FLAGS[arg]
        elif arg in _VALUED and rest:
            found[_VALUED[arg]] = rest.pop(0)
        elif sep and name in _VALUED and name.startswith("--"):
            found[_VALUED[name]] = value
        elif arg.startswith("-"):
            return None  # -h, --help, -pNAME, -p=NAME, an unknown option, a missing value, "-"
        else:
            rest.insert(0, arg)
            break
        if "" in (found["pvd_name"], found["socket_path"]):
            return None
    if not rest:
        return None  # click's "Missing argument 'COMMAND...'"
    return {**found, "command": rest}


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


def launch_fast() -> None:
    """Run ``pvdrun ARGV`` without click when it is the launcher form: execs CMD or exits.
    Returns when it is not that form; the caller then runs the click path."""
    leave_outer_scope()
    if _completing():
        return
    arguments = launcher_arguments(sys.argv[1:])
    if arguments is None:
        return
    try:
        from pvdrun.launch_core import launch

        launch(**arguments)
    except (EOFError, KeyboardInterrupt, OSError) as error:
        _end_as_click_does(error)


def main() -> None:
    """The ``pvdrun-cli`` console script (pyproject.toml): the fast path, else the click path."""
    launch_fast()
    from pvdrun.cli import main as click_main

    click_main(prog_name="pvdrun")  # run as pvdrun-cli by the native launcher: say pvdrun
