"""pvdd's wire protocol, version 1 (docs/protocol.md), and a small client.

Newline-delimited JSON over a SOCK_STREAM Unix socket.  Requests:
``{"v":1,"op":"list"|"get"|"default"|"subscribe"|"resolve"|"mark",...}``; replies
``{"v":1,"ok":true,...}`` or ``{"v":1,"ok":false,"error":{"code":...,
"message":...,"candidates":[...]}}``.  Encoding is compact (no spaces), so
a reply holds ``"scope":"..."`` literally, which the shim's C API extracts.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import struct
from typing import Any, Iterator

from pvdrun.model import DEFAULT_SOCKET, SOCKET_ENV

VERSION = 1
MAX_LINE = 64 * 1024
# (the ops, docs/protocol.md "Requests", are pvdrun.daemon.handlers.OPS: the keys of pvdd's table)

# error codes (docs/protocol.md, "Errors")
E_BAD_REQUEST = "bad_request"
E_UNKNOWN_OP = "unknown_op"
E_UNKNOWN_PVD = "unknown_pvd"
E_AMBIGUOUS = "ambiguous_pvd"
E_VERSION = "unsupported_version"
E_FORBIDDEN = "forbidden"  # mark: the policy does not let this peer use the PvD
E_UNAVAILABLE = "unavailable"  # strict: strict mode cannot hold the PvD here; the message says why
E_CANNOT_HONOUR = "cannot_honour"  # scope: the shim cannot hold the PvD; the message says why
E_RESOLVE_FAILED = "resolve_failed"  # resolve: no answer; error.kind says why


class BadRequest(ValueError):
    """A request line pvdd cannot take; ``code`` is the error code of the reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class DaemonUnavailable(OSError):
    """pvdd's socket does not answer."""


class ConnectionLost(DaemonUnavailable):
    """pvdd closed or reset a connection that was open (it stopped, or was restarted)."""


class DaemonError(Exception):
    """pvdd answered with ok=false."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.code = str(error.get("code", ""))
        self.message = str(error.get("message", ""))
        self.candidates = [str(c) for c in error.get("candidates", [])]
        self.kind = str(error.get("kind", ""))  # resolve_failed: why (docs/resolution.md)
        super().__init__(f"{self.code}: {self.message}")


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line (compact JSON + newline)."""
    return (json.dumps(message, separators=(",", ":"), sort_keys=False) + "\n").encode()


def decode(line: bytes) -> Any:
    """One protocol line as JSON; ValueError for anything that is not (nesting too deep for
    Python's parser included: a line of 100,000 '[' is malformed, never a crash)."""
    try:
        return json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def decode_request(line: bytes) -> dict[str, Any]:
    """One request line: a JSON object of this protocol version; raises BadRequest."""
    try:
        request = decode(line)
    except ValueError:
        raise BadRequest(E_BAD_REQUEST, "request is not JSON") from None
    if not isinstance(request, dict):
        raise BadRequest(E_BAD_REQUEST, "request is not a JSON object")
    if request.get("v") != VERSION:
        raise BadRequest(E_VERSION, f"protocol version {request.get('v')!r} not supported "
                         f"(this pvdd speaks {VERSION})")
    return request


def socket_path(explicit: str | None = None) -> str:
    """--socket / argument, else $PVDRUN_SOCKET, else /run/pvd/pvdd.sock."""
    return explicit or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


def ok_reply(op: str, **fields: Any) -> dict[str, Any]:
    """An ok=true reply to ``op``."""
    return {"v": VERSION, "ok": True, "op": op, **fields}


def error_reply(code: str, message: str, candidates: list[str] | None = None) -> dict[str, Any]:
    """An ok=false reply."""
    return {"v": VERSION, "ok": False,
            "error": {"code": code, "message": message, "candidates": list(candidates or [])}}


def _timeval(timeout: float | None) -> bytes:
    """A struct timeval for SO_SNDTIMEO/SO_RCVTIMEO; None (and 0, which the kernel reads as
    "wait forever") become: no timeout, and a timeout under a microsecond one microsecond."""
    if timeout is None:
        return struct.pack("@ll", 0, 0)
    whole = int(timeout)
    micro = int((timeout - whole) * 1_000_000)
    if whole == 0 and micro == 0:
        micro = 1
    return struct.pack("@ll", whole, micro)


def connect_blocking(sock: socket.socket, path: str, timeout: float | None) -> None:
    """Connect ``sock`` to ``path`` waiting, at most ``timeout`` s, for room in pvdd's backlog;
    then give it ``timeout`` for its reads and writes.

    A Python socket timeout makes connect() non-blocking, and a non-blocking
    AF_UNIX connect() to a listener whose backlog is full fails at once with
    EAGAIN (it has no EINPROGRESS); under a burst of clients that refused
    connections pvdd would have accepted a moment later.  A blocking connect()
    waits for room instead, bounded by SO_SNDTIMEO (unix_stream_connect), and
    still fails with EAGAIN when that runs out.
    """
    if timeout is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(timeout))
    sock.connect(path)
    sock.settimeout(timeout)


#: errno values saying that the other end of a connection is gone
_LOST = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ECONNABORTED})
#: what a read or write that ran out of its SO_RCVTIMEO/SO_SNDTIMEO fails with
_TIMED_OUT = frozenset({errno.EAGAIN, errno.EWOULDBLOCK})


class Client:
    """A connection to pvdd: any number of requests, one after the other (not thread-safe:
    pvdrun.api keeps one per process and lends it to one thread at a time).

    The socket stays blocking, bounded by the kernel's SO_RCVTIMEO and SO_SNDTIMEO (a
    Python socket timeout would add a poll() to every read and write), and lines are
    read from the client's own buffer."""

    def __init__(self, path: str | None = None, timeout: float | None = 5.0) -> None:
        self.path = socket_path(path)
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connect_blocking(self.sock, self.path, timeout)
            self.sock.settimeout(None)
            self._waiting: float | None = None
            self._wait(timeout)
        except OSError as exc:
            self.sock.close()
            raise DaemonUnavailable(exc.errno, f"pvdd at {self.path}: {exc.strerror}") from None
        self._buffer = bytearray()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait(self, timeout: float | None) -> None:
        """Let reads and writes wait at most ``timeout`` s (None: forever)."""
        if timeout != self._waiting:
            value = _timeval(timeout)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
            self._waiting = timeout

    def _unavailable(self, exc: OSError) -> DaemonUnavailable:
        if exc.errno in _TIMED_OUT:
            return DaemonUnavailable(exc.errno, f"pvdd at {self.path} did not answer in time")
        kind = ConnectionLost if exc.errno in _LOST else DaemonUnavailable
        return kind(exc.errno, f"pvdd at {self.path}: {exc.strerror or exc}")

    def _line(self) -> bytes:
        buffer = self._buffer
        end = buffer.find(b"\n")
        while end < 0:
            if len(buffer) > MAX_LINE * 64:
                raise DaemonUnavailable(0, f"pvdd at {self.path} sent a line longer than {MAX_LINE * 64} octets")
            try:
                chunk = self.sock.recv(65536)
            except OSError as exc:
                raise self._unavailable(exc) from None
            if not chunk:
                raise ConnectionLost(0, f"pvdd at {self.path} closed the connection")
            buffer += chunk
            end = buffer.find(b"\n", len(buffer) - len(chunk))
        line = bytes(buffer[:end + 1])
        del buffer[:end + 1]
        return line

    def read(self) -> dict[str, Any]:
        """The next message; raises DaemonUnavailable when pvdd does not answer in time,
        ConnectionLost when it closed or reset the connection."""
        line = self._line()
        try:
            message = decode(line)
        except ValueError:
            raise DaemonUnavailable(0, f"{self.path} answered something that is not JSON") from None
        if not isinstance(message, dict) or message.get("v") != VERSION:
            raise DaemonUnavailable(0, f"pvdd at {self.path} speaks another protocol version")
        return message

    def exchange(self, request: dict[str, Any], fds: list[int] | None = None,
                 timeout: float | None = None) -> dict[str, Any]:
        """Send one request (``"v"`` added; ``fds`` in the same sendmsg) and return its ok=true
        reply, waiting at most ``timeout`` s for it (default: the client's).  Raises
        DaemonError with pvdd's reason when it refused, ConnectionLost when the connection
        was closed or reset (never SIGPIPE), DaemonUnavailable otherwise (then the
        connection is out of step: close it)."""
        line = encode({"v": VERSION, **request})
        self._wait(self.timeout if timeout is None else timeout)
        try:
            if fds:
                socket.send_fds(self.sock, [line], fds, socket.MSG_NOSIGNAL)
            else:
                self.sock.sendall(line, socket.MSG_NOSIGNAL)
        except OSError as exc:
            raise self._unavailable(exc) from None
        reply = self.read()
        if not reply.get("ok"):
            raise DaemonError(reply.get("error") or {})
        return reply

    def request(self, op: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
        """Send one request and return its ok=true reply; raises DaemonError."""
        if name is not None:
            fields["name"] = name
        return self.exchange({"op": op, **fields})

    def mark(self, sock: socket.socket, handle: int) -> dict[str, Any]:
        """Ask pvdd to give ``sock`` (passed with SCM_RIGHTS) the mark of PvD ``handle``; returns
        the ok=true reply, raises DaemonError with pvdd's reason when refused."""
        return self.exchange({"op": "mark", "handle": handle}, [sock.fileno()])

    def subscribe(self) -> Iterator[dict[str, Any]]:
        """The snapshot reply, then every pushed event (waited for without a timeout), until
        pvdd goes away."""
        snapshot = self.request("subscribe")
        self._wait(None)
        yield snapshot
        while True:
            yield self.read()
