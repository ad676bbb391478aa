"""``pvdrun which PID`` and ``pvdrun pids NAME`` on real processes: scoped by the shim, held by
strict mode, in no PvD, forging a scope in their environment, another user's; as root and as an
unprivileged user."""
from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Iterator

import pytest

from fixtures.commands import PVDRUN
from fixtures.launch_lab import LaunchLab, launch_lab
from fixtures.unprivileged import User, unprivileged_user  # noqa: F401 - fixture
from pvdrun.errors import EXIT_FAILED, EXIT_MISSING_PREREQ, EXIT_UNKNOWN_PVD, EXIT_USAGE

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab() -> Iterator[LaunchLab]:
    with launch_lab("pp0") as made:
        yield made


def started(lab: LaunchLab, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """``argv`` in the lab's host namespace, running once it has exec'd its last program."""
    full = {**os.environ, "PVDRUN_SOCKET": lab.daemon.socket, **(env or {})}
    proc = subprocess.Popen(["ip", "netns", "exec", lab.net.host, *argv], env=full)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if open(f"/proc/{proc.pid}/comm").read().strip() == "sleep":
                return proc
        except OSError:
            pass
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"{argv} did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(timeout=10)


def which(lab: LaunchLab, pid: int, *extra: str, user: User | None = None) -> subprocess.CompletedProcess:
    return lab.run([PVDRUN, "which", *extra, str(pid)], user)


def test_scoped_by_the_shim(lab: LaunchLab) -> None:
    proc = started(lab, [PVDRUN, "--pvd", "pp0", "sleep", "60"])
    try:
        done = which(lab, proc.pid)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"{proc.pid} (sleep): PvD implicit:pp0: scoped by the shim\n"
        data = json.loads(which(lab, proc.pid, "--json").stdout)
        assert data["pvd_id"] == data["shim_pvd"] == "implicit:pp0" and data["shim_loaded"]
        assert data["strict_pvd"] is None
        pids = lab.run([PVDRUN, "pids", "pp0"])
        assert pids.returncode == 0 and str(proc.pid) in pids.stdout.split(), pids.stderr
    finally:
        stop(proc)
    gone = lab.run([PVDRUN, "pids", "pp0"])
    assert gone.returncode == EXIT_FAILED and gone.stdout == ""
    for how in (["--no-daemon"], ["--config", lab.daemon.config]):  # as every command takes them
        assert lab.run([PVDRUN, "pids", *how, "pp0"], None, PVDRUN_NO_RS="1").returncode == EXIT_FAILED


def test_held_by_strict_mode(lab: LaunchLab) -> None:
    proc = started(lab, [PVDRUN, "--pvd", "pp0", "--strict", "sleep", "60"])
    try:
        if proc.poll() is not None:
            pytest.skip("strict mode unavailable here")
        data = json.loads(which(lab, proc.pid, "--json").stdout)
        assert data["strict_pvd"] == data["pvd_id"] == "implicit:pp0", data
        assert "/pvd-" in data["cgroup"]
        assert str(proc.pid) in lab.run([PVDRUN, "pids", "implicit:pp0"]).stdout.split()
    finally:
        stop(proc)


def test_no_pvd_and_a_forged_scope(lab: LaunchLab) -> None:
    """A process without the shim is in no PvD, whatever its environment claims."""
    forged = "v=1 id=implicit:pp0 handle=7 if=pp0:2"
    proc = started(lab, ["sleep", "60"], {"PVDRUN_SCOPE": forged})
    try:
        done = which(lab, proc.pid)
        assert done.returncode == 0 and "no PvD" in done.stdout, done.stdout
        assert str(proc.pid) not in lab.run([PVDRUN, "pids", "pp0"]).stdout.split()
    finally:
        stop(proc)


def test_bad_input(lab: LaunchLab) -> None:
    assert which(lab, 2 ** 22 + 12345).returncode == EXIT_USAGE  # beyond pid_max: no such process
    done = lab.run([PVDRUN, "which", "abc"])
    assert done.returncode == EXIT_USAGE and "Traceback" not in done.stderr
    done = lab.run([PVDRUN, "pids", "no-such-pvd"])
    assert done.returncode == EXIT_UNKNOWN_PVD and "unknown PvD" in done.stderr


def test_as_an_unprivileged_user(lab: LaunchLab, unprivileged_user: User) -> None:  # noqa: F811
    """The user sees its own scoped process; root's is unreadable to it (exit 5, not a guess)."""
    script = (f"{PVDRUN} --pvd pp0 sleep 60 & child=$!; sleep 1; "
              f"{PVDRUN} which $child; status=$?; kill $child; exit $status")
    done = lab.run(["sh", "-c", script], unprivileged_user)
    assert done.returncode == 0, done.stderr
    assert "(sleep): PvD implicit:pp0: scoped by the shim" in done.stdout
    proc = started(lab, [PVDRUN, "--pvd", "pp0", "sleep", "60"])
    try:
        done = which(lab, proc.pid, user=unprivileged_user)
        assert done.returncode == EXIT_MISSING_PREREQ, done.stderr
        assert "run as root" in done.stderr
    finally:
        stop(proc)
