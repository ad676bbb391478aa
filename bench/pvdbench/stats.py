"""Summaries of repeated measurements: median, spread, paired ratios."""
from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (fraction in [0, 1]) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float]) -> dict[str, float | int]:
    """n, median, interquartile range, min and max of one series."""
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p25": percentile(values, 0.25),
        "p75": percentile(values, 0.75),
        "min": min(values),
        "max": max(values),
    }


def paired_ratios(subject: Sequence[float], reference: Sequence[float]) -> list[float]:
    """subject[i] / reference[i] for each interleaved round i (drift cancels per pair)."""
    return [s / r for s, r in zip(subject, reference) if r]


def ratio_summary(subject: Sequence[float], reference: Sequence[float]) -> dict[str, float | None]:
    """Ratio of medians, and median and range of the per-round paired ratios.

    Series of different lengths were not measured in pairs: their paired
    fields are None.
    """
    if len(subject) != len(reference):
        return {"ratio_of_medians": statistics.median(subject) / statistics.median(reference),
                "paired_median": None, "paired_min": None, "paired_max": None}
    pairs = paired_ratios(subject, reference)
    return {
        "ratio_of_medians": statistics.median(subject) / statistics.median(reference),
        "paired_median": statistics.median(pairs),
        "paired_min": min(pairs),
        "paired_max": max(pairs),
    }
