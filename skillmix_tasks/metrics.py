"""Aggregation: per item the max over its generations, per task the mean with its uncertainty.

An item whose generations are all unscored is itself unscored and is left out of the means
(never counted as zero); the summary counts unscored items by reason.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from .protocol import METRICS
from .scoring import GenerationScore, Unscored


def item_metrics(generations: Sequence[GenerationScore | Unscored]) -> dict[str, float] | Unscored:
    """Each metric's max over the scored generations of one item."""
    scored = [g for g in generations if not isinstance(g, Unscored)]
    if not scored:
        reasons = Counter(g.reason for g in generations if isinstance(g, Unscored))
        if len(reasons) == 1:
            reason = next(iter(reasons))
        else:
            reason = "all generations unscored"
        detail = "; ".join(str(g) for g in generations if isinstance(g, Unscored))
        return Unscored(reason, detail)
    return {m: max(getattr(g, m) for g in scored) for m in METRICS}


def mean_stderr(values: Sequence[float]) -> float:
    """Standard error of the mean with the sample standard deviation (as lm-eval reports it)."""
    n = len(values)
    if n < 2:
        return float("nan")
    mu = sum(values) / n
    var = sum((v - mu) ** 2 for v in values) / (n - 1)
    return math.sqrt(var / n)


def bootstrap_ci(values: Sequence[float], iters: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (seeded, so reports are reproducible)."""
    n = len(values)
    if n == 0:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(iters))
    lo = means[int((1 - level) / 2 * iters)]
    hi = means[min(iters - 1, int((1 + level) / 2 * iters))]
    return (lo, hi)


@dataclass
class MetricSummary:
    mean: float
    stderr: float
    ci95: tuple[float, float]


@dataclass
class TaskSummary:
    n_items: int
    n_scored: int
    unscored_by_reason: dict[str, int]
    metrics: dict[str, MetricSummary] = field(default_factory=dict)

    @property
    def n_unscored(self) -> int:
        return self.n_items - self.n_scored

    def to_dict(self) -> dict:
        out: dict = {"n_items": self.n_items, "n_scored": self.n_scored, "n_unscored": self.n_unscored,
                     "unscored_by_reason": dict(self.unscored_by_reason)}
        for name, m in self.metrics.items():
            out[name] = m.mean
            out[f"{name}_stderr"] = m.stderr
            out[f"{name}_ci95"] = list(m.ci95)
        return out


def summarize(items: Iterable[Mapping[str, float] | Unscored]) -> TaskSummary:
    """Task-level means, standard errors and bootstrap intervals over the scored items."""
    items = list(items)
    scored = [i for i in items if not isinstance(i, Unscored)]
    reasons = Counter(i.reason for i in items if isinstance(i, Unscored))
    summary = TaskSummary(n_items=len(items), n_scored=len(scored), unscored_by_reason=dict(reasons))
    for name in METRICS:
        values = [float(i[name]) for i in scored]
        mean = sum(values) / len(values) if values else float("nan")
        summary.metrics[name] = MetricSummary(mean, mean_stderr(values), bootstrap_ci(values))
    return summary
