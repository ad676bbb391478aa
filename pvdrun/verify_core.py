"""``pvdrun verify``'s words to its exit, without click (the console script's fast path,
:mod:`pvdrun.fastlaunch`, runs :func:`run` directly; the click command,
:mod:`pvdrun.verify_command`, for its help and completion: a verified ``true`` must cost little
more than a launch).

The program is launched exactly as ``pvdrun --pvd NAME CMD`` would be
(:func:`pvdrun.launch_core.prepare`, then :func:`~pvdrun.launch_core.enter_and_exec` in a
child), with the shim's trace on and, where it can be, inside a watch.

The watch is made before the child exists and the child enters it before it execs, so the
first packet of CMD is already counted; the PvD is looked up before the watch too, so
pvdrun's own discovery (Router Solicitations on every link) is not counted against CMD.
As root the watch is made here; for a user, pvdd makes it (the child asks pvdd to move it in,
as for strict mode); without either, the link check is off and the report says why.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from typing import Callable, NoReturn, Protocol, Sequence

from pvdrun.commands.common import fail, fail_with
from pvdrun.daemon.protocol import DaemonError
from pvdrun.errors import EXIT_CANNOT_HONOUR, EXIT_FAILED, EXIT_OK, EXIT_USAGE, PvdrunError
from pvdrun.launch_args import LaunchArgs, LaunchUsageError, parse_verify
from pvdrun.launch_core import Prepared, enter_and_exec, prepare
from pvdrun.model import HANDLE_NULL, NULL_PVD_NAME, Pvd
from pvdrun.verify import trace as tracefile
from pvdrun.verify.linkwatch import LinkWatch, WatchError
from pvdrun.verify.nftwatch import Flow, Seen
from pvdrun.verify.report import Links, Outcome, Report

FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class VerifyRefused(PvdrunError):
    """The program was not run: the watch it needed cannot be entered (exit 4)."""

    exit_status = EXIT_CANNOT_HONOUR


class Watcher(Protocol):
    def enter_self(self) -> None: ...

    def finish(self) -> tuple[Seen, list[int]]: ...


class LocalWatcher:
    """A watch made in this process (root)."""

    def __init__(self, watch: LinkWatch) -> None:
        self.watch = watch

    def enter_self(self) -> None:
        self.watch.enter(os.getpid())

    def finish(self) -> tuple[Seen, list[int]]:
        try:
            seen = self.watch.read()
        finally:
            ended = self.watch.close(free=False)  # verify exits next
        return seen, ended


class PvddWatcher:
    """A watch pvdd made for this connection (a user's verify)."""

    def __init__(self, socket_path: str | None) -> None:
        from pvdrun.daemon.protocol import Client

        self.socket_path = socket_path
        self.client = Client(socket_path)
        self.token = str(self.client.request("watch").get("token", ""))

    def enter_self(self) -> None:
        from pvdrun.daemon.protocol import Client

        with Client(self.socket_path) as client:
            client.request("watch_enter", token=self.token)

    def finish(self) -> tuple[Seen, list[int]]:
        with self.client:
            reply = self.client.request("watch_end", token=self.token)
        flows = [Flow(**item) for item in reply.get("flows", []) if isinstance(item, dict)]
        ended = [pid for pid in reply.get("ended", []) if isinstance(pid, int)]
        return Seen(flows, int(reply.get("loopback_packets", 0))), ended


def open_watcher(ready: Prepared) -> tuple[Watcher | None, str | None]:
    """The watch for this run, or None and why there is none."""
    from pvdrun.daemon.protocol import DaemonUnavailable

    if ready.strict:
        return None, ("strict mode moves the program into the PvD's cgroup, where the kernel "
                      "holds it; the watch cannot follow it there")
    if os.geteuid() == 0:
        try:
            return LocalWatcher(LinkWatch.open()), None
        except WatchError as exc:
            return None, str(exc)
    if ready.found.no_daemon:
        return None, "needs root, or pvdd (--no-daemon)"
    try:
        return PvddWatcher(ready.found.socket_path), None
    except DaemonUnavailable:
        return None, "needs root, or pvdd to make the watch"
    except DaemonError as exc:
        return None, f"pvdd made no watch: {exc}"


def _child(ready: Prepared, watcher: Watcher | None, report_w: int) -> None:
    """In the child: enter the watch, then launch; never returns to the caller's code."""
    code = 1
    try:
        if watcher is not None:
            try:
                watcher.enter_self()
            except Exception as exc:  # noqa: BLE001 - said to the parent, which exits 4
                os.write(report_w, f"cannot enter the watch: {exc}".encode())
                os._exit(EXIT_CANNOT_HONOUR)
        enter_and_exec(ready)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os._exit(code)


def _outcome(argv: list[str], pid: int, status: int) -> Outcome:
    if os.WIFSIGNALED(status):
        return Outcome(argv, pid, None, signal.Signals(os.WTERMSIG(status)).name)
    return Outcome(argv, pid, os.waitstatus_to_exitcode(status), None)


def _wait(pid: int) -> int:
    """Wait for ``pid``, passing SIGTERM, SIGHUP and SIGQUIT on to it; Ctrl-C reaches it from
    the terminal, and verify stays to report."""
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except OSError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while True:
            try:
                return os.waitpid(pid, 0)[1]
            except InterruptedError:
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def verify(found: LaunchArgs) -> Report:
    """Run ``found``'s command verified; its report.  Exits as the launcher does when the
    launch cannot be prepared; raises VerifyRefused when the watch cannot be entered."""
    ready = prepare(found)
    pvd = ready.pvd if ready.pvd is not None else Pvd(pvd_id=NULL_PVD_NAME, handle=HANDLE_NULL)
    watcher, why = open_watcher(ready)
    directory, path = tracefile.private_file()
    ready.env[tracefile.TRACE_ENV] = path
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
        if pid == 0:
            os.close(report_r)
            _child(ready, watcher, report_w)
        os.close(report_w)
        status = _wait(pid)
        refused = b""
        while chunk := os.read(report_r, 4096):
            refused += chunk
        os.close(report_r)
        links = Links(watched=watcher is not None, why=why)
        if watcher is not None:
            try:
                links.seen, links.ended = watcher.finish()
            except (WatchError, DaemonError, OSError) as exc:
                links = Links(watched=False, why=f"the watch could not be read: {exc}")
        if refused:
            raise VerifyRefused(refused.decode(errors="replace"))
        found_trace = tracefile.read(path)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return Report.build(found.pvd_name or pvd.pvd_id, pvd, _outcome(list(found.command), pid, status),
                        found_trace, links)


def run(words: Sequence[str], show_help: Callable[[], NoReturn]) -> NoReturn:
    """Parse ``words``, run the program verified, write the report; exit 0 when nothing left
    the PvD, 1 when something did, else as the launcher."""
    try:
        found = parse_verify(words)
    except LaunchUsageError as exc:
        fail(str(exc).replace("pvdrun --pvd NAME", "pvdrun verify --pvd NAME"), EXIT_USAGE, "pvdrun verify")
    if found.launch.help:
        show_help()
    try:
        report = verify(found.launch)
    except PvdrunError as exc:
        fail_with(exc)
    document = report.to_dict()
    if found.report:
        from pvdrun.atomicfile import replace_file

        try:
            replace_file(found.report, json.dumps(document, indent=1) + "\n")
        except OSError as exc:
            sys.stderr.write(f"pvdrun: cannot write the report to {found.report}: {exc.strerror}\n")
    if found.json:
        sys.stdout.write(json.dumps(document) + "\n")
    else:
        sys.stderr.write("".join(line + "\n" for line in report.lines()))
    sys.stdout.flush()
    sys.exit(EXIT_FAILED if report.left else EXIT_OK)
