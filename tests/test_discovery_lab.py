"""Discovery in the lab's three scenarios (Troan et al. Figures 1-3), one-shot and via pvdd.

The labs are session-scoped and shared with other tests, so changes made
here are undone before the test ends (an address added, then deleted).
"""
from __future__ import annotations

import json
import sys
from typing import Any, Callable

import pytest

from fixtures.pvdd import Pvdd, start_pvdd  # noqa: F401 (fixture)
from pvdrun.errors import EXIT_UNKNOWN_PVD

pytestmark = pytest.mark.root

ISPS = ("ispa", "ispb")


def _one_shot(lab: Any) -> dict[str, dict[str, Any]]:
    result = lab.exec([sys.executable, "-m", "pvdrun.cli", "list", "--json", "--no-daemon"],
                      timeout=60)
    assert result.returncode == 0, result.stderr
    return {p["pvd_id"]: p for p in json.loads(result.stdout)["pvds"]}


def _v6(lab: Any, isp: str) -> str:
    return lab.host_address(isp, 6)


def _expected_id(lab: Any, isp: str) -> str:
    if lab.scenario == 3:
        return f"implicit:{lab.isp(isp)['host_interfaces'][0]}"
    return lab.isp(isp)["pvd_id"]


@pytest.mark.parametrize("scenario", [1, 2, 3])
def test_pvds_match_topology(scenario: int, request: pytest.FixtureRequest) -> None:
    """Names, addresses, DNS servers and search domains learned from RAs; PvD IDs (1, 2)."""
    lab = request.getfixturevalue(f"lab{scenario}")
    lab.refresh()
    pvds = _one_shot(lab)
    for isp in ISPS:
        status = lab.isp(isp)
        pvd = pvds.get(_expected_id(lab, isp))
        assert pvd is not None, f"{isp}: no {_expected_id(lab, isp)} among {sorted(pvds)}"
        assert pvd["explicit"] == (scenario != 3)
        assert pvd["interfaces"] == status["host_interfaces"]
        assert any(a.split("/")[0] == _v6(lab, isp) for a in pvd["addresses"])
        other = "ispb" if isp == "ispa" else "ispa"
        assert not any(a.split("/")[0] == _v6(lab, other) for a in pvd["addresses"])
        assert status["dns_v6"] in pvd["dns_servers"]
        assert pvd["search_domains"] == [status["search_domain"]]
        assert isp in pvd["names"]
        assert pvd["needs_routing"] == (scenario != 3)
        if scenario == 3:
            assert "192.0.2.10/24" in pvd["addresses"]  # overlapping IPv4 on both
        else:
            assert pvd["sequence"] is not None
    assert sum(1 for p in pvds.values() if p["is_default"]) == 1


@pytest.mark.parametrize("scenario", [1, 2, 3])
def test_handles_stable_without_reassociation(scenario: int, request: pytest.FixtureRequest) -> None:
    """R5: two discoveries with no link change give the same handles."""
    lab = request.getfixturevalue(f"lab{scenario}")
    first = {k: v["handle"] for k, v in _one_shot(lab).items()}
    second = {k: v["handle"] for k, v in _one_shot(lab).items()}
    assert first == second


def test_shared_interface_name_is_ambiguous(lab1: Any) -> None:
    result = lab1.exec([sys.executable, "-m", "pvdrun.cli", "show", "lan0", "--no-daemon"],
                       timeout=60)
    assert result.returncode == EXIT_UNKNOWN_PVD
    assert "ambiguous" in result.stderr
    assert "ispa (ispa.example)" in result.stderr and "ispb (ispb.example)" in result.stderr


def test_pvdd_agrees_and_streams_changes(lab3: Any, start_pvdd: Callable[..., Pvdd]) -> None:
    """pvdd in the lab host: same PvDs and handles as a one-shot discovery; an address
    added and removed shows on the subscription."""
    daemon = start_pvdd(lab3.host_ns)
    added = False
    try:
        listing = daemon.op("list")
        from_daemon = {p["pvd_id"]: p["handle"] for p in listing["pvds"]}
        one_shot = {k: v["handle"] for k, v in _one_shot(lab3).items()}
        assert from_daemon == one_shot
        client = daemon.client()
        stream = client.subscribe()
        assert next(stream)["event"] == "snapshot"
        client.sock.settimeout(30)
        lab3.exec(["ip", "addr", "add", "2001:db8:a::77/64", "dev", "ispa", "nodad"], check=True)
        added = True
        event = next(e for e in stream if e.get("event") == "changed")
        assert event["pvd_id"] == "implicit:ispa"
        assert "2001:db8:a::77/64" in event["changed"]["addresses"]["new"]
        assert "handle" not in event["changed"]
        lab3.exec(["ip", "addr", "del", "2001:db8:a::77/64", "dev", "ispa"], check=True)
        added = False
        event = next(e for e in stream if e.get("event") == "changed")
        assert "2001:db8:a::77/64" in event["changed"]["addresses"]["old"]
        client.close()
    finally:
        if added:
            lab3.exec(["ip", "addr", "del", "2001:db8:a::77/64", "dev", "ispa"])