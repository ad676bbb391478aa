"""PvD-scoped DNS lookups for pvdd's clients (op "resolve"), off the event loop.

Lookups block (timeouts), so they run in a small thread pool; a finished
lookup is queued and the loop is woken through a socketpair.  One
:class:`pvdrun.resolve.service.PvdResolverService` (one PvD-keyed cache)
serves every client; pvdd calls :meth:`ResolveWorker.sync` with its table
after every change, which flushes the cache of a PvD whose DNS changed.
dnspython is imported only at the first lookup.
"""
from __future__ import annotations

import logging
import queue
import socket
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pvdrun.daemon.protocol import E_BAD_REQUEST, E_RESOLVE_FAILED, error_reply, ok_reply
from pvdrun.model import Pvd

if TYPE_CHECKING:
    from pvdrun.resolve.service import PvdResolverService

log = logging.getLogger("pvdrun.pvdd")

MAX_WORKERS = 4


class ResolveWorker:
    """A thread pool answering resolve requests; results come back via ``completed``."""

    def __init__(self, max_workers: int = MAX_WORKERS) -> None:
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self._done: queue.SimpleQueue[tuple[object, dict[str, Any]]] = queue.SimpleQueue()
        self._executor: ThreadPoolExecutor | None = None
        self._service: PvdResolverService | None = None
        self._max_workers = max_workers

    def sync(self, pvds: list[Pvd]) -> None:
        """Tell the cache about the current table (no-op before the first lookup)."""
        if self._service is not None:
            dropped = self._service.sync(pvds)
            if dropped:
                log.debug("DNS cache dropped for %s", ", ".join(dropped))

    def submit(self, token: object, pvd: Pvd, host: str, rdtype: str) -> None:
        """Start a lookup; its reply appears in ``completed()`` with ``token``."""
        if self._service is None:
            from pvdrun.resolve.service import PvdResolverService

            self._service = PvdResolverService()
            self._executor = ThreadPoolExecutor(self._max_workers, thread_name_prefix="pvdd-dns")
        assert self._executor is not None
        future = self._executor.submit(self._lookup, pvd, host, rdtype)
        future.add_done_callback(lambda done: self._finish(token, done))

    def _lookup(self, pvd: Pvd, host: str, rdtype: str) -> dict[str, Any]:
        from pvdrun.resolve.errors import ResolveError

        assert self._service is not None
        try:
            answer = self._service.resolve(pvd, host, rdtype)
        except ResolveError as exc:
            reply = error_reply(E_RESOLVE_FAILED, str(exc))
            reply["error"]["kind"] = exc.kind
            return reply
        except ValueError as exc:  # e.g. an unknown record type
            return error_reply(E_BAD_REQUEST, f"cannot resolve {host!r} type {rdtype!r}: {exc}")
        return ok_reply("resolve", pvd=pvd.pvd_id, answer=answer.to_dict())

    def _finish(self, token: object, future: Future) -> None:
        try:
            reply = future.result()
        except Exception as exc:  # never lose a reply: the client waits for it
            log.exception("lookup failed unexpectedly")
            reply = error_reply(E_RESOLVE_FAILED, f"internal error: {exc}")
            reply["error"]["kind"] = "internal"
        self._done.put((token, reply))
        try:
            self.wake_w.send(b"\0")
        except OSError:
            pass  # the loop is already awake (buffer full) or shutting down

    def completed(self) -> list[tuple[object, dict[str, Any]]]:
        """Replies of finished lookups (call when ``wake_r`` is readable)."""
        try:
            while self.wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        results = []
        while True:
            try:
                results.append(self._done.get_nowait())
            except queue.Empty:
                return results

    def close(self) -> None:
        """Stop the pool (running lookups finish on their own) and close the socketpair."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.wake_r.close()
        self.wake_w.close()
