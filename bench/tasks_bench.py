"""Task overhead of the SKILL-MIX lm-eval tasks for 500 docs, judge latency excluded.

Measures what our code adds to an lm-eval run: building the docs (5 tasks x 100 items with
their prompts), the ``judged`` filter's bookkeeping (pairing responses with items, answer
extraction, per-item max, verdict JSON), and ``process_results``. The judge is replaced by a
stub that returns grades computed beforehand, so neither network latency nor reply parsing
(the judge's own work, benchmarked in judge_bench.py) is counted; the parse time of the
same 4,500 replies is reported on its own line for completeness.

The one-prompt docs (no turn 2 to generate); two_turn_bench.py measures the second turn.

Run: python bench/tasks_bench.py        (target: overhead < 1 s for 500 docs)
"""

from __future__ import annotations

import json
import time

import skillmix.harness.tasks.utils as glue
from skillmix.grading.judge import TextGrade
from skillmix.harness.tasks.utils import build_docs, process_results
from skillmix_tasks.prompts import SINGLE_TURN, criteria_for, extract_answer
from skillmix_tasks.sampling import Item
from skillmix_tasks.scoring import parse_grading, score_generation

TASKS = [("heldout", k) for k in (1, 2, 3, 4, 5)]
REPEATS = 3


def table(item: Item) -> str:
    rows = "\n".join(f"| {c.label} | 1 |" for c in criteria_for(item))
    return f"Here's the grading table:\n\n| Criteria | Points Earned |\n|---|---|\n{rows}\n| Total | 9 |\n\nExplanation: ok."


class StubJudge:
    spec = "stub:precomputed"

    def __init__(self, grades: dict):
        self._grades = grades

        class _Stats:
            @staticmethod
            def to_dict():
                return {"texts": len(grades)}

        self.stats = _Stats()

    def grade(self, pairs, progress=True):
        return [self._grades[(item.id, text)] for item, text in pairs]


def main() -> None:
    budget = 1.0
    t0 = time.perf_counter()
    docs = [d for split, k in TASKS for d in build_docs(split, k, 100, protocol=SINGLE_TURN)]
    t_docs = time.perf_counter() - t0
    resps = [[f"Answer: The hive hums {r}. Explanation: it does." for r in range(REPEATS)] for _ in docs]

    # Precompute the judge's output (parsing included) outside the timed region.
    grades, replies = {}, 0
    t0 = time.perf_counter()
    for d, rs in zip(docs, resps):
        item = Item.from_dict(d)
        tab = table(item)
        for r in rs:
            text = extract_answer(r)
            score = score_generation(item, text, [tab] * 3)
            replies += 3
            grades[(item.id, text)] = TextGrade(item, text, score, [tab] * 3, [parse_grading(tab, criteria_for(item))] * 3,
                                                score.points, [False] * 3, StubJudge.spec)
    t_parse = time.perf_counter() - t0

    glue.resolve_judge = lambda metadata: StubJudge(grades)
    t0 = time.perf_counter()
    verdicts = glue.judge_filter(resps, docs)
    t_filter = time.perf_counter() - t0
    t0 = time.perf_counter()
    metrics = [process_results(d, [v]) for d, v in zip(docs, verdicts)]
    t_process = time.perf_counter() - t0
    assert len(metrics) == 500 and all(m["full_marks"] == 1.0 for m in metrics)
    total = t_docs + t_filter + t_process
    print(json.dumps({
        "docs": len(docs), "build_docs_s": round(t_docs, 3), "filter_bookkeeping_s": round(t_filter, 3),
        "process_results_s": round(t_process, 3), "overhead_s": round(total, 3),
        "overhead_vs_1s_budget": round(total / budget, 3),
        "judge_side_parse_and_vote_s (not overhead)": round(t_parse, 3), "replies_parsed": replies,
    }, indent=2))


if __name__ == "__main__":
    main()
