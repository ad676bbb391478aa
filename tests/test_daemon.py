"""pvdd: the socket protocol, subscriptions, robustness against bad clients and bad RAs."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from fixtures.mininet import MiniNet, net  # noqa: F401 (fixture)
from fixtures.pvdd import Pvdd, start_pvdd  # noqa: F401 (fixture)
from pvdrun.daemon.protocol import Client, DaemonError, DaemonUnavailable
from pvdrun.discovery import ra as craft

pytestmark = pytest.mark.root


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging) when the block blocks longer than ``seconds``."""
    def expired(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"blocked for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _subscriber(path: str) -> Any:
    client = Client(path)
    stream = client.subscribe()
    first = next(stream)
    client.sock.settimeout(30)  # a missing event fails the test instead of hanging it
    assert first["ok"] and first["event"] == "snapshot"
    return stream, first


def _next_event(stream: Any, predicate: Any, limit: int = 30) -> dict[str, Any]:
    for _ in range(limit):
        event = next(stream)
        if predicate(event):
            return event
    raise AssertionError("expected event never came")


def test_list_get_default_and_errors(net: MiniNet, start_pvdd: Callable[..., Pvdd]) -> None:
    net.add_router("ispa", "ra", "2001:db8:a::/64", ("192.0.2.10/24", "192.0.2.1/24"),
                   rdnss="2001:db8:a::53", dnssl="ispa.example")
    daemon = start_pvdd(net.host, log_level="debug")
    listing = net.wait_for(lambda: (r := daemon.op("list"))["pvds"] and
                           r["pvds"][0]["dns_servers"] and r, what="PvD with RA DNS")
    [pvd] = listing["pvds"]
    assert listing["v"] == 1 and listing["ok"] is True
    assert pvd["pvd_id"] == "implicit:ispa" and pvd["search_domains"] == ["ispa.example"]
    assert daemon.op("get", "ispa")["pvd"]["handle"] == pvd["handle"]
    with pytest.raises(DaemonError) as info:
        daemon.op("get", "nope")
    assert info.value.code == "unknown_pvd" and info.value.candidates == ["ispa (implicit:ispa)"]
    with pytest.raises(DaemonError) as info:
        daemon.op("frobnicate")
    assert info.value.code == "unknown_op"
    # the raw reply holds the compact "scope":"..." the shim's C API extracts
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.connect(daemon.socket)
        raw.sendall(b'{"v":1,"op":"list"}\n')
        data = raw.makefile("rb").readline()
    assert b'"scope":"v=1 id=implicit:ispa ' in data


def test_garbage_client_is_dropped_others_unaffected(net: MiniNet, start_pvdd: Callable[..., Pvdd]) -> None:
    net.add_router("ispa", "ra", None, ("192.0.2.10/24", "192.0.2.1/24"))
    daemon = start_pvdd(net.host, log_level="debug")
    stream, _ = _subscriber(daemon.socket)
    for garbage in (b"\x00\xffnot json\n", b"[1,2]\n", b'{"v":99,"op":"list"}\n', b"x" * 70000):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bad:
            bad.settimeout(10)
            bad.connect(daemon.socket)
            bad.sendall(garbage)
            reply = bad.makefile("rb").readline()
            assert json.loads(reply)["ok"] is False
            assert bad.recv(10) == b""  # disconnected
    net.run("ip", "addr", "add", "198.18.1.1/24", "dev", "ispa", check=True)
    event = _next_event(stream, lambda e: e.get("event") == "changed")
    assert "198.18.1.1/24" in event["changed"]["addresses"]["new"]
    assert daemon.op("list")["ok"]


def test_malformed_pvd_ras_never_crash_pvdd(net: MiniNet, start_pvdd: Callable[..., Pvdd]) -> None:
    """Truncated/malformed PvD options are logged and ignored; a good one still lands."""
    router = net.add_router("lan0", "ra", "2001:db8:a::/64")
    daemon = start_pvdd(net.host, log_level="debug")
    daemon.wait_listed("implicit:lan0")
    stream, _ = _subscriber(daemon.socket)
    good = craft.pvd_option("ispa.example", craft.pio("2001:db8:a::/64")
                            + craft.rdnss(["2001:db8:a:1::53"]), sequence=3)
    truncated = bytearray(good)
    truncated[1] += 3
    bad_name = bytearray(good)
    bad_name[6] = 0xC0
    for option in (bytes(truncated), bytes(bad_name), good[:9], b"\x15\x01" + bytes(6)):
        net.send_ra(router, craft.router_advert(option, router_lifetime=0))
    net.send_ra(router, b"\x86\x00" + bytes(6))  # shorter than an RA header
    net.send_ra(router, craft.router_advert(good, router_lifetime=0))
    added = _next_event(stream, lambda e: e.get("event") == "added" and e["pvd_id"] == "ispa.example")
    assert added["pvd"]["dns_servers"] == ["2001:db8:a:1::53"]
    assert daemon.proc.poll() is None
    log = daemon.log_text()
    assert "runs past the end" in log and "ignored" in log


def test_explicit_pvd_expiry_and_new_generation(net: MiniNet, start_pvdd: Callable[..., Pvdd]) -> None:
    """An explicit PvD whose lifetimes run out is removed (no polling: pvdd wakes at the
    expiry); heard again, it comes back with a new handle (R5)."""
    router = net.add_router("lan0", "ra", "2001:db8:a::/64")
    daemon = start_pvdd(net.host, log_level="debug")
    daemon.wait_listed("implicit:lan0")
    stream, _ = _subscriber(daemon.socket)
    message = craft.router_advert(craft.pvd_option("ispb.example",
                                                   craft.rdnss(["2001:db8:b::53"], lifetime=3)),
                                  router_lifetime=0)
    net.send_ra(router, message)
    first = _next_event(stream, lambda e: e.get("event") == "added" and e["pvd_id"] == "ispb.example")
    removed = _next_event(stream, lambda e: e.get("event") == "removed")
    assert removed["pvd_id"] == "ispb.example"  # the only PvD that can go away here
    net.send_ra(router, message)
    again = _next_event(stream, lambda e: e.get("event") == "added" and e["pvd_id"] == "ispb.example")
    assert again["pvd"]["handle"] != first["pvd"]["handle"]
    assert again["pvd"]["attributes"]["generation"] == 1


def test_python_api_and_cli_through_pvdd(net: MiniNet, start_pvdd: Callable[..., Pvdd]) -> None:
    """pvdrun.list_pvds/lookup/default_pvd ask pvdd (the test process is in another netns,
    so answers about the host netns can only come from pvdd)."""
    net.add_router("ispa", "ra", None, ("192.0.2.10/24", "192.0.2.1/24"))
    net.run("ip", "route", "add", "default", "via", "192.0.2.1", check=True)
    daemon = start_pvdd(net.host, log_level="debug")
    import pvdrun

    pvds = net.wait_for(lambda: pvdrun.list_pvds(daemon.socket), what="PvDs from pvdd")
    assert [p.pvd_id for p in pvds] == ["implicit:ispa"]
    assert pvdrun.lookup("ispa", daemon.socket).handle == pvds[0].handle
    default = pvdrun.default_pvd(daemon.socket)
    assert default is not None and default.pvd_id == "implicit:ispa"
    with pytest.raises(pvdrun.PvdLookupError) as info:
        pvdrun.lookup("ispz", daemon.socket)
    assert info.value.name == "ispz" and not info.value.ambiguous
    assert info.value.candidates == ["ispa (implicit:ispa)"]
    result = subprocess.run([sys.executable, "-m", "pvdrun.cli", "list", "--json", "--socket",
                             daemon.socket], capture_output=True, text=True, timeout=30)
    assert json.loads(result.stdout)["default"] == "implicit:ispa"
    with deadline(60):  # pvdrun.watch has no timeout of its own
        watch = pvdrun.watch(daemon.socket)
        assert next(watch)["event"] == "snapshot"
        net.run("ip", "route", "del", "default", check=True)
        event = next(e for e in watch if e["event"] == "default")
        assert event == {**event, "old": "implicit:ispa", "new": None}
        watch.close()


def test_second_daemon_refuses_live_socket(net: MiniNet, start_pvdd: Callable[..., Pvdd]) -> None:
    daemon = start_pvdd(net.host, log_level="debug")
    result = net.run(sys.executable, "-m", "pvdrun.cli", "daemon", "--socket", daemon.socket,
                     timeout=30)
    assert result.returncode == 1 and "already answers" in result.stderr
    assert daemon.op("list")["ok"]


def test_api_falls_back_when_socket_is_not_pvdd(net: MiniNet, tmp_path: Path) -> None:
    """A socket that answers garbage is not pvdd: the API discovers in-process instead."""
    import threading

    net.add_router("ispa", "ra", None, ("192.0.2.10/24", "192.0.2.1/24"))
    path = str(tmp_path / "fake.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)

    def answer_garbage() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.0 400 nope\n")

    threading.Thread(target=answer_garbage, daemon=True).start()
    try:
        code = ("import pvdrun, sys; print([p.pvd_id for p in pvdrun.list_pvds(sys.argv[1])]);"
                "print(pvdrun.lookup('ispa', sys.argv[1]).pvd_id)")
        result = net.run(sys.executable, "-c", code, path, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split("\n")[:2] == ["['implicit:ispa']", "implicit:ispa"]
    finally:
        server.close()


def test_sighup_reloads_configuration(net: MiniNet, start_pvdd: Callable[..., Pvdd]) -> None:
    """A configured name appears after SIGHUP; a broken file is refused, the old one kept."""
    net.add_router("ispa", "ra", None, ("192.0.2.10/24", "192.0.2.1/24"))
    daemon = start_pvdd(net.host)
    stream, _ = _subscriber(daemon.socket)
    daemon.write_config('[pvd.home]\ninterface = "ispa"\n[pvd.home.attributes]\nmetered = true\n')
    daemon.signal(signal.SIGHUP)
    event = _next_event(stream, lambda e: e.get("event") == "changed")
    assert event["changed"]["names"]["new"][0] == "home"
    assert event["pvd"]["attributes"]["metered"] is True
    daemon.write_config("[pvd.home\n")
    daemon.signal(signal.SIGHUP)
    net.wait_for(lambda: "not reloaded" in daemon.log_text(), what="reload refusal")
    with Client(daemon.socket) as client:
        assert client.request("get", "home")["pvd"]["pvd_id"] == "implicit:ispa"
    assert daemon.stop() == 0  # SIGTERM: stops at once, removing its socket
    assert not os.path.exists(daemon.socket)


FUZZ_SENDER = r"""
import random, socket, sys, time
seed_hex, count = sys.argv[1], int(sys.argv[2])
seed = bytes.fromhex(seed_hex)
rng = random.Random(8801)
ll = next(":".join(l.split()[0][i:i + 4] for i in range(0, 32, 4))
          for l in open("/proc/net/if_inet6") if l.split()[5] == "r0" and l.split()[3] == "20")
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.bind((ll, 0, 0, socket.if_nametoindex("r0")))
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
for _ in range(count):
    message = bytearray(seed)
    for _ in range(rng.randint(1, 6)):
        message[rng.randrange(2, len(message))] = rng.randrange(256)  # keep type 134
    message = message[:rng.randint(8, len(message))]
    s.sendto(bytes(message), ("ff02::1", 0, 0, socket.if_nametoindex("r0")))
    time.sleep(0.002)
"""


def test_fuzzed_ras_never_crash_pvdd(net: MiniNet, start_pvdd: Callable[..., Pvdd]) -> None:
    """500 randomly mutated and truncated PvD RAs: pvdd receives them (its log names the ones
    too short to parse, as many as the replayed mutations say there are, at most: a full
    socket buffer may drop some), keeps serving, and still takes in a good RA sent after them
    (its PvD appears: it was read after every fuzzed one, from the same socket)."""
    import random

    from pvdrun.discovery.ra import RA_HEADER_LEN

    router = net.add_router("lan0", "ra", "2001:db8:a::/64")
    daemon = start_pvdd(net.host, log_level="debug")
    daemon.wait_listed("implicit:lan0")
    nested = (craft.pio("2001:db8:f::/64", valid=30, preferred=30)
              + craft.rio("2001:db8:f:1::/64", 30) + craft.rdnss(["2001:db8:f::53"], 30)
              + craft.dnssl(["fuzz.example"], 30))
    seed = craft.router_advert(craft.pvd_option("fuzz.example", nested, sequence=1,
                                                header=craft.ra_header(0)), router_lifetime=0)
    rng = random.Random(8801)  # the sender's mutations, replayed: how many are too short to parse
    short = 0
    for _ in range(500):
        message = bytearray(seed)
        for _ in range(rng.randint(1, 6)):
            message[rng.randrange(2, len(message))] = rng.randrange(256)
        short += len(message[:rng.randint(8, len(message))]) < RA_HEADER_LEN
    assert short > 0
    before = daemon.log_text().count("is shorter than its header")
    from fixtures.mininet import sh
    sh(sys.executable, "-c", FUZZ_SENDER, seed.hex(), "500", ns=router, timeout=60)
    assert daemon.proc.poll() is None, daemon.log_text()[-2000:]
    stream, _ = _subscriber(daemon.socket)
    after = craft.router_advert(craft.pvd_option("after.example", craft.rdnss(["2001:db8:a::53"]), sequence=1),
                                router_lifetime=0)
    net.send_ra(router, after)
    added = _next_event(stream, lambda e: e.get("event") == "added" and e["pvd_id"] == "after.example", limit=500)
    assert added["pvd"]["dns_servers"] == ["2001:db8:a::53"], added
    assert daemon.op("list")["ok"]
    log = daemon.log_text()
    received = log.count("is shorter than its header") - before
    assert 0 < received <= short, (received, short, log[-2000:])
    assert "Traceback" not in log


def test_resolve_op_answers_in_order(net: MiniNet, start_pvdd: Callable[..., Pvdd]) -> None:
    """op "resolve": a lookup with the PvD's own DNS server (RDNSS), answered by a worker;
    a request sent behind it on the same connection is answered after it."""
    router = net.add_router("ispa", "ra", "2001:db8:a::/64", rdnss="2001:db8:a::1",
                            dnssl="ispa.example")
    net.add_dns(router, "2001:db8:a::1", {"svc.ispa.example": "2001:db8:a::80"})
    daemon = start_pvdd(net.host, log_level="debug")
    net.wait_for(lambda: any(p["dns_servers"] == ["2001:db8:a::1"] and p["addresses"]
                             for p in daemon.op("list")["pvds"]), what="PvD with DNS")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(30)
        raw.connect(daemon.socket)
        raw.sendall(b'{"v":1,"op":"resolve","name":"ispa","host":"svc","type":"AAAA"}\n'
                    b'{"v":1,"op":"default"}\n'
                    b'{"v":1,"op":"resolve","name":"ispa","host":"nope.ispa.example"}\n'
                    b'{"v":1,"op":"resolve","name":"ispz","host":"svc"}\n')
        reader = raw.makefile("rb")
        replies = [json.loads(reader.readline()) for _ in range(4)]
    first, second, third, fourth = replies
    assert first["ok"] and first["op"] == "resolve" and first["pvd"] == "implicit:ispa"
    assert first["answer"]["records"] == ["2001:db8:a::80"]
    assert first["answer"]["canonical_name"] == "svc.ispa.example"  # search domain from DNSSL
    assert second["op"] == "default"
    assert third["ok"] is False and third["error"]["code"] == "resolve_failed"
    assert third["error"]["kind"] == "nxdomain"
    assert fourth["error"]["code"] == "unknown_pvd"


def _resolve_once(path: str, request: bytes) -> dict[str, Any]:
    """One resolve request on its own connection (as bench and the shim's clients do)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(30)
        raw.connect(path)
        raw.sendall(request)
        return json.loads(raw.makefile("rb").readline())


def test_repeated_resolve_is_answered_from_cache(net: MiniNet, tmp_path: Path, start_pvdd: Callable[..., Pvdd]) -> None:
    """R25 with pvdd's cache: a repeated resolve, answered by dnsmasq with TTL 300, comes from
    pvdd's cache: the reply says so ("server": null, the TTL left) and the DNS server's query
    log shows the name asked only once."""
    router = net.add_router("ispc", "ra", "2001:db8:c::/64", rdnss="2001:db8:c::1",
                            dnssl="ispc.example")
    query_log = tmp_path / "dnsmasq-queries.log"
    net.add_dns(router, "2001:db8:c::1", {"www.ispc.example": "2001:db8:c::80"},
                query_log=str(query_log), local_ttl=300)
    daemon = start_pvdd(net.host, log_level="debug")
    net.wait_for(lambda: any(p["dns_servers"] == ["2001:db8:c::1"] and p["addresses"]
                             for p in daemon.op("list")["pvds"]), what="PvD with DNS")
    request = b'{"v":1,"op":"resolve","name":"ispc","host":"www.ispc.example","type":"AAAA"}\n'
    first = _resolve_once(daemon.socket, request)
    second = _resolve_once(daemon.socket, request)
    assert first["ok"] and first["answer"]["server"] == "2001:db8:c::1", first
    assert first["answer"]["ttl"] == 300
    assert second["ok"] and second["answer"]["server"] is None, second  # from pvdd's cache
    assert second["answer"]["records"] == ["2001:db8:c::80"]
    assert 0 < second["answer"]["ttl"] <= first["answer"]["ttl"]
    asked = [line for line in query_log.read_text().splitlines()
             if "query[AAAA] www.ispc.example" in line]
    assert len(asked) == 1, query_log.read_text()


def _blocked_in_connect(tid: int) -> bool:
    """Whether thread ``tid`` of this process sleeps in connect() waiting for backlog room."""
    with open(f"/proc/self/task/{tid}/wchan", encoding="ascii") as handle:
        return handle.read().strip() == "unix_wait_for_peer"


def test_client_waits_for_room_in_a_full_backlog(tmp_path: Path) -> None:
    """Under a burst of clients pvdd's backlog can be full for a moment: Client's connect()
    then waits for room (bounded by its timeout) instead of failing at once with EAGAIN, as
    a non-blocking connect() (a Python socket timeout) does on a Unix socket."""
    path = str(tmp_path / "busy.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(0)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as filler:
            filler.connect(path)  # takes the backlog's only slot
            with pytest.raises(DaemonUnavailable) as refused:  # bounded: never hangs
                Client(path, timeout=0.2)
            assert refused.value.errno == errno.EAGAIN
            outcome: dict[str, Any] = {}

            def connect() -> None:
                outcome["tid"] = threading.get_native_id()
                try:
                    outcome["client"] = Client(path, timeout=30)
                except OSError as exc:
                    outcome["error"] = exc

            waiter = threading.Thread(target=connect, daemon=True)
            waiter.start()
            tries = 200  # setup wait (10 s at most), not a speed assertion
            while tries and not ("error" in outcome or "client" in outcome
                                       or ("tid" in outcome and _blocked_in_connect(outcome["tid"]))):
                tries -= 1
                waiter.join(0.05)
            assert "error" not in outcome, f"connect failed at once: {outcome['error']}"
            assert "client" not in outcome  # it cannot have connected: no room yet
            accepted, _ = listener.accept()  # the filler's connection: room for one more
            accepted.close()
            waiter.join(30)
            assert "client" in outcome, outcome.get("error")
            with outcome["client"] as client, listener.accept()[0] as served:
                served.sendall(b'{"v":1,"ok":true,"op":"default","pvd":null}\n')
                assert client.request("default")["pvd"] is None


def test_pvdd_listen_backlog_holds_a_burst(net: MiniNet, start_pvdd: Callable[..., Pvdd]) -> None:
    """pvdd listens with the system's maximum backlog (not 64), so a burst of 1,000
    connections waits to be accepted; ss reports a listener's backlog as its Send-Q."""
    daemon = start_pvdd(net.host, log_level="debug")
    listing = net.run("ss", "-xlnH", check=True).stdout
    [line] = [row for row in listing.splitlines() if daemon.socket in row]
    backlog = int(line.split()[3])
    assert backlog >= 1000, line


def test_launch_with_pvdd_loads_no_resolver_or_config_parser(net: MiniNet, start_pvdd: Callable[..., Pvdd]) -> None:
    """`pvdrun --pvd X CMD` with pvdd answering (as root: with the private resolv.conf) asks
    pvdd and execs: it loads neither dnspython (the resolver, for pvdd's lookups) nor the
    configuration parser (for discovery without pvdd), which cost it ~40 ms per launch."""
    net.add_router("ispd", "rd", None, ("192.0.2.10/24", "192.0.2.1/24"))
    daemon = start_pvdd(net.host, log_level="debug")
    daemon.wait_listed("implicit:ispd")
    result = net.run(sys.executable, "-X", "importtime", "-m", "pvdrun.cli", "--pvd", "ispd",
                     "--socket", daemon.socket, "true")
    assert result.returncode == 0, result.stderr
    loaded = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
              if line.startswith("import time:") and "|" in line}
    # (importlib.import_module, which loads pvdrun.launch, bypasses -X importtime's report)
    assert "pvdrun.daemon.protocol" in loaded and "pvdrun.resolve.resolvconf" in loaded
    heavy = sorted(m for m in loaded if m == "dns" or m.startswith("dns.")
                   or m in ("tomllib", "pvdrun.config", "pvdrun.resolve.resolver"))
    assert not heavy, heavy
