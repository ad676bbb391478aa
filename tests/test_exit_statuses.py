"""One table of exit statuses: pvdrun/errors.py defines every status, docs/cli.md shows the
same table, and no other module writes a status as a bare number.  No root needed."""
from __future__ import annotations

import re
from pathlib import Path

import pvdrun.errors as errors

ROOT = Path(__file__).resolve().parent.parent


def _doc_table() -> dict[str, str]:
    text = (ROOT / "docs" / "cli.md").read_text()
    table = text.split("## Exit statuses", 1)[1]
    rows: dict[str, str] = {}
    for line in table.splitlines():
        match = re.match(r"\| ([0-9][0-9 /]*) \| (.+) \|$", line)
        if match:
            rows[match.group(1).strip()] = match.group(2)
    return rows


def test_docs_table_is_the_code_table() -> None:
    rows = _doc_table()
    constants = {value for name, value in vars(errors).items()
                 if name.startswith("EXIT_") and isinstance(value, int)}
    documented = {int(n) for key in rows for n in key.split("/")}
    assert documented == constants, (sorted(documented), sorted(constants))
    for status, meaning in errors.EXIT_STATUSES.items():
        assert rows[str(status)].startswith(meaning), (status, rows[str(status)], meaning)


def test_no_module_writes_a_status_as_a_number() -> None:
    bare = re.compile(r"(sys\.exit|SystemExit|exit_code\s*=|exit_status\s*=|EXIT_[A-Z_]+\s*=)\s*\(?\s*[0-9]+")
    offenders = []
    for path in (ROOT / "pvdrun").rglob("*.py"):
        if path.name == "errors.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if bare.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
