"""The shim fails closed and scopes at every level.

A private pair of namespaces (names carry this run's pid): the host ``pvs<pid>h`` has
two links, ``ha<pid>`` (PvD A, no default route) and ``hb<pid>`` (PvD B, which holds
the host's default route), to a peer namespace ``pvs<pid>p``.  Every probe is a real
Python process run with the shim preloaded and a scope line in PVDRUN_SCOPE.
Requirements cited: draft-kline-mif-mpvd-api-reqs-00 R3, R4, R6, R8, R11-R13, R19-R21.
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from typing import Any, Iterator

import pytest

from fixtures.capture import LinkCapture, assert_caught, assert_no_leak
from fixtures.netns import Namespaces, ifindex, in_ns, sh
from pvdrun.model import HANDLE_NULL, null_scope
from pvdrun.shim import library_path

pytestmark = pytest.mark.root

PID = os.getpid() % 100000
HOST_NS, PEER_NS = f"pvs{PID}h", f"pvs{PID}p"
IF_A, IF_B = f"ha{PID}", f"hb{PID}"
HANDLE_A, HANDLE_B = 1111, 2222

PROBE = r'''
import errno, json, socket, sys, threading
from pvdrun.shim import binding

def err(fn):
    try:
        value = fn()
        return value if value is not None else "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))

def bind(family, addr):
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.bind((addr, 0)); return "ok"
    finally:
        s.close()

def udp_connect(family, addr):
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.connect((addr, 9)); return [s.getsockname()[0], binding.socket_scope(s)]
    finally:
        s.close()

def tcp_connect(family, addr, port=9):
    s = socket.socket(family, socket.SOCK_STREAM); s.settimeout(3)
    try:
        s.connect((addr, port)); return "ok"
    finally:
        s.close()

def udp_sendto(family, addr):
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.sendto(b"x", (addr, 9)); return "ok"
    finally:
        s.close()

def loopback(family, addr):
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((addr, 0)); server.listen(1)
    client = socket.socket(family, socket.SOCK_STREAM)
    client.connect(server.getsockname()[:2])
    conn, _ = server.accept(); client.sendall(b"hi"); data = conn.recv(2)
    udp = socket.socket(family, socket.SOCK_DGRAM); udp.bind((addr, 0))
    udp2 = socket.socket(family, socket.SOCK_DGRAM); udp2.sendto(b"u", udp.getsockname()[:2])
    return [data.decode(), binding.socket_scope(client), udp.recv(1).decode()]

def unix():
    a, b = socket.socketpair(); a.send(b"u"); return b.recv(1).decode()

def levels(other_line):
    out = {"process": binding.get_process_scope(), "thread": binding.get_thread_scope(),
           "effective": binding.effective_scope(), "preloaded": binding.is_preloaded()}
    other = binding.add_scope(other_line)
    with binding.thread_scope(other):
        out["in_with"] = [binding.get_thread_scope(), binding.effective_scope()]
        seen = {}
        def worker():
            seen["thread"] = binding.get_thread_scope(); seen["effective"] = binding.effective_scope()
        t = threading.Thread(target=worker); t.start(); t.join()
        out["other_thread"] = [seen["thread"], seen["effective"]]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(("10.88.0.1", 9))
        out["with_socket"] = [binding.socket_scope(s), s.getsockname()[0]]
    out["after_with"] = [binding.get_thread_scope(), binding.effective_scope()]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out["fresh_socket"] = binding.socket_scope(s)
    binding.bind_socket(s, other); out["explicit"] = binding.socket_scope(s)
    out["rebind"] = err(lambda: binding.bind_socket(s, binding.get_process_scope()))
    s.connect(("10.88.0.1", 9)); out["explicit_src"] = s.getsockname()[0]
    out["unknown"] = err(lambda: binding.set_thread_scope(987654))
    n = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); binding.bind_socket(n, 0xFFFFFFFF)
    out["null_socket"] = [binding.socket_scope(n), err(lambda: n.sendto(b"x", ("10.77.0.1", 9)))]
    binding.set_process_scope(other)
    out["process_set"] = [binding.get_process_scope(), binding.effective_scope()]
    import subprocess
    out["child_scope"] = subprocess.run(["sh", "-c", 'echo "$PVDRUN_SCOPE"'], capture_output=True,
                                        text=True).stdout.strip()
    return out

def sendmmsg(addr, count):
    import ctypes
    class iovec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
    class msghdr(ctypes.Structure):
        _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(iovec)),
                    ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                    ("flags", ctypes.c_int)]
    class mmsghdr(ctypes.Structure):
        _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]
    libc = ctypes.CDLL(None, use_errno=True)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sin = (ctypes.c_ubyte * 16)(2, 0, 0, 9, *socket.inet_aton(addr))
    data = ctypes.create_string_buffer(b"m")
    iov = iovec(ctypes.cast(data, ctypes.c_void_p), 1)
    msgs = (mmsghdr * count)()
    for m in msgs:
        m.hdr.name = ctypes.cast(sin, ctypes.c_void_p); m.hdr.namelen = 16
        m.hdr.iov = ctypes.pointer(iov); m.hdr.iovlen = 1
    sent = libc.sendmmsg(s.fileno(), msgs, count, 0)
    if sent < 0:
        return errno.errorcode[ctypes.get_errno()]
    return [sent, binding.socket_scope(s)]

def server(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port)); srv.listen(4)
    print("listening", flush=True)
    srv.settimeout(10)
    conn, peer = srv.accept()
    print(json.dumps({"peer": peer[0], "listener": binding.socket_scope(srv),
                      "accepted": binding.socket_scope(conn)}), flush=True)

cmd = sys.argv[1]
args = sys.argv[2:]
fam = {"4": socket.AF_INET, "6": socket.AF_INET6}
if cmd == "server":
    server(int(args[0]))
else:
    table = {
        "bind": lambda: err(lambda: bind(fam[args[0]], args[1])),
        "udp_connect": lambda: err(lambda: udp_connect(fam[args[0]], args[1])),
        "tcp_connect": lambda: err(lambda: tcp_connect(fam[args[0]], args[1])),
        "udp_sendto": lambda: err(lambda: udp_sendto(fam[args[0]], args[1])),
        "socket": lambda: err(lambda: socket.socket(fam[args[0]], socket.SOCK_STREAM).close()),
        "loopback": lambda: err(lambda: loopback(fam[args[0]], args[1])),
        "unix": lambda: err(unix),
        "levels": lambda: levels(args[0]),
        "sendmmsg": lambda: sendmmsg(args[0], int(args[1])),
    }
    print(json.dumps(table[cmd]()))
'''


@pytest.fixture(scope="module")
def net() -> Iterator[dict[str, Any]]:
    """Build the two private namespaces (fixtures/netns.py); always removed afterwards."""
    with Namespaces() as spaces:
        spaces.add(HOST_NS)
        spaces.add(PEER_NS)
        for name, peer, v4, v6 in ((IF_A, f"pa{PID}", "10.77.0", "fd77"), (IF_B, f"pb{PID}", "10.88.0", "fd88")):
            spaces.veth(HOST_NS, name, PEER_NS, peer, [f"{v4}.2/24", f"{v6}::2/64"], [f"{v4}.1/24", f"{v6}::1/64"])
        host_route = ["ip", "-n", HOST_NS, "route", "add"]
        sh(*host_route, "default", "via", "10.88.0.1")
        # 10.66.0.0/24 through both links, B preferred: an untied socket leaves by B, one tied
        # to A by A (test_concurrent_first_use_ties_each_socket_once)
        sh(*host_route, "10.66.0.0/24", "via", "10.88.0.1", "metric", "100")
        sh(*host_route, "10.66.0.0/24", "via", "10.77.0.1", "metric", "200")
        sh("ip", "-n", HOST_NS, "-6", "route", "add", "default", "via", "fd88::1")
        index = {name: ifindex(HOST_NS, name) for name in (IF_A, IF_B)}
        yield {
            "a": f"v=1 id=pvda handle={HANDLE_A} if={IF_A}:{index[IF_A]} addr=10.77.0.2 addr=fd77::2 "
                 f"mark=0x0 srcbind=0",
            "a_srcbind": f"v=1 id=pvda handle={HANDLE_A} if={IF_A}:{index[IF_A]} addr=10.77.0.2 "
                         f"addr=fd77::2 mark=0x0 srcbind=1",
            "b": f"v=1 id=pvdb handle={HANDLE_B} if={IF_B}:{index[IF_B]} addr=10.88.0.2 addr=fd88::2 "
                 f"mark=0x0 srcbind=0",
            "gone": f"v=1 id=gone handle=3333 if=gone0:{index[IF_B] + 1000} addr=10.66.0.2",
            "index_a": index[IF_A],
        }


def probe(scope: str | None, *args: str, ns: str = HOST_NS) -> tuple[Any, str]:
    """Run the probe with the shim preloaded; return (JSON result, stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PVDRUN_SCOPE", "LD_PRELOAD")}
    settings = [f"LD_PRELOAD={library_path()}"]  # set by env(1): `ip` itself runs unhooked
    if scope is not None:
        settings.append(f"PVDRUN_SCOPE={scope}")
    done = subprocess.run(in_ns(ns, ["env", *settings, sys.executable, "-c", PROBE, *args]), capture_output=True,
                          text=True, timeout=30, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_bind_outside_pvd_is_refused(net: dict[str, str]) -> None:
    """R6: only the PvD's addresses (or the wildcard, or loopback) can be bound."""
    assert probe(net["a"], "bind", "4", "10.88.0.2")[0] == "EADDRNOTAVAIL"
    assert probe(net["a"], "bind", "6", "fd88::2")[0] == "EADDRNOTAVAIL"
    assert probe(net["a"], "bind", "4", "10.77.0.2")[0] == "ok"
    assert probe(net["a"], "bind", "6", "fd77::2")[0] == "ok"
    assert probe(net["a"], "bind", "4", "0.0.0.0")[0] == "ok"
    assert probe(net["a"], "bind", "4", "127.0.0.1")[0] == "ok"
    assert probe(None, "bind", "4", "10.88.0.2")[0] == "ok"  # control: unscoped, allowed


def test_unreachable_destination_fails_with_enetunreach(net: dict[str, str]) -> None:
    """The PvD A has no route to 10.99/16 or fd99::/16; the host's default (PvD B) has."""
    assert probe(None, "udp_connect", "4", "10.99.0.1")[0][0] == "10.88.0.2"  # control
    assert probe(net["a"], "udp_connect", "4", "10.99.0.1")[0] == "ENETUNREACH"
    assert probe(net["a"], "tcp_connect", "4", "10.99.0.1")[0] == "ENETUNREACH"
    assert probe(net["a"], "udp_sendto", "4", "10.99.0.1")[0] == "ENETUNREACH"
    assert probe(net["a"], "udp_connect", "6", "fd99::1")[0] == "ENETUNREACH"
    assert probe(net["a"], "tcp_connect", "6", "fd99::1")[0] == "ENETUNREACH"


def test_source_address_comes_from_the_pvd(net: dict[str, str]) -> None:
    """R6: the source is one of the PvD's addresses; the socket reports its PvD (R8)."""
    assert probe(net["a"], "udp_connect", "4", "10.77.0.1")[0] == ["10.77.0.2", HANDLE_A]
    assert probe(net["a"], "udp_connect", "6", "fd77::1")[0] == ["fd77::2", HANDLE_A]
    assert probe(net["a_srcbind"], "udp_connect", "4", "10.77.0.1")[0] == ["10.77.0.2", HANDLE_A]
    assert probe(net["b"], "udp_connect", "4", "10.99.0.1")[0] == ["10.88.0.2", HANDLE_B]
    # on a link the PvD does not own, the on-link peer of B is unreachable from A
    assert probe(net["a"], "udp_connect", "4", "10.88.0.1")[0] == "ENETUNREACH"


def test_pvd_gone_fails_every_operation(net: dict[str, str]) -> None:
    """A PvD whose interface no longer exists fails (never another PvD).

    Linux 6.x accepts SO_BINDTOIFINDEX with a missing index (older kernels: ENODEV,
    which the shim reports as ENETDOWN); the route lookup then fails: ENETUNREACH.
    """
    for args in (("udp_connect", "4", "10.77.0.1"), ("tcp_connect", "6", "fd77::1"),
                 ("udp_sendto", "4", "10.88.0.1"), ("udp_sendto", "6", "fd88::1")):
        assert probe(net["gone"], *args)[0] in ("ENETDOWN", "ENETUNREACH"), args


def test_null_pvd_fails_fast(net: dict[str, str]) -> None:
    """R13: socket() for AF_INET/AF_INET6 fails with EACCES; AF_UNIX still works."""
    assert probe(null_scope(), "socket", "4")[0] == "EACCES"
    assert probe(null_scope(), "socket", "6")[0] == "EACCES"
    assert probe(null_scope(), "unix")[0] == "u"


@pytest.mark.parametrize("line", ["v=2 id=x handle=5 if=lo:1", "v=1 id=x handle=5",
                                  "v=1 id=x handle=0 if=lo:1", "v=1 id=x handle=5 if=lo:1 addr=1.2.3",
                                  "v=1 id=x handle=5 if=lo:1 srcbind=2", "garbage", ""])
def test_malformed_scope_fails_closed(net: dict[str, str], line: str) -> None:
    """A malformed line: one line on stderr, every inet operation fails."""
    result, stderr = probe(line, "socket", "4")
    assert result == "EACCES"
    assert stderr.count("malformed PVDRUN_SCOPE") == 1
    assert probe(line, "unix")[0] == "u"


def test_loopback_stays_reachable(net: dict[str, str]) -> None:
    """Sockets whose destination or bind address is loopback are left unscoped."""
    assert probe(net["a"], "loopback", "4", "127.0.0.1")[0] == ["hi", 0, "u"]
    assert probe(net["a"], "loopback", "6", "::1")[0] == ["hi", 0, "u"]


def test_scope_levels_and_getters(net: dict[str, str]) -> None:
    """R12, R19-R21: socket > thread > process > system; getters give 0 when unset."""
    unset, _ = probe(None, "levels", net["b"])
    assert unset["process"] == 0 and unset["thread"] == 0 and unset["effective"] == 0
    out, _ = probe(net["a"], "levels", net["b"])
    assert out["preloaded"] is True
    assert out["process"] == HANDLE_A and out["thread"] == 0 and out["effective"] == HANDLE_A
    assert out["in_with"] == [HANDLE_B, HANDLE_B]
    assert out["other_thread"] == [0, HANDLE_A]  # a thread scope is the thread's only
    assert out["with_socket"] == [HANDLE_B, "10.88.0.2"]
    assert out["after_with"] == [0, HANDLE_A]
    assert out["fresh_socket"] == 0
    assert out["explicit"] == HANDLE_B and out["explicit_src"] == "10.88.0.2"
    assert out["rebind"] == "EBUSY"  # one PvD per socket (R4)
    assert out["unknown"] == "ENOENT"
    assert out["null_socket"] == [HANDLE_NULL, "ENETUNREACH"]
    assert out["process_set"] == [HANDLE_B, HANDLE_B]
    assert out["child_scope"] == net["b"]  # children started later inherit (R20)


def test_sendmmsg_is_scoped(net: dict[str, str]) -> None:
    """sendmmsg ties the socket like sendto; an unreachable batch is refused whole."""
    assert probe(net["a"], "sendmmsg", "10.77.0.1", "3")[0] == [3, HANDLE_A]
    assert probe(net["a"], "sendmmsg", "10.99.0.1", "3")[0] == "ENETUNREACH"
    assert probe(None, "sendmmsg", "10.99.0.1", "2")[0] == [2, 0]  # control: default route (B)


def test_accepted_socket_belongs_to_listener_pvd(net: dict[str, str]) -> None:
    """A listener in PvD A accepts through A only; the accepted socket is in A (R8)."""
    port = 20000 + PID % 20000
    server = subprocess.Popen(in_ns(HOST_NS, ["env", f"LD_PRELOAD={library_path()}", f"PVDRUN_SCOPE={net['a']}",
                                              sys.executable, "-c", PROBE, "server", str(port)]),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "listening"
        refused = connect_from_peer("10.88.0.2", port)
        # through B's link: no listener there, the kernel answers RST (not a crash, not a timeout)
        assert refused.returncode == 0 and refused.stdout.strip() == str(errno.ECONNREFUSED), refused
        accepted = connect_from_peer("10.77.0.2", port)
        assert accepted.returncode == 0 and accepted.stdout.strip() == "0", accepted
        report = json.loads(server.stdout.readline())
        assert report == {"peer": "10.77.0.1", "listener": HANDLE_A, "accepted": HANDLE_A}
    finally:
        server.kill()
        server.wait()
    # control: the same server unscoped is reached through B's link, so the check can fail
    server = subprocess.Popen(in_ns(HOST_NS, ["env", f"LD_PRELOAD={library_path()}",
                                              sys.executable, "-c", PROBE, "server", str(port + 1)]),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "listening"
        through_b = connect_from_peer("10.88.0.2", port + 1)
        assert through_b.returncode == 0 and through_b.stdout.strip() == "0", through_b
    finally:
        server.kill()
        server.wait()


def connect_from_peer(address: str, port: int) -> subprocess.CompletedProcess:
    """A TCP connect from the peer namespace; prints connect_ex's result (0 or an errno)."""
    client = [sys.executable, "-c", "import socket,sys; s=socket.socket(); s.settimeout(3); "
              "print(s.connect_ex((sys.argv[1], int(sys.argv[2]))))"]
    return sh(*client, address, str(port), ns=PEER_NS, check=False, timeout=20)


def test_concurrent_first_use_ties_each_socket_once(net: dict[str, Any], tmp_path: Any) -> None:
    """8 threads racing on each fresh socket's first sendto: every datagram goes, every
    socket ends tied to the process's PvD A, nothing hangs (compare-and-swap claim).  The
    destination, 10.66.0.1, is routed through both links with B preferred, so an untied
    datagram would leave by B: the capture of B's link holds none of them, and the kernel
    says each socket is bound to A (SO_BINDTOIFINDEX read back), not only the shim.
    Control: the same program without a scope is found on B's link by the same verdict."""
    lib = library_path()
    include = os.path.dirname(lib)
    source = os.path.join(os.path.dirname(__file__), "c", "concurrent_tie.c")
    binary = str(tmp_path / "concurrent_tie")
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-I", include, "-o", binary, source, lib,
                    f"-Wl,-rpath,{include}", "-pthread"], check=True)
    token = "C" + os.urandom(5).hex()
    rules = {"quiet": ["10.88.0.2", "fd88::2"], "destinations": ["10.66.0.1"], "tokens": [token]}
    run = in_ns(HOST_NS, ["env", f"LD_PRELOAD={lib}"])
    with LinkCapture(PEER_NS, f"pb{PID}", label="B") as on_b:
        done = subprocess.run([*run, f"PVDRUN_SCOPE={net['a']}", binary, "10.66.0.1", str(net["index_a"]), token],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fails=0 scoped=2000 bound=2000 rounds=2000"
    assert_no_leak(on_b, done.stdout, **rules)
    with LinkCapture(PEER_NS, f"pb{PID}", label="B") as control:
        plain = subprocess.run([*run, binary, "10.66.0.1", str(net["index_a"]), token, "20"],
                               capture_output=True, text=True, timeout=120)
    assert plain.stdout.split()[2:] == ["bound=0", "rounds=20"], (plain.stdout, plain.stderr)  # no scope: untied
    assert_caught(control, plain.stdout, **rules)
