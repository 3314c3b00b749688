"""``did you mean ...?`` for misspelt names (settings, skills, topics, splits)."""

from __future__ import annotations

import difflib
from typing import Iterable


def _key(name: str) -> str:
    return name.strip().lower().replace("-", " ").replace("_", " ")


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice ``name`` most likely misspells (case, ``-``/``_``/space and small typos forgiven)."""
    choices = list(choices)
    by_key = {_key(c): c for c in choices}
    if _key(name) in by_key:
        return by_key[_key(name)]
    found = difflib.get_close_matches(_key(name), list(by_key), n=1, cutoff=0.6)
    return by_key[found[0]] if found else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    best = closest(name, choices)
    return f" (did you mean {best!r}?)" if best else ""
