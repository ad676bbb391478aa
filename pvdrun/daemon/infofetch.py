"""RFC 8801 Additional Information for pvdd: when to fetch in the event loop, the fetches in
threads (docs/pvdinfo.md).

pvdd tells the schedule (:class:`pvdrun.pvdinfo.schedule.Schedule`) about every explicit PvD
after each table (:meth:`InfoFetcher.sync`); the loop wakes at the schedule's next deadline
and starts what is due (:meth:`InfoFetcher.start_due`); a fetch runs in a small thread pool,
bound to the PvD's interface, addresses, mark and DNS servers, and its result comes back
through a socketpair (:meth:`InfoFetcher.completed`).  The current objects go to discovery,
which puts them on the PvDs at the next assembly: a changed object is a ``changed`` event.
A fetch never blocks discovery, and a PvD without an object (none published, none valid
yet, a failed fetch) is as usable as before.
"""
from __future__ import annotations

import logging
import queue
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pvdrun.config import InfoConfig
from pvdrun.discovery.infos import announced_prefixes
from pvdrun.model import Pvd

if TYPE_CHECKING:
    from pvdrun.pvdinfo.model import AdditionalInfo

log = logging.getLogger("pvdrun.pvdd")

MAX_WORKERS = 2


class InfoFetcher:
    """pvdd's Additional Information: the schedule, the fetches, the current objects."""

    def __init__(self, config: InfoConfig) -> None:
        from pvdrun.pvdinfo.schedule import Schedule

        self.config = config
        self.schedule = Schedule()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self._done: queue.SimpleQueue[tuple[str, int, AdditionalInfo | None, str]] = queue.SimpleQueue()
        self._executor: ThreadPoolExecutor | None = None
        self._pvds: dict[str, Pvd] = {}
        self._published: dict[str, dict[str, Any]] = {}

    def sync(self, pvds: list[Pvd], now: float) -> None:
        """The current table: what the RAs say of each explicit PvD (H flag, sequence)."""
        seen = {p.pvd_id: p for p in pvds if p.explicit and p.sequence is not None}
        for pvd_id in set(self._pvds) - set(seen):
            self.schedule.forget(pvd_id)
        for pvd in seen.values():
            self.schedule.on_ra(pvd.pvd_id, int(pvd.sequence or 0), bool(pvd.flags.get("H")), now)
        self._pvds = seen

    def start_due(self, now: float) -> None:
        """Start the fetches that are due (each in the pool)."""
        for pvd_id, sequence in self.schedule.due(now):
            pvd = self._pvds.get(pvd_id)
            if pvd is None or not pvd.interfaces:
                self.schedule.fetched(pvd_id, sequence, None, now)
                continue
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="pvdinfo")
            self._executor.submit(self._fetch, pvd, sequence)

    def _fetch(self, pvd: Pvd, sequence: int) -> None:
        from pvdrun.pvdinfo.errors import InfoError
        from pvdrun.pvdinfo.fetch import fetch

        info, why = None, ""
        try:
            info = fetch(pvd.pvd_id, sequence, interface=pvd.interfaces[0], source_addresses=pvd.ip_addresses(),
                         dns_servers=list(pvd.dns_servers), announced_prefixes=announced_prefixes(pvd),
                         mark=pvd.mark, ca_file=self.config.ca_file)
        except InfoError as exc:
            why = str(exc)
        except Exception as exc:  # noqa: BLE001 - a fetch must never take pvdd down
            why = f"unexpected {type(exc).__name__}: {exc}"
        self._done.put((pvd.pvd_id, sequence, info, why))
        try:
            self.wake_w.send(b"\0")
        except OSError:
            pass

    def completed(self, now: float) -> bool:
        """Take the finished fetches (the loop was woken); whether the current objects changed."""
        try:
            while self.wake_r.recv(4096):
                pass
        except OSError:
            pass
        while True:
            try:
                pvd_id, sequence, info, why = self._done.get_nowait()
            except queue.Empty:
                break
            self.schedule.fetched(pvd_id, sequence, info, now)
            if info is None:
                log.warning("PvD %s: no Additional Information: %s", pvd_id, why)
            else:
                log.info("PvD %s: Additional Information fetched (sequence %d)", pvd_id, sequence)
        return self.refresh_current(now)

    def refresh_current(self, now: float) -> bool:
        """Recompute the current objects (one expires in time); whether they changed."""
        current = {}
        for pvd_id in self._pvds:
            info = self.schedule.current(pvd_id, now)
            if info is not None:
                current[pvd_id] = info.data
        changed = current != self._published
        self._published = current
        return changed

    @property
    def current(self) -> dict[str, dict[str, Any]]:
        """PvD ID -> the valid object now."""
        return dict(self._published)

    def next_wakeup(self) -> float | None:
        return self.schedule.next_wakeup()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.wake_r.close()
        self.wake_w.close()
