"""Strict mode: what holding a program in its PvD with the kernel (a cgroup whose BPF programs
mark, check and rewrite its sockets, pvdrun/strict/) costs per call and per launch.

pvdd runs in the client namespace, as for the launch figures; a strict variant is the same C
loop as the calls group (bench/calls.c, same op, same counts, same clock) started by
`pvdrun --pvd X --strict`, so that pvdd moves the launcher, and with it the loop, into the
PvD's strict cgroup before the exec.  Variants, interleaved per round:

* ``none``, ``native`` (SO_BINDTOIFINDEX) and ``shim``: exactly as in the calls group;
* ``strict``: the loop in the PvD's strict cgroup without the shim (``env -u LD_PRELOAD``
  between the launcher and the loop): the kernel's programs alone, which is how a program
  the shim cannot scope (static, Go, set-user-ID) is held;
* ``strict+shim``: ``pvdrun --pvd X --strict`` of the loop as it is (a dynamic program: the
  programs and the shim).

The strict cgroups pvdd makes are removed when it stops; whatever is left of them in the
client namespace's directory is detached and removed here, also on failure.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
from collections.abc import Callable

from pvdbench.context import BenchContext
from pvdbench.daemon import RunningDaemon
from pvdbench.figure import Figure, Goal, NotMeasured, Series, interleave, not_measured, verdict
from pvdbench.figures_calls import (CALL_ROUNDS_FACTOR, CALL_SPECS, CallSpec, add_native, add_shim, calls_argv,
                                    one_run, ratio_verdict)
from pvdbench.figures_launch import launcher_works
from pvdbench.hyperfine import hyperfine_rounds
from pvdbench.lab import SERVER_ADDR, SINK_PORT
from pvdbench.proc import CommandFailed, in_netns, run

#: The calls this group measures in strict mode, and each one's goal: (reference, limit).
STRICT_CALLS = {"udp_lifecycle": ("native", 1.10), "sendto": ("none", 1.02)}
#: Runs per command per round of the launch figure (a launch with pvdd takes tens of ms).
LAUNCH_RUNS = 10
LAUNCH_LIMIT_MS = 20.0
WITHOUT_SHIM = ["env", "-u", "LD_PRELOAD", "-u", "PVDRUN_SCOPE"]


class StrictLab:
    """pvdd in the client namespace, and the strict launcher's command lines; a context manager
    that removes the namespace's strict cgroups afterwards."""

    def __init__(self, ctx: BenchContext) -> None:
        self.ctx = ctx
        self.daemon = RunningDaemon(ctx, ctx.lab.client_ns, "strict")
        self.netns_inode = os.stat(f"/run/netns/{ctx.lab.client_ns}").st_ino
        self.cgroup = ""  # the strict cgroup a program run with --strict was seen in
        self.probe: dict[str, object] = {}  # what calls.c's probe saw of a socket made there

    def __enter__(self) -> "StrictLab":
        self.daemon.__enter__()
        try:
            self.require_strict()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.daemon.__exit__()
        finally:
            self.remove_cgroups()

    def launcher(self, shim: bool) -> list[str]:
        """`pvdrun --pvd IF --strict`, and without the shim `env -u LD_PRELOAD ...` after it."""
        return [self.ctx.pvdrun_bin(), "--pvd", self.ctx.lab.client_if, "--strict",
                *([] if shim else WITHOUT_SHIM)]

    def strict_run(self, spec: CallSpec, shim: bool) -> float:
        """ns per call of one run of the C loop in the PvD's strict cgroup."""
        argv = in_netns(self.ctx.lab.client_ns, [*self.launcher(shim),
                                                  *calls_argv(self.ctx, spec, spec.calls, False)],
                        self.ctx.pvdrun_env(self.daemon.path))
        return float(json.loads(run(argv, timeout=120).stdout)["ns_per_call"])

    def require_strict(self) -> None:
        """NotMeasured unless a program started by `pvdrun --strict` (without the shim) is in a
        strict cgroup and its UDP socket carries the PvD's mark or device."""
        env = self.ctx.pvdrun_env(self.daemon.path)
        proc = run(in_netns(self.ctx.lab.client_ns, [*self.launcher(False), "cat", "/proc/self/cgroup"],
                            env), check=False)
        if proc.returncode != 0:
            message = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            raise NotMeasured(f"`pvdrun --pvd {self.ctx.lab.client_if} --strict` fails here "
                              f"(exit {proc.returncode}): {message}; pvdd: {self.daemon.log_tail()}")
        self.cgroup = next((line[3:] for line in proc.stdout.splitlines() if line.startswith("0::")), "")
        if f"/net-{self.netns_inode}/" not in self.cgroup:
            raise NotMeasured(f"a program run with --strict is not in a strict cgroup of the client "
                              f"namespace (its cgroup: {self.cgroup or 'unknown'!r})")
        argv = in_netns(self.ctx.lab.client_ns, [*self.launcher(False), self.ctx.lab.calls_binary(),
                                                 "probe", "0", "--dst", SERVER_ADDR, "--port",
                                                 str(SINK_PORT)], env)
        try:
            probe = json.loads(run(argv).stdout)
        except (CommandFailed, json.JSONDecodeError) as exc:
            raise NotMeasured(f"a program in strict mode could not open a UDP socket: {exc}") from exc
        if not probe.get("mark") and probe.get("device") != self.ctx.lab.client_if:
            raise NotMeasured("strict mode did not hold the socket: a UDP socket made in the strict "
                              "cgroup has neither a mark nor the PvD's device")
        self.probe = probe

    def remove_cgroups(self) -> None:
        """Detach and remove what is left of the client namespace's strict cgroups (pvdd removes
        the empty ones when it stops); never raises."""
        try:
            from pvdrun.strict import cgroups
            from pvdrun.strict.holder import detach_all

            base = os.path.join(cgroups.find_or_mount(), cgroups.TOP, f"net-{self.netns_inode}")
        except Exception:  # noqa: BLE001 - teardown goes on
            return
        for name in cgroups.children(base):
            path = os.path.join(base, name)
            try:
                detach_all(path)
                cgroups.remove(path)
            except OSError as exc:
                self.ctx.caveats.append(f"strict cgroup {path} could not be removed: {exc}")
        try:
            os.rmdir(base)
        except OSError:
            pass


def held_note(lab: StrictLab) -> str:
    probe = lab.probe
    how = (f"mark {probe['mark']:#x}" if probe.get("mark") else f"bound to {probe.get('device')}")
    return (f"strict variants ran in the cgroup {lab.cgroup} (pvdd moved the launcher there); a "
            f"UDP socket made there without the shim is {how}")


def measure_strict_call(ctx: BenchContext, lab: StrictLab, spec: CallSpec) -> Figure:
    """One call's figure: none, native, the shim, strict and strict+shim, interleaved."""
    reference, limit = STRICT_CALLS[spec.op]
    runners: dict[str, Callable[[], float]] = {"none": lambda: one_run(ctx, spec, None)}
    labels = {"none": "nothing preloaded, unscoped (glibc)"}
    notes = [held_note(lab)]
    if spec.op == "udp_lifecycle":
        add_native(ctx, spec, runners, labels)
        add_shim(ctx, spec, runners, labels, notes,
                 "pvdrun shim preloaded (LD_PRELOAD + PVDRUN_SCOPE), no strict cgroup")
    runners["strict"] = lambda: lab.strict_run(spec, shim=False)
    labels["strict"] = "strict cgroup's programs alone (pvdrun --strict env -u LD_PRELOAD ...)"
    runners["strict+shim"] = lambda: lab.strict_run(spec, shim=True)
    labels["strict+shim"] = "pvdrun --pvd X --strict: strict cgroup and the shim"
    results = interleave(ctx.rounds * CALL_ROUNDS_FACTOR[spec.goal], runners)
    names = list(results)
    pairs = [("strict", reference), ("strict+shim", reference), ("strict", "none"),
             ("native", "none"), ("strict", "shim"), ("strict+shim", "shim")]
    fig = Figure(
        fig_id=f"strict.{spec.op}", title=f"Per-call cost in strict mode: {spec.title}",
        unit="ns/call",
        what=(f"the calls group's C loop (bench/calls.c, cc -O2) making {spec.calls:,} calls after "
              f"{spec.warmup} warm-up calls, in the client namespace with pvdd running; strict "
              "variants started by `pvdrun --pvd X --strict`, which pvdd moves into the PvD's "
              "strict cgroup; one value per process run: the median per-call time of its 10 "
              "equal batches, timed on the thread's CPU clock"),
        series=[Series(name, labels[name], values) for name, values in results.items()],
        comparisons=list(dict.fromkeys((s, r) for s, r in pairs if s in names and r in names)),
        notes=notes)
    for subject in ("strict", "strict+shim"):
        met, detail = ratio_verdict(fig, subject, reference, limit)
        what = ("strict mode (the kernel's programs alone)" if subject == "strict" else
                "strict mode with the shim (pvdrun --strict of a dynamic program)")
        target = "native scoping" if reference == "native" else "no scoping"
        fig.goals.append(Goal(f"{what} within {(limit - 1) * 100:.0f}% of {target}", met, detail))
    if spec.op == "udp_lifecycle":
        fig.notes.append("in the strict cgroup a program runs at socket() (the mark or device) and "
                         "at connect() (the DNS check); native scoping is one "
                         "setsockopt(SO_BINDTOIFINDEX) per socket; under strict+shim the shim's "
                         "own setsockopt() also passes the cgroup's setsockopt program")
    else:
        fig.notes.append("a send on a connected UDP socket names no destination, and the kernel "
                         "runs the cgroup's sendmsg program only for a datagram that names one "
                         "(udp_sendmsg); the socket's mark or device was set once, at socket(). "
                         "What the marked datagrams pay besides is pvdd's nftables output rule "
                         "for the PvD's mark (its packets leave only by the PvD's interfaces), "
                         "which unmarked ones, those of none, leave at the mark compare")
    return fig


def measure_strict_launch(ctx: BenchContext, lab: StrictLab) -> Figure:
    """`pvdrun --pvd X --strict true` with pvdd, against `ip netns exec NS true` and plain
    `pvdrun --pvd X true`."""
    pvdrun = f"{ctx.pvdrun_bin()} --pvd {ctx.lab.client_if}"
    commands = {"true": "/bin/true", "ip netns exec": f"ip netns exec {ctx.lab.server_ns} /bin/true",
                "pvdrun": f"{pvdrun} true", "pvdrun --strict": f"{pvdrun} --strict true"}
    labels = {"true": "/bin/true alone",
              "ip netns exec": "ip netns exec NS /bin/true (a namespace per PvD, the alternative)",
              "pvdrun": f"pvdrun --pvd {ctx.lab.client_if} true (shim only)",
              "pvdrun --strict": f"pvdrun --pvd {ctx.lab.client_if} --strict true (pvdd moves it "
                                 "into the strict cgroup)"}
    fig = Figure(
        fig_id="strict.launch", unit="ms",
        title="Launch cost of `pvdrun --pvd X --strict true` with pvdd",
        what=(f"hyperfine -N in the client namespace with pvdd running, {LAUNCH_RUNS} runs per "
              "command per round after 1 warm-up, commands rotated each round; value = a round's "
              "median"),
        comparisons=[("pvdrun --strict", "ip netns exec"), ("pvdrun --strict", "pvdrun"),
                     ("pvdrun", "ip netns exec"), ("ip netns exec", "true")])
    fig.notes.append(launcher_works(ctx, lab.daemon.path, "--strict"))
    results = hyperfine_rounds(ctx.lab.client_ns, commands, ctx.rounds, LAUNCH_RUNS,
                               ctx.lab.workdir, ctx.pvdrun_env(lab.daemon.path), retries=fig.notes)
    fig.series = [Series(name, labels[name], values, LAUNCH_RUNS) for name, values in results.items()]
    deltas = [s - n for s, n in zip(results["pvdrun --strict"], results["ip netns exec"])]
    added = [s - p for s, p in zip(results["pvdrun --strict"], results["pvdrun"])]
    fig.extra["pvdrun_strict_minus_ip_netns_exec_ms"] = deltas
    fig.extra["pvdrun_strict_minus_pvdrun_ms"] = added
    met, detail = verdict(deltas, LAUNCH_LIMIT_MS, digits=1)
    fig.goals.append(Goal(
        f"pvdrun --strict launch with pvdd running within {LAUNCH_LIMIT_MS:.0f} ms of ip netns exec",
        met, f"pvdrun --strict − ip netns exec = {statistics.median(deltas):+.1f} ms (median of "
             f"per-round differences; {detail})"))
    fig.notes.append(f"strict mode's own share (pvdrun --strict − pvdrun, median of per-round "
                     f"differences): {statistics.median(added):+.1f} ms: entering strict mode "
                     "through pvdd (the launcher's `strict` request; pvdd moves it into the "
                     "cgroup, whose programs were installed at the first launch, before the "
                     "rounds)")
    return fig


def measure_strict(ctx: BenchContext) -> list[Figure]:
    """The strict group's figures (those of ctx.figures only, when it names any of this group)."""
    specs = {spec.op: spec for spec in CALL_SPECS}
    wanted = [op for op in STRICT_CALLS if ctx.wants(f"strict.{op}")]
    with_launch = ctx.wants("strict.launch")
    if with_launch and not ctx.have("hyperfine"):
        raise NotMeasured("hyperfine is not installed (bench/deps.sh installs it)")
    jobs: list[tuple[str, str, Callable[[StrictLab], Figure]]] = [
        (f"strict.{op}", f"Per-call cost in strict mode: {specs[op].title}",
         lambda lab, spec=specs[op]: measure_strict_call(ctx, lab, spec)) for op in wanted]
    if with_launch:
        jobs.append(("strict.launch", "Launch cost of `pvdrun --pvd X --strict true` with pvdd",
                     lambda lab: measure_strict_launch(ctx, lab)))
    figures: list[Figure] = []
    with StrictLab(ctx) as lab:
        for fig_id, title, measure in jobs:
            # one figure that fails is reported as such; the others keep their numbers
            try:
                figures.append(measure(lab))
            except NotMeasured as exc:
                figures.append(not_measured(fig_id, title, str(exc)))
            except (CommandFailed, subprocess.SubprocessError, OSError, ValueError, KeyError) as exc:
                figures.append(not_measured(fig_id, title, f"harness error: {type(exc).__name__}: {exc}"))
    return figures
