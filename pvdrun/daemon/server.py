"""pvdd: keeps the PvD table current and serves it on a Unix socket (R1, R2, R10, R14-R17).

One thread, one selector: the netlink notification socket, the raw RA
socket, the listening socket and every client.  A change (netlink, RA, or an
RA-learned lifetime running out) schedules a re-read of the table once the
burst is quiet for a few ms (engine.SETTLE, capped by engine.SETTLE_MAX);
the differences are pushed to subscribers.  A client that sends garbage
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
from typing import Any

from pvdrun.daemon.protocol import (E_AMBIGUOUS, E_BAD_REQUEST, E_UNKNOWN_OP, E_UNKNOWN_PVD,
                                    E_VERSION, MAX_LINE, OPS, VERSION, decode, encode, error_reply)
from pvdrun.daemon.resolving import ResolveWorker
from pvdrun.config import Config
from pvdrun.discovery.engine import SETTLE, SETTLE_MAX, Discovery
from pvdrun.discovery.events import diff, snapshot_event
from pvdrun.discovery.names import PvdLookupError, lookup
from pvdrun.model import Pvd
from pvdrun.routing.marking import MAX_PENDING_FDS, mark_request
from pvdrun.routing.policy import peer_credentials

log = logging.getLogger("pvdrun.pvdd")

MAX_BACKLOG = 4 * 1024 * 1024


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
        self.refresh_at: float | None = None
        self.burst_began: float | None = None  # first notification not yet in a refresh
        self.stopping = False
        self.worker = ResolveWorker()
        self.routing: Any = None  # pvdrun.routing.netlink.RoutingTables when pvdd routes (root)
        self.nested: Any = None  # pvdrun.routing.nested.NestedAddresses when pvdd routes (root)
        self.firewall: Any = None  # pvdrun.routing.firewall.Firewall when pvdd routes (root)

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        """Claim the socket, subscribe to changes, learn the initial table, take over the
        routing state, then serve (clients that connect meanwhile wait in the backlog).

        The socket comes first: a second pvdd on the same socket must fail before it
        touches the first one's tables."""
        self.listener = bind_socket(self.socket_path)
        self.discovery.start_notifications()
        self.discovery.prime()
        self.pvds = self.discovery.pvds()
        self._start_routing()
        for fileobj in self.discovery.fileobjs():
            self.selector.register(fileobj, selectors.EVENT_READ, "engine")
        self.selector.register(self.listener, selectors.EVENT_READ, "listen")
        self.selector.register(self.worker.wake_r, selectors.EVENT_READ, "resolved")
        log.info("pvdd serving %d PvDs on %s", len(self.pvds), self.socket_path)

    def _start_routing(self) -> None:
        """As root: check the configured ranges, take over what an earlier pvdd left, build
        the tables.  Nothing is removed before its replacement is in place: identical rules
        and routes stay as they are, each PvD gets the slot its table's marker names, the
        nftables table is replaced in one transaction (docs/routing.md).

        Raises RoutingConflict when rules/routes of others use pvdd's priorities or tables."""
        if os.geteuid() != 0:
            log.warning("not root: no per-PvD routing tables or socket marks (docs/routing.md)")
            return
        from pvdrun.routing.firewall import Firewall
        from pvdrun.routing.nested import NestedAddresses
        from pvdrun.routing.netlink import RoutingTables

        routing = RoutingTables(self.discovery.config.routing)
        try:
            routing.check_conflicts()
            rules, routes = routing.take_over()
        except Exception:
            routing.close()
            raise
        if rules or routes:
            log.warning("taking over %d rules and %d routes an earlier pvdd left (%d slots)",
                        rules, routes, len(routing.slots.parked))
        self.routing = routing
        self.nested = NestedAddresses(routing.ipr)
        self.firewall = Firewall()
        if self.firewall.exists():
            log.warning("replacing the nftables table an earlier pvdd left")
        self._sync_routing(self.pvds)
        if self.pvds:
            kept = sum(1 for p in self.pvds if "table" in p.attributes)
            log.info("routing %d PvDs; %d slots parked", kept, len(routing.slots.parked))

    def _sync_routing(self, pvds: list[Pvd]) -> None:
        """Apply nested PvD options (addresses, routes), then sync the per-PvD tables."""
        if self.routing is None:
            return
        from pvdrun.routing.nested import add_nested_routes

        try:
            if self.nested is not None:
                self.nested.sync(self.discovery.ras)
            add_nested_routes(pvds, self.discovery.ras)
            self.routing.sync(pvds)  # assigns the marks the firewall needs
            if self.firewall is not None:
                self.firewall.sync(pvds, self.discovery.config.routing, self.routing.parked_marks())
        except Exception:  # a netlink failure must not stop pvdd
            log.exception("updating the per-PvD routing tables failed")

    def stop(self, *_: Any) -> None:
        self.stopping = True

    def request_reload(self, *_: Any) -> None:
        """SIGHUP: re-read the configuration file at the next loop turn."""
        self.reload_requested = True

    def _reload(self) -> None:
        from pvdrun.config import ConfigError, load_config

        self.reload_requested = False
        try:
            self.discovery.config = load_config(self.config_path)
        except ConfigError as exc:
            log.error("configuration not reloaded, keeping the previous one: %s", exc)
            return
        log.info("configuration reloaded")
        if self.firewall is not None:
            self.firewall.current = None  # re-install the nftables table even if unchanged
        self._schedule()

    def close(self) -> None:
        """Close everything and remove the socket file."""
        for conn in list(self.conns.values()):
            self._drop(conn)
        if self.listener is not None:
            try:
                if os.path.exists(self.socket_path):
                    os.unlink(self.socket_path)
            except OSError:
                pass
            self.listener.close()
        # What keeps PvDs apart stays while pvdd is away (docs/routing.md): the nftables
        # table, the nested-prefix addresses (they expire on their own), the tables and
        # every rule but the mark lookups (marked sockets fail until a pvdd is back). The
        # table drops every mark before the mark lookups go (an IPv4 device-bound socket
        # whose lookup fails would be sent on-link).
        self.nested = None
        if self.routing is not None and self.firewall is not None:
            try:
                self.firewall.sync(self.pvds, self.discovery.config.routing, self.routing.marks())
            except Exception:  # noqa: BLE001 - closing must go on
                log.exception("dropping the marks in the nftables table failed")
        self.firewall = None
        if self.routing is not None:
            try:
                deleted, rules, routes = self.routing.park()
                log.info("stopped: removed %d mark rules, kept %d rules and %d routes "
                         "(`pvdrun daemon --cleanup` removes them)", deleted, rules, routes)
            except Exception:  # noqa: BLE001 - closing must go on
                log.exception("parking the per-PvD routing tables failed")
            finally:
                self.routing.close()
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
                elif key.data == "wakeup":
                    try:
                        key.fileobj.recv(4096)  # type: ignore[union-attr]
                    except OSError:
                        pass
                else:
                    self._service(key.data, mask)
            if self.discovery.ras.expire():
                self._schedule()
            if self.refresh_at is not None and time.monotonic() >= self.refresh_at:
                self.refresh_at = self.burst_began = None
                self._refresh()

    def _schedule(self) -> None:
        """Re-read the table once the burst is quiet for SETTLE, at most SETTLE_MAX after it began."""
        now = time.monotonic()
        if self.burst_began is None:
            self.burst_began = now
        self.refresh_at = min(now + SETTLE, self.burst_began + SETTLE_MAX)

    def _refresh(self) -> None:
        try:
            new = self.discovery.pvds()
        except Exception:  # a failed dump must not kill the daemon
            log.exception("re-reading the PvD table failed; keeping the previous one")
            return
        self._sync_routing(new)
        events = diff(self.pvds, new)
        self.pvds = new
        self.worker.sync(new)
        for event in events:
            log.info("%s %s", event["event"], event.get("id", event.get("new")))
            line = encode({"v": VERSION, **event})
            for conn in list(self.conns.values()):
                if conn.subscribed:
                    self._send(conn, line)

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
            request = decode(line)
        except ValueError:
            self._reject(conn, E_BAD_REQUEST, "request is not JSON")
            return
        if not isinstance(request, dict):
            self._reject(conn, E_BAD_REQUEST, "request is not a JSON object")
            return
        if request.get("v") != VERSION:
            self._reject(conn, E_VERSION, f"protocol version {request.get('v')!r} not supported "
                         f"(this pvdd speaks {VERSION})")
            return
        if request.get("op") == "resolve":
            self._start_lookup(conn, request)
            return
        if request.get("op") == "mark":
            fd = conn.fds.pop(0) if conn.fds else None
            try:
                peer = peer_credentials(conn.sock)
            except OSError as exc:
                if fd is not None:
                    os.close(fd)
                self._send(conn, encode(error_reply(E_BAD_REQUEST, f"no peer credentials: {exc}")))
                return
            reply = mark_request(self.pvds, request, fd, peer)
            if not reply.get("ok"):
                log.info("mark refused for pid %d uid %d: %s", peer.pid, peer.uid, reply["error"]["message"])
            self._send(conn, encode(reply))
            return
        self._send(conn, encode(self.answer(request, conn)))

    def _start_lookup(self, conn: Conn, request: dict[str, Any]) -> None:
        """op "resolve": {"name": PVD, "host": HOST, "type": "A"} answered by a worker."""
        name, host, rdtype = request.get("name"), request.get("host"), request.get("type", "A")
        if not (isinstance(name, str) and isinstance(host, str) and isinstance(rdtype, str)
                and name and host and rdtype):
            self._send(conn, encode(error_reply(E_BAD_REQUEST, "resolve needs \"name\" (a PvD) "
                                                "and \"host\" strings, and optionally \"type\"")))
            return
        try:
            pvd = lookup(self.pvds, name)
        except PvdLookupError as exc:
            self._send(conn, encode(error_reply(E_AMBIGUOUS if exc.ambiguous else E_UNKNOWN_PVD,
                                                str(exc), exc.candidates)))
            return
        conn.busy = True
        self.worker.submit(conn, pvd, host, rdtype.upper())

    def answer(self, request: dict[str, Any], conn: Conn | None = None) -> dict[str, Any]:
        """The reply to one well-formed request."""
        op = request.get("op")
        default = next((p for p in self.pvds if p.is_default), None)
        if op == "list":
            return {"v": VERSION, "ok": True, "op": "list", "pvds": [p.to_dict() for p in self.pvds],
                    "default": default.pvd_id if default else None}
        if op == "default":
            return {"v": VERSION, "ok": True, "op": "default",
                    "pvd": default.to_dict() if default else None}
        if op == "get":
            name = request.get("name")
            if not isinstance(name, str) or not name:
                return error_reply(E_BAD_REQUEST, "get needs a \"name\" string")
            try:
                pvd = lookup(self.pvds, name)
            except PvdLookupError as exc:
                return error_reply(E_AMBIGUOUS if exc.ambiguous else E_UNKNOWN_PVD, str(exc),
                                   exc.candidates)
            return {"v": VERSION, "ok": True, "op": "get", "pvd": pvd.to_dict()}
        if op == "subscribe":
            if conn is not None:
                conn.subscribed = True
            return {"v": VERSION, "ok": True, "op": "subscribe", **snapshot_event(self.pvds)}
        return error_reply(E_UNKNOWN_OP, f"unknown op {op!r}; expected one of {', '.join(OPS)}")

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
