"""The mark request a DNS socket of the Python resolver makes: pvdd's refusal reaches the user with
pvdd's own reason (the error object of docs/protocol.md), not a generic "refused".

pvdd's side is the protocol module's own encoder (``error_reply`` + ``encode``), served on a
real Unix socket with the descriptor passed by SCM_RIGHTS.  The Python resolver's socket is tied
by the shim's C core (``pvd_tie_socket``), which sets the mark itself when it may: the client runs
without CAP_NET_ADMIN and CAP_NET_RAW (either lets SO_MARK through; root drops both from its
bounding set with setpriv, any other user lacks them), so pvdd is asked, as for an unprivileged
user.  No network is touched: the PvD's interface is loopback."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fixtures.prereq import require
from pvdrun.daemon.protocol import encode, error_reply

REASON = 'uid 65534 may not use PvD "secure.example" (restricted\\private)'  # escaped in JSON


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


# A PvD on loopback with a mark, tied as the resolver ties a DNS socket to its server ::1.
CLIENT = """
from pvdrun.model import Pvd
from pvdrun.resolve.errors import ResolveError
from pvdrun.resolve.sockets import scoped_socket
pvd = Pvd(pvd_id="secure.example", handle=4242, mark=0x99, interfaces=["lo"], ifindexes=[1],
          addresses=["::1/128"], dns_servers=["::1"])
try:
    scoped_socket(pvd, "::1").close()
    print("tied")
except ResolveError as exc:
    print(exc.kind, exc)
"""


def _without_net_admin(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    require(setpriv is not None, "setpriv (util-linux)")
    return [str(setpriv), "--bounding-set", "-net_admin,-net_raw", "--inh-caps", "-net_admin,-net_raw", *argv]


def test_refused_mark_gives_pvdds_reason(refusing_pvdd: dict[str, object]) -> None:
    """The path an unprivileged resolver takes (with CAP_NET_ADMIN or CAP_NET_RAW the mark is set directly)."""
    run = subprocess.run(_without_net_admin([sys.executable, "-c", CLIENT]), capture_output=True,
                         text=True, timeout=60, env=dict(os.environ))
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("no-server "), run.stdout
    assert REASON in run.stdout, run.stdout
    assert refusing_pvdd["request"] == {"v": 1, "op": "mark", "handle": 4242}
    assert refusing_pvdd["fds"] == 1
