"""pvdd's tables over its lifetime, in lab scenario 1 (issue 6, point 1): SIGTERM removes
them, a crash leaves them and the next start removes and rebuilds them, and priorities
another rule holds are refused.  Separate from test_routing_lab.py because only one pvdd
may route a namespace at a time (its start removes every ``proto 153`` rule)."""
from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from routing_daemon import PvddInLab, routes, rules

pytestmark = pytest.mark.root


def test_stop_removes_and_crash_leftovers_are_rebuilt(lab1: Any) -> None:
    """SIGTERM removes every rule and route; after SIGKILL the next pvdd removes what was
    left and rebuilds the same; nothing else in the namespace is touched."""
    main_before = subprocess.run(["ip", "-n", lab1.host_ns, "-6", "route"], capture_output=True,
                                 text=True).stdout
    first = PvddInLab(lab1)
    try:
        first.start()
        built_rules, built_routes = sorted(rules(lab1)), sorted(routes(lab1))
        assert first.kill() == -9
        assert sorted(rules(lab1)) == built_rules  # a crash leaves them
        second = PvddInLab(lab1)
        try:
            second.start()
            assert sorted(rules(lab1)) == built_rules and sorted(routes(lab1)) == built_routes
            assert "removed" in second.log_text()
            assert second.stop() == 0
            assert not rules(lab1) and not rules(lab1, "-4") and not routes(lab1)
        finally:
            second.cleanup()
    finally:
        first.cleanup()
    main_after = subprocess.run(["ip", "-n", lab1.host_ns, "-6", "route"], capture_output=True,
                                text=True).stdout
    strip = lambda text: sorted(re.sub(r"expires \d+sec ", "", l) for l in text.splitlines())  # noqa: E731
    assert strip(main_before) == strip(main_after)


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
