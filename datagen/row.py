"""One dataset line: the kept conversation, its grade and where it came from.

The grade is the judge's own (``skillmix.grading.judge.TextGrade.to_dict()``), less what the line
already says (item, answer, judge, prompt version) and this run's cache hits, so a re-run from the
cache writes the same bytes; an unscored grading's ``{"unscored", "detail"}`` sits in
``unscored_gradings`` because Arrow (``datasets``) needs one type per column.
"""

from __future__ import annotations

import re

from skillmix_tasks.prompts import PROMPT_VERSION
from skillmix_tasks.scoring import SCORING_VERSION, GenerationScore

from skillmix.grading.judge import TextGrade

from .conversation import Conversation
from .pool import Plan

# TextGrade.to_dict() keys the row holds at its top level (``text`` is ``answer``), or that are
# about this run rather than the grade (``from_cache``).
_NOT_IN_GRADES = frozenset({"id", "split", "k", "skills", "topic", "text", "judge", "prompt_version", "scoring_version",
                            "from_cache"})


def answer_key(text: str) -> str:
    """An answer as duplicates are told apart: spaces collapsed, any case."""
    return re.sub(r"\s+", " ", text).strip().casefold()


def row_grade(grade: TextGrade) -> dict:
    """The judge's grade dict as a row stores it: points or null per grading, the unscored apart.
    A judge's length point is None where it gave no length row (code decides that point)."""
    out = {}
    for key, value in grade.to_dict().items():
        if key == "gradings":
            out[key] = [None if isinstance(g, dict) else g for g in value]
            out["unscored_gradings"] = [g if isinstance(g, dict) else None for g in value]
        elif key not in _NOT_IN_GRADES:
            out[key] = value
    return out


def make_row(conv: Conversation, grade: TextGrade, plan: Plan, teacher: str) -> dict:
    """One dataset line: chat messages (what the trainer reads) plus everything behind the grade."""
    item = conv.item
    assert isinstance(grade.score, GenerationScore)
    skills_split, topics_split = plan.splits[item.k]
    return {
        "id": item.id if plan.generations == 1 else f"{item.id}-g{conv.index}",
        "item_id": item.id, "generation": conv.index, "k": item.k, "skills": list(item.skills),
        "topic": item.topic, "messages": [{"role": m["role"], "content": m["content"]} for m in conv.messages],
        "answer": conv.answer, "grades": row_grade(grade),
        "teacher": teacher, "judge": grade.judge, "prompt_version": PROMPT_VERSION, "scoring_version": SCORING_VERSION,
        "skill_split": skills_split, "topic_split": topics_split, "seed": plan.seed,
        "heldout_allowed": plan.allow_heldout, "eval_items_excluded": plan.exclude_eval,
    }
