"""``pvdrun --pvd NAME [--strict] [--] CMD [ARGS...]``: run CMD scoped to one PvD (R3, R13, R20).

The launcher finds the PvD (pvdd, else a one-shot discovery), puts the PvD's scope line in
``PVDRUN_SCOPE`` and the shim in ``LD_PRELOAD``, and execs CMD: same pid, CMD's own exit
status and signals, standard streams untouched.  Children inherit the environment, hence the
scope (R20).  In strict mode (``--strict``, or a program the shim cannot scope: static, Go,
set-user-ID, file capabilities) it first moves itself into the PvD's cgroup, whose BPF
programs hold every socket of CMD and its children (pvdrun/strict/); when strict mode is not
available such a program is refused, saying what is missing.

This module is the launcher itself, for both of its faces: the click command
(:mod:`pvdrun.launch`, ``pvdrun run``) and the console script's fast path
(:mod:`pvdrun.fastlaunch`), which calls :func:`launch` without importing click.  So nothing
here imports click, pyroute2, dnspython or cffi at the top: what a launch through pvdd does
not need (discovery, strict mode, the private resolv.conf, click for an error line) is
imported where it is used.
"""
from __future__ import annotations

import errno
import os
import sys
from dataclasses import dataclass
from typing import Callable, NoReturn, Sequence

from pvdrun.commands.common import fail, fail_with, pvd_named, say
from pvdrun.errors import (EXIT_CANNOT_HONOUR, EXIT_MISSING_PREREQ, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND,
                           EXIT_UNKNOWN_PVD, EXIT_USAGE)
from pvdrun.launch_args import LaunchArgs, LaunchUsageError
from pvdrun.launch_rules import (PROXY_VARIABLES, auto_environment, launch_note, proxy_environment, refusal,
                                 scope_line)
from pvdrun.model import (AUTO_ENV, AUTO_PVD_NAME, HANDLE_NULL, NULL_PVD_NAME, SCOPE_ENV, SOCKET_ENV, Pvd,
                          default_of, null_scope)
from pvdrun.pathsearch import ProgramNotFound, find_program
from pvdrun.shim import PRELOAD_ENV, library_path, preload_entries


def pvd_for(name: str, socket_path: str | None, config_path: str | None = None,
            no_daemon: bool = False) -> Pvd | None:
    """The PvD ``name`` (None for the null PvD); exits 3 when unknown or ambiguous, 4 when the
    shim could not hold it (and as :func:`pvdrun.commands.common.pvd_named` when the lookup
    fails).  ``config_path`` or ``no_daemon``: a one-shot discovery, pvdd not asked."""
    if name == NULL_PVD_NAME:
        return None
    pvd = pvd_named(name, socket_path, config_path=config_path, no_daemon=no_daemon)
    why = refusal(pvd)
    if why:
        fail(why, EXIT_CANNOT_HONOUR)
    return pvd


def auto_launch(found: LaunchArgs) -> tuple[Pvd, str, str]:
    """``--pvd auto``: the default PvD, its scope line (PVDRUN_SCOPE) and the auto PvDs
    (PVDRUN_AUTO: every PvD the shim can scope, one scope line with its claimed zones a line).
    Exits 3 when there is no default PvD, 4 when the default cannot be honoured or the shim
    could not hold them all."""
    from pvdrun.commands.common import table_of

    pvds = table_of(found.socket_path, found.config_path, found.no_daemon)
    default = default_of(pvds)
    if default is None:
        fail("no default PvD: --pvd auto needs one for the names no PvD claims", EXIT_UNKNOWN_PVD)
    why = refusal(default)
    if why:
        fail(why, EXIT_CANNOT_HONOUR)
    scope = scope_line_of(default)
    try:
        members, skipped, value = auto_environment(pvds)
    except ValueError as exc:
        fail(f"cannot honour --pvd auto: {exc}", EXIT_CANNOT_HONOUR)
    if found.verbose:
        say(f"pvdrun: --pvd auto: default PvD {default.pvd_id}, scope line: {scope}")
        for pvd, zones in members:
            say(f"pvdrun: --pvd auto: PvD {pvd.pvd_id} claims " + (", ".join(zones) if zones else "no zone"))
        for pvd_id, reason in skipped:
            say(f"pvdrun: --pvd auto: not PvD {pvd_id}: {reason}")
    return default, scope, value


def scope_line_for(name: str, socket_path: str | None) -> str:
    """The scope line of the PvD ``name`` (exits as :func:`pvd_for`)."""
    return scope_line_of(pvd_for(name, socket_path))


def scope_line_of(pvd: Pvd | None) -> str:
    """The scope line of ``pvd`` (None: the null PvD); exits 4 when it is too large."""
    if pvd is None:
        return null_scope()
    try:
        return scope_line(pvd)
    except ValueError as exc:
        fail(str(exc), EXIT_CANNOT_HONOUR)


def private_resolv_conf(pvd: Pvd | None) -> None:
    """As root, give CMD a private /etc/resolv.conf naming only the PvD's servers,
    so that programs reading it themselves (dig, host, nslookup) ask the PvD's resolvers.

    Without root this cannot be done; getaddrinfo users are still scoped by the shim
    (docs/resolution.md).  ``PVDRUN_NO_RESOLV_CONF=1`` skips the step.
    """
    if os.geteuid() != 0 or os.environ.get("PVDRUN_NO_RESOLV_CONF") == "1":
        return
    from pvdrun.resolve.resolvconf import ResolvConfError, enter_private_resolv_conf

    target = pvd if pvd is not None else Pvd(pvd_id=NULL_PVD_NAME, handle=HANDLE_NULL)
    try:
        enter_private_resolv_conf(target)
    except ResolvConfError as exc:
        fail(f"cannot give the program the PvD's resolv.conf: {exc}", EXIT_CANNOT_HONOUR)


def enter_strict(name: str, pvd: Pvd | None, socket_path: str | None, unscopable: Exception | None) -> str:
    """Move this process into the PvD's strict cgroup (its path); exits 4 when it cannot (for a
    program the shim cannot scope: today's refusal, saying what strict mode lacks)."""
    from pvdrun.commands.strict_enter import StrictRefused, enter

    try:
        where = enter(name, pvd, socket_path)
    except StrictRefused as exc:
        if unscopable is not None:
            fail(f"refusing to run unscoped: {unscopable}; and {exc}", EXIT_CANNOT_HONOUR)
        fail_with(exc)
    if unscopable is not None:
        say(f"pvdrun: {unscopable}; running it in strict mode (the kernel holds it in the PvD)")
    return where


def preload_value(library: str, existing: str | None) -> str:
    """Our library first, then whatever the user preloaded already (without a duplicate of ours)."""
    others = [item for item in preload_entries(existing) if item != library]
    return ":".join([library, *others])


def scoped_environment(scope: str, socket_path: str | None, library: str) -> dict[str, str]:
    """The environment CMD runs with: the caller's, plus the scope and the shim."""
    env = dict(os.environ)
    env[SCOPE_ENV] = scope
    if socket_path:
        env[SOCKET_ENV] = socket_path
    env[PRELOAD_ENV] = preload_value(library, env.get(PRELOAD_ENV))
    return env


def run_launcher(words: Sequence[str], parser: Callable[[Sequence[str]], LaunchArgs],
                 show_help: Callable[[], NoReturn]) -> NoReturn:
    """Parse ``words`` with ``parser`` (pvdrun/launch_args.py) and launch; a usage error is one
    line and exit 2, ``-h`` calls ``show_help``."""
    try:
        found = parser(words)
    except LaunchUsageError as exc:
        fail(f"{exc}", EXIT_USAGE)
    if found.help:
        show_help()
    launch(found)


@dataclass
class Prepared:
    """A launch decided and not yet done: what :func:`enter_and_exec` execs, and how."""

    found: LaunchArgs
    program: str
    env: dict[str, str]
    pvd: Pvd | None
    unscopable: Exception | None

    @property
    def strict(self) -> bool:
        """Whether the launch enters the PvD's strict cgroup first."""
        return bool(self.found.strict) or self.unscopable is not None


def prepare(found: LaunchArgs) -> Prepared:
    """Find the program, the shim and the PvD of ``found``; exits with one line and the status
    docs/cli.md gives when one is missing or cannot be honoured."""
    from pvdrun.shim.preloadable import NotPreloadable, check_preloadable

    argv = list(found.command)
    assert found.pvd_name is not None and argv, "launch_args guarantees a PvD and a command"
    env_path = os.environ.get("PATH")
    try:
        program = find_program(argv[0], env_path)
    except ProgramNotFound as exc:
        fail_with(exc)
    unscopable: NotPreloadable | None = None
    try:
        check_preloadable(program, env_path)
    except NotPreloadable as exc:
        unscopable = exc
    except OSError as exc:
        fail(f"{program}: {exc.strerror}", EXIT_NOT_EXECUTABLE)
    try:
        library = library_path()
    except FileNotFoundError as exc:
        fail(str(exc), EXIT_MISSING_PREREQ)
    if unscopable is not None and found.strict is False:
        fail(f"refusing to run unscoped: {unscopable} (--no-strict)", EXIT_CANNOT_HONOUR)
    if found.pvd_name == AUTO_PVD_NAME:
        # One PvD per name and per destination: strict mode (one PvD's cgroup) cannot hold that.
        if unscopable is not None:
            fail(f"refusing to run unscoped: {unscopable} (strict mode holds one PvD, not --pvd auto)",
                 EXIT_CANNOT_HONOUR)
        if found.strict:
            fail("--strict holds a program in one PvD: not with --pvd auto", EXIT_CANNOT_HONOUR)
        default, scope, value = auto_launch(found)
        env = scoped_environment(scope, found.socket_path, library)
        env[AUTO_ENV] = value
        return Prepared(found, program, env, default, None)
    pvd = pvd_for(found.pvd_name, found.socket_path, found.config_path, found.no_daemon)
    scope = scope_line_of(pvd)
    env = scoped_environment(scope, found.socket_path, library)
    env.pop(AUTO_ENV, None)  # an outer --pvd auto does not reach into this PvD
    if pvd is not None:
        note = launch_note(pvd)
        if note:
            say(note)
        proxies = proxy_environment(pvd) if found.proxy_env else {}
        if proxies and not any(os.environ.get(name) for name in PROXY_VARIABLES):
            env.update(proxies)
            if found.verbose:
                say(f"pvdrun: the PvD's proxy: {proxies['https_proxy']} (--no-proxy-env: none)")
    if found.verbose:
        say(f"pvdrun: PvD {pvd.pvd_id if pvd else NULL_PVD_NAME}, scope line: {scope}")
    return Prepared(found, program, env, pvd, unscopable)


def enter_and_exec(ready: Prepared) -> NoReturn:
    """Enter strict mode when the launch needs it, give the program its resolv.conf, exec it."""
    found = ready.found
    if ready.strict:
        assert found.pvd_name is not None
        where = enter_strict(found.pvd_name, ready.pvd, found.socket_path, ready.unscopable)
        if found.verbose:
            say(f"pvdrun: strict mode: in the cgroup {where}")
    private_resolv_conf(ready.pvd)
    if found.verbose:
        say(f"pvdrun: exec {ready.program} with {PRELOAD_ENV}={ready.env[PRELOAD_ENV]}")
    sys.stdout.flush()
    sys.stderr.flush()
    argv = list(found.command)
    try:
        os.execve(ready.program, argv, ready.env)
    except OSError as exc:
        status = EXIT_NOT_FOUND if exc.errno == errno.ENOENT else EXIT_NOT_EXECUTABLE
        fail(f"{argv[0]}: {exc.strerror}", status)


def launch(found: LaunchArgs) -> NoReturn:
    """Exec the command of ``found`` scoped to its PvD, or exit with one line and the status
    docs/cli.md gives."""
    enter_and_exec(prepare(found))
