"""pvdd's watches (docs/protocol.md, ``watch``): made for the connection that asked, entered
only by processes of the same user, read and removed on that connection, removed with it when
it closes (the processes left in the cgroup then end)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from pvdrun.strict import cgroups
from pvdrun.verify.linkwatch import CGROUP_PREFIX, LinkWatch, WatchError

log = logging.getLogger("pvdrun.pvdd")

#: Watches one connection may hold at once.
PER_CONNECTION = 8


class WatchRefused(Exception):
    """The request cannot be granted; the message says why."""


@dataclass
class Entry:
    watch: LinkWatch
    owner: int  # the connection's key
    uid: int


class Registry:
    """Every watch pvdd holds, by token."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def open(self, owner: int, uid: int) -> str:
        """A new watch for the connection ``owner`` of user ``uid``; its token.  Raises
        WatchRefused, WatchError."""
        if sum(1 for e in self.entries.values() if e.owner == owner) >= PER_CONNECTION:
            raise WatchRefused(f"at most {PER_CONNECTION} watches per connection")
        watch = LinkWatch.open()
        self.entries[watch.token] = Entry(watch, owner, uid)
        log.info("watch %s opened for uid %d", watch.token, uid)
        return watch.token

    def _entry(self, token: Any) -> Entry:
        entry = self.entries.get(token) if isinstance(token, str) else None
        if entry is None:
            raise WatchRefused("no such watch")
        return entry

    def enter(self, token: Any, pid: int, uid: int) -> str:
        """Move the process ``pid`` of user ``uid`` into the watch ``token``; its cgroup.
        Raises WatchRefused, WatchError."""
        entry = self._entry(token)
        if uid not in (0, entry.uid):
            raise WatchRefused("the watch belongs to another user")
        current = os.path.basename(cgroups.own_cgroup(pid) or "")
        if current.startswith((cgroups.PREFIX, CGROUP_PREFIX)):
            raise WatchRefused("the process is held in strict mode or watched already")
        entry.watch.enter(pid)
        return entry.watch.cgroup

    def end(self, token: Any, owner: int) -> dict[str, Any]:
        """Read and remove the watch ``token`` of the connection ``owner``: what it saw."""
        entry = self._entry(token)
        if entry.owner != owner:
            raise WatchRefused("the watch belongs to another connection")
        try:
            seen = entry.watch.read()
        finally:
            del self.entries[token]
            ended = entry.watch.close()
        return {"flows": [flow.to_dict() for flow in seen.flows],
                "loopback_packets": seen.loopback_packets, "ended": ended}

    def drop(self, owner: int) -> None:
        """The connection ``owner`` closed: remove its watches."""
        for token, entry in list(self.entries.items()):
            if entry.owner == owner:
                del self.entries[token]
                try:
                    entry.watch.close()
                except WatchError:
                    continue
                log.info("watch %s removed with its connection", token)

    def close(self) -> None:
        for owner in {entry.owner for entry in self.entries.values()}:
            self.drop(owner)
