"""Running commands for the bench: checked runs, namespace wrappers, timing."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence


class CommandFailed(RuntimeError):
    """A command the bench depends on exited non-zero."""


def run(argv: Sequence[str], *, timeout: float = 120.0, env: dict[str, str] | None = None,
        check: bool = True, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run argv, capture its output as text, and raise CommandFailed on failure."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=cwd)
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise CommandFailed(f"{' '.join(argv)} exited {proc.returncode}: {' | '.join(tail)}")
    return proc


def in_netns(netns: str, argv: Sequence[str], env_vars: dict[str, str] | None = None) -> list[str]:
    """argv run inside a named namespace; env_vars are set for argv only (not for ip itself)."""
    prefix = ["ip", "netns", "exec", netns]
    if env_vars:
        prefix += ["env", *[f"{key}={value}" for key, value in env_vars.items()]]
    return [*prefix, *argv]


def timed_run(argv: Sequence[str], *, timeout: float = 60.0) -> float:
    """Wall-clock seconds one run of argv takes (it must succeed)."""
    start = time.perf_counter()
    run(argv, timeout=timeout)
    return time.perf_counter() - start


def require_command(name: str) -> str:
    """The path of a command, or raise FileNotFoundError naming it."""
    path = shutil.which(name)
    if not path:
        raise FileNotFoundError(f"{name} is not installed (bench/deps.sh installs it)")
    return path


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str], grace: float = 2.0) -> None:
    """Terminate one process we started (by its own pid), then kill it if it lingers."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02) -> None:  # noqa: ANN001
    """Poll predicate() until true; raise TimeoutError naming what we waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def devnull_env() -> dict[str, str]:
    """A copy of our environment without preload variables (references run unpreloaded)."""
    env = dict(os.environ)
    for key in ("LD_PRELOAD", "PVDRUN_SCOPE"):
        env.pop(key, None)
    return env
