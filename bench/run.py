#!/usr/bin/env python3
"""`make bench`: measure pvdrun against its references and write bench/report.{md,json}.

usage: python3 bench/run.py [--rounds N] [--only GROUP[.FIGURE],...] [--out-dir DIR]

Runs as root (it builds network namespaces, all named with this run's pid,
and removes them on exit, also on failure or Ctrl-C).  Each figure group is a
function returning figures; a figure whose subject does not exist yet is
reported as "not measured: <why>", never invented.
"""
from __future__ import annotations

import argparse
import datetime
import os
import resource
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pvdbench.context import BenchContext  # noqa: E402
from pvdbench.figure import Figure, NotMeasured, not_measured  # noqa: E402
from pvdbench.figures_calls import measure_calls  # noqa: E402
from pvdbench.figures_daemon import measure_daemon_load  # noqa: E402
from pvdbench.figures_discovery import measure_discovery  # noqa: E402
from pvdbench.figures_launch import measure_launch  # noqa: E402
from pvdbench.figures_resolve import measure_resolve  # noqa: E402
from pvdbench.figures_strict import measure_strict  # noqa: E402
from pvdbench.figures_syscalls import measure_syscalls  # noqa: E402
from pvdbench.figures_throughput import measure_throughput  # noqa: E402
from pvdbench.figures_trace import measure_trace  # noqa: E402
from pvdbench.figures_verify import measure_verify  # noqa: E402
from pvdbench.lab import BenchLab  # noqa: E402
from pvdbench.machine import describe_machine  # noqa: E402
from pvdbench.report import write_reports  # noqa: E402

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
EXIT_USAGE = 2
EXIT_MISSING_PREREQ = 5

#: group name -> (title, function); run in this order.
GROUPS: dict[str, tuple[str, Callable[[BenchContext], list[Figure]]]] = {
    "calls": ("Per-call cost of intercepted calls", measure_calls),
    "syscalls": ("System calls per call and per connection", measure_syscalls),
    "throughput": ("Bulk TCP throughput", measure_throughput),
    "launch": ("Launch cost", measure_launch),
    "strict": ("Strict mode: per-call and launch cost", measure_strict),
    "resolve": ("getaddrinfo through pvdd's cache", measure_resolve),
    "trace": ("Cost of PVDRUN_TRACE", measure_trace),
    "verify": ("Cost of pvdrun verify", measure_verify),
    "discovery": ("Discovery with 1,000 interfaces and monitor latency", measure_discovery),
    "daemon": ("pvdd under load", measure_daemon_load),
}

CAVEATS = [
    "Measured on a shared 2-core machine where other test runs may share the cores at the same "
    "time; interleaving cancels slow drift, not bursts, so read the IQR and the paired-ratio range "
    "before a median.",
    "Run counts are kept small so that the whole run fits in a few minutes; a ratio within its "
    "paired min–max range of 1.0 is not a measured difference.",
    "Everything runs inside network namespaces over one veth pair: no real NIC, no real "
    "latency; the figures compare costs on this host, not end-to-end network performance.",
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per figure")
    parser.add_argument("--only", default="",
                        help="comma-separated groups (" + ",".join(GROUPS) + "), or figures "
                             "GROUP.FIGURE (e.g. calls.res_query: only those of that group)")
    parser.add_argument("--out-dir", default=BENCH_DIR, help="where report.md/json go")
    args = parser.parse_args(argv)
    unknown = [g for g in args.only.split(",") if g and g.split(".", 1)[0] not in GROUPS]
    if unknown:
        parser.exit(EXIT_USAGE, f"bench: unknown group(s): {', '.join(unknown)}; "
                                f"known: {', '.join(GROUPS)}\n")
    if args.rounds < 2:
        parser.exit(EXIT_USAGE, "bench: --rounds must be at least 2 (ratios need pairs)\n")
    return args


def compile_calls() -> None:
    """Compile bench/calls.c with cc -O2 into bench/out/calls."""
    out_dir = os.path.join(BENCH_DIR, "out")
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-o", os.path.join(out_dir, "calls"),
                    os.path.join(BENCH_DIR, "calls.c")], check=True)


def run_group(name: str, ctx: BenchContext) -> list[Figure]:
    """One group's figures; a failure becomes an honest 'not measured' figure."""
    title, function = GROUPS[name]
    started = time.monotonic()
    print(f"bench: {name}: {title} ...", file=sys.stderr, flush=True)
    try:
        figures = function(ctx)
    except NotMeasured as exc:
        figures = [not_measured(name, title, str(exc))]
    except Exception as exc:  # noqa: BLE001 - one broken figure must not sink the report
        traceback.print_exc()
        figures = [not_measured(name, title, f"harness error: {type(exc).__name__}: {exc}")]
    print(f"bench: {name}: {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return figures


def raise_open_file_limit() -> None:
    """1,000 concurrent pvdd clients need more than the usual 1,024 descriptors (pvdd inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def terminate_on_signal(signum: int, _frame: object) -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so the lab's finally-block removes everything."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench: must run as root (it creates network namespaces)", file=sys.stderr)
        return EXIT_MISSING_PREREQ
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, terminate_on_signal)
    named = [g for g in args.only.split(",") if g]
    groups = list(dict.fromkeys(g.split(".", 1)[0] for g in named)) or list(GROUPS)
    figure_ids = frozenset(g for g in named if "." in g)
    raise_open_file_limit()
    compile_calls()
    machine = describe_machine()
    started = time.monotonic()
    figures: list[Figure] = []
    with BenchLab() as lab:
        ctx = BenchContext(lab=lab, rounds=args.rounds, figures=figure_ids)
        for name in groups:
            figures += run_group(name, ctx)
    report = {
        "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "duration_s": time.monotonic() - started,
        "rounds": args.rounds,
        "groups": groups,
        "machine": machine,
        "loadavg_at_end": os.getloadavg(),
        "caveats": CAVEATS + ctx.caveats,
        "figures": [fig.to_dict() for fig in figures],
    }
    os.makedirs(args.out_dir, exist_ok=True)
    json_path = os.path.join(args.out_dir, "report.json")
    md_path = os.path.join(args.out_dir, "report.md")
    write_reports(report, json_path, md_path)
    print(f"bench: wrote {md_path} and {json_path} in {report['duration_s']:.0f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt as interrupt:
        # the lab's context manager has already removed namespaces, processes and files
        print(f"bench: interrupted ({interrupt or 'Ctrl-C'}); everything the run made is removed",
              file=sys.stderr)
        sys.exit(130)
