"""Change events between two PvD tables (monitor stream, pvdd subscription).

Events are JSON-ready dicts with an ``"event"`` key:

* ``{"event": "snapshot", "pvds": [...], "default": ID|None}`` first;
* ``{"event": "added", "pvd_id": ID, "pvd": {...}}``;
* ``{"event": "removed", "pvd_id": ID, "pvd": {...}}`` (the last known state);
* ``{"event": "changed", "pvd_id": ID, "changed": {ATTR: {"old": X, "new": Y}}, "pvd": {...}}``;
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
    return Table(pvds).snapshot_event()


class Table:
    """A PvD table with each PvD's dictionary made once: for the diff with the next table,
    and for whatever is sent of it (pvdd's list reply, a subscriber's snapshot).  Its PvDs
    must not change afterwards (the next table's are new objects)."""

    def __init__(self, pvds: list[Pvd], previous: Table | None = None) -> None:
        """``previous``: the table this one follows; an equal PvD's dictionary is taken from
        it (comparing two PvDs costs a fraction of making one's dictionary, scope line included)."""
        self.pvds = pvds
        self.by_id = {p.pvd_id: p for p in pvds}
        if previous is None:
            self.dicts = {p.pvd_id: p.to_dict() for p in pvds}
        else:
            self.dicts = {}
            for pvd in pvds:
                old = previous.by_id.get(pvd.pvd_id)
                self.dicts[pvd.pvd_id] = previous.dicts[pvd.pvd_id] if old == pvd else pvd.to_dict()
        self.default = _id(default_of(pvds))
        #: encoded replies made of this table, kept as long as it is the table (pvdd's list)
        self.encoded: dict[str, bytes] = {}

    def snapshot_event(self) -> dict[str, Any]:
        """The first event of a stream: this table."""
        return {"event": "snapshot", "time": time.time(), "pvds": list(self.dicts.values()),
                "default": self.default}

    def diff(self, new: Table) -> list[dict[str, Any]]:
        """Events that turn this table into ``new``."""
        return _diff(self.dicts, new.dicts, self.default, new.default)


def diff(old: list[Pvd], new: list[Pvd]) -> list[dict[str, Any]]:
    """Events that turn table ``old`` into table ``new``."""
    return Table(old).diff(Table(new))


def _diff(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]],
          old_default: str | None, new_default: str | None) -> list[dict[str, Any]]:
    now = time.time()
    events: list[dict[str, Any]] = []
    for pvd_id, data in before.items():
        if pvd_id not in after:
            events.append({"event": "removed", "time": now, "pvd_id": pvd_id, "pvd": data})
    for pvd_id, data in after.items():
        if pvd_id not in before:
            events.append({"event": "added", "time": now, "pvd_id": pvd_id, "pvd": data})
            continue
        old = before[pvd_id]
        if old is data or old == data:
            continue
        changed = {key: {"old": old.get(key), "new": value}
                   for key, value in data.items()
                   if key not in _IGNORED and old.get(key) != value}
        if changed:
            events.append({"event": "changed", "time": now, "pvd_id": pvd_id, "changed": changed,
                           "pvd": data})
    if old_default != new_default:
        events.append({"event": "default", "time": now, "old": old_default, "new": new_default})
    return events
