"""Human output of list/show, and the cost of `import pvdrun`."""
from __future__ import annotations

import subprocess
import sys

from pvdrun.commands.observe import format_pvd, format_table
from pvdrun.model import Pvd, Route


def _pvds() -> list[Pvd]:
    ispa = Pvd(pvd_id="ispa.example", handle=11, explicit=True, names=["ispa"], interfaces=["lan0"],
               ifindexes=[2], addresses=["2001:db8:a::10/64"], dns_servers=["2001:db8:a:1::53"],
               routes=[Route("default", "fe80::1", "lan0", 1024, "ra")], is_default=True,
               sequence=4, flags={"H": True, "L": False, "R": False},
               attributes={"metered": True})
    other = Pvd(pvd_id="implicit:eth1", handle=12, names=["eth1"], interfaces=["eth1"],
                ifindexes=[3], addresses=["192.0.2.10/24"])
    return [ispa, other]


def test_table_marks_default_and_shows_key_columns() -> None:
    lines = format_table(_pvds()).splitlines()
    assert lines[0].split() == ["NAME", "ID", "HANDLE", "IFACE", "KIND", "ADDRESSES", "DNS", "STRICT"]
    assert lines[1].split()[:4] == ["*", "ispa", "ispa.example", "11"]
    assert lines[2].split()[:3] == ["eth1", "implicit:eth1", "12"]
    assert "2001:db8:a:1::53" in lines[1]


def test_table_counts_strict_processes_and_says_whether_strict_mode_is_available() -> None:
    from pvdrun.commands.strict_status import StrictStatus

    held = StrictStatus(True, None, "pvdd", {"ispa.example": 3})
    lines = format_table(_pvds(), held).splitlines()
    assert lines[1].split()[-1] == "3" and lines[2].split()[-1] == "0"
    assert lines[-1] == "strict mode: available through pvdd"
    missing = StrictStatus(False, "no pvdd answers and not root", "root")
    assert format_table(_pvds(), missing).splitlines()[-1] == \
        "strict mode: unavailable (no pvdd answers and not root)"
    assert "strict:         3 processes held; available through pvdd" in format_pvd(_pvds()[0], held)


def test_show_lists_every_attribute_including_unknown_ones() -> None:
    text = format_pvd(_pvds()[0])
    for needle in ("PvD ispa.example  (default)", "handle:         11", "flags: H",
                   "default via fe80::1 dev lan0 metric 1024 (ra)", "metered: true",
                   "scope:          v=1 id=ispa.example handle=11 if=lan0:2"):
        assert needle in text


def test_import_pvdrun_does_not_import_pyroute2() -> None:
    code = "import sys, pvdrun, pvdrun.api; print('pyroute2' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "False"


def test_explicit_socket_must_answer(tmp_path) -> None:
    """`--socket PATH` that nothing serves is an error (exit 6), not a silent fallback."""
    from pvdrun.errors import EXIT_NO_DAEMON

    result = subprocess.run([sys.executable, "-m", "pvdrun.cli", "list", "--socket",
                             str(tmp_path / "none.sock")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == EXIT_NO_DAEMON
    assert "none.sock" in result.stderr and len(result.stderr.strip().splitlines()) == 1
