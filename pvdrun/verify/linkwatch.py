"""A watch: a fresh cgroup, and the nftables table that counts what its processes send.

Root makes one in its own process (``pvdrun verify`` as root, or in a lab); pvdd makes one for
a user who asks (docs/protocol.md, ``watch``).  A watch is named after the process that made
it and a random token (cgroup ``BASE/net-NETNS/verify-PID-TOKEN``, table
``inet pvdrun_verify_PID_TOKEN``), so :func:`sweep` can remove what a watcher that died (a
SIGKILL) left behind: the table, and the cgroup with what still runs in it.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import time

from pvdrun.routing.nftlib import LibNft, NftCommand, NftError, open_nft
from pvdrun.strict import cgroups
from pvdrun.verify.nftwatch import TABLE_PREFIX, Seen, parse, script, table_name

CGROUP_PREFIX = "verify-"
#: Where nft looks for a cgroup path (nftables' SYSFS_CGROUPSV2_PATH); ours is given to it
#: relative to this, so that a hierarchy mounted elsewhere is found too.
NFT_CGROUP_ROOT = "/sys/fs/cgroup"
EMPTY_WAIT = 2.0


class WatchError(Exception):
    """A watch cannot be made, entered or read; the message says what is missing."""


def _nft() -> LibNft | NftCommand:
    return open_nft(shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin"), json=True)


class LinkWatch:
    """One watch (see the module docstring).  Use :meth:`open`, then :meth:`enter` a
    process, :meth:`read`, and :meth:`close` (which also ends what is left in the cgroup)."""

    def __init__(self, cgroup: str, table: str, nft: LibNft | NftCommand) -> None:
        self.cgroup = cgroup
        self.table = table
        self.nft = nft
        self.token = table.rsplit("_", 1)[-1]

    @classmethod
    def open(cls, links: list[str] | None = None) -> LinkWatch:
        """A watch of every link there is now (``links``: those); raises WatchError."""
        try:
            mount = cgroups.find_or_mount()
            base = cgroups.base_directory(mount)
        except OSError as exc:
            raise WatchError(f"no cgroup to watch the program in: {exc}") from None
        nft = _nft()
        sweep(nft, base)
        owner, token = os.getpid(), os.urandom(4).hex()
        path = os.path.join(base, f"{CGROUP_PREFIX}{owner}-{token}")
        try:
            cgroups.make(path)
        except OSError as exc:
            raise WatchError(str(exc)) from None
        relative = os.path.relpath(path, mount)
        level = len(relative.split(os.sep))
        table = table_name(owner, token)
        if links is None:
            links = sorted(name for _, name in socket.if_nameindex())
        try:
            nft.run(script(table, os.path.relpath(path, NFT_CGROUP_ROOT), level, links))
        except NftError as exc:
            cgroups.remove(path)
            raise WatchError(f"cannot install the nftables watch: {exc}") from None
        return cls(path, table, nft)

    def enter(self, pid: int) -> None:
        """Move the process ``pid`` into the watched cgroup; raises WatchError."""
        try:
            cgroups.move(pid, self.cgroup)
        except OSError as exc:
            raise WatchError(str(exc)) from None

    def read(self) -> Seen:
        """What the table counted so far; raises WatchError."""
        try:
            return parse(json.loads(self.nft.run(f"list table inet {self.table}")))
        except (NftError, ValueError) as exc:
            raise WatchError(f"cannot read the nftables watch: {exc}") from None

    def left(self) -> list[int]:
        """The processes still in the watched cgroup."""
        return cgroups.processes(self.cgroup)

    def close(self, free: bool = True) -> list[int]:
        """End the processes left in the cgroup (SIGKILL), remove the cgroup and the table;
        the pids ended.  ``free=False`` keeps libnftables' context (freeing its cache costs
        ~16 ms here) for a process about to exit."""
        ended = _end_all(self.cgroup)
        try:
            self.nft.run(f"delete table inet {self.table}")
        except NftError:
            pass
        _remove(self.cgroup)  # else left for sweep()
        if free:
            self.nft.close()
        return ended


def _end_all(path: str) -> list[int]:
    """SIGKILL every process of the cgroup (cgroup.kill where the kernel has it); the pids."""
    ended = cgroups.processes(path)
    if not ended:
        return []
    try:
        with open(os.path.join(path, "cgroup.kill"), "w", encoding="ascii") as handle:
            handle.write("1")
    except OSError:
        for pid in ended:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
    deadline = time.monotonic() + EMPTY_WAIT
    while cgroups.processes(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return ended


def _remove(path: str) -> bool:
    """Remove the cgroup ``path``, waiting out the moment an emptied cgroup stays busy while
    its last process is reaped; False when it could not."""
    deadline = time.monotonic() + EMPTY_WAIT
    while True:
        try:
            if cgroups.remove(path) or not os.path.isdir(path):
                return True
        except OSError:
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.ESRCH
    return False


def _owner(name: str, prefix: str, separator: str) -> int | None:
    head = name[len(prefix):].split(separator, 1)[0]
    return int(head) if name.startswith(prefix) and head.isdigit() else None


def sweep(nft: LibNft | NftCommand, base: str) -> int:
    """Remove the tables and cgroups of watches whose watcher is gone (ending what still runs
    in such a cgroup, as the watcher would have at its end); how many."""
    removed = 0
    try:
        listing = json.loads(nft.run("list tables inet"))
    except (NftError, ValueError):
        listing = {}
    for item in listing.get("nftables", []):
        name = str(item.get("table", {}).get("name", ""))
        owner = _owner(name, TABLE_PREFIX, "_")
        if owner is not None and _dead(owner):
            try:
                nft.run(f"delete table inet {name}")
                removed += 1
            except NftError:
                continue
    try:
        names = os.listdir(base)
    except OSError:
        names = []
    for name in names:
        owner = _owner(name, CGROUP_PREFIX, "-")
        if owner is None or not _dead(owner):
            continue
        path = os.path.join(base, name)
        _end_all(path)  # what a killed watcher's program left running: nothing watches it now
        if _remove(path):
            removed += 1
    return removed
