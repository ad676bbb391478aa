"""The mark request as every Python client sends it: pvdd's refusal reaches the user with
pvdd's own reason (the error object of docs/protocol.md), not a generic "refused".

pvdd's side is the protocol module's own encoder (``error_reply`` + ``encode``), served on a
real Unix socket with the descriptor passed by SCM_RIGHTS; no root needed."""
from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

from pvdrun.daemon.protocol import encode, error_reply
from pvdrun.model import Pvd
from pvdrun.resolve.sockets import _pvdd_mark

REASON = "uid 65534 may not use PvD secure.example (restricted)"


def _serve_once(listener: socket.socket, seen: dict[str, object]) -> None:
    conn, _ = listener.accept()
    with conn:
        msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
        seen["request"] = json.loads(msg)
        seen["fds"] = len(fds)
        for fd in fds:
            socket.close(fd)
        conn.sendall(encode(error_reply("forbidden", REASON)))


@pytest.fixture
def refusing_pvdd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = str(tmp_path / "pvdd.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    seen: dict[str, object] = {}
    thread = threading.Thread(target=_serve_once, args=(listener, seen), daemon=True)
    thread.start()
    monkeypatch.setenv("PVDRUN_SOCKET", path)
    yield seen
    thread.join(timeout=5)
    listener.close()


def test_refused_mark_gives_pvdds_reason(refusing_pvdd: dict[str, object]) -> None:
    """The path an unprivileged resolver takes (as root the mark is set directly)."""
    pvd = Pvd(pvd_id="secure.example", handle=4242, mark=0x99)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        why = _pvdd_mark(sock, pvd)
    assert why is not None and REASON in why, why
    assert refusing_pvdd["request"] == {"v": 1, "op": "mark", "handle": 4242}
    assert refusing_pvdd["fds"] == 1
