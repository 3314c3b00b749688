"""SKILL-MIX(k) items: k distinct skills and one topic, drawn with a fixed seed.

Determinism across runs and machines comes from ``random.Random`` (Mersenne Twister, same
stream on every platform) seeded from a SHA-256 of (split, k, seed), drawing from the
catalog's skills and topics sorted by name, so the file order of the catalog does not matter.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Callable, Iterable

from .catalog import Catalog, default_catalog
from .protocol import DEFAULT_N, DEFAULT_SEED, MAX_K, MIN_K


@dataclass(frozen=True)
class Item:
    """One SKILL-MIX(k) question: the skills to show and the topic to write about."""

    id: str
    split: str
    k: int
    skills: tuple[str, ...]
    topic: str

    def to_dict(self) -> dict:
        return {"id": self.id, "split": self.split, "k": self.k, "skills": list(self.skills), "topic": self.topic}

    @classmethod
    def from_dict(cls, d: dict) -> "Item":
        skills = tuple(d["skills"])
        return cls(id=str(d["id"]), split=d.get("split", "custom"), k=int(d.get("k", len(skills))),
                   skills=skills, topic=d["topic"])


def _rng(split: str, k: int, seed: int) -> random.Random:
    digest = hashlib.sha256(f"skillmix|{split}|k={k}|seed={seed}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def n_combinations(split: str, k: int, catalog: Catalog | None = None) -> int:
    catalog = catalog or default_catalog()
    return math.comb(len(catalog.skills_in(split)), k) * len(catalog.topics_in(split))


def sample_items(
    split: str,
    k: int,
    n: int = DEFAULT_N,
    seed: int = DEFAULT_SEED,
    catalog: Catalog | None = None,
) -> list[Item]:
    """Draw ``n`` distinct (skill set, topic) items for ``split`` and ``k``.

    The first m items of a draw of n are the same as a draw of m (a prefix property), so
    ``--limit`` in lm-eval and a smaller ``n`` select the same questions.
    """
    catalog = catalog or default_catalog()
    skills = sorted(s.name for s in catalog.skills_in(split))  # validates split
    topics = sorted(t.name for t in catalog.topics_in(split))
    if not isinstance(k, int) or k < MIN_K or k > min(MAX_K, len(skills)):
        raise ValueError(
            f"k={k!r} is out of range for split {split!r}: expected {MIN_K}..{min(MAX_K, len(skills))}"
        )
    total = math.comb(len(skills), k) * len(topics)
    if n < 0 or n > total:
        raise ValueError(
            f"asked for {n} items of split {split!r} with k={k}, but only {total} distinct "
            f"(skill set, topic) combinations exist"
        )
    return draw_items(_rng(split, k, seed), skills, topics, k, n, lambda i: f"{split}-k{k}-{i:03d}", split)


def draw_items(rng: random.Random, skills: list[str], topics: list[str], k: int, n: int,
               make_id: Callable[[int], str], split: str, exclude: Iterable[tuple[frozenset[str], str]] = ()) -> list[Item]:
    """``n`` items of k distinct skills and a topic, no (skill set, topic) twice or in ``exclude``.

    Rejection sampling keeps the prefix property; it is only slow when n is close to the
    number of combinations, which only tiny splits allow. Callers check that n is possible.
    """
    seen = set(exclude)
    items: list[Item] = []
    while len(items) < n:
        chosen = tuple(rng.sample(skills, k))
        topic = rng.choice(topics)
        key = (frozenset(chosen), topic)
        if key in seen:
            continue
        seen.add(key)
        items.append(Item(make_id(len(items)), split, k, chosen, topic))
    return items
