"""Discovery at scale (`pvdrun list` with 1,000 links) and `pvdrun monitor` change-to-event latency."""
from __future__ import annotations

import os
import subprocess

from pvdbench.context import BenchContext
from pvdbench.daemon import RunningDaemon, daemon_available
from pvdbench.figure import NOT_MEASURED, Figure, Goal, NotMeasured, Series
from pvdbench.hyperfine import hyperfine_rounds
from pvdbench.monitor import LineWatcher, measure_latencies
from pvdbench.proc import CommandFailed, in_netns, run
from pvdbench.stats import percentile

DUMMY_LINKS = 1000
LIST_RUNS_PER_ROUND = 1
PVDD_RUNS_PER_ROUND = 5
MONITOR_CHANGES = 60
MONITOR_LINK = "bm0"
MONITOR_PEER = "bm1"


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
              "per command per round (a one-shot discovery of 1,000 links takes seconds), and "
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
                         f"for {DUMMY_LINKS} links")
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
    return fig


def monitor_figure(ctx: BenchContext) -> Figure:
    """Latency from an address change to `pvdrun monitor`'s first line, against `ip monitor`."""
    netns = ctx.lab.client_ns
    fig = Figure(
        fig_id="discovery.monitor_latency", unit="ms",
        title="`pvdrun monitor` change-to-event latency",
        what=(f"{MONITOR_CHANGES} changes, alternately adding and deleting an IPv4 address on a "
              "veth link (both ends in the client namespace) through a running `ip -batch -`; latency = "
              "time from writing the change to the first line each watcher prints (watchers "
              "drained until quiet before each change); reference: `ip monitor address` "
              "watching the same changes"),
        comparisons=[("pvdrun monitor", "ip monitor")])
    run(["ip", "-n", netns, "link", "add", MONITOR_LINK, "type", "veth", "peer", "name",
         MONITOR_PEER])
    for ifname in (MONITOR_LINK, MONITOR_PEER):
        run(["ip", "-n", netns, "link", "set", ifname, "up"])
    changes = [f"address {'add' if i % 2 == 0 else 'del'} 10.250.0.1/24 dev {MONITOR_LINK}"
               for i in range(MONITOR_CHANGES)]
    daemon: RunningDaemon | None = None
    watchers: dict[str, LineWatcher] = {}
    changer = subprocess.Popen(["ip", "-n", netns, "-batch", "-"], stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        socket_path = ctx.no_daemon_socket()
        try:
            daemon_available(ctx)
            daemon = RunningDaemon(ctx, netns, "monitor").__enter__()
            socket_path = daemon.path
            fig.notes.append("pvdd was running in the namespace (pvdrun monitor may subscribe to it)")
        except NotMeasured as exc:
            fig.notes.append(f"no pvdd: {exc}")
        env = {**os.environ, **ctx.pvdrun_env(socket_path), "PYTHONUNBUFFERED": "1"}
        watchers["ip monitor"] = LineWatcher(in_netns(netns, ["ip", "monitor", "address"]))
        monitor = LineWatcher(in_netns(netns, [ctx.pvdrun_bin(), "monitor"]), env)
        watchers["pvdrun monitor"] = monitor
        monitor.drain(2.0)  # the initial snapshot
        if monitor.proc.poll() is not None:
            raise NotMeasured(f"`pvdrun monitor` exited {monitor.proc.returncode}: {monitor.stop()}")
        fig.notes.append("pvdrun monitor ran with PYTHONUNBUFFERED=1, its stdout being a pipe")
        latencies = measure_latencies(changer, changes, watchers, quiet=0.1)
    except NotMeasured as exc:
        fig.status, fig.reason = NOT_MEASURED, str(exc)
        return fig
    finally:
        for watcher in watchers.values():
            watcher.stop()
        changer.stdin.close()  # type: ignore[union-attr]
        changer.wait(timeout=5)
        if daemon is not None:
            daemon.__exit__()
    for name, values in latencies.items():
        seen = [v * 1000.0 for v in values if v is not None]
        missed = len(values) - len(seen)
        if missed:
            fig.notes.append(f"{name}: no line within 2 s after {missed} of {len(values)} changes")
        fig.series.append(Series(name, f"first line from `{name}` after the change", seen))
    pvdrun_ms = fig.get("pvdrun monitor").values
    if not pvdrun_ms:
        fig.status, fig.reason = NOT_MEASURED, "pvdrun monitor printed nothing after any change"
        return fig
    p99 = percentile(pvdrun_ms, 0.99)
    fig.extra["p99_ms"] = {s.name: percentile(s.values, 0.99) for s in fig.series if s.values}
    fig.notes.append(settle_note())
    fig.goals.append(Goal("monitor latency under 10 ms at the 99th percentile", p99 < 10.0,
                          ("" if p99 < 10.0 else f"misses by {p99 - 10.0:.1f} ms: ")
                          + f"p99 = {p99:.1f} ms over {len(pvdrun_ms)} changes (median "
                          f"{sorted(pvdrun_ms)[len(pvdrun_ms) // 2]:.1f} ms); with {MONITOR_CHANGES} "
                          "samples the p99 is close to the maximum"))
    return fig


def settle_note() -> str:
    """What the discovery engine waits after a change before it re-reads the table."""
    try:
        from pvdrun.discovery.engine import SETTLE
    except ImportError:
        return "the discovery engine's settle time is unknown"
    return (f"after a change, discovery waits SETTLE = {SETTLE} s (pvdrun/discovery/engine.py) "
            "for more changes before re-reading the table; that wait is inside these latencies")


def measure_discovery(ctx: BenchContext) -> list[Figure]:
    """Both discovery figures."""
    return [list_figure(ctx), monitor_figure(ctx)]
