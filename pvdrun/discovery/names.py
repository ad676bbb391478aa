"""PvD names: the names a person may type for a PvD, and the one PvD a typed name means.

A name is, in this order: a PvD ID (``ispa.example``, ``implicit:eth0``;
a trailing dot and letter case are ignored for FQDNs), or any of the names a
PvD answers to: a configured name, the PvD ID's first label (``ispa``), an
interface name, a kind alias (``wifi``, ``ethernet``, ``cellular``, ``vpn``).
A name that fits several PvDs is ambiguous: the error lists the candidates.
"null" is not handled here (the launcher does).
"""
from __future__ import annotations

import ipaddress

from pvdrun.errors import EXIT_UNKNOWN_PVD, PvdrunError
from pvdrun.model import Pvd


class PvdLookupError(PvdrunError):
    """No PvD, or more than one, answers to a name.

    ``name`` is what was asked, ``candidates`` the PvDs that exist (unknown
    name) or that the name fits (``ambiguous`` is True).
    """

    exit_status = EXIT_UNKNOWN_PVD

    def __init__(self, name: str, candidates: list[str], ambiguous: bool = False,
                 message: str | None = None) -> None:
        self.name = name
        self.candidates = list(candidates)
        self.ambiguous = ambiguous
        super().__init__(message or self.sentence)

    @property
    def sentence(self) -> str:
        """What every command says of it, whoever found it (pvdd or this process)."""
        listed = ", ".join(self.candidates) or "none"
        return (f"PvD name {self.name!r} is ambiguous; candidates: {listed}" if self.ambiguous
                else f"unknown PvD {self.name!r}; PvDs that exist: {listed}")


def _own_candidates(pvd: Pvd) -> list[str]:
    names = list(pvd.names)
    if pvd.explicit and "." in pvd.pvd_id:
        names.append(pvd.pvd_id.split(".", 1)[0])
    names += pvd.interfaces
    if pvd.kind:
        names.append(pvd.kind)
    return names


def name_candidates(pvds: list[Pvd]) -> dict[str, list[str]]:
    """Every name a person may type -> the IDs of the PvDs it may mean."""
    table: dict[str, list[str]] = {}
    for pvd in pvds:
        for name in _own_candidates(pvd):
            ids = table.setdefault(name, [])
            if pvd.pvd_id not in ids:
                ids.append(pvd.pvd_id)
    return table


def _first_prefix(pvd: Pvd) -> str | None:
    """The /64 network of the PvD's first global IPv6 address, as ``2001:db8:a::``."""
    for address in pvd.addresses:
        interface = ipaddress.ip_interface(address)
        if interface.version == 6 and not interface.ip.is_link_local:
            return str(ipaddress.ip_network(f"{interface.ip}/64", strict=False).network_address)
    return None


def shared_link_names(pvds: list[Pvd]) -> dict[str, list[str]]:
    """Short, stable names for the implicit PvDs a shared link is split into, one per router
    (``implicit:IFACE:ROUTER``): ``IFACE/N``, N counting them in the order of their first
    prefix, and ``IFACE/PREFIX`` (``eth1/2001:db8:a::``)."""
    by_link: dict[str, list[Pvd]] = {}
    for pvd in pvds:
        parts = pvd.pvd_id.split(":", 2)
        if not pvd.explicit and len(parts) == 3 and parts[0] == "implicit":
            by_link.setdefault(parts[1], []).append(pvd)
    short: dict[str, list[str]] = {}
    for ifname, split in by_link.items():
        ordered = sorted(split, key=lambda p: (_first_prefix(p) or "~", p.pvd_id))
        for number, pvd in enumerate(ordered, 1):
            prefix = _first_prefix(pvd)
            short[pvd.pvd_id] = [f"{ifname}/{number}", *([f"{ifname}/{prefix}"] if prefix else [])]
    return short


def assign_names(pvds: list[Pvd]) -> None:
    """Fill Pvd.names with every unambiguous name (configured names already there; a shared
    link's split PvDs get their short names first, so that lists show one)."""
    for pvd_id, names in shared_link_names(pvds).items():
        pvd = next(p for p in pvds if p.pvd_id == pvd_id)
        pvd.names[:0] = [name for name in names if name not in pvd.names]
    candidates = name_candidates(pvds)
    for pvd in pvds:
        for name in _own_candidates(pvd):
            if name not in pvd.names and candidates.get(name) == [pvd.pvd_id]:
                pvd.names.append(name)


def display_name(pvd: Pvd) -> str:
    """A line-friendly label: 'name (id)', or just the id when that is its name."""
    return pvd.pvd_id if pvd.name == pvd.pvd_id else f"{pvd.name} ({pvd.pvd_id})"


def display_names(pvds: list[Pvd]) -> list[str]:
    """One :func:`display_name` per PvD."""
    return [display_name(p) for p in pvds]


def lookup(pvds: list[Pvd], name: str) -> Pvd:
    """The one PvD that ``name`` means; raises PvdLookupError."""
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
        raise PvdLookupError(name, display_names([by_id[i] for i in ids]), True)
    raise PvdLookupError(name, display_names(pvds), False)
