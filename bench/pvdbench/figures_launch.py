"""Launch cost: `pvdrun --pvd X true` against `true` and `ip netns exec NS true`."""
from __future__ import annotations

import statistics

from pvdbench.context import BenchContext
from pvdbench.daemon import RunningDaemon
from pvdbench.figure import NOT_MEASURED, Figure, Goal, NotMeasured, Series, verdict
from pvdbench.hyperfine import hyperfine_rounds
from pvdbench.proc import in_netns, run

#: Runs per command per round: with pvdd a launch takes tens of ms, without it seconds.
RUNS_PER_ROUND = {True: 10, False: 2}
#: The goals of the launch figures: pvdrun within this many ms of `ip netns exec NS true`, with
#: pvdd (True) and without it when nothing must be heard from a router (False: the bench's client
#: link has no router, and the warm-up run fills the cache of routers' answers).
LAUNCH_LIMIT_MS = {True: 20.0, False: 150.0}


def launcher_works(ctx: BenchContext, socket_path: str) -> None:
    """NotMeasured unless `pvdrun --pvd IF true` succeeds in the client namespace."""
    argv = [ctx.pvdrun_bin(), "--pvd", ctx.lab.client_if, "true"]
    proc = run(in_netns(ctx.lab.client_ns, argv, ctx.pvdrun_env(socket_path)), check=False)
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise NotMeasured(f"`pvdrun --pvd {ctx.lab.client_if} true` fails here "
                          f"(exit {proc.returncode}): {message}")


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
                    launcher_works(ctx, daemon.path)
                    commands["pvdrun"] = pvdrun
                    results = hyperfine_rounds(ctx.lab.client_ns, commands, ctx.rounds,
                                               RUNS_PER_ROUND[with_daemon], ctx.lab.workdir,
                                               ctx.pvdrun_env(daemon.path), retries=fig.notes)
            else:
                launcher_works(ctx, no_daemon_socket)
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
    return figures


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
