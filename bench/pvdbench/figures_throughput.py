"""Bulk TCP throughput over the veth pair, iperf3 with and without the shim."""
from __future__ import annotations

import json
import statistics

from pvdbench.context import BenchContext
from pvdbench.figure import NOT_MEASURED, Figure, Goal, NotMeasured, Series, interleave, verdict
from pvdbench.lab import IPERF_PORT, SERVER_ADDR
from pvdbench.proc import in_netns, run
from pvdbench.stats import paired_ratios

SECONDS_PER_RUN = 2
#: iperf3 on a shared machine is noisy: at least this many rounds, so a verdict can use quartiles.
THROUGHPUT_MIN_ROUNDS = 8


def iperf_gbits(ctx: BenchContext, env_vars: dict[str, str] | None) -> float:
    """Received Gbit/s of one iperf3 TCP run from the client namespace to the server."""
    argv = ["iperf3", "--client", SERVER_ADDR, "--port", str(IPERF_PORT),
            "--time", str(SECONDS_PER_RUN), "--json"]
    result = json.loads(run(in_netns(ctx.lab.client_ns, argv, env_vars), timeout=60).stdout)
    return float(result["end"]["sum_received"]["bits_per_second"]) / 1e9


def measure_throughput(ctx: BenchContext) -> list[Figure]:
    """One figure: iperf3 Gbit/s, none vs shim, interleaved."""
    if not ctx.have("iperf3"):
        raise NotMeasured("iperf3 is not installed (bench/deps.sh installs it)")
    runners = {"none": lambda: iperf_gbits(ctx, None)}
    notes: list[str] = []
    try:
        ctx.require_scoping_shim()
        shim_env = ctx.shim_env()
        runners["shim"] = lambda: iperf_gbits(ctx, shim_env)
    except NotMeasured as exc:
        notes.append(f"shim not measured: {exc}")
    results = interleave(max(ctx.rounds, THROUGHPUT_MIN_ROUNDS), runners)
    labels = {"none": "iperf3 client unscoped", "shim": "iperf3 client with the shim preloaded"}
    fig = Figure(
        fig_id="throughput.tcp", title="Bulk TCP throughput on a veth pair (iperf3)",
        unit="Gbit/s",
        what=(f"iperf3 --client over the bench veth pair, one TCP stream, {SECONDS_PER_RUN} s per "
              "run, received bits per second; higher is better"),
        series=[Series(name, labels[name], values) for name, values in results.items()],
        comparisons=[("shim", "none")], notes=notes)
    if "shim" not in results:
        fig.status, fig.reason = NOT_MEASURED, notes[0]
        return [fig]
    pairs = paired_ratios(fig.get("shim").values, fig.get("none").values)
    ratio = statistics.median(pairs)
    met, detail = verdict(pairs, 0.99, lower_is_better=False)
    fig.goals.append(Goal("bulk throughput within 1% of no shim", met,
                          f"shim/none = {ratio:.3f} ({(ratio - 1) * 100:+.1f}%), {detail}"))
    return [fig]
