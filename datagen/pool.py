"""The pools a teacher writes for: which (k skills, topic) items, drawn how, and the :class:`Plan`.

Pools follow the paper: k=1 over all 101 skills and the train topics, k>=2 over train skills and
train topics. The benchmark's own lm-eval items are left out unless the plan says otherwise.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Iterable

from skillmix_tasks.catalog import Catalog, default_catalog
from skillmix_tasks.protocol import DEFAULT_N, DEFAULT_SEED, MAX_K, SPLITS
from skillmix_tasks.sampling import Item, draw_items, sample_items

from .leakage import check_splits

DEFAULT_POOL = {1: 5000, 2: 10000, 3: 10000}  # the paper's pool sizes; other k default to 10000


def default_splits(k: int) -> tuple[str, str]:
    """(skill split, topic split) of the paper's recipe: k=1 all skills, k>=2 train skills; train topics."""
    return ("all" if k == 1 else "train"), "train"


def _pool_rng(k: int, skills_split: str, topics_split: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"skillmix-datagen|skills={skills_split}|topics={topics_split}|k={k}|seed={seed}"
                            .encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def eval_combinations(k: int, catalog: Catalog | None = None) -> set[tuple[frozenset[str], str]]:
    """The (skill set, topic) pairs of the benchmark's own lm-eval items at this k (all splits,
    the default seed and size), so a training pool can leave them out."""
    catalog = catalog or default_catalog()
    out: set[tuple[frozenset[str], str]] = set()
    for split in SPLITS:
        if k <= min(MAX_K, len(catalog.skills_in(split))):
            out.update((frozenset(i.skills), i.topic) for i in sample_items(split, k, DEFAULT_N, DEFAULT_SEED, catalog))
    return out


def _in_space(keys: Iterable[tuple[frozenset[str], str]], k: int, skills: Iterable[str], topics: Iterable[str]):
    skills, topics = set(skills), set(topics)
    return {key for key in keys if key[1] in topics and len(key[0]) == k and key[0] <= skills}


def pool_capacity(k: int, skills_split: str, topics_split: str, *, exclude: Iterable[tuple[frozenset[str], str]] = (),
                  catalog: Catalog | None = None) -> int:
    """The number of distinct (k skills, topic) items a pool can draw, ``exclude`` left out."""
    catalog = catalog or default_catalog()
    skills = [s.name for s in catalog.skills_in(skills_split)]
    topics = [t.name for t in catalog.topics_in(topics_split)]
    return math.comb(len(skills), k) * len(topics) - len(_in_space(exclude, k, skills, topics))


def sample_pool(k: int, n: int, *, skills_split: str, topics_split: str, seed: int = DEFAULT_SEED,
                exclude: Iterable[tuple[frozenset[str], str]] = (), catalog: Catalog | None = None) -> list[Item]:
    """``n`` distinct (k skills, topic) items, skills from ``skills_split`` and topics from
    ``topics_split``, ids ``d-k{k}-{i:05d}``. Same approach as the benchmark's sampler
    (SHA-256-seeded Mersenne Twister over sorted names, rejection of repeats), so a smaller
    pool is a prefix of a larger one."""
    catalog = catalog or default_catalog()
    skills = sorted(s.name for s in catalog.skills_in(skills_split))
    topics = sorted(t.name for t in catalog.topics_in(topics_split))
    if not isinstance(k, int) or k < 1 or k > len(skills):
        raise ValueError(f"k={k!r} is out of range for {skills_split} skills: expected 1..{len(skills)}")
    excluded = _in_space(exclude, k, skills, topics)
    total = math.comb(len(skills), k) * len(topics) - len(excluded)
    if n < 0 or n > total:
        raise ValueError(f"pool of {n} for k={k} is larger than the {total} distinct (skill set, topic) "
                         f"combinations of {skills_split} skills x {topics_split} topics"
                         + (f" (after leaving out {len(excluded)} evaluation items)" if excluded else ""))
    return draw_items(_pool_rng(k, skills_split, topics_split, seed), skills, topics, k, n,
                      lambda i: f"d-k{k}-{i:05d}", "datagen", exclude=excluded)


@dataclass
class Plan:
    """What to generate: per k, the pool's size and where its skills and topics come from."""

    ks: list[int]
    pools: dict[int, int]
    splits: dict[int, tuple[str, str]]  # k -> (skill split, topic split)
    generations: int = 1
    seed: int = DEFAULT_SEED
    allow_heldout: bool = False
    # The benchmark's own lm-eval items are left out (training on them would inflate its train-split
    # scores); --include-eval-items puts them back, and the dataset card says so.
    exclude_eval: bool = True

    def check(self) -> None:
        """Refuse held-out splits unless allowed, before any sampling or call (the items are
        checked again one by one, and once more as each row is written)."""
        for k in self.ks:
            check_splits(k, *self.splits[k], allow=self.allow_heldout)

    def excluded(self, k: int, catalog: Catalog | None = None) -> set[tuple[frozenset[str], str]]:
        return eval_combinations(k, catalog) if self.exclude_eval else set()

    def capacity(self, k: int, catalog: Catalog | None = None) -> int:
        """How many distinct items the k pool can hold (eval items left out where they are)."""
        return pool_capacity(k, *self.splits[k], exclude=self.excluded(k, catalog), catalog=catalog)

    def items(self, k: int, catalog: Catalog | None = None) -> list[Item]:
        skills_split, topics_split = self.splits[k]
        try:
            return sample_pool(k, self.pools[k], skills_split=skills_split, topics_split=topics_split,
                               seed=self.seed, exclude=self.excluded(k, catalog), catalog=catalog)
        except ValueError as e:
            if not self.exclude_eval:
                raise
            raise ValueError(f"{e}; pass a smaller --pool, or --include-eval-items to draw the benchmark's own "
                             f"items too (the dataset card will say so)") from None
