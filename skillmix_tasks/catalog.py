"""The skill and topic catalog: loading, validation and the train / held-out splits.

The catalog is data (``data/skills.jsonl``, ``data/topics.jsonl``). Loading checks every
line and fails with an error that names the file, the line and the field.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from .jsonl import iter_objects
from .protocol import SPLITS
from .suggest import did_you_mean

DATA_DIR = Path(__file__).resolve().parent / "data"

# Train skills are the rhetorical and literary ones; every other category is held out.
TRAIN_CATEGORIES = ("rhetorical", "literary")
HELDOUT_CATEGORIES = (
    "reasoning",
    "logical",
    "theory of mind",
    "pragmatics",
    "common sense",
    "physical knowledge",
)
CATEGORIES = TRAIN_CATEGORIES + HELDOUT_CATEGORIES

N_SKILLS, N_TRAIN_SKILLS = 101, 53
N_TOPICS, N_TRAIN_TOPICS = 100, 50


class CatalogError(ValueError):
    """A catalog file is malformed; the message names the file, line and field."""


@dataclass(frozen=True)
class Skill:
    name: str
    category: str
    definition: str
    example: str

    @property
    def split(self) -> str:
        return "train" if self.category in TRAIN_CATEGORIES else "heldout"


@dataclass(frozen=True)
class Topic:
    name: str
    split: str


@dataclass(frozen=True)
class Catalog:
    skills: tuple[Skill, ...]
    topics: tuple[Topic, ...]

    def skill(self, name: str) -> Skill:
        """Look a skill up by name, case-insensitively."""
        found = self._skills_by_name.get(name.strip().lower())
        if found is None:
            raise KeyError(f"unknown skill {name!r}: not in the catalog{did_you_mean(name, (s.name for s in self.skills))}")
        return found

    def topic(self, name: str) -> Topic:
        found = self._topics_by_name.get(name.strip().lower())
        if found is None:
            raise KeyError(f"unknown topic {name!r}: not in the catalog{did_you_mean(name, (t.name for t in self.topics))}")
        return found

    def skills_in(self, split: str) -> tuple[Skill, ...]:
        _check_split(split)
        return tuple(s for s in self.skills if split == "all" or s.split == split)

    def topics_in(self, split: str) -> tuple[Topic, ...]:
        _check_split(split)
        return tuple(t for t in self.topics if split == "all" or t.split == split)

    @functools.cached_property
    def _skills_by_name(self) -> dict[str, Skill]:
        return {s.name.lower(): s for s in self.skills}

    @functools.cached_property
    def _topics_by_name(self) -> dict[str, Topic]:
        return {t.name.lower(): t for t in self.topics}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}{did_you_mean(str(split), SPLITS)}; expected one of {', '.join(SPLITS)}")


def _read_jsonl(path: Path, fields: tuple[str, ...]) -> list[tuple[int, dict]]:
    rows = list(iter_objects(path, CatalogError))
    for lineno, obj in rows:
        for field in fields:
            value = obj.get(field)
            if not isinstance(value, str) or not value.strip():
                raise CatalogError(f"{path}:{lineno}: field {field!r} is missing or empty")
    return rows


def _check_unique(path: Path, rows: list[tuple[int, dict]]) -> None:
    seen: dict[str, int] = {}
    for lineno, obj in rows:
        key = obj["name"].strip().lower()
        if key in seen:
            raise CatalogError(
                f"{path}:{lineno}: field 'name': {obj['name']!r} duplicates line {seen[key]}"
            )
        seen[key] = lineno


def load_skills(path: str | Path | None = None, *, check_counts: bool = True) -> tuple[Skill, ...]:
    path = Path(path) if path else DATA_DIR / "skills.jsonl"
    rows = _read_jsonl(path, ("name", "category", "definition", "example"))
    _check_unique(path, rows)
    skills = []
    for lineno, obj in rows:
        if obj["category"] not in CATEGORIES:
            raise CatalogError(
                f"{path}:{lineno}: field 'category': unknown category {obj['category']!r}; "
                f"expected one of {', '.join(CATEGORIES)}"
            )
        skills.append(Skill(*(obj[f].strip() for f in ("name", "category", "definition", "example"))))
    if check_counts:
        n_train = sum(s.split == "train" for s in skills)
        if len(skills) != N_SKILLS or n_train != N_TRAIN_SKILLS:
            raise CatalogError(
                f"{path}: expected {N_SKILLS} skills ({N_TRAIN_SKILLS} rhetorical + literary), "
                f"found {len(skills)} ({n_train} rhetorical + literary)"
            )
    return tuple(skills)


def load_topics(path: str | Path | None = None, *, check_counts: bool = True) -> tuple[Topic, ...]:
    path = Path(path) if path else DATA_DIR / "topics.jsonl"
    rows = _read_jsonl(path, ("name", "split"))
    _check_unique(path, rows)
    topics = []
    for lineno, obj in rows:
        if obj["split"] not in ("train", "heldout"):
            raise CatalogError(
                f"{path}:{lineno}: field 'split': {obj['split']!r} is not 'train' or 'heldout'"
            )
        topics.append(Topic(obj["name"].strip(), obj["split"]))
    if check_counts:
        n_train = sum(t.split == "train" for t in topics)
        if len(topics) != N_TOPICS or n_train != N_TRAIN_TOPICS:
            raise CatalogError(
                f"{path}: expected {N_TOPICS} topics ({N_TRAIN_TOPICS} train), "
                f"found {len(topics)} ({n_train} train)"
            )
    return tuple(topics)


def load_catalog(
    skills_path: str | Path | None = None,
    topics_path: str | Path | None = None,
    *,
    check_counts: bool = True,
) -> Catalog:
    return Catalog(
        load_skills(skills_path, check_counts=check_counts),
        load_topics(topics_path, check_counts=check_counts),
    )


@functools.lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The packaged catalog, loaded and validated once per process."""
    return load_catalog()
