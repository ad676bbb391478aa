"""What pvdd needs to resolve for its clients: one cache shared by every PvD.

pvdd keeps one :class:`PvdResolverService`, calls :meth:`sync` with its
whole PvD table whenever the table changes (a PvD whose DNS configuration
changed is flushed, a PvD that disappeared is forgotten), and answers
lookups with :meth:`resolve` / :meth:`addresses`.  Integration into pvdd's
protocol is the pvdd owner's (see docs/resolution.md).
"""
from __future__ import annotations

from typing import Iterable

from pvdrun.model import Pvd
from pvdrun.resolve.cache import DnsCache
from pvdrun.resolve.resolver import Answer, PvdResolver, ResolverOptions


class PvdResolverService:
    """Per-PvD resolution with a shared, PvD-keyed TTL cache."""

    def __init__(self, cache: DnsCache | None = None, options: ResolverOptions | None = None) -> None:
        self.cache = cache if cache is not None else DnsCache()
        self.options = options or ResolverOptions()
        self._known: set[str] = set()

    def sync(self, pvds: Iterable[Pvd]) -> list[str]:
        """Note the current PvD table; returns the IDs whose cache was dropped."""
        dropped: list[str] = []
        current: set[str] = set()
        for pvd in pvds:
            current.add(pvd.pvd_id)
            if self.cache.observe(pvd):
                dropped.append(pvd.pvd_id)
        for gone in sorted(self._known - current):
            self.cache.forget(gone)
            dropped.append(gone)
        self._known = current
        return dropped

    def resolver(self, pvd: Pvd) -> PvdResolver:
        """A resolver for ``pvd`` sharing the service's cache (observes ``pvd`` first)."""
        self._known.add(pvd.pvd_id)
        return PvdResolver(pvd, self.options, cache=self.cache)

    def resolve(self, pvd: Pvd, host: str, rdtype: str = "A") -> Answer:
        return self.resolver(pvd).resolve(host, rdtype)

    def addresses(self, pvd: Pvd, host: str, family: int = 0) -> list[str]:
        return self.resolver(pvd).addresses(host, family)
