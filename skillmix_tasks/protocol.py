"""The SKILL-MIX protocol's constants, defined once; everything else imports them.

The lm-eval task template (``harness/tasks/_default_template_yaml``) cannot import Python, so its
copies of the generation settings are checked against these by tests/test_core_protocol.py.
"""

from __future__ import annotations

import re

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


# Task names: skillmix_<split>_k<k> runs the paper's two turns, the same name + "_single" the one-prompt
# variant; skillmix_<split>[_single] are their groups (a row per k and the mean over k).
_TASK_RE = re.compile(r"^skillmix_(train|heldout|all)(?:_k([1-9][0-9]*))?(_single)?$")


def task_name(split: str, k: int | None, protocol: str = TWO_TURN) -> str:
    """The lm-eval task (k given) or group (k None) of a split and protocol."""
    return f"skillmix_{split}" + (f"_k{k}" if k is not None else "") + ("_single" if protocol == SINGLE_TURN else "")


def parse_task_name(name: str) -> tuple[str, int | None, str] | None:
    """(split, k or None for a group, protocol) of a SKILL-MIX task or group name; None for other names."""
    m = _TASK_RE.match(name.strip())
    if not m:
        return None
    return m.group(1), int(m.group(2)) if m.group(2) else None, SINGLE_TURN if m.group(3) else TWO_TURN
