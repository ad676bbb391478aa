"""The man pages (man/*.1) are generated from the click definitions and committed: they must be
what `make man` writes now, one per command and subcommand, pvdd's included."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_committed_pages_are_current(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("man_generate", ROOT / "man" / "generate.py")
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    written = generator.generate(str(tmp_path))
    committed = sorted(p.name for p in (ROOT / "man").glob("*.1"))
    assert written == committed, "run `make man` and commit man/"
    for name in written:
        assert (tmp_path / name).read_text() == (ROOT / "man" / name).read_text(), \
            f"man/{name} is out of date: run `make man`"
    for command in ("pvdrun", "pvdrun-run", "pvdrun-exec", "pvdrun-list", "pvdrun-which", "pvdd"):
        assert f"{command}.1" in written
    assert "Examples:" in (tmp_path / "pvdrun-exec.1").read_text()
