"""What every ``pvdrun`` subcommand does the same way: fail with one line and an exit
status, and find the PvD that a ``--pvd NAME`` option names.

Only the command line imports this (:mod:`pvdrun.launch_core` and the subcommands in this
package); libraries raise, and this is where an error becomes an exit status.  It imports
click only to write a line: the launcher's fast path (:mod:`pvdrun.fastlaunch`), which runs
without click, loads it only when it has something to say.
"""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Callable, NoReturn

from pvdrun.discovery.names import PvdLookupError
from pvdrun.errors import DEBUG_ENV, EXIT_FAILED, EXIT_MISSING_PREREQ, EXIT_NO_DAEMON, PvdrunError

if TYPE_CHECKING:
    from pvdrun.model import Pvd


def say(line: str) -> None:
    """One line on stderr, as ``click.echo(line, err=True)`` writes it."""
    import click

    click.echo(line, err=True)


def _usage_line(error: Any, file: Any = None) -> None:
    """click's UsageError.show, in one line: ``COMMAND: what is wrong (COMMAND --help shows the
    usage)``; the exit status stays click's, 2."""
    import click

    path = error.ctx.command_path if error.ctx is not None else "pvdrun"
    message = error.format_message().rstrip(".")
    click.echo(f"{path}: {message} ({path} --help shows the usage)", err=True, file=file)


def standalone(main: Callable[[], object], name: str) -> None:
    """Run a click command's standalone ``main`` with the command line's two rules: a usage
    error is one line (exit 2), and an unexpected exception one line and exit 1, never a
    traceback (``PVDRUN_DEBUG=1`` shows it)."""
    import click

    click.UsageError.show = _usage_line  # type: ignore[method-assign]
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, never a traceback
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        say(f"{name}: internal error: {type(exc).__name__}: {exc} ({DEBUG_ENV}=1 shows where)")
        sys.exit(EXIT_FAILED)


def fail(message: str, status: int, command: str = "pvdrun") -> NoReturn:
    """``command: message`` on stderr, then exit with ``status``."""
    say(f"{command}: {message}")
    sys.exit(status)


def fail_with(error: PvdrunError, command: str = "pvdrun") -> NoReturn:
    """Fail with the message and the exit status an error carries."""
    fail(str(error), error.exit_status, command)


def require_daemon(socket_path: str) -> None:
    """An explicit ``--socket`` must answer; exits 6 when pvdd does not."""
    from pvdrun.daemon.protocol import Client, DaemonUnavailable

    try:
        Client(socket_path).close()
    except DaemonUnavailable as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        fail(f"pvdd does not answer on {socket_path}: {why}", EXIT_NO_DAEMON)


def pvd_named(name: str, socket_path: str | None, *, config_path: str | None = None,
              no_daemon: bool = False) -> "Pvd":
    """The PvD ``name`` (not "null") means, from pvdd or a one-shot discovery (always one with
    ``no_daemon`` or a ``config_path``).

    Exits 3 when the name is unknown or ambiguous, 6 when an explicit ``socket_path`` or
    pvdd does not answer, 7 for a malformed configuration, 5 when discovery failed."""
    from pvdrun.api import lookup

    use_daemon = not no_daemon and config_path is None
    if socket_path is not None and use_daemon:
        require_daemon(socket_path)
    try:
        return lookup(name, socket_path, use_daemon=use_daemon, config_path=config_path)
    except PvdLookupError as exc:
        fail(exc.sentence + lookup_hint(exc, use_daemon, socket_path), exc.exit_status)
    except Exception as exc:  # noqa: BLE001 - said in one line, with its status
        _fail_lookup(exc, f"cannot look up PvD {name!r}")


def table_of(socket_path: str | None, config_path: str | None = None, no_daemon: bool = False) -> "list[Pvd]":
    """Every PvD, from pvdd or a one-shot discovery (always one with ``no_daemon`` or a
    ``config_path``); exits as :func:`pvd_named` does."""
    from pvdrun.api import list_pvds

    use_daemon = not no_daemon and config_path is None
    if socket_path is not None and use_daemon:
        require_daemon(socket_path)
    try:
        if config_path is not None:
            from pvdrun.discovery.engine import discover

            return discover(config_path=config_path)
        return list_pvds(socket_path, use_daemon=use_daemon)
    except Exception as exc:  # noqa: BLE001 - said in one line, with its status
        _fail_lookup(exc, "cannot list the PvDs")


def _fail_lookup(exc: Exception, what: str) -> NoReturn:
    """A failed lookup or listing: a malformed configuration file as itself (7), pvdd's
    failure (6) and discovery's (5) in one line saying ``what``."""
    if isinstance(exc, PvdrunError):  # a malformed configuration file, read by a one-shot discovery
        fail_with(exc)
    status = EXIT_NO_DAEMON if type(exc).__module__.startswith("pvdrun.daemon") else EXIT_MISSING_PREREQ
    fail(f"{what}: {exc}", status)


def complete_pvd_names(ctx: object, param: object, incomplete: str) -> list[str]:
    """The PvD names that start with ``incomplete``, for shell completion (click's
    ``shell_complete``): pvdd's table, else the kernel's, never waiting for a router."""
    os.environ["PVDRUN_NO_RS"] = "1"  # this process only: a completion never solicits
    try:
        from pvdrun.api import list_pvds

        pvds = list_pvds()
    except Exception:  # noqa: BLE001 - a completion that cannot list offers nothing
        return []
    names = {"null"} | {name for pvd in pvds for name in (*pvd.names, pvd.pvd_id)}
    return sorted(name for name in names if name.startswith(incomplete))


def lookup_hint(error: PvdLookupError, use_daemon: bool, socket_path: str | None) -> str:
    """What may explain a name that means no PvD, to add to the error's sentence ("" when
    nothing does): an interface of that name that is down or has no address, or PvDs that only
    Router Advertisements announce, which a discovery without root does not hear."""
    if error.ambiguous:
        return ""
    flags_path = f"/sys/class/net/{error.name}/flags"
    if "/" not in error.name and os.path.exists(flags_path):
        try:
            with open(flags_path, encoding="ascii") as handle:
                up = int(handle.read().strip(), 16) & 0x1  # IFF_UP
        except (OSError, ValueError):
            up = 1
        return (f" (interface {error.name} is down: `ip link set {error.name} up`)" if not up else
                f" (interface {error.name} is up but has no PvD: no address, or not yet configured)")
    if os.geteuid() != 0 and not (use_daemon and _pvdd_answers(socket_path)):
        return (" (without pvdd and as a user, Router Advertisements are not heard, so PvDs that "
                "only routers announce are missing: run pvdd, `sudo pvdd` or its service)")
    return ""


def _pvdd_answers(socket_path: str | None) -> bool:
    from pvdrun.daemon.protocol import Client, DaemonUnavailable

    try:
        Client(socket_path).close()
    except DaemonUnavailable:
        return False
    return True
