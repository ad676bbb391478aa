"""What one figure of the report holds, and how figures are measured interleaved."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import statistics

from pvdbench.stats import median_interval, ratio_summary, summary

MEASURED = "measured"
NOT_MEASURED = "not measured"


class NotMeasured(Exception):
    """A figure whose subject does not exist (yet), or cannot be measured here."""


@dataclass
class Series:
    """Repeated measurements of one variant (e.g. 'shim' or 'none')."""

    name: str
    label: str
    values: list[float] = field(default_factory=list)
    runs_per_value: int = 1  # e.g. a value that is the median of 10 hyperfine runs

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "label": self.label, "values": self.values,
                                "runs_per_value": self.runs_per_value}
        if self.values:
            data.update(summary(self.values))
        return data


@dataclass
class Goal:
    """A goal the report is read against, and whether this run met it."""

    text: str
    met: bool | None  # None: could not be judged from what was measured
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"goal": self.text, "met": self.met, "detail": self.detail}


@dataclass
class Figure:
    """One figure: what was measured, every variant's runs, ratios and goals."""

    fig_id: str
    title: str
    what: str = ""
    unit: str = ""
    status: str = MEASURED
    reason: str = ""
    series: list[Series] = field(default_factory=list)
    comparisons: list[tuple[str, str]] = field(default_factory=list)  # (subject, reference)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Series:
        """The series called name."""
        for series in self.series:
            if series.name == name:
                return series
        raise KeyError(name)

    def ratio(self, subject: str, reference: str) -> dict[str, float]:
        """Ratio figures of subject against reference."""
        return ratio_summary(self.get(subject).values, self.get(reference).values)

    def to_dict(self) -> dict[str, Any]:
        ratios = []
        for subject, reference in self.comparisons:
            try:
                ratios.append({"subject": subject, "reference": reference,
                               **self.ratio(subject, reference)})
            except (KeyError, ValueError, ZeroDivisionError):
                continue
        return {"id": self.fig_id, "title": self.title, "status": self.status,
                "reason": self.reason, "what": self.what, "unit": self.unit,
                "series": [s.to_dict() for s in self.series], "ratios": ratios,
                "goals": [g.to_dict() for g in self.goals], "notes": self.notes,
                "extra": self.extra}


def not_measured(fig_id: str, title: str, reason: str, what: str = "") -> Figure:
    """A figure that states why it was not measured."""
    return Figure(fig_id=fig_id, title=title, what=what, status=NOT_MEASURED, reason=reason)


def interleave(rounds: int, variants: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run each variant once per round, rotating the order (A B C, B C A, ...) so drift cancels."""
    names = list(variants)
    results: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(variants[name]())
    return results


def verdict(values: list[float], limit: float, lower_is_better: bool = True,
            digits: int = 3) -> tuple[bool | None, str]:
    """Met, missed, or not resolved (None) for per-round paired values against a limit.

    Judged on a distribution-free ~95% confidence interval of the median
    (see stats.median_interval): met when the whole interval is on the good
    side of the limit, missed when it is all on the bad side; otherwise this
    run cannot tell, and the verdict says so.
    """
    mid = statistics.median(values)
    low, high, coverage = median_interval(values)
    spread = (f"{coverage * 100:.0f}% CI of the median {low:.{digits}f}–{high:.{digits}f} "
              f"({len(values)} pairs)")
    good_edge, bad_edge = (high, low) if lower_is_better else (low, high)
    if (good_edge <= limit) if lower_is_better else (good_edge >= limit):
        return True, spread
    if (bad_edge > limit) if lower_is_better else (bad_edge < limit):
        return False, f"{spread}; misses the limit {limit:.4g} by {abs(mid - limit):.{digits}f}"
    return None, f"{spread}; not resolved: the interval straddles the limit {limit:.4g}"


def overhead_percent(ratio: float) -> float:
    """A ratio as percent above (positive) or below (negative) the reference."""
    return (ratio - 1.0) * 100.0
