"""Launch cost: `pvdrun --pvd X true` against `true` and `ip netns exec NS true`."""
from __future__ import annotations

import json
import math
import os
import statistics
import sys
from collections.abc import Sequence

from pvdbench.context import BenchContext
from pvdbench.daemon import RunningDaemon
from pvdbench.figure import NOT_MEASURED, Figure, Goal, NotMeasured, Series, verdict
from pvdbench.hyperfine import hyperfine_rounds
from pvdbench.lab import ASKING_PVD
from pvdbench.proc import CommandFailed, in_netns, run
from pvdbench.stats import percentile

#: Runs per command per round: with pvdd a launch takes tens of ms, without it seconds.
RUNS_PER_ROUND = {True: 10, False: 2}
#: The goals of the launch figures: pvdrun within this many ms of `ip netns exec NS true`, with
#: pvdd (True) and without it when nothing must be heard from a router (False: the bench's client
#: link has no router, and the warm-up run fills the cache of routers' answers).
LAUNCH_LIMIT_MS = {True: 20.0, False: 150.0}
#: The goal of a launch without pvdd when routers must be asked: its 90th percentile (absolute
#: time, not a difference: the wait for the routers is most of it) within this many ms.
ASKING_LIMIT_MS = 700.0
ASKING_QUANTILE = 0.9
#: Timed launches in all, spread over the rounds.  Sixty, so that the ~95% interval of the 90th
#: percentile ends at the 59th of 60, not at the slowest launch (40 would end at the slowest).
ASKING_LAUNCHES = 60
#: The line a launch prints when it asked the routers (docs/discovery.md, "Saying so"): "asking"
#: before the wait when the name already meant a PvD, "asked" after it otherwise.
ASKED_LINE = ("pvdrun: asking the routers on ", "pvdrun: asked the routers on ")

#: Runs inside the asking host's namespace: each round alternates a launch and the reference
#: (which goes first alternates with the rounds), removes the bench's own RA cache file before
#: every launch, and reads the router namespace's count of Router Solicitations around it.
ASKING_TIMER = r"""
import json, os, subprocess, sys, time
cfg = json.loads(sys.argv[1])
env = dict(os.environ, **cfg["env"])

def solicitations():
    with open(cfg["counter"], encoding="ascii") as handle:
        for line in handle:
            key, _, value = line.partition(" ")
            if key == "Icmp6InRouterSolicits":
                return int(value)
    return -1

def once(name):
    record = {"name": name}
    if name == "pvdrun":
        try:
            os.unlink(cfg["cache"])
        except FileNotFoundError:
            pass
        record["cache_left"] = os.path.exists(cfg["cache"])
        before = solicitations()
    start = time.perf_counter()
    proc = subprocess.run(cfg["commands"][name], env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    record["ms"] = (time.perf_counter() - start) * 1000.0
    record["rc"] = proc.returncode
    record["stderr"] = proc.stderr.decode("utf-8", "replace")
    if name == "pvdrun":
        record["solicitations"] = solicitations() - before
    return record

names = list(cfg["commands"])
for name in names:  # warm-up, not kept
    once(name)
records = []
for round_index in range(cfg["rounds"]):
    shift = round_index % len(names)
    order = names[shift:] + names[:shift]
    for _ in range(cfg["runs"]):
        for name in order:
            records.append({"round": round_index, **once(name)})
print(json.dumps(records))
"""


def launcher_works(ctx: BenchContext, socket_path: str, *options: str) -> str:
    """NotMeasured unless `pvdrun --pvd IF [OPTIONS] true` succeeds in the client namespace;
    a note saying which launcher ran it (the native launcher's last PVDRUN_LAUNCHER_TRACE line:
    `exec ...` when it ran the launch itself, else why it handed it to pvdrun-cli)."""
    argv = ["env", "PVDRUN_LAUNCHER_TRACE=1", ctx.pvdrun_bin(), "--pvd", ctx.lab.client_if, *options, "true"]
    proc = run(in_netns(ctx.lab.client_ns, argv, ctx.pvdrun_env(socket_path)), check=False)
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise NotMeasured(f"`pvdrun --pvd {ctx.lab.client_if} true` fails here "
                          f"(exit {proc.returncode}): {message}")
    traced = [line for line in proc.stderr.splitlines() if line.startswith("pvdrun: native launcher: ")]
    if not traced:
        return "pvdrun is not the native launcher here (no PVDRUN_LAUNCHER_TRACE line)"
    return f"checked before the rounds, with PVDRUN_LAUNCHER_TRACE=1: `{traced[-1]}`"


def measure_launch(ctx: BenchContext) -> list[Figure]:
    """Launch timings without and with pvdd, each interleaved with its references."""
    if not ctx.have("hyperfine"):
        raise NotMeasured("hyperfine is not installed (bench/deps.sh installs it)")
    pvdrun = f"{ctx.pvdrun_bin()} --pvd {ctx.lab.client_if} true"
    references = {"true": "/bin/true", "ip netns exec": f"ip netns exec {ctx.lab.server_ns} /bin/true"}
    labels = {"true": "/bin/true alone",
              "ip netns exec": "ip netns exec NS /bin/true (a namespace per PvD, the alternative)",
              "pvdrun": f"pvdrun --pvd {ctx.lab.client_if} true"}
    figures = []
    no_daemon_socket = ctx.no_daemon_socket()
    for with_daemon in (False, True):
        fig_id = "launch.with_pvdd" if with_daemon else "launch.without_pvdd"
        fig = Figure(
            fig_id=fig_id, unit="ms",
            title=f"Launch cost of `pvdrun --pvd X true` {'with' if with_daemon else 'without'} pvdd",
            what=(f"hyperfine -N in the client namespace, {RUNS_PER_ROUND[with_daemon]} runs per "
                  "command per round after 1 warm-up, commands rotated each round; value = a "
                  "round's median"),
            comparisons=[("pvdrun", "ip netns exec"), ("pvdrun", "true"), ("ip netns exec", "true")])
        commands = dict(references)
        try:
            if with_daemon:
                with RunningDaemon(ctx, ctx.lab.client_ns, "launch") as daemon:
                    fig.notes.append(launcher_works(ctx, daemon.path))
                    commands["pvdrun"] = pvdrun
                    results = hyperfine_rounds(ctx.lab.client_ns, commands, ctx.rounds,
                                               RUNS_PER_ROUND[with_daemon], ctx.lab.workdir,
                                               ctx.pvdrun_env(daemon.path), retries=fig.notes)
            else:
                fig.notes.append(launcher_works(ctx, no_daemon_socket))
                commands["pvdrun"] = pvdrun
                results = hyperfine_rounds(ctx.lab.client_ns, commands, ctx.rounds,
                                           RUNS_PER_ROUND[with_daemon], ctx.lab.workdir,
                                           ctx.pvdrun_env(no_daemon_socket), retries=fig.notes)
        except NotMeasured as exc:
            fig.status, fig.reason = NOT_MEASURED, str(exc)
            results = hyperfine_rounds(ctx.lab.client_ns, references, ctx.rounds,
                                       RUNS_PER_ROUND[with_daemon], ctx.lab.workdir,
                                       retries=fig.notes) if not with_daemon else {}
        fig.series = [Series(name, labels[name], values, RUNS_PER_ROUND[with_daemon])
                      for name, values in results.items()]
        if "pvdrun" in results:
            added = fig.get("pvdrun").values
            deltas = [p - n for p, n in zip(added, fig.get("ip netns exec").values)]
            delta = statistics.median(deltas)
            fig.extra["pvdrun_minus_ip_netns_exec_ms"] = deltas
            limit = LAUNCH_LIMIT_MS[with_daemon]
            met, detail = verdict(deltas, limit, digits=1)
            fig.goals.append(Goal(
                f"pvdrun launch {'with pvdd running' if with_daemon else 'without pvdd, nothing to hear'} "
                f"within {limit:.0f} ms of ip netns exec", met,
                f"pvdrun − ip netns exec = {delta:+.1f} ms (median of per-round differences; "
                f"{detail})"))
        if not with_daemon:
            fig.notes.append(prime_wait_note())
        figures.append(fig)
    if ctx.wants("launch.without_pvdd_asking"):
        figures.append(measure_launch_asking(ctx))
    return figures


def quantile_interval(values: Sequence[float], fraction: float,
                      confidence: float = 0.95) -> tuple[float, float, float]:
    """A distribution-free confidence interval of a quantile, and its actual coverage.

    stats.median_interval generalised to any quantile: the k-th smallest value is at most the
    quantile when at least k values are below it, and the count below it is binomial (n,
    fraction); each end leaves out at most (1 - confidence) / 2.  With too few values for an
    end, that end is the extreme value, and the coverage says what that gives.
    """
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("interval of no values")

    def below_at_most(k: int) -> float:  # P(at most k of n values below the quantile)
        return sum(math.comb(n, i) * fraction ** i * (1.0 - fraction) ** (n - i)
                   for i in range(k + 1))

    tail = (1.0 - confidence) / 2.0
    low = max([k for k in range(1, n + 1) if below_at_most(k - 1) <= tail], default=1)
    high = min([k for k in range(low, n + 1) if below_at_most(k - 1) >= 1.0 - tail], default=n)
    coverage = below_at_most(high - 1) - below_at_most(low - 1)
    return ordered[low - 1], ordered[high - 1], coverage


def quantile_verdict(values: Sequence[float], fraction: float, limit: float,
                     digits: int = 0) -> tuple[bool | None, str]:
    """Met, missed or not resolved (None) for a quantile of values against an upper limit, judged
    as figure.verdict judges a median: on the quantile's ~95% interval."""
    low, high, coverage = quantile_interval(values, fraction)
    name = f"p{fraction * 100:.0f}"
    spread = (f"{coverage * 100:.0f}% CI of the {name} {low:.{digits}f}–{high:.{digits}f} "
              f"({len(values)} launches)")
    if high <= limit:
        return True, spread
    if low > limit:
        return False, (f"{spread}; misses the limit {limit:.4g} by "
                       f"{percentile(values, fraction) - limit:.{digits}f}")
    return None, f"{spread}; not resolved: the interval straddles the limit {limit:.4g}"


def measure_launch_asking(ctx: BenchContext) -> Figure:
    """`pvdrun --pvd X true` without pvdd where X is known only from a router's answer.

    The lab's host namespace has one link, to a router namespace whose RA sender advertises X in
    an RFC 8801 PvD option (lab.ASKING_PVD); the host's kernel knows the router (its default
    route), as on an ISP's link.  Before every launch the bench removes its own RA cache file
    ($PVDRUN_RA_CACHE, in the bench's work directory; never the host's /run/pvd/ras.json), so
    every launch solicits, waits for the router's answer and the quiet after it, and only then
    knows X.  Each launch is checked to have asked: its stderr line, and a Router Solicitation
    counted in the router's namespace while it ran.
    """
    pvd_id = ASKING_PVD["pvd_id"]
    runs = max(1, math.ceil(ASKING_LAUNCHES / ctx.rounds))
    fig = Figure(
        fig_id="launch.without_pvdd_asking", unit="ms",
        title="Launch cost of `pvdrun --pvd X true` without pvdd when routers must be asked",
        what=(f"{ctx.rounds} rounds of {runs} launches of `pvdrun --pvd {pvd_id} true`, each "
              "followed or preceded (alternating by round) by one `ip netns exec NS /bin/true`, "
              "timed one by one (Python's perf_counter around the process, in the asking "
              "host's namespace) after 1 warm-up each; the bench's RA cache file removed before "
              "every launch; value = one launch"),
        comparisons=[("pvdrun", "ip netns exec")])
    try:
        records = asking_records(ctx, runs)
    except NotMeasured as exc:
        fig.status, fig.reason = NOT_MEASURED, str(exc)
        return fig
    by_name: dict[str, list[dict]] = {"pvdrun": [], "ip netns exec": []}
    for record in records:
        by_name[record["name"]].append(record)
    failed = [r for r in records if r["rc"] != 0]
    if failed:
        last = (failed[0]["stderr"].strip().splitlines() or ["no message"])[-1]
        fig.status = NOT_MEASURED
        fig.reason = (f"{len(failed)} of {len(records)} timed runs failed, e.g. "
                      f"`{failed[0]['name']}` exit {failed[0]['rc']}: {last}")
        return fig
    labels = {"pvdrun": f"pvdrun --pvd {pvd_id} true (the PvD is known only from the RA)",
              "ip netns exec": "ip netns exec NS /bin/true (a namespace per PvD, the alternative)"}
    fig.series = [Series(name, labels[name], [r["ms"] for r in items])
                  for name, items in by_name.items()]
    launches = by_name["pvdrun"]
    times = [r["ms"] for r in launches]
    said = [r for r in launches if r["stderr"].startswith(ASKED_LINE)]
    solicited = [r for r in launches if r["solicitations"] >= 1]
    asked = [r for r in launches if r in said and r in solicited and not r["cache_left"]]
    p50, p90 = percentile(times, 0.5), percentile(times, ASKING_QUANTILE)
    reference = [r["ms"] for r in by_name["ip netns exec"]]
    fig.extra.update({
        "launch_p50_ms": p50, "launch_p90_ms": p90,
        "ip_netns_exec_p50_ms": percentile(reference, 0.5),
        "ip_netns_exec_p90_ms": percentile(reference, ASKING_QUANTILE),
        "launches": len(launches), "launches_that_asked": len(asked),
        "launches_printing_the_line": len(said), "launches_soliciting": len(solicited),
        "solicitations_per_launch": [r["solicitations"] for r in launches],
        "stderr_first_launch": launches[0]["stderr"].strip()})
    goal_text = (f"launch without pvdd, routers asked: p90 ≤ {ASKING_LIMIT_MS:.0f} ms")
    numbers = (f"p50 {p50:.0f} ms, p90 {p90:.0f} ms of {len(times)} launches "
               f"(ip netns exec: p50 {percentile(reference, 0.5):.1f} ms, "
               f"p90 {percentile(reference, ASKING_QUANTILE):.1f} ms)")
    if len(asked) < len(launches):
        fig.goals.append(Goal(goal_text, None, (
            f"{numbers}; not judged: {len(launches) - len(asked)} of {len(launches)} launches did "
            f"not ask the router ({len(said)} printed the line, {len(solicited)} solicited), so "
            "this run does not time what the goal is about")))
    else:
        met, detail = quantile_verdict(times, ASKING_QUANTILE, ASKING_LIMIT_MS)
        fig.goals.append(Goal(goal_text, met, f"{numbers}; {detail}"))
    fig.notes.append(
        f"{len(asked)} of {len(launches)} timed launches asked the router: each printed "
        f"`{ASKED_LINE[1]}...` on stderr, and the router's namespace received a Router "
        f"Solicitation during each ({sum(r['solicitations'] for r in launches)} in all); the "
        "bench's RA cache file was absent at each start")
    fig.notes.append(asking_wait_note())
    return fig


def asking_records(ctx: BenchContext, runs: int) -> list[dict]:
    """Every timed run of the asking figure (warm-up left out), from ASKING_TIMER."""
    try:
        sender = ctx.lab.make_router_link()
    except (CommandFailed, TimeoutError) as exc:
        raise NotMeasured(f"the bench's router link could not be built: {exc}") from exc
    cache = os.path.join(ctx.lab.workdir, "ras-asking.json")
    env = {**ctx.pvdrun_env(ctx.no_daemon_socket()), "PVDRUN_RA_CACHE": cache}
    launch = [ctx.pvdrun_bin(), "--pvd", str(ASKING_PVD["pvd_id"]), "true"]
    first = run(in_netns(ctx.lab.asking_ns, launch, env), check=False)
    if first.returncode != 0:
        message = (first.stderr.strip().splitlines() or [f"exit {first.returncode}"])[-1]
        raise NotMeasured(f"`{' '.join(launch[1:])}` fails in the bench's asking host "
                          f"(exit {first.returncode}): {message}")
    config = {"rounds": ctx.rounds, "runs": runs, "env": env, "cache": cache,
              "counter": f"/proc/{sender.pid}/net/snmp6",
              "commands": {"pvdrun": launch,
                           "ip netns exec": ["ip", "netns", "exec", ctx.lab.router_ns, "/bin/true"]}}
    timeout = 60.0 + ctx.rounds * runs * 4.0
    proc = run(in_netns(ctx.lab.asking_ns, [sys.executable, "-c", ASKING_TIMER,
                                            json.dumps(config)]), timeout=timeout)
    return json.loads(proc.stdout)


def asking_wait_note() -> str:
    """What a launch that asks waits for, from the installed discovery's constants."""
    try:
        from pvdrun.discovery.engine import PRIME_WAIT, RA_SETTLE
    except ImportError:
        return "without pvdd the launcher runs a one-shot discovery"
    return (f"a launch that asks sends a Router Solicitation and listens until the routers it "
            f"knows answered and then RA_SETTLE = {RA_SETTLE} s passed without another RA, at "
            f"most PRIME_WAIT = {PRIME_WAIT} s after the solicitation "
            "(pvdrun/discovery/engine.py); the lab's RA sender (pvdrun/lab/ra.py) answers a "
            "solicitation 0.2 s after it, within RFC 4861's 0.5 s for a solicited RA.  So a "
            "launch that asks takes about one that asks nobody (launch.without_pvdd) plus the "
            f"router's answer delay plus {RA_SETTLE} s: the goal's margin is what a slower "
            "router's delay may use")


def prime_wait_note() -> str:
    """Why a launch without pvdd takes long: one-shot discovery listens for RAs first."""
    try:
        from pvdrun.discovery.engine import PRIME_WAIT
    except ImportError:
        return "without pvdd the launcher runs a one-shot discovery"
    return (f"without pvdd the launcher runs a one-shot discovery, which solicits Router "
            f"Advertisements only on the links of the PvD asked for whose PvD data is missing and "
            f"whose routers have no live answer in /run/pvd/ras.json, listening at most "
            f"PRIME_WAIT = {PRIME_WAIT} s and less once the known routers answered "
            "(pvdrun/discovery/engine.py); here the client link has no router and the warm-up "
            "run fills the cache, so a measured launch asks nobody")
