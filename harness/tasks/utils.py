"""Pure hooks of the SKILL-MIX lm-eval tasks: docs, prompt, task names and per-doc metrics.

The second turn and the judging happen in a filter of the grading layer
(``skillmix.grading.lmeval``), which hands each doc a JSON verdict; ``process_results``
only reads it.
"""

from __future__ import annotations

import json
import re

from ..prompts import PROMPT_VERSION, first_prompt
from ..protocol import SINGLE_TURN, TWO_TURN
from ..sampling import DEFAULT_N, DEFAULT_SEED, sample_items
from ..scoring import METRICS

# skillmix_<split>[_k<k>] runs the paper's two turns; the same names + "_single" the one-prompt variant.
TASK_NAME_RE = re.compile(r"^skillmix_(train|heldout|all)(?:_k([1-9]))?(_single)?$")


def protocol_of(task_name: str) -> str | None:
    """The protocol a SKILL-MIX task or group name stands for; None for other names."""
    m = TASK_NAME_RE.match(task_name)
    if not m:
        return None
    return SINGLE_TURN if m.group(3) else TWO_TURN


def build_docs(split: str, k: int, n: int = DEFAULT_N, seed: int = DEFAULT_SEED, protocol: str = TWO_TURN) -> list[dict]:
    """The task's docs: one per item, with the protocol's first prompt precomputed."""
    return [
        {**item.to_dict(), "prompt": first_prompt(item, protocol), "protocol": protocol, "prompt_version": PROMPT_VERSION}
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
