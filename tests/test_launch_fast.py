"""The launcher's fast path (pvdrun/fastlaunch.py): ``pvdrun --pvd NAME CMD`` without click.

With pvdd answering, the launcher form loads neither click nor pyroute2, dnspython or cffi,
as the console script and as ``python -m pvdrun.cli``; and every refusal it meets gives the
same status and the same stderr as ``pvdrun run``, and the launcher's one parser
(pvdrun/launch_args.py) reads the words as the tables here say.
No wall-clock assertion: the speed is the bench's (launch.with_pvdd, strict.launch).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from fixtures.commands import PVDRUN, PVDRUN_CLI
from fixtures.launch_lab import LaunchLab, launch_lab
from pvdrun.errors import (EXIT_CANNOT_HONOUR, EXIT_NO_DAEMON, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND,
                           EXIT_UNKNOWN_PVD, EXIT_USAGE)
from pvdrun.launch_args import LaunchArgs, LaunchUsageError, is_launcher_form, parse, parse_exec

#: What the launch through pvdd must not load (the packages' top-level modules).
HEAVY = ("click", "pyroute2", "dns", "cffi", "_cffi_backend")

#: The two faces of the Python launcher: the console script ``pvdrun-cli`` (run by this
#: interpreter, so that -X importtime applies) and ``python -m pvdrun.cli``.
FACES = {"script": [sys.executable, "-X", "importtime", PVDRUN_CLI],
         "module": [sys.executable, "-X", "importtime", "-m", "pvdrun.cli"]}


@pytest.fixture(scope="module")
def lab() -> Iterator[LaunchLab]:
    with launch_lab("fl0") as made:
        yield made


def loaded_modules(stderr: str) -> set[str]:
    """The modules ``-X importtime`` reported."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def messages(stderr: str) -> list[str]:
    """stderr without ``-X importtime``'s report."""
    return [line for line in stderr.splitlines() if not line.startswith("import time:")]


@pytest.mark.root
@pytest.mark.parametrize("face", sorted(FACES))
@pytest.mark.parametrize("strict", [False, True], ids=["shim", "strict"])
def test_launch_through_pvdd_loads_no_heavy_package(lab: LaunchLab, face: str, strict: bool) -> None:
    argv = [*FACES[face], "--pvd", "fl0", *(["--strict"] if strict else []), "--",
            "sh", "-c", 'echo "$PVDRUN_SCOPE"']
    done = lab.run(argv)
    assert done.returncode == 0, done.stderr
    assert "id=implicit:fl0 " in done.stdout
    loaded = loaded_modules(done.stderr)
    assert "pvdrun.fastlaunch" in loaded and "pvdrun.daemon.protocol" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, heavy
    assert "pvdrun.cli" not in loaded and "pvdrun.launch" not in loaded  # not the click path


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A static program (the shim cannot scope it) and a file that is not executable."""
    where = tmp_path_factory.mktemp("programs")
    source = where / "static.c"
    source.write_text("int main(void) { return 0; }\n")
    static = str(where / "static")
    subprocess.run(["cc", "-static", "-o", static, str(source)], check=True, capture_output=True)
    plain = where / "plain"
    plain.write_text("data\n")
    plain.chmod(0o644)
    os.chmod(where, 0o755)
    return {"static": static, "plain": str(plain)}


#: case -> (arguments after ``pvdrun``, expected status); {static} and {plain} from ``programs``.
REFUSALS = {
    "unknown PvD": (["--pvd", "no-such-pvd", "true"], EXIT_UNKNOWN_PVD),
    "command not found": (["--pvd", "fl0", "no-such-command-pvdrun"], EXIT_NOT_FOUND),
    "not executable": (["--pvd", "fl0", "{plain}"], EXIT_NOT_EXECUTABLE),
    "--no-strict static": (["--pvd=fl0", "--no-strict", "{static}"], EXIT_CANNOT_HONOUR),
    "--socket not answering": (["-p", "fl0", "--socket", "/nonexistent/pvdd.sock", "true"], EXIT_NO_DAEMON),
    "missing command": (["--pvd", "fl0"], EXIT_USAGE),
    "missing command after --": (["--pvd", "fl0", "--strict", "--"], EXIT_USAGE),
    "unknown option before the command": (["--pvd", "fl0", "--sokcet", "/x", "true"], EXIT_USAGE),
    "missing value": (["--pvd", "fl0", "--socket"], EXIT_USAGE),
}


@pytest.mark.root
@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_as_the_click_path(lab: LaunchLab, programs: dict[str, str], case: str) -> None:
    """The launcher form, ``pvdrun run`` and ``pvdrun exec``: one parser, one launch, so the same
    status and the same one line; the launcher form never loads click for it."""
    template, status = REFUSALS[case]
    args = [arg.format(**programs) for arg in template]
    fast = lab.run([*FACES["script"], *args])
    click_path = lab.run([*FACES["script"], "run", *args])  # the same command, through click
    assert (fast.returncode, click_path.returncode) == (status, status), (fast.stderr, click_path.stderr)
    assert messages(fast.stderr) == messages(click_path.stderr)
    assert len(messages(fast.stderr)) == 1, "a refusal says why, in one line"
    assert "pvdrun.cli" not in loaded_modules(fast.stderr)



@pytest.mark.root
def test_module_face_refuses_alike(lab: LaunchLab) -> None:
    """``python -m pvdrun.cli`` runs the same fast path (its message and status)."""
    args = ["--pvd", "no-such-pvd", "true"]
    module = lab.run([*FACES["module"], *args])
    script = lab.run([*FACES["script"], *args])
    assert module.returncode == script.returncode == EXIT_UNKNOWN_PVD
    assert messages(module.stderr) == messages(script.stderr)


def test_other_forms_go_to_click(tmp_path: Path) -> None:
    """Help, the version and a subcommand are click's (the console script, no root needed)."""
    for args, first in ((["--pvd", "x", "-h"], "Usage: "), (["--version"], "pvdrun, version "),
                        (["shim-path", "--help"], "Usage: ")):
        done = subprocess.run([PVDRUN, *args], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PVDRUN_SOCKET": str(tmp_path / "none.sock")})
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(first), done.stdout


#: The issue cases of the launcher's words: arguments -> the parse (a LaunchArgs' fields) or the
#: usage error's words.
PARSES = {
    ("--socket", "/x", "--pvd", "eth0", "true"): {"pvd_name": "eth0", "socket_path": "/x", "command": ["true"]},
    ("-peth0", "ls", "-l"): {"pvd_name": "eth0", "command": ["ls", "-l"]},
    ("--config", "a.toml", "--pvd", "work", "true"): {"pvd_name": "work", "config_path": "a.toml", "command": ["true"]},
    ("--pvd", "a", "--pvd=b", "-v", "--no-daemon", "--", "-x"): {"pvd_name": "b", "verbose": True,
                                                                 "no_daemon": True, "command": ["-x"]},
    ("--pvd", "eth0", "-", "x"): {"pvd_name": "eth0", "command": ["-", "x"]},
    ("--pvd", "eth0", "--sokcet", "/x", "true"): "unknown option '--sokcet'",
    ("--pvd", "eth0", "--strict=1", "true"): "option --strict takes no value",
    ("--pvd", "eth0", "--socket"): "option --socket needs a value",
    ("--pvd=", "true"): "option --pvd needs a non-empty value",
    ("--strict", "true"): "no PvD: --pvd NAME is missing",
    ("--pvd", "eth0"): "no command to run",
}


@pytest.mark.parametrize("args", sorted(PARSES))
def test_one_parser(args: tuple[str, ...]) -> None:
    expected = PARSES[args]
    if isinstance(expected, str):
        with pytest.raises(LaunchUsageError, match=re.escape(expected)):
            parse(args)
        return
    assert parse(args) == LaunchArgs(**expected)


def test_exec_parse() -> None:
    assert parse_exec(["--strict", "ispa", "--", "ls", "--", "x"]) == LaunchArgs(
        pvd_name="ispa", strict=True, command=["ls", "--", "x"])
    assert parse_exec(["ispa", "ls", "--pvd", "x"]).command == ["ls", "--pvd", "x"]  # all CMD's
    for words, why in ((["--pvd", "a", "b", "ls"], "first word"), (["ispa"], "no command"), ([], "no PvD")):
        with pytest.raises(LaunchUsageError, match=why):
            parse_exec(words)


@pytest.mark.parametrize("args,form", [(["--socket", "/x", "--pvd", "a", "ls"], True), (["-pa", "ls"], True),
                                       (["-v", "list"], False), (["--version"], False), (["-h"], False),
                                       (["list"], False), (["--socket", "/x", "list"], False),
                                       (["--", "--pvd", "a", "ls"], False), (["--strict", "--pvd=a", "ls"], True)])
def test_launcher_form(args: list[str], form: bool) -> None:
    assert is_launcher_form(args) == form
