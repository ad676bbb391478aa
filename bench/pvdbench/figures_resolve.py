"""Name lookups through pvdd's cache (op "resolve") against getaddrinfo, same dnsmasq.

The shim's getaddrinfo does not go through pvdd (docs/resolution.md: the
shim has no cache), so the cached path that exists is pvdd's `resolve`
request, which the Python API uses.  It is measured by the same C loop
(bench/calls.c, op pvdd_resolve: one request per connection, or every request
on one connection), against glibc's and the shim's getaddrinfo, uncached.

A second figure puts the lab's DNS server 20 ms away (netem on the server's
side of the link, or, on a kernel without netem, a relay there holding each
query 20 ms) and compares pvdd's cached answers with lookups of new names,
over one kept connection, and the Python API's resolve() in a loop.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
from collections.abc import Iterator

from pvdbench.context import BenchContext
from pvdbench.daemon import RunningDaemon, daemon_available
from pvdbench.figure import Figure, Goal, NotMeasured, Series, interleave, verdict
from pvdbench.lab import DNS_NAME, PREFIX_LEN, SERVER_ADDR
from pvdbench.proc import CommandFailed, in_netns, run, stop_process
from pvdbench.stats import paired_ratios

LOOKUPS_PER_RUN = 1000
WARMUP = 20
MIN_ROUNDS = 8
PVD_NAME = "benchdns"
#: How far away the slow figure's DNS server is (ms), and how many new names a run asks.
UPSTREAM_DELAY_MS = 20
UNCACHED_PER_RUN = 60
#: The relay's address on the server's side, when the kernel has no netem.
RELAY_ADDR = "10.77.0.53"
#: The goals of the slow-upstream figure: cached at least this many times faster than a new
#: name, and a cached answer's p50 at most this many µs (C client, one connection).
CACHED_SPEEDUP = 20.0
CACHED_P50_US = 50.0

#: A UDP relay that holds each DNS query UPSTREAM_DELAY_MS before passing it to dnsmasq, and
#: returns the answer: the slow upstream where tc has no netem.
RELAY = r"""
import asyncio, sys
listen, upstream, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
loop = asyncio.new_event_loop()

class Back(asyncio.DatagramProtocol):
    def __init__(self, front, peer):
        self.front, self.peer = front, peer
    def connection_made(self, transport):
        self.transport = transport
        loop.call_later(5, transport.close)
    def datagram_received(self, data, addr):
        self.front.sendto(data, self.peer)
        self.transport.close()

async def forward(front, data, peer):
    transport, _ = await loop.create_datagram_endpoint(lambda: Back(front, peer), remote_addr=(upstream, 53))
    transport.sendto(data)

class Front(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport
    def datagram_received(self, data, peer):
        loop.call_later(delay, lambda: loop.create_task(forward(self.transport, data, peer)))

loop.run_until_complete(loop.create_datagram_endpoint(Front, local_addr=(listen, 53)))
print("ready", flush=True)
loop.run_forever()
"""

#: The Python API's resolve() in a loop, each call timed; fails unless every answer came
#: from pvdd's cache.
API_LOOP = r"""
import json, sys, time
from pvdrun import api
path, pvd, host, count, warmup = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
for _ in range(warmup):
    api.resolve(pvd, host, socket_path=path)
clock, each = time.perf_counter_ns, []
for _ in range(count):
    start = clock()
    answer = api.resolve(pvd, host, socket_path=path)
    each.append(clock() - start)
    if answer.server is not None:
        sys.exit(f"an answer did not come from pvdd's cache: {answer}")
each.sort()
print(json.dumps({"p50_ns": each[len(each) // 2], "p90_ns": each[len(each) * 9 // 10],
                  "mean_ns_per_call": sum(each) / len(each)}))
"""


def resolve_config(ctx: BenchContext, server: str = SERVER_ADDR, tag: str = "resolve") -> str:
    """A pvd.toml naming the client veth's PvD and giving it the DNS server ``server``."""
    path = os.path.join(ctx.lab.workdir, f"pvd-{tag}.toml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f'[pvd.{PVD_NAME}]\ninterface = "{ctx.lab.client_if}"\n'
                     f'dns = ["{server}"]\n')
    return path


def pvdd_resolve_once(path: str, host: str = DNS_NAME) -> dict:
    """One resolve request to pvdd; its reply (NotMeasured unless ok)."""
    request = {"v": 1, "op": "resolve", "name": PVD_NAME, "host": host}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(path)
        client.sendall((json.dumps(request) + "\n").encode())
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = client.recv(65536)
            if not chunk:
                break
            reply += chunk
    answer = json.loads(reply or b"{}")
    if not answer.get("ok"):
        raise NotMeasured(f"pvdd does not answer op resolve here: {reply[:300]!r}")
    return answer


def cache_check(path: str) -> tuple[bool, str]:
    """Whether a repeated lookup really came from pvdd's cache (its reply's server is null)."""
    pvdd_resolve_once(path)
    again = pvdd_resolve_once(path)
    server = (again.get("answer") or {}).get("server", "missing")
    if server is None:
        return True, ("checked: a repeated lookup's reply has \"server\": null, i.e. came from "
                      "pvdd's cache")
    return False, (f"checked: a repeated lookup's reply names server {server!r}, i.e. it did NOT "
                   "come from pvdd's cache, although dnsmasq answers with TTL 300")


def loop_stats(ctx: BenchContext, argv_tail: list[str], env_vars: dict[str, str] | None,
               calls: int = LOOKUPS_PER_RUN, warmup: int = WARMUP) -> dict:
    """The JSON line of one C loop run (wall clock, pinned with dnsmasq and pvdd)."""
    argv = in_netns(ctx.lab.client_ns, ctx.lab.pin_prefix(), None)
    if env_vars:
        argv += ["env", *[f"{key}={value}" for key, value in env_vars.items()]]
    argv += [ctx.lab.calls_binary(), *argv_tail[:1], str(calls), "--warmup", str(warmup),
             "--clock", "wall", *argv_tail[1:]]
    return json.loads(run(argv, timeout=300).stdout)


def loop_run(ctx: BenchContext, argv_tail: list[str], env_vars: dict[str, str] | None) -> float:
    """ns per lookup of one C loop run: the median of its batches."""
    return float(loop_stats(ctx, argv_tail, env_vars)["ns_per_call"])


def loop_p50(ctx: BenchContext, argv_tail: list[str], calls: int = LOOKUPS_PER_RUN,
             warmup: int = WARMUP) -> float:
    """The median single lookup of one C loop run (pvdd_resolve times each call), ns."""
    stats = loop_stats(ctx, argv_tail, None, calls, warmup)
    if "p50_ns" not in stats:
        raise NotMeasured("bench/calls.c does not time single pvdd_resolve calls (no p50_ns)")
    return float(stats["p50_ns"])


def api_p50(ctx: BenchContext, path: str, host: str = DNS_NAME) -> float:
    """The median single call of pvdrun.api.resolve() in a loop (one process), ns."""
    argv = in_netns(ctx.lab.client_ns, [*ctx.lab.pin_prefix(), sys.executable, "-c", API_LOOP, path,
                                        PVD_NAME, host, str(LOOKUPS_PER_RUN), str(WARMUP)])
    return float(json.loads(run(argv, timeout=300).stdout)["p50_ns"])


def measure_resolve(ctx: BenchContext) -> list[Figure]:
    """pvdd's cache against getaddrinfo; pvdd's cache against a DNS server 20 ms away."""
    daemon_available(ctx)
    figures = []
    if ctx.wants("resolve.pvdd_cache"):
        figures.append(measure_pvdd_cache(ctx))
    if ctx.wants("resolve.pvdd_cache_slow_upstream"):
        figures.append(measure_slow_upstream(ctx))
    return figures


def measure_pvdd_cache(ctx: BenchContext) -> Figure:
    """glibc, shim, pvdd with one name (a connection per lookup, or one connection), pvdd
    with new names; interleaved."""
    fig = Figure(
        fig_id="resolve.pvdd_cache", unit="µs/lookup",
        title="Name lookup through pvdd's cache (op resolve) against getaddrinfo",
        what=(f"C loop (bench/calls.c), {LOOKUPS_PER_RUN} lookups per run after {WARMUP} warm-up "
              "lookups, wall clock, median of 10 batches; the loop, dnsmasq and pvdd pinned with "
              "taskset to one CPU; the same dnsmasq (over the veth) answers every variant; pvdd "
              "lookups are one request per new connection to its socket, except in the row that "
              "keeps one connection"),
        comparisons=[("pvdd same name", "glibc getaddrinfo"), ("pvdd same name", "shim getaddrinfo"),
                     ("pvdd new names", "glibc getaddrinfo"), ("shim getaddrinfo", "glibc getaddrinfo"),
                     ("pvdd same name, one connection", "glibc getaddrinfo"),
                     ("pvdd same name, one connection", "pvdd same name")])
    fig.notes.append("the shim's getaddrinfo does not go through pvdd (docs/resolution.md: the "
                     "shim has no cache), so getaddrinfo itself is never cached; the cached path "
                     "is pvdd's resolve request, which the Python API uses (pvdrun.api.resolve)")
    labels = {"glibc getaddrinfo": "getaddrinfo, nothing preloaded (glibc's resolver, no cache)",
              "shim getaddrinfo": "getaddrinfo with the shim preloaded (the shim's resolver, no cache)",
              "pvdd same name": f"pvdd op resolve of {DNS_NAME} every time (what pvdd's cache is for; whether it hit: see the notes)",
              "pvdd new names": f"pvdd op resolve of u<pid>-<i>.{DNS_NAME}, a new name every lookup (cache misses)",
              "pvdd same name, one connection": f"pvdd op resolve of {DNS_NAME}, every request on one connection "
                                                "(as the Python API keeps its connection)"}
    with RunningDaemon(ctx, ctx.lab.client_ns, "resolve", config=resolve_config(ctx),
                       pinned=True) as daemon:
        cache_hit, cache_text = cache_check(daemon.path)
        fig.notes.append(cache_text)
        pvdd_args = ["--socket", daemon.path, "--pvd", PVD_NAME, "--name", DNS_NAME]
        runners = {
            "glibc getaddrinfo": lambda: loop_run(ctx, ["getaddrinfo", "--name", DNS_NAME], None),
            "pvdd same name": lambda: loop_run(ctx, ["pvdd_resolve", *pvdd_args], None),
            "pvdd new names": lambda: loop_run(ctx, ["pvdd_resolve", *pvdd_args, "--unique", "1"], None),
            "pvdd same name, one connection": lambda: loop_run(
                ctx, ["pvdd_resolve", *pvdd_args, "--persistent", "1"], None),
        }
        try:
            ctx.require_scoping_shim()
            shim_env = ctx.shim_env()
            runners["shim getaddrinfo"] = lambda: loop_run(
                ctx, ["getaddrinfo", "--name", DNS_NAME], shim_env)
        except NotMeasured as exc:
            fig.notes.append(f"shim not measured: {exc}")
        try:
            results = interleave(max(ctx.rounds, MIN_ROUNDS), runners)
        except CommandFailed as exc:
            raise NotMeasured(f"a lookup failed: {exc}; pvdd log: {daemon.log_tail()}") from exc
    fig.series = [Series(name, labels[name], [v / 1000.0 for v in values])
                  for name, values in results.items()]
    fig.comparisons = [c for c in fig.comparisons if c[0] in results and c[1] in results]
    pairs = paired_ratios(fig.get("pvdd same name").values, fig.get("glibc getaddrinfo").values)
    met, detail = verdict(pairs, 1 / 3)
    ratio = statistics.median(pairs)
    how = f"{1 / ratio:.1f}× faster" if ratio <= 1 else f"{ratio:.1f}× slower"
    fig.goals.append(Goal(
        "lookups several (here: at least 3) times faster cached than glibc's uncached getaddrinfo",
        met, f"a repeated lookup through pvdd is {how} than glibc (pvdd same name/glibc = "
             f"{ratio:.3f}, {detail}); pvdd's cache {'was' if cache_hit else 'was NOT'} hit"))
    return fig


@contextlib.contextmanager
def slow_upstream(ctx: BenchContext) -> Iterator[tuple[str, str]]:
    """The lab's DNS server UPSTREAM_DELAY_MS away, on the server's side of the link, for the
    block; yields (the address to ask, how the delay is made).

    `tc qdisc add dev SERVER_IF root netem delay 20ms` in the server namespace, removed after;
    where the kernel has no netem, a relay on RELAY_ADDR (an address added to the server's
    veth, removed after) holding each query that long before dnsmasq sees it."""
    netns, dev = ctx.lab.server_ns, ctx.lab.server_if
    netem = ["tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", f"{UPSTREAM_DELAY_MS}ms"]
    added = run(in_netns(netns, netem), check=False)
    if added.returncode == 0:
        try:
            yield SERVER_ADDR, f"`{' '.join(netem)}` in the server namespace (removed after)"
        finally:
            run(in_netns(netns, ["tc", "qdisc", "del", "dev", dev, "root"]), check=False)
        return
    why = " ".join((added.stderr or added.stdout).split()) or f"exit {added.returncode}"
    relay: subprocess.Popen | None = None
    run(["ip", "-n", netns, "addr", "add", f"{RELAY_ADDR}/{PREFIX_LEN}", "dev", dev])
    try:
        relay = ctx.lab.start(in_netns(netns, [*ctx.lab.pin_prefix(), sys.executable, "-c", RELAY, RELAY_ADDR,
                                               SERVER_ADDR, str(UPSTREAM_DELAY_MS / 1000)]),
                              stdout=subprocess.PIPE, text=True)
        assert relay.stdout is not None
        if relay.stdout.readline().strip() != "ready":
            raise NotMeasured("the delaying DNS relay did not start")
        yield RELAY_ADDR, (f"`{' '.join(netem)}` fails here ({why}): instead a relay on the server's side "
                           f"({RELAY_ADDR}, an address added to its veth and removed after) holds each query "
                           f"{UPSTREAM_DELAY_MS} ms, then passes it to the same dnsmasq")
    finally:
        if relay is not None:
            stop_process(relay)
            if relay in ctx.lab.processes:
                ctx.lab.processes.remove(relay)
        run(["ip", "-n", netns, "addr", "del", f"{RELAY_ADDR}/{PREFIX_LEN}", "dev", dev], check=False)


def measure_slow_upstream(ctx: BenchContext) -> Figure:
    """pvdd's cached answers against new names with the DNS server 20 ms away, over one
    connection (C loop), plus a connection per lookup and the Python API for reference."""
    fig = Figure(
        fig_id="resolve.pvdd_cache_slow_upstream", unit="µs/lookup (p50)",
        title=f"pvdd's cache against a DNS server {UPSTREAM_DELAY_MS} ms away (op resolve)",
        what=(f"each value is the median single lookup of one run (each lookup timed on the monotonic "
              f"clock): C loop (bench/calls.c) with {LOOKUPS_PER_RUN} cached lookups after {WARMUP} "
              f"warm-up ones, or {UNCACHED_PER_RUN} lookups of names never asked before (u<pid>-<i>."
              f"{DNS_NAME}, each waiting for the DNS server); the Python API's pvdrun.api.resolve() "
              f"in a loop of {LOOKUPS_PER_RUN}; the loops, pvdd and dnsmasq pinned to one CPU"),
        comparisons=[("pvdd new names, one connection", "pvdd cached, one connection"),
                     ("pvdd cached, connection per lookup", "pvdd cached, one connection"),
                     ("Python API cached", "pvdd cached, one connection")])
    labels = {"pvdd cached, one connection": f"C client, op resolve of {DNS_NAME} answered from pvdd's "
                                             "cache, every request on one connection",
              "pvdd new names, one connection": "C client, op resolve of a new name each time (a cache "
                                                f"miss: pvdd asks the DNS server, {UPSTREAM_DELAY_MS} ms away)",
              "pvdd cached, connection per lookup": f"C client, op resolve of {DNS_NAME} from the cache, "
                                                    "one connection per lookup",
              "Python API cached": f"pvdrun.api.resolve(\"{PVD_NAME}\", \"{DNS_NAME}\") in a loop: its "
                                   "kept connection, the answer from pvdd's cache"}
    with slow_upstream(ctx) as (server, how):
        fig.notes.append(f"the DNS server {UPSTREAM_DELAY_MS} ms away: {how}")
        config = resolve_config(ctx, server, "resolve-slow")
        with RunningDaemon(ctx, ctx.lab.client_ns, "resolve-slow", config=config, pinned=True) as daemon:
            first = pvdd_resolve_once(daemon.path)["answer"]
            again = pvdd_resolve_once(daemon.path)["answer"]
            fig.notes.append(f"checked: the first lookup of {DNS_NAME} was answered by {first['server']}, "
                             f"the next one from pvdd's cache (\"server\": {json.dumps(again['server'])})")
            args = ["pvdd_resolve", "--socket", daemon.path, "--pvd", PVD_NAME, "--name", DNS_NAME]
            runners = {
                "pvdd cached, one connection": lambda: loop_p50(ctx, [*args, "--persistent", "1"]),
                "pvdd new names, one connection": lambda: loop_p50(
                    ctx, [*args, "--persistent", "1", "--unique", "1"], UNCACHED_PER_RUN, 2),
                "pvdd cached, connection per lookup": lambda: loop_p50(ctx, args),
                "Python API cached": lambda: api_p50(ctx, daemon.path),
            }
            try:
                results = interleave(max(ctx.rounds, MIN_ROUNDS), runners)
            except CommandFailed as exc:
                raise NotMeasured(f"a lookup failed: {exc}; pvdd log: {daemon.log_tail()}") from exc
    fig.series = [Series(name, labels[name], [v / 1000.0 for v in values]) for name, values in results.items()]
    cached = fig.get("pvdd cached, one connection").values
    uncached = fig.get("pvdd new names, one connection").values
    speedups = paired_ratios(uncached, cached)
    met, detail = verdict(speedups, CACHED_SPEEDUP, lower_is_better=False, digits=1)
    fig.goals.append(Goal(
        f"a cached answer at least {CACHED_SPEEDUP:.0f}× faster than a lookup of a new name with the DNS "
        f"server {UPSTREAM_DELAY_MS} ms away (C client, one connection, p50)",
        met, f"new name/cached = {statistics.median(speedups):.0f}× (p50 {statistics.median(uncached):,.0f} µs "
             f"against {statistics.median(cached):.1f} µs; {detail})"))
    met, detail = verdict(cached, CACHED_P50_US, digits=1)
    fig.goals.append(Goal(
        f"a cached answer's p50 at most {CACHED_P50_US:.0f} µs (pvdd, C client, one connection)",
        met, f"p50 {statistics.median(cached):.1f} µs ({detail}); the Python API's p50: "
             f"{statistics.median(fig.get('Python API cached').values):.1f} µs, reported, not judged"))
    return fig
