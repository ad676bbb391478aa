"""pvdd's requests: one table, op name -> handler (docs/protocol.md, "Requests").

A handler gets what it may see of pvdd (:class:`Served`: the PvD table and the resolver
worker), the client's connection (:class:`Caller`) and the decoded request, and returns
the reply, or None when the reply comes later (a lookup, from the worker).  The replies
are built with pvdrun.daemon.protocol, the one place that writes pvdd's JSON.
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any, Protocol

from pvdrun.daemon.protocol import (E_AMBIGUOUS, E_BAD_REQUEST, E_CANNOT_HONOUR, E_FORBIDDEN, E_UNAVAILABLE, E_UNKNOWN_OP,
                                    E_UNKNOWN_PVD, encode, error_reply, ok_reply)
from pvdrun.discovery.events import Table
from pvdrun.discovery.names import PvdLookupError, lookup
from pvdrun.launch_rules import needs_python_launcher, refusal, scope_line
from pvdrun.model import NULL_PVD_NAME, Pvd
from pvdrun.routing.marking import MarkRefused, NotAllowed, UnknownHandle, mark_socket
from pvdrun.routing.policy import Credentials, peer_credentials
from pvdrun.strict.service import EnterRefused, Forbidden, StrictService, alive, peer_pidfd
from pvdrun.verify.linkwatch import WatchError
from pvdrun.daemon.watches import Registry, WatchRefused

log = logging.getLogger("pvdrun.pvdd")

Reply = dict[str, Any]


class Lookups(Protocol):
    """The resolver worker (pvdrun.daemon.resolving.ResolveWorker)."""

    def cached(self, pvd: Pvd, host: str, rdtype: str) -> bytes | None: ...

    def submit(self, token: object, pvd: Pvd, host: str, rdtype: str) -> None: ...


class Served(Protocol):
    """What a handler sees of pvdd."""

    @property
    def pvds(self) -> list[Pvd]: ...

    @property
    def table(self) -> Table: ...

    @property
    def worker(self) -> Lookups: ...

    @property
    def strict(self) -> StrictService | None: ...

    @property
    def strict_unavailable(self) -> str | None: ...

    @property
    def watches(self) -> Registry | None: ...


class Caller(Protocol):
    """What a handler sees of the client's connection (pvdrun.daemon.server.Conn)."""

    sock: socket.socket
    subscribed: bool
    busy: bool
    fds: list[int]


Handler = Callable[[Served, Caller, dict[str, Any]], "Reply | bytes | None"]


def _lookup_error(exc: PvdLookupError) -> Reply:
    return error_reply(E_AMBIGUOUS if exc.ambiguous else E_UNKNOWN_PVD, str(exc), exc.candidates)


def _strict_status(daemon: Served) -> dict[str, Any]:
    """Whether pvdd can hold programs in strict mode, and how many processes each PvD holds."""
    if daemon.strict is None:
        return {"available": False, "why": daemon.strict_unavailable or "unavailable", "processes": {}}
    return {"available": True, "processes": daemon.strict.counts(daemon.pvds)}


def _list(daemon: Served, conn: Caller, request: dict[str, Any]) -> bytes:
    """The table as encoded once per table (a thousand PvDs take milliseconds to encode),
    with strict mode's status, which changes without it, added to each reply."""
    table = daemon.table
    head = table.encoded.get("list")
    if head is None:
        whole = encode(ok_reply("list", pvds=list(table.dicts.values()), default=table.default))
        head = table.encoded["list"] = whole[:-2]  # without its closing "}\n"
    return head + b',"strict":' + encode(_strict_status(daemon))[:-1] + b"}\n"


def _get(daemon: Served, conn: Caller, request: dict[str, Any]) -> Reply:
    name = request.get("name")
    if not isinstance(name, str) or not name:
        return error_reply(E_BAD_REQUEST, "get needs a \"name\" string")
    try:
        pvd = lookup(daemon.pvds, name)
    except PvdLookupError as exc:
        return _lookup_error(exc)
    return ok_reply("get", pvd=daemon.table.dicts.get(pvd.pvd_id) or pvd.to_dict())


def _scope(daemon: Served, conn: Caller, request: dict[str, Any]) -> Reply:
    """What a launcher gives a program of the PvD ``name``: its scope line and, for a root
    launcher, its resolv.conf (the native launcher, launcher/, asks this and nothing else)."""
    from pvdrun.resolve.resolvconf import render_resolv_conf

    name = request.get("name")
    if not isinstance(name, str) or not name or name == NULL_PVD_NAME:
        return error_reply(E_BAD_REQUEST, "scope needs a \"name\" string naming a PvD (not null)")
    try:
        pvd = lookup(daemon.pvds, name)
    except PvdLookupError as exc:
        return _lookup_error(exc)
    why = refusal(pvd)
    try:
        scope = scope_line(pvd) if why is None else ""
    except ValueError as exc:
        why = str(exc)
    if why is not None:
        return error_reply(E_CANNOT_HONOUR, why)
    if needs_python_launcher(pvd):  # a note, proxy variables: the native launcher hands over
        return ok_reply("scope", pvd=pvd.pvd_id, scope=scope, resolv_conf=render_resolv_conf(pvd),
                        needs="pvdrun-cli")
    return ok_reply("scope", pvd=pvd.pvd_id, scope=scope, resolv_conf=render_resolv_conf(pvd))


def _default_op(daemon: Served, conn: Caller, request: dict[str, Any]) -> Reply:
    default = daemon.table.default
    return ok_reply("default", pvd=daemon.table.dicts.get(default) if default else None)


def _subscribe(daemon: Served, conn: Caller, request: dict[str, Any]) -> Reply:
    conn.subscribed = True
    return ok_reply("subscribe", **daemon.table.snapshot_event())


def _resolve(daemon: Served, conn: Caller, request: dict[str, Any]) -> Reply | bytes | None:
    """{"name": PVD, "host": HOST, "type": "A"}: answered here when the cache knows it (no
    thread involved; the reply line comes encoded); otherwise handed to the worker, and the
    connection waits (later requests, cache hits included, stay queued: replies in order)."""
    name, host, rdtype = request.get("name"), request.get("host"), request.get("type", "A")
    if not (isinstance(name, str) and isinstance(host, str) and isinstance(rdtype, str)
            and name and host and rdtype):
        return error_reply(E_BAD_REQUEST, "resolve needs \"name\" (a PvD) and \"host\" strings, "
                           "and optionally \"type\"")
    try:
        pvd = lookup(daemon.pvds, name)
    except PvdLookupError as exc:
        return _lookup_error(exc)
    rdtype = rdtype.upper()
    reply = daemon.worker.cached(pvd, host, rdtype)
    if reply is not None:
        return reply
    conn.busy = True
    daemon.worker.submit(conn, pvd, host, rdtype)
    return None


def _close(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def _marked(pvds: list[Pvd], request: dict[str, Any], fd: int | None, peer: Credentials) -> Reply:
    handle = request.get("handle")
    if fd is None:
        return error_reply(E_BAD_REQUEST, "mark needs a socket passed with SCM_RIGHTS")
    if not isinstance(handle, int) or isinstance(handle, bool):
        return error_reply(E_BAD_REQUEST, "mark needs a \"handle\" integer")
    try:
        pvd = mark_socket(pvds, handle, fd, peer)
    except UnknownHandle as exc:
        return error_reply(E_UNKNOWN_PVD, str(exc))
    except NotAllowed as exc:
        return error_reply(E_FORBIDDEN, str(exc))
    except MarkRefused as exc:
        return error_reply(E_BAD_REQUEST, str(exc))
    except OSError as exc:
        return error_reply(E_BAD_REQUEST, f"cannot mark the socket: {exc.strerror or exc}")
    return ok_reply("mark", pvd=pvd.pvd_id, mark=pvd.mark)


def _mark(daemon: Served, conn: Caller, request: dict[str, Any]) -> Reply:
    """{"handle": N} with one socket passed (SCM_RIGHTS) in the same sendmsg: pvdd checks the
    peer's credentials (SO_PEERCRED) and marks it (pvdrun.routing.marking)."""
    fd = conn.fds.pop(0) if conn.fds else None
    try:
        try:
            peer = peer_credentials(conn.sock)
        except OSError as exc:
            return error_reply(E_BAD_REQUEST, f"no peer credentials: {exc}")
        reply = _marked(daemon.pvds, request, fd, peer)
    finally:
        _close(fd)
    if not reply["ok"]:
        log.info("mark refused for pid %d uid %d: %s", peer.pid, peer.uid, reply["error"]["message"])
    return reply


def _peer(conn: Caller) -> tuple[Credentials, int] | Reply:
    """The process that connected (SO_PEERCRED) and a pidfd of it (the caller closes it), or
    the error reply when the kernel gives neither."""
    try:
        peer = peer_credentials(conn.sock)
        return peer, peer_pidfd(conn.sock, peer.pid)
    except OSError as exc:
        return error_reply(E_BAD_REQUEST, f"no peer credentials: {exc}")


def _strict(daemon: Served, conn: Caller, request: dict[str, Any]) -> Reply:
    """{"name": PVD}: move the client (the process that connected: SO_PEERCRED, SO_PEERPIDFD)
    into the PvD's strict cgroup, after the same policy check as for a mark (R23).  Nothing
    else can be moved: the request names no process."""
    name = request.get("name")
    if not isinstance(name, str) or not name:
        return error_reply(E_BAD_REQUEST, "strict needs a \"name\" string")
    pvd: Pvd | None = None
    if name != NULL_PVD_NAME:
        try:
            pvd = lookup(daemon.pvds, name)
        except PvdLookupError as exc:
            return _lookup_error(exc)
    if daemon.strict is None:
        return error_reply(E_UNAVAILABLE, f"pvdd cannot hold programs in strict mode: "
                           f"{daemon.strict_unavailable or 'unavailable'}")
    found = _peer(conn)
    if isinstance(found, dict):
        return found
    peer, pidfd = found
    try:
        path = daemon.strict.enter(pvd, peer, pidfd)
    except Forbidden as exc:
        log.info("strict refused for pid %d uid %d: %s", peer.pid, peer.uid, exc)
        return error_reply(E_FORBIDDEN, str(exc))
    except EnterRefused as exc:
        return error_reply(E_UNAVAILABLE, str(exc))
    finally:
        os.close(pidfd)
    return ok_reply("strict", pvd=pvd.pvd_id if pvd is not None else NULL_PVD_NAME, cgroup=path)


def _watches(daemon: Served) -> Registry | Reply:
    if daemon.watches is None:
        return error_reply(E_UNAVAILABLE, "pvdd makes watches only when it runs as root")
    return daemon.watches


def _watch(daemon: Served, conn: Caller, request: dict[str, Any]) -> Reply:
    """A new watch (pvdrun/verify/linkwatch.py) for this connection: a cgroup whose
    processes' packets are counted per link and 5-tuple; removed with the connection."""
    watches = _watches(daemon)
    if not isinstance(watches, Registry):
        return watches
    try:
        token = watches.open(id(conn), peer_credentials(conn.sock).uid)
    except (WatchRefused, WatchError, OSError) as exc:
        return error_reply(E_UNAVAILABLE, str(exc))
    return ok_reply("watch", token=token)


def _watch_enter(daemon: Served, conn: Caller, request: dict[str, Any]) -> Reply:
    """{"token": T}: move the client (SO_PEERCRED; nothing else can be moved) into the watch
    T, which a connection of the same user made; never out of strict mode or another watch."""
    watches = _watches(daemon)
    if not isinstance(watches, Registry):
        return watches
    found = _peer(conn)
    if isinstance(found, dict):
        return found
    peer, pidfd = found
    try:
        if not alive(pidfd):
            return error_reply(E_UNAVAILABLE, "the process that asked has exited")
        path = watches.enter(request.get("token"), peer.pid, peer.uid)
    except WatchRefused as exc:
        return error_reply(E_FORBIDDEN, str(exc))
    except (WatchError, OSError) as exc:
        return error_reply(E_UNAVAILABLE, str(exc))
    finally:
        os.close(pidfd)
    return ok_reply("watch_enter", cgroup=path)


def _watch_end(daemon: Served, conn: Caller, request: dict[str, Any]) -> Reply:
    """{"token": T}: what the watch T of this connection saw; the watch is removed and the
    processes still in it end."""
    watches = _watches(daemon)
    if not isinstance(watches, Registry):
        return watches
    try:
        seen = watches.end(request.get("token"), id(conn))
    except WatchRefused as exc:
        return error_reply(E_FORBIDDEN, str(exc))
    except (WatchError, OSError) as exc:
        return error_reply(E_UNAVAILABLE, str(exc))
    return ok_reply("watch_end", **seen)


#: The one table of pvdd's requests.
HANDLERS: dict[str, Handler] = {
    "list": _list,
    "get": _get,
    "scope": _scope,
    "default": _default_op,
    "subscribe": _subscribe,
    "resolve": _resolve,
    "mark": _mark,
    "strict": _strict,
    "watch": _watch,
    "watch_enter": _watch_enter,
    "watch_end": _watch_end,
}
#: The ops pvdd answers (docs/protocol.md, "Requests").
OPS = tuple(HANDLERS)


def handle(daemon: Served, conn: Caller, request: dict[str, Any]) -> Reply | bytes | None:
    """The reply to one well-formed request (bytes: its line, already encoded; None: it comes
    later)."""
    op = request.get("op")
    handler = HANDLERS.get(op) if isinstance(op, str) else None
    if handler is None:
        return error_reply(E_UNKNOWN_OP, f"unknown op {op!r}; expected one of {', '.join(OPS)}")
    return handler(daemon, conn, request)
