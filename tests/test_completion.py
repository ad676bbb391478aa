"""Shell completion (click's, through the native launcher, which hands it over): subcommands,
and PvD names from pvdd's table for `pids NAME` and `exec NAME`, never waiting for a router."""
from __future__ import annotations

from typing import Iterator

import pytest

from fixtures.commands import PVDRUN
from fixtures.launch_lab import LaunchLab, launch_lab

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab() -> Iterator[LaunchLab]:
    with launch_lab("cm0") as made:
        yield made


def complete(lab: LaunchLab, line: str) -> list[str]:
    words = line.split(" ")
    done = lab.run([PVDRUN], None, _PVDRUN_COMPLETE="bash_complete", COMP_WORDS=line,
                   COMP_CWORD=str(len(words) - 1))
    assert done.returncode == 0, done.stderr
    return [item.split(",", 1)[1] for item in done.stdout.splitlines() if item]


def test_subcommands(lab: LaunchLab) -> None:
    assert {"pids", "list", "exec", "which"} <= set(complete(lab, "pvdrun "))


def test_pvd_names(lab: LaunchLab) -> None:
    assert complete(lab, "pvdrun pids cm") == ["cm0"]
    offered = complete(lab, "pvdrun exec ")
    assert {"cm0", "implicit:cm0", "null"} <= set(offered), offered
    assert complete(lab, "pvdrun exec cm0 ") == []  # the command is the shell's to complete


def test_bash_script(lab: LaunchLab) -> None:
    done = lab.run([PVDRUN], None, _PVDRUN_COMPLETE="bash_source")
    assert done.returncode == 0 and "_pvdrun_completion" in done.stdout, done.stdout[:200]
