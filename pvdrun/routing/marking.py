"""Marking a client's socket for a PvD: pvdd sets SO_MARK (which needs CAP_NET_ADMIN) on a
socket a client passed it, when the policy lets that client use the PvD.

The request and its replies are pvdd's (pvdrun/daemon/handlers.py, docs/protocol.md); this
module holds the checks and the marking, and says why it refused.
"""
from __future__ import annotations

import os
import socket
import stat

from pvdrun.model import Pvd
from pvdrun.routing.policy import Credentials, may_use


class MarkRefused(Exception):
    """The socket was not marked; the message says why."""


class UnknownHandle(MarkRefused):
    """No PvD has the handle asked for."""


class NotAllowed(MarkRefused):
    """The policy does not let the peer use the PvD."""


def mark_socket(pvds: list[Pvd], handle: int, fd: int, peer: Credentials) -> Pvd:
    """Give the socket ``fd`` (which stays open) the mark of the PvD ``handle`` for ``peer``,
    and return that PvD.

    Raises UnknownHandle, NotAllowed, MarkRefused (not an IPv4/IPv6 socket, a PvD without
    a mark), or OSError when the descriptor cannot be examined or marked."""
    if not stat.S_ISSOCK(os.fstat(fd).st_mode):
        raise MarkRefused("the descriptor passed is not a socket")
    pvd = next((p for p in pvds if p.handle == handle), None)
    if pvd is None:
        raise UnknownHandle(f"no PvD has handle {handle}")
    if not may_use(pvd, peer):
        raise NotAllowed(f"uid {peer.uid} may not use PvD {pvd.pvd_id}")
    if not pvd.mark:
        raise MarkRefused(f"PvD {pvd.pvd_id} has no mark (pvdd cannot route)")
    sock = socket.socket(fileno=os.dup(fd))
    try:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            raise MarkRefused("the socket passed is not an IPv4/IPv6 socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, pvd.mark)
    finally:
        sock.close()
    return pvd
