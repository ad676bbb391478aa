"""Strict mode in pvdd: the held PvDs' cgroups and DNS forwarders, and moving a launcher in.

A PvD is *held* once a launcher entered it: it then has a cgroup (pvdrun/strict/holder.py)
and a DNS forwarder (pvdrun/strict/forwarder.py) for as long as the cgroup exists.  After
every change of the PvD table :meth:`StrictService.sync` updates both, and closes the cgroups
of PvDs that went away (their programs then refuse every socket and send).  A new pvdd takes
over the cgroups an earlier one left (the same names), with fresh programs and forwarders.
"""
from __future__ import annotations

import logging
import os
import select
import socket
from typing import TYPE_CHECKING

from pvdrun.model import NULL_PVD_NAME, Pvd
from pvdrun.routing.policy import Credentials, may_use
from pvdrun.strict import cgroups
from pvdrun.strict.holder import DENY, CannotHold, StrictCgroups, install, why_unavailable

if TYPE_CHECKING:
    from pvdrun.strict.forwarder import DnsForwarder

log = logging.getLogger("pvdrun.pvdd")

#: SO_PEERPIDFD (Linux 6.5): a pidfd of the process that connected, as of connect().
SO_PEERPIDFD = getattr(socket, "SO_PEERPIDFD", 77)


class EnterRefused(Exception):
    """The launcher was not moved into the PvD's cgroup; the message says why."""


class Forbidden(EnterRefused):
    """The policy (R23) or strict mode itself forbids it."""


def peer_pidfd(sock: socket.socket, pid: int) -> int:
    """A pidfd of the peer of ``sock``: SO_PEERPIDFD (exactly the process that connected), else
    pidfd_open of its SO_PEERCRED pid."""
    try:
        return sock.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD)
    except OSError:
        return os.pidfd_open(pid)


def alive(pidfd: int) -> bool:
    """Whether the process of ``pidfd`` has not exited (a pidfd polls readable once it has)."""
    return not select.select([pidfd], [], [], 0)[0]


class StrictService:
    """pvdd's strict mode for one namespace."""

    def __init__(self, held: StrictCgroups, mount: str) -> None:
        self.cgroups = held
        self.mount = mount
        self.forwarders: dict[str, DnsForwarder] = {}
        self.marks: dict[str, int] = {}  # PvD ID -> its slot's mark (pvdd's routing)

    @classmethod
    def start(cls, pvds: list[Pvd], marks: dict[str, int]) -> "StrictService | None":
        """Take over the cgroups an earlier pvdd left; None (logged) when strict mode is not
        available here."""
        why = why_unavailable()
        if why is not None:
            log.warning("strict mode unavailable: %s", why)
            return None
        mount = cgroups.find_or_mount()
        service = cls(StrictCgroups(cgroups.base_directory(mount)), mount)
        top = os.path.dirname(service.cgroups.base)
        if os.path.basename(top) == cgroups.TOP and cgroups.sweep_orphans(top):
            log.info("removed the empty strict cgroups of network namespaces that are gone")
        left = cgroups.children(service.cgroups.base)
        if left:
            log.warning("taking over %d strict cgroups an earlier pvdd left in %s", len(left),
                        service.cgroups.base)
        service.sync(pvds, marks)
        return service

    def held(self, pvds: list[Pvd]) -> list[Pvd]:
        existing = set(cgroups.children(self.cgroups.base))
        return [p for p in pvds if cgroups.name_of(p.pvd_id) in existing]

    def sync(self, pvds: list[Pvd], marks: dict[str, int]) -> None:
        """Forwarders and programs of the held PvDs brought up to date (``marks``: PvD ID -> its
        slot's mark); the others closed."""
        self.marks = dict(marks)
        held = self.held(pvds)
        ids = {p.pvd_id for p in held}
        for pvd_id in [i for i in self.forwarders if i not in ids]:
            self.forwarders.pop(pvd_id).close()
        ports = {}
        for pvd in held:
            port = self._forwarder(pvd)
            if port:
                ports[pvd.pvd_id] = port
        self.cgroups.sync(held, ports, self.marks)

    def _forwarder(self, pvd: Pvd) -> int | None:
        """The port of ``pvd``'s DNS forwarder, started when needed (None: it cannot start; the
        programs then send DNS to a server of the PvD, of the socket's family)."""
        forwarder = self.forwarders.get(pvd.pvd_id)
        if forwarder is not None:
            forwarder.update(pvd)
            return forwarder.port
        from pvdrun.strict.forwarder import DnsForwarder

        forwarder = DnsForwarder(pvd)
        try:
            forwarder.start()
        except OSError as exc:
            log.error("cannot start the DNS forwarder of PvD %s: %s", pvd.pvd_id, exc)
            forwarder.close()
            return None
        self.forwarders[pvd.pvd_id] = forwarder
        return forwarder.port

    def enter(self, pvd: Pvd | None, peer: Credentials, pidfd: int) -> str:
        """Move the peer (the launcher that asked, by the pid its connection names, checked
        against ``pidfd``) into ``pvd``'s cgroup (None: the null PvD's, where no socket opens);
        the cgroup's path.  Raises Forbidden, EnterRefused."""
        if pvd is not None and not may_use(pvd, peer):
            raise Forbidden(f"uid {peer.uid} may not use PvD {pvd.pvd_id}")
        path = self.cgroups.path_of(pvd.pvd_id if pvd is not None else NULL_PVD_NAME)
        current = cgroups.own_cgroup(peer.pid)
        if current is not None:
            here = os.path.normpath(self.mount + current)
            if here.startswith(self.cgroups.base + os.sep) and here != path:
                raise Forbidden("the process is held in strict mode by another PvD")
        if not alive(pidfd):
            raise EnterRefused("the process that asked has exited")
        try:
            if pvd is None:
                install(path, DENY)
            else:
                self.cgroups.hold(pvd, self._forwarder(pvd), self.marks.get(pvd.pvd_id, 0))
            cgroups.move(peer.pid, path)
        except (CannotHold, OSError) as exc:
            raise EnterRefused(f"cannot hold the PvD: {getattr(exc, 'strerror', None) or exc}") from None
        if not alive(pidfd):
            # the pid was the launcher's when written (a live process's pid is not reused)
            log.warning("process %d exited while entering strict mode", peer.pid)
            raise EnterRefused("the process that asked has exited")
        log.info("strict: process %d (uid %d) entered PvD %s", peer.pid, peer.uid,
                 pvd.pvd_id if pvd is not None else NULL_PVD_NAME)
        return path

    def counts(self, pvds: list[Pvd]) -> dict[str, int]:
        return self.cgroups.counts(pvds)

    def stop(self) -> None:
        for forwarder in self.forwarders.values():
            forwarder.close()
        self.forwarders.clear()
        kept = self.cgroups.stop()
        if kept:
            log.info("stopped: %d strict cgroups still hold processes (they fail closed until a "
                     "pvdd takes them over)", len(kept))
