"""Which PvD a DNS name belongs to, by the zones the PvDs claim in their RFC 8801 Additional
Information (``dnsZones``, and RFC 9704's ``splitDnsClaims``): the PvD claiming the longest
zone that contains the name; the default PvD when none claims it."""
from __future__ import annotations

from pvdrun.model import Pvd


def claims(pvd: Pvd) -> list[str]:
    """The zones ``pvd`` claims (lower case, no final dot)."""
    zones = list(pvd.dns_zones)
    split = (pvd.additional_info or {}).get("splitDnsClaims")
    if isinstance(split, list):
        zones += [z for z in split if isinstance(z, str)]
    return [z.lower().rstrip(".") for z in zones if z.strip(".")]


def _within(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def claimant(pvds: list[Pvd], name: str) -> tuple[Pvd, str] | None:
    """The PvD claiming the longest zone that holds ``name``, and that zone; None: no claim."""
    wanted = name.lower().rstrip(".")
    best: tuple[Pvd, str] | None = None
    for pvd in pvds:
        for zone in claims(pvd):
            if _within(wanted, zone) and (best is None or len(zone) > len(best[1])):
                best = (pvd, zone)
    return best
