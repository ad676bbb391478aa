"""The suite's own primitives (fixtures/netns.py, fixtures/pvdd.py): what they make is gone
after the block, also when the block fails; pvdd started by them answers, stops with exit 0,
and a pvdd that cannot start is reported with its log."""
from __future__ import annotations

import os
import subprocess

import pytest

from fixtures.netns import Namespaces, ifindex, sh
from fixtures.prereq import require
from fixtures.pvdd import Pvdd

pytestmark = pytest.mark.root

TAG = f"pfx{os.getpid() % 100000}"


def _namespaces() -> list[str]:
    return [line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines() if line.strip()]


def test_namespaces_are_removed_when_the_block_fails() -> None:
    require(os.geteuid() == 0, "root (network namespaces)")
    with pytest.raises(RuntimeError, match="the test failed"):
        with Namespaces() as spaces:
            left, right = spaces.add(f"{TAG}l"), spaces.add(f"{TAG}r")
            spaces.veth(left, "v0", right, "v1", ["10.99.0.1/24", "fd99::1/64"], ["10.99.0.2/24"])
            assert ifindex(left, "v0") > 1
            assert spaces.run(left, ["ping", "-c1", "-W2", "10.99.0.2"]).returncode == 0
            sleeper = spaces.popen(right, ["sleep", "300"])
            stray = subprocess.Popen(["ip", "netns", "exec", right, "sleep", "300"])  # not registered
            directory = spaces.mkdtemp(prefix=f"{TAG}-")
            raise RuntimeError("the test failed")
    assert left not in _namespaces() and right not in _namespaces()
    assert sleeper.poll() is not None
    assert stray.wait(timeout=10) != 0  # killed with its namespace
    assert not os.path.exists(directory)


def test_pvdd_answers_and_stops_with_exit_0() -> None:
    require(os.geteuid() == 0, "root (network namespaces)")
    with Namespaces() as spaces, Pvdd(spaces.add(f"{TAG}d")) as daemon:
        assert daemon.op("list")["ok"] is True
        directory = daemon.dir
        assert daemon.stop() == 0
        assert not os.path.exists(daemon.socket)
    assert not os.path.exists(directory)


def test_pvdd_that_cannot_start_is_reported_with_its_log() -> None:
    require(os.geteuid() == 0, "root (network namespaces)")
    with Namespaces() as spaces:
        daemon = Pvdd(spaces.add(f"{TAG}e"), "[pvd.broken\n")
        with pytest.raises(RuntimeError, match="pvdd exited") as info:
            with daemon:
                pass
        assert "pvd.toml" in str(info.value)  # its log names the file it refused
        assert not os.path.exists(daemon.dir)
