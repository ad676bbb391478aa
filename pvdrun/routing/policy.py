"""Who may use which PvD (R23): the configuration's ``users``/``groups`` against a peer's credentials.

The peer is the process at the other end of pvdd's Unix socket: its uid, gid and pid
come from SO_PEERCRED (the kernel's, not the client's word), its supplementary groups
from ``/proc/PID/status``.  Root may use every PvD.  A PvD without ``restricted = true``
may be used by everyone; a restricted one only by the listed users and members of the
listed groups (docs/security.md).
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

from pvdrun.config import gid_of, uid_of
from pvdrun.model import Pvd
from pvdrun.routing.plan import is_restricted


@dataclass(frozen=True)
class Credentials:
    """A peer process: pid, uid, primary gid and supplementary gids."""

    pid: int
    uid: int
    gid: int
    groups: frozenset[int] = field(default_factory=frozenset)


def supplementary_groups(pid: int) -> frozenset[int]:
    """The ``Groups:`` line of /proc/PID/status (empty if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Groups:"):
                    return frozenset(int(g) for g in line.split()[1:])
    except (OSError, ValueError):
        pass
    return frozenset()


def peer_credentials(sock: socket.socket) -> Credentials:
    """SO_PEERCRED of a connected Unix socket, plus the peer's supplementary groups."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return Credentials(pid, uid, gid, supplementary_groups(pid))


def may_use(pvd: Pvd, peer: Credentials) -> bool:
    """True if ``peer`` may have its sockets marked for ``pvd``."""
    if peer.uid == 0 or not is_restricted(pvd):
        return True
    policy = pvd.attributes.get("policy") or {}
    uids = {u for u in (uid_of(n) for n in policy.get("users", [])) if u is not None}
    gids = {g for g in (gid_of(n) for n in policy.get("groups", [])) if g is not None}
    return peer.uid in uids or bool(({peer.gid} | peer.groups) & gids)
