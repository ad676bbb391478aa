"""Change events between two PvD tables (monitor stream, pvdd subscription).

Events are JSON-ready dicts with an ``"event"`` key:

* ``{"event": "snapshot", "pvds": [...], "default": ID|None}`` first;
* ``{"event": "added", "id": ID, "pvd": {...}}``;
* ``{"event": "removed", "id": ID, "pvd": {...}}`` (the last known state);
* ``{"event": "changed", "id": ID, "changed": {ATTR: {"old": X, "new": Y}}, "pvd": {...}}``;
* ``{"event": "default", "old": ID|None, "new": ID|None}`` (R10).
"""
from __future__ import annotations

import time
from typing import Any

from pvdrun.model import Pvd, default_of

# Derived or bookkeeping keys that never make a "changed" event on their own.
_IGNORED = {"scope", "default"}


def _id(pvd: Pvd | None) -> str | None:
    return pvd.pvd_id if pvd else None


def snapshot_event(pvds: list[Pvd]) -> dict[str, Any]:
    """The first event of every stream: the whole table."""
    return {"event": "snapshot", "time": time.time(), "pvds": [p.to_dict() for p in pvds],
            "default": _id(default_of(pvds))}


def diff(old: list[Pvd], new: list[Pvd]) -> list[dict[str, Any]]:
    """Events that turn table ``old`` into table ``new``."""
    now = time.time()
    events: list[dict[str, Any]] = []
    before = {p.pvd_id: p.to_dict() for p in old}
    after = {p.pvd_id: p.to_dict() for p in new}
    for pvd_id, data in before.items():
        if pvd_id not in after:
            events.append({"event": "removed", "time": now, "id": pvd_id, "pvd": data})
    for pvd_id, data in after.items():
        if pvd_id not in before:
            events.append({"event": "added", "time": now, "id": pvd_id, "pvd": data})
            continue
        changed = {key: {"old": before[pvd_id].get(key), "new": value}
                   for key, value in data.items()
                   if key not in _IGNORED and before[pvd_id].get(key) != value}
        if changed:
            events.append({"event": "changed", "time": now, "id": pvd_id, "changed": changed,
                           "pvd": data})
    old_default, new_default = _id(default_of(old)), _id(default_of(new))
    if old_default != new_default:
        events.append({"event": "default", "time": now, "old": old_default, "new": new_default})
    return events
