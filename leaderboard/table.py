"""Leaderboard rows: one per evaluated model (x revision x protocol x judge), cells per (split, k)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

from skillmix.leaderboard.results import METRICS, SPLITS, Entry, newest, provenance_summary


@dataclass
class Row:
    model: str
    revision: str
    protocol: str
    judge: str
    judge_prompt_version: str
    provenance: str  # one-line summary, "" when the checkpoint carries none
    date: float  # newest run in the row
    cells: dict[tuple[str, int], Entry] = field(default_factory=dict)  # (split, k) -> entry
    run: str = ""  # with --all: which run this row is
    is_baseline: bool = False
    baseline: "Row | None" = None
    paired: dict = field(default_factory=dict)  # (split, k, metric) -> paired.Paired, from the samples

    @property
    def label(self) -> str:
        name = display_name(self.model)
        return f"{name} [{self.run}]" if self.run else name

    @property
    def date_str(self) -> str:
        return _dt.datetime.fromtimestamp(self.date).strftime("%Y-%m-%d %H:%M")

    def value(self, metric: str, split: str, k: int) -> float | None:
        e = self.cells.get((split, k))
        return e.stats[metric].value if e else None

    def delta(self, metric: str, split: str, k: int) -> float | None:
        """Δ to the baseline: paired over the shared items when both sides have samples, else the
        difference of the two means."""
        if self.baseline is None or self.is_baseline:
            return None
        p = self.paired.get((split, k, metric))
        if p is not None:
            return p.delta
        mine, theirs = self.value(metric, split, k), self.baseline.value(metric, split, k)
        return None if mine is None or theirs is None else mine - theirs


def display_name(model: str) -> str:
    """A local checkpoint path shortened to its last two folders; hub ids and API names unchanged."""
    if model.startswith(("/", "~", ".")) or (len(model) > 2 and model[1] == ":"):
        parts = Path(model).parts
        return "…/" + "/".join(parts[-2:]) if len(parts) > 2 else model
    return model


def build_rows(entries: list[Entry], keep_all: bool = False) -> list[Row]:
    """Rows from entries: the newest result per (model, revision, protocol, judge, task) unless keep_all,
    where each results file is a row of its own."""
    chosen = entries if keep_all else newest(entries)
    rows: dict[tuple, Row] = {}
    for e in sorted(chosen, key=lambda e: (e.date, e.file)):
        key = (*e.key, e.file) if keep_all else e.key
        row = rows.get(key)
        if row is None:
            row = rows[key] = Row(e.model, e.revision, e.protocol, e.judge, e.judge_prompt_version,
                                  provenance_summary(e.provenance), e.date,
                                  run=_dt.datetime.fromtimestamp(e.date).strftime("%Y-%m-%d %H:%M:%S") if keep_all else "")
        row.cells[(e.split, e.k)] = e
        row.date = max(row.date, e.date)
    return sorted(rows.values(), key=lambda r: (r.model, r.revision, r.protocol, r.judge, r.date))


def columns(rows: list[Row]) -> dict[str, list[int]]:
    """split -> the ks measured for it by any row (splits without results left out)."""
    ks: dict[str, set[int]] = {}
    for r in rows:
        for split, k in r.cells:
            ks.setdefault(split, set()).add(k)
    return {s: sorted(ks[s]) for s in SPLITS if s in ks}


class BaselineError(ValueError):
    pass


def set_baseline(rows: list[Row], name: str) -> None:
    """Mark the rows of model ``name`` as baselines and point every other row at one of them
    (the same protocol and judge where there is one, so deltas compare like with like)."""
    matches = [r for r in rows if name in (r.model, display_name(r.model), Path(r.model).name, r.label)]
    if not matches:
        known = ", ".join(sorted({r.model for r in rows})) or "none"
        raise BaselineError(f"baseline {name!r} matches no measured model (models: {known})")
    for r in matches:
        r.is_baseline = True
    for r in rows:
        if r.is_baseline:
            continue
        # like with like: same protocol first, then same judge; ties go to the first (sorted) row
        r.baseline = max(matches, key=lambda b: (b.protocol == r.protocol, b.judge == r.judge, -matches.index(b)))


def sort_key(metric: str, split: str, cols: dict[str, list[int]]):
    """Default order: best mean of ``metric`` over the split's ks first (missing cells count as 0)."""
    ks = cols.get(split) or []

    def key(r: Row):
        vals = [r.value(metric, split, k) for k in ks]
        return (-sum(v or 0.0 for v in vals) / max(1, len(vals)), r.label)

    return key


__all__ = ["METRICS", "Row", "build_rows", "columns", "set_baseline", "display_name", "BaselineError", "sort_key"]
