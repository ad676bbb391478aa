"""Starting pvdd (`pvdrun daemon`) inside the bench's client namespace."""
from __future__ import annotations

import os
import socket
import subprocess

from pvdbench.context import BenchContext
from pvdbench.figure import NotMeasured
from pvdbench.proc import in_netns, run, stop_process, wait_for


def daemon_available(ctx: BenchContext) -> None:
    """NotMeasured unless `pvdrun daemon` exists in the installed package."""
    proc = run([ctx.pvdrun_bin(), "daemon", "--help"], check=False)
    if proc.returncode != 0:
        raise NotMeasured("pvdd (`pvdrun daemon`) is not in the installed package yet: "
                          + (proc.stderr.strip().splitlines() or ["no output"])[-1])


def socket_answers(path: str) -> bool:
    """True once something accepts connections on the Unix socket at path."""
    if not os.path.exists(path):
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


class RunningDaemon:
    """pvdd in a namespace with its socket in the bench's work directory; a context manager."""

    def __init__(self, ctx: BenchContext, netns: str, tag: str, config: str | None = None,
                 pinned: bool = False) -> None:
        daemon_available(ctx)
        self.ctx = ctx
        self.config = config or ctx.empty_config()
        self.pinned = pinned
        self.path = os.path.join(ctx.lab.workdir, f"pvdd-{tag}.sock")
        self.log_path = os.path.join(ctx.lab.workdir, f"pvdd-{tag}.log")
        self.netns = netns
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "RunningDaemon":
        help_text = run([self.ctx.pvdrun_bin(), "daemon", "--help"]).stdout
        argv = [*(self.ctx.lab.pin_prefix() if self.pinned else []), self.ctx.pvdrun_bin(), "daemon"]
        if "--socket" in help_text:
            argv += ["--socket", self.path]
        if "--config" in help_text:
            argv += ["--config", self.config]
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.proc = self.ctx.lab.start(in_netns(self.netns, argv, {**self.ctx.pvdrun_env(self.path), "PVDRUN_CONFIG": self.config}),
                                       stdout=log, stderr=subprocess.STDOUT)
        log.close()
        try:
            wait_for(lambda: socket_answers(self.path) or self.proc.poll() is not None, 30,
                     "pvdd's socket")
        except TimeoutError as exc:
            self.__exit__()
            raise NotMeasured(f"pvdd did not open its socket: {exc}") from exc
        if self.proc.poll() is not None:
            raise NotMeasured(f"pvdd exited {self.proc.returncode}: {self.log_tail()}")
        return self

    def log_tail(self) -> str:
        """Last lines pvdd printed."""
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return " | ".join(handle.read().strip().splitlines()[-3:])

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            if self.proc in self.ctx.lab.processes:
                self.ctx.lab.processes.remove(self.proc)
