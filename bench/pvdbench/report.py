"""Write the bench's figures as bench/report.json and bench/report.md."""
from __future__ import annotations

import json
from typing import Any


def fmt(value: float) -> str:
    """A number with about four significant digits, no exponent for usual sizes."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"


def _met(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not resolved"}[met]


def _series_table(fig: dict[str, Any]) -> list[str]:
    lines = [f"| variant | runs | median ({fig['unit']}) | IQR (p25–p75) | min–max | what |",
             "| --- | ---: | ---: | --- | --- | --- |"]
    for series in fig["series"]:
        if not series.get("values"):
            lines.append(f"| {series['name']} | 0 | – | – | – | {series['label']} |")
            continue
        runs = str(series["n"])
        if series.get("runs_per_value", 1) > 1:
            runs += f" × {series['runs_per_value']}"
        lines.append(
            f"| {series['name']} | {runs} | {fmt(series['median'])} | "
            f"{fmt(series['p25'])}–{fmt(series['p75'])} | {fmt(series['min'])}–{fmt(series['max'])} "
            f"| {series['label']} |")
    return lines


def _ratio_table(fig: dict[str, Any]) -> list[str]:
    if not fig["ratios"]:
        return []
    lines = ["", "| subject / reference | ratio of medians | paired ratio: median (min–max) |",
             "| --- | ---: | --- |"]
    for ratio in fig["ratios"]:
        paired = ("not paired" if ratio["paired_median"] is None else
                  f"{ratio['paired_median']:.3f} ({ratio['paired_min']:.3f}–{ratio['paired_max']:.3f})")
        lines.append(f"| {ratio['subject']} / {ratio['reference']} | "
                     f"{ratio['ratio_of_medians']:.3f} | {paired} |")
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    machine = report["machine"]
    out = ["# pvdrun performance report (`make bench`)", "",
           f"Generated {report['finished']} UTC by `bench/run.py` in {report['duration_s']:.0f} s "
           f"({report['rounds']} interleaved rounds per figure unless a figure says otherwise).", "",
           "## Machine", "",
           f"- {machine['cores']} cores, {machine['cpu']}, {machine['memory_mib']} MiB",
           f"- kernel {machine['kernel']}, glibc {machine['tools']['glibc']}, "
           f"Python {machine['python']}, pvdrun commit {machine['git_commit']}",
           f"- load average at start {', '.join(f'{x:.2f}' for x in machine['loadavg_at_start'])}; "
           f"at end {', '.join(f'{x:.2f}' for x in report['loadavg_at_end'])}",
           "- tools: " + "; ".join(f"{k} {v}" for k, v in machine["tools"].items()), "",
           "## How to read it", "",
           "*Runs* counts the values a row summarises; `5 × 10` means 5 values, each the median of "
           "10 process runs (hyperfine).",
           "Every figure is measured against its reference in the same run, variants interleaved "
           "(A B C, B C A, ...) so that drift cancels. *Median* is over runs; *IQR* is the 25th–75th "
           "percentile of runs; the *paired ratio* divides each round's subject value by the same "
           "round's reference value. Lower is better except for throughput. A goal is *met* when the "
           "whole ~95% confidence interval of the median (distribution-free, from the sign test) is "
           "within the limit, *missed* when it is all beyond, and *not resolved* when this run's "
           "noise leaves the interval straddling the limit.", ""]
    out += ["## Caveats", ""] + [f"- {c}" for c in report["caveats"]] + [""]
    goals = [g for fig in report["figures"] for g in fig["goals"] if not g["goal"].startswith("(")]
    missing = [fig["id"] for fig in report["figures"] if fig["status"] != "measured"]
    out += ["## Goals", "",
            f"{sum(g['met'] is True for g in goals)} met, {sum(g['met'] is False for g in goals)} "
            f"missed, {sum(g['met'] is None for g in goals)} not resolved within this run's noise; "
            f"{len(missing)} figure(s) not measured" + (f" ({', '.join(missing)})" if missing else "")
            + ".", "",
            "| figure | goal | result | detail |", "| --- | --- | --- | --- |"]
    for fig in report["figures"]:
        if fig["status"] != "measured":
            out.append(f"| {fig['id']} | – | not measured | {fig['reason']} |")
        for goal in fig["goals"]:
            out.append(f"| {fig['id']} | {goal['goal']} | {_met(goal['met'])} | {goal['detail']} |")
    out += ["", "## Figures", ""]
    for fig in report["figures"]:
        out += [f"### {fig['title']} (`{fig['id']}`)", ""]
        if fig["status"] != "measured":
            out += [f"**Not measured:** {fig['reason']}", ""]
        if fig["what"]:
            out += [f"Measured: {fig['what']}.", ""]
        if fig["series"]:
            out += _series_table(fig) + _ratio_table(fig) + [""]
        for goal in fig["goals"]:
            out.append(f"- Goal: {goal['goal']}: {_met(goal['met'])} ({goal['detail']})")
        for note in fig["notes"]:
            out.append(f"- Note: {note}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def write_reports(report: dict[str, Any], json_path: str, md_path: str) -> None:
    """Write report.json and report.md."""
    with open(json_path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
        handle.write("\n")
    with open(md_path, "w", encoding="utf-8") as handle:
        handle.write(render_markdown(report))
