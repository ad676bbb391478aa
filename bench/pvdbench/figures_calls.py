"""Per-call cost of each intercepted call, timed in-process by bench/calls.c.

Variants, interleaved per round: nothing preloaded ("none"), the program
scoping its own sockets ("native": SO_BINDTOIFINDEX, the floor any shim can
reach), the pvdrun shim, and proxychains4 / torsocks where they pass the call
through doing comparable work.
"""
from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from pvdbench.context import BenchContext
from pvdbench.figure import NOT_MEASURED, Figure, Goal, NotMeasured, Series, interleave, verdict
from pvdbench.lab import DNS_NAME, SERVER_ADDR, SINK_PORT
from pvdbench.proc import in_netns, run
from pvdbench.stats import paired_ratios


@dataclass(frozen=True)
class CallSpec:
    """One intercepted call and the reference tools that pass it through."""

    op: str
    title: str
    calls: int
    warmup: int
    with_proxychains: bool
    with_torsocks: bool
    goal: str  # "hot" (within 2% of none) | "setup" (within 10% of native) | "gai" (a lookup)
    clock: str = "cpu"  # "cpu": the thread's CPU time; "wall": elapsed time (calls that wait)
    sockets: bool = True  # False: the call makes no socket, so there is no native scoping floor
    goal_text: str = ""  # the goal's wording, when not the goal kind's usual one


CALL_SPECS = [
    CallSpec("socket_close", "socket(AF_INET, SOCK_STREAM) + close()", 100_000, 1000, True, True,
             "setup"),
    CallSpec("udp_connect", "connect() of a UDP socket, repeated on the same socket", 100_000,
             1000, True, False, "setup"),
    CallSpec("udp_lifecycle", "socket(AF_INET, SOCK_DGRAM) + connect() + close()", 50_000, 1000,
             True, False, "setup"),
    CallSpec("sendto", "sendto() of 64 bytes on a connected UDP socket", 100_000, 1000, True,
             False, "hot"),
    CallSpec("sendmsg", "sendmsg() of 64 bytes on a connected UDP socket", 100_000, 1000, False,
             False, "hot"),
    CallSpec("getaddrinfo", f"getaddrinfo({DNS_NAME}, AF_INET) against dnsmasq over the veth",
             2_000, 50, True, False, "gai", clock="wall"),
    CallSpec("res_query", f"res_query({DNS_NAME}, C_IN, T_A) against dnsmasq over the veth",
             2_000, 50, False, False, "gai", clock="wall"),
    CallSpec("open_close", "open() + close() of an ordinary file (in the bench's work directory "
             "under /tmp)", 100_000, 1000, False, False, "hot", sockets=False,
             goal_text="open() of an ordinary file within 2% of no shim"),
]

#: The ordinary file calls.open_close opens (not /etc/resolv.conf, which the shim may serve as
#: the PvD's view), created in the lab's work directory.
OPEN_FILE = "open-bench.txt"

#: In-process loops are cheap and noisy against their goals: they get this many times the
#: rounds (the hot path, judged against 2%, more), which narrows the median's interval.
CALL_ROUNDS_FACTOR = {"hot": 4, "setup": 2, "gai": 2}

NOT_COMPARABLE = {
    ("sendmsg", "proxychains4"): "proxychains4 does not intercept sendmsg()",
    ("udp_connect", "torsocks"): "torsocks refuses UDP sockets (EPERM), so it does no comparable work",
    ("udp_lifecycle", "torsocks"): "torsocks refuses UDP sockets (EPERM)",
    ("sendto", "torsocks"): "torsocks refuses UDP sockets",
    ("sendmsg", "torsocks"): "torsocks refuses UDP sockets",
    ("getaddrinfo", "torsocks"): "torsocks resolves through Tor, not the local resolver",
    ("res_query", "proxychains4"): "proxychains4 does not intercept res_query()",
    ("res_query", "torsocks"): "torsocks resolves through Tor, not the local resolver",
    ("open_close", "proxychains4"): "proxychains4 does not intercept open()",
    ("open_close", "torsocks"): "torsocks does not intercept open()",
}


def open_file(ctx: BenchContext) -> str:
    """The ordinary file calls.open_close opens, created once in the lab's work directory."""
    path = os.path.join(ctx.lab.workdir, OPEN_FILE)
    if not os.path.exists(path):
        with open(path, "w", encoding="ascii") as handle:
            handle.write("an ordinary file\n")
        os.chmod(path, 0o644)
    return path


def calls_argv(ctx: BenchContext, spec: CallSpec, calls: int, native: bool) -> list[str]:
    """The C loop program's command line for one op (without namespace or preload)."""
    argv = [ctx.lab.calls_binary(), spec.op, str(calls), "--warmup", str(spec.warmup),
            "--clock", spec.clock]
    if spec.goal == "gai":
        argv += ["--name", DNS_NAME]
    elif spec.op == "open_close":
        argv += ["--path", open_file(ctx)]
    elif spec.op != "socket_close":
        argv += ["--dst", SERVER_ADDR, "--port", str(SINK_PORT)]
    if native:
        argv += ["--native", str(ctx.lab.client_ifindex)]
    return argv


def one_run(ctx: BenchContext, spec: CallSpec, env_vars: dict[str, str] | None,
            native: bool = False) -> float:
    """ns per call of one run of the C loop in the client namespace."""
    # a DNS round trip is timed on the wall clock: the loop shares dnsmasq's CPU, so that
    # it does not depend on where the scheduler put the two processes
    argv = in_netns(ctx.lab.client_ns, ctx.lab.pin_prefix() if spec.clock == "wall" else [], None)
    if env_vars:
        argv += ["env", *[f"{key}={value}" for key, value in env_vars.items()]]
    argv += calls_argv(ctx, spec, spec.calls, native)
    return float(json.loads(run(argv, timeout=120).stdout)["ns_per_call"])


def add_native(ctx: BenchContext, spec: CallSpec, runners: dict[str, Callable[[], float]],
               labels: dict[str, str]) -> None:
    """The "native" variant: the program scopes its own sockets."""
    runners["native"] = lambda: one_run(ctx, spec, None, native=True)
    labels["native"] = "program scopes its own sockets (SO_BINDTOIFINDEX)"


def add_shim(ctx: BenchContext, spec: CallSpec, runners: dict[str, Callable[[], float]],
             labels: dict[str, str], notes: list[str], label: str) -> None:
    """The "shim" variant, or a note saying why it is not measured."""
    try:
        ctx.require_scoping_shim()
        shim_env = ctx.shim_env()
        runners["shim"] = lambda: one_run(ctx, spec, shim_env)
        labels["shim"] = label
    except NotMeasured as exc:
        notes.append(f"shim not measured: {exc}")


def variants_for(ctx: BenchContext, spec: CallSpec) -> tuple[dict[str, Callable[[], float]],
                                                             dict[str, str], list[str]]:
    """Runner, label per variant, and notes on variants left out."""
    runners: dict[str, Callable[[], float]] = {"none": lambda: one_run(ctx, spec, None)}
    labels = {"none": "nothing preloaded, unscoped (glibc)"}
    notes: list[str] = []
    if spec.goal == "gai":
        notes.append("native left out: glibc's resolver gives a program no way to scope the "
                     f"sockets it opens, so there is no native floor for {spec.op}")
    elif not spec.sockets:
        notes.append(f"native left out: {spec.op} makes no socket, so there is nothing to scope")
    else:
        add_native(ctx, spec, runners, labels)
    add_shim(ctx, spec, runners, labels, notes, "pvdrun shim preloaded (LD_PRELOAD + PVDRUN_SCOPE)")
    for tool, wanted, env_of in (("proxychains4", spec.with_proxychains, ctx.proxychains_env),
                                 ("torsocks", spec.with_torsocks, ctx.torsocks_env)):
        if not wanted:
            notes.append(f"{tool} left out: {NOT_COMPARABLE.get((spec.op, tool), 'not comparable')}")
            continue
        try:
            tool_env = env_of()
        except NotMeasured as exc:
            notes.append(f"{tool} not measured: {exc}")
            continue
        runners[tool] = (lambda env=tool_env: one_run(ctx, spec, env))
        labels[tool] = f"{tool} preloaded, passing the call through"
    return runners, labels, notes


def ratio_verdict(fig: Figure, subject: str, reference: str, limit: float) -> tuple[bool | None, str]:
    """Verdict on "subject/reference <= limit" from the per-round paired ratios."""
    pairs = paired_ratios(fig.get(subject).values, fig.get(reference).values)
    mid = statistics.median(pairs)
    met, detail = verdict(pairs, limit)
    return met, f"{subject}/{reference} = {mid:.3f} ({(mid - 1) * 100:+.1f}%), {detail}"


def judge(fig: Figure, spec: CallSpec) -> None:
    """Append the goals this call is read against."""
    names = {s.name for s in fig.series}
    if "shim" not in names:
        return
    if spec.goal == "hot":
        met, detail = ratio_verdict(fig, "shim", "none", 1.02)
        fig.goals.append(Goal(spec.goal_text or "hot-path call within 2% of no shim", met, detail))
    elif spec.goal == "setup":
        met, detail = ratio_verdict(fig, "shim", "native", 1.10)
        fig.goals.append(Goal("within 10% of native scoping", met, detail))
        shim_over = fig.ratio("shim", "none")["paired_median"] - 1
        for tool in ("proxychains4", "torsocks"):
            if tool in names:
                tool_over = fig.ratio(tool, "none")["paired_median"] - 1
                met, detail = ratio_verdict(fig, "shim", tool, 1.0)
                fig.goals.append(Goal(
                    f"lower overhead than {tool}", met,
                    f"over none: shim {shim_over * 100:+.1f}%, {tool} {tool_over * 100:+.1f}%; "
                    + detail))
        if spec.op != "udp_lifecycle":
            fig.notes.append("the shim ties a socket to its PvD at its first use (shim/core/decide.c), "
                             "not in socket(); the scoping cost shows in calls.udp_lifecycle")
    elif spec.goal == "gai":
        met, detail = ratio_verdict(fig, "shim", "none", 1.10)
        fig.goals.append(Goal(spec.goal_text or f"{spec.op} within 10% of glibc's (uncached)", met, detail))


def comparisons_for(names: list[str]) -> list[tuple[str, str]]:
    """native/none, shim/none, shim/native, and each other tool against none and the shim."""
    pairs = [("native", "none"), ("shim", "none"), ("shim", "native")]
    pairs += [(tool, "none") for tool in ("proxychains4", "torsocks")]
    pairs += [("shim", tool) for tool in ("proxychains4", "torsocks")]
    return [(s, r) for s, r in pairs if s in names and r in names]


def measure_call(ctx: BenchContext, spec: CallSpec) -> Figure:
    """One call's figure: every variant interleaved for ctx.rounds rounds."""
    runners, labels, notes = variants_for(ctx, spec)
    results = interleave(ctx.rounds * CALL_ROUNDS_FACTOR[spec.goal], runners)
    fig = Figure(
        fig_id=f"calls.{spec.op}", title=f"Per-call cost: {spec.title}", unit="ns/call",
        what=(f"C loop (bench/calls.c, cc -O2) making {spec.calls:,} calls after {spec.warmup} "
              "warm-up calls, in the client namespace; one value per process run: the median "
              "per-call time of its 10 equal batches, "
              + ("timed on the thread's CPU clock (user + system time of the loop's thread, so "
                 "that time other processes held the CPU is left out)" if spec.clock == "cpu" else
                 "timed on the wall clock, the loop pinned with taskset to the CPU dnsmasq is "
                 "pinned to")),
        series=[Series(name, labels[name], values) for name, values in results.items()],
        comparisons=comparisons_for(list(results)),
        notes=notes)
    if spec.op == "open_close":
        fig.notes.append("close() is in the loop (a program that opens a file closes it); under "
                         "the shim it is a hook too (shim/hooks/fdtrack.c), so its cost counts "
                         "against the goal on open()")
    if spec.op == "res_query":
        fig.notes.append("both variants ask the same dnsmasq: glibc's res_query reads the client "
                         "namespace's resolv.conf, the shim's the PvD's DNS server in the scope line")
    if "shim" in results:
        fig.notes.append("the PvD's scope line has mark=0x0, as pvdd assigns it in this lab (one "
                         "PvD per link); a PvD with a socket mark (routing isolation, restricted "
                         "PvDs) adds a request to pvdd at a socket's first use (shim/core/decide.c), "
                         "which these figures do not include")
    if "shim" not in results:
        fig.status = NOT_MEASURED
        fig.reason = next((n for n in notes if n.startswith("shim")), "shim not available")
    judge(fig, spec)
    return fig


def measure_calls(ctx: BenchContext) -> list[Figure]:
    """Every per-call figure (those of ctx.figures only, when it names any of this group)."""
    return [measure_call(ctx, spec) for spec in CALL_SPECS if ctx.wants(f"calls.{spec.op}")]
