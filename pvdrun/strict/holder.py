"""The PvDs' strict cgroups and their programs: made, kept current, closed, removed.

pvdd holds one :class:`StrictCgroups` for its namespace and calls :meth:`StrictCgroups.sync`
after every change of its PvD table; a root launcher without pvdd uses the same class for the
one PvD it enters.  Programs are replaced, never changed: the new set is attached beside the
old one (``BPF_F_ALLOW_MULTI``), then the old one is detached, under an exclusive lock on the
cgroup's directory, so that at every moment a complete set holds the cgroup.
"""
from __future__ import annotations

import fcntl
import ipaddress
import logging
import os
from contextlib import contextmanager
from typing import Iterator

from pvdrun.model import NULL_PVD_NAME, Pvd, split_zone
from pvdrun.strict import bpf, cgroups
from pvdrun.strict.programs import REVNAT_ENTRIES, VALUE_SIZE, Policy, hooks

log = logging.getLogger("pvdrun.strict")

LOOPBACK4, LOOPBACK6 = "127.0.0.1", "::1"


class CannotHold(Exception):
    """Strict mode cannot hold this PvD (the message says why)."""


def policy_for(pvd: Pvd, forwarder_port: int | None, mark: int = 0) -> Policy:
    """The programs' policy for ``pvd``: with ``mark`` (its slot's mark: pvdd routes it) or by its
    device (alone on it, no pvdd); DNS to a server of the PvD of the socket's family, else to
    pvdd's forwarder on ``forwarder_port``.  Raises CannotHold when neither a mark nor a device
    can hold it."""
    mark = mark or pvd.mark
    hosts = [ipaddress.ip_address(a.split("/")[0]) for a in pvd.addresses]
    own4 = tuple(str(a) for a in hosts if a.version == 4)
    own6 = tuple(str(a) for a in hosts if a.version == 6)
    servers = [split_zone(s)[0] for s in pvd.dns_servers]
    servers4 = tuple(s for s in servers if ipaddress.ip_address(s).version == 4)
    servers6 = tuple(s for s in servers if ipaddress.ip_address(s).version == 6)
    ifindex = 0
    if not mark:
        if pvd.needs_routing or len(pvd.ifindexes) != 1:
            raise CannotHold(f"PvD {pvd.pvd_id} shares its interface: strict mode needs pvdd's marks")
        ifindex = pvd.ifindexes[0]
    source4 = source6 = None
    if pvd.needs_routing:
        source4 = next((a for a in own4 if not ipaddress.ip_address(a).is_link_local), None)
        source6 = next((a for a in own6 if not ipaddress.ip_address(a).is_link_local), None)
    global6 = [s for s in servers6 if not ipaddress.ip_address(s).is_link_local]
    dns4 = _target(servers4, LOOPBACK4, forwarder_port)
    dns6 = _target(global6, LOOPBACK6, forwarder_port)
    return Policy(mark=mark, ifindex=ifindex, ifindexes=tuple(pvd.ifindexes), own4=own4, own6=own6,
                  source4=source4, source6=source6, servers4=servers4, servers6=servers6,
                  dns4=dns4, dns6=dns6)


def _target(servers: list[str] | tuple[str, ...], loopback: str, forwarder_port: int | None) -> tuple[str, int] | None:
    """Where a socket's DNS to another server goes: the PvD's first server of the socket's family
    (a link-local one needs an interface the rewrite cannot give), else pvdd's forwarder on
    loopback, else nowhere (refused)."""
    if servers:
        return servers[0], 53
    if forwarder_port:
        return loopback, forwarder_port
    return None


DENY = Policy(deny=True)


@contextmanager
def _locked(path: str) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def _ours(prog_id: int) -> bool:
    try:
        fd = bpf.prog_fd_by_id(prog_id)
    except bpf.BpfError:
        return False
    try:
        return bpf.prog_name(fd).startswith(bpf.NAME_PREFIX)
    finally:
        os.close(fd)


def install(path: str, policy: Policy) -> None:
    """Make the cgroup ``path`` if needed and give it the programs of ``policy``, replacing ours
    that were there.  Raises bpf.BpfError or cgroups.CgroupError."""
    cgroups.make(path)
    map_fd = bpf.map_create(bpf.MAP_TYPE_LRU_HASH, 8, VALUE_SIZE, REVNAT_ENTRIES, bpf.NAME_PREFIX + "dns")
    loaded: list[tuple[int, int]] = []
    try:
        for hook in hooks():
            fd = bpf.prog_load(hook.prog_type, hook.build(policy, map_fd), hook.attach_type,
                               bpf.NAME_PREFIX + hook.name)
            loaded.append((hook.attach_type, fd))
        with _locked(path) as cgroup_fd:
            before = {t: bpf.prog_query(cgroup_fd, t) for t, _ in loaded}
            attached: list[tuple[int, int]] = []
            try:
                for attach_type, fd in loaded:
                    bpf.prog_attach(cgroup_fd, fd, attach_type)
                    attached.append((attach_type, fd))
            except BaseException:
                for attach_type, fd in attached:
                    bpf.prog_detach(cgroup_fd, fd, attach_type)
                raise
            for attach_type, ids in before.items():
                _detach_ours(cgroup_fd, attach_type, ids)
    finally:
        for _, fd in loaded:
            os.close(fd)
        os.close(map_fd)


def _detach_ours(cgroup_fd: int, attach_type: int, ids: list[int]) -> None:
    for prog_id in ids:
        if not _ours(prog_id):
            continue
        fd = bpf.prog_fd_by_id(prog_id)
        try:
            bpf.prog_detach(cgroup_fd, fd, attach_type)
        finally:
            os.close(fd)


def detach_all(path: str) -> None:
    """Detach every program of ours from the cgroup ``path``."""
    with _locked(path) as cgroup_fd:
        for hook in hooks():
            _detach_ours(cgroup_fd, hook.attach_type, bpf.prog_query(cgroup_fd, hook.attach_type))


def why_unavailable(may_mount: bool = True) -> str | None:
    """None when this process can hold programs in strict mode, else what is missing (one line).
    ``may_mount``: mount the cgroup2 hierarchy when none shows (cgroups.find_or_mount); else
    only say whether it could."""
    if os.geteuid() != 0:
        return "not root"
    if may_mount:
        try:
            cgroups.find_or_mount()
        except OSError as exc:
            return exc.strerror or str(exc)
    return bpf.available()


class StrictCgroups:
    """The strict cgroups of one namespace's PvDs, as pvdd keeps them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.policies: dict[str, Policy] = {}  # PvD ID -> the policy installed
        self.closing: set[str] = set()  # cgroup names denied, to be removed once empty

    @classmethod
    def here(cls) -> "StrictCgroups":
        return cls(cgroups.base_directory(cgroups.find_or_mount()))

    def path_of(self, pvd_id: str) -> str:
        return os.path.join(self.base, cgroups.name_of(pvd_id))

    def hold(self, pvd: Pvd, forwarder_port: int | None, mark: int = 0) -> str:
        """Install ``pvd``'s programs (when they changed); its cgroup's path.  Raises CannotHold,
        bpf.BpfError, cgroups.CgroupError."""
        policy = policy_for(pvd, forwarder_port, mark)
        path = self.path_of(pvd.pvd_id)
        if self.policies.get(pvd.pvd_id) != policy or not os.path.isdir(path):
            install(path, policy)
            self.policies[pvd.pvd_id] = policy
            self.closing.discard(cgroups.name_of(pvd.pvd_id))
        return path

    def sync(self, pvds: list[Pvd], ports: dict[str, int], marks: dict[str, int]) -> None:
        """Keep every PvD's cgroup current (``ports``: PvD ID -> its forwarder's port, ``marks``:
        PvD ID -> its slot's mark); close
        those of PvDs that went away, and of PvDs no longer held (deny programs), remove them once
        empty.  Failures are logged: they must not stop pvdd."""
        present = {cgroups.name_of(p.pvd_id): p for p in pvds}
        for pvd in pvds:
            try:
                self.hold(pvd, ports.get(pvd.pvd_id), marks.get(pvd.pvd_id, 0))
            except CannotHold as exc:
                log.info("%s", exc)
                self._close(cgroups.name_of(pvd.pvd_id))
            except OSError as exc:
                log.error("cannot hold PvD %s in strict mode: %s", pvd.pvd_id, exc)
        for name in cgroups.children(self.base):
            if name not in present:
                self._close(name)
        for pvd_id in [i for i in self.policies if cgroups.name_of(i) not in present]:
            del self.policies[pvd_id]
        for name in sorted(self.closing):
            if cgroups.remove(os.path.join(self.base, name)):
                self.closing.discard(name)

    def _close(self, name: str) -> None:
        """A PvD that went away: its programs refuse every socket and send (fail closed)."""
        if name in self.closing:
            return
        path = os.path.join(self.base, name)
        try:
            if cgroups.processes(path):
                install(path, DENY)
                if name != cgroups.name_of(NULL_PVD_NAME):
                    log.warning("strict cgroup %s: its PvD went away; %d processes are held with "
                                "nowhere to send", name, len(cgroups.processes(path)))
            else:
                detach_all(path)
        except OSError as exc:
            log.error("cannot close strict cgroup %s: %s", path, exc)
        self.closing.add(name)

    def counts(self, pvds: list[Pvd]) -> dict[str, int]:
        """PvD ID -> how many processes its strict cgroup holds."""
        return {p.pvd_id: len(cgroups.processes(self.path_of(p.pvd_id))) for p in pvds}

    def stop(self) -> list[str]:
        """pvdd stops: empty cgroups go; populated ones keep their programs (their marks are
        parked with pvdd's rules, their DNS forwarder is gone: they fail closed) for the next
        pvdd to take over.  The populated ones' paths."""
        kept = []
        top = os.path.dirname(self.base)
        if os.path.basename(top) == cgroups.TOP:
            cgroups.sweep_orphans(top)
        for name in cgroups.children(self.base):
            path = os.path.join(self.base, name)
            if cgroups.processes(path):
                kept.append(path)
                continue
            try:
                detach_all(path)
            except OSError:
                pass
            cgroups.remove(path)
        for path in (self.base, os.path.dirname(self.base)):
            if os.path.basename(path).startswith("net-") or os.path.basename(path) == cgroups.TOP:
                try:
                    os.rmdir(path)
                except OSError:
                    pass
        return kept
