"""``pvdrun run`` and ``pvdrun exec``, the click faces of the launcher: their help.  Their words
go unparsed to the one parser of the launcher (:mod:`pvdrun.launch_args`), and the launch
itself is :mod:`pvdrun.launch_core`, which the console script's fast path
(:mod:`pvdrun.fastlaunch`) calls without importing click; its helpers are named here too.
"""
from __future__ import annotations

import sys
from typing import NoReturn

import click

from pvdrun.commands.common import complete_pvd_names
from pvdrun.errors import EXIT_OK
from pvdrun.launch_args import parse, parse_exec
from pvdrun.launch_core import (enter_strict, launch, preload_value, private_resolv_conf, pvd_for,
                                run_launcher, scope_line_for, scope_line_of, scoped_environment)

__all__ = ["enter_strict", "exec_command", "launch", "preload_value", "private_resolv_conf", "pvd_for",
           "run_command", "scope_line_for", "scope_line_of", "scoped_environment", "show_run_help"]

#: The words are the launcher's own (launch_args), never click's: no option parsing, no help option.
RAW = {"ignore_unknown_options": True, "allow_interspersed_args": False, "help_option_names": []}

OPTIONS_HELP = """\b
Options (any order, before the command; the last of a repeated one wins):
  -p, --pvd NAME     the PvD: interface, PvD ID, configured name, kind alias
                     (wifi, ethernet, cellular, vpn), null (no network), or
                     auto (each name in the PvD claiming its zone, else the
                     default PvD; each connection in its address's PvD)
  --strict           hold CMD and its children with the kernel as well (a
                     cgroup with BPF programs); needs pvdd, or root
  --no-strict        never strict mode: a program the shim cannot scope is
                     refused.  Default: strict mode only for such programs
                     (static, Go, set-user-ID), when available
  --socket PATH      pvdd's socket; it must answer (exit 6 otherwise).
                     Default: $PVDRUN_SOCKET or /run/pvd/pvdd.sock if it
                     answers, else a one-shot discovery
  --config PATH      find the PvD by a one-shot discovery with this pvd.toml
                     (pvdd, which has its own, is not asked)
  --no-daemon        find the PvD by a one-shot discovery, not asking pvdd
  --no-proxy-env     do not give CMD the PvD's proxy (http_proxy, https_proxy,
                     no_proxy from its RFC 8801 Additional Information; a
                     proxy variable set already always wins)
  -v, --verbose      say which PvD, scope line, cgroup and program
  -h, --help         this help
The command starts at the first word that is no option, or after --.
"""

STATUS_HELP = """Exit status: CMD's own; 2 usage error; 3 unknown or ambiguous PvD; 4 a program
the shim cannot scope and strict mode unavailable, strict mode refused (the policy, or missing
pvdd/root/cgroup2/BPF), or a PvD it cannot hold (a PvD sharing its interface without pvdd);
5 lookup failed; 6 --socket given and pvdd does not answer; 7 malformed configuration; 126 not
executable; 127 command not found.  See
https://github.com/pvdrun/pvdrun/blob/main/docs/cli.md
"""


def _help(ctx: click.Context) -> NoReturn:
    click.echo(ctx.get_help())
    sys.exit(EXIT_OK)  # not ctx.exit: the fast path shows this help outside click's main


RUN_HELP = """Run CMD with every socket scoped to the PvD NAME (fails closed).

`pvdrun --pvd NAME CMD` is the same command.  A static, Go, set-user-ID or
file-capability program, which the preloaded shim cannot scope, runs in
strict mode when it is available (one line on stderr says so) and is
refused otherwise.

\b
Examples:
  pvdrun --pvd wifi curl https://example.com/
  pvdrun -pwifi --socket /run/pvd/pvdd.sock -- ./client --port 80
  pvdrun --pvd wifi --strict ./static-go-tool
  pvdrun --pvd null --strict ./untrusted       no network at all, enforced
  pvdrun --pvd auto curl http://intranet.corp.example/

""" + OPTIONS_HELP + "\n" + STATUS_HELP

EXEC_HELP = """Run CMD scoped to the PvD NAME, as `ip netns exec NAME CMD` runs it in a namespace.

The same launch as `pvdrun --pvd NAME CMD`; options, if any, come before NAME,
and everything after NAME is the command.

\b
Examples:
  pvdrun exec wifi curl https://example.com/
  pvdrun exec --strict ispa.example -- ./tool -v

""" + OPTIONS_HELP.replace("  -p, --pvd NAME     the PvD", "  NAME               the PvD") + "\n" + STATUS_HELP


@click.command("run", context_settings=RAW, options_metavar="", help=RUN_HELP)
@click.argument("words", nargs=-1, type=click.UNPROCESSED, metavar="--pvd NAME [OPTIONS] [--] CMD [ARGS...]")
@click.pass_context
def run_command(ctx: click.Context, words: tuple[str, ...]) -> None:
    """pvdrun run: RUN_HELP."""
    run_launcher(words, parse, lambda: _help(ctx))


@click.command("exec", context_settings=RAW, options_metavar="", help=EXEC_HELP)
@click.argument("words", nargs=-1, type=click.UNPROCESSED, metavar="[OPTIONS] NAME [--] CMD [ARGS...]",
                shell_complete=lambda ctx, param, incomplete: [] if ctx.params.get("words")
                else complete_pvd_names(ctx, param, incomplete))
@click.pass_context
def exec_command(ctx: click.Context, words: tuple[str, ...]) -> None:
    """pvdrun exec: EXEC_HELP."""
    run_launcher(words, parse_exec, lambda: _help(ctx))


def show_run_help() -> NoReturn:
    """``pvdrun run --help``, for ``pvdrun --pvd NAME -h`` on the fast path."""
    with run_command.make_context("pvdrun run", [], resilient_parsing=True) as ctx:
        _help(ctx)
