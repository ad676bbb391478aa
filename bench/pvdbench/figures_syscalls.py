"""System calls per intercepted call (C loop) and per outgoing connection (curl), by strace -c."""
from __future__ import annotations

import os
import statistics

from pvdbench.context import BenchContext
from pvdbench.figure import NOT_MEASURED, Figure, Goal, NotMeasured, Series, interleave
from pvdbench.figures_calls import CALL_SPECS, calls_argv
from pvdbench.lab import HTTP_PORT, SERVER_ADDR
from pvdbench.proc import in_netns, run

#: strace's %network class: the calls a socket shim can add.
NETWORK_SYSCALLS = frozenset({
    "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
    "getpeername", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
    "shutdown", "setsockopt", "getsockopt"})
#: Loop iterations whose system calls are counted (minus a run with none).
COUNTED_CALLS = 1000


def strace_counts(ctx: BenchContext, argv: list[str], env_vars: dict[str, str] | None) -> dict[str, int]:
    """syscall -> number of calls for one run of argv under `strace -f -c` in the client namespace."""
    out = os.path.join(ctx.lab.workdir, "strace.out")
    env_flags = [flag for key, value in (env_vars or {}).items() for flag in ("-E", f"{key}={value}")]
    run(in_netns(ctx.lab.client_ns, ["strace", "-f", "-c", "-o", out, *env_flags, *argv]),
        timeout=120)
    counts: dict[str, int] = {}
    with open(out, encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
                counts[fields[-1]] = int(fields[3])
    return counts


def loop_variants(ctx: BenchContext) -> tuple[dict[str, dict[str, str] | None], list[str]]:
    """Preload environment per variant of the C loop, and notes on what was left out."""
    variants: dict[str, dict[str, str] | None] = {"none": None, "native": None}
    notes: list[str] = []
    try:
        ctx.require_scoping_shim()
        variants["shim"] = ctx.shim_env()
    except NotMeasured as exc:
        notes.append(f"shim not measured: {exc}")
    return variants, notes


def per_call_figure(ctx: BenchContext) -> Figure:
    """Added system calls per intercepted call: (count over N calls - count over 0) / N."""
    variants, notes = loop_variants(ctx)
    fig = Figure(
        fig_id="syscalls.per_call", title="System calls per intercepted call (C loop)",
        unit="syscalls/call",
        what=(f"strace -f -c of bench/calls.c making {COUNTED_CALLS} calls minus the same program "
              "making none, divided by the number of calls (exact counts, one run each)"),
        notes=notes)
    for spec in CALL_SPECS:
        if spec.op == "getaddrinfo":
            continue
        for variant, env_vars in variants.items():
            native = variant == "native"
            many = strace_counts(ctx, _no_warmup(calls_argv(ctx, spec, COUNTED_CALLS, native)), env_vars)
            zero = strace_counts(ctx, _no_warmup(calls_argv(ctx, spec, 0, native)), env_vars)
            per_call = (sum(many.values()) - sum(zero.values())) / COUNTED_CALLS
            added = {name: (many.get(name, 0) - zero.get(name, 0)) / COUNTED_CALLS
                     for name in set(many) | set(zero) if many.get(name, 0) != zero.get(name, 0)}
            fig.series.append(Series(f"{spec.op}:{variant}", f"{spec.op}, {variant}: " + ", ".join(
                f"{name} {count:g}" for name, count in sorted(added.items())), [per_call]))
    if "shim" not in variants:
        fig.status, fig.reason = NOT_MEASURED, notes[0]
        return fig
    shim = fig.get("udp_lifecycle:shim").values[0]
    none = fig.get("udp_lifecycle:none").values[0]
    native = fig.get("udp_lifecycle:native").values[0]
    fig.goals.append(Goal(
        "socket() and connect() add at most one system call each", shim - none <= 2,
        f"socket+connect+close of a UDP socket: {none:g} unscoped, {native:g} natively scoped, "
        f"{shim:g} under the shim ({shim - none:+g}"
        + (f", {shim - none - 2:g} over the goal" if shim - none > 2 else "") + "); added: "
        + (fig.get("udp_lifecycle:shim").label.split(": ", 1)[1] or "none")))
    for op in ("socket_close", "udp_connect", "sendto", "sendmsg"):
        shim = fig.get(f"{op}:shim").values[0]
        none = fig.get(f"{op}:none").values[0]
        fig.notes.append(f"{op}: {none:g} system calls per call unscoped, {shim:g} under the shim")
    return fig


def _no_warmup(argv: list[str]) -> list[str]:
    """No warm-up calls, and the wall clock (read through the vDSO: no system call of its own)."""
    index = argv.index("--warmup")
    argv = argv[:index + 1] + ["0"] + argv[index + 2:]
    if "--clock" in argv:
        index = argv.index("--clock")
        argv = argv[:index + 1] + ["wall"] + argv[index + 2:]
    return argv


def curl_figure(ctx: BenchContext) -> Figure:
    """System calls of one `curl http://server/` (one connection) per variant, interleaved."""
    url = f"http://{SERVER_ADDR}:{HTTP_PORT}/index.html"
    base = ["curl", "-sS", "-o", "/dev/null", "--noproxy", "*", url]
    variants: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "curl": (base, None),
        "curl --interface": (["curl", "--interface", ctx.lab.client_if, *base[1:]], None),
    }
    labels = {"curl": "plain curl, unscoped",
              "curl --interface": f"curl --interface {ctx.lab.client_if} (curl scopes itself)"}
    notes: list[str] = []
    try:
        ctx.require_scoping_shim()
        variants["shim"] = (base, ctx.shim_env())
        labels["shim"] = "plain curl with the shim preloaded"
    except NotMeasured as exc:
        notes.append(f"shim not measured: {exc}")
    network: dict[str, list[float]] = {name: [] for name in variants}
    last_counts: dict[str, dict[str, int]] = {}

    def runner(name: str):  # noqa: ANN202 - a closure per variant
        def one() -> float:
            counts = strace_counts(ctx, *variants[name])
            last_counts[name] = counts
            network[name].append(float(sum(n for call, n in counts.items()
                                           if call in NETWORK_SYSCALLS)))
            return float(sum(counts.values()))
        return one

    totals = interleave(max(3, ctx.rounds // 2), {name: runner(name) for name in variants})
    fig = Figure(
        fig_id="syscalls.per_connection", title="System calls per outgoing connection (curl)",
        unit="syscalls/process",
        what=(f"strace -f -c of one `curl {url}` (one TCP connection and one HTTP GET per process; "
              "totals include process start-up, where the shim's own start-up cost shows)"),
        notes=notes, comparisons=[("shim", "curl"), ("shim", "curl --interface"),
                                  ("curl --interface", "curl")])
    for name, values in totals.items():
        fig.series.append(Series(name, labels[name] + ": all system calls", values))
    for name, values in network.items():
        fig.series.append(Series(f"{name} [network]", labels[name] + ": %network calls only", values))
        fig.comparisons.append((f"{name} [network]", "curl [network]"))
    fig.comparisons = [c for c in fig.comparisons if c[0] != c[1]]
    if "shim" not in variants:
        fig.status, fig.reason = NOT_MEASURED, notes[0]
    else:
        added = (statistics.median(network["shim"]) - statistics.median(network["curl --interface"]))
        fig.notes.append(f"network system calls the shim adds over curl --interface: {added:+g}")
        for reference in ("curl", "curl --interface"):
            fig.notes.append(f"%network calls of the last run, shim minus {reference}: "
                             + _count_diff(last_counts["shim"], last_counts[reference]))
    return fig


def _count_diff(subject: dict[str, int], reference: dict[str, int]) -> str:
    """'name +n' for every network system call whose count differs."""
    parts = [f"{name} {subject.get(name, 0) - reference.get(name, 0):+d}"
             for name in sorted(NETWORK_SYSCALLS)
             if subject.get(name, 0) != reference.get(name, 0)]
    return ", ".join(parts) or "no difference"


def measure_syscalls(ctx: BenchContext) -> list[Figure]:
    """Both system-call figures."""
    if not ctx.have("strace"):
        raise NotMeasured("strace is not installed (bench/deps.sh installs it)")
    return [per_call_figure(ctx), curl_figure(ctx)]
