"""A validated PvD Additional Information object (RFC 8801 section 4.3)."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any


def _first(data: dict[str, Any], *keys: str) -> Any:
    """The value of the first of ``keys`` present in ``data`` (None when none is)."""
    for key in keys:
        if key in data:
            return data[key]
    return None


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@dataclass
class AdditionalInfo:
    """One object fetched for a PvD: every key of it is in ``data`` (unknown ones too); the
    properties read the keys RFC 8801 and deployed servers use, tolerant of a missing or
    ill-typed optional key (it reads as absent)."""

    pvd_id: str
    sequence: int            # the PvD option's Sequence Number it was fetched for
    data: dict[str, Any]     # the validated object, every key (unknown ones kept)
    fetched_at: float        # time.time() when it was fetched
    expires: float           # epoch seconds, from data["expires"]

    # -- accessors ------------------------------------------------------------------------------
    @property
    def name(self) -> str | None:
        """A human-readable name of the PvD (``name``), or None."""
        value = self.data.get("name")
        return value if isinstance(value, str) else None

    @property
    def no_internet(self) -> bool:
        """``noInternet``: the PvD gives no access to the Internet (default False)."""
        return _first(self.data, "noInternet", "no_internet") is True

    @property
    def metered(self) -> bool:
        """``metered``: traffic on the PvD may be charged by volume (default False)."""
        return _first(self.data, "metered", "isMetered") is True

    @property
    def dns_zones(self) -> list[str]:
        """``dnsZones``: the DNS zones the PvD's servers are authoritative for, or []."""
        return _strings(_first(self.data, "dnsZones", "dns_zones"))

    @property
    def split_dns_claims(self) -> list[str]:
        """``splitDNSClaims`` (Apple's key): zones the PvD claims for split DNS, or []."""
        return _strings(_first(self.data, "splitDNSClaims", "splitDnsClaims", "split_dns_claims"))

    @property
    def captive_portal_url(self) -> str | None:
        """``captivePortalURL`` (RFC 8910's API URI as the PvD gives it), or None."""
        value = _first(self.data, "captivePortalURL", "captivePortalUrl", "captive_portal_url")
        return value if isinstance(value, str) else None

    @property
    def proxies(self) -> list[dict[str, Any]]:
        """``proxies``: the proxy objects as the object gives them (copies), or []."""
        value = self.data.get("proxies")
        if not isinstance(value, list):
            return []
        return [copy.deepcopy(p) for p in value if isinstance(p, dict)]

    @property
    def prefixes(self) -> list[str]:
        """``prefixes``: the prefixes the object covers (validated to cover the RA's)."""
        return _strings(self.data.get("prefixes"))

    def is_current(self, now: float) -> bool:
        """Whether the object is still valid at ``now`` (before its ``expires``)."""
        return now < self.expires

    # -- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``{"pvd_id", "sequence", "data", "fetched_at", "expires"}``."""
        return {"pvd_id": self.pvd_id, "sequence": self.sequence, "data": copy.deepcopy(self.data),
                "fetched_at": self.fetched_at, "expires": self.expires}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> AdditionalInfo:
        """The inverse of :meth:`to_dict` (ValueError/KeyError/TypeError on a malformed dict)."""
        data = value["data"]
        if not isinstance(data, dict):
            raise TypeError("AdditionalInfo data must be a JSON object")
        return cls(pvd_id=str(value["pvd_id"]), sequence=int(value["sequence"]), data=copy.deepcopy(data),
                   fetched_at=float(value["fetched_at"]), expires=float(value["expires"]))
