"""Property tests of pvdd's protocol lines (pvdrun/daemon/protocol.py, docs/protocol.md).

- A reply line, whatever its bytes, is either a version-1 JSON object or DaemonUnavailable
  (Client.read), never another exception; encode() -> Client.read() is the identity, and an
  error reply comes back as the same DaemonError.
- A request line, whatever its bytes, gets exactly one well-formed reply from pvdd's line
  handler (or, for a lookup, is handed to the resolver worker), never an exception: pvdd
  serves every client from one thread, so an exception there would stop it for all.
- encode() writes a "scope" value literally, as the shim's C client (shim_next_scope)
  expects it.
"""
from __future__ import annotations

import io
import json
import socket
from typing import Any

import pytest
from hypothesis import example, given, strategies as st

from fixtures.property_settings import PROPERTY
from pvdrun.daemon.handlers import OPS
from pvdrun.daemon.protocol import (VERSION, Client, DaemonError, DaemonUnavailable, encode,
                                    error_reply)
from pvdrun.daemon.server import Conn, Pvdd
from pvdrun.discovery.events import Table
from pvdrun.model import Pvd

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                | st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
names = st.sampled_from(["ispa", "ispa.example", "ISPA.example.", "veth0", "wifi", "7", "", "null"])
requests = st.fixed_dictionaries(
    {"v": st.sampled_from([VERSION, 2, 0, "1", None, 1.0, True])},
    optional={"op": st.sampled_from([*OPS, "bogus", ""]) | json_values,
              "name": names | json_values, "host": st.text(max_size=20) | json_values,
              "type": st.sampled_from(["A", "aaaa", "MX", "bogus"]) | json_values,
              "handle": st.sampled_from([7, -1, 2 ** 40, True]) | json_values})
request_lines = (st.binary(max_size=200).map(lambda b: b.replace(b"\n", b""))
                 | requests.map(lambda r: encode(r).rstrip(b"\n"))
                 | json_values.map(lambda v: json.dumps(v).encode()))


class _Held:
    """A connection that holds ``data`` and then is closed (no socket)."""

    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)

    def recv(self, size: int) -> bytes:
        return self.stream.read(size)


def reading(data: bytes) -> Client:
    """A Client whose connection holds ``data`` (no socket)."""
    client = Client.__new__(Client)
    client.path = "/run/pvd/test.sock"
    client.sock = _Held(data)  # type: ignore[assignment]
    client._buffer = bytearray()
    return client


def read_or_unavailable(data: bytes) -> dict[str, Any] | None:
    try:
        message = reading(data).read()
    except DaemonUnavailable:
        return None
    assert isinstance(message, dict) and message.get("v") == VERSION
    return message


@PROPERTY
@given(st.binary(max_size=300) | requests.map(encode) | json_values.map(
    lambda v: json.dumps(v).encode() + b"\n"))
@example(b"")
@example(b"\xff\xfe\n")
@example(b'{"v":1}\n')
@example(b'{"v":true}\n')
def test_reply_line_is_a_message_or_unavailable(data: bytes) -> None:
    read_or_unavailable(data)


@PROPERTY
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_encode_read_round_trip(message: dict[str, Any]) -> None:
    message["v"] = VERSION
    line = encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert reading(line + line).read() == message


@PROPERTY
@given(st.text(max_size=20), st.text(max_size=40), st.lists(st.text(max_size=10), max_size=4))
def test_error_reply_round_trip(code: str, message: str, candidates: list[str]) -> None:
    reply = reading(encode(error_reply(code, message, candidates))).read()
    assert reply["ok"] is False
    error = DaemonError(reply["error"])
    assert (error.code, error.message, error.candidates) == (code, message, candidates)


@PROPERTY
@given(st.text("abcdefghijklmnopqrstuvwxyz0123456789=.:%/_- ", max_size=120))
def test_scope_value_is_written_literally(scope: str) -> None:
    """The shim reads "scope":"..." without a JSON decoder: no escaping may happen."""
    line = encode({"v": VERSION, "ok": True, "pvd": {"id": "x", "scope": scope}})
    assert f'"scope":"{scope}"'.encode() in line


class _Worker:
    """The resolver worker, recording what pvdd hands to it."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, str]] = []

    def cached(self, pvd: Pvd, host: str, rdtype: str) -> bytes | None:
        return None  # nothing cached: every lookup is submitted

    def submit(self, token: Any, pvd: Pvd, host: str, rdtype: str) -> None:
        self.submitted.append((host, rdtype))


def _daemon() -> Pvdd:
    """A pvdd with one PvD and no sockets of its own; replies are recorded, not sent."""
    daemon = Pvdd.__new__(Pvdd)
    daemon.pvds = [Pvd(pvd_id="ispa.example", handle=7, explicit=True, names=["ispa"],
                       interfaces=["veth0"], ifindexes=[3], addresses=["2001:db8:a::2/64"],
                       dns_servers=["2001:db8:a::53"], search_domains=["ispa.example"],
                       kind="ethernet", is_default=True, mark=0x5001)]
    daemon.table = Table(daemon.pvds)  # the served table, each PvD's dictionary made once
    daemon.conns = {}
    daemon.worker = _Worker()  # type: ignore[assignment]
    daemon.strict, daemon.strict_unavailable = None, "not root"
    daemon.watches, daemon.infos = None, None  # no verify watches, no Additional Information
    daemon.sent = []  # type: ignore[attr-defined]
    daemon._send = lambda conn, data: daemon.sent.append(data)  # type: ignore[method-assign]
    return daemon


def handle(lines: list[bytes]) -> tuple[Pvdd, Conn]:
    """Run pvdd's line handling over ``lines`` from one client."""
    daemon = _daemon()
    ours, peer = socket.socketpair()
    try:
        conn = Conn(ours)
        conn.inbuf = b"\n".join(lines) + b"\n"
        daemon._drain_lines(conn)
    finally:
        ours.close()
        peer.close()
    return daemon, conn


def check_replies(daemon: Pvdd) -> None:
    for line in daemon.sent:  # type: ignore[attr-defined]
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        reply = json.loads(line)
        assert reply["v"] == VERSION and isinstance(reply["ok"], bool)
        if not reply["ok"]:
            assert isinstance(reply["error"]["code"], str) and reply["error"]["code"]


@PROPERTY
@given(request_lines)
@example(b"")
@example(b"\xff")
@example(b"[]")
@example(b'{"v":1,"op":"list"}')
@example(b'{"v":1,"op":"mark","handle":7}')
@example(b'{"v":1,"op":"resolve","name":"ispa","host":"svc.example"}')
def test_request_line_gets_one_reply(line: bytes) -> None:
    daemon, conn = handle([line])
    check_replies(daemon)
    submitted = daemon.worker.submitted  # type: ignore[attr-defined]
    if not line.strip():
        assert daemon.sent == [] and not submitted  # type: ignore[attr-defined]
    else:
        assert len(daemon.sent) + len(submitted) == 1  # type: ignore[attr-defined]
    if conn.closing:  # garbage: one error reply, then the connection is dropped
        assert not json.loads(daemon.sent[-1])["ok"]  # type: ignore[attr-defined]


@PROPERTY
@given(st.lists(request_lines, max_size=6))
def test_request_lines_in_one_buffer(lines: list[bytes]) -> None:
    """Several lines at once: handled in order, one reply each, until garbage or a lookup."""
    daemon, _ = handle(lines)
    check_replies(daemon)


@pytest.mark.parametrize("line", [b"[" * 5_000, b'{"v":' * 5_000], ids=["array", "object"])
def test_deeply_nested_request_is_rejected(line: bytes) -> None:
    try:
        daemon, conn = handle([line])
    except RecursionError:  # reported without its traceback
        pytest.fail("RecursionError escaped pvdd's line handler", pytrace=False)
    check_replies(daemon)
    assert conn.closing and len(daemon.sent) == 1  # type: ignore[attr-defined]


def test_deeply_nested_reply_is_unavailable() -> None:
    try:
        result = read_or_unavailable(b"[" * 5_000 + b"\n")
    except RecursionError:
        pytest.fail("RecursionError escaped Client.read", pytrace=False)
    assert result is None
