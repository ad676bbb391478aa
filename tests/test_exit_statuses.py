"""One table of exit statuses: pvdrun/errors.py defines every status, docs/cli.md shows the
same table, and no other module writes a status as a bare number.  No root needed."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pvdrun.errors as errors

ROOT = Path(__file__).resolve().parent.parent


def _doc_table() -> dict[str, str]:
    text = (ROOT / "docs" / "cli.md").read_text()
    table = text.split("## Exit statuses", 1)[1]
    rows: dict[str, str] = {}
    for line in table.splitlines():
        match = re.match(r"\| ([0-9][0-9 /]*) \| (.+) \|$", line)
        if match:
            rows[match.group(1).strip()] = match.group(2)
    return rows


def test_docs_table_is_the_code_table() -> None:
    rows = _doc_table()
    constants = {value for name, value in vars(errors).items()
                 if name.startswith("EXIT_") and isinstance(value, int)}
    documented = {int(n) for key in rows for n in key.split("/")}
    assert documented == constants, (sorted(documented), sorted(constants))
    for status, meaning in errors.EXIT_STATUSES.items():
        assert rows[str(status)].startswith(meaning), (status, rows[str(status)], meaning)


def test_no_module_writes_a_status_as_a_number() -> None:
    bare = re.compile(r"(sys\.exit|SystemExit|exit_code\s*=|exit_status\s*=|EXIT_[A-Z_]+\s*=)\s*\(?\s*[0-9]+")
    offenders = []
    for path in (ROOT / "pvdrun").rglob("*.py"):
        if path.name == "errors.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if bare.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


#: A subcommand that fails as no command should: an exception nobody expected.
FAILING = """
import sys, click
import pvdrun.cli as cli

@click.command()
def boom():
    raise RuntimeError("boom")

cli.SUBCOMMANDS["boom"] = "__main__:boom"
sys.argv = ["pvdrun", "boom"]
cli.main(prog_name="pvdrun")
"""


def test_an_internal_error_is_one_line_never_a_traceback() -> None:
    """The last resort: one line and status 1; PVDRUN_DEBUG=1 shows the traceback."""
    done = subprocess.run([sys.executable, "-c", FAILING], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == errors.EXIT_FAILED
    assert done.stderr == "pvdrun: internal error: RuntimeError: boom (PVDRUN_DEBUG=1 shows where)\n"
    debug = subprocess.run([sys.executable, "-c", FAILING], capture_output=True, text=True, timeout=60,
                           env={"PATH": "/usr/bin:/bin", errors.DEBUG_ENV: "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "RuntimeError: boom" in debug.stderr


def test_an_explicit_socket_that_does_not_answer(tmp_path: Path) -> None:
    """Every command that takes --socket exits 6 at once when pvdd does not answer there."""
    from fixtures.commands import PVDRUN

    missing = str(tmp_path / "none.sock")
    for words in (["monitor"], ["list"], ["show", "lo"], ["--pvd", "lo", "true"],
                  ["resolve", "--pvd", "lo", "x.example"]):
        done = subprocess.run([PVDRUN, *words, "--socket", missing] if words[0] != "--pvd"
                              else [PVDRUN, "--socket", missing, *words], capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == errors.EXIT_NO_DAEMON, (words, done.stderr)
        assert done.stderr.count("\n") == 1 and "No such file or directory" in done.stderr, done.stderr


def test_usage_errors_are_one_line_and_exit_2() -> None:
    """click's usage errors (a missing argument, an unknown option or command, a bad value) say
    what is wrong in one line that names the command, and exit 2, for every command."""
    from fixtures.commands import PVDRUN, PVDD

    cases = [([PVDRUN, "show"], "pvdrun show: Missing argument 'NAME'"),
             ([PVDRUN, "lab", "fault", "--down"], "pvdrun lab fault: Missing argument 'ISP'"),
             ([PVDRUN, "list", "--bogus"], "pvdrun list: No such option '--bogus'"),
             ([PVDRUN, "no-such-command"], "pvdrun: No such command 'no-such-command'"),
             ([PVDD, "--log-level", "loud"], "pvdd: Invalid value for '--log-level'")]
    for argv, start in cases:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == errors.EXIT_USAGE, (argv, done)
        assert done.stderr.startswith(start) and len(done.stderr.splitlines()) == 1, (argv, done.stderr)
        assert done.stderr.rstrip().endswith("--help shows the usage)"), done.stderr
