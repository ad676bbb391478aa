"""pvdd under load: 1,000 concurrent clients against the same requests made one at a time."""
from __future__ import annotations

import json
import socket
import struct
import threading
import time

from pvdbench.context import BenchContext
from pvdbench.daemon import RunningDaemon
from pvdbench.figure import Figure, Series
from pvdbench.stats import percentile

CONCURRENT_CLIENTS = 1000
SEQUENTIAL_REQUESTS = 200
REQUEST = b'{"v":1,"op":"list"}\n'


def one_request(path: str, timeout: float = 30.0, blocking: bool = True) -> float:
    """Seconds for connect + one `list` request + its whole reply line; raises on failure.

    A blocking client waits in connect() while pvdd's listen backlog is full
    (bounded by SO_SNDTIMEO/SO_RCVTIMEO); a client with a Python timeout has
    a non-blocking socket, whose connect() fails with EAGAIN instead.
    """
    start = time.perf_counter()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        if blocking:
            limit = struct.pack("ll", int(timeout), 0)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
        else:
            client.settimeout(timeout)
        client.connect(path)
        client.sendall(REQUEST)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = client.recv(65536)
            if not chunk:
                raise ConnectionError("pvdd closed the connection before replying")
            reply += chunk
    elapsed = time.perf_counter() - start
    if not json.loads(reply).get("ok"):
        raise ValueError(f"pvdd replied with an error: {reply[:200]!r}")
    return elapsed


def burst(path: str, clients: int, blocking: bool = True) -> tuple[list[float], list[str], float]:
    """`clients` threads released together, one request each: latencies, errors, wall seconds."""
    barrier = threading.Barrier(clients + 1)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        barrier.wait()
        try:
            elapsed = one_request(path, blocking=blocking)
            with lock:
                latencies.append(elapsed)
        except (OSError, ValueError) as exc:
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join(timeout=60)
    return latencies, errors, time.perf_counter() - start


def measure_daemon_load(ctx: BenchContext) -> list[Figure]:
    """Latency of a `list` request: alone (one client after another) and in a 1,000-client burst."""
    fig = Figure(
        fig_id="pvdd.load_1000", unit="ms",
        title=f"pvdd under load: {CONCURRENT_CLIENTS:,} concurrent clients",
        what=(f"per-request latency (connect + `list` request + whole reply) of {CONCURRENT_CLIENTS:,} "
              "client threads released together by a barrier, each on its own connection, against "
              f"{SEQUENTIAL_REQUESTS} requests made one after another; bursts and sequential "
              "batches interleaved for each round; pvdd runs in the client namespace"),
        comparisons=[("1000 concurrent", "sequential")])
    fig.notes.append("sequential and burst latencies are many requests each, not pairs: only "
                     "the ratio of medians applies")
    sequential: list[float] = []
    concurrent: list[float] = []
    walls: list[float] = []
    error_samples: list[str] = []
    error_count = 0
    with RunningDaemon(ctx, ctx.lab.client_ns, "load") as daemon:
        one_request(daemon.path)  # pvdd answers at all
        for _round in range(max(2, ctx.rounds // 2)):
            sequential += [one_request(daemon.path) * 1000 for _ in range(SEQUENTIAL_REQUESTS)]
            latencies, errors, wall = burst(daemon.path, CONCURRENT_CLIENTS)
            concurrent += [x * 1000 for x in latencies]
            walls.append(wall)
            error_count += len(errors)
            error_samples += errors[:3]
        _latencies, timeout_errors, _wall = burst(daemon.path, CONCURRENT_CLIENTS, blocking=False)
    fig.series = [Series("sequential", "one client at a time, one request per connection", sequential),
                  Series("1000 concurrent", f"{CONCURRENT_CLIENTS:,} clients at once", concurrent)]
    fig.extra = {"burst_wall_s": walls, "errors": error_count, "error_samples": error_samples[:5],
                 "p99_ms": {"sequential": percentile(sequential, 0.99),
                            "1000 concurrent": percentile(concurrent, 0.99) if concurrent else None}}
    rates = ", ".join(f"{CONCURRENT_CLIENTS / w:,.0f}" for w in walls)
    fig.notes.append(f"burst wall times: {', '.join(f'{w:.2f} s' for w in walls)} "
                     f"(requests answered per second: {rates})")
    if concurrent:
        fig.notes.append(f"p99 latency: {percentile(concurrent, 0.99):.1f} ms in bursts, "
                         f"{percentile(sequential, 0.99):.2f} ms one at a time")
    fig.notes.append(f"failed requests: {error_count} of {CONCURRENT_CLIENTS * len(walls)}"
                     + (f" (e.g. {error_samples[0]})" if error_samples else ""))
    fig.notes.append(
        f"one more burst of clients connecting with a Python socket timeout (non-blocking "
        f"connect(), which pvdrun.daemon.protocol.Client no longer uses): {len(timeout_errors)} of {CONCURRENT_CLIENTS} "
        "connects failed" + (f" ({timeout_errors[0]})" if timeout_errors else ""))
    fig.extra["nonblocking_connect_failures"] = len(timeout_errors)
    fig.notes.append("the clients are Python threads on the same 2 cores as pvdd, so the burst "
                     "figures include the clients' own scheduling; pvdd listens with a backlog of "
                     "SOMAXCONN, and a blocking client waits in connect() until it accepts")
    return [fig]
