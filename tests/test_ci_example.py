"""The CI recipe of docs/ci.md: examples/ci/split-test.sh end to end in a real lab (root), and the
GitHub Actions workflow that calls it.

The lab has a unique name and is removed in a ``finally``, whatever the script did.
"""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.commands import PVDRUN
from fixtures.prereq import require
from pvdrun import lab as lab_api

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "ci" / "split-test.sh"
WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"
PROGRAM = ["curl", "-sS", "-m", "5", "http://svc.example/"]


def _verify_available() -> bool:
    done = subprocess.run([PVDRUN, "verify", "--help"], capture_output=True, text=True,
                          check=False, timeout=30)
    return done.returncode == 0


def run_script(lab: str, *program: str, fault: str | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PVDRUN": PVDRUN}
    if fault is not None:
        env["FAULT"] = fault
    return subprocess.run(["sh", str(SCRIPT), lab, *program], capture_output=True, text=True,
                          check=False, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def ci_lab() -> Iterator[str]:
    require(os.geteuid() == 0, "root (the lab builds network namespaces)")
    if not _verify_available():
        pytest.skip("`pvdrun verify` is not installed")
    name = f"pvci{os.getpid() % 100000}"
    lab_api.down(name)
    try:
        lab_api.up(3, name, wait=60)
        yield name
    finally:
        lab_api.down(name)


def _faults(lab: str) -> str:
    done = subprocess.run([PVDRUN, "lab", "status", "--name", lab], capture_output=True,
                          text=True, check=True, timeout=30)
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.root
def test_split_test_passes_end_to_end(ci_lab: str) -> None:
    done = run_script(ci_lab, *PROGRAM)
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert "verify --pvd ispa: exit 0, verdict stayed, program status 0" in err
    assert "verify --pvd ispb: exit 0, verdict stayed, program status 0" in err
    assert "pvdrun lab fault --name " + ci_lab + " ispa --down" in err
    # ispa down: pvdrun refuses to start the program in a PvD that is gone, never uses ispb
    assert "the PvD ispa is gone" in err
    assert "| ispa " in err and "| ispb " in err  # the services named themselves
    assert err.strip().splitlines()[-1].startswith("split-test: PASS")
    assert _faults(ci_lab) == "faults: ispa none; ispb none"


@pytest.mark.root
def test_split_test_with_loss_sees_the_program_fail_inside_ispa(ci_lab: str) -> None:
    done = run_script(ci_lab, "curl", "-sS", "-m", "3", "http://svc.example/",
                      fault="--loss 100")
    assert done.returncode == 0, done.stderr
    assert re.search(r"verify --pvd ispa: exit 0, verdict stayed, program status [1-9]",
                     done.stderr), done.stderr
    assert _faults(ci_lab) == "faults: ispa none; ispb none"


@pytest.mark.root
def test_split_test_fails_when_the_program_succeeds_with_its_isp_down(ci_lab: str) -> None:
    """Control: a program that needs no network "succeeds" with ispa down: the script must
    fail (exit 1) saying so, and still heal ispa."""
    done = run_script(ci_lab, "true", fault="--loss 100")
    assert done.returncode == 1, done.stderr
    assert "FAIL: the program succeeded with ispa down" in done.stderr
    assert _faults(ci_lab) == "faults: ispa none; ispb none"


def test_split_test_usage_and_no_lab() -> None:
    done = run_script("only-a-lab")
    assert done.returncode == 2
    assert done.stderr.startswith("usage:")
    if os.geteuid() == 0:
        done = run_script("pvcinolab", "true")
        assert done.returncode == 2
        assert "lab pvcinolab is not up" in done.stderr


def test_split_test_is_posix_sh() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/sh\n")
    assert "set -eu" in text
    assert os.access(SCRIPT, os.X_OK)
    subprocess.run(["sh", "-n", str(SCRIPT)], check=True, timeout=30)


def _steps_textual(text: str) -> list[dict[str, str]]:
    """The steps of the one job, read without a YAML library: name, if, run, uses (a block
    scalar, ``run: |``, is the lines indented under it)."""
    steps: list[dict[str, str]] = []
    block: tuple[str, int] | None = None  # (key, indentation of the key) while reading a block
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if block is not None:
            if line.strip() and indent <= block[1]:
                block = None
            else:
                steps[-1][block[0]] += ("\n" if steps[-1][block[0]] else "") + line.strip()
                continue
        match = re.match(r"^(\s*)(- )?\s*(name|if|run|uses):\s*(.*)$", line)
        if not match:
            continue
        if match.group(2) and "steps:" in text:
            steps.append({})
        if steps:
            value = match.group(4)
            if value in ("|", ">"):
                steps[-1][match.group(3)] = ""
                block = (match.group(3), len(match.group(1)) + len(match.group(2) or ""))
            else:
                steps[-1][match.group(3)] = value
    return steps


def _steps() -> list[dict[str, str]]:
    text = WORKFLOW.read_text(encoding="utf-8")
    try:
        import yaml
    except ImportError:
        return _steps_textual(text)
    data = yaml.safe_load(text)
    assert "on" in data or True in data  # YAML 1.1 reads the key `on` as True
    (job,) = data["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    return [{k: str(v) for k, v in step.items()} for step in job["steps"]]


def test_workflow_calls_the_script_and_always_tears_down() -> None:
    steps = _steps()
    runs = [s.get("run", "") for s in steps]
    assert any("examples/ci/split-test.sh" in r and "$LAB" in r for r in runs)
    up = next(i for i, r in enumerate(runs) if "pvdrun lab up" in r)
    assert "--scenario 3" in runs[up] and "--wait" in runs[up]
    script = next(i for i, r in enumerate(runs) if "split-test.sh" in r)
    assert up < script
    last = steps[-1]
    assert last.get("if") == "always()"
    assert "pvdrun lab down --name" in last.get("run", "")
    install = " ".join(runs[:up])
    for package in ("dnsmasq", "iproute2", "nftables", "curl", "pip install"):
        assert package in install


def test_workflow_textual_reading_agrees() -> None:
    """The fallback reader (no PyYAML) finds the same steps as PyYAML where it is installed."""
    textual = _steps_textual(WORKFLOW.read_text(encoding="utf-8"))
    install = " ".join(step.get("run", "") for step in textual[:2])
    assert "dnsmasq" in install and "pip install" in install, textual[:2]
    assert textual[-1]["if"] == "always()"
    assert "pvdrun lab down" in textual[-1]["run"]
    assert any("split-test.sh" in s.get("run", "") for s in textual)
