"""The cost of PVDRUN_TRACE: the same connect() loop under the shim with the trace on and off.

bench/calls.c's udp_lifecycle (UDP socket() + connect() to the server over the veth + close()):
each connect() ties a new socket to the PvD, which is one decision the trace writes a JSON line
for (shim/core/log.c), so the "on" variant appends one line per call.  Goal: tracing on within
10% of off.
"""
from __future__ import annotations

import json
import os

from pvdbench.context import BenchContext
from pvdbench.figure import NOT_MEASURED, Figure, Goal, NotMeasured, Series, interleave
from pvdbench.figures_calls import CALL_SPECS, calls_argv, ratio_verdict
from pvdbench.proc import in_netns, run

SPEC = next(spec for spec in CALL_SPECS if spec.op == "udp_lifecycle")
ROUNDS_FACTOR = 2


def one_run(ctx: BenchContext, env_vars: dict[str, str], trace: str | None,
            lines_seen: list[int]) -> float:
    """ns per call of one run of the loop under the shim; with trace, PVDRUN_TRACE names that
    file, whose lines are counted (into lines_seen) and which is removed after the run."""
    env = dict(env_vars)
    if trace:
        env["PVDRUN_TRACE"] = trace
    argv = in_netns(ctx.lab.client_ns, [], None) + ["env", *[f"{k}={v}" for k, v in env.items()]]
    argv += calls_argv(ctx, SPEC, SPEC.calls, native=False)
    try:
        value = float(json.loads(run(argv, timeout=120).stdout)["ns_per_call"])
        if trace:
            lines = 0
            if os.path.exists(trace):
                with open(trace, "rb") as handle:
                    lines = sum(1 for _ in handle)
            lines_seen.append(lines)
        return value
    finally:
        if trace and os.path.exists(trace):
            os.unlink(trace)


def measure_connect(ctx: BenchContext) -> Figure:
    fig_id, title = "trace.connect", "PVDRUN_TRACE on against off: UDP socket() + connect() + close()"
    what = (f"C loop (bench/calls.c udp_lifecycle, cc -O2) making {SPEC.calls:,} calls after "
            f"{SPEC.warmup} warm-up calls under the shim, in the client namespace; one value per "
            "process run: the median per-call time of its 10 equal batches on the thread's CPU "
            "clock (user + system time, so the trace's open/write/close system calls count); "
            "\"on\" appends one JSON line per connect() to a file in the bench's work directory "
            "(removed after each run)")
    try:
        ctx.require_scoping_shim()
        shim_env = ctx.shim_env()
    except NotMeasured as exc:
        return Figure(fig_id=fig_id, title=title, what=what, unit="ns/call", status=NOT_MEASURED,
                      reason=f"shim not measured: {exc}")
    trace = os.path.join(ctx.lab.workdir, "trace-bench.jsonl")
    lines_seen: list[int] = []
    results = interleave(ctx.rounds * ROUNDS_FACTOR, {
        "off": lambda: one_run(ctx, shim_env, None, lines_seen),
        "on": lambda: one_run(ctx, shim_env, trace, lines_seen),
    })
    fig = Figure(fig_id=fig_id, title=title, what=what, unit="ns/call",
                 series=[Series("off", "shim, PVDRUN_TRACE unset", results["off"]),
                         Series("on", "shim, PVDRUN_TRACE=/path (one line per connect)", results["on"])],
                 comparisons=[("on", "off")])
    expected = SPEC.calls + SPEC.warmup
    if lines_seen and min(lines_seen) < expected:
        fig.notes.append(f"the trace held {min(lines_seen):,} lines where {expected:,} were expected: "
                         "not every connect() was traced")
    else:
        fig.notes.append(f"each traced run wrote one line per connect() ({expected:,} lines)")
    met, detail = ratio_verdict(fig, "on", "off", 1.10)
    fig.goals.append(Goal("tracing on within 10% of off", met, detail))
    return fig


def measure_trace(ctx: BenchContext) -> list[Figure]:
    return [measure_connect(ctx)] if ctx.wants("trace.connect") else []
