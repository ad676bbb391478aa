"""Whole-process timings with hyperfine, interleaved over rounds."""
from __future__ import annotations

import json
import os
import statistics

from pvdbench.proc import CommandFailed, in_netns, run


def hyperfine_rounds(netns: str, commands: dict[str, str], rounds: int, runs_per_round: int,
                     workdir: str, env_vars: dict[str, str] | None = None,
                     warmup: int = 1, retries: list[str] | None = None) -> dict[str, list[float]]:
    """Median ms of each command per round; every round runs the commands in a rotated order.

    hyperfine runs inside netns with no intermediate shell (-N); its own
    timing subtracts nothing else.  env_vars are given to hyperfine (and so
    to every command it runs).  A failed round is run once more; why is
    appended to `retries` (which the caller puts in the figure's notes).
    """
    names = list(commands)
    per_round: dict[str, list[float]] = {name: [] for name in names}
    export = os.path.join(workdir, "hyperfine.json")
    for round_index in range(rounds):
        shift = round_index % len(names)
        order = names[shift:] + names[:shift]
        argv = ["hyperfine", "-N", "--style", "none", "--warmup", str(warmup),
                "--runs", str(runs_per_round), "--export-json", export,
                *[commands[name] for name in order]]
        try:
            run(in_netns(netns, argv, env_vars), timeout=300)
        except CommandFailed:
            # One retry: on a shared machine a concurrent `pip install .` rewrites the
            # pvdrun script under us.  The retry is recorded; a second failure is reported.
            reason = explain_failure(netns, commands, env_vars)
            if retries is not None:
                retries.append(f"hyperfine round {round_index + 1} failed once and was run "
                               f"again ({reason})")
            try:
                run(in_netns(netns, argv, env_vars), timeout=300)
            except CommandFailed as exc:
                raise CommandFailed(f"hyperfine round {round_index + 1}: a command failed "
                                    f"twice; {explain_failure(netns, commands, env_vars)}") from exc
        with open(export, encoding="utf-8") as handle:
            results = json.load(handle)["results"]
        for name, result in zip(order, results):
            per_round[name].append(statistics.median(result["times"]) * 1000.0)
    return per_round


def explain_failure(netns: str, commands: dict[str, str], env_vars: dict[str, str] | None) -> str:
    """Run each command once more, outside hyperfine, and say which fails and how."""
    reports = []
    for name, command in commands.items():
        proc = run(in_netns(netns, command.split(), env_vars), check=False, timeout=120)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            reports.append(f"`{name}` exits {proc.returncode}: {last}")
    return "; ".join(reports) or "each command succeeded when run again alone"
