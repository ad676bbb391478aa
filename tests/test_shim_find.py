"""pvd_find (the C API, and the Python binding over it) knows every name pvdrun accepts when pvdd
answers: a configured name, not only an ID or an interface; without pvdd, only the table's."""
from __future__ import annotations

import os
import signal
import sys
from typing import Iterator

import pytest

from fixtures.launch_lab import LaunchLab, launch_lab
from fixtures.netns import wait_for

pytestmark = pytest.mark.root

FIND = ("import sys\nfrom pvdrun.shim import binding\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        print(name, binding.find(name))\n"
        "    except OSError as exc:\n"
        "        print(name, 'ENOENT' if exc.errno == 2 else exc.errno)\n")


@pytest.fixture(scope="module")
def lab() -> Iterator[LaunchLab]:
    with launch_lab("fd0") as made:
        made.daemon.write_config('[pvd.work]\ninterface = "fd0"\n')
        made.daemon.signal(signal.SIGHUP)
        wait_for(lambda: "work" in made.daemon.pvd("implicit:fd0")["names"], timeout=20, what="work named")
        yield made


def found(lab: LaunchLab, *names: str, **env: str) -> dict[str, str]:
    done = lab.run([sys.executable, "-c", FIND, *names], None, **env)
    assert done.returncode == 0, done.stderr
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


def test_configured_name_through_pvdd(lab: LaunchLab) -> None:
    handles = found(lab, "implicit:fd0", "fd0", "work", "no-such-name", 'we"ird')
    assert handles["work"] == handles["fd0"] == handles["implicit:fd0"] != "ENOENT"
    assert handles["no-such-name"] == handles['we"ird'] == "ENOENT"


def test_without_pvdd_only_the_table(lab: LaunchLab, tmp_path: object) -> None:
    handles = found(lab, "work", "null", PVDRUN_SOCKET=os.path.join(str(tmp_path), "none.sock"))
    assert handles["work"] == "ENOENT" and handles["null"] != "ENOENT"
