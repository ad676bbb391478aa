"""``pvdrun daemon``: run pvdd in the foreground (systemd: ``pvdrun install-service``), or
remove what it keeps (``--cleanup``).  The console script ``pvdd`` is the same command under
its own name (:func:`pvdd_main`), so that ``ps`` shows pvdd."""
from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

import click

from pvdrun import sdnotify
from pvdrun.commands.common import fail, standalone
from pvdrun.daemon.protocol import socket_path
from pvdrun.errors import EXIT_FAILED, EXIT_MISSING_PREREQ, EXIT_PVDD_RUNNING

#: ``--cleanup`` could not remove everything (the message says what is left).
EXIT_CLEANUP_INCOMPLETE = EXIT_FAILED
#: pvdd not started: another pvdd already answers on the socket.
EXIT_SOCKET_IN_USE = EXIT_FAILED


def _fail(message: str, status: int) -> NoReturn:
    ctx = click.get_current_context(silent=True)
    fail(message, status, ctx.command_path if ctx is not None else "pvdrun daemon")


def _cleanup(path: str) -> None:
    """--cleanup: remove pvdd's kept state, unless a pvdd answers on ``path``."""
    from pvdrun.daemon.server import SocketInUse, pvdd_answers
    from pvdrun.routing.cleanup import CleanupError, remove_everything
    from pvdrun.routing.sysctls import record_path

    try:
        running = pvdd_answers(path)
    except SocketInUse:  # not a socket: no pvdd answers there
        running = False
    if running:
        _fail(f"a pvdd is running on {path}; stop it first (its rules would come back)",
              EXIT_PVDD_RUNNING)
    if os.geteuid() != 0:
        _fail("--cleanup needs root (it deletes rules, routes and an nftables table)",
              EXIT_MISSING_PREREQ)
    try:
        removed = remove_everything(record_path(path))
    except CleanupError as exc:
        _fail(str(exc), EXIT_CLEANUP_INCOMPLETE)
    except OSError as exc:
        _fail(f"cannot remove pvdd's state: {exc}", EXIT_CLEANUP_INCOMPLETE)
    click.echo(f"removed {removed.rules_and_routes} rules and routes, {removed.addresses} addresses"
               + (", the nftables table inet pvdd" if removed.nft_table else "")
               + "".join(f", {name} back to {value}" for name, value in removed.sysctls.items()))
    _cleanup_strict()


def _cleanup_strict() -> None:
    """--cleanup's second part: this namespace's empty strict cgroups go (and those of
    namespaces that are gone); the populated ones stay, held with nowhere to send."""
    from pvdrun.strict import cgroups
    from pvdrun.strict.holder import StrictCgroups

    try:
        held = StrictCgroups.here()
    except OSError:  # no cgroup2 hierarchy at all: no strict cgroups either
        return
    before = len(cgroups.children(held.base))
    kept = held.stop()
    if before > len(kept):
        click.echo(f"removed {before - len(kept)} strict cgroups")
    for path in kept:
        click.echo(f"kept strict cgroup {path}: processes still run in it (held, with nowhere to send)")


@click.command("daemon")
@click.option("--socket", "socket_opt", metavar="PATH", default=None,
              help="Unix socket to serve (default $PVDRUN_SOCKET or /run/pvd/pvdd.sock).")
@click.option("--config", "config_opt", metavar="PATH", default=None,
              help="PvD configuration file (default $PVDRUN_CONFIG or /etc/pvd/pvd.toml).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--cleanup", is_flag=True,
              help="Do not run: remove everything pvdd keeps in this network namespace (rules, "
                   "tables, routes and addresses tagged proto 153, the nftables table inet pvdd), "
                   "set the fwmark_reflect sysctls back to what pvdd found, and exit 0. Refused (exit 11) while a pvdd answers on the socket.")
def daemon_command(socket_opt: str | None, config_opt: str | None, log_level: str,
                   cleanup: bool) -> None:
    """Run pvdd: keep the PvD table current and serve it on a Unix socket.

    As root pvdd also gives every PvD its own routing table, ip rules (proto 153) and
    socket mark. SIGHUP re-reads the configuration file. SIGTERM or SIGINT stops pvdd but
    keeps its routing state, less the mark lookup rules, and its nftables table then drops
    every mark: a socket tied to a PvD fails instead of leaking into another PvD until a
    new pvdd takes over (with the same marks). --cleanup removes that state for good
    (https://github.com/pvdrun/pvdrun/blob/main/docs/routing.md).

    The console script pvdd is this command under its own name (pvdd --help); run by
    systemd (Type=notify) it says READY=1 once it serves its socket and STOPPING=1 when it
    stops (pvdrun install-service writes its unit).

    Exit status: 0 success; 1 another pvdd already answers on the socket (with --cleanup:
    something could not be removed); 5 not root where root is needed; 7 malformed
    configuration, or a rule or route of someone else in pvdd's priorities or tables;
    11 --cleanup refused because a pvdd answers on the socket.

    \b
    Examples:
      pvdrun daemon                        # as root, in the foreground
      pvdd                                 # the same
      pvdrun daemon --socket /tmp/p.sock --config ./pvd.toml --log-level debug
      systemctl stop pvdd && pvdrun daemon --cleanup   # retire pvdd for good
    """
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="pvdd: %(levelname)s %(message)s")
    logging.getLogger("pvdrun").setLevel(getattr(logging, log_level.upper()))
    if cleanup:
        _cleanup(socket_path(socket_opt))
        return

    from pvdrun.daemon.server import Pvdd, SocketInUse
    from pvdrun.config import ConfigError, load_config
    from pvdrun.routing.netlink import RoutingConflict

    try:
        config = load_config(config_opt)
    except ConfigError as exc:
        _fail(str(exc), exc.exit_status)
    daemon = Pvdd(socket_path(socket_opt), config, config_path=config_opt)
    try:
        daemon.start()
    except SocketInUse as exc:
        daemon.close()
        _fail(str(exc), EXIT_SOCKET_IN_USE)
    except RoutingConflict as exc:
        daemon.close()
        _fail(str(exc), exc.exit_status)
    except PermissionError as exc:
        daemon.close()
        _fail(f"{exc} (pvdd needs root)", EXIT_MISSING_PREREQ)
    sdnotify.ready(f"serving {len(daemon.pvds)} PvDs on {daemon.socket_path}")
    try:
        daemon.serve_forever()
    finally:
        sdnotify.stopping()
        daemon.close()


def pvdd_main() -> None:
    """The console script ``pvdd``: ``pvdrun daemon`` under its own name.  As the command line's
    last resort, an unexpected exception is one line and exit 1 ($PVDRUN_DEBUG=1: traceback)."""
    standalone(lambda: daemon_command.main(prog_name="pvdd", help_option_names=["-h", "--help"]), "pvdd")
