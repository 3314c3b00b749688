"""Paired comparisons with the baseline: Δ over the items both rows scored, with a paired bootstrap interval.

Every model is graded on the same items (same split, k and seed), so the difference of the two
means is estimated from per-item differences, which is much tighter than comparing two intervals.
The interval is scipy's ``bootstrap(paired=True)`` with the percentile method (robust when every
difference is equal, where BCa is undefined), 95%, a fixed seed; the same interval is used in
leaderboard.md, leaderboard.csv, the page and the Δ plots. Significant = the interval excludes 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skillmix.leaderboard.results import METRICS
from skillmix.leaderboard.table import Row

N_RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 0
METHOD = "percentile"


@dataclass(frozen=True)
class Paired:
    delta: float  # mean of (row - baseline) over the shared scored items
    lo: float | None  # interval bounds (None with fewer than 2 shared items)
    hi: float | None
    n: int  # shared scored items

    @property
    def significant(self) -> bool:
        return self.lo is not None and (self.lo > 0 or self.hi < 0)


def _diff_mean(x, y, axis=-1):
    return np.mean(x - y, axis=axis)


def paired_intervals(x: np.ndarray, y: np.ndarray, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Paired bootstrap intervals of mean(x - y) along the last axis, for every leading row at once."""
    from scipy import stats  # a second to import: only when there is something to compare

    # float32 and small batches: the resampled copies (rows x batch x items) stay in cache; 4x faster
    # than float64 in batches of 200 for 1,000 cells of 100 items, the same intervals to 1e-6
    res = stats.bootstrap((x.astype(np.float32), y.astype(np.float32)), _diff_mean, paired=True, vectorized=True,
                          axis=-1, method=METHOD, n_resamples=N_RESAMPLES, confidence_level=CONFIDENCE, batch=25,
                          random_state=np.random.default_rng(seed))
    return np.atleast_1d(res.confidence_interval.low), np.atleast_1d(res.confidence_interval.high)


def warm_up(rows: list[Row]) -> None:
    """Import scipy.stats (about a second) ahead, while the workers still read the samples, when
    there is a baseline to compare with."""
    if any(r.baseline is not None and not r.is_baseline for r in rows):
        from scipy import stats  # noqa: F401


def compare(rows: list[Row]) -> None:
    """Fill ``row.paired[(split, k, metric)]`` for every row that has a baseline and samples on both sides."""
    jobs: dict[int, list] = {}  # shared n -> [(row, key, x, y)]; one bootstrap call per n
    for r in rows:
        b = r.baseline
        if b is None or r.is_baseline:
            continue
        for (split, k), e in r.cells.items():
            be = b.cells.get((split, k))
            if not e.items or be is None or not be.items:
                continue
            mine = {i.id: i.scores for i in e.items if i.scores}
            theirs = {i.id: i.scores for i in be.items if i.scores}
            for m in METRICS:
                shared = [i for i in mine if i in theirs and m in mine[i] and m in theirs[i]]
                if not shared:
                    continue
                x = np.array([mine[i][m] for i in shared], dtype=float)
                y = np.array([theirs[i][m] for i in shared], dtype=float)
                jobs.setdefault(len(shared), []).append((r, (split, k, m), x, y))
    for n, group in jobs.items():
        xs = np.stack([g[2] for g in group])
        ys = np.stack([g[3] for g in group])
        deltas = (xs - ys).mean(axis=1)
        if n < 2:
            lo = hi = [None] * len(group)
        else:
            lo, hi = paired_intervals(xs, ys)
        for (r, key, _, _), d, a, c in zip(group, deltas, lo, hi):
            r.paired[key] = Paired(float(d), None if a is None else float(a), None if c is None else float(c), n)
