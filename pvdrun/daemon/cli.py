"""``pvdrun daemon``: run pvdd in the foreground (systemd: contrib/pvdd.service)."""
from __future__ import annotations

import logging
import sys

import click

from pvdrun.cli import EXIT_MISSING_PREREQ
from pvdrun.daemon.protocol import socket_path


@click.command("daemon")
@click.option("--socket", "socket_opt", metavar="PATH", default=None,
              help="Unix socket to serve (default $PVDRUN_SOCKET or /run/pvd/pvdd.sock).")
@click.option("--config", "config_opt", metavar="PATH", default=None,
              help="PvD configuration file (default $PVDRUN_CONFIG or /etc/pvd/pvd.toml).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def daemon_command(socket_opt: str | None, config_opt: str | None, log_level: str) -> None:
    """Run pvdd: keep the PvD table current and serve it on a Unix socket.

    SIGHUP re-reads the configuration file; SIGTERM stops pvdd.
    """
    from pvdrun.daemon.server import Pvdd, SocketInUse
    from pvdrun.discovery.config import EXIT_BAD_CONFIG, ConfigError, load_config
    from pvdrun.routing.netlink import RoutingConflict

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="pvdd: %(levelname)s %(message)s")
    logging.getLogger("pvdrun").setLevel(getattr(logging, log_level.upper()))
    try:
        config = load_config(config_opt)
    except ConfigError as exc:
        click.echo(f"pvdrun daemon: {exc}", err=True)
        sys.exit(EXIT_BAD_CONFIG)
    daemon = Pvdd(socket_path(socket_opt), config, config_path=config_opt)
    try:
        daemon.start()
    except SocketInUse as exc:
        click.echo(f"pvdrun daemon: {exc}", err=True)
        daemon.close()
        sys.exit(1)
    except RoutingConflict as exc:
        click.echo(f"pvdrun daemon: {exc}", err=True)
        daemon.close()
        sys.exit(EXIT_BAD_CONFIG)
    except PermissionError as exc:
        click.echo(f"pvdrun daemon: {exc} (pvdd needs root)", err=True)
        daemon.close()
        sys.exit(EXIT_MISSING_PREREQ)
    try:
        daemon.serve_forever()
    finally:
        daemon.close()
