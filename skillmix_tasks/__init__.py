"""skillmix_tasks: the SKILL-MIX benchmark itself, pure (no network, no model).

Catalog data, item sampling, prompts, scoring and metrics; the lm-eval task YAMLs live here
too. Everything else in skillmix (grading, training, leaderboard) builds on these types.
"""

from .catalog import Catalog, CatalogError, Skill, Topic, default_catalog, load_catalog
from .metrics import TaskSummary, item_metrics, summarize
from .prompts import (
    PROMPT_VERSION,
    Criterion,
    criteria_for,
    extract_answer,
    grader_prompt,
    student_single_turn,
    student_turn1,
    student_turn2,
)
from .sampling import Item, sample_items
from .scoring import (
    METRICS,
    GenerationScore,
    TextScore,
    Unscored,
    apply_rules,
    majority_vote,
    parse_grading,
    score_generation,
    score_text,
)
from .sentences import count_sentences, split_sentences

__all__ = [
    "Catalog", "CatalogError", "Skill", "Topic", "default_catalog", "load_catalog",
    "TaskSummary", "item_metrics", "summarize",
    "PROMPT_VERSION", "Criterion", "criteria_for", "extract_answer", "grader_prompt",
    "student_single_turn", "student_turn1", "student_turn2",
    "Item", "sample_items",
    "METRICS", "GenerationScore", "Unscored", "apply_rules", "majority_vote", "parse_grading",
    "score_generation", "score_text", "TextScore",
    "count_sentences", "split_sentences",
]
