"""Where strict mode's cgroups live, and the few things done to them (cgroup v2 only).

Every PvD held in strict mode has one cgroup, ``BASE/net-NETNS/pvd-HASH``:

* ``BASE`` is pvdd's own cgroup when systemd delegated it (``Delegate=yes``: systemd marks it
  with the ``trusted.delegate`` attribute), else ``pvdrun`` at the top of the cgroup2 mount;
  the mount is found in ``/proc/self/mountinfo`` (``/sys/fs/cgroup``, or
  ``/sys/fs/cgroup/unified`` on hybrid hosts);
* ``net-NETNS`` is the inode of the network namespace: PvDs, marks and tables belong to one
  namespace, cgroups to the whole host;
* ``HASH`` is 64-bit FNV-1a of the PvD ID, so pvdd, a restarted pvdd and a root launcher
  without pvdd name a PvD's cgroup alike, as long as they agree on ``BASE`` (a pvdd in a
  delegated cgroup and a root launcher run from a shell do not: docs/strict.md).

A process cannot leave its cgroup without write access to another cgroup's ``cgroup.procs``
(root's, here), so a program and all its children stay in the PvD's cgroup.
"""
from __future__ import annotations

import ctypes
import errno
import os

from pvdrun.model import fnv1a

TOP = "pvdrun"
#: Where root mounts the cgroup2 hierarchy when its mount namespace shows none (``ip netns
#: exec`` mounts a new /sys, hiding /sys/fs/cgroup): the same hierarchy, seen from here.
PRIVATE_MOUNT = "/run/pvdrun/cgroup2"
DAEMON_LEAF = "pvdd"
PREFIX = "pvd-"


class CgroupError(OSError):
    """A cgroup could not be found, made, entered or removed; the message says which."""


def cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The mount point of the cgroup2 hierarchy, or None when there is none."""
    found: list[str] = []
    try:
        with open(mountinfo, encoding="utf-8") as handle:
            for line in handle:
                left, sep, right = line.partition(" - ")
                if sep and right.split(" ", 1)[0] == "cgroup2":
                    found.append(left.split(" ")[4].replace("\\040", " "))
    except OSError:
        return None
    for preferred in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if preferred in found:
            return preferred
    return found[0] if found else None


def mount_private(target: str = PRIVATE_MOUNT) -> str:
    """Mount the cgroup2 hierarchy at ``target`` (root); the mount point."""
    os.makedirs(target, mode=0o700, exist_ok=True)
    libc = ctypes.CDLL(None, use_errno=True)  # libc, already loaded: no search for it
    if libc.mount(b"cgroup2", target.encode(), b"cgroup2", ctypes.c_ulong(0), None) != 0:
        err = ctypes.get_errno()
        raise CgroupError(err, f"cannot mount the cgroup2 hierarchy at {target}: {os.strerror(err)}")
    return target


def find_or_mount() -> str:
    """The cgroup2 mount point; as root, one mounted at PRIVATE_MOUNT when none shows.
    Raises CgroupError."""
    mount = cgroup2_mount()
    if mount is not None:
        return mount
    if os.geteuid() != 0:
        raise CgroupError(errno.ENOENT, "no cgroup2 hierarchy is mounted")
    return mount_private()


def own_cgroup(pid: int | str = "self") -> str | None:
    """The cgroup v2 path of a process (``/system.slice/pvdd.service``), None when unknown."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        return None
    return None


def netns_id() -> int:
    """The inode of this process's network namespace."""
    return os.stat("/proc/self/ns/net").st_ino


def delegated(path: str) -> bool:
    """Whether systemd delegated the cgroup ``path`` (``Delegate=yes``)."""
    for name in ("trusted.delegate", "user.delegate"):
        try:
            if os.getxattr(path, name) in (b"1", b"1\n"):
                return True
        except OSError:
            continue
    return False


def base_directory(mount: str) -> str:
    """Where this namespace's PvD cgroups go (module docstring)."""
    own = own_cgroup()
    top = os.path.join(mount, TOP)
    if own and own != "/" and delegated(mount + own):
        top = mount + own
    return os.path.join(top, f"net-{netns_id()}")


def name_of(pvd_id: str) -> str:
    return f"{PREFIX}{fnv1a(pvd_id.encode(), 64):016x}"


def make(path: str) -> None:
    try:
        os.makedirs(path, mode=0o755, exist_ok=True)
    except OSError as exc:
        raise CgroupError(exc.errno, f"cannot make cgroup {path}: {exc.strerror}") from None


def move(pid: int, path: str) -> None:
    """Move the process ``pid`` (all its threads) into the cgroup ``path``."""
    try:
        with open(os.path.join(path, "cgroup.procs"), "w", encoding="ascii") as handle:
            handle.write(f"{pid}\n")
    except OSError as exc:
        raise CgroupError(exc.errno, f"cannot move process {pid} into {path}: {exc.strerror}") from None


def processes(path: str) -> list[int]:
    """The processes in the cgroup ``path`` (not in its children); [] when it is gone."""
    try:
        with open(os.path.join(path, "cgroup.procs"), encoding="ascii") as handle:
            return [int(line) for line in handle if line.strip()]
    except OSError:
        return []


def remove(path: str) -> bool:
    """Remove the cgroup ``path``; False while processes are in it (or it is gone already)."""
    try:
        os.rmdir(path)
    except OSError as exc:
        if exc.errno in (errno.EBUSY, errno.ENOENT, errno.ENOTEMPTY):
            return False
        raise CgroupError(exc.errno, f"cannot remove cgroup {path}: {exc.strerror}") from None
    return True


def children(path: str) -> list[str]:
    """The PvD cgroups under ``path`` (names starting with ``pvd-``)."""
    try:
        return sorted(name for name in os.listdir(path) if name.startswith(PREFIX))
    except OSError:
        return []


def live_netns() -> set[int]:
    """Inodes of the network namespaces a process is in or ``ip netns`` names (root sees all)."""
    live: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                live.add(os.stat(f"/proc/{entry}/ns/net").st_ino)
            except OSError:
                continue
    for named in ("/run/netns", "/var/run/netns"):
        try:
            for entry in os.listdir(named):
                try:
                    live.add(os.stat(os.path.join(named, entry)).st_ino)
                except OSError:
                    continue
        except OSError:
            continue
    return live


def sweep_orphans(top: str) -> int:
    """Remove the empty PvD cgroups under ``top`` (``pvdrun``) of network namespaces that no
    longer exist (a namespace deleted while its cgroups stayed); how many went.  A cgroup that
    still holds a process stays."""
    live = live_netns()
    removed = 0
    try:
        names = [n for n in os.listdir(top) if n.startswith("net-")]
    except OSError:
        return 0
    for name in names:
        try:
            inode = int(name[4:])
        except ValueError:
            continue
        if inode in live:
            continue
        directory = os.path.join(top, name)
        for child in children(directory):
            if not processes(os.path.join(directory, child)) and remove(os.path.join(directory, child)):
                removed += 1
        try:
            os.rmdir(directory)
        except OSError:
            pass
    return removed
