"""Summaries of repeated measurements: median, spread, paired ratios."""
from __future__ import annotations

import math
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


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """A distribution-free confidence interval of the median, and its actual coverage.

    The interval runs from the k-th smallest to the k-th largest value, k
    being the largest whose coverage (from the binomial distribution with
    p = 1/2, as in a sign test) is still at least `confidence`.  With too few
    values for that, it is min–max with the (lower) coverage that has.
    """
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("interval of no values")
    best_k, coverage = 1, 1.0 - 2.0 * 0.5 ** n
    tail = 0.0
    for k in range(1, n // 2 + 1):
        tail += math.comb(n, k - 1) * 0.5 ** n  # P(fewer than k values below the median)
        if 1.0 - 2.0 * tail >= confidence:
            best_k, coverage = k, 1.0 - 2.0 * tail
        else:
            break
    return ordered[best_k - 1], ordered[n - best_k], coverage
