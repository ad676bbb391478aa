"""A per-PvD DNS answer cache for pvdd (TTL-honouring, flushed on DNS change).

Entries are keyed by (PvD ID, name, type).  Positive answers live for their
minimum TTL along the CNAME chain; negative ones (an error object) for the
SOA minimum when the reply carried an SOA, else they are not cached (RFC
2308).  :meth:`DnsCache.observe` is called with every new view of a PvD;
when its DNS configuration (servers, search domains, addresses, interfaces,
handle) differs from the last one seen, that PvD's entries are dropped, so
an answer from an old server is never served for the new one; an answer a lookup
started before the change brings back after it is not stored (:meth:`DnsCache.put` with the
fingerprint the lookup started from).

The clock is injectable so that expiry is tested without sleeping.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Hashable

from pvdrun.model import Pvd

#: Cap on any TTL, as resolvers commonly do (one day).
MAX_TTL = 86400


def dns_fingerprint(pvd: Pvd) -> Hashable:
    """What, when it changes, invalidates a PvD's cached answers."""
    return (pvd.handle, tuple(pvd.dns_servers), tuple(pvd.search_domains),
            tuple(sorted(pvd.addresses)), tuple(pvd.interfaces))


class DnsCache:
    """Thread-safe LRU of per-PvD answers."""

    def __init__(self, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[tuple[str, str, str], tuple[float, object]] = OrderedDict()
        self._fingerprints: dict[str, Hashable] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(pvd_id: str, name: str, rdtype: str) -> tuple[str, str, str]:
        return (pvd_id, name.rstrip(".").lower(), rdtype.upper())

    def get(self, pvd_id: str, name: str, rdtype: str) -> object | None:
        """The cached value (an Answer or a ResolveError), or None when absent or expired."""
        hit = self.get_with_ttl(pvd_id, name, rdtype)
        return None if hit is None else hit[0]

    def get_with_ttl(self, pvd_id: str, name: str, rdtype: str) -> tuple[object, int] | None:
        """The cached value and the whole seconds it has left, or None when absent or expired."""
        key = self._key(pvd_id, name, rdtype)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            left = expires - self.clock()
            if left <= 0:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value, max(1, int(left))

    def put(self, pvd_id: str, name: str, rdtype: str, value: object, ttl: int,
            fingerprint: Hashable | None = None) -> None:
        """Remember ``value`` for ``ttl`` seconds (nothing for ttl <= 0).  With ``fingerprint``
        (:func:`dns_fingerprint` of the PvD the lookup asked), nothing either unless it is the
        PvD's current one (:meth:`observe`): the value came from an old configuration, or the
        PvD went away."""
        ttl = min(int(ttl), MAX_TTL)
        if ttl <= 0:
            return
        key = self._key(pvd_id, name, rdtype)
        with self._lock:
            if fingerprint is not None and self._fingerprints.get(pvd_id) != fingerprint:
                return  # the PvD's DNS changed (or it went away) while the lookup ran
            self._entries[key] = (self.clock() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def flush(self, pvd_id: str | None = None) -> int:
        """Drop one PvD's entries (all when None); returns how many."""
        with self._lock:
            if pvd_id is None:
                count = len(self._entries)
                self._entries.clear()
                return count
            doomed = [k for k in self._entries if k[0] == pvd_id]
            for key in doomed:
                del self._entries[key]
            return len(doomed)

    def observe(self, pvd: Pvd) -> bool:
        """Note the PvD's current configuration; flush it if its DNS changed. True when flushed."""
        fingerprint = dns_fingerprint(pvd)
        with self._lock:
            previous = self._fingerprints.get(pvd.pvd_id)
            self._fingerprints[pvd.pvd_id] = fingerprint
        if previous is not None and previous != fingerprint:
            self.flush(pvd.pvd_id)
            return True
        return False

    def forget(self, pvd_id: str) -> None:
        """The PvD is gone: drop its entries and its fingerprint."""
        with self._lock:
            self._fingerprints.pop(pvd_id, None)
        self.flush(pvd_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
