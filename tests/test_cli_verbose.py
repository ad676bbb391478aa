"""-v/--verbose: the command group's (for every subcommand) says on stderr what pvdrun finds and
does, -vv why; without it nothing is said.  The launcher's own -v is tests/test_launch_fast.py's."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from fixtures.commands import PVDRUN
from fixtures.netns import Namespaces

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def ns() -> Iterator[tuple[Namespaces, str]]:
    with Namespaces() as spaces:
        name = spaces.add("vb")
        spaces.run(name, ["ip", "link", "add", "va", "type", "veth", "peer", "name", "vb"], check=True)
        for link in ("va", "vb"):
            spaces.run(name, ["ip", "link", "set", link, "up"], check=True)
        spaces.run(name, ["ip", "address", "add", "10.9.0.1/24", "dev", "va"], check=True)
        yield spaces, name


def listing(ns: tuple[Namespaces, str], cache: Path, *words: str) -> subprocess.CompletedProcess:
    """``pvdrun WORDS list --no-daemon`` with its own, empty, cache of routers' answers (so that
    it asks the routers, and says so)."""
    spaces, name = ns
    cache.unlink(missing_ok=True)
    return spaces.run(name, [PVDRUN, *words, "list", "--no-daemon"], timeout=60,
                      env={**os.environ, "PVDRUN_RA_CACHE": str(cache)})


def test_verbose_says_why(ns: tuple[Namespaces, str], tmp_path: Path) -> None:
    cache = tmp_path / "ras.json"
    quiet = listing(ns, cache)
    assert quiet.returncode == 0 and "solicited" not in quiet.stderr, quiet.stderr
    chatty = listing(ns, cache, "-vv")
    assert chatty.returncode == 0 and chatty.stdout == quiet.stdout
    said = [line for line in chatty.stderr.splitlines() if line.startswith("pvdrun: ")]
    assert any("solicited" in line or "to ask" in line for line in said), chatty.stderr
    assert listing(ns, cache, "--verbose").returncode == 0
