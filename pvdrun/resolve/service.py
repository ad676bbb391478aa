"""What pvdd needs to resolve for its clients: one cache shared by every PvD.

pvdd keeps one :class:`PvdResolverService`, calls :meth:`sync` with its
whole PvD table whenever the table changes (a PvD whose DNS configuration
changed is flushed, a PvD that disappeared is forgotten), and answers
lookups with :meth:`resolve` / :meth:`addresses`.  :meth:`cached` is what
:meth:`resolve` would answer from the cache alone, without a query: pvdd answers
those in its event loop (pvdrun/daemon/resolving.py), and only the rest in its
thread pool.
"""
from __future__ import annotations

from typing import Iterable

from pvdrun.model import Pvd
from pvdrun.resolve.cache import DnsCache
from pvdrun.resolve.errors import ResolveError
from pvdrun.resolve.resolver import (SEARCH_ENDERS, Answer, PvdResolver, ResolverOptions, search_candidates,
                                     search_failure)


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
        """A resolver for ``pvd`` sharing the service's cache.  A PvD :meth:`sync` has not seen
        yet is observed first; one it has is not (a lookup that started before a table change
        must not put the old view back: its answers are not stored, cache.put)."""
        new = pvd.pvd_id not in self._known
        self._known.add(pvd.pvd_id)
        return PvdResolver(pvd, self.options, cache=self.cache, observe=new)

    def resolve(self, pvd: Pvd, host: str, rdtype: str = "A") -> Answer:
        return self.resolver(pvd).resolve(host, rdtype)

    def addresses(self, pvd: Pvd, host: str, family: int = 0) -> list[str]:
        return self.resolver(pvd).addresses(host, family)

    def cached(self, pvd: Pvd, host: str, rdtype: str) -> tuple[Answer, int] | ResolveError | None:
        """What :meth:`resolve` of ``host`` would give, when the cache alone knows it (no
        query): ``(answer, seconds left)`` -- the cached answer itself, not a copy: do not change
        it; a reply says ``server`` None and the seconds left as ``ttl`` -- or the failure of
        the whole search; None when some name of the search is not cached (or expired).

        ``rdtype`` is a type's canonical name (``A``, ``AAAA``, ``MX``...): the cache is keyed
        by those, so another spelling finds nothing and goes to :meth:`resolve`.  The PvD is
        not observed here (:meth:`sync` does that with every new table)."""
        try:
            names = search_candidates(host, pvd.search_domains, self.options.ndots)
        except ResolveError:
            return None  # not a name: resolve() says so, as for any other miss
        seen: list[ResolveError] = []
        for qname in names:
            hit = self.cache.get_with_ttl(pvd.pvd_id, qname, rdtype)
            if hit is None:
                return None
            value = hit[0]
            if isinstance(value, Answer):
                return value, hit[1]  # type: ignore[return-value]
            if not isinstance(value, ResolveError):
                return None
            if value.kind in SEARCH_ENDERS:
                return value
            seen.append(value)
        return search_failure(host, pvd.pvd_id, seen)
