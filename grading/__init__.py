"""skillmix.grading: LLM judges for SKILL-MIX (backends, the client layer, cache, cost and
estimates, grading of (item, text) pairs, agreement). Nothing here knows lm-eval: the integration,
``skillmix-grade`` included, is ``skillmix.harness``.

    from skillmix.grading import resolve_judge
    judge = resolve_judge("openai:gpt-4o")          # or None: SKILLMIX_JUDGE, config, key alone
    grades = judge.grade([(item, text), ...])       # list[TextGrade]
    judge.stats.to_dict()

See grading/README.md.
"""

from .backends import Backend, BackendError, Completion, Usage, make_backend
from .cache import ReplyCache
from .cost import Budget, Price, price_for
from .client import CachedCompleter, CallResult, CallStats
from .estimate import CallEstimate
from .judge import Judge, TextGrade, resolve_judge
from .specs import JudgeConfigError, JudgeSettings, JudgeSpec, make_settings, parse_spec

__all__ = [
    "Backend", "BackendError", "Budget", "CachedCompleter", "CallEstimate", "CallResult", "CallStats", "Completion",
    "Judge", "JudgeConfigError", "JudgeSettings", "JudgeSpec", "Price", "ReplyCache", "TextGrade", "Usage",
    "make_backend", "make_settings", "parse_spec", "price_for", "resolve_judge",
]
