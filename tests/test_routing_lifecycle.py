"""pvdd's tables over its lifetime, in lab scenario 1: SIGTERM parks them (only the
``fwmark M lookup T`` rules go), a crash leaves them whole, and the next pvdd takes
over either without removing anything first, giving every PvD its earlier mark; ``pvdrun
daemon --cleanup`` removes everything; a second pvdd on the same socket touches nothing;
priorities another rule holds are refused.  Separate from test_routing_lab.py because only
one pvdd may route a namespace at a time.  The leak tests of the stop/restart window are
in test_routing_handover.py."""
from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from fixtures.pvdd_lab import PVDRUN, PvddInLab, routes, rules

pytestmark = pytest.mark.root


def all_rules(lab: Any) -> list[str]:
    return sorted(rules(lab) + rules(lab, "-4"))


def marks(daemon: PvddInLab) -> dict[str, int]:
    return {p["pvd_id"]: p["mark"] for p in daemon.list_pvds()}


def test_stop_parks_crash_leaves_and_the_next_pvdd_takes_over(lab1: Any) -> None:
    """SIGKILL leaves every rule and route; the next pvdd keeps them as they are (same marks,
    same tables); SIGTERM removes exactly the mark lookup rules; a new pvdd rebuilds the
    same set; --cleanup removes it all; the main table is never touched."""
    main_before = subprocess.run(["ip", "-n", lab1.host_ns, "-6", "route"], capture_output=True,
                                 text=True).stdout
    daemon = PvddInLab(lab1)
    try:
        daemon.start()
        built_rules, built_routes, built_marks = all_rules(lab1), sorted(routes(lab1)), marks(daemon)
        markers = [r for r in built_routes if r.startswith("throw 100::")]
        assert len(markers) == len(built_marks), built_routes  # one marker per PvD table
        assert daemon.kill() == -9
        assert all_rules(lab1) == built_rules and sorted(routes(lab1)) == built_routes
        daemon.start()
        assert all_rules(lab1) == built_rules and sorted(routes(lab1)) == built_routes
        assert marks(daemon) == built_marks
        assert "taking over" in daemon.log_text()

        assert daemon.stop() == 0
        grants = [l for l in built_rules if "fwmark" in l and " lookup " in l]
        assert grants and all_rules(lab1) == [l for l in built_rules if l not in grants]
        assert sorted(routes(lab1)) == built_routes
        daemon.start()
        assert all_rules(lab1) == built_rules and sorted(routes(lab1)) == built_routes
        assert marks(daemon) == built_marks

        assert daemon.stop() == 0
        done = daemon.remove_state()
        assert done.returncode == 0 and done.stdout.startswith("removed "), (done.stdout, done.stderr)
        assert not all_rules(lab1) and not routes(lab1)
    finally:
        daemon.cleanup()
    main_after = subprocess.run(["ip", "-n", lab1.host_ns, "-6", "route"], capture_output=True,
                                text=True).stdout
    strip = lambda text: sorted(re.sub(r"expires \d+sec ", "", l) for l in text.splitlines())  # noqa: E731
    assert strip(main_before) == strip(main_after)


def test_second_pvdd_on_the_same_socket_touches_nothing(lab1: Any) -> None:
    """A second pvdd on a live pvdd's socket exits 1 before it looks at the tables."""
    daemon = PvddInLab(lab1)
    try:
        daemon.start()
        built_rules, built_routes = all_rules(lab1), sorted(routes(lab1))
        second = lab1.exec([PVDRUN, "daemon", "--socket", daemon.socket, "--config", daemon.config])
        assert second.returncode == 1 and "already answers" in second.stderr, second.stderr
        assert all_rules(lab1) == built_rules and sorted(routes(lab1)) == built_routes
        assert daemon.proc is not None and daemon.proc.poll() is None and daemon.list_pvds()
    finally:
        daemon.cleanup()


def test_priority_taken_by_another_rule_is_refused(lab1: Any) -> None:
    """A rule pvdd did not make at its priorities: pvdd names it and exits 7, touching nothing."""
    subprocess.run(["ip", "-n", lab1.host_ns, "-6", "rule", "add", "priority", "7003", "lookup", "main"],
                   check=True)
    daemon = PvddInLab(lab1, "[routing]\nrule_priority_base = 7000\n")
    try:
        daemon.start(wait=False)
        assert daemon.proc is not None
        assert daemon.proc.wait(timeout=30) == 7
        assert "rule priority 7003" in daemon.log_text()
        assert "7003:" in subprocess.run(["ip", "-n", lab1.host_ns, "-6", "rule"], capture_output=True,
                                         text=True).stdout
    finally:
        subprocess.run(["ip", "-n", lab1.host_ns, "-6", "rule", "del", "priority", "7003"], check=False)
        daemon.cleanup()
