"""pvdd answers a cached lookup at once, in its event loop, and the Python API keeps its
connection to pvdd (docs/protocol.md "Lookups", docs/python-api.md "pvdd's connection").

A lab of two namespaces made for this module: the client (pvdd, the API's users) and a DNS
server that answers ``slow*`` names only after :data:`SLOW` seconds and every other name at
once, logging each query.  What is shown:

* a cached answer is given while every worker of pvdd's pool waits for a slow upstream (no
  hand-off to the pool: it would wait for a free worker), and it never reaches the server;
* on one connection, a cached answer sent behind a pending lookup comes after it (replies in
  order), while another connection's cached answer is not held up;
* the API makes one connection for many calls (pvdd sees one connection, the caller one
  socket), also as an unprivileged user; survives a pvdd restart; a forked child (os.fork,
  and a fork from C that skips Python's at-fork handlers) connects on its own and leaves the
  parent's connection alone; threads get their own answers.
"""
from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
from typing import Any, Iterator

import pytest

from fixtures.netns import Namespaces, in_ns, sh, wait_for
from fixtures.prereq import require
from fixtures.pvdd import Pvdd, pvd_config
from fixtures.unprivileged import User, unprivileged_user, user_for, who  # noqa: F401
from pvdrun.daemon.resolving import MAX_WORKERS

pytestmark = pytest.mark.root

#: Seconds the lab's DNS server waits before answering a ``slow*`` name (pvdd's resolver
#: waits 5 s per try).
SLOW = 3.0
SERVER = "10.66.0.1"
CLIENT = "10.66.0.2"
PVD = "upstream"
CACHED = "fast.test"

DNS_SERVER = r"""
import socket, sys, threading
import dns.message, dns.rrset
address, delay, log = sys.argv[1], float(sys.argv[2]), sys.argv[3]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((address, 53))
print("ready", flush=True)
lock = threading.Lock()

def value(name):
    # t<N>.test -> 10.66.1.N (each thread of a test gets its own answer), else 10.66.0.80
    label = name.split(".")[0]
    return f"10.66.1.{int(label[1:]) % 250}" if label[:1] == "t" and label[1:].isdigit() else "10.66.0.80"

def answer(query, peer):
    reply = dns.message.make_response(query)
    question = query.question[0]
    if question.rdtype == 1:
        reply.answer.append(dns.rrset.from_text(question.name, 300, "IN", "A",
                                                value(question.name.to_text())))
    with lock:
        sock.sendto(reply.to_wire(), peer)

while True:
    data, peer = sock.recvfrom(4096)
    query = dns.message.from_wire(data)
    name = query.question[0].name.to_text(omit_final_dot=True)
    with open(log, "a") as handle:
        handle.write(name + "\n")
    if name.startswith("slow"):
        threading.Timer(delay, answer, (query, peer)).start()
    else:
        answer(query, peer)
"""


class Lab:
    """The module's namespaces, DNS server and pvdd."""

    def __init__(self, spaces: Namespaces, client: str, query_log: str, daemon: Pvdd) -> None:
        self.spaces = spaces
        self.client = client
        self.query_log = query_log
        self.daemon = daemon
        self.names = iter(range(1_000_000))

    def fresh(self, prefix: str) -> str:
        """A name never asked before in this module."""
        return f"{prefix}{next(self.names)}.test"

    def asked(self, name: str) -> int:
        """How many queries for ``name`` reached the DNS server."""
        with open(self.query_log, encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip() == name)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require(os.geteuid() == 0, "root (the test builds network namespaces)")
    tag = f"{os.getpid() % 100000}"
    spaces = Namespaces()
    daemon: Pvdd | None = None
    try:
        client, server = spaces.add(f"rcf{tag}c"), spaces.add(f"rcf{tag}s")
        spaces.veth(client, "c0", server, "s0", [f"{CLIENT}/24"], [f"{SERVER}/24"])
        workdir = spaces.mkdtemp("rcf")
        query_log = os.path.join(workdir, "queries.log")
        open(query_log, "w").close()  # noqa: SIM115
        proc = spaces.popen(server, [sys.executable, "-c", DNS_SERVER, SERVER, str(SLOW), query_log],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.stderr
        daemon = Pvdd(client, pvd_config({PVD: {"interface": "c0", "dns": [SERVER]}}))
        daemon.start()
        wait_for(lambda: any(PVD in p["names"] and p["addresses"] for p in daemon.list_pvds()),
                 what=f"pvdd listing {PVD} with its address")
        yield Lab(spaces, client, query_log, daemon)
    finally:
        if daemon is not None:
            daemon.close(remove_state=True)
        spaces.close()


def connect(lab: Lab) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(lab.daemon.socket)
    return sock


def resolve_line(host: str) -> bytes:
    return json.dumps({"v": 1, "op": "resolve", "name": PVD, "host": host}).encode() + b"\n"


def read_reply(sock: socket.socket) -> dict[str, Any]:
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(65536)
        assert chunk, "pvdd closed the connection"
        line += chunk
    assert line.count(b"\n") == 1, line
    return json.loads(line)


def read_replies(sock: socket.socket, count: int) -> list[dict[str, Any]]:
    reader = sock.makefile("rb")
    return [json.loads(reader.readline()) for _ in range(count)]


def waiting(sock: socket.socket) -> bool:
    """Whether nothing has arrived on ``sock`` yet."""
    return not select.select([sock], [], [], 0)[0]


def cache(lab: Lab, host: str) -> None:
    """Have pvdd cache ``host`` (asked upstream unless it already was, then from the cache)."""
    with connect(lab) as sock:
        sock.sendall(resolve_line(host) * 2)
        first, second = read_replies(sock, 2)
    assert first["ok"] and first["answer"]["server"] in (SERVER, None), first
    assert second["ok"] and second["answer"]["server"] is None, second


def test_cached_answer_while_every_worker_waits_for_a_slow_upstream(lab: Lab) -> None:
    """More slow lookups than pvdd has workers are pending (each worker blocked on the
    upstream): a cached answer on another connection comes at once, before any of them."""
    cache(lab, CACHED)
    slow = [lab.fresh("slow") for _ in range(MAX_WORKERS + 1)]
    pending = [connect(lab) for _ in slow]
    try:
        for sock, name in zip(pending, slow):
            sock.sendall(resolve_line(name))
        wait_for(lambda: sum(lab.asked(n) for n in slow) >= MAX_WORKERS, timeout=SLOW,
                 interval=0.02, what="every worker asking the slow upstream")
        with connect(lab) as sock:
            sock.sendall(resolve_line(CACHED))
            hit = read_reply(sock)
        assert all(waiting(s) for s in pending), "a slow lookup was answered first"
        assert hit["ok"] and hit["answer"]["server"] is None and hit["answer"]["records"] == ["10.66.0.80"], hit
        for sock, name in zip(pending, slow):
            reply = read_reply(sock)
            assert reply["ok"] and reply["answer"]["qname"] == name, reply
    finally:
        for sock in pending:
            sock.close()
    assert lab.asked(CACHED) == 1  # every later answer came from pvdd's cache


def test_replies_stay_in_order_behind_a_pending_lookup(lab: Lab) -> None:
    """One connection: a slow lookup, then a cached name, then another request: the cached
    answer waits for the lookup ahead of it; another connection's cached answer does not."""
    cache(lab, CACHED)
    name = lab.fresh("slow")
    with connect(lab) as queued:
        queued.sendall(resolve_line(name) + resolve_line(CACHED) + b'{"v":1,"op":"default"}\n')
        wait_for(lambda: lab.asked(name) >= 1, timeout=SLOW, interval=0.02, what="the slow lookup asked")
        with connect(lab) as other:
            other.sendall(resolve_line(CACHED))
            hit = read_reply(other)
        assert waiting(queued), "the connection's cached answer overtook its pending lookup"
        assert hit["ok"] and hit["answer"]["server"] is None, hit
        first, second, third = read_replies(queued, 3)
    assert first["ok"] and first["answer"]["qname"] == name and first["answer"]["server"] == SERVER, first
    assert second["ok"] and second["answer"]["qname"] == CACHED and second["answer"]["server"] is None, second
    assert third["ok"] and third["op"] == "default", third


def test_cached_failure_and_errors_on_the_fast_path(lab: Lab) -> None:
    """What the cache holds is answered whole: an unknown PvD and a bad request are errors
    as before, and an unknown record type too (bad_request, pvdd goes on)."""
    with connect(lab) as sock:
        sock.sendall(b'{"v":1,"op":"resolve","name":"nosuch","host":"fast.test"}\n'
                     b'{"v":1,"op":"resolve","name":"upstream","host":"fast.test","type":"NOTATYPE"}\n'
                     + resolve_line(CACHED))
        unknown, bad_type, hit = read_replies(sock, 3)
    assert unknown["error"]["code"] == "unknown_pvd", unknown
    assert bad_type["error"]["code"] == "bad_request", bad_type
    assert hit["ok"], hit


# -- the Python API ------------------------------------------------------------------

SOCKETS = r"""
import os
def sockets():
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(int(target[len("socket:["):-1]))
    return sorted(found)
"""

API_REUSE = SOCKETS + r"""
import json, sys
from pvdrun import api
path, pvd, host, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
seen, servers = [], []
for _ in range(count):
    servers.append(api.resolve(pvd, host, socket_path=path).server)
    seen.append(sockets())
    api.list_pvds(path)
    api.lookup(pvd, path)
    api.default_pvd(path)
    seen.append(sockets())
print(json.dumps({"sockets": seen, "servers": servers}), flush=True)
sys.stdin.readline()  # the test looks at pvdd's connections meanwhile
"""


def pvdd_connections(lab: Lab) -> list[tuple[int, int]]:
    """(pvdd's inode, the peer's inode) of every connection pvdd has accepted."""
    found = []
    for line in sh("ss", "-xpH", "state", "established", ns=lab.client).stdout.splitlines():
        fields = line.split()
        if f"pid={lab.daemon.pid}," in line and lab.daemon.socket in fields:
            at = fields.index(lab.daemon.socket)
            found.append((int(fields[at + 1]), int(fields[at + 3])))
    return found


def run_api(lab: Lab, script: str, args: list[str], user: User | None = None) -> subprocess.Popen:
    argv = [sys.executable, "-c", script, *args] if user is None else user.python(["-c", script, *args])
    return subprocess.Popen(in_ns(lab.client, argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def report(proc: subprocess.Popen) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        raise AssertionError(f"the API script failed: {proc.stderr.read() if proc.stderr else ''}")
    return json.loads(line)


def finish(proc: subprocess.Popen, line: str = "\n") -> str:
    out, err = proc.communicate(line, timeout=60)
    assert proc.returncode == 0, err
    return out


def test_api_makes_one_connection_for_many_calls(lab: Lab, who: str, request: pytest.FixtureRequest) -> None:
    """Twenty resolve calls and sixty list/get/default calls: the caller holds one socket the
    whole time, and pvdd has one connection, to that socket (root and a real user alike)."""
    cache(lab, CACHED)
    proc = run_api(lab, API_REUSE, [lab.daemon.socket, PVD, CACHED, "20"], user_for(who, request))
    try:
        seen = report(proc)
        assert all(server is None for server in seen["servers"]), seen["servers"]  # pvdd's cache
        assert all(len(s) == 1 for s in seen["sockets"]) and len({s[0] for s in seen["sockets"]}) == 1, seen
        connections = pvdd_connections(lab)
        assert [peer for _, peer in connections] == seen["sockets"][0], (connections, seen["sockets"][0])
    finally:
        finish(proc)


API_RESTART = r"""
import json, sys
from pvdrun import api
path, pvd, host = sys.argv[1:4]
first = api.resolve(pvd, host, socket_path=path)
print(json.dumps({"server": first.server}), flush=True)
sys.stdin.readline()  # pvdd is restarted meanwhile
servers = [api.resolve(pvd, host, socket_path=path).server for _ in range(3)]
print(json.dumps({"servers": servers, "pvds": [p.name for p in api.list_pvds(path)]}), flush=True)
"""


def test_api_survives_a_pvdd_restart(lab: Lab) -> None:
    """A long-running API user whose pvdd is stopped and started again: its next call is
    answered by the new pvdd (asked upstream once, then from the new pvdd's cache), without
    an error."""
    name = lab.fresh("restart")
    proc = run_api(lab, API_RESTART, [lab.daemon.socket, PVD, name])
    try:
        assert report(proc)["server"] == SERVER
        lab.daemon.stop()
        lab.daemon.start()
        wait_for(lambda: any(PVD in p["names"] and p["addresses"] for p in lab.daemon.list_pvds()),
                 what=f"the new pvdd listing {PVD}")
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        after = report(proc)
    finally:
        finish(proc)
    assert after["servers"] == [SERVER, None, None], after  # the new pvdd's empty cache, then its cache
    assert PVD in after["pvds"], after


API_FORK = SOCKETS + r"""
import ctypes, json, os, sys
from pvdrun import api
path, pvd, host = sys.argv[1:4]

def child_side(write):
    inherited = sockets()
    server = api.resolve(pvd, host, socket_path=path).server
    os.write(write, json.dumps({"inherited": inherited, "after": sockets(), "server": server}).encode())
    os._exit(0)

def forked(fork):
    read, write = os.pipe()
    pid = fork()
    if pid == 0:
        child_side(write)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    data = os.read(read, 65536)
    os.close(read)
    return {"status": status, **json.loads(data)}

api.resolve(pvd, host, socket_path=path)
before = sockets()
children = {"os.fork": forked(os.fork), "libc fork": forked(ctypes.CDLL(None).fork)}
server = api.resolve(pvd, host, socket_path=path).server
print(json.dumps({"before": before, "after": sockets(), "server": server, "children": children}))
"""


def test_api_after_fork_connects_on_its_own(lab: Lab) -> None:
    """A child after fork never uses the parent's connection: after os.fork it has closed its
    copy at once (the at-fork handler); after a fork from C, which runs no Python handler, on
    its first call (os.getpid() changed).  Either way it connects itself, and the parent goes
    on with its own connection, undisturbed."""
    cache(lab, CACHED)
    proc = run_api(lab, API_FORK, [lab.daemon.socket, PVD, CACHED])
    seen = json.loads(finish(proc))
    (parent,) = seen["before"]
    assert seen["after"] == [parent] and seen["server"] is None, seen
    fork, libc = seen["children"]["os.fork"], seen["children"]["libc fork"]
    assert fork["status"] == 0 and libc["status"] == 0, seen
    assert fork["inherited"] == [], fork          # closed by the at-fork handler
    assert libc["inherited"] == [parent], libc    # still there: no Python handler ran
    for child in (fork, libc):
        assert len(child["after"]) == 1 and parent not in child["after"], child
        assert child["server"] is None, child     # answered by pvdd, over its own connection


API_THREADS = r"""
import json, sys, threading
from pvdrun import api
path, pvd = sys.argv[1:3]
wrong, errors, count = [], [], [0]

def work(index):
    host = f"t{index}.test"
    try:
        for _ in range(40):
            records = api.resolve(pvd, host, socket_path=path).records
            count[0] += 1
            if records != [f"10.66.1.{index}"]:
                wrong.append((host, records))
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=work, args=(i,)) for i in range(1, 9)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"count": count[0], "wrong": wrong, "errors": errors,
                  "kept": len(api._kept.idle.get(path, [])), "limit": api.KEEP_IDLE}))
"""


def test_api_threads_each_get_their_own_answers(lab: Lab) -> None:
    """Eight threads resolving their own names at once: every answer is the thread's own (a
    connection is lent to one thread at a time), and at most KEEP_IDLE connections are kept."""
    proc = run_api(lab, API_THREADS, [lab.daemon.socket, PVD])
    seen = json.loads(finish(proc))
    assert seen["errors"] == [] and seen["wrong"] == [] and seen["count"] == 8 * 40, seen
    assert 1 <= seen["kept"] <= seen["limit"], seen


def test_api_resolve_errors(lab: Lab) -> None:
    """pvdd's errors reach the API caller as exceptions: an unknown PvD (PvdLookupError), a
    name that is not one (ResolveError, kind bad-name), an unknown record type (ValueError)."""
    script = r"""
import json, sys
from pvdrun import api
from pvdrun.resolve.errors import ResolveError
path, pvd = sys.argv[1:3]
seen = {}
for label, call in (("unknown", lambda: api.resolve("nosuch", "fast.test", socket_path=path)),
                    ("badname", lambda: api.resolve(pvd, "bad..name", socket_path=path)),
                    ("badtype", lambda: api.resolve(pvd, "fast.test", "NOTATYPE", socket_path=path))):
    try:
        call()
        seen[label] = "no error"
    except ResolveError as exc:
        seen[label] = ["ResolveError", exc.kind]
    except Exception as exc:
        seen[label] = [type(exc).__name__]
print(json.dumps(seen))
"""
    proc = run_api(lab, script, [lab.daemon.socket, PVD])
    seen = json.loads(finish(proc))
    assert seen == {"unknown": ["PvdLookupError"], "badname": ["ResolveError", "bad-name"],
                    "badtype": ["ValueError"]}, seen
