"""The cost of `pvdrun verify` around `true`, against the plain launch it wraps."""
from __future__ import annotations

import statistics

from pvdbench.context import BenchContext
from pvdbench.daemon import RunningDaemon
from pvdbench.figure import NOT_MEASURED, Figure, Goal, NotMeasured, Series, verdict
from pvdbench.figures_launch import launcher_works
from pvdbench.hyperfine import hyperfine_rounds
from pvdbench.proc import in_netns, run

RUNS_PER_ROUND = 10
#: The goal: a verified `true` within this many ms of `pvdrun --pvd X true`.
VERIFY_LIMIT_MS = 50.0


def measure_verify(ctx: BenchContext) -> list[Figure]:
    """`pvdrun verify --pvd X true` and `pvdrun --pvd X true`, with pvdd, as root (verify makes its
    cgroup and nftables watch itself), interleaved by hyperfine."""
    fig = Figure(
        fig_id="verify.true", unit="ms",
        title="`pvdrun verify --pvd X true` against `pvdrun --pvd X true` (pvdd running, root)",
        what=(f"hyperfine -N in the client namespace, {RUNS_PER_ROUND} runs per command per round "
              "after 1 warm-up, commands rotated each round; value = a round's median"),
        comparisons=[("verify", "launch")])
    launch = f"{ctx.pvdrun_bin()} --pvd {ctx.lab.client_if} true"
    verify = f"{ctx.pvdrun_bin()} verify --pvd {ctx.lab.client_if} true"
    labels = {"launch": f"pvdrun --pvd {ctx.lab.client_if} true",
              "verify": f"pvdrun verify --pvd {ctx.lab.client_if} true"}
    if not ctx.have("hyperfine"):
        raise NotMeasured("hyperfine is not installed (bench/deps.sh installs it)")
    try:
        with RunningDaemon(ctx, ctx.lab.client_ns, "verify") as daemon:
            fig.notes.append(launcher_works(ctx, daemon.path))
            check = run(in_netns(ctx.lab.client_ns, verify.split(), ctx.pvdrun_env(daemon.path)), check=False)
            if check.returncode != 0:
                raise NotMeasured(f"`{labels['verify']}` fails here (exit {check.returncode}): "
                                  f"{(check.stderr.strip().splitlines() or [''])[-1]}")
            watched = [line for line in check.stderr.splitlines() if line.strip().startswith("links:")]
            fig.notes.append(f"checked before the rounds: `{watched[0].strip() if watched else check.stderr.strip()}`")
            results = hyperfine_rounds(ctx.lab.client_ns, {"launch": launch, "verify": verify}, ctx.rounds,
                                       RUNS_PER_ROUND, ctx.lab.workdir, ctx.pvdrun_env(daemon.path),
                                       retries=fig.notes)
    except NotMeasured as exc:
        fig.status, fig.reason = NOT_MEASURED, str(exc)
        return [fig]
    fig.series = [Series(name, labels[name], values, RUNS_PER_ROUND) for name, values in results.items()]
    deltas = [v - p for v, p in zip(results["verify"], results["launch"])]
    fig.extra["verify_minus_launch_ms"] = deltas
    met, detail = verdict(deltas, VERIFY_LIMIT_MS, digits=1)
    fig.goals.append(Goal(f"verify around true within {VERIFY_LIMIT_MS:.0f} ms of the plain launch", met,
                          f"verify − launch = {statistics.median(deltas):+.1f} ms (median of per-round "
                          f"differences; {detail})"))
    return [fig]
