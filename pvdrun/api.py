"""The Python API (``import pvdrun``): list, look up, and watch PvDs (R1, R2, R9, R14-R17, R22),
and resolve names with a PvD's DNS (R25).

Every function asks pvdd when its socket answers and otherwise runs a
one-shot discovery in this process (kernel state, per-link stores,
configuration, and a Router Solicitation with a short bounded wait).
Explicit and implicit PvDs come back alike (R22).  pyroute2 is imported
only when a one-shot discovery actually runs.  See docs/python-api.md.

pvdd's connection is kept: the calls of one process share one connected socket
(per socket path), lent to one thread at a time under a lock; a thread that finds
it lent out opens another (up to :data:`KEEP_IDLE` are kept).  A connection pvdd
closed (it stopped or restarted) is replaced once, transparently.  After fork()
the child never uses the parent's connections: it closes its copies and connects
anew (an at-fork handler, and a check of os.getpid()).
"""
from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Iterator

from pvdrun.discovery.names import PvdLookupError
from pvdrun.model import Pvd, default_of

if TYPE_CHECKING:
    from pvdrun.daemon.protocol import Client, DaemonError
    from pvdrun.resolve.answer import Answer

__all__ = ["PvdLookupError", "default_pvd", "list_pvds", "lookup", "resolve", "watch"]

#: Idle connections kept per pvdd socket (one, unless threads ask at the same time).
KEEP_IDLE = 4
#: Seconds pvdd may take to answer list, get, default (more: it counts as no pvdd).
TIMEOUT = 5.0
#: Seconds pvdd may take to answer a resolve: its lookup may wait for every server's
#: timeout (5 s) in each of its attempts (2).
RESOLVE_TIMEOUT = 60.0


class _Kept:
    """This process's idle connections to pvdd, by socket path (lock held only to take or
    give one back, never during an exchange)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.idle: dict[str, list[Client]] = {}

    def take(self, path: str) -> Client | None:
        """An idle connection to ``path``, or None (then the caller connects)."""
        with self.lock:
            idle = self.idle.get(path)
            return idle.pop() if idle else None

    def give(self, client: Client) -> None:
        """Keep ``client`` for the next call (closed when enough are kept)."""
        with self.lock:
            idle = self.idle.setdefault(client.path, [])
            if len(idle) < KEEP_IDLE:
                idle.append(client)
                return
        client.close()

    def drop(self, path: str) -> None:
        """Close the idle connections to ``path`` (pvdd went away: they are all dead)."""
        with self.lock:
            doomed = self.idle.pop(path, [])
        for client in doomed:
            client.close()

    def close_copies(self) -> None:
        """In a child after fork: close this process's copies of the parent's connections
        (the parent's stay open; closing a descriptor does not shut the connection down)."""
        for clients in self.idle.values():
            for client in clients:
                client.close()
        self.idle = {}


_kept = _Kept()


def _kept_here() -> _Kept:
    """This process's connections: after fork(), a fresh set (the parent's are not shared)."""
    global _kept
    kept = _kept
    if kept.pid != os.getpid():  # a fork the at-fork handler did not see (fork from C)
        kept.close_copies()
        kept = _kept = _Kept()
    return kept


def _after_fork_in_child() -> None:
    global _kept
    _kept.close_copies()
    _kept = _Kept()  # a new lock too: another thread of the parent may have held the old one


os.register_at_fork(after_in_child=_after_fork_in_child)


def _request(path: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """pvdd's ok=true reply to ``request`` on a kept connection, connecting when none is idle,
    and once more when the kept one turns out closed (pvdd restarted).  Raises
    DaemonUnavailable, DaemonError."""
    from pvdrun.daemon.protocol import Client, ConnectionLost, DaemonError

    kept = _kept_here()
    client = kept.take(path)
    reused = client is not None
    try:
        if client is None:
            client = Client(path, TIMEOUT)
        try:
            reply = client.exchange(request, timeout=timeout)
        except ConnectionLost:
            if not reused:
                raise
            client.close()
            kept.drop(path)  # from the same pvdd: as dead as this one
            client = Client(path, TIMEOUT)
            reply = client.exchange(request, timeout=timeout)
    except DaemonError:
        kept.give(client)  # a whole reply was read: the connection is in step
        raise
    except BaseException:
        if client is not None:
            client.close()  # out of step, or dead
        raise
    kept.give(client)
    return reply


def _ask(socket_path: str | None, op: str, name: str | None = None, *, timeout: float = TIMEOUT,
         **fields: Any) -> dict[str, Any] | None:
    """pvdd's reply to one request, or None when pvdd does not answer (or hangs,
    or is not pvdd): the caller then discovers in-process.  Error replies raise
    pvdrun.daemon.protocol.DaemonError."""
    from pvdrun.daemon.protocol import DaemonUnavailable
    from pvdrun.daemon.protocol import socket_path as path_of

    if name is not None:
        fields["name"] = name
    try:
        return _request(path_of(socket_path), {"op": op, **fields}, timeout)
    except DaemonUnavailable:
        return None


def _client(socket_path: str | None) -> Client | None:
    """A connection of its own (a subscription), or None when pvdd does not answer."""
    from pvdrun.daemon.protocol import Client, DaemonUnavailable

    try:
        return Client(socket_path)
    except DaemonUnavailable:
        return None


def _discover(want: str | None = None) -> list[Pvd]:
    from pvdrun.discovery.engine import discover

    return discover(want=want)


def _lookup_error(name: str, exc: DaemonError) -> PvdLookupError | None:
    from pvdrun.daemon.protocol import E_AMBIGUOUS, E_UNKNOWN_PVD

    if exc.code in (E_UNKNOWN_PVD, E_AMBIGUOUS):
        return PvdLookupError(name, exc.candidates, exc.code == E_AMBIGUOUS, exc.message)
    return None


def list_pvds(socket_path: str | None = None, *, use_daemon: bool = True) -> list[Pvd]:
    """Every PvD the host is attached to, explicit and implicit alike (R14, R16).

    Asks pvdd at ``socket_path`` ($PVDRUN_SOCKET, /run/pvd/pvdd.sock) when it
    answers and ``use_daemon`` is true, else runs a one-shot discovery.
    Raises pvdrun.config.ConfigError for a malformed configuration.
    """
    if use_daemon:
        reply = _ask(socket_path, "list")
        if reply is not None:
            return [Pvd.from_dict(d) for d in reply.get("pvds", [])]
    return _discover()


def lookup(name: str, socket_path: str | None = None, *, use_daemon: bool = True,
           config_path: str | None = None) -> Pvd:
    """The PvD that ``name`` means: PvD ID, configured name, short name,
    interface name, or kind alias (wifi, ethernet, cellular, vpn).

    Asks pvdd unless ``use_daemon`` is false or a ``config_path`` is given (a one-shot
    discovery with that configuration).  Raises PvdLookupError when no PvD or several
    match.  "null" is not handled here.
    """
    from pvdrun.daemon.protocol import DaemonError

    if use_daemon and config_path is None:
        try:
            reply = _ask(socket_path, "get", name)
        except DaemonError as exc:
            raise (_lookup_error(name, exc) or exc) from None
        if reply is not None:
            return Pvd.from_dict(reply["pvd"])
    from pvdrun.discovery import names
    from pvdrun.discovery.engine import discover

    return names.lookup(discover(config_path=config_path, want=name), name)


def default_pvd(socket_path: str | None = None) -> Pvd | None:
    """The system's default PvD (R9), or None when the host has no default route."""
    reply = _ask(socket_path, "default")
    if reply is not None:
        data = reply.get("pvd")
        return Pvd.from_dict(data) if data else None
    return default_of(_discover())


def resolve(pvd: Pvd | str, host: str, rdtype: str = "A", socket_path: str | None = None) -> Answer:
    """``host``'s ``rdtype`` records from the DNS servers of ``pvd`` (a Pvd or any name
    :func:`lookup` takes), with its search list, from its own addresses only (R25).

    Asks pvdd (op resolve: its cache is shared by every client, and a cached answer says
    ``server`` None and the seconds it has left as ``ttl``) when it answers, else resolves
    in this process (pvdrun.resolve.PvdResolver, no cache).  Raises
    pvdrun.resolve.ResolveError (``kind``: nxdomain, nodata, timeout, servfail, no-server,
    bad-name), PvdLookupError, ValueError for a record type pvdd does not know.
    """
    from pvdrun.daemon.protocol import E_RESOLVE_FAILED, DaemonError
    from pvdrun.resolve.answer import Answer
    from pvdrun.resolve.errors import ResolveError

    name = pvd.pvd_id if isinstance(pvd, Pvd) else pvd
    try:
        reply = _ask(socket_path, "resolve", name, timeout=RESOLVE_TIMEOUT, host=host, type=rdtype)
    except DaemonError as exc:
        if exc.code == E_RESOLVE_FAILED:
            raise ResolveError(exc.kind, exc.message) from None
        raise (_lookup_error(name, exc) or ValueError(exc.message)) from None
    if reply is not None:
        return Answer.from_dict(reply["answer"])
    from pvdrun.resolve.resolver import PvdResolver

    return PvdResolver(pvd if isinstance(pvd, Pvd) else lookup(pvd, socket_path)).resolve(host, rdtype)


def watch(socket_path: str | None = None) -> Iterator[dict[str, Any]]:
    """Stream PvD events (R1, R2, R10, R15, R17), from notifications, never polling.

    The first event is ``{"event": "snapshot", "pvds": [...], "default": ID}``,
    then ``added``, ``removed``, ``changed`` (with ``"changed": {attr: {"old",
    "new"}}``) and ``default`` events; see docs/python-api.md.  Uses pvdd's
    subscription (a connection of its own) when pvdd answers, else listens to
    netlink and RAs itself.
    """
    client = _client(socket_path)
    if client is not None:
        with client:
            for message in client.subscribe():
                message = dict(message)
                for key in ("v", "ok", "op"):
                    message.pop(key, None)
                yield message
        return
    from pvdrun.discovery.engine import Discovery

    discovery = Discovery()
    try:
        yield from discovery.run_events()
    finally:
        discovery.close()
