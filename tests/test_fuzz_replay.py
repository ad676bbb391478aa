"""Replay the fuzz harnesses' seed corpora and regression inputs under ASan/UBSan.

Every input that once crashed a parser (fuzz/regressions/HARNESS/) and every seed
(fuzz/corpus/HARNESS/) runs through its libFuzzer harness, linked with fuzz/replay_main.c
instead of libFuzzer, so this needs only the C compiler `make test` already uses (no clang,
no root).  A sanitizer report or a violated property aborts the harness and fails the test.
`make fuzz` is the fuzzing itself (docs/testing.md, "Fuzzing").
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FUZZ = REPO / "fuzz"
HARNESSES = sorted(p.stem.removeprefix("fuzz_") for p in FUZZ.glob("fuzz_*.c"))


def test_every_harness_has_seeds() -> None:
    assert HARNESSES, "no harness in fuzz/"
    for name in HARNESSES:
        seeds = [p for p in (FUZZ / "corpus" / name).glob("*") if p.is_file()]
        assert seeds, f"fuzz/corpus/{name} has no seed"


@pytest.mark.parametrize("name", HARNESSES)
def test_replay(name: str, tmp_path: Path) -> None:
    binary = tmp_path / name
    subprocess.run(["sh", str(FUZZ / "build.sh"), name, str(binary), "replay"], check=True)
    inputs = [FUZZ / "corpus" / name]
    if (FUZZ / "regressions" / name).is_dir():
        inputs.append(FUZZ / "regressions" / name)
    proc = subprocess.run([str(binary), *map(str, inputs)], capture_output=True, timeout=120,
                          env={"ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1",
                               "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
                               "PATH": "/usr/bin:/bin"})
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{stderr[-4000:]}"
    assert "runtime error" not in stderr, stderr[-4000:]
    count = int(proc.stdout.split()[1])
    assert count == sum(1 for d in inputs for p in d.iterdir() if p.is_file()
                        and not p.name.startswith("."))
