"""skillmix.datagen: the paper's training data, D_SKILL-MIX(k), written by a teacher and graded by the
judge (``skillmix-datagen``; see datagen/README.md).

    pool.py          which (k skills, topic) items a pool holds: the recipe's splits, the benchmark's own
                     items left out, capacity, seeded sampling, the Plan
    leakage.py       the held-out rule, once: the generation-time guard and the audit's row check
    conversation.py  the teacher's settings and one two-turn conversation
    row.py           one dataset line: messages, metadata and the judge's grade
    run.py           Datagen: teacher, judge and budget; the run, online or in Batch API rounds; the summary
    estimate.py      the dry run: calls, tokens and cost
    card.py          the dataset card
    audit.py         ``skillmix-datagen audit FILE...``
    cli.py           the command line (``skillmix-datagen``, ``python -m skillmix.datagen``)
"""

from .conversation import TEACHER_MAX_TOKENS, TEACHER_TEMPERATURE, Conversation, two_turn
from .leakage import Finding, HeldOut, LeakageError, check_leakage, leaks
from .pool import Plan, default_splits, eval_combinations, pool_capacity, sample_pool
from .run import Datagen, NothingJudged

__all__ = [
    "Conversation", "Datagen", "Finding", "HeldOut", "LeakageError", "NothingJudged", "Plan", "TEACHER_MAX_TOKENS",
    "TEACHER_TEMPERATURE", "check_leakage", "default_splits", "eval_combinations", "leaks", "pool_capacity",
    "sample_pool", "two_turn",
]
