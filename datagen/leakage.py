"""The held-out rule, written once: what of a training item or dataset row is held out.

A training set must not contain held-out topics, nor held-out skills when k >= 2 (the paper's k=1
data covers all 101 skills). :class:`HeldOut` is that rule. It serves the generation-time guard
(:func:`check_splits`: a plan's splits, before any sampling; :func:`leaks` and :func:`check_leakage`:
the pool's items, and each row again as it is written) and the audit of finished files
(:meth:`HeldOut.row`: a row's metadata and the text of its messages).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable

from skillmix_tasks.catalog import Catalog, default_catalog
from skillmix_tasks.prompts import skill_name
from skillmix_tasks.sampling import Item

TOPIC, SKILL = "held-out topic", "held-out skill"


class LeakageError(ValueError):
    """A training pool would contain held-out content and the user did not allow it."""


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    id: str | None
    kind: str  # "held-out topic" or "held-out skill"
    name: str
    where: str  # "metadata" or "text: messages[i]"


def _name_regex(names: Iterable[str]) -> re.Pattern:
    alts = sorted({n for n in names if n}, key=len, reverse=True)  # longest first: "The Silk Road" before "Silk"
    body = "|".join(r"[\s\-]+".join(re.escape(w) for w in n.split()) for n in alts)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)


def _fold(name: str) -> str:
    return re.sub(r"[\s\-]+", " ", name.strip().lower())


class HeldOut:
    """The held-out topics and skills of a catalog, and the rule over them. ``strict`` counts
    held-out skills at k=1 too (the audit's ``--strict``)."""

    def __init__(self, catalog: Catalog | None = None, strict: bool = False):
        catalog = catalog or default_catalog()
        self.strict = strict
        self.topics = {t.name.lower(): t.name for t in catalog.topics_in("heldout")}
        self.skills = {s.name.lower(): s.name for s in catalog.skills_in("heldout")}

    def checks_skills(self, k: int | None) -> bool:
        # Unknown k (a line without metadata) is checked as k >= 2: the cautious reading.
        return self.strict or k is None or int(k) >= 2

    def in_metadata(self, topic: object, skills: Iterable[object], k: int | None) -> list[tuple[str, str]]:
        """(kind, catalog name) of each held-out topic or skill among an item's names."""
        found = []
        if isinstance(topic, str) and topic.strip().lower() in self.topics:
            found.append((TOPIC, self.topics[topic.strip().lower()]))
        if self.checks_skills(k):
            found += [(SKILL, self.skills[s.strip().lower()]) for s in skills
                      if isinstance(s, str) and s.strip().lower() in self.skills]
        return found

    # Compiled on first use: the generation-time guard reads metadata only.
    @cached_property
    def _topic_re(self) -> re.Pattern:
        return _name_regex(self.topics.values())

    @cached_property
    def _skill_by_bare(self) -> dict[str, str]:
        return {_fold(skill_name(s)): s for s in self.skills.values()}

    @cached_property
    def _skill_re(self) -> re.Pattern:  # a skill by its bare name, as the name penalty reads it
        return _name_regex(skill_name(s) for s in self.skills.values())

    def in_text(self, text: str, k: int | None) -> list[tuple[str, str]]:
        """(kind, catalog name) of each held-out name in ``text``, once each: whole words, any case."""
        found: dict[str, str] = {}
        for hit in self._topic_re.finditer(text):
            found.setdefault(self.topics[_fold(hit.group(0))], TOPIC)
        if self.checks_skills(k):
            for hit in self._skill_re.finditer(text):
                found.setdefault(self._skill_by_bare[_fold(hit.group(0))], SKILL)
        return [(kind, name) for name, kind in found.items()]

    def item(self, item: Item) -> list[str]:
        """What of a pool item is held out, as words (the guard's messages)."""
        return [f"{kind} {name!r}" for kind, name in self.in_metadata(item.topic, item.skills, item.k)]

    def row(self, row: dict, file: str = "", line: int = 0) -> list[Finding]:
        """The audit of one dataset line: its metadata, then the text of every message."""
        rid = row.get("id")
        rid = None if rid is None else str(rid)
        skills = row.get("skills") if isinstance(row.get("skills"), list) else []
        k = row.get("k", len(skills) or None)
        out = [Finding(file, line, rid, kind, name, "metadata")
               for kind, name in self.in_metadata(row.get("topic"), skills, k)]
        messages = row.get("messages") if isinstance(row.get("messages"), list) else []
        for i, m in enumerate(messages):
            text = m.get("content") if isinstance(m, dict) else None
            if isinstance(text, str):
                out += [Finding(file, line, rid, kind, name, f"text: messages[{i}]")
                        for kind, name in self.in_text(text, k)]
        return out


_DEFAULT: HeldOut | None = None


def _rule(catalog: Catalog | None) -> HeldOut:
    global _DEFAULT
    if catalog is not None:
        return HeldOut(catalog)
    if _DEFAULT is None:
        _DEFAULT = HeldOut()
    return _DEFAULT


def leaks(item: Item, catalog: Catalog | None = None) -> list[str]:
    """What of the item is held out: any held-out topic; held-out skills when k >= 2."""
    return _rule(catalog).item(item)


def check_splits(k: int, skills_split: str, topics_split: str, allow: bool = False) -> None:
    """Refuse a pool drawn from held-out splits unless ``allow``: before any sampling or call."""
    if allow or (topics_split == "train" and (not _rule(None).checks_skills(k) or skills_split == "train")):
        return
    what = f"held-out topic(s) (--topics {topics_split})" if topics_split != "train" else \
        f"held-out skill(s) at k={k} (--skills {skills_split})"
    raise LeakageError(f"the k={k} pool would draw {what}; a training set must not contain held-out "
                       f"topics, nor held-out skills for k>=2. Pass --allow-heldout to do it anyway "
                       f"(the dataset card will say so).")


def check_leakage(items: Iterable[Item], allow: bool = False, catalog: Catalog | None = None) -> int:
    """The number of items with held-out content; raises :class:`LeakageError` unless ``allow``."""
    rule = _rule(catalog)
    bad = [(it, found) for it in items if (found := rule.item(it))]
    if bad and not allow:
        it, found = bad[0]
        raise LeakageError(f"{len(bad)} pool item(s) contain held-out content (e.g. {it.id}: {', '.join(found)}); "
                           f"a training set must not contain held-out topics, nor held-out skills for k>=2. "
                           f"Pass --allow-heldout to do it anyway (the dataset card will say so).")
    return len(bad)
