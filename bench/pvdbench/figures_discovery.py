"""Discovery at scale (`pvdrun list` with 1,000 links) and `pvdrun monitor`: change-to-event
latency, and what it reports after a burst of 1,000 changes."""
from __future__ import annotations

import json
import math
import os
import random
import subprocess
import time
from typing import Any

from pvdbench.context import BenchContext
from pvdbench.daemon import RunningDaemon, daemon_available
from pvdbench.figure import NOT_MEASURED, Figure, Goal, NotMeasured, Series, verdict
from pvdbench.hyperfine import hyperfine_rounds
from pvdbench.monitor import LineWatcher, measure_latencies
from pvdbench.proc import CommandFailed, in_netns, run
from pvdbench.stats import percentile

DUMMY_LINKS = 1000
LIST_RUNS_PER_ROUND = 1
PVDD_RUNS_PER_ROUND = 5
#: The list figure's goals (ms): one-shot discovery of 1,000 links, and through pvdd.
LIST_LIMIT_MS = {"pvdrun list": 500.0, "pvdrun list (pvdd)": 100.0}
MONITOR_CHANGES = 300
MONITOR_LIMIT_MS = 10.0
#: The p99's interval: the order statistics around it that cover at least this much
#: (with 300 values the largest is its upper end, at about 92%).
P99_CONFIDENCE = 0.90
MONITOR_LINK = "bm0"
MONITOR_PEER = "bm1"
BURST_CHANGES = 1000
BURST_PAIRS = 10
#: The burst has settled when no monitor printed for this long (s) ...
BURST_QUIET = 1.0
#: ... or this long after it ended (s): then it did not settle.
BURST_WAIT = 20.0
#: The monitors: (series name, extra argument, what it is)
MONITORS = {
    "pvdrun monitor": ([], "subscribed to pvdd (pvdd's loop: model, assembly, its routing, then the event)"),
    "pvdrun monitor --no-daemon": (["--no-daemon"], "its own event loop (engine.run_events), no pvdd running"),
}


def check_command(ctx: BenchContext, netns: str, argv: list[str], env_vars: dict[str, str]) -> None:
    """NotMeasured unless argv succeeds once in netns."""
    proc = run(in_netns(netns, argv, env_vars), check=False, timeout=120)
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise NotMeasured(f"`{' '.join(argv[1:])}` fails here (exit {proc.returncode}): {message}")


def list_figure(ctx: BenchContext) -> Figure:
    """`pvdrun list` in a namespace with 1,000 links, against `ip -json address show`."""
    netns = ctx.lab.make_dummy_namespace(DUMMY_LINKS)
    fig = Figure(
        fig_id="discovery.list_1000", unit="ms",
        title=f"`pvdrun list` with {DUMMY_LINKS:,} interfaces",
        what=(f"hyperfine -N in a namespace holding {DUMMY_LINKS:,} links ({DUMMY_LINKS // 2} veth "
              "pairs: this kernel has no dummy link type), each up with its own IPv4 /24; one run "
              "per command per round without pvdd, and "
              f"{PVDD_RUNS_PER_ROUND} per round (value = the round's median) when pvdd answers. "
              "Reference: `ip -json address show` (the kernel dump alone)"),
        comparisons=[("pvdrun list", "ip -json address show"),
                     ("pvdrun list (pvdd)", "ip -json address show"),
                     ("pvdrun list (pvdd)", "pvdrun list")])
    labels = {"ip -json address show": "iproute2 dumps every link's addresses",
              "pvdrun list": "one-shot discovery (no pvdd running)",
              "pvdrun list (pvdd)": "pvdrun list answered by a pvdd running in the namespace"}
    commands = {"ip -json address show": "ip -json address show"}
    no_daemon = ctx.pvdrun_env(ctx.no_daemon_socket())
    results: dict[str, list[float]] = {}
    try:
        proc = run(in_netns(netns, [ctx.pvdrun_bin(), "list"], no_daemon), timeout=120,
                   check=False)
        if proc.returncode != 0:
            message = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise NotMeasured(f"`pvdrun list` fails here (exit {proc.returncode}): {message}")
        commands["pvdrun list"] = f"{ctx.pvdrun_bin()} list"
        fig.notes.append(f"`pvdrun list` printed {len(proc.stdout.strip().splitlines())} lines "
                         f"for {DUMMY_LINKS} links; that first run (not measured) asked the links' "
                         "routers, and the measured ones find their silence in /run/pvd/ras.json")
    except NotMeasured as exc:
        fig.status, fig.reason = NOT_MEASURED, str(exc)
    results.update(hyperfine_rounds(netns, commands, ctx.rounds, LIST_RUNS_PER_ROUND,
                                    ctx.lab.workdir, no_daemon, warmup=0, retries=fig.notes))
    if "pvdrun list" in results:
        try:
            with RunningDaemon(ctx, netns, "list") as daemon:
                env_vars = ctx.pvdrun_env(daemon.path)
                check_command(ctx, netns, [ctx.pvdrun_bin(), "list"], env_vars)
                with_daemon = hyperfine_rounds(
                    netns, {"ip -json address show": "ip -json address show",
                            "pvdrun list (pvdd)": f"{ctx.pvdrun_bin()} list"},
                    ctx.rounds, PVDD_RUNS_PER_ROUND, ctx.lab.workdir, env_vars, warmup=1,
                    retries=fig.notes)
            results["pvdrun list (pvdd)"] = with_daemon["pvdrun list (pvdd)"]
            fig.notes.append("the pvdd rows ran in separate rounds (with their own `ip` reference, "
                             "not shown) after the one-shot rows; their ratio against the one-shot "
                             "reference is not drift-cancelled")
        except (NotMeasured, CommandFailed) as exc:
            fig.notes.append(f"with pvdd not measured: {exc}")
    fig.series = [Series(name, labels[name], values,
                         PVDD_RUNS_PER_ROUND if name.endswith("(pvdd)") else LIST_RUNS_PER_ROUND)
                  for name, values in results.items()]
    fig.comparisons = [c for c in fig.comparisons if c[0] in results and c[1] in results]
    for name, limit in LIST_LIMIT_MS.items():
        what = f"`pvdrun list` of {DUMMY_LINKS:,} links {'through pvdd' if name.endswith('(pvdd)') else 'without pvdd'} under {limit:.0f} ms"
        if name not in results:
            fig.goals.append(Goal(what, None, "not resolved: not measured in this run"))
            continue
        met, detail = verdict(results[name], limit, digits=1)
        fig.goals.append(Goal(what, met, f"median {percentile(results[name], 0.5):.1f} ms per round; {detail}"))
    return fig


def quantile_verdict(values: list[float], fraction: float, limit: float,
                     confidence: float = P99_CONFIDENCE) -> tuple[bool | None, str]:
    """Met, missed or not resolved (None) for the ``fraction`` quantile of ``values`` against
    ``limit``, on a distribution-free interval of that quantile: between the r-th and s-th
    smallest values, r and s chosen around n*fraction until the binomial probability that the
    quantile lies between them reaches ``confidence`` (or no wider interval exists)."""
    ordered = sorted(values)
    n = len(ordered)

    def pmf(k: int) -> float:  # P(exactly k values below the quantile)
        return math.comb(n, k) * fraction ** k * (1 - fraction) ** (n - k)

    low = high = min(n - 1, int(n * fraction))  # B ranks: the interval is X(low+1)..X(high+1)
    coverage = pmf(low)
    while coverage < confidence:
        down = pmf(low - 1) if low > 0 else -1.0
        up = pmf(high + 1) if high + 1 < n else -1.0  # B = n would need X(n+1): unbounded
        if down < 0 and up < 0:
            break
        if up >= down:
            high += 1
            coverage += up
        else:
            low -= 1
            coverage += down
    bottom, top = ordered[low], ordered[high + 1] if high + 1 < n else ordered[-1]
    spread = (f"{coverage * 100:.0f}% interval of the p{fraction * 100:.0f} {bottom:.1f}–{top:.1f} ms "
              f"({n} values)")
    if top < limit:
        return True, spread
    if bottom > limit:
        return False, f"{spread}; misses the limit {limit:.4g} ms by {percentile(values, fraction) - limit:.1f} ms"
    return None, f"{spread}; not resolved: the interval straddles the limit {limit:.4g} ms"


def monitor_figure(ctx: BenchContext) -> Figure:
    """Latency from an address change to `pvdrun monitor`'s first line, against `ip monitor`,
    in two passes: subscribed to pvdd, then its own loop with no pvdd running; after each, a
    burst of 1,000 changes, after which what the monitor reported must match a fresh dump."""
    netns = ctx.lab.client_ns
    fig = Figure(
        fig_id="discovery.monitor_latency", unit="ms",
        title="`pvdrun monitor` change-to-event latency, and a burst of 1,000 changes",
        what=(f"{MONITOR_CHANGES} changes, alternately adding and deleting an IPv4 address on a "
              "veth link (both ends in the client namespace) through a running `ip -batch -`; latency = "
              "time from writing the change to the first line each watcher prints (watchers "
              "drained until quiet before each change); reference: `ip monitor address` "
              "watching the same changes. Two passes of `pvdrun monitor --json`: subscribed to a "
              "pvdd running in the namespace, then with --no-daemon (its own loop) once pvdd is "
              f"stopped. After each pass, a burst of {BURST_CHANGES:,} changes (`ip -force -batch`: "
              f"addresses added and deleted, links down and up, on {BURST_PAIRS} veth pairs), after "
              "which the monitor's last reported state (its snapshot and every event since) must "
              "match a fresh dump (`pvdrun list --no-daemon`: each interface's addresses and kernel "
              "routes)"),
        comparisons=[("pvdrun monitor", "ip monitor"),
                     ("pvdrun monitor --no-daemon", "ip monitor (no pvdd)")])
    run(["ip", "-n", netns, "link", "add", MONITOR_LINK, "type", "veth", "peer", "name",
         MONITOR_PEER])
    for ifname in (MONITOR_LINK, MONITOR_PEER):
        run(["ip", "-n", netns, "link", "set", ifname, "up"])
    changes = [f"address {'add' if i % 2 == 0 else 'del'} 10.250.0.1/24 dev {MONITOR_LINK}"
               for i in range(MONITOR_CHANGES)]
    latencies: dict[str, list[float | None]] = {}
    changer = subprocess.Popen(["ip", "-n", netns, "-batch", "-"], stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for name, reference in (("pvdrun monitor", "ip monitor"),
                                ("pvdrun monitor --no-daemon", "ip monitor (no pvdd)")):
            latencies.update(monitor_pass(ctx, fig, netns, changer, changes, name, reference))
    except NotMeasured as exc:
        fig.status, fig.reason = NOT_MEASURED, str(exc)
        return fig
    finally:
        changer.stdin.close()  # type: ignore[union-attr]
        changer.wait(timeout=5)
        run(["ip", "-n", netns, "link", "del", MONITOR_LINK], check=False)
    for name, values in latencies.items():
        seen = [v * 1000.0 for v in values if v is not None]
        missed = len(values) - len(seen)
        if missed:
            fig.notes.append(f"{name}: no line within 2 s after {missed} of {len(values)} changes")
        label = MONITORS[name][1] if name in MONITORS else "iproute2 prints the kernel's notification"
        fig.series.append(Series(name, f"first line after the change: {label}", seen))
    fig.extra["p99_ms"] = {s.name: percentile(s.values, 0.99) for s in fig.series if s.values}
    latency_goals = []
    for name in MONITORS:
        values = fig.get(name).values if name in latencies else []
        what = f"`{name}` change-to-event under {MONITOR_LIMIT_MS:.0f} ms at the 99th percentile"
        if not values:
            latency_goals.append(Goal(what, None, "not resolved: it printed nothing after any change"))
            continue
        met, detail = quantile_verdict(values, 0.99, MONITOR_LIMIT_MS)
        latency_goals.append(Goal(what, met, f"p99 = {percentile(values, 0.99):.1f} ms, median "
                                  f"{percentile(values, 0.5):.1f} ms over {len(values)} changes; {detail}"))
    fig.goals = latency_goals + fig.goals
    fig.notes.append(settle_note())
    return fig


def monitor_pass(ctx: BenchContext, fig: Figure, netns: str, changer: subprocess.Popen,
                 changes: list[str], name: str, reference: str) -> dict[str, list[float | None]]:
    """One monitor (`name`, beside `ip monitor` as `reference`): its latencies, then its
    burst goal.  The pvdd pass starts pvdd and stops it after."""
    extra, _label = MONITORS[name]
    daemon: RunningDaemon | None = None
    watchers: dict[str, LineWatcher] = {}
    try:
        socket_path = ctx.no_daemon_socket()
        if not extra:
            try:
                daemon_available(ctx)
                daemon = RunningDaemon(ctx, netns, "monitor").__enter__()
                socket_path = daemon.path
                fig.notes.append(f"`{name}`: pvdd was running in the namespace; the monitor subscribed to it")
            except NotMeasured as exc:
                fig.notes.append(f"`{name}`: no pvdd ({exc}): it ran its own loop")
        env = {**os.environ, **ctx.pvdrun_env(socket_path), "PYTHONUNBUFFERED": "1"}
        monitor = LineWatcher(in_netns(netns, [ctx.pvdrun_bin(), "monitor", "--json", *extra]), env)
        watchers = {reference: LineWatcher(in_netns(netns, ["ip", "monitor", "address"])), name: monitor}
        monitor.drain(2.0)  # the initial snapshot (kept in its history)
        if monitor.proc.poll() is not None:
            raise NotMeasured(f"`{name}` exited {monitor.proc.returncode}: {monitor.stop()}")
        found = measure_latencies(changer, changes, watchers, quiet=0.05, pause=0.01)
        burst_goal(ctx, fig, netns, name, monitor)
        return found
    finally:
        for watcher in watchers.values():
            watcher.stop()
        if daemon is not None:
            daemon.__exit__()


def _burst_lines(count: int, seed: int = 1) -> tuple[list[str], list[str]]:
    """(set-up lines making the veth pairs, ``count`` changes on them)."""
    rng = random.Random(seed)
    names = [f"bb{i}{end}" for i in range(BURST_PAIRS) for end in "ab"]
    setup = [f"link add bb{i}a type veth peer name bb{i}b" for i in range(BURST_PAIRS)]
    setup += [f"link set {name} up" for name in names]
    lines: list[str] = []
    while len(lines) < count:
        index = rng.randrange(len(names))
        name, n = names[index], rng.randrange(1, 25)
        pick = rng.random()
        if pick < 0.4:
            lines.append(f"address add 10.251.{n}.{index + 1}/24 dev {name}")
        elif pick < 0.65:
            lines.append(f"address del 10.251.{n}.{index + 1}/24 dev {name}")
        elif pick < 0.8:
            lines.append(f"-6 address add 2001:db8:251:{n:x}::{index + 1}/64 dev {name} nodad")
        elif pick < 0.9:
            lines.append(f"-6 address del 2001:db8:251:{n:x}::{index + 1}/64 dev {name}")
        else:
            lines.append(f"link set {name} {rng.choice(['down', 'up', 'up'])}")
    return setup, lines


def reported_state(watcher: LineWatcher) -> dict[str, dict[str, Any]]:
    """What a `pvdrun monitor --json` reported: its snapshot with every event since applied."""
    state: dict[str, dict[str, Any]] = {}
    for _arrived, raw in list(watcher.history):
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        kind = event.get("event")
        if kind == "snapshot":
            state = {p["pvd_id"]: p for p in event.get("pvds", [])}
        elif kind == "removed":
            state.pop(event.get("pvd_id"), None)
        elif kind in ("added", "changed"):
            state[event["pvd_id"]] = event["pvd"]
    return state


def per_interface(pvds: list[dict[str, Any]]) -> dict[str, tuple[list[str], list[tuple]]]:
    """What the kernel holds of each interface that carries a PvD: its addresses and its routes
    (pvdd's routes from PvD options left out: no dump holds them)."""
    found: dict[str, tuple[set[str], set[tuple]]] = {}
    for pvd in pvds:
        for ifname in pvd.get("interfaces", []):
            addrs, routes = found.setdefault(ifname, (set(), set()))
            addrs.update(pvd.get("addresses", []))
            routes.update((r["dst"], r.get("gateway"), r.get("metric")) for r in pvd.get("routes", [])
                          if r.get("origin") != "pvd")
    return {name: (sorted(a), sorted(r, key=repr)) for name, (a, r) in found.items()}


def burst_goal(ctx: BenchContext, fig: Figure, netns: str, name: str, monitor: LineWatcher) -> None:
    """A burst of BURST_CHANGES changes; then a goal: what the monitor last reported matches a
    fresh dump, with the time from the burst's end to its last line."""
    setup, lines = _burst_lines(BURST_CHANGES)
    what = f"`{name}` after a burst of {BURST_CHANGES:,} changes matches a fresh dump"
    _batch(ctx, netns, "burst-setup", setup)
    try:
        monitor.drain(0.5)
        began = time.monotonic()
        _batch(ctx, netns, "burst", lines)
        ended = time.monotonic()
        deadline = ended + BURST_WAIT
        while time.monotonic() < deadline:
            if time.monotonic() - max(monitor.quiet_since() or 0.0, ended) >= BURST_QUIET:
                break
            time.sleep(0.05)
        last = monitor.quiet_since() or ended
        settled = time.monotonic() - max(last, ended) >= BURST_QUIET
        fresh_proc = run(in_netns(netns, [ctx.pvdrun_bin(), "list", "--no-daemon", "--json"],
                                  ctx.pvdrun_env(ctx.no_daemon_socket())), check=False, timeout=120)
        if fresh_proc.returncode != 0:
            fig.goals.append(Goal(what, None, "not resolved: the fresh `pvdrun list --no-daemon` "
                                  f"failed: {fresh_proc.stderr.strip()[-200:]}"))
            return
        fresh = per_interface(json.loads(fresh_proc.stdout)["pvds"])
        reported = per_interface(list(reported_state(monitor).values()))
        settle_ms = max(0.0, last - ended) * 1000.0
        wrong = sorted(i for i in set(fresh) | set(reported) if fresh.get(i) != reported.get(i))
        fig.extra.setdefault("burst", {})[name] = {
            "changes": len(lines), "burst_ms": (ended - began) * 1000.0, "settle_ms": settle_ms,
            "settled": settled, "mismatched_interfaces": wrong}
        detail = (f"{'settled' if settled else 'still printing'} {settle_ms:.0f} ms after the burst's end "
                  f"(the burst took {(ended - began) * 1000:.0f} ms through `ip -batch`); "
                  + ("every interface's addresses and routes as a fresh dump has them"
                     if not wrong else f"differs from a fresh dump on {len(wrong)} interfaces: "
                     f"{', '.join(wrong[:5])}"))
        fig.goals.append(Goal(what, settled and not wrong, detail))
    finally:
        _batch(ctx, netns, "burst-teardown", [f"link del bb{i}a" for i in range(BURST_PAIRS)])


def _batch(ctx: BenchContext, netns: str, name: str, lines: list[str]) -> None:
    """``ip -force -batch`` of ``lines`` in ``netns`` (a line that fails does not stop the rest)."""
    path = os.path.join(ctx.lab.workdir, f"{name}.batch")
    with open(path, "w", encoding="ascii") as handle:
        handle.write("\n".join(lines) + "\n")
    run(["ip", "-n", netns, "-force", "-batch", path], check=False, timeout=120)


def settle_note() -> str:
    """What the discovery engine waits after a change before it assembles the table."""
    try:
        from pvdrun.discovery.engine import SETTLE, SETTLE_MAX
    except ImportError:
        return "the discovery engine's settle time is unknown"
    return (f"after a change, discovery waits SETTLE = {SETTLE} s for more (at most SETTLE_MAX = "
            f"{SETTLE_MAX} s after a burst began; pvdrun/discovery/engine.py) before it assembles "
            "the table; that wait is inside these latencies. Through pvdd they also hold pvdd's "
            "sync of its routing tables and nftables table to the new table, which comes "
            "before the event (the event carries the marks and tables it assigned)")


def measure_discovery(ctx: BenchContext) -> list[Figure]:
    """Both discovery figures."""
    return [list_figure(ctx), monitor_figure(ctx)]
