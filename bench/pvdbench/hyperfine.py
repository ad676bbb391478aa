"""Whole-process timings with hyperfine, interleaved over rounds."""
from __future__ import annotations

import json
import os
import statistics

from pvdbench.proc import in_netns, run


def hyperfine_rounds(netns: str, commands: dict[str, str], rounds: int, runs_per_round: int,
                     workdir: str, env_vars: dict[str, str] | None = None,
                     warmup: int = 1) -> dict[str, list[float]]:
    """Median ms of each command per round; every round runs the commands in a rotated order.

    hyperfine runs inside netns with no intermediate shell (-N); its own
    timing subtracts nothing else.  env_vars are given to hyperfine (and so
    to every command it runs).
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
        run(in_netns(netns, argv, env_vars), timeout=300)
        with open(export, encoding="utf-8") as handle:
            results = json.load(handle)["results"]
        for name, result in zip(order, results):
            per_round[name].append(statistics.median(result["times"]) * 1000.0)
    return per_round
