"""``pvdrun verify``: run a program in one PvD and prove that nothing of it left."""
from __future__ import annotations

from typing import NoReturn

import click

from pvdrun.launch import OPTIONS_HELP, RAW, _help
from pvdrun.verify_core import run

VERIFY_HELP = """Run CMD scoped to the PvD NAME and report whether anything of it left NAME.

CMD is launched as `pvdrun --pvd NAME CMD` launches it.  The report lists
every socket the shim tied or refused and every lookup it made (the shim's
trace), and, as root or through pvdd, every packet CMD and its children
sent, counted in the kernel by their cgroup: on each link, by 5-tuple.  A
packet on a link that is not NAME's, or from an address that is not NAME's,
a socket tied to another PvD or a lookup sent to another PvD's server is a
leak, whether or not the shim saw it (a raw system call, a static program).
Processes CMD leaves running are ended when it exits.  The report goes to
stderr; CMD's own output is untouched.

\b
Examples:
  pvdrun verify --pvd ispa curl -sS http://svc.example/
  pvdrun verify --pvd wifi --json -- ./client --port 80 > report.json
  pvdrun verify --pvd vpn --report vpn.json ./sync-job

\b
Options of verify (before the command):
  --json             print the report as one JSON line on stdout, last,
                     instead of the text on stderr
  --report FILE      also write the JSON report to FILE
""" + OPTIONS_HELP + """
Exit status: 0 nothing left NAME; 1 something left NAME (the report lists
it); CMD's own exit status or signal is in the report, not here.  Else as the
launcher: 2 usage error; 3 unknown or ambiguous PvD; 4 cannot be honoured;
5 lookup failed or a prerequisite missing; 6 --socket given and pvdd does not
answer; 7 malformed configuration; 126, 127 CMD not executable or not found.
See https://github.com/pvdrun/pvdrun/blob/main/docs/cli.md
"""


@click.command("verify", context_settings=RAW, options_metavar="", help=VERIFY_HELP)
@click.argument("words", nargs=-1, type=click.UNPROCESSED, metavar="--pvd NAME [OPTIONS] [--] CMD [ARGS...]")
@click.pass_context
def verify_command(ctx: click.Context, words: tuple[str, ...]) -> None:
    """pvdrun verify: VERIFY_HELP."""
    run(words, lambda: _help(ctx))


def show_verify_help() -> NoReturn:
    """``pvdrun verify --help``, for the fast path."""
    with verify_command.make_context("pvdrun verify", [], resilient_parsing=True) as ctx:
        _help(ctx)
