"""How much judges agree: between judges, within a judge, and with the sentence counter.

All comparisons are on the judges' own majority-voted points (before the programmatic rules,
which would make every judge's length point identical). Criteria are pooled by kind:
``skill`` (all k skill rows), ``topic``, ``sense``, ``length``.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Mapping, Sequence

from skillmix_tasks.scoring import Unscored, length_point

from .judge import TextGrade, judge_length_point

KINDS = ("skill", "topic", "sense", "length")


def cohen_kappa(a: Sequence[int], b: Sequence[int]) -> float | None:
    """Cohen's kappa of two raters' binary labels; None with no data. When both raters
    give one constant label kappa is undefined (0/0): reported as 1.0 if they agree."""
    n = len(a)
    if n == 0:
        return None
    po = sum(x == y for x, y in zip(a, b)) / n
    pa, pb = sum(a) / n, sum(b) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    if pe >= 1.0:
        return 1.0 if po == 1.0 else None
    return (po - pe) / (1 - pe)


def _by_kind(k: int, points: Sequence[int]) -> dict[str, list[int]]:
    return {"skill": list(points[:k]), "topic": [points[k]], "sense": [points[k + 1]], "length": [points[k + 2]]}


def _pair_stats(a: list[int | None], b: list[int | None]) -> dict:
    # A judge may leave out the length row (its point is None): compare where both gave one.
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    a, b = [x for x, _ in pairs], [y for _, y in pairs]  # type: ignore[assignment]
    n = len(a)
    return {"n": n, "percent_agreement": None if not n else round(sum(x == y for x, y in zip(a, b)) / n, 4),
            "kappa": None if (kp := cohen_kappa(a, b)) is None else round(kp, 4)}


def between_judges(a: Sequence[TextGrade], b: Sequence[TextGrade]) -> dict:
    """Per-criterion-kind agreement of two judges over the same texts (both voted)."""
    if len(a) != len(b):
        raise ValueError("judges graded different numbers of texts")
    labels: dict[str, tuple[list[int], list[int]]] = {kind: ([], []) for kind in KINDS + ("all",)}
    for ga, gb in zip(a, b):
        if ga.text != gb.text or ga.item.id != gb.item.id:
            raise ValueError(f"text mismatch at item {ga.item.id}: agreement needs the same texts in the same order")
        if isinstance(ga.voted, Unscored) or isinstance(gb.voted, Unscored):
            continue
        ka, kb = _by_kind(ga.item.k, ga.voted), _by_kind(gb.item.k, gb.voted)
        for kind in KINDS:
            labels[kind][0].extend(ka[kind]); labels[kind][1].extend(kb[kind])
            labels["all"][0].extend(ka[kind]); labels["all"][1].extend(kb[kind])
    return {kind: _pair_stats(*labels[kind]) for kind in labels}


def self_consistency(grades: Sequence[TextGrade]) -> dict:
    """Within one judge: how often its independent gradings of a text agree, per kind
    (mean pairwise agreement over valid gradings, and the share of criteria all agree on)."""
    pairs: dict[str, list[int]] = defaultdict(list)
    unanimous: dict[str, list[int]] = defaultdict(list)
    for g in grades:
        valid = [x for x in g.gradings if not isinstance(x, Unscored)]
        if len(valid) < 2:
            continue
        per = [_by_kind(g.item.k, x) for x in valid]
        for kind in KINDS:
            for col in zip(*(p[kind] for p in per)):
                col = tuple(x for x in col if x is not None)
                if len(col) < 2:
                    continue
                unanimous[kind].append(int(len(set(col)) == 1))
                pairs[kind].extend(int(x == y) for x, y in itertools.combinations(col, 2))
    return {kind: {"n": len(unanimous[kind]),
                   "pairwise_agreement": round(sum(pairs[kind]) / len(pairs[kind]), 4) if pairs[kind] else None,
                   "unanimous": round(sum(unanimous[kind]) / len(unanimous[kind]), 4) if unanimous[kind] else None}
            for kind in KINDS}


def length_vs_counter(grades: Sequence[TextGrade]) -> dict:
    """The judge's voted length point against the programmatic sentence count."""
    judge, counter = [], []
    for g in grades:
        point = judge_length_point(g.voted, g.item.k)
        if point is None:
            continue
        judge.append(point)
        counter.append(length_point(g.item, g.text))
    return _pair_stats(judge, counter)


def agreement_report(results: Mapping[str, Sequence[TextGrade]]) -> dict:
    """Everything for several judges' grades of the same texts (``{spec: grades}``)."""
    specs = list(results)
    return {
        "between_judges": {f"{x} vs {y}": between_judges(results[x], results[y])
                           for x, y in itertools.combinations(specs, 2)},
        "self_consistency": {s: self_consistency(results[s]) for s in specs},
        "length_vs_sentence_count": {s: length_vs_counter(results[s]) for s in specs},
    }
