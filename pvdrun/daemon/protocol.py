"""pvdd's wire protocol, version 1 (docs/protocol.md), and a small client.

Newline-delimited JSON over a SOCK_STREAM Unix socket.  Requests:
``{"v":1,"op":"list"|"get"|"default"|"subscribe"|"resolve"|"mark",...}``; replies
``{"v":1,"ok":true,...}`` or ``{"v":1,"ok":false,"error":{"code":...,
"message":...,"candidates":[...]}}``.  Encoding is compact (no spaces), so
a reply holds ``"scope":"..."`` literally, which the shim's C API extracts.
"""
from __future__ import annotations

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


class DaemonError(Exception):
    """pvdd answered with ok=false."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.code = str(error.get("code", ""))
        self.message = str(error.get("message", ""))
        self.candidates = [str(c) for c in error.get("candidates", [])]
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
        whole = int(timeout)
        micro = int((timeout - whole) * 1_000_000)
        if whole == 0 and micro == 0:
            micro = 1  # a zero SO_SNDTIMEO would mean "wait forever"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("@ll", whole, micro))
    sock.connect(path)
    sock.settimeout(timeout)


class Client:
    """A connection to pvdd."""

    def __init__(self, path: str | None = None, timeout: float | None = 5.0) -> None:
        self.path = socket_path(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connect_blocking(self.sock, self.path, timeout)
        except OSError as exc:
            self.sock.close()
            raise DaemonUnavailable(exc.errno, f"pvdd at {self.path}: {exc.strerror}") from None
        self._file = self.sock.makefile("rb")

    def close(self) -> None:
        self._file.close()
        self.sock.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self) -> dict[str, Any]:
        """The next message; raises DaemonUnavailable when pvdd closed the connection."""
        try:
            line = self._file.readline(MAX_LINE * 64)
        except OSError as exc:
            raise DaemonUnavailable(exc.errno, f"pvdd at {self.path}: {exc}") from None
        if not line:
            raise DaemonUnavailable(0, f"pvdd at {self.path} closed the connection")
        try:
            message = decode(line)
        except ValueError:
            raise DaemonUnavailable(0, f"{self.path} answered something that is not JSON") from None
        if not isinstance(message, dict) or message.get("v") != VERSION:
            raise DaemonUnavailable(0, f"pvdd at {self.path} speaks another protocol version")
        return message

    def _exchange(self, request: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        """Send one request (with ``fds`` in the same sendmsg) and return its ok=true reply;
        raises DaemonError with pvdd's reason when it refused."""
        line = encode({"v": VERSION, **request})
        try:
            if fds:
                socket.send_fds(self.sock, [line], fds)
            else:
                self.sock.sendall(line)
        except OSError as exc:
            raise DaemonUnavailable(exc.errno, f"pvdd at {self.path}: {exc}") from None
        reply = self.read()
        if not reply.get("ok"):
            raise DaemonError(reply.get("error") or {})
        return reply

    def request(self, op: str, name: str | None = None) -> dict[str, Any]:
        """Send one request and return its ok=true reply; raises DaemonError."""
        return self._exchange({"op": op} if name is None else {"op": op, "name": name})

    def mark(self, sock: socket.socket, handle: int) -> dict[str, Any]:
        """Ask pvdd to give ``sock`` (passed with SCM_RIGHTS) the mark of PvD ``handle``; returns
        the ok=true reply, raises DaemonError with pvdd's reason when refused."""
        return self._exchange({"op": "mark", "handle": handle}, [sock.fileno()])

    def subscribe(self) -> Iterator[dict[str, Any]]:
        """The snapshot reply, then every pushed event, until pvdd goes away."""
        self.sock.settimeout(None)
        yield self.request("subscribe")
        while True:
            yield self.read()
