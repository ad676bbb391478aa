"""What a one-shot discovery heard from routers, kept for the next one (root only).

A one-shot discovery (``pvdrun list`` or ``pvdrun --pvd X`` without pvdd) asks routers
only about links whose PvD data it lacks, and keeps what they said in ``/run/pvd/ras.json``
(``$PVDRUN_RA_CACHE`` names another file) so that the next one need not ask:

* per network namespace (``SO_NETNS_COOKIE``, never reused while the system runs; the
  namespace's inode where the kernel lacks it), the :class:`RaTable` as it stands, its expiry
  times on the monotonic clock (the file is dropped when the boot ID changes), and per link
  what identifies it (index, name, hardware address, carrier-up count: a different link or a
  new association forgets what the old one taught, as pvdd does) and when it was last asked
  with the routers that stayed silent;
* read back with :meth:`RaTable.from_dict` and expired by the same :meth:`RaTable.expire`
  as pvdd's table: each element lives as long as its own lifetime said;
* written atomically (a temporary file renamed over it), mode 0644, at most
  ``MAX_NAMESPACES`` namespaces, the least recently written dropped first; read only when it
  belongs to root and nobody else may write it.  Concurrent writers may lose each other's
  update (the last rename wins): the loser's links are asked again next time.

Only root uses it: without ``CAP_NET_RAW`` nothing is heard, and pvdd is what serves RA-learned
data to other users.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import stat
import time
from dataclasses import dataclass, field
from typing import Any

from pvdrun.atomicfile import replace_file
from pvdrun.discovery.kernel import KernelState, Link
from pvdrun.discovery.ratable import RaTable

log = logging.getLogger("pvdrun.discovery")

CACHE_ENV = "PVDRUN_RA_CACHE"
CACHE_PATH = "/run/pvd/ras.json"
VERSION = 1
#: Namespaces kept in the file (the least recently written go first).
MAX_NAMESPACES = 64
SO_NETNS_COOKIE = 71


def cache_path() -> str:
    return os.environ.get(CACHE_ENV) or CACHE_PATH


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def netns_key() -> str:
    """This network namespace, as a key no other live namespace shares."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            cookie = sock.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8)
        return f"cookie:{int.from_bytes(cookie, 'little')}"
    except OSError:
        return f"ino:{os.stat('/proc/self/ns/net').st_ino}"


def link_identity(link: Link) -> list[Any]:
    return [link.name, link.lladdr, link.carrier_up_count]


@dataclass
class LinkAsked:
    """When a link was last asked, and which of the routers expected there stayed silent."""

    asked: float
    silent: list[str] = field(default_factory=list)


@dataclass
class NetnsCache:
    """This namespace's part of the file."""

    ras: RaTable = field(default_factory=RaTable)
    asked: dict[int, LinkAsked] = field(default_factory=dict)
    changed: bool = False


def _trusted(fd: int) -> bool:
    info = os.fstat(fd)
    return stat.S_ISREG(info.st_mode) and info.st_uid == 0 and not info.st_mode & 0o022


def _read_file(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            if not _trusted(handle.fileno()):
                log.warning("%s is not root's alone: not used", path)
                return None
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.info("%s unreadable: %s", path, exc)
        return None
    if not isinstance(data, dict) or data.get("v") != VERSION or data.get("boot") != boot_id():
        return None
    return data


def load(state: KernelState, now: float | None = None) -> NetnsCache:
    """This namespace's cache, checked against the links as they are now, expired."""
    now = time.monotonic() if now is None else now
    data = _read_file(cache_path())
    entry = (data or {}).get("netns", {}).get(netns_key())
    if not isinstance(entry, dict):
        return NetnsCache()
    try:
        ras = RaTable.from_dict(entry["ras"])
        links = {int(k): v for k, v in entry["links"].items()}
        cache = NetnsCache(ras=ras)
        for ifindex, meta in links.items():
            link = state.links.get(ifindex)
            if link is None or not link.usable or meta["id"] != link_identity(link):
                ras.forget_link(ifindex)
                cache.changed = True
                continue
            if meta.get("asked") is not None:
                cache.asked[ifindex] = LinkAsked(float(meta["asked"]), [str(r) for r in meta["silent"]])
        for ifindex in {k[0] for k in ras.routers} | {k[0] for k in ras.explicit}:
            if ifindex not in links:
                ras.forget_link(ifindex)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        log.info("%s: this namespace's entry is malformed (%s): ignored", cache_path(), exc)
        return NetnsCache(changed=True)
    cache.changed |= ras.expire(now)
    return cache


def save(cache: NetnsCache, state: KernelState, now: float | None = None) -> None:
    """Write this namespace's entry (atomically); failures are logged, never raised."""
    now = time.monotonic() if now is None else now
    path = cache_path()
    data = _read_file(path) or {}
    spaces = data.get("netns") if isinstance(data.get("netns"), dict) else {}
    ifindexes = ({k[0] for k in cache.ras.routers} | {k[0] for k in cache.ras.explicit}
                 | set(cache.asked))
    links = {}
    for ifindex in sorted(ifindexes):
        link = state.links.get(ifindex)
        if link is None:
            continue
        asked = cache.asked.get(ifindex)
        links[str(ifindex)] = {"id": link_identity(link), "asked": asked.asked if asked else None,
                               "silent": list(asked.silent) if asked else []}
    spaces[netns_key()] = {"saved": now, "links": links, "ras": cache.ras.to_dict()}
    kept = sorted(spaces.items(), key=lambda kv: kv[1].get("saved", 0) if isinstance(kv[1], dict)
                  else 0, reverse=True)[:MAX_NAMESPACES]
    text = json.dumps({"v": VERSION, "boot": boot_id(), "netns": dict(kept)}, sort_keys=True)
    try:
        replace_file(path, text)
    except OSError as exc:
        log.info("cannot keep what routers said in %s: %s", path, exc)
