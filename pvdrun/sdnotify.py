"""systemd's readiness protocol (sd_notify(3)) with the socket module alone: one datagram of
``KEY=VALUE`` lines to the ``AF_UNIX`` socket ``$NOTIFY_SOCKET`` names.

A name starting with ``@`` is in the abstract namespace (the ``@`` stands for the leading NUL
byte); any other must be an absolute path.  Without ``$NOTIFY_SOCKET`` (pvdd not started by
systemd with ``Type=notify``) nothing is sent.  pvdd sends ``READY=1`` once it serves its
socket and ``STOPPING=1`` when it stops (``pvdrun/commands/daemon.py``).
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)

#: The variable systemd sets for a Type=notify service.
NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"


def address(name: str) -> str:
    """The socket address ``$NOTIFY_SOCKET``'s value names ("@x": abstract "\\0x").

    Raises ValueError for a value that is neither abstract nor an absolute path (systemd's
    ``vsock:`` addresses are not supported)."""
    if name.startswith("@") and len(name) > 1:
        return "\0" + name[1:]
    if name.startswith("/"):
        return name
    raise ValueError(f"{NOTIFY_SOCKET_ENV}={name!r}: neither an absolute path nor '@' (abstract)")


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to the service manager.  False when no manager
    listens (no ``$NOTIFY_SOCKET``), True once sent.  Raises OSError or ValueError."""
    name = (os.environ if environ is None else environ).get(NOTIFY_SOCKET_ENV)
    if not name:
        return False
    target = address(name)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.sendto(state.encode("utf-8"), target)
    return True


def tell(state: str) -> None:
    """:func:`notify`, with a failure logged as a warning rather than raised: a service
    manager that cannot be told is no reason for pvdd to stop serving."""
    try:
        notify(state)
    except (OSError, ValueError) as exc:
        log.warning("cannot tell the service manager %s: %s", state, exc)


def ready(status: str | None = None) -> None:
    """``READY=1`` (and ``STATUS=``, when given): the service is up."""
    tell("READY=1" + (f"\nSTATUS={status}" if status else ""))


def stopping() -> None:
    """``STOPPING=1``: the service is shutting down."""
    tell("STOPPING=1")
