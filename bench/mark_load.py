"""Load measurement for pvdd's mark operation:
cost of a pvdd mark round-trip per socket, and pvdd under many concurrent mark requests.

Run as root against a running pvdd that has a PvD with a mark::

    python bench/mark_load.py --socket /run/pvd/pvdd.sock --handle H [--sockets 1000] [--rounds 2000]

Prints JSON: ``plain_us`` (socket()+close() alone, median), ``mark_us`` (socket()+mark
round-trip+close(), median, p90, p99), and for ``--sockets`` clients connected at once,
each passing one socket: wall time, throughput (marks/s), latency percentiles, errors.
Not a test: nothing is asserted (speed is measured and reported, never asserted).
"""
from __future__ import annotations

import argparse
import json
import selectors
import socket
import statistics
import time


def _request(handle: int) -> bytes:
    return json.dumps({"v": 1, "op": "mark", "handle": handle}).encode() + b"\n"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": round(pick(0.5), 1), "p90": round(pick(0.9), 1), "p99": round(pick(0.99), 1)}


def sequential(path: str, handle: int, rounds: int) -> dict[str, object]:
    """One mark round-trip per socket, one after another (what the shim does per socket)."""
    plain, marked, errors = [], [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
        plain.append((time.perf_counter() - start) * 1e6)
    for _ in range(rounds):
        start = time.perf_counter()
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(path)
            socket.send_fds(conn, [_request(handle)], [sock.fileno()])
            reply = conn.recv(4096)
        sock.close()
        marked.append((time.perf_counter() - start) * 1e6)
        errors += b'"ok":true' not in reply
    return {"plain_us": round(statistics.median(plain), 1), "mark_us": percentiles(marked), "errors": errors}


def concurrent(path: str, handle: int, count: int) -> dict[str, object]:
    """``count`` clients connected at once, each sending one socket; pvdd answers them all."""
    selector = selectors.DefaultSelector()
    started: dict[int, float] = {}
    latencies, errors, pending = [], 0, []
    begin = time.perf_counter()
    for _ in range(count):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
        pending.append((conn, socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)))
    for conn, sock in pending:
        started[conn.fileno()] = time.perf_counter()
        socket.send_fds(conn, [_request(handle)], [sock.fileno()])
        conn.setblocking(False)
        selector.register(conn, selectors.EVENT_READ, sock)
    left = count
    while left:
        for key, _ in selector.select(timeout=30):
            conn = key.fileobj  # type: ignore[assignment]
            reply = conn.recv(4096)  # type: ignore[union-attr]
            latencies.append((time.perf_counter() - started[conn.fileno()]) * 1e3)  # type: ignore[union-attr]
            errors += b'"ok":true' not in reply
            selector.unregister(conn)
            conn.close()  # type: ignore[union-attr]
            key.data.close()
            left -= 1
    wall = time.perf_counter() - begin
    return {"sockets": count, "wall_s": round(wall, 3), "marks_per_s": round(count / wall),
            "latency_ms": percentiles(latencies), "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--handle", type=int, required=True)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps({"sequential": sequential(args.socket, args.handle, args.rounds),
                      "concurrent": concurrent(args.socket, args.handle, args.sockets)}, indent=1))


if __name__ == "__main__":
    main()
