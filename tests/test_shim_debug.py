"""PVDRUN_DEBUG: the shim says, one line each, which sockets it tied to which PvD and which it
refused and why; to stderr, or appended to a file (even by a program that closed stderr); and
nothing without it.  PVDRUN_TRACE: the same decisions as JSON lines in a file.  As root and as an
unprivileged user."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from fixtures.commands import PVDRUN
from fixtures.launch_lab import LaunchLab, launch_lab
from fixtures.unprivileged import User, unprivileged_user, user_for, who  # noqa: F401 - fixtures

pytestmark = pytest.mark.root
CURL = ["curl", "-s", "--max-time", "3", "http://192.0.2.1:9/"]


@pytest.fixture(scope="module")
def lab() -> Iterator[LaunchLab]:
    with launch_lab("dd0") as made:
        yield made


def shim_lines(text: str) -> list[str]:
    return [line.split("]: ", 1)[1] for line in text.splitlines() if line.startswith("pvdrun shim[")]


def test_tied_and_refused_on_stderr(lab: LaunchLab, who: str, request: pytest.FixtureRequest) -> None:
    user = user_for(who, request)
    done = lab.run([PVDRUN, "--pvd", "dd0", *CURL], user, PVDRUN_DEBUG="1")
    assert done.returncode != 0  # nothing listens on port 9: refused by the router
    assert any(line.startswith("fd ") and "connect: tied to PvD implicit:dd0" in line
               for line in shim_lines(done.stderr)), done.stderr
    nulled = lab.run([PVDRUN, "--pvd", "null", *CURL], user, PVDRUN_DEBUG="1")
    assert "refused: the null PvD (EACCES)" in "\n".join(shim_lines(nulled.stderr)), nulled.stderr
    quiet = lab.run([PVDRUN, "--pvd", "dd0", *CURL], user)
    assert not shim_lines(quiet.stderr), quiet.stderr


def test_to_a_file_when_stderr_is_closed(lab: LaunchLab, tmp_path: Path) -> None:
    log = tmp_path / "shim.log"
    script = f"exec 2>&-; exec {' '.join(CURL)}"
    done = lab.run([PVDRUN, "--pvd", "dd0", "sh", "-c", script], None, PVDRUN_DEBUG=str(log))
    assert done.returncode != 0
    lines = shim_lines(log.read_text())
    assert any("tied to PvD implicit:dd0" in line for line in lines), lines
    assert oct(os.stat(log).st_mode & 0o777) == "0o600"


def test_a_relative_or_odd_value_is_ignored(lab: LaunchLab) -> None:
    for value in ("yes", "relative.log", "0", ""):
        done = lab.run([PVDRUN, "--pvd", "dd0", *CURL], None, PVDRUN_DEBUG=value)
        assert not shim_lines(done.stderr), (value, done.stderr)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory any user may write to (the user's program appends the trace there)."""
    where = Path(tempfile.mkdtemp(prefix="pvdtrace-"))
    os.chmod(where, 0o1777)
    yield where
    shutil.rmtree(where, ignore_errors=True)


def test_trace_is_one_json_line_per_decision(lab: LaunchLab, who: str, request: pytest.FixtureRequest,
                                             open_dir: Path) -> None:
    user = user_for(who, request)
    trace = open_dir / "trace.jsonl"
    done = lab.run([PVDRUN, "--pvd", "dd0", *CURL], user, PVDRUN_TRACE=str(trace))
    assert done.returncode != 0 and not shim_lines(done.stderr)  # the trace alone says nothing on stderr
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    tied = [d for d in lines if d["verdict"] == "tied"]
    assert tied, lines
    first = tied[0]
    assert first["pvd"] == "implicit:dd0" and first["op"] == "connect" and first["family"] == "inet"
    assert first["protocol"] == 6 and first["destination"] == "192.0.2.1:9" and first["ifindex"] > 0
    assert first["pid"] > 0 and first["fd"] >= 0 and first["errno"] == ""
    trace.unlink()
    lab.run([PVDRUN, "--pvd", "null", *CURL], user, PVDRUN_TRACE=str(trace))
    refused = [json.loads(line) for line in trace.read_text().splitlines()]
    assert refused and all(d["verdict"] == "refused" and d["errno"] == "EACCES" for d in refused), refused
    assert refused[0]["why"] == "the null PvD"
