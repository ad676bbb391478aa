"""The Python API (``import pvdrun``): list, look up, and watch PvDs (R1, R2, R9, R14-R17, R22).

Every function asks pvdd when its socket answers and otherwise runs a
one-shot discovery in this process (kernel state, per-link stores,
configuration, and a Router Solicitation with a short bounded wait).
Explicit and implicit PvDs come back alike (R22).  pyroute2 is imported
only when a one-shot discovery actually runs.  See docs/python-api.md.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from pvdrun.discovery.names import PvdLookupError
from pvdrun.model import Pvd, default_of

if TYPE_CHECKING:
    from pvdrun.daemon.protocol import Client

__all__ = ["PvdLookupError", "default_pvd", "list_pvds", "lookup", "watch"]


def _client(socket_path: str | None) -> Client | None:
    """A connected pvdd client, or None when pvdd does not answer."""
    from pvdrun.daemon.protocol import Client, DaemonUnavailable

    try:
        return Client(socket_path)
    except DaemonUnavailable:
        return None


def _ask(socket_path: str | None, op: str, name: str | None = None) -> dict[str, Any] | None:
    """pvdd's reply to one request, or None when pvdd does not answer (or hangs,
    or is not pvdd): the caller then discovers in-process.  Error replies raise
    pvdrun.daemon.protocol.DaemonError."""
    from pvdrun.daemon.protocol import DaemonUnavailable

    client = _client(socket_path)
    if client is None:
        return None
    with client:
        try:
            return client.request(op, name)
        except DaemonUnavailable:
            return None


def _discover(want: str | None = None) -> list[Pvd]:
    from pvdrun.discovery.engine import discover

    return discover(want=want)


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


def lookup(name: str, socket_path: str | None = None) -> Pvd:
    """The PvD that ``name`` means: PvD ID, configured name, short name,
    interface name, or kind alias (wifi, ethernet, cellular, vpn).

    Raises PvdLookupError when no PvD or several match.  "null" is not
    handled here.
    """
    from pvdrun.daemon.protocol import E_AMBIGUOUS, E_UNKNOWN_PVD, DaemonError

    try:
        reply = _ask(socket_path, "get", name)
    except DaemonError as exc:
        if exc.code in (E_UNKNOWN_PVD, E_AMBIGUOUS):
            raise PvdLookupError(name, exc.candidates, exc.code == E_AMBIGUOUS,
                                 exc.message) from None
        raise
    if reply is not None:
        return Pvd.from_dict(reply["pvd"])
    from pvdrun.discovery import names

    return names.lookup(_discover(name), name)


def default_pvd(socket_path: str | None = None) -> Pvd | None:
    """The system's default PvD (R9), or None when the host has no default route."""
    reply = _ask(socket_path, "default")
    if reply is not None:
        data = reply.get("pvd")
        return Pvd.from_dict(data) if data else None
    return default_of(_discover())


def watch(socket_path: str | None = None) -> Iterator[dict[str, Any]]:
    """Stream PvD events (R1, R2, R10, R15, R17), from notifications, never polling.

    The first event is ``{"event": "snapshot", "pvds": [...], "default": ID}``,
    then ``added``, ``removed``, ``changed`` (with ``"changed": {attr: {"old",
    "new"}}``) and ``default`` events; see docs/python-api.md.  Uses pvdd's
    subscription when pvdd answers, else listens to netlink and RAs itself.
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
