"""Change-to-event latency: time from a netlink change to the first line a watcher prints;
and a watcher's whole output kept with arrival times (what a JSON monitor reported)."""
from __future__ import annotations

import queue
import random
import subprocess
import threading
import time
from collections.abc import Sequence


class LineWatcher:
    """A long-running process whose stdout lines are timestamped on arrival by a thread."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, bufsize=0)
        self.lines: queue.Queue[tuple[float, bytes]] = queue.Queue()
        #: every line with its arrival time, drained or not (appended by the reading thread)
        self.history: list[tuple[float, bytes]] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            arrived = time.monotonic()
            self.history.append((arrived, line))
            self.lines.put((arrived, line))

    def drain(self, quiet: float) -> int:
        """Discard lines until none arrives for `quiet` seconds; returns how many were dropped."""
        dropped = 0
        while True:
            try:
                self.lines.get(timeout=quiet)
                dropped += 1
            except queue.Empty:
                return dropped

    def first_line_after(self, start: float, timeout: float) -> float | None:
        """Seconds from start to the first line that arrived after it, or None on timeout."""
        deadline = start + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                arrived, _line = self.lines.get(timeout=remaining)
            except queue.Empty:
                return None
            if arrived >= start:
                return arrived - start

    def quiet_since(self) -> float | None:
        """Arrival time of the last line so far (None: none yet)."""
        return self.history[-1][0] if self.history else None

    def stop(self) -> str:
        """Terminate the process; returns what it wrote on stderr (last lines)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        assert self.proc.stderr is not None
        return " | ".join(self.proc.stderr.read().decode(errors="replace").strip().splitlines()[-3:])


def drain_all(watchers: Sequence[LineWatcher], quiet: float) -> None:
    """Discard every watcher's lines until none of them printed for ``quiet`` seconds (one
    quiet wait for all of them, not one each)."""
    while True:
        last = max((w.quiet_since() or 0.0) for w in watchers)
        left = last + quiet - time.monotonic()
        if left <= 0:
            break
        time.sleep(left)
    for watcher in watchers:
        while not watcher.lines.empty():
            watcher.lines.get_nowait()


def measure_latencies(changer: subprocess.Popen, changes: Sequence[str],
                      watchers: dict[str, LineWatcher], timeout: float = 2.0,
                      quiet: float = 0.3, pause: float = 0.05) -> dict[str, list[float | None]]:
    """Apply each change (a line written to an `ip -batch -` process) and time every watcher.

    Before each change the watchers are drained until all are quiet, so an event is
    never attributed to the previous change.  A random pause (up to ``pause`` s) in front
    of each change keeps changes off any timer's phase.
    """
    assert changer.stdin is not None
    latencies: dict[str, list[float | None]] = {name: [] for name in watchers}
    for change in changes:
        drain_all(list(watchers.values()), quiet)
        time.sleep(random.uniform(0.0, pause))
        start = time.monotonic()
        changer.stdin.write(change.encode() + b"\n")
        changer.stdin.flush()
        for name, watcher in watchers.items():
            latencies[name].append(watcher.first_line_after(start, timeout))
    return latencies
