"""The SKILL-MIX protocol's constants, defined once (DESIGN.md §2); everything else imports them.

The lm-eval task template (``lmeval/_default_template_yaml``) cannot import Python, so its copies
of the generation settings are checked against these by tests/test_core_protocol.py.
"""

from __future__ import annotations

# The student protocols: the paper's two turns (write, then improve under the sentence cap) and the
# one-prompt variant (the cap stated up front). Results and samples name the one they used.
TWO_TURN, SINGLE_TURN = "two-turn", "single-turn"
PROTOCOLS = (TWO_TURN, SINGLE_TURN)
# Item splits: train skills x train topics, held-out x held-out, all x all.
SPLITS = ("train", "heldout", "all")
# Per-generation metrics, after the vote (scoring.generation_metrics).
METRICS = ("full_marks", "all_skills", "skills_fraction")
# The k values the tasks cover (skills per item).
MIN_K, MAX_K = 1, 6
K_RANGE = tuple(range(MIN_K, MAX_K + 1))
# Items per (split, k) and the seed they are drawn with.
DEFAULT_N = 100
DEFAULT_SEED = 1234
# Student generation: sampling temperature, new tokens per turn, generations per item (max over them).
GENERATION_TEMPERATURE = 0.7
GENERATION_MAX_TOKENS = 512
GENERATIONS_PER_ITEM = 3
# Independent gradings of each text (majority vote per criterion).
N_GRADINGS = 3
