"""Shared pytest set-up.  The lab fixtures live in fixtures/lab.py (one session-scoped
lab per scenario, torn down at the end of the session even when tests fail)."""
from __future__ import annotations

import os

import pytest

pytest_plugins = ["fixtures.lab"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked 'root' need root (namespaces); they fail loudly without it in CI."""
    if os.geteuid() == 0 or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
