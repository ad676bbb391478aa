"""``pvdrun --pvd NAME [--] CMD``: exec semantics and refusals.

These use the null PvD (R13), which needs no lookup and no network, so they run
outside any namespace without sending anything.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pvdrun.errors import EXIT_CANNOT_HONOUR
from pvdrun.launch import preload_value
from pvdrun.model import null_scope
from pvdrun.shim import library_path
from pvdrun.shim.preloadable import NotPreloadable, check_preloadable

from fixtures.commands import PVDRUN  # noqa: E402
TRUE = shutil.which("true") or "/bin/true"


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([PVDRUN, "--pvd", "null", *args], capture_output=True, text=True,
                          timeout=30, **kwargs)


def compile_c(tmp_path: Path, name: str, source: str, *flags: str) -> str:
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = str(tmp_path / name)
    subprocess.run(["cc", "-o", out, str(src), *flags], check=True, capture_output=True)
    return out


def test_exec_keeps_pid_status_and_streams() -> None:
    proc = subprocess.Popen([PVDRUN, "--pvd", "null", "sh", "-c", "echo $$; read x; echo got-$x; exit 7"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate("abc\n", timeout=30)
    assert proc.returncode == 7, err
    assert out.splitlines() == [str(proc.pid), "got-abc"]  # same pid: exec, not a child
    assert err == ""


def test_signals_reach_the_command() -> None:
    done = run("sh", "-c", "kill -TERM $$")
    assert done.returncode == -signal.SIGTERM


def test_environment_carries_scope_and_keeps_user_preload() -> None:
    libc = "libc.so.6"  # found by the loader on any architecture
    env = {**os.environ, "LD_PRELOAD": libc}
    done = run("--", "sh", "-c", 'printf "%s\\n%s\\n" "$PVDRUN_SCOPE" "$LD_PRELOAD"', env=env)
    assert done.returncode == 0, done.stderr
    scope, preload = done.stdout.splitlines()
    assert scope == null_scope()
    assert preload == f"{library_path()}:{libc}"
    assert preload_value("/x/lib.so", "/x/lib.so /y.so") == "/x/lib.so:/y.so"


def test_null_pvd_has_no_network() -> None:
    code = ("import socket\nfor f in (socket.AF_INET, socket.AF_INET6):\n"
            "    try: socket.socket(f)\n    except OSError as e: print(e.errno)\n"
            "a, b = socket.socketpair(); a.send(b'ok'); print(b.recv(2).decode())")
    done = run(sys.executable, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["13", "13", "ok"]  # EACCES twice; AF_UNIX untouched


def test_command_not_found_and_not_executable(tmp_path: Path) -> None:
    missing = run("no-such-command-pvdrun")
    assert missing.returncode == 127 and "not found" in missing.stderr
    plain = tmp_path / "plain"
    plain.write_text("data")
    plain.chmod(0o644)
    denied = run(str(plain))
    assert denied.returncode == 126 and "not executable" in denied.stderr
    assert len(denied.stderr.strip().splitlines()) == 1


def test_static_binary_is_refused(tmp_path: Path) -> None:
    """With --no-strict (strict mode: tests/test_strict_launcher.py)."""
    static = compile_c(tmp_path, "static", "int main(void){return 0;}\n", "-static")
    done = run("--no-strict", static)
    assert done.returncode == EXIT_CANNOT_HONOUR
    assert "statically linked" in done.stderr
    dynamic = compile_c(tmp_path, "dynamic", "int main(void){return 0;}\n")
    assert run("--no-strict", dynamic).returncode == 0


def test_go_binary_is_refused(tmp_path: Path) -> None:
    """A binary with Go's .go.buildinfo section (made here with a C section attribute)."""
    source = ('__attribute__((used, section(".go.buildinfo"))) const char info[] = "\\xff Go buildinf:";\n'
              "int main(void){return 0;}\n")
    gobin = compile_c(tmp_path, "gobin", source)
    done = run("--no-strict", gobin)
    assert done.returncode == EXIT_CANNOT_HONOUR and "Go program" in done.stderr


@pytest.mark.root
def test_setuid_binary_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "suid-true"
    shutil.copy(TRUE, copy)
    os.chown(copy, 65534, 65534)
    copy.chmod(0o4755)
    tmp_path.chmod(0o755)
    done = run("--no-strict", str(copy))
    assert done.returncode == EXIT_CANNOT_HONOUR and "set-user-ID" in done.stderr


def test_scripts_are_judged_by_their_interpreter(tmp_path: Path) -> None:
    static = compile_c(tmp_path, "static", "int main(void){return 0;}\n", "-static")
    bad = tmp_path / "bad.sh"
    bad.write_text(f"#!{static}\n")
    bad.chmod(0o755)
    done = run("--no-strict", str(bad))
    assert done.returncode == EXIT_CANNOT_HONOUR and "statically linked" in done.stderr
    good = tmp_path / "good.py"
    good.write_text("#!/usr/bin/env python3\nprint('script ran')\n")
    good.chmod(0o755)
    done = run("--no-strict", str(good))
    assert done.returncode == 0 and done.stdout == "script ran\n", done.stderr
    with pytest.raises(NotPreloadable):
        check_preloadable(str(bad))


def test_usage_errors() -> None:
    done = subprocess.run([PVDRUN, "--pvd", "null"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    done = subprocess.run([PVDRUN, "run", "true"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2  # --pvd is required


def test_options_after_command_belong_to_the_command() -> None:
    done = run("sh", "-c", 'echo "$@"', "sh", "--pvd", "x", "-h")
    assert done.returncode == 0 and done.stdout == "--pvd x -h\n"


def test_explicit_socket_must_answer(tmp_path: Path) -> None:
    """--socket PATH where pvdd does not answer: exit 6, no fallback (nothing is sent)."""
    done = subprocess.run([PVDRUN, "--pvd", "wifi", "--socket", str(tmp_path / "none.sock"), TRUE],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 6
    assert "pvdd does not answer" in done.stderr and len(done.stderr.strip().splitlines()) == 1
