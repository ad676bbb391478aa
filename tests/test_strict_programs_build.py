"""The strict-mode test programs (fixtures/strict_programs.py) build and work, unscoped, on
loopback: as root, and as a created unprivileged user (the built files are theirs to run)."""
from __future__ import annotations

import http.server
import os
import socket
import stat
import subprocess
import tempfile
import threading
from typing import Iterator

import pytest

from fixtures import strict_programs
from fixtures.strict_programs import setuid_dir  # noqa: F401 (fixture)
from fixtures.prereq import require
from fixtures.unprivileged import User, unprivileged_user  # noqa: F401 (fixture)

pytestmark = pytest.mark.root
BODY = b"strict programs: the page\n"


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[int]:
    """An HTTP server on 127.0.0.1 answering BODY to every GET; its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module", autouse=True)
def root_only() -> None:
    require(os.geteuid() == 0, "root (a created user runs the programs)")


def run(argv: list[str], user: User | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """argv run as root, or as ``user`` when given, with only PATH (and ``env``) in its environment."""
    env = {"PATH": "/usr/bin:/bin", **(env or {})}
    if user is None:
        return subprocess.run(argv, capture_output=True, timeout=120, env=env)
    return subprocess.run(user.drop(argv, env), capture_output=True, timeout=120)


@pytest.fixture(params=["root", "user"])
def who(request: pytest.FixtureRequest, unprivileged_user: User) -> User | None:
    """Who runs the program: root (None) or the created unprivileged user."""
    return None if request.param == "root" else unprivileged_user


def closed_port(family: socket.AddressFamily, address: str) -> tuple[socket.socket, int]:
    """A TCP socket bound to ``address`` and not listening (a connection to it is refused, and no
    one else takes the port while it is open), and its port."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((address, 0))
    return sock, sock.getsockname()[1]


def test_go_httpget_is_static() -> None:
    binary = strict_programs.go_httpget()
    assert not strict_programs.has_interpreter(binary)
    assert stat.S_IMODE(os.stat(binary).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.dirname(binary)).st_mode) == 0o755


def test_go_httpget_fetches_by_name(who: User | None, web: int) -> None:
    done = run([strict_programs.go_httpget(), f"http://localhost:{web}/page"], who)
    assert (done.returncode, done.stdout, done.stderr) == (0, BODY, b"")


def test_go_httpget_error_is_one_line() -> None:
    sock, port = closed_port(socket.AF_INET, "127.0.0.1")
    with sock:
        done = run([strict_programs.go_httpget(), f"http://127.0.0.1:{port}/"])
    assert done.returncode == 1 and done.stdout == b""
    assert len(done.stderr.splitlines()) == 1 and b"refused" in done.stderr, done.stderr


@pytest.mark.parametrize("family,address", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")],
                         ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("program", ["syscall_connect", "uring_connect"])
def test_connect_reaches_listener(program: str, family: socket.AddressFamily, address: str,
                                  who: User | None) -> None:
    binary = getattr(strict_programs, program)()
    message = f"{program} to {address}, as {who.name if who else 'root'}"
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((address, 0))
        listener.listen(1)
        listener.settimeout(60)
        done = run([binary, address, str(listener.getsockname()[1]), message], who)
        assert (done.returncode, done.stdout, done.stderr) == (0, b"connected\n", b"")
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(60)
            received = b""
            while chunk := conn.recv(4096):
                received += chunk
    assert received == message.encode()


@pytest.mark.parametrize("family,address", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")],
                         ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("program", ["syscall_connect", "uring_connect"])
def test_connect_refused(program: str, family: socket.AddressFamily, address: str) -> None:
    binary = getattr(strict_programs, program)()
    sock, port = closed_port(family, address)
    with sock:
        done = run([binary, address, str(port), "unsent"])
    assert (done.returncode, done.stdout) == (1, b"error: ECONNREFUSED (111)\n"), done


def test_empty_env_child_has_no_environment(who: User | None) -> None:
    done = run([strict_programs.empty_env_child(), "/usr/bin/env"], who,
               env={"LD_PRELOAD": "", "PVDRUN_STRICT_PROGRAMS": "parent only"})
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def test_empty_env_child_passes_arguments_and_status() -> None:
    done = run([strict_programs.empty_env_child(), "/bin/sh", "-c", 'echo "$0:$1"; exit 7', "zero", "one"])
    assert (done.returncode, done.stdout) == (7, b"zero:one\n")


def test_busybox_wget_fetches(who: User | None, web: int) -> None:
    argv = strict_programs.busybox_wget()
    assert not strict_programs.has_interpreter(argv[0])
    done = run([*argv, "-q", "-O", "-", f"http://127.0.0.1:{web}/page"], who)
    assert (done.returncode, done.stdout) == (0, BODY), done.stderr


def test_setuid_curl_is_setuid_root(setuid_dir: str) -> None:
    curl = strict_programs.setuid_curl(setuid_dir)
    info = os.stat(curl)
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o4755, 0, 0)
    assert os.path.dirname(curl) == setuid_dir
    assert strict_programs.setuid_curl(setuid_dir) == curl  # again: replaced, same result
    assert stat.S_IMODE(os.stat(curl).st_mode) == 0o4755


def test_setuid_curl_fetches(who: User | None, web: int, setuid_dir: str) -> None:
    """It fetches, and it runs as root whoever starts it: the file it writes is root's."""
    curl = strict_programs.setuid_curl(setuid_dir)
    outdir = tempfile.mkdtemp(prefix="out-", dir=setuid_dir)
    os.chmod(outdir, 0o777)
    out = os.path.join(outdir, "page")
    done = run([curl, "-sS", "-f", "--noproxy", "*", "-o", out, f"http://127.0.0.1:{web}/page"], who)
    assert done.returncode == 0, done.stderr
    with open(out, "rb") as f:
        assert f.read() == BODY
    assert os.stat(out).st_uid == 0


def test_setuid_curl_refuses_nosuid_directory(setuid_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.statvfs

    class NoSuid:
        def __init__(self, path: str) -> None:
            self.f_flag = real(path).f_flag | os.ST_NOSUID

    monkeypatch.setattr(os, "statvfs", NoSuid)
    with pytest.raises(pytest.fail.Exception, match="nosuid"):
        strict_programs.setuid_curl(setuid_dir)
