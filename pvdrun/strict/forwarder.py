"""pvdd's per-PvD DNS forwarder for strict mode (docs/strict.md).

A program held in strict mode sends its DNS queries wherever its resolver says: the
resolv.conf it reads may name an IPv4 server while its PvD's servers are IPv6 only, or a
loopback stub resolver of the host (127.0.0.53).  The cgroup's programs
(:mod:`pvdrun.strict.programs`) can rewrite a query's destination but cannot change a socket's
family, and the host's stub would ask the host's servers, not the PvD's.  So they send a DNS
query (UDP or TCP, port 53) to another server than the PvD's straight to the PvD's first server
of the socket's family, and, when the PvD has none of that family (or only link-local ones,
which a rewrite cannot give an interface), to this forwarder, on ``127.0.0.1:PORT`` for IPv4
sockets and ``[::1]:PORT`` for IPv6 ones (one PORT for both families and both protocols); the
forwarder asks the PvD's own servers from sockets tied
to the PvD (:mod:`pvdrun.resolve.sockets`: the PvD's device, source address and mark, and only
the servers the shim's rule lets it use), then relays the answers back verbatim.

* UDP: each query gets an upstream socket of its own (answers are matched by that socket,
  the server's address and port, the message ID and the question); the PvD's usable servers
  are tried in order, each for :data:`UDP_TIMEOUT` seconds; an answer other than NOERROR or
  NXDOMAIN is kept while another server is left (the resolver's rule,
  :meth:`pvdrun.resolve.resolver.PvdResolver.query`); when no server is left the client gets
  that answer, or a SERVFAIL made from its query, so that it fails fast instead of waiting for
  its own timeouts.  A PvD without a usable server is answered SERVFAIL at once.
* TCP: 2-octet-length-prefixed messages, each relayed over a TCP connection tied to the PvD,
  answers written back in the order they come.  A client connection idle for
  :data:`TCP_CLIENT_TIMEOUT` seconds is closed.
* Everything runs in one thread around one selector, all sockets non-blocking, at most
  :data:`MAX_IN_FLIGHT` queries at a time (beyond that: SERVFAIL), so that many parallel
  queries (A and AAAA at once) never wait on one another.  The thread never raises: errors are
  logged to ``pvdrun.pvdd``.
"""
from __future__ import annotations

import errno
import ipaddress
import logging
import selectors
import socket
import struct
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pvdrun.model import Pvd, split_zone
from pvdrun.resolve.errors import ResolveError
from pvdrun.resolve.sockets import scoped_socket, server_address, usable_servers

log = logging.getLogger("pvdrun.pvdd")

#: Seconds one server has to answer a UDP query before the next is asked.
UDP_TIMEOUT = 1.5
#: Seconds one server has to connect and answer over TCP before the next is asked.
TCP_UPSTREAM_TIMEOUT = 4.0
#: Seconds a TCP client connection may stay without traffic and without a pending query.
TCP_CLIENT_TIMEOUT = 10.0
#: Queries (UDP and TCP) being relayed at one time; beyond: SERVFAIL.
MAX_IN_FLIGHT = 256
#: TCP client connections at one time; beyond: closed at once.
MAX_TCP_CLIENTS = 64
#: Attempts at finding a port free on both loopback addresses and both protocols.
BIND_ATTEMPTS = 8
#: Longest DNS message (RFC 1035 over TCP: a 16-bit length).
MAX_MESSAGE = 65535
#: Datagrams read from one socket per wake-up, so that one busy client cannot starve the rest.
READ_BATCH = 64

HEADER = 12
QR, TC_FLAG, RD = 0x8000, 0x0200, 0x0100
OPCODE_MASK = 0x7800
RA_FLAG = 0x0080
RCODE_MASK = 0x000F
NOERROR, SERVFAIL, NXDOMAIN = 0, 2, 3
LOOPBACKS = ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"))

Handler = Callable[[int], None]


# -- DNS messages: just enough of the header and question to relay them ------------------------

def _question_end(message: bytes) -> int | None:
    """Offset after the first question (uncompressed name, type, class), None when malformed."""
    offset = HEADER
    while offset < len(message):
        length = message[offset]
        if length == 0:
            end = offset + 1 + 4
            return end if end <= len(message) else None
        if length & 0xC0:
            return None  # a query's name is never compressed
        offset += 1 + length
    return None


def is_query(message: bytes) -> bool:
    """A message with a header whose QR bit is clear (never relay an answer as a query)."""
    return len(message) >= HEADER and not message[2] & 0x80


def servfail(query: bytes) -> bytes:
    """The SERVFAIL answer to ``query``: its ID, opcode and RD, QR and RA set, RCODE 2, and its
    question when it has exactly one readable one."""
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    end = _question_end(query) if qdcount == 1 else None
    flags = QR | (flags & (OPCODE_MASK | RD)) | RA_FLAG | SERVFAIL
    question = query[HEADER:end] if end is not None else b""
    return struct.pack("!HHHHHH", qid, flags, 1 if question else 0, 0, 0, 0) + question


def rcode(message: bytes) -> int:
    return struct.unpack("!H", message[2:4])[0] & RCODE_MASK


def answers(reply: bytes, query: bytes) -> bool:
    """Whether ``reply`` is an answer to ``query``: QR set, same ID, and the same question
    (names compared without case) unless the reply carries none (e.g. FORMERR)."""
    if len(reply) < HEADER or not reply[2] & 0x80 or reply[:2] != query[:2]:
        return False
    if struct.unpack("!H", reply[4:6])[0] == 0:
        return True
    end = _question_end(query)
    return end is not None and reply[HEADER:end].lower() == query[HEADER:end].lower()


def _same_server(peer: tuple, server: str) -> bool:
    """Whether a datagram's source ``peer`` is ``server`` port 53 (zones compared by index)."""
    expected = server_address(server)
    host = split_zone(peer[0])[0]
    if ipaddress.ip_address(host) != ipaddress.ip_address(expected[0]) or peer[1] != expected[1]:
        return False
    return len(expected) == 2 or not expected[3] or peer[3] == expected[3]


def _servers(pvd: Pvd) -> list[str]:
    """The PvD's servers the forwarder may ask, in order; none when that cannot be told."""
    try:
        return usable_servers(pvd)
    except (ResolveError, OSError) as exc:
        log.warning("DNS forwarder of PvD %s: no usable server (%s)", pvd.pvd_id, exc)
        return []


# -- one query, relayed to the PvD's servers in turn ---------------------------------------------

@dataclass
class _Exchange:
    """One client query on its way through the PvD's servers (UDP or TCP upstream)."""

    query: bytes
    pvd: Pvd
    servers: list[str]
    reply: Callable[[bytes], None]      # hands the answer to the client
    kind: int                           # SOCK_DGRAM or SOCK_STREAM upstream
    key: int = 0
    owner: _TcpClient | None = None     # the TCP client connection it came on
    server: str = ""
    upstream: socket.socket | None = None
    deadline: float = 0.0
    failure: bytes | None = None        # the last answer that was neither NOERROR nor NXDOMAIN
    outbuf: bytes = b""                 # TCP: what is left to send
    inbuf: bytes = b""                  # TCP: what was received
    connected: bool = False


@dataclass
class _TcpClient:
    """A client's TCP connection to the forwarder."""

    sock: socket.socket
    deadline: float
    inbuf: bytes = b""
    outbuf: bytes = b""
    pending: int = 0                    # its queries being relayed
    eof: bool = False
    exchanges: set[int] = field(default_factory=set)


class DnsForwarder:
    """Relays DNS messages arriving on 127.0.0.1:PORT and [::1]:PORT (UDP and TCP, the same
    PORT on both families and both protocols) to one PvD's DNS servers, from sockets tied to
    that PvD, and relays the answers back verbatim."""

    def __init__(self, pvd: Pvd) -> None:
        self._pvd = pvd
        self._lock = threading.Lock()
        self.port = 0
        self._selector: selectors.BaseSelector | None = None
        self._listeners: list[socket.socket] = []
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._closed = False
        self._exchanges: dict[int, _Exchange] = {}     # by key
        self._keys = itertools.count(1)
        self._clients: dict[int, _TcpClient] = {}      # by fileno

    # -- public -----------------------------------------------------------------------------
    def start(self) -> None:
        """Bind the four sockets on one free port and start the thread."""
        with self._lock:
            if self._closed or self._thread is not None:
                raise RuntimeError("DNS forwarder already started or closed")
            self._listeners = self._bind_all()
            self.port = self._listeners[0].getsockname()[1]
            self._selector = selectors.DefaultSelector()
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._selector.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
            for sock in self._listeners:
                on_event = self._on_udp_query if sock.type == socket.SOCK_DGRAM else self._on_accept
                self._selector.register(sock, selectors.EVENT_READ, self._bound(on_event, sock))
            self._thread = threading.Thread(target=self._run, name=f"dns-forwarder-{self._pvd.pvd_id}",
                                            daemon=True)
            self._thread.start()
        log.info("DNS forwarder of PvD %s on 127.0.0.1 and ::1 port %d", self._pvd.pvd_id, self.port)

    def update(self, pvd: Pvd) -> None:
        """Later queries use ``pvd`` (its servers, mark, addresses); those in flight finish
        with the PvD they started with."""
        with self._lock:
            self._pvd = pvd

    def close(self) -> None:
        """Stop the thread and close every socket; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._stopping.set()
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
            if thread.is_alive():
                log.error("DNS forwarder of PvD %s: thread did not stop", self._pvd.pvd_id)
        self._close_all()

    # -- binding ------------------------------------------------------------------------------
    def _bind_all(self) -> list[socket.socket]:
        """UDP 127.0.0.1 on a port the kernel picks, then the same port for UDP ::1 and TCP on
        both; another port when one of them is taken."""
        for _attempt in range(BIND_ATTEMPTS):
            first = _listener(socket.AF_INET, "127.0.0.1", 0, socket.SOCK_DGRAM)
            port = first.getsockname()[1]
            sockets = [first]
            try:
                for family, host in LOOPBACKS:
                    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                        if (family, kind) != (socket.AF_INET, socket.SOCK_DGRAM):
                            sockets.append(_listener(family, host, port, kind))
                return sockets
            except OSError as exc:
                for sock in sockets:
                    sock.close()
                if exc.errno != errno.EADDRINUSE:
                    raise
        raise OSError(errno.EADDRINUSE, "no port free on 127.0.0.1 and ::1 for both UDP and TCP "
                                        f"after {BIND_ATTEMPTS} attempts")

    # -- the loop -----------------------------------------------------------------------------
    @staticmethod
    def _bound(handler: Callable[[socket.socket, int], None], sock: socket.socket) -> Handler:
        return lambda mask: handler(sock, mask)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._turn()
        except BaseException:  # noqa: BLE001 - the thread must never raise
            log.exception("DNS forwarder of PvD %s stopped", self._pvd.pvd_id)
        finally:
            self._close_all()

    def _turn(self) -> None:
        """One wait on the selector, its events handled, then the timeouts."""
        selector = self._selector
        if selector is None:
            self._stopping.wait(0.1)
            return
        try:
            events = selector.select(self._wait_time())
        except (OSError, ValueError) as exc:
            if self._stopping.is_set():
                return
            log.error("DNS forwarder of PvD %s: select failed: %s", self._pvd.pvd_id, exc)
            time.sleep(0.1)
            return
        for key, mask in events:
            if self._stopping.is_set():
                return
            try:
                key.data(mask)
            except Exception:  # noqa: BLE001 - one socket's trouble never stops the others
                log.exception("DNS forwarder of PvD %s: error on a socket", self._pvd.pvd_id)
        self._expire(time.monotonic())

    def _wait_time(self) -> float:
        deadlines = [e.deadline for e in self._exchanges.values()]
        deadlines += [c.deadline for c in self._clients.values() if not c.pending]
        if not deadlines:
            return 1.0
        return min(max(min(deadlines) - time.monotonic(), 0.0), 1.0)

    def _on_wake(self, _mask: int) -> None:
        assert self._wake_r is not None
        try:
            self._wake_r.recv(64)
        except OSError:
            pass

    def _expire(self, now: float) -> None:
        for exchange in [e for e in self._exchanges.values() if e.deadline <= now]:
            log.debug("DNS forwarder of PvD %s: %s did not answer in time", exchange.pvd.pvd_id,
                      exchange.server)
            self._next_server(exchange)
        for client in [c for c in self._clients.values() if c.deadline <= now and not c.pending]:
            self._close_client(client)

    # -- UDP from clients ---------------------------------------------------------------------
    def _on_udp_query(self, listener: socket.socket, _mask: int) -> None:
        for _ in range(READ_BATCH):
            try:
                data, client = listener.recvfrom(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("DNS forwarder: receive failed: %s", exc)
                return
            if not is_query(data):
                continue

            def reply(message: bytes, listener: socket.socket = listener, client: tuple = client) -> None:
                try:
                    listener.sendto(message, client)
                except OSError as exc:
                    log.debug("DNS forwarder: answer to %s not sent: %s", client[0], exc)

            self._begin(data, reply, socket.SOCK_DGRAM)

    # -- one exchange: start, next server, finish ---------------------------------------------
    def _begin(self, query: bytes, reply: Callable[[bytes], None], kind: int,
               owner: _TcpClient | None = None) -> None:
        """Relay ``query`` to the PvD's first usable server; SERVFAIL at once when there is
        none or too many queries are in flight."""
        if len(self._exchanges) >= MAX_IN_FLIGHT:
            log.warning("DNS forwarder of PvD %s: %d queries in flight, answering SERVFAIL",
                        self._pvd.pvd_id, len(self._exchanges))
            reply(servfail(query))
            return
        with self._lock:
            pvd = self._pvd
        exchange = _Exchange(query=query, pvd=pvd, servers=_servers(pvd), reply=reply, kind=kind,
                             key=next(self._keys), owner=owner)
        self._exchanges[exchange.key] = exchange
        if owner is not None:
            owner.exchanges.add(exchange.key)
        self._next_server(exchange)

    def _next_server(self, exchange: _Exchange) -> None:
        """Leave the current server and ask the next usable one; answer when none is left."""
        self._drop_upstream(exchange)
        while exchange.servers:
            server = exchange.servers.pop(0)
            try:
                self._ask(exchange, server)
                return
            except (ResolveError, OSError) as exc:
                log.warning("DNS forwarder of PvD %s: cannot ask %s: %s", exchange.pvd.pvd_id, server, exc)
                self._drop_upstream(exchange)
        self._finish(exchange, exchange.failure or servfail(exchange.query))

    def _ask(self, exchange: _Exchange, server: str) -> None:
        """Open a socket tied to the PvD for ``server`` and send (UDP) or connect (TCP)."""
        assert self._selector is not None
        sock = scoped_socket(exchange.pvd, server, exchange.kind)
        exchange.server, exchange.upstream = server, sock
        destination = server_address(server)
        if exchange.kind == socket.SOCK_DGRAM:
            exchange.deadline = time.monotonic() + UDP_TIMEOUT
            sock.sendto(exchange.query, destination)
            self._selector.register(sock, selectors.EVENT_READ, lambda mask: self._on_udp_answer(exchange))
            return
        exchange.deadline = time.monotonic() + TCP_UPSTREAM_TIMEOUT
        exchange.outbuf = struct.pack("!H", len(exchange.query)) + exchange.query
        exchange.inbuf, exchange.connected = b"", False
        rc = sock.connect_ex(destination)
        if rc not in (0, errno.EINPROGRESS):
            raise OSError(rc, f"connect to {server}: {errno.errorcode.get(rc, rc)}")
        self._selector.register(sock, selectors.EVENT_WRITE, lambda mask: self._on_tcp_upstream(exchange, mask))

    def _drop_upstream(self, exchange: _Exchange) -> None:
        sock, exchange.upstream = exchange.upstream, None
        if sock is not None:
            _unregister(self._selector, sock)
            sock.close()

    def _finish(self, exchange: _Exchange, answer: bytes) -> None:
        """Hand ``answer`` to the client and forget the exchange."""
        self._drop_upstream(exchange)
        if exchange.owner is not None:
            exchange.owner.exchanges.discard(exchange.key)
        if self._exchanges.pop(exchange.key, None) is not None:
            exchange.reply(answer)

    def _take(self, exchange: _Exchange, answer: bytes) -> None:
        """A server's answer: relayed, unless it is a failure and another server is left."""
        if rcode(answer) in (NOERROR, NXDOMAIN) or not exchange.servers:
            self._finish(exchange, answer)
            return
        exchange.failure = answer
        self._next_server(exchange)

    # -- UDP upstream -------------------------------------------------------------------------
    def _on_udp_answer(self, exchange: _Exchange) -> None:
        sock = exchange.upstream
        for _ in range(READ_BATCH):
            if sock is None or exchange.upstream is not sock:
                return
            try:
                data, peer = sock.recvfrom(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error reported on the socket
                log.debug("DNS forwarder: %s: %s", exchange.server, exc)
                self._next_server(exchange)
                return
            if _same_server(peer, exchange.server) and answers(data, exchange.query):
                self._take(exchange, data)
                return
            log.debug("DNS forwarder: ignored a datagram from %s for a query to %s", peer[0], exchange.server)

    # -- TCP upstream -------------------------------------------------------------------------
    def _on_tcp_upstream(self, exchange: _Exchange, mask: int) -> None:
        sock = exchange.upstream
        if sock is None:
            return
        try:
            if not exchange.connected:
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    raise OSError(error, f"connect to {exchange.server}: {errno.errorcode.get(error, error)}")
                exchange.connected = True
            if mask & selectors.EVENT_WRITE and exchange.outbuf:
                exchange.outbuf = exchange.outbuf[sock.send(exchange.outbuf):]
                if not exchange.outbuf:
                    assert self._selector is not None
                    self._selector.modify(sock, selectors.EVENT_READ,
                                          lambda mask: self._on_tcp_upstream(exchange, mask))
                return
            if mask & selectors.EVENT_READ:
                self._read_tcp_answer(exchange, sock)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.debug("DNS forwarder: TCP to %s: %s", exchange.server, exc)
            self._next_server(exchange)

    def _read_tcp_answer(self, exchange: _Exchange, sock: socket.socket) -> None:
        chunk = sock.recv(MAX_MESSAGE + 2)
        if not chunk:
            raise OSError(errno.ECONNRESET, f"{exchange.server} closed the connection without an answer")
        exchange.inbuf += chunk
        if len(exchange.inbuf) < 2:
            return
        size = struct.unpack("!H", exchange.inbuf[:2])[0]
        if len(exchange.inbuf) < 2 + size:
            return
        answer = exchange.inbuf[2:2 + size]
        if not answers(answer, exchange.query):
            raise OSError(errno.EPROTO, f"{exchange.server} answered another query")
        self._take(exchange, answer)

    # -- TCP clients --------------------------------------------------------------------------
    def _on_accept(self, listener: socket.socket, _mask: int) -> None:
        assert self._selector is not None
        for _ in range(READ_BATCH):
            try:
                conn, _peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("DNS forwarder: accept failed: %s", exc)
                return
            if len(self._clients) >= MAX_TCP_CLIENTS:
                log.warning("DNS forwarder of PvD %s: %d TCP clients, refusing another",
                            self._pvd.pvd_id, len(self._clients))
                conn.close()
                continue
            conn.setblocking(False)
            client = _TcpClient(sock=conn, deadline=time.monotonic() + TCP_CLIENT_TIMEOUT)
            self._clients[conn.fileno()] = client
            self._selector.register(conn, selectors.EVENT_READ, lambda mask, c=client: self._on_client(c, mask))

    def _on_client(self, client: _TcpClient, mask: int) -> None:
        if client.sock.fileno() < 0:
            return
        try:
            if mask & selectors.EVENT_WRITE and client.outbuf:
                client.outbuf = client.outbuf[client.sock.send(client.outbuf):]
                client.deadline = time.monotonic() + TCP_CLIENT_TIMEOUT
            if mask & selectors.EVENT_READ and not client.eof:
                chunk = client.sock.recv(MAX_MESSAGE + 2)
                if chunk:
                    client.inbuf += chunk
                    client.deadline = time.monotonic() + TCP_CLIENT_TIMEOUT
                    self._client_queries(client)
                else:
                    client.eof = True
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            log.debug("DNS forwarder: TCP client: %s", exc)
            self._close_client(client)
            return
        self._client_interest(client)

    def _client_queries(self, client: _TcpClient) -> None:
        """Start an exchange for each whole message the client sent."""
        while len(client.inbuf) >= 2:
            size = struct.unpack("!H", client.inbuf[:2])[0]
            if len(client.inbuf) < 2 + size:
                return
            query, client.inbuf = client.inbuf[2:2 + size], client.inbuf[2 + size:]
            if not is_query(query):
                continue
            client.pending += 1
            self._begin(query, lambda answer, c=client: self._client_answer(c, answer),
                        socket.SOCK_STREAM, owner=client)

    def _client_answer(self, client: _TcpClient, answer: bytes) -> None:
        client.pending -= 1
        if client.sock.fileno() < 0:
            return
        client.outbuf += struct.pack("!H", len(answer)) + answer
        client.deadline = time.monotonic() + TCP_CLIENT_TIMEOUT
        self._client_interest(client)

    def _client_interest(self, client: _TcpClient) -> None:
        """Wait for what the connection needs next; close it once it has nothing left to do."""
        if client.sock.fileno() < 0 or self._selector is None:
            return
        if client.eof and not client.pending and not client.outbuf:
            self._close_client(client)
            return
        events = (0 if client.eof else selectors.EVENT_READ) | (selectors.EVENT_WRITE if client.outbuf else 0)
        self._selector.modify(client.sock, events or selectors.EVENT_READ,
                              lambda mask, c=client: self._on_client(c, mask))

    def _close_client(self, client: _TcpClient) -> None:
        for key in list(client.exchanges):
            exchange = self._exchanges.pop(key, None)
            if exchange is not None:
                self._drop_upstream(exchange)
        client.exchanges.clear()
        client.pending = 0
        if client.sock.fileno() >= 0:
            self._clients.pop(client.sock.fileno(), None)
            _unregister(self._selector, client.sock)
            client.sock.close()

    # -- teardown -----------------------------------------------------------------------------
    def _close_all(self) -> None:
        """Close every socket and the selector (idempotent, never raises)."""
        with self._lock:
            selector, self._selector = self._selector, None
            listeners, self._listeners = self._listeners, []
            wake = [s for s in (self._wake_r, self._wake_w) if s is not None]
            self._wake_r = self._wake_w = None
        for exchange in list(self._exchanges.values()):
            if exchange.upstream is not None:
                exchange.upstream.close()
        self._exchanges.clear()
        for client in list(self._clients.values()):
            client.sock.close()
        self._clients.clear()
        for sock in [*listeners, *wake]:
            sock.close()
        if selector is not None:
            try:
                selector.close()
            except OSError:
                pass


def _listener(family: int, host: str, port: int, kind: int) -> socket.socket:
    """A non-blocking socket bound to ``host`` port ``port`` (listening, for TCP)."""
    sock = socket.socket(family, kind)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:  # connections of a previous forwarder in TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(64)
        sock.setblocking(False)
        return sock
    except BaseException:
        sock.close()
        raise


def _unregister(selector: selectors.BaseSelector | None, sock: socket.socket) -> None:
    if selector is None:
        return
    try:
        selector.unregister(sock)
    except (KeyError, ValueError, OSError):
        pass
