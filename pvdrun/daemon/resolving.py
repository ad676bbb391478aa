"""PvD-scoped DNS lookups for pvdd's clients (op "resolve"): the cache in the loop, queries off it.

An answer the cache holds (and has not expired) is given at once, in the event loop
(:meth:`ResolveWorker.cached`: no thread, no wake-up).  Anything else needs queries, which
block (timeouts), so it runs in a small thread pool; a finished lookup is queued and the
loop is woken through a socketpair.  One
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

from pvdrun.daemon.protocol import E_BAD_REQUEST, E_RESOLVE_FAILED, encode, error_reply, ok_reply
from pvdrun.model import Pvd
from pvdrun.resolve.errors import ResolveError

if TYPE_CHECKING:
    from pvdrun.resolve.answer import Answer
    from pvdrun.resolve.service import PvdResolverService

log = logging.getLogger("pvdrun.pvdd")

MAX_WORKERS = 4
#: Reply lines of cache hits kept (all dropped when full).
MAX_LINES = 4096


def _reply(pvd: Pvd, outcome: "Answer | ResolveError") -> dict[str, Any]:
    """The resolve reply for an answer or a failed lookup."""
    if isinstance(outcome, ResolveError):
        reply = error_reply(E_RESOLVE_FAILED, str(outcome))
        reply["error"]["kind"] = outcome.kind
        return reply
    return ok_reply("resolve", pvd=pvd.pvd_id, answer=outcome.to_dict())


class ResolveWorker:
    """Answers resolve requests: from the cache at once (:meth:`cached`, in the event loop),
    else in a thread pool (:meth:`submit`), whose results come back via :meth:`completed`."""

    def __init__(self, max_workers: int = MAX_WORKERS) -> None:
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self._done: queue.SimpleQueue[tuple[object, dict[str, Any]]] = queue.SimpleQueue()
        self._executor: ThreadPoolExecutor | None = None
        self._service: PvdResolverService | None = None
        self._max_workers = max_workers
        # (PvD ID, host, type) -> (cached answer, seconds left, its reply line): event loop only
        self._lines: dict[tuple[str, str, str], tuple[object, int, bytes]] = {}

    def sync(self, pvds: list[Pvd]) -> None:
        """Tell the cache about the current table (no-op before the first lookup)."""
        self._lines.clear()
        if self._service is not None:
            dropped = self._service.sync(pvds)
            if dropped:
                log.debug("DNS cache dropped for %s", ", ".join(dropped))

    def cached(self, pvd: Pvd, host: str, rdtype: str) -> bytes | None:
        """The reply line when the cache alone answers (a cached answer, or a cached failure
        of the whole search), else None: the lookup needs queries (:meth:`submit`).  Runs in
        the event loop; never raises (a surprise is logged and treated as a miss).

        The encoded line of an answer is kept until the answer changes or its seconds left
        do, so that a hit is a cache read and a dictionary read, not a JSON encoding."""
        service = self._service
        if service is None:  # nothing asked yet, nothing cached (dnspython not loaded)
            return None
        try:
            hit = service.cached(pvd, host, rdtype)
            if hit is None:
                return None
            if isinstance(hit, ResolveError):
                return encode(_reply(pvd, hit))
            return self._answer_line(pvd.pvd_id, host, rdtype, *hit)
        except Exception:  # the loop must go on: the pool will answer (or say why)
            log.exception("answering from the DNS cache failed")
            return None

    def _answer_line(self, pvd_id: str, host: str, rdtype: str, answer: "Answer", left: int) -> bytes:
        key = (pvd_id, host, rdtype)
        kept = self._lines.get(key)
        if kept is not None and kept[0] is answer and kept[1] == left:
            return kept[2]
        fields = answer.to_dict()
        fields["server"] = None  # from the cache: no server asked
        fields["ttl"] = left     # the seconds it has left
        line = encode(ok_reply("resolve", pvd=pvd_id, answer=fields))
        if len(self._lines) >= MAX_LINES:
            self._lines.clear()
        self._lines[key] = (answer, left, line)
        return line

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
        from dns.rdatatype import UnknownRdatatype

        assert self._service is not None
        try:
            return _reply(pvd, self._service.resolve(pvd, host, rdtype))
        except ResolveError as exc:
            return _reply(pvd, exc)
        except (ValueError, UnknownRdatatype) as exc:  # an unknown record type
            return error_reply(E_BAD_REQUEST, f"cannot resolve {host!r} type {rdtype!r}: {exc}")

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
