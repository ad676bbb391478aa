"""Turn a name a person typed into one PvD, or a precise error.

A name is, in this order: a PvD ID (``ispa.example``, ``implicit:eth0``;
a trailing dot and letter case are ignored for FQDNs), or any of the names
``assemble`` offers: a configured name, the PvD ID's first label
(``ispa``), an interface name, a kind alias (``wifi``, ``ethernet``,
``cellular``, ``vpn``).  A name that fits several PvDs is ambiguous: the
error lists the candidates.  "null" is not handled here (the launcher does).
"""
from __future__ import annotations

from dataclasses import dataclass

from pvdrun.discovery.assemble import name_candidates
from pvdrun.model import Pvd


@dataclass
class ResolveError(Exception):
    """No PvD, or several, answer to ``name``; ``candidates`` says which exist or fit."""

    name: str
    candidates: list[str]
    ambiguous: bool

    def __str__(self) -> str:
        listed = ", ".join(self.candidates) or "none"
        if self.ambiguous:
            return f"PvD name {self.name!r} is ambiguous; candidates: {listed}"
        return f"unknown PvD {self.name!r}; PvDs that exist: {listed}"


def display_names(pvds: list[Pvd]) -> list[str]:
    """One line-friendly label per PvD: 'name (id)' or just the id."""
    return [p.pvd_id if p.name == p.pvd_id else f"{p.name} ({p.pvd_id})" for p in pvds]


def resolve(pvds: list[Pvd], name: str) -> Pvd:
    """The one PvD that ``name`` means; raises ResolveError."""
    by_id = {p.pvd_id: p for p in pvds}
    folded = name.strip().rstrip(".").lower() if "." in name else name
    for key in (name, folded):
        if key in by_id:
            return by_id[key]
    table = name_candidates(pvds)
    ids = table.get(name) or table.get(folded) or []
    if len(ids) == 1:
        return by_id[ids[0]]
    if ids:
        raise ResolveError(name, display_names([by_id[i] for i in ids]), True)
    raise ResolveError(name, display_names(pvds), False)
