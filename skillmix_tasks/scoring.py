"""From grader replies to points: parsing, the programmatic rules, and the majority vote.

A grading is either a tuple of 0/1 points, one per criterion in ``criteria_for`` order
(skills, topic, sense, length), or :class:`Unscored` with a reason. Nothing that cannot be
read completely is ever turned into points.

Rounding: a criterion counts as met only when the judge gives it the full point. Partial
credit (``0.5``, ``1/2``) counts as not met, because the rubric asks whether the text
*fully* meets the criterion. Values outside [0, 1] make the grading unscored.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Sequence, Union

from .prompts import Criterion, criteria_for, sentence_cap, skill_name
from .sampling import Item
from .sentences import count_sentences


@dataclass(frozen=True)
class Unscored:
    """A grading (or text, or item) that has no score, and why.

    ``reason`` is a short category that summaries count by (e.g. ``missing criteria``,
    ``api error``, ``budget``); ``detail`` says exactly what happened.
    """

    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


Points = tuple[int, ...]
Grading = Union[Points, Unscored]


_MARKUP_RE = re.compile(r"[*_`#>\"\u201c\u201d]")
_PUNCT_RE = re.compile(r"[^\w\s']")
_QUOTE_RE = re.compile(r"(?<!\w)'|'(?!\w)")  # quotes, but not apostrophes


@functools.lru_cache(maxsize=4096)  # criteria and skill names recur in every row
def _norm(text: str) -> str:
    """Lower case, markdown and punctuation removed, hyphens as spaces, spaces collapsed."""
    text = text.lower().replace("\u2019", "'")
    text = _MARKUP_RE.sub(" ", text)
    text = _PUNCT_RE.sub(" ", text.replace("-", " "))
    text = _QUOTE_RE.sub(" ", text)
    return " ".join(text.split())


# Words of the rubric's phrasing that say nothing about which skill a row is about.
_RUBRIC_WORDS = frozenset(
    "correctly correct illustrates illustrate illustrated illustration of the a an skill uses "
    "use demonstrates demonstrate shows show".split()
)


def _fuzzy_skill_match(text: str, criteria: Sequence[Criterion], candidates: Sequence[int]) -> int | None:
    """For a row whose text names a skill loosely ("complex/loaded question"): the unique
    candidate skill whose name contains most of the row's words (at least half)."""
    words = set(_norm(text).split()) - _RUBRIC_WORDS
    if not words:
        return None
    scores = {}
    for i in candidates:
        if criteria[i].kind == "skill":
            overlap = len(words & set(_norm(criteria[i].subject).split()))
            if overlap and overlap / len(words) >= 0.5:
                scores[i] = overlap / len(words)
    if not scores:
        return None
    best = max(scores.values())
    winners = [i for i, v in scores.items() if v == best]
    return winners[0] if len(winners) == 1 else None


@functools.lru_cache(maxsize=1024)
def _keys(c: Criterion) -> tuple[str, ...]:
    """Phrases whose presence in a row's text identifies criterion ``c``."""
    if c.kind == "skill":
        return tuple(k for k in dict.fromkeys((_norm(c.subject), _norm(skill_name(c.subject)))) if k)
    if c.kind == "topic":
        return (_norm(c.subject), "pertains to", "pertains", "on topic", "relevant to")
    if c.kind == "sense":
        return ("makes sense", "make sense", "coherent", "sense")
    return ("at most", "sentences", "sentence", "length")


@functools.lru_cache(maxsize=1024)
def _padded_keys(c: Criterion) -> tuple[str, ...]:
    """``_keys(c)`` as " key " (whole-word search), longest first."""
    return tuple(f" {k} " for k in sorted(_keys(c), key=len, reverse=True))


def match_criterion(text: str, criteria: Sequence[Criterion],
                    keys: Sequence[tuple[str, ...]] | None = None) -> int | None:
    """Index of the criterion a row text refers to: the one with the longest key found.

    Keys are matched as whole words. Longest-wins lets "Correctly illustrates common sense
    reasoning" map to that skill rather than to "Text makes sense". A tie is no match.
    ``keys``: ``_padded_keys`` of each criterion, when the caller has them already.
    """
    norm = f" {_norm(text)} "
    keys = keys if keys is not None else [_padded_keys(c) for c in criteria]
    best, best_len, tied = None, 0, False
    for i, ck in enumerate(keys):
        for k in ck:  # longest first: the first found is this criterion's match
            if k in norm:
                if len(k) > best_len:
                    best, best_len, tied = i, len(k), False
                elif len(k) == best_len:
                    tied = True
                break
    return None if tied else best


_VALUE_RE = re.compile(
    r"^\s*(?P<num>\d+(?:\.\d+)?)\s*(?:/\s*(?P<den>\d+(?:\.\d+)?))?\s*(?:points?|pts?)?\s*\.?\s*$"
)


_CELL_MARKUP_RE = re.compile(r"[*_`\"'\u201c\u201d\u2018\u2019]")


def parse_value(cell: str) -> float | None:
    """A points cell as a number: ``1``, ``**1**``, ``"0"``, ``1/1``, ``1 point``, ``0.5``."""
    cleaned = _CELL_MARKUP_RE.sub("", cell).strip().lower()
    m = _VALUE_RE.match(cleaned)
    if not m:
        return None
    num = float(m.group("num"))
    den = float(m.group("den")) if m.group("den") else 1.0
    return num / den if den else None


def _to_point(value: float) -> int | None:
    if value < 0 or value > 1:
        return None
    return 1 if value >= 1 else 0


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [c.strip() for c in line.split("|")]


_SEPARATOR_RE = re.compile(r"\s*:?[\s-]*-{2,}[\s-]*:?\s*")


def _is_separator(cells: list[str]) -> bool:
    return any(cells) and all(_SEPARATOR_RE.fullmatch(c) for c in cells if c)


@dataclass
class _Rows:
    values: dict[int, list[float]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, index: int, value: float) -> None:
        self.values.setdefault(index, []).append(value)


def _table_rows(reply: str, criteria: Sequence[Criterion]) -> _Rows:
    rows = _Rows()
    keys = [_padded_keys(c) for c in criteria]
    unmatched: list[tuple[str, float]] = []
    label_col, points_col = 0, None
    for line in reply.splitlines():
        if "|" not in line:
            continue
        cells = _cells(line)
        if len(cells) < 2 or _is_separator(cells):
            continue
        lowered = [_norm(c) for c in cells]
        if any(c in ("criteria", "criterion") for c in lowered) and any("point" in c or "score" in c for c in lowered):
            label_col = next(i for i, c in enumerate(lowered) if c in ("criteria", "criterion"))
            earned = [i for i, c in enumerate(lowered) if "earned" in c or "awarded" in c]
            scored = [i for i, c in enumerate(lowered) if "point" in c or "score" in c]
            points_col = (earned or scored)[0]
            continue
        label = cells[label_col] if label_col < len(cells) else ""
        if "total" in _norm(label).split():
            continue
        if points_col is not None and points_col < len(cells):
            value = parse_value(cells[points_col])
        else:  # no header: the last cell that reads as a number
            value = next((v for v in (parse_value(c) for c in reversed(cells[1:])) if v is not None), None)
        index = match_criterion(label, criteria, keys)
        if index is None:
            if value is not None:
                unmatched.append((label, value))
            continue
        if value is None:
            rows.problems.append(f"unreadable points in row {label.strip()!r}")
            continue
        rows.add(index, value)
    # Rows that name a skill loosely can only take a skill that no row has named exactly.
    for label, value in unmatched:
        free = [i for i in range(len(criteria)) if i not in rows.values]
        index = _fuzzy_skill_match(label, criteria, free)
        if index is not None:
            rows.add(index, value)
    return rows


_POINT_EARNED_RE = re.compile(
    r"points?\s+(?:earned|awarded)(?P<for>\s+for\s+[^:\n]{1,200})?\s*[:=]\s*['\"*]*\s*(?P<val>\d+(?:\.\d+)?(?:\s*/\s*\d+)?)",
    re.IGNORECASE,
)


def _point_earned_rows(reply: str, criteria: Sequence[Criterion]) -> _Rows:
    """Replies in the "Point earned: 1" style: each marker scores the block before it."""
    rows = _Rows()
    start = 0
    for m in _POINT_EARNED_RE.finditer(reply):
        label_text = m.group("for") or reply[start: m.start()]
        start = m.end()
        index = _first_mentioned(label_text, criteria)
        if index is None:
            rows.problems.append("a 'Point earned' line names no criterion")
            continue
        value = parse_value(m.group("val"))
        if value is not None:
            rows.add(index, value)
    return rows


def _first_mentioned(text: str, criteria: Sequence[Criterion]) -> int | None:
    """The criterion named earliest in a block of prose (its heading, in practice)."""
    norm = f" {_norm(text)} "
    best, best_pos, best_len = None, len(norm) + 1, 0
    for i, c in enumerate(criteria):
        for key in _keys(c):
            if c.kind != "skill" and key in ("sense", "sentence", "sentences", "length", "pertains"):
                continue  # too common in prose to identify a block
            pos = norm.find(f" {key} ")
            if pos >= 0 and (pos < best_pos or (pos == best_pos and len(key) > best_len)):
                best, best_pos, best_len = i, pos, len(key)
    return best


def parse_grading(reply: str, criteria: Sequence[Criterion]) -> Grading:
    """Read a grader reply into one 0/1 point per criterion, or :class:`Unscored`.

    Rows are mapped to criteria by their text, not their position; total rows are ignored;
    a table is preferred, with "Point earned: X" prose as the fallback.
    """
    if not reply or not reply.strip():
        return Unscored("empty reply")
    rows = _table_rows(reply, criteria)
    if not rows.values:
        rows = _point_earned_rows(reply, criteria)
    if not rows.values:
        return Unscored("no grading table", "no table rows or 'Point earned' lines name a criterion")
    points = []
    for i, c in enumerate(criteria):
        values = rows.values.get(i)
        if not values:
            missing = [criteria[j].label for j in range(len(criteria)) if not rows.values.get(j)]
            detail = f" ({rows.problems[0]})" if rows.problems else ""
            return Unscored("missing criteria", f"no row for: {'; '.join(missing)}{detail}")
        converted = {_to_point(v) for v in values}
        if None in converted:
            return Unscored("points out of range", f"{c.label!r}: {values}")
        if len(converted) > 1:
            return Unscored("conflicting rows", f"{c.label!r}: {values}")
        points.append(converted.pop())
    return tuple(points)


def names_skill(text: str, skill: str) -> bool:
    """True if the text names the skill (its bare name as whole words, any case, - or space)."""
    words = skill_name(skill).split()
    if not words:
        return False
    pattern = r"[\s\-]+".join(re.escape(w) for w in words)
    return re.search(rf"(?<!\w){pattern}(?!\w)", text, re.IGNORECASE) is not None


def apply_rules(item: Item, text: str, points: Points) -> Points:
    """The programmatic rules on top of the judge's points.

    The length point is the sentence count (<= max(1, k-1)), not the judge's; a skill named
    in the text scores 0 (the name penalty).
    """
    k = item.k
    skill_points = [0 if names_skill(text, s) else p for s, p in zip(item.skills, points[:k])]
    topic, sense = points[k], points[k + 1]
    length = int(count_sentences(text) <= sentence_cap(k))
    return (*skill_points, topic, sense, length)


def majority_vote(gradings: Sequence[Grading], min_valid: int | None = None) -> Grading:
    """Per-criterion strict majority over the valid gradings of one text.

    Unscored gradings are left out; fewer than ``min_valid`` valid gradings (default two, or
    one when only one grading was asked for) leaves the text unscored. A tie (possible with
    two or four valid gradings) does not award the point.
    """
    if min_valid is None:
        min_valid = min(2, len(gradings))
    valid = [g for g in gradings if not isinstance(g, Unscored)]
    if not valid or len(valid) < min_valid:
        reasons = sorted({str(g) for g in gradings if isinstance(g, Unscored)})
        return Unscored("too few valid gradings",
                        f"{len(valid)} of {len(gradings)} valid, {max(min_valid, 1)} needed"
                        + (f"; {' | '.join(reasons)}" if reasons else ""))
    lengths = {len(g) for g in valid}
    if len(lengths) != 1:
        raise ValueError(f"gradings have different lengths: {sorted(lengths)}")
    return tuple(int(2 * sum(col) > len(valid)) for col in zip(*valid))


@dataclass(frozen=True)
class GenerationScore:
    """The three SKILL-MIX metrics of one generation, with the points behind them."""

    points: Points
    full_marks: float
    all_skills: float
    skills_fraction: float


METRICS = ("full_marks", "all_skills", "skills_fraction")


def generation_metrics(k: int, points: Points) -> GenerationScore:
    skills, others = points[:k], points[k:]
    if len(skills) != k or len(others) != 3:
        raise ValueError(f"expected {k + 3} points for k={k}, got {len(points)}")
    all_skill_points = all(skills)
    return GenerationScore(
        points=tuple(points),
        full_marks=float(all(points)),
        all_skills=float(all_skill_points and sum(others) >= 2),
        skills_fraction=sum(skills) / k if all(others) else 0.0,
    )


def score_generation(item: Item, text: str, replies: Sequence[str]) -> GenerationScore | Unscored:
    """All of it for one generation: parse each reply, vote, apply the rules, compute metrics."""
    criteria = criteria_for(item)
    voted = majority_vote([parse_grading(r, criteria) for r in replies])
    if isinstance(voted, Unscored):
        return voted
    return generation_metrics(item.k, apply_rules(item, text, voted))
