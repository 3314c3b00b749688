"""Pure hooks of the SKILL-MIX lm-eval tasks: docs, prompt, and per-doc metrics.

The judging itself happens in a filter of the grading layer (``skillmix.grading.lmeval``),
which hands each doc a JSON verdict; ``process_results`` only reads it.
"""

from __future__ import annotations

import json

from ..prompts import PROMPT_VERSION, student_single_turn
from ..sampling import DEFAULT_N, DEFAULT_SEED, sample_items
from ..scoring import METRICS


def build_docs(split: str, k: int, n: int = DEFAULT_N, seed: int = DEFAULT_SEED) -> list[dict]:
    """The task's docs: one per item, with its single-turn prompt precomputed."""
    return [
        {**item.to_dict(), "prompt": student_single_turn(item), "prompt_version": PROMPT_VERSION}
        for item in sample_items(split, int(k), int(n), int(seed))
    ]


def doc_to_text(doc: dict) -> str:
    return doc["prompt"]


def process_results(doc: dict, results: list) -> dict:
    """Metrics of one item from the judge filter's verdict.

    An unscored item reports only ``unscored: 1``, so it is left out of the three means
    (lm-eval aggregates each metric over the docs that produced it) instead of counting as 0.
    """
    verdict = json.loads(results[0])
    scores = verdict.get("scores")
    if not scores:
        return {"unscored": 1}
    return {**{m: float(scores[m]) for m in METRICS}, "unscored": 0}


def count(values: list) -> int:
    """Aggregation for ``unscored``: how many items had no score."""
    return int(sum(values))
