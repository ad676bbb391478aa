"""``pvdrun which PID`` and ``pvdrun pids NAME``: the PvD a process runs in, the processes in a PvD.

What they read and what they cannot see: pvdrun/procscope.py.
"""
from __future__ import annotations

import json
import sys

import click

from pvdrun.commands.common import complete_pvd_names, fail, pvd_named, say
from pvdrun.errors import EXIT_FAILED, EXIT_MISSING_PREREQ, EXIT_USAGE
from pvdrun.model import NULL_PVD_NAME
from pvdrun.procscope import ProcessPvd, of_process, processes_in


def _pvd_ids(socket_path: str | None, config_path: str | None, no_daemon: bool) -> list[str]:
    """The PvD IDs of the table: pvdd's, or a one-shot discovery's (with ``config_path``)."""
    if config_path is not None:
        from pvdrun.discovery.engine import discover

        return [pvd.pvd_id for pvd in discover(config_path=config_path)]
    from pvdrun.api import list_pvds

    return [pvd.pvd_id for pvd in list_pvds(socket_path, use_daemon=not no_daemon)]


def _how(found: ProcessPvd) -> str:
    if found.pvd_id is None:
        return "no PvD (neither held by strict mode nor scoped by the shim)"
    ways = []
    if found.strict_pvd:
        ways.append(f"held by strict mode (cgroup {found.cgroup})")
    if found.shim_pvd:
        ways.append("scoped by the shim" + ("" if found.shim_pvd == found.pvd_id
                                            else f" to {found.shim_pvd}"))
    return f"PvD {found.pvd_id}: " + ", ".join(ways)


_OPTIONS = [
    click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
    click.option("--socket", "socket_path", metavar="PATH", default=None,
                 help="pvdd's socket (default: $PVDRUN_SOCKET, else /run/pvd/pvdd.sock)."),
    click.option("--config", "config_path", metavar="PATH", default=None,
                 help="Configuration file for an in-process discovery (pvdd is not asked)."),
    click.option("--no-daemon", is_flag=True, help="Do not ask pvdd; discover in-process."),
]


def _options(func):  # type: ignore[no-untyped-def]
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


@click.command("which")
@click.argument("pid", type=click.IntRange(min=1))
@_options
def which_command(pid: int, as_json: bool, socket_path: str | None, config_path: str | None,
                  no_daemon: bool) -> None:
    """Say which PvD process PID runs in.

    \b
    Strict mode's cgroup first (the kernel holds the process there), else the
    scope line its environment gave the shim when the shim is loaded in it.  A
    scope the program changed itself through the C API is not seen.  Another
    user's environment is readable only by root.

    \b
    Examples:
      pvdrun which 4242
      pvdrun which --json "$(pgrep -n curl)"

    Exit status: 0; 2 no such process; 5 its memory map or environment could
    not be read and it is not held by strict mode (run as root).
    """
    try:
        found = of_process(pid, _pvd_ids(socket_path, config_path, no_daemon))
    except ProcessLookupError as exc:
        fail(str(exc), EXIT_USAGE)
    if as_json:
        click.echo(json.dumps(found.to_dict(), indent=2))
    else:
        click.echo(f"{pid} ({found.command}): {_how(found)}")
    if found.unreadable and found.strict_pvd is None:
        fail(f"process {pid}: cannot read its {', '.join(found.unreadable)} (run as root "
             "or as its user)", EXIT_MISSING_PREREQ)


@click.command("pids")
@click.argument("name", shell_complete=complete_pvd_names)
@_options
def pids_command(name: str, as_json: bool, socket_path: str | None, config_path: str | None,
                 no_daemon: bool) -> None:
    """List the processes running in the PvD NAME, one PID per line (as pgrep).

    \b
    NAME as for --pvd (an interface, a PvD ID, a configured name, a kind alias,
    or null).  A process counts when strict mode holds it in the PvD or the shim
    is scoped to it (see `pvdrun which`).  Processes whose environment cannot be
    read are counted on stderr, not guessed.

    \b
    Examples:
      pvdrun pids wifi
      pvdrun pids --json ispa.example

    Exit status: 0 some process runs in it; 1 none; 3 unknown PvD.
    """
    pvd_ids = _pvd_ids(socket_path, config_path, no_daemon)
    pvd_id = NULL_PVD_NAME if name == NULL_PVD_NAME else \
        pvd_named(name, socket_path, config_path=config_path, no_daemon=no_daemon).pvd_id
    held, unreadable = processes_in(pvd_id, pvd_ids)
    if as_json:
        click.echo(json.dumps({"pvd_id": pvd_id, "processes": [p.to_dict() for p in held],
                               "unreadable": unreadable}, indent=2))
    else:
        for found in held:
            click.echo(str(found.pid))
    if unreadable:
        say(f"pvdrun: {unreadable} processes could not be read (run as root to see them)")
    if not held:
        sys.exit(EXIT_FAILED)  # as pgrep: nothing matched
