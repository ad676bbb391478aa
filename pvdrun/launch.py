"""``pvdrun run``, the click face of ``pvdrun --pvd NAME [--strict] [--] CMD [ARGS...]`` (R3, R13,
R20): its options, help and usage errors.  The launcher itself (find the PvD, the scope line,
strict mode, exec) is :mod:`pvdrun.launch_core`, which the console script's fast path
(:mod:`pvdrun.fastlaunch`) calls without importing click; its helpers are named here too.
"""
from __future__ import annotations

import click

from pvdrun.launch_core import (enter_strict, launch, preload_value, private_resolv_conf, pvd_for,
                                scope_line_for, scope_line_of, scoped_environment)

__all__ = ["enter_strict", "launch", "preload_value", "private_resolv_conf", "pvd_for", "run_command",
           "scope_line_for", "scope_line_of", "scoped_environment"]


@click.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--pvd", "-p", "pvd_name", required=True, metavar="NAME",
              help="PvD to scope CMD to: interface, PvD ID, configured name, kind, or 'null'.")
@click.option("--socket", "socket_path", default=None, metavar="PATH",
              help="pvdd's socket; when given, pvdd must answer (exit 6 otherwise). Default: "
                   "$PVDRUN_SOCKET or /run/pvd/pvdd.sock if it answers, else one-shot discovery.")
@click.option("--strict/--no-strict", default=None,
              help="--strict: hold COMMAND and its children in the PvD with the kernel (a cgroup "
                   "with BPF programs) as well as with the shim; needs pvdd, or root. --no-strict: "
                   "never; a program the shim cannot scope is refused. Default: strict mode only "
                   "for such programs, when available.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run_command(pvd_name: str, socket_path: str | None, strict: bool | None, command: tuple[str, ...]) -> None:
    """Run COMMAND with every socket scoped to the PvD NAME (fails closed).

    A static, Go, set-user-ID or file-capability program, which the preloaded
    shim cannot scope, runs in strict mode when it is available (one line on
    stderr says so) and is refused otherwise.

    \b
    Examples:
      pvdrun --pvd wifi curl https://example.com/
      pvdrun --pvd wifi --strict ./static-go-tool
      pvdrun --pvd null --strict ./untrusted       no network at all, enforced

    Exit status: COMMAND's own; 3 unknown or ambiguous PvD; 4 a program the
    shim cannot scope and strict mode unavailable, strict mode refused (the
    policy, or missing pvdd/root/cgroup2/BPF), or a PvD it cannot hold (also:
    a PvD sharing its interface without pvdd, when not root);
    5 lookup failed; 6 --socket given and pvdd does not answer; 7 malformed
    configuration; 126 not executable; 127 command not found.
    """
    launch(pvd_name, socket_path, strict, command)
