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

from .protocol import METRICS
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


Points = tuple[int, ...]  # after the rules every point is 0 or 1
# A judge's points: the length point is None where the judge gave no length row.
Grading = Union[tuple[Union[int, None], ...], Unscored]


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
    unidentified: str | None = None  # why the points column of a table could not be told apart

    def add(self, index: int, value: float) -> None:
        self.values.setdefault(index, []).append(value)


# Header cells: the row labels, the points a row earned, and the most it could earn.
_LABEL_HEADERS = frozenset({"criteria", "criterion", "criterias", "rubric", "rubric item", "rubric items",
                            "requirement", "requirements", "item", "items", "criteria item"})
_EARNED_WORDS = frozenset("earned awarded given received achieved scored obtained".split())
_POINTS_WORDS = frozenset("points point pts pt score scores grade grades mark marks result".split())
_MAX_WORDS = frozenset("possible max maximum available out worth allotted allocated".split())


def _points_column(header: list[str], label_col: int) -> tuple[int | None, str]:
    """Which header cell holds the earned points: one that says earned, else the only points-like
    cell that is not a maximum. ``(None, why)`` when that is not one column."""
    words = [set(c.split()) for c in header]
    cols = [i for i in range(len(header)) if i != label_col]
    earned = [i for i in cols if words[i] & _EARNED_WORDS and not words[i] & _MAX_WORDS]
    if len(earned) == 1:
        return earned[0], ""
    plain = [i for i in cols if words[i] & _POINTS_WORDS and not words[i] & _MAX_WORDS]
    if not earned and len(plain) == 1:
        return plain[0], ""
    cells = " | ".join(header)
    return None, f"header '{cells}' names {len(earned) or len(plain)} candidate points-earned columns, not one"


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
        label_at = next((i for i, c in enumerate(lowered) if c in _LABEL_HEADERS), None)
        if label_at is not None and all(parse_value(c) is None for c in cells):
            label_col = label_at
            points_col, why = _points_column(lowered, label_col)
            if points_col is None:
                rows.unidentified = why
            continue
        if rows.unidentified:
            continue
        if points_col is not None:
            label = cells[label_col] if label_col < len(cells) else ""
            value = parse_value(cells[points_col]) if points_col < len(cells) else None
            numbers = []
        else:  # no header: the first cell that is not a number is the label; one number is the points
            label = next((c for c in cells if parse_value(c) is None), "")
            numbers = [v for v in (parse_value(c) for c in cells) if v is not None]
            value = numbers[0] if len(numbers) == 1 else None
        if "total" in _norm(label).split():
            continue
        index = match_criterion(label, criteria, keys)
        if len(numbers) > 1 and index is not None:
            rows.unidentified = f"row {label.strip()!r} has {len(numbers)} numbers and the table no header"
            continue
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
    a table is preferred, with "Point earned: X" prose as the fallback. In a table with several
    number columns the points are read from the one its header calls earned (``Points Earned``,
    ``Score``, a lone ``Points`` beside ``Max Points``); a table where that cannot be told is
    unscored. The length row may be missing (its point is ``None``): code decides it anyway.
    """
    if not reply or not reply.strip():
        return Unscored("empty reply")
    rows = _table_rows(reply, criteria)
    if rows.unidentified:
        return Unscored("unidentified points column", rows.unidentified)
    if not rows.values:
        rows = _point_earned_rows(reply, criteria)
    if not rows.values:
        return Unscored("no grading table", "no table rows or 'Point earned' lines name a criterion")
    points: list[int | None] = []
    for i, c in enumerate(criteria):
        values = rows.values.get(i)
        if not values and c.kind == "length":
            points.append(None)  # optional: the length point is computed by code (apply_rules)
            continue
        if not values:
            missing = [criteria[j].label for j in range(len(criteria))
                       if not rows.values.get(j) and criteria[j].kind != "length"]
            detail = f" ({rows.problems[0]})" if rows.problems else ""
            return Unscored("missing criteria", f"no row for: {'; '.join(missing)}{detail}")
        converted = {_to_point(v) for v in values}
        if None in converted:
            return Unscored("points out of range", f"{c.label!r}: {values}")
        if len(converted) > 1:
            return Unscored("conflicting rows", f"{c.label!r}: {values}")
        points.append(converted.pop())
    return tuple(points)


def _inflected(word: str) -> str:
    """A regex for ``word`` and its noun inflections: plural, possessive ("puns", "fallacies",
    "biases", "metaphor's", "herrings'")."""
    w = re.escape(word)
    forms = [rf"{w}(?:s|es)?"]
    if len(word) > 2 and word[-1] in "yY" and word[-2].lower() not in "aeiou":
        forms.append(rf"{re.escape(word[:-1])}ies")
    return rf"(?:{'|'.join(forms)})(?:['\u2019]s?)?"


def names_skill(text: str, skill: str) -> bool:
    """True if the text names the skill: its bare name (before any "(" gloss) as whole words, any
    case, words joined by spaces or hyphens, each word also in its plural or possessive form. A
    word that only contains the name ("punishment" for *pun*) does not count."""
    words = skill_name(skill).split()
    if not words:
        return False
    pattern = r"[\s\-]+".join(_inflected(w) for w in words)
    return re.search(rf"(?<!\w){pattern}(?!\w)", text, re.IGNORECASE) is not None


def apply_rules(item: Item, text: str, points: Points) -> Points:
    """The programmatic rules on top of the judge's points.

    The length point is the sentence count (<= max(1, k-1)), not the judge's; a skill named
    in the text scores 0 (the name penalty).
    """
    k = item.k
    skill_points = [0 if names_skill(text, s) else p for s, p in zip(item.skills, points[:k])]
    topic, sense = points[k], points[k + 1]
    return (*skill_points, topic, sense, length_point(item, text))


def length_point(item: Item, text: str) -> int:
    """The programmatic length point: 1 if the text has at most max(1, k - 1) sentences."""
    return int(count_sentences(text) <= sentence_cap(item.k))


def majority_vote(gradings: Sequence[Grading], min_valid: int | None = None) -> Grading:
    """Per-criterion strict majority over the valid gradings of one text.

    Unscored gradings are left out; fewer than ``min_valid`` valid gradings (default two, or
    one when only one grading was asked for) leaves the text unscored. A tie (possible with
    two or four valid gradings) does not award the point. A point no grading gave (the optional
    length row) stays ``None``.
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
    return tuple(_vote([v for v in col if v is not None]) for col in zip(*valid))


def _vote(values: Sequence[int]) -> int | None:
    return int(2 * sum(values) > len(values)) if values else None


@dataclass(frozen=True)
class GenerationScore:
    """The three SKILL-MIX metrics of one generation, with the points behind them.

    ``reason`` says why a generation scored 0 without a judge (an empty answer)."""

    points: Points
    full_marks: float
    all_skills: float
    skills_fraction: float
    reason: str | None = None



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


def is_blank(text: str) -> bool:
    """An answer with nothing to grade: empty, whitespace, or only punctuation and markup."""
    return re.search(r"\w", text or "") is None


@dataclass(frozen=True)
class TextScore:
    """One text through the whole scoring path: each grading, the judge's vote, the score."""

    gradings: list[Grading]  # per reply: points in criteria_for order, or Unscored
    voted: Grading  # the judge's majority-voted points, before the programmatic rules
    score: GenerationScore | Unscored


EMPTY_ANSWER = "empty answer"


def score_text(item: Item, text: str, replies: Sequence[str | Unscored]) -> TextScore:
    """The one scoring path from (item, text, grader replies) to a score: parse each reply, vote
    per criterion, apply the programmatic rules, compute the metrics.

    ``replies`` may hold :class:`Unscored` for calls that failed; when every grading failed for
    one shared cause (all "budget", all "timeout") that is the text's reason; mixed causes stay
    generic. A blank answer is a scored 0 with the reason "empty answer", whatever the replies
    say (none are needed).
    """
    if is_blank(text):
        zero = GenerationScore((0,) * (item.k + 3), 0.0, 0.0, 0.0, reason=EMPTY_ANSWER)
        return TextScore([], Unscored(EMPTY_ANSWER, "nothing to grade; no judge call"), zero)
    criteria = criteria_for(item)
    gradings: list[Grading] = [r if isinstance(r, Unscored) else parse_grading(r, criteria) for r in replies]
    voted = majority_vote(gradings)
    if isinstance(voted, Unscored):
        reasons = {g.reason for g in gradings if isinstance(g, Unscored)}
        if len(reasons) == 1:
            voted = Unscored(reasons.pop(), voted.detail)
        return TextScore(gradings, voted, voted)
    return TextScore(gradings, voted, generation_metrics(item.k, apply_rules(item, text, voted)))


def score_generation(item: Item, text: str, replies: Sequence[str | Unscored]) -> GenerationScore | Unscored:
    """The score of one generation (see :func:`score_text`)."""
    return score_text(item, text, replies).score
