"""The discovery engine: one-shot discovery, and the event loop behind monitor and pvdd.

``Discovery.pvds()`` dumps kernel state and assembles the table with what
the RAs said.  ``Discovery.prime()`` sends a Router Solicitation on each
usable IPv6 link and listens a short bounded time (<= 1.5 s, ending early
once quiet).  ``Discovery.run_events()`` waits on a netlink notification
socket (links, addresses, routes, ND user options) and the raw RA socket,
never polling: the table is re-read only when the kernel or a router said
something, or when an RA-learned element reaches its lifetime.
"""
from __future__ import annotations

import logging
import os
import select
import socket
import time
from typing import Any, Callable, Iterator

from pvdrun.discovery import linkstate
from pvdrun.discovery.assemble import assemble
from pvdrun.config import Config, load_config
from pvdrun.discovery.events import diff, snapshot_event
from pvdrun.discovery.kernel import KernelState, snapshot
from pvdrun.discovery.nduseropt import parse_datagram
from pvdrun.discovery.ratable import RaTable
from pvdrun.discovery.rasock import RaListener, solicit_and_listen
from pvdrun.model import Pvd

log = logging.getLogger("pvdrun.discovery")

RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
RTMGRP_ND_USEROPT = 0x80000
NOTIFY_GROUPS = (RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR
                 | RTMGRP_IPV6_ROUTE | RTMGRP_ND_USEROPT)
#: A burst of notifications has ended when nothing new arrived for this long (s): a
#: lone change is re-read a few ms after it, and the messages of one change (address,
#: its local and prefix routes) still make one dump and one diff.
SETTLE = 0.003
#: ...but the table is re-read at most this long after a burst began (s), however busy.
SETTLE_MAX = 0.05
PRIME_WAIT = 1.5


def open_notifier() -> socket.socket:
    """A netlink socket subscribed to rtnetlink change notifications."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK,
                         socket.NETLINK_ROUTE)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((0, NOTIFY_GROUPS))
    return sock


class Discovery:
    """Kernel state + RA table + configuration -> PvD table."""

    def __init__(self, config: Config | None = None, config_path: str | None = None,
                 listen_ras: bool = True) -> None:
        self.config = config if config is not None else load_config(config_path)
        self.ras = RaTable()
        self.listener: RaListener | None = None
        self.notifier: socket.socket | None = None
        self.state: KernelState | None = None
        if listen_ras:
            try:
                self.listener = RaListener()
            except PermissionError:
                log.info("no raw ICMPv6 socket (needs CAP_NET_RAW): RA-only information not heard")
        self._ipr: Any = None

    # -- one-shot -------------------------------------------------------------
    def _dump(self) -> KernelState:
        if self._ipr is None:
            from pyroute2 import IPRoute
            self._ipr = IPRoute()
        return snapshot(self._ipr)

    def prime(self, max_wait: float = PRIME_WAIT) -> None:
        """Solicit RAs on every usable link with IPv6 and hear them (bounded wait)."""
        if self.listener is None:
            return
        state = self._dump()
        links = [l.index for l in state.links.values() if l.usable and
                 any(a.index == l.index and a.family == socket.AF_INET6 and a.link_local
                     for a in state.addresses)]
        if not links:
            return
        for heard in solicit_and_listen(self.listener, links, max_wait=max_wait):
            self.ras.add(heard)

    def pvds(self) -> list[Pvd]:
        """Dump the kernel and assemble the current PvD table."""
        state = self._dump()
        self._track_links(state)
        self.ras.expire()
        return assemble(state, self.ras, self.config, linkstate.link_dns, linkstate.link_kind,
                        linkstate.system_resolv_conf)

    def _track_links(self, state: KernelState) -> None:
        """Forget RA state of links whose association ended; solicit on new ones."""
        previous = self.state
        self.state = state
        if previous is None:
            return
        for index, link in state.links.items():
            old = previous.links.get(index)
            if old is None or not link.usable:
                if not link.usable:
                    self.ras.forget_link(index)
                continue
            if not old.usable or old.carrier_up_count != link.carrier_up_count:
                self.ras.forget_link(index)
                if self.listener is not None:
                    self.listener.solicit(index)
        for index in set(previous.links) - set(state.links):
            self.ras.forget_link(index)

    # -- events -----------------------------------------------------------------
    def start_notifications(self) -> None:
        """Subscribe to netlink notifications (before the first dump, so none is lost)."""
        if self.notifier is None:
            self.notifier = open_notifier()

    def fileobjs(self) -> list[Any]:
        """What to wait on for changes."""
        return [f for f in (self.notifier, self.listener) if f is not None]

    def handle_readable(self, fileobj: Any) -> bool:
        """Drain one readable source; True when the table may have changed."""
        if fileobj is self.notifier and self.notifier is not None:
            got = False
            while True:
                try:
                    data = self.notifier.recv(1 << 16)
                except (BlockingIOError, InterruptedError):
                    return got
                except OSError as exc:  # ENOBUFS: we lost some; a re-dump covers it
                    log.debug("netlink notification socket: %s", exc)
                    got = True
                    continue
                useropts, other = parse_datagram(data)
                got |= other
                for item in useropts:
                    got |= self.ras.add_user_options(item.ifindex, item.source, item.options)
        if fileobj is self.listener and self.listener is not None:
            heard = self.listener.receive()
            for item in heard:
                self.ras.add(item)
            return bool(heard)
        return False

    def timeout(self) -> float | None:
        """Seconds until the next RA-learned element expires (None: never)."""
        deadline = self.ras.next_expiry()
        if deadline == float("inf"):
            return None
        return max(0.0, deadline - time.monotonic()) + 0.01

    def wait_for_change(self, stop: Callable[[], bool] | None = None,
                        extra_timeout: float | None = None) -> bool:
        """Block until something may have changed (then settle a burst); True if so."""
        timeout = self.timeout()
        if extra_timeout is not None:
            timeout = extra_timeout if timeout is None else min(timeout, extra_timeout)
        ready, _, _ = select.select(self.fileobjs(), [], [], timeout)
        dirty = any([self.handle_readable(f) for f in ready])
        if self.ras.expire():
            dirty = True
        if dirty:
            self._settle()
        return dirty

    def _settle(self) -> None:
        """Take in the rest of a burst: until SETTLE passes quietly, at most SETTLE_MAX."""
        latest = time.monotonic() + SETTLE_MAX
        while (left := min(SETTLE, latest - time.monotonic())) > 0:
            more, _, _ = select.select(self.fileobjs(), [], [], left)
            if not more:
                return
            for fileobj in more:
                self.handle_readable(fileobj)

    def run_events(self) -> Iterator[dict[str, Any]]:
        """The monitor stream: a snapshot event, then change events, forever."""
        self.start_notifications()
        self.prime()
        current = self.pvds()
        yield snapshot_event(current)
        while True:
            if self.wait_for_change():
                new = self.pvds()
                yield from diff(current, new)
                current = new

    def close(self) -> None:
        """Release sockets."""
        for item in (self.notifier, self.listener, self._ipr):
            if item is not None:
                try:
                    item.close()
                except OSError:
                    pass
        self.notifier = self.listener = self._ipr = None


def discover(config_path: str | None = None, listen_ras: bool = True,
             max_wait: float = PRIME_WAIT) -> list[Pvd]:
    """One-shot discovery: kernel, link stores, configuration, and solicited RAs."""
    if os.environ.get("PVDRUN_NO_RS") == "1":
        listen_ras = False
    discovery = Discovery(config_path=config_path, listen_ras=listen_ras)
    try:
        discovery.prime(max_wait)
        return discovery.pvds()
    finally:
        discovery.close()
