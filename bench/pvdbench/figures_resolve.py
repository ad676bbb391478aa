"""Name lookups through pvdd's cache (op "resolve") against getaddrinfo, same dnsmasq.

The shim's getaddrinfo does not go through pvdd (docs/resolution.md: the
shim has no cache), so the cached path that exists is pvdd's `resolve`
request, which `pvdrun resolve` and the Python API use.  It is measured by
the same C loop (bench/calls.c, op pvdd_resolve: one request per
connection), against glibc's and the shim's getaddrinfo, uncached.
"""
from __future__ import annotations

import json
import os
import socket
import statistics

from pvdbench.context import BenchContext
from pvdbench.daemon import RunningDaemon, daemon_available
from pvdbench.figure import Figure, Goal, NotMeasured, Series, interleave, verdict
from pvdbench.lab import DNS_NAME, SERVER_ADDR
from pvdbench.proc import CommandFailed, in_netns, run
from pvdbench.stats import paired_ratios

LOOKUPS_PER_RUN = 1000
WARMUP = 20
MIN_ROUNDS = 8
PVD_NAME = "benchdns"


def resolve_config(ctx: BenchContext) -> str:
    """A pvd.toml naming the client veth's PvD and giving it the lab's DNS server."""
    path = os.path.join(ctx.lab.workdir, "pvd-resolve.toml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f'[pvd.{PVD_NAME}]\ninterface = "{ctx.lab.client_if}"\n'
                     f'dns = ["{SERVER_ADDR}"]\n')
    return path


def pvdd_resolve_once(path: str, host: str = DNS_NAME) -> dict:
    """One resolve request to pvdd; its reply (NotMeasured unless ok)."""
    request = {"v": 1, "op": "resolve", "name": PVD_NAME, "host": host}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(path)
        client.sendall((json.dumps(request) + "\n").encode())
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = client.recv(65536)
            if not chunk:
                break
            reply += chunk
    answer = json.loads(reply or b"{}")
    if not answer.get("ok"):
        raise NotMeasured(f"pvdd does not answer op resolve here: {reply[:300]!r}")
    return answer


def cache_check(path: str) -> tuple[bool, str]:
    """Whether a repeated lookup really came from pvdd's cache (its reply's server is null)."""
    pvdd_resolve_once(path)
    again = pvdd_resolve_once(path)
    server = (again.get("answer") or {}).get("server", "missing")
    if server is None:
        return True, ("checked: a repeated lookup's reply has \"server\": null, i.e. came from "
                      "pvdd's cache")
    return False, (f"checked: a repeated lookup's reply names server {server!r}, i.e. it did NOT "
                   "come from pvdd's cache, although dnsmasq answers with TTL 300")


def loop_run(ctx: BenchContext, argv_tail: list[str], env_vars: dict[str, str] | None) -> float:
    """ns per lookup of one C loop run (wall clock, pinned with dnsmasq and pvdd)."""
    argv = in_netns(ctx.lab.client_ns, ctx.lab.pin_prefix(), None)
    if env_vars:
        argv += ["env", *[f"{key}={value}" for key, value in env_vars.items()]]
    argv += [ctx.lab.calls_binary(), *argv_tail[:1], str(LOOKUPS_PER_RUN), "--warmup", str(WARMUP),
             "--clock", "wall", *argv_tail[1:]]
    return float(json.loads(run(argv, timeout=300).stdout)["ns_per_call"])


def measure_resolve(ctx: BenchContext) -> list[Figure]:
    """One figure: glibc, shim, pvdd with one name, pvdd with new names; interleaved."""
    daemon_available(ctx)
    fig = Figure(
        fig_id="resolve.pvdd_cache", unit="µs/lookup",
        title="Name lookup through pvdd's cache (op resolve) against getaddrinfo",
        what=(f"C loop (bench/calls.c), {LOOKUPS_PER_RUN} lookups per run after {WARMUP} warm-up "
              "lookups, wall clock, median of 10 batches; the loop, dnsmasq and pvdd pinned with "
              "taskset to one CPU; the same dnsmasq (over the veth) answers every variant; pvdd "
              "lookups are one request per new connection to its socket"),
        comparisons=[("pvdd same name", "glibc getaddrinfo"), ("pvdd same name", "shim getaddrinfo"),
                     ("pvdd new names", "glibc getaddrinfo"), ("shim getaddrinfo", "glibc getaddrinfo")])
    fig.notes.append("the shim's getaddrinfo does not go through pvdd (docs/resolution.md: the "
                     "shim has no cache), so getaddrinfo itself is never cached; the cached path "
                     "is pvdd's resolve request, used by `pvdrun resolve` and the Python API")
    labels = {"glibc getaddrinfo": "getaddrinfo, nothing preloaded (glibc's resolver, no cache)",
              "shim getaddrinfo": "getaddrinfo with the shim preloaded (the shim's resolver, no cache)",
              "pvdd same name": f"pvdd op resolve of {DNS_NAME} every time (what pvdd's cache is for; whether it hit: see the notes)",
              "pvdd new names": f"pvdd op resolve of u<i>.{DNS_NAME}, a new name every lookup (cache misses)"}
    with RunningDaemon(ctx, ctx.lab.client_ns, "resolve", config=resolve_config(ctx),
                       pinned=True) as daemon:
        cache_hit, cache_text = cache_check(daemon.path)
        fig.notes.append(cache_text)
        pvdd_args = ["--socket", daemon.path, "--pvd", PVD_NAME, "--name", DNS_NAME]
        runners = {
            "glibc getaddrinfo": lambda: loop_run(ctx, ["getaddrinfo", "--name", DNS_NAME], None),
            "pvdd same name": lambda: loop_run(ctx, ["pvdd_resolve", *pvdd_args], None),
            "pvdd new names": lambda: loop_run(ctx, ["pvdd_resolve", *pvdd_args, "--unique", "1"], None),
        }
        try:
            ctx.require_scoping_shim()
            shim_env = ctx.shim_env()
            runners["shim getaddrinfo"] = lambda: loop_run(
                ctx, ["getaddrinfo", "--name", DNS_NAME], shim_env)
        except NotMeasured as exc:
            fig.notes.append(f"shim not measured: {exc}")
        try:
            results = interleave(max(ctx.rounds, MIN_ROUNDS), runners)
        except CommandFailed as exc:
            raise NotMeasured(f"a lookup failed: {exc}; pvdd log: {daemon.log_tail()}") from exc
    fig.series = [Series(name, labels[name], [v / 1000.0 for v in values])
                  for name, values in results.items()]
    fig.comparisons = [c for c in fig.comparisons if c[0] in results and c[1] in results]
    pairs = paired_ratios(fig.get("pvdd same name").values, fig.get("glibc getaddrinfo").values)
    met, detail = verdict(pairs, 1 / 3)
    ratio = statistics.median(pairs)
    how = f"{1 / ratio:.1f}× faster" if ratio <= 1 else f"{ratio:.1f}× slower"
    fig.goals.append(Goal(
        "lookups several (here: at least 3) times faster cached than glibc's uncached getaddrinfo",
        met, f"a repeated lookup through pvdd is {how} than glibc (pvdd same name/glibc = "
             f"{ratio:.3f}, {detail}); pvdd's cache {'was' if cache_hit else 'was NOT'} hit"))
    return [fig]
