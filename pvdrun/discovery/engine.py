"""The discovery engine: one-shot discovery, and the event loop behind monitor and pvdd.

The kernel's state is a :class:`~pvdrun.discovery.kernelmodel.KernelModel`: dumped once (one
dump per kind), then kept current from the notification socket's messages (links,
addresses, routes, neighbours, ND user options), dumped again only where the kernel changes
things silently, or entirely after the socket overran (ENOBUFS).  ``Discovery.pvds()``
takes in what the socket holds and assembles the table with what the RAs said, again only
for the links that changed (:class:`~pvdrun.discovery.assemble.Assembler`).
``Discovery.prime()`` sends a Router Solicitation on each usable IPv6 link and listens until
the routers known there answered, at most ``PRIME_WAIT`` after it.
``Discovery.prime_once()`` (one-shot discovery) first reads what earlier ones heard
(pvdrun/discovery/racache.py) and asks only the links whose PvD data is missing for what is
asked.  ``Discovery.run_events()`` waits on the notification socket and the raw RA socket,
never polling: the table is assembled again only when the kernel or a router said
something, or when an RA-learned element reaches its lifetime.
"""
from __future__ import annotations

import errno
import logging
import os
import select
import socket
import sys
import time
from typing import Any, Callable, Iterator

from pvdrun.discovery import linkstate, racache
from pvdrun.discovery.assemble import Assembler, assemble
from pvdrun.config import Config, load_config
from pvdrun.discovery.events import Table, snapshot_event
from pvdrun.discovery.kernel import (KernelState, Link, LinkObjects, known_routers,
                                     mirrors_ra_defaults, ra_default_expiry)
from pvdrun.discovery.kernelmodel import KernelModel
from pvdrun.discovery.names import PvdLookupError, lookup
from pvdrun.discovery.nduseropt import RTM_NEWNDUSEROPT, parse_useropt
from pvdrun.discovery.ratable import RaTable
from pvdrun.discovery.rasock import HeardRa, RaListener, solicit_and_listen
from pvdrun.discovery.rtnl import Rtnl, messages
from pvdrun.model import Pvd

log = logging.getLogger("pvdrun.discovery")

RTMGRP_LINK = 0x1
RTMGRP_NEIGH = 0x4
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
RTMGRP_ND_USEROPT = 0x80000
NOTIFY_GROUPS = (RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE
                 | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE | RTMGRP_ND_USEROPT)
#: The notification socket's receive buffer (bytes); $PVDRUN_NOTIFY_RCVBUF sets another
#: (tests make it small to overrun it on purpose).
NOTIFY_RCVBUF = 1 << 20
NOTIFY_RCVBUF_ENV = "PVDRUN_NOTIFY_RCVBUF"
#: Datagrams taken from the notification socket in one go, however many wait (a flood
#: must not keep pvdd from its clients).
DRAIN_MAX = 1024
#: A burst of notifications has ended when nothing new arrived for this long (s): a
#: lone change is assembled a few ms after it, and the messages of one change (address,
#: its local and prefix routes) still make one table and one diff.
SETTLE = 0.001
#: ...but the table is assembled at most this long after a burst began (s), however busy.
SETTLE_MAX = 0.05
#: Routers answer a Router Solicitation within MAX_RA_DELAY_TIME (RFC 4861 10) ...
MAX_RA_DELAY_TIME = 0.5
#: ... so listening ends at the latest this long after it (s), the answer's way included.
PRIME_WAIT = MAX_RA_DELAY_TIME + 0.1
#: Once every known router answered, listening goes on until no RA came for this long (s):
#: a router may answer with several RAs (one per PvD; the lab's PvD sender answers 0.2 s
#: after the RS, dnsmasq at once).
RA_SETTLE = 0.25
#: A link asked where a known router stayed silent (or no router is known) is not asked
#: again for this long (s; RFC 4861's default MaxRtrAdvInterval), unless the kernel learns a
#: router there or the link changes: the kernel hears a router that appears later.
SILENT_KEEP = 600.0
#: A cached router lifetime and the kernel's default route via that router disagree by
#: more than this (s) when the kernel heard a later RA than the one cached.
EXPIRY_SLACK = 0.1


def _rcvbuf() -> int:
    try:
        return int(os.environ.get(NOTIFY_RCVBUF_ENV, NOTIFY_RCVBUF))
    except ValueError:
        return NOTIFY_RCVBUF


def open_notifier(rcvbuf: int | None = None) -> socket.socket:
    """A netlink socket subscribed to rtnetlink change notifications."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                         socket.NETLINK_ROUTE)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf or _rcvbuf())
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
        self.model = KernelModel()
        self.assembler = Assembler()
        #: the links as the last table saw them (to see associations end and begin)
        self.links_seen: dict[int, Link] | None = None
        #: the next table is assembled from scratch (the RA table was replaced)
        self._rebuild = True
        #: times the notification socket overran (each one a full dump)
        self.overruns = 0
        if listen_ras:
            try:
                self.listener = RaListener()
            except PermissionError:
                log.info("no raw ICMPv6 socket (needs CAP_NET_RAW): RA-only information not heard")
        self._ipr: Rtnl | None = None
        #: prime_once: did the name asked for mean a PvD before asking?  If not, the line
        #: saying why it waited, printed only when the answers gave the name a PvD
        self.named = False
        self.untold: str | None = None
        #: RFC 8801 Additional Information by PvD ID, current objects only (pvdd's fetcher, or a
        #: one-shot discovery asked for it): attached to the PvDs at each assembly
        self.infos: dict[str, dict[str, Any]] = {}
        #: per-link DNS stores as read during one one-shot discovery (None: read each time)
        self.dns_memo: dict[tuple[int, str], linkstate.LinkDns | None] | None = None

    # -- the kernel's state ------------------------------------------------------
    def kernel(self) -> KernelModel:
        """The kernel's state now: what the notification socket holds taken in, and what is
        stale dumped again (everything, the first time)."""
        if self.notifier is not None:
            self._drain_notifier()
        if self.model.needs_refresh():
            if self._ipr is None:
                self._ipr = Rtnl()
            self.model.refresh(self._ipr)
        return self.model

    def _ipv6_links(self, links: dict[int, Link], grouped: dict[int, LinkObjects]) -> list[Link]:
        """Usable links with an IPv6 link-local address: where routers can be asked."""
        return [l for l in links.values() if l.usable and l.index in grouped and
                any(a.family == socket.AF_INET6 and a.link_local for a in grouped[l.index].addresses)]

    def prime(self, max_wait: float = PRIME_WAIT) -> None:
        """Solicit RAs on every usable IPv6 link and hear them (pvdd, monitor): until
        the routers the kernel knows there answered, at most ``max_wait``."""
        if self.listener is None:
            return
        model = self.kernel()
        grouped = model.grouped()
        expected = {l.index: known_routers(grouped.get(l.index))
                    for l in self._ipv6_links(model.links, grouped)}
        if expected:
            self._ask(expected, max_wait)

    def _ask(self, expected: dict[int, set[str]], max_wait: float) -> list[HeardRa]:
        assert self.listener is not None
        heard = solicit_and_listen(self.listener, expected, max_wait=max_wait, settle=RA_SETTLE)
        for item in heard:
            self.ras.add(item, now=item.at)
        return heard

    # -- one-shot: ask only what is missing --------------------------------------
    def prime_once(self, want: str | None = None, max_wait: float = PRIME_WAIT,
                   announce: bool = False) -> None:
        """Before a one-shot :meth:`pvds`: take what earlier one-shot discoveries heard
        (root), and ask the routers only on the links whose PvD data is missing for
        ``want`` (a PvD name: its links; None: every usable IPv6 link), waiting no longer
        than until the routers known there answered (``max_wait`` at most).  ``announce``
        says on stderr that, and why, it waits."""
        if self.listener is None:
            return
        use_cache = os.geteuid() == 0
        model = self.kernel()
        state = KernelState(links=model.links)  # what the cache checks its links against
        grouped = model.grouped()
        now = time.monotonic()
        cache = racache.load(state, now) if use_cache else racache.NetnsCache()
        self.ras = cache.ras
        self._rebuild = True
        expected = self._missing(model.links, grouped, cache, want, now)
        if expected:
            names = ", ".join(model.links[i].name for i in sorted(expected))
            if announce and self.named:
                sys.stderr.write(f"pvdrun: asking the routers on {names} for PvD data "
                                 f"({max_wait:.1f} s at most; run pvdd to avoid this wait)\n")
                sys.stderr.flush()
            elif announce:  # said afterwards, if the answers gave the name a PvD
                self.untold = (f"pvdrun: asked the routers on {names} for PvD data "
                               f"({max_wait:.1f} s at most; run pvdd to avoid this wait)")
            heard = self._ask(expected, max_wait)
            asked = time.monotonic()
            for ifindex, routers in expected.items():
                answered = {h.source for h in heard if h.ifindex == ifindex}
                cache.asked[ifindex] = racache.LinkAsked(asked, sorted(routers - answered))
            cache.changed = True
        if use_cache and cache.changed:
            racache.save(cache, state)

    def _missing(self, links: dict[int, Link], grouped: dict[int, LinkObjects],
                 cache: racache.NetnsCache, want: str | None, now: float) -> dict[int, set[str]]:
        """The links to ask, each with the routers expected to answer there."""
        candidates = self._ipv6_links(links, grouped)
        self.named = False
        if want is not None:
            candidates = self._concerned(candidates, want)
        heard = cache.ras.per_link()
        expected: dict[int, set[str]] = {}
        for link in candidates:
            objects = grouped.get(link.index)
            cached = _heard_from(heard.get(link.index))
            known = known_routers(objects) | cached
            asked = cache.asked.get(link.index)
            recent = asked is not None and now - asked.asked < SILENT_KEEP
            # a router silent when last asked is left alone, unless the kernel has since
            # installed a default route from its RAs: then it does speak
            silent = set(asked.silent) if recent and asked is not None else set()
            unanswered = [r for r in known if not self._fresh(objects, link, r, cached, cache, now)
                          and not (r in silent and ra_default_expiry(objects, r) is None)]
            if unanswered or (not known and not recent):
                log.info("%s: to ask: %s", link.name,
                         f"no fresh answer from {', '.join(sorted(unanswered))}" if unanswered
                         else "no router known there")
                expected[link.index] = known
        return expected

    def _fresh(self, objects: LinkObjects | None, link: Link, router: str, cached_routers: set[str],
               cache: racache.NetnsCache, now: float) -> bool:
        """Is what the cache holds from ``router`` on ``link`` (whose routers it heard are
        ``cached_routers``) still what it says?  It must be alive, and the kernel must not
        have heard a later RA from it: the kernel's default route via the router expires when
        the router lifetime of its latest RA says."""
        if router not in cached_routers:
            return False
        cached = cache.ras.default_until(link.index, router)
        left = ra_default_expiry(objects, router)
        if left is not None:
            if not cached > 0 or abs(now + left - cached) > EXPIRY_SLACK:
                log.info("%s: the kernel heard %s after the cached RA (router lifetime ends "
                         "at %.2f, cached %.2f)", link.name, router, now + left, cached)
                return False
            return True
        return not (cached > now and mirrors_ra_defaults(link))

    def _concerned(self, links: list[Link], want: str) -> list[Link]:
        """The links whose PvD data ``want`` needs: none when the kernel's state, the link
        stores and the configuration already name an implicit PvD for it with DNS servers
        (not the resolv.conf fallback); the links of the PvD it names with what earlier
        discoveries heard; every link when it names none (it may be an RA-learned PvD)."""
        state = self.model.state()
        try:
            pvd = lookup(self._assemble(state, RaTable()), want)
            if not pvd.explicit and pvd.dns_servers and "dns_from" not in pvd.attributes:
                return []
        except PvdLookupError:
            pass
        try:
            pvd = lookup(self._assemble(state, self.ras), want)
        except PvdLookupError:
            return links
        self.named = True
        return [l for l in links if l.index in pvd.ifindexes]

    def _assemble(self, state: KernelState, ras: RaTable) -> list[Pvd]:
        return assemble(state, ras, self.config, self._link_dns, linkstate.link_kind,
                        linkstate.system_resolv_conf, self.infos)

    def _link_dns(self, link: Link) -> linkstate.LinkDns | None:
        """A link's DNS store, read once per one-shot discovery (nmcli is a process)."""
        if self.dns_memo is None:
            return linkstate.link_dns(link)
        key = (link.index, link.name)
        if key not in self.dns_memo:
            self.dns_memo[key] = linkstate.link_dns(link)
        return self.dns_memo[key]

    def pvds(self) -> list[Pvd]:
        """The current PvD table: the kernel's state brought up to date, then assembled again
        for the links that changed (all of them the first time)."""
        model = self.kernel()
        changed = model.take_dirty()
        self._track_links(model.links)
        self.ras.expire()
        ra_changed = self.ras.take_changed()
        if self._rebuild:
            changed, self._rebuild = None, False
        elif changed is not None:
            changed |= ra_changed
        return self.assembler.assemble(model.links, model.objects, changed, self.ras, self.config,
                                       self._link_dns, linkstate.link_kind,
                                       linkstate.system_resolv_conf, self.infos)

    def rebuild(self) -> None:
        """The next table is assembled for every link again (the per-link stores read again):
        the configuration was re-read."""
        self._rebuild = True

    def _track_links(self, links: dict[int, Link]) -> None:
        """Forget RA state of links whose association ended; solicit on new ones."""
        previous = self.links_seen
        if previous is links:
            return
        self.links_seen = dict(links)
        if previous is None:
            return
        for index, link in links.items():
            old = previous.get(index)
            if old is link:
                continue
            if old is None or not link.usable:
                if not link.usable:
                    self.ras.forget_link(index)
                continue
            if not old.usable or old.carrier_up_count != link.carrier_up_count:
                self.ras.forget_link(index)
                if self.listener is not None:
                    self.listener.solicit(index)
        for index in set(previous) - set(links):
            self.ras.forget_link(index)

    # -- events -----------------------------------------------------------------
    def start_notifications(self) -> None:
        """Subscribe to netlink notifications (before the first dump, so none is lost)."""
        if self.notifier is None:
            self.notifier = open_notifier()

    def fileobjs(self) -> list[Any]:
        """What to wait on for changes."""
        return [f for f in (self.notifier, self.listener) if f is not None]

    def _drain_notifier(self) -> bool:
        """Take in every message the notification socket holds; True when the kernel's state
        or the RA table changed.  An overrun (ENOBUFS: messages were lost) makes the next
        read of the kernel a full dump."""
        assert self.notifier is not None
        got = False
        for _ in range(DRAIN_MAX):
            try:
                data = self.notifier.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return got
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self.overruns += 1
                log.info("netlink notifications overran (%d so far): the kernel is dumped again",
                         self.overruns)
                self.model.lost()
                got = True
                continue
            for kind, flags, body in messages(data):
                if kind == RTM_NEWNDUSEROPT:
                    item = parse_useropt(body)
                    if item is not None:
                        got |= self.ras.add_user_options(item.ifindex, item.source, item.options)
                else:
                    got |= self.model.apply(kind, flags, body)
        return True  # more may wait: select says so again, and clients are served meanwhile

    def handle_readable(self, fileobj: Any) -> bool:
        """Drain one readable source; True when the table may have changed."""
        if fileobj is self.notifier and self.notifier is not None:
            return self._drain_notifier()
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
        current = Table(self.pvds())
        yield snapshot_event(current.pvds)
        while True:
            if self.wait_for_change():
                new = Table(self.pvds(), current)
                yield from current.diff(new)
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


def _heard_from(heard: tuple[list, list] | None) -> set[str]:
    """The routers a link's RA records (RaTable.per_link) say were heard."""
    if heard is None:
        return set()
    routers, explicit = heard
    found = {r.router for r in routers}
    for record in explicit:
        found.update(record.routers)
    return found


def discover(config_path: str | None = None, listen_ras: bool = True,
             max_wait: float = PRIME_WAIT, want: str | None = None, additional_info: bool = False) -> list[Pvd]:
    """One-shot discovery: kernel, link stores, configuration, and RAs: those earlier
    one-shot discoveries heard (root) and, on the links where PvD data is missing for
    ``want`` (a PvD name, as a launch asks; None: the whole table), solicited ones.  With
    ``want`` a line on stderr says when, and why, it waits for routers.  The kernel is
    dumped once; what changes while routers are asked arrives as notifications.
    ``additional_info``: the PvDs that publish RFC 8801 Additional Information get it, fetched
    now (pvdrun/discovery/infos.py); a line on stderr says why a PvD has none."""
    if os.environ.get("PVDRUN_NO_RS") == "1":
        listen_ras = False
    discovery = Discovery(config_path=config_path, listen_ras=listen_ras)
    discovery.dns_memo = {}
    try:
        if discovery.listener is not None:
            discovery.start_notifications()  # before the dump: what routers change arrives
        discovery.prime_once(want, max_wait, announce=want is not None)
        pvds = discovery.pvds()
        if discovery.untold is not None and want is not None:
            try:
                lookup(pvds, want)
            except PvdLookupError:  # unknown still: its error is the launch's one line
                pass
            else:
                sys.stderr.write(discovery.untold + "\n")
                sys.stderr.flush()
        if additional_info:
            from pvdrun.discovery.infos import fetch_current

            discovery.infos, errors = fetch_current(pvds, discovery.config.info.ca_file)
            for pvd_id, why in sorted(errors.items()):
                sys.stderr.write(f"pvdrun: PvD {pvd_id}: no Additional Information: {why}\n")
            if discovery.infos:
                pvds = discovery.pvds()
        return pvds
    finally:
        discovery.close()
