"""A name that means no PvD says what may explain it: an interface of that name down, or up
without a PvD; PvDs that only routers announce, unheard without pvdd by a user.  Root and a real
user; the launcher, show and resolve alike."""
from __future__ import annotations

from typing import Iterator

import pytest

from fixtures.commands import PVDRUN
from fixtures.netns import Namespaces
from fixtures.unprivileged import User, unprivileged_user  # noqa: F401 - fixture
from pvdrun.errors import EXIT_UNKNOWN_PVD

pytestmark = pytest.mark.root


@pytest.fixture
def ns() -> Iterator[tuple[Namespaces, str]]:
    with Namespaces() as spaces:
        name = spaces.add("hint")
        spaces.run(name, ["ip", "link", "add", "ha", "type", "veth", "peer", "name", "hb"], check=True)
        yield spaces, name


WORDS = {"launcher": ["--pvd", "ha", "true"], "show": ["show", "ha"], "resolve": ["resolve", "--pvd", "ha", "x.example"]}


@pytest.mark.parametrize("face", sorted(WORDS))
def test_down_then_up_without_address(ns: tuple[Namespaces, str], face: str) -> None:
    spaces, name = ns
    done = spaces.run(name, [PVDRUN, *WORDS[face]], env={"PATH": "/usr/bin:/bin", "PVDRUN_NO_RS": "1"})
    assert done.returncode == EXIT_UNKNOWN_PVD
    assert done.stderr == ("pvdrun: unknown PvD 'ha'; PvDs that exist: none (interface ha is down: "
                           "`ip link set ha up`)\n"), done.stderr
    spaces.run(name, ["ip", "link", "set", "ha", "up"], check=True)
    done = spaces.run(name, [PVDRUN, *WORDS[face]], env={"PATH": "/usr/bin:/bin", "PVDRUN_NO_RS": "1"})
    assert "(interface ha is up but has no PvD" in done.stderr, done.stderr


def test_a_user_without_pvdd_is_told_about_router_advertisements(ns: tuple[Namespaces, str],
                                                                 unprivileged_user: User) -> None:  # noqa: F811
    spaces, name = ns
    argv = unprivileged_user.argv([PVDRUN, "--pvd", "wifi", "true"], {"PVDRUN_SOCKET": "/nonexistent/pvdd.sock"})
    done = spaces.run(name, argv)
    assert done.returncode == EXIT_UNKNOWN_PVD
    assert "Router Advertisements are not heard" in done.stderr and "run pvdd" in done.stderr, done.stderr
    as_root = spaces.run(name, [PVDRUN, "--pvd", "wifi", "true"],
                         env={"PATH": "/usr/bin:/bin", "PVDRUN_NO_RS": "1", "PVDRUN_SOCKET": "/nonexistent/x"})
    assert "Router Advertisements" not in as_root.stderr  # root hears them: no such excuse
