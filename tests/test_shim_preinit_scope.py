"""A malformed PVDRUN_SCOPE fails closed also when the shim's first hook runs from the
program's .preinit_array, before libc has set `environ` (the shim then reads
/proc/self/environ): an empty value is malformed there as it is through getenv, never "no
scope".  Loopback only, no root needed; the control is the same program with no scope."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pvdrun.shim import library_path

SOURCE = Path(__file__).resolve().parent / "c" / "hostile_preinit.c"


@pytest.fixture(scope="module")
def preinit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary = tmp_path_factory.mktemp("preinit") / "hostile_preinit"
    subprocess.run([os.environ.get("CC", "cc"), "-O1", "-Wall", "-Wextra", "-Werror", "-o", str(binary),
                    str(SOURCE)], check=True)
    return binary


def _run(binary: Path, scope: str | None) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LD_PRELOAD": library_path()}
    if scope is not None:
        env["PVDRUN_SCOPE"] = scope
    proc = subprocess.run([str(binary), "tok", "4", "127.0.0.1", "9"], env=env, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)


def test_no_scope_is_the_system_default(preinit: Path) -> None:
    """The control: without PVDRUN_SCOPE the preinit send goes out (to loopback)."""
    assert _run(preinit, None)["preinit_send"] == "ok"


@pytest.mark.parametrize("scope", ["", "garbage", "v=2 id=x handle=1 if=lo:1"], ids=["empty", "garbage", "v2"])
def test_malformed_scope_fails_closed_before_environ(preinit: Path, scope: str) -> None:
    result = _run(preinit, scope)
    assert result["preinit_ran"] == "yes", result
    # refused at socket() (the null PvD's EACCES), so nothing was sent
    assert result.get("preinit_socket", result.get("preinit_send")) == "EACCES", result
    assert result["main_send"] == "EACCES", result
