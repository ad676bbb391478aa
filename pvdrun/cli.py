"""The ``pvdrun`` command line.

``pvdrun --pvd NAME [--] CMD [ARGS...]`` runs CMD scoped to one PvD; the
other forms are subcommands (``pvdrun list``, ``pvdrun lab up``, ...).
Subcommands are imported only when they are used, so that ``pvdrun --pvd``
and ``pvdrun shim-path`` do not pay for importing pyroute2 (about 0.2 s).

The launcher form does not even import click when it is run as the console script or as
``python -m pvdrun.cli``: :mod:`pvdrun.fastlaunch` recognises it first and calls the same
launcher (:mod:`pvdrun.launch_core`); everything else comes here (``main``).

Exit statuses: one table for every subcommand, in pvdrun/errors.py (shown in
docs/cli.md).
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # python -m pvdrun.cli: the fast path first, before click is imported
    from pvdrun.fastlaunch import launch_fast

    launch_fast()  # execs or exits for the launcher form; returns for anything else

import importlib

import click

from pvdrun.commands.common import standalone
from pvdrun.fastlaunch import leave_outer_scope
from pvdrun.launch_args import is_launcher_form

# name -> "module:attribute" of a click command, imported on first use.
SUBCOMMANDS: dict[str, str] = {
    "run": "pvdrun.launch:run_command",
    "exec": "pvdrun.launch:exec_command",
    "list": "pvdrun.commands.observe:list_command",
    "show": "pvdrun.commands.observe:show_command",
    "monitor": "pvdrun.commands.observe:monitor_command",
    "daemon": "pvdrun.commands.daemon:daemon_command",
    "lab": "pvdrun.commands.lab:lab",
    "shim-path": "pvdrun.commands.shim_path:shim_path_command",
    "install-service": "pvdrun.commands.install_service:install_service_command",
    "resolve": "pvdrun.commands.resolve:resolve_command",
    "which": "pvdrun.commands.process:which_command",
    "pids": "pvdrun.commands.process:pids_command",
    "verify": "pvdrun.verify_command:verify_command",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on demand.

    It also accepts the launcher form ``pvdrun --pvd NAME CMD...`` by
    rewriting it to ``pvdrun run --pvd NAME CMD...``.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("pvdrun"):
                return None  # not built yet: behaves as an unknown command
            raise
        return getattr(module, attr)

    def main(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        leave_outer_scope()
        standalone(lambda: super(LazyGroup, self).main(*args, **kwargs), "pvdrun")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if is_launcher_form(args):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pvdrun")
@click.option("-v", "--verbose", count=True,
              help="Say on stderr what pvdrun finds and does (-v), and why (-vv).  The launcher "
                   "takes -v itself: pvdrun --pvd NAME -v CMD.")
def main(verbose: int) -> None:
    """Run programs inside one Provisioning Domain (PvD), and observe PvDs.

    \b
    pvdrun --pvd NAME [--] CMD [ARGS...]   run CMD scoped to the PvD NAME
    pvdrun exec NAME CMD                   the same, as ip netns exec NAME CMD
    pvdrun --pvd null CMD                  run CMD with no network at all
    pvdrun list | show NAME | monitor      observe the host's PvDs
    pvdrun resolve --pvd NAME HOST         resolve HOST with that PvD's DNS only
    pvdrun verify --pvd NAME CMD           run CMD in NAME, prove nothing left NAME
    pvdrun which PID | pids NAME           the PvD of a process, the processes of a PvD
    pvdrun daemon                          run pvdd, the PvD daemon (also: pvdd)
    pvdrun install-service                 write pvdd's systemd unit
    pvdrun lab up --scenario 1|2|3         build a multihomed test network
    pvdrun shim-path                       print the preload library's path

    NAME is an interface name, a PvD ID, a configured name, or a kind alias
    (wifi, ethernet, cellular, vpn).  Every packet and DNS query of CMD and
    of its children stays in that PvD, or fails.  See
    https://github.com/pvdrun/pvdrun/blob/main/docs/cli.md
    """
    if verbose:
        import logging

        logging.basicConfig(level=logging.INFO if verbose == 1 else logging.DEBUG, stream=sys.stderr,
                            format="pvdrun: %(message)s")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
