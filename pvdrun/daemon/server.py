"""pvdd: keeps the PvD table current and serves it on a Unix socket (R1, R2, R10, R14-R17).

This module is the event loop and the clients' connections; what each request does is
pvdrun/daemon/handlers.py, pvdd's routing state is pvdrun/routing/lifecycle.py.

One thread, one selector: the netlink notification socket, the raw RA
socket, the listening socket and every client.  Each notification is taken
into the engine's model of the kernel as it arrives; a change (netlink, RA, or
an RA-learned lifetime running out) schedules a new table once the burst is
quiet for a few ms (engine.SETTLE, capped by engine.SETTLE_MAX), assembled
again only for the links that changed; the differences are pushed to
subscribers.  The table is kept with each PvD's dictionary (events.Table), and
the encoded list reply with it until the table changes.  A client that sends garbage
(not JSON, not an object, a wrong version, a line longer than 64 KiB) gets
an error reply and is disconnected; others are unaffected.
A subscriber that does not read and lets 4 MiB pile up is disconnected.
"""
from __future__ import annotations

import errno
import logging
import os
import selectors
import signal
import socket
import stat
import time
from dataclasses import dataclass, field
from types import FrameType

from pvdrun.config import Config, ConfigError, load_config
from pvdrun.daemon.handlers import handle
from pvdrun.daemon.infofetch import InfoFetcher
from pvdrun.daemon.protocol import E_BAD_REQUEST, MAX_LINE, VERSION, BadRequest, decode_request, encode, error_reply
from pvdrun.daemon.resolving import ResolveWorker
from pvdrun.discovery.engine import SETTLE, SETTLE_MAX, Discovery
from pvdrun.discovery.events import Table
from pvdrun.model import Pvd
from pvdrun.routing.lifecycle import PvddRouting
from pvdrun.routing.sysctls import record_path
from pvdrun.strict.holder import why_unavailable
from pvdrun.strict.service import StrictService
from pvdrun.daemon.watches import Registry

log = logging.getLogger("pvdrun.pvdd")

MAX_BACKLOG = 4 * 1024 * 1024
#: Descriptors a client may have queued ahead of its requests; more and it is dropped.
MAX_PENDING_FDS = 8


class SocketInUse(RuntimeError):
    """Another pvdd answers on the socket path."""


@dataclass
class Conn:
    """One connected client."""

    sock: socket.socket
    inbuf: bytes = b""
    outbuf: bytearray = field(default_factory=bytearray)
    subscribed: bool = False
    closing: bool = False
    busy: bool = False  # a lookup is running: later requests wait (replies stay in order)
    fds: list[int] = field(default_factory=list)  # descriptors passed (SCM_RIGHTS), not yet used


def pvdd_answers(path: str) -> bool:
    """Whether something accepts connections on the Unix socket ``path`` (a live pvdd).

    Raises SocketInUse when ``path`` exists and is not a socket."""
    if not os.path.lexists(path):
        return False
    if not stat.S_ISSOCK(os.lstat(path).st_mode):
        raise SocketInUse(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def bind_socket(path: str) -> socket.socket:
    """Listen on path; a stale socket file is replaced, a live pvdd is not."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    if pvdd_answers(path):
        raise SocketInUse(f"a pvdd already answers on {path}")
    if os.path.lexists(path):
        os.unlink(path)  # stale
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o666)  # everyone may ask; the mark op checks SO_PEERCRED (R23)
    listener.listen(socket.SOMAXCONN)  # a burst of 1,000 clients waits in the backlog
    listener.setblocking(False)
    return listener


class Pvdd:
    """The daemon."""

    def __init__(self, socket_path: str, config: Config, listen_ras: bool = True,
                 config_path: str | None = None) -> None:
        self.socket_path = socket_path
        self.config_path = config_path
        self.reload_requested = False
        self.discovery = Discovery(config=config, listen_ras=listen_ras)
        self.selector = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.conns: dict[int, Conn] = {}
        self.pvds: list[Pvd] = []
        self.table = Table([])  # self.pvds with their dictionaries, as served
        self.refresh_at: float | None = None
        self.burst_began: float | None = None  # first notification not yet in a refresh
        self.stopping = False
        self.worker = ResolveWorker()
        self.routing: PvddRouting | None = None  # when pvdd routes (root)
        self.strict: StrictService | None = None  # when pvdd can hold programs in strict mode
        self.strict_unavailable: str | None = None  # else why not
        self.watches: Registry | None = Registry() if os.geteuid() == 0 else None  # pvdrun verify
        #: RFC 8801 Additional Information ([additional_info] fetch = false: none)
        self.infos: InfoFetcher | None = InfoFetcher(config.info) if config.info.fetch else None

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        """Claim the socket, subscribe to changes, learn the initial table, take over the
        routing state, then serve (clients that connect meanwhile wait in the backlog).

        The socket comes first: a second pvdd on the same socket must fail before it
        touches the first one's tables.  Raises RoutingConflict (see PvddRouting.start)."""
        self.listener = bind_socket(self.socket_path)
        self.discovery.start_notifications()
        self.discovery.prime()
        self.pvds = self.discovery.pvds()
        self.routing = PvddRouting.start(self.discovery.config.routing, self.pvds, self.discovery.ras,
                                         record_path(self.socket_path))
        self._start_strict()
        self.table = Table(self.pvds)
        for fileobj in self.discovery.fileobjs():
            self.selector.register(fileobj, selectors.EVENT_READ, "engine")
        self.selector.register(self.listener, selectors.EVENT_READ, "listen")
        self.selector.register(self.worker.wake_r, selectors.EVENT_READ, "resolved")
        if self.infos is not None:
            self.selector.register(self.infos.wake_r, selectors.EVENT_READ, "pvdinfo")
            self.infos.sync(self.pvds, time.time())
        log.info("pvdd serving %d PvDs on %s", len(self.pvds), self.socket_path)

    def _start_strict(self) -> None:
        """Strict mode needs pvdd's marks (so its routing) and the kernel's cgroup BPF."""
        if self.routing is None:
            self.strict_unavailable = "pvdd does not route (not root)"
            log.warning("strict mode unavailable: %s", self.strict_unavailable)
            return
        self.strict = StrictService.start(self.pvds, self.routing.tables.slot_marks())
        if self.strict is None:
            self.strict_unavailable = why_unavailable() or "unavailable"

    def stop(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        """SIGTERM, SIGINT: leave the loop at the next turn."""
        self.stopping = True

    def request_reload(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        """SIGHUP: re-read the configuration file at the next loop turn."""
        self.reload_requested = True

    def _reload(self) -> None:
        self.reload_requested = False
        try:
            self.discovery.config = load_config(self.config_path)
        except ConfigError as exc:
            log.error("configuration not reloaded, keeping the previous one: %s", exc)
            return
        log.info("configuration reloaded")
        if self.infos is not None:
            self.infos.config = self.discovery.config.info  # the CA file of the next fetch
        self.discovery.rebuild()  # every link's store read again with it
        if self.routing is not None:
            self.routing.config_changed()
        self._schedule()

    def close(self) -> None:
        """Close everything and remove the socket file; the routing state is parked, not
        removed (pvdrun/routing/lifecycle.py)."""
        for conn in list(self.conns.values()):
            self._drop(conn)
        if self.listener is not None:
            try:
                if os.path.exists(self.socket_path):
                    os.unlink(self.socket_path)
            except OSError:
                pass
            self.listener.close()
        if self.watches is not None:
            self.watches.close()
        if self.infos is not None:
            self.infos.close()
        if self.strict is not None:
            self.strict.stop()
            self.strict = None
        if self.routing is not None:
            self.routing.stop(self.pvds, self.discovery.config.routing)
            self.routing = None
        self.discovery.close()
        self.worker.close()
        self.selector.close()

    def serve_forever(self) -> None:
        """The event loop; returns after SIGTERM/SIGINT."""
        # Signal handlers only set flags; the wakeup socket makes select return
        # (Python would otherwise resume the select after the handler ran).
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        self.selector.register(wake_r, selectors.EVENT_READ, "wakeup")
        previous_fd = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGHUP, self.request_reload)
        try:
            self._loop()
        finally:
            signal.set_wakeup_fd(previous_fd)
            self.selector.unregister(wake_r)
            wake_r.close()
            wake_w.close()

    def _loop(self) -> None:
        """Wait for notifications, RAs, clients and deadlines until stopped."""
        while not self.stopping:
            if self.reload_requested:
                self._reload()
            timeout = self.discovery.timeout()
            if self.refresh_at is not None:
                left = max(0.0, self.refresh_at - time.monotonic())
                timeout = left if timeout is None else min(timeout, left)
            wakeup = self.infos.next_wakeup() if self.infos is not None else None
            if wakeup is not None:
                left = max(0.0, wakeup - time.time())
                timeout = left if timeout is None else min(timeout, left)
            try:
                ready = self.selector.select(timeout)
            except InterruptedError:
                continue
            for key, mask in ready:
                if key.data == "engine":
                    try:
                        if self.discovery.handle_readable(key.fileobj):
                            self._schedule()
                    except Exception:  # one bad message must never stop pvdd
                        log.exception("handling a notification or RA failed; continuing")
                        self._schedule()
                elif key.data == "listen":
                    self._accept()
                elif key.data == "resolved":
                    self._deliver_lookups()
                elif key.data == "pvdinfo":
                    assert self.infos is not None
                    if self.infos.completed(time.time()):
                        self._infos_changed()
                elif key.data == "wakeup":
                    try:
                        key.fileobj.recv(4096)  # type: ignore[union-attr]
                    except OSError:
                        pass
                else:
                    self._service(key.data, mask)
            if self.discovery.ras.expire():
                self._schedule()
            if self.infos is not None:
                now = time.time()
                self.infos.start_due(now)
                if self.infos.refresh_current(now):  # an object expired
                    self._infos_changed()
            if self.refresh_at is not None and time.monotonic() >= self.refresh_at:
                self.refresh_at = self.burst_began = None
                self._refresh()

    def _infos_changed(self) -> None:
        """The current Additional Information changed: the next table carries it."""
        assert self.infos is not None
        self.discovery.infos = self.infos.current
        self._schedule()

    def _schedule(self) -> None:
        """Assemble the table once the burst is quiet for SETTLE, at most SETTLE_MAX after it began."""
        now = time.monotonic()
        if self.burst_began is None:
            self.burst_began = now
        self.refresh_at = min(now + SETTLE, self.burst_began + SETTLE_MAX)

    def _schedule_retry(self) -> None:
        """A table that could not be read is tried again a little later (the dump failed)."""
        self.burst_began = None
        self.refresh_at = time.monotonic() + SETTLE_MAX

    def _refresh(self) -> None:
        """The new table (the engine's model brought up to date, the links that changed
        assembled again) and pvdd's routing synced to it (the events carry the marks and
        tables it assigns); then the events, and then strict mode and the resolvers, which
        the events do not wait for (a request after an event is handled after them)."""
        began = time.monotonic()
        try:
            new = self.discovery.pvds()
        except Exception:  # a failed dump must not kill the daemon
            log.exception("re-reading the PvD table failed; keeping the previous one")
            self._schedule_retry()
            return
        assembled = time.monotonic()
        if self.routing is not None:
            self.routing.sync(new, self.discovery.ras, self.discovery.config.routing)
        routed = time.monotonic()
        table = Table(new, self.table)
        events = self.table.diff(table)
        self.pvds, self.table = new, table
        if self.infos is not None:
            self.infos.sync(new, time.time())
        for event in events:
            log.info("%s %s", event["event"], event.get("pvd_id", event.get("new")))
            line = encode({"v": VERSION, **event})
            for conn in list(self.conns.values()):
                if conn.subscribed:
                    self._send(conn, line)
        told = time.monotonic()
        if self.strict is not None:
            try:
                self.strict.sync(new, self.routing.tables.slot_marks() if self.routing else {})
            except Exception:  # a failed update must not stop pvdd
                log.exception("updating the strict cgroups failed")
        self.worker.sync(new)
        log.debug("table of %d PvDs: assembled in %.1f ms, routing synced in %.1f ms, %d events "
                  "sent in %.1f ms, strict mode and resolvers in %.1f ms", len(new),
                  (assembled - began) * 1e3, (routed - assembled) * 1e3, len(events),
                  (told - routed) * 1e3, (time.monotonic() - told) * 1e3)

    # -- clients ------------------------------------------------------------------
    def _accept(self) -> None:
        assert self.listener is not None
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accept failed: %s", exc)
                return
            sock.setblocking(False)
            conn = Conn(sock)  # credentials are read per mark request (SO_PEERCRED)
            self.conns[sock.fileno()] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)

    def _drop(self, conn: Conn) -> None:
        fd = conn.sock.fileno()
        if fd in self.conns:
            del self.conns[fd]
            try:
                self.selector.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        for fd in conn.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        conn.fds.clear()
        if self.watches is not None:
            self.watches.drop(id(conn))
        conn.sock.close()

    def _service(self, conn: Conn, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush(conn)
        if mask & selectors.EVENT_READ and conn.sock.fileno() >= 0:
            try:
                data, fds, _flags, _addr = socket.recv_fds(conn.sock, 65536, MAX_PENDING_FDS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop(conn)
                return
            conn.fds.extend(fds)
            if len(conn.fds) > MAX_PENDING_FDS:
                log.info("dropping a client that passes descriptors without requests")
                self._drop(conn)
                return
            if not data:
                self._drop(conn)
                return
            if conn.closing:
                return
            conn.inbuf += data
            self._drain_lines(conn)

    def _drain_lines(self, conn: Conn) -> None:
        """Handle the complete request lines buffered for conn, in order."""
        while b"\n" in conn.inbuf and not conn.closing and not conn.busy:
            line, conn.inbuf = conn.inbuf.split(b"\n", 1)
            self._handle_line(conn, line)
        if len(conn.inbuf) > MAX_LINE and not conn.closing and b"\n" not in conn.inbuf:
            self._reject(conn, E_BAD_REQUEST, f"request line longer than {MAX_LINE} octets")

    def _deliver_lookups(self) -> None:
        """Send the replies of finished lookups, then resume those clients' requests."""
        for token, reply in self.worker.completed():
            if not isinstance(token, Conn):
                continue
            token.busy = False
            if self.conns.get(token.sock.fileno()) is not token:
                continue  # the client went away meanwhile
            self._send(token, encode(reply))
            if self.conns.get(token.sock.fileno()) is token:
                self._drain_lines(token)

    def _reject(self, conn: Conn, code: str, message: str) -> None:
        """Reply with an error, then disconnect (garbage on the socket)."""
        log.info("disconnecting a client: %s", message)
        conn.closing = True
        conn.inbuf = b""
        self._send(conn, encode(error_reply(code, message)))

    def _handle_line(self, conn: Conn, line: bytes) -> None:
        if not line.strip():
            return
        try:
            request = decode_request(line)
        except BadRequest as exc:
            self._reject(conn, exc.code, str(exc))
            return
        reply = handle(self, conn, request)
        if reply is not None:  # bytes: a line already encoded (a cache hit)
            self._send(conn, reply if isinstance(reply, bytes) else encode(reply))

    def _send(self, conn: Conn, data: bytes) -> None:
        conn.outbuf += data
        if len(conn.outbuf) > MAX_BACKLOG:
            log.warning("dropping a subscriber that does not read")
            self._drop(conn)
            return
        self._flush(conn)

    def _flush(self, conn: Conn) -> None:
        if conn.sock.fileno() < 0:
            return
        while conn.outbuf:
            try:
                sent = conn.sock.send(conn.outbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET):
                    log.debug("send failed: %s", exc)
                self._drop(conn)
                return
            del conn.outbuf[:sent]
        if conn.outbuf:
            self.selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
        elif conn.closing:
            self._drop(conn)
        else:
            self.selector.modify(conn.sock, selectors.EVENT_READ, conn)
