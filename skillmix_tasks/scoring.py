"""From grader replies to points: parsing, the programmatic rules, and the majority vote.

A grading is either a tuple of points as the judge gave them, one per criterion in
``criteria_for`` order (skills, topic, sense, length), each in [0, 1] (partial credit such as
``0.5`` or ``1/2`` kept), or :class:`Unscored` with a reason. Nothing that cannot be read
completely is ever turned into points; values outside [0, 1] make the grading unscored.

Rounding, as the public reference code does it: a criterion's points over the valid gradings
of a text are averaged and the mean is rounded half to even (``numpy.rint``), so the criterion
is met when the mean is above one half (``1, 1, 0.5`` -> 1; ``1, 0.5, 0`` -> 0; ``1, 0.5`` -> 1).
``SCORING_VERSION`` changes whenever a rule here moves a number; results record it.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from html import unescape as html_unescape
from typing import Sequence, Union

from .protocol import METRICS
from .prompts import Criterion, criteria_for, sentence_cap, skill_name
from .sampling import Item
from .names import names_skill
from .sentences import count_sentences

# v2: partial credit kept and a criterion's mean over gradings rounded as the reference code does (v1
# counted 0.5 as not met before a strict majority vote, so its numbers were lower); replies read in more of
# the layouts judges write; the sentence counter and the name penalty as in sentences.py and names.py.
SCORING_VERSION = "skillmix-scoring-v2"


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


Points = tuple[int, ...]  # after the vote and the rules every point is 0 or 1
# A judge's points as given (0, 0.5, 1 ...): the length point is None where the judge gave no length row.
Grading = Union[tuple[Union[float, None], ...], Unscored]


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


# How judges name the three fixed criteria besides the rubric's own words ("Topic relevance",
# "Coherence", "Sentence limit", "Brevity").
_TOPIC_KEYS = ("pertains to", "pertains", "on topic", "relevant to", "relevance to", "topic relevance",
               "relevance", "relevant", "topic")
_SENSE_KEYS = ("makes sense", "make sense", "coherent", "coherence", "coherency", "sensible", "sense")
_LENGTH_KEYS = ("at most", "sentence limit", "sentence count", "sentences", "sentence", "length", "brevity",
                "concise", "conciseness")
# Keys too common in explanations to name the criterion a paragraph of prose is about.
_VAGUE_KEYS = frozenset({"sense", "sensible", "sentence", "sentences", "length", "pertains", "topic", "relevance",
                         "relevant", "coherence", "coherency", "brevity", "concise", "conciseness",
                         "sentence count", "sentence limit"})


@functools.lru_cache(maxsize=1024)
def _keys(c: Criterion) -> tuple[str, ...]:
    """Phrases whose presence in a row's text identifies criterion ``c``."""
    if c.kind == "skill":
        return tuple(k for k in dict.fromkeys((_norm(c.subject), _norm(skill_name(c.subject)))) if k)
    if c.kind == "topic":
        return (_norm(c.subject), *_TOPIC_KEYS)
    if c.kind == "sense":
        return _SENSE_KEYS
    return _LENGTH_KEYS


@functools.lru_cache(maxsize=1024)
def _padded_keys(c: Criterion) -> tuple[str, ...]:
    """``_keys(c)`` as " key " (whole-word search), longest first."""
    return tuple(f" {k} " for k in sorted(_keys(c), key=len, reverse=True))


# Where a label's gloss begins: brackets, a colon, a spaced dash, an em dash, an ellipsis.
_GLOSS_RE = re.compile(r"[()\[\]:;]|\s[-\u2013\u2014]+\s|\u2014|\.{3}|\u2026")
# Words that join two criteria named side by side ("Metaphor and red herring", "sense and length").
_CONNECTIVES = frozenset("and or plus also as well both with vs versus is are the a an".split())
# Words that may come before the criterion in a prose label ("1. Correctly illustrates X", "Criterion 2: X").
_LEAD_WORDS = frozenset("correctly correct illustrates illustrate illustration of text skill criterion "
                        "criteria rubric item uses use demonstrates shows".split())
_DIGITS = frozenset("0 1 2 3 4 5 6 7 8 9 10".split())
_AMBIGUOUS = -1  # what _criterion_of returns for a label that names two criteria side by side


class _Rubric:
    """The keys of a rubric's criteria (``_padded_keys`` of each), indexed by their first word.

    Hashed once: every label of every reply is looked up with it (see ``_criterion_of``'s cache).
    """

    __slots__ = ("keys", "index", "_hash")

    def __init__(self, keys: tuple[tuple[str, ...], ...]):
        self.keys = keys
        self.index: dict[str, list[tuple[tuple[str, ...], int, int]]] = {}  # word -> (key words, -length, criterion)
        for i, ck in enumerate(keys):
            for first, entry in _index_entries(ck, i):
                self.index.setdefault(first, []).append(entry)
        self._hash = hash(keys)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rubric) and self.keys == other.keys


@functools.lru_cache(maxsize=256)  # one per item: its replies share it
def _rubric(criteria: tuple[Criterion, ...]) -> _Rubric:
    return _Rubric(tuple(_padded_keys(c) for c in criteria))


@functools.lru_cache(maxsize=4096)  # per criterion and place: the sense and length keys recur in every rubric
def _index_entries(padded: tuple[str, ...], i: int) -> tuple[tuple[str, tuple[tuple[str, ...], int, int]], ...]:
    """(first word, (words, minus length, i)) of each key of the criterion at place ``i``."""
    split = [tuple(k.split()) for k in padded]
    return tuple((words[0], (words, -len(k.strip()), i)) for k, words in zip(padded, split))


@functools.lru_cache(maxsize=8192)  # the same labels recur in every grading of an item
def _criterion_of(text: str, rubric: _Rubric, lead_only: bool = False) -> int | None:
    """The criterion a label names, ``_AMBIGUOUS``, or None (see :func:`match_criterion`).

    ``lead_only`` (prose): the label must start with the criterion, after numbering and rubric words.
    """
    for segment in _GLOSS_RE.split(text):
        words = _norm(segment).split()
        spans = _spans(words, rubric.index)
        if not spans:
            continue  # this segment names nothing: the next one may ("Skill 1: Deixis")
        at, neg_len, first, end = spans[0]
        if any(a == at and n == neg_len and i != first for a, n, i, _ in spans):
            return None  # two criteria share the same words
        if lead_only and not set(words[:at]) <= _LEAD_WORDS | _DIGITS:
            return None  # prose that mentions a criterion, not a label that names one
        for a, _, i, _ in spans:  # the next criterion named after the first, skipping keys inside it
            if i != first and a >= end:
                if set(words[end:a]) <= _CONNECTIVES:
                    return _AMBIGUOUS
                break
        return first
    return None


def _spans(words: list[str], index: dict) -> list[tuple[int, int, int, int]]:
    """Every (first word, minus length, criterion, end word) where a key occurs in ``words``, in
    order: by position, the longest first (word lookups, not a scan per key: this runs on every row)."""
    spans = []
    for at, w in enumerate(words):
        for kw, neg_len, i in index.get(w, ()):
            end = at + len(kw)
            if len(kw) == 1 or tuple(words[at:end]) == kw:
                spans.append((at, neg_len, i, end))
    spans.sort()
    return spans


def match_criterion(text: str, criteria: Sequence[Criterion],
                    keys: Sequence[tuple[str, ...]] | None = None) -> int | None:
    """Index of the criterion a row label names: the one it names first, as its rubric item.

    Keys are matched as whole words; at one position the longest wins, so "Correctly illustrates
    common sense reasoning" is that skill, not "Text makes sense". Only the label's first segment
    that names anything counts: what follows a bracket, colon, spaced dash or ellipsis is a gloss
    ("Red herring (the red herring is no metaphor)" is the red herring row; "Skill 1: Deixis" is
    deixis). A label naming two criteria side by side ("Metaphor and red herring", "makes sense and
    is at most one sentence") is ambiguous, and a tie is no match: both give None.
    ``keys``: ``_padded_keys`` of each criterion, when the caller has them already.
    """
    rubric = _Rubric(tuple(keys)) if keys is not None else _rubric(tuple(criteria))
    found = _criterion_of(text, rubric)
    return None if found == _AMBIGUOUS else found


_CELL_MARKUP_RE = re.compile(r"[*_`\"'\u201c\u201d\u2018\u2019]")
_NUMBER = r"(?:\d+(?:\.\d+)?|\.\d+)"
# A verdict word or mark beside the number ("Yes (1)", "✓ 1", "1 (met)"), and what it says.
_VERDICTS = {"yes": "full", "met": "full", "\u2713": "full", "\u2714": "full", "\u2705": "full", "\u2611": "full",
             "no": "none", "not met": "none", "\u2717": "none", "\u2718": "none", "\u274c": "none",
             "partial": "part", "partially": "part", "partly": "part"}
_VERDICT = "|".join(sorted(map(re.escape, _VERDICTS), key=len, reverse=True))
_VALUE_RE = re.compile(
    rf"(?:(?P<verdict>{_VERDICT})\s*[:,\-\u2013\u2014]?\s*)?"  # "Yes (1)", "✓ 1", "No - 0"
    rf"(?P<open>\()?\s*(?P<num>{_NUMBER})\s*"
    rf"(?:(?:/|out\s+of|of)\s*(?P<den>{_NUMBER}))?\s*"  # "1/1", "1 out of 1"
    r"(?:points?|pts?)?\s*(?(open)\))\s*\.?\s*(?P<rest>.*)",
    re.IGNORECASE | re.DOTALL,
)
_COMMENT_RE = re.compile(r"\(.*\)|[-\u2013\u2014:,]\s.*", re.DOTALL)  # "(see below)", "- clear metaphor"


def parse_value(cell: str) -> float | None:
    """A points cell as a number: ``1``, ``**1**``, ``"0"``, ``1/1``, ``1 out of 1``, ``1 point``,
    ``0.5``, ``Yes (1)``, ``✓ 1``, ``1 (see below)``.

    A verdict beside the number must agree with it (``Yes (0)`` is unreadable); a remark after it
    must be bracketed or after a dash and hold no digits (``1 (2 in the draft)`` is unreadable).
    """
    bare = cell.strip()
    if bare.isdecimal() and bare.isascii():  # the common cell, "1" or "0": no regex needed
        return float(bare)
    m = _VALUE_RE.fullmatch(_CELL_MARKUP_RE.sub("", bare).strip())
    if not m:
        return None
    den = float(m.group("den")) if m.group("den") else 1.0
    if den not in (1.0, 2.0):  # a one-point row's scale: "1/1", a half as "1/2"; "8/10" is another scale
        return None
    value = float(m.group("num")) / den
    verdicts = [m.group("verdict")]
    rest = m.group("rest").strip()
    if rest:
        bare = rest.strip("()[]-\u2013\u2014:, ").lower()
        if bare in _VERDICTS:
            verdicts.append(bare)
        elif not _COMMENT_RE.fullmatch(rest) or any(ch.isdigit() for ch in rest):
            return None
    for v in filter(None, verdicts):
        said = _VERDICTS[v.lower()]
        if (said == "full" and value != 1) or (said == "none" and value != 0) or (said == "part" and not 0 < value < 1):
            return None
    return value


def _to_point(value: float) -> float | None:
    """A criterion's value as the judge gave it, if it is one: in [0, 1] (whole numbers as int)."""
    if value < 0 or value > 1:
        return None
    return int(value) if value == int(value) else value


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
    """What one grading table (or the prose) says: values per criterion index, and why not."""

    values: dict[int, list[float]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # notes, shown when criteria are missing
    fatal: Unscored | None = None  # a reason the whole reply cannot be read

    def add(self, index: int, value: float) -> None:
        self.values.setdefault(index, []).append(value)

    def fail(self, reason: str, detail: str) -> None:
        self.fatal = self.fatal or Unscored(reason, detail)


@dataclass
class _Table:
    """One table of a reply: its header's cells (None without one), its rows' cells, and how it ends."""

    header: list[str] | None  # None: a headerless table
    body: list[list[str]] = field(default_factory=list)
    cut: bool = False  # the reply stops inside it (a short last row, no closing pipe or </table>)
    at_end: bool = False  # nothing (or one cut-off line) follows it
    end: int = 0  # where its run of table lines ends in the reply


# Header cells: the row labels, the points a row earned, and the most it could earn.
_LABEL_WORDS = frozenset("criteria criterion criterias rubric item items requirement requirements skill skills "
                         "aspect aspects category element".split())
_EARNED_WORDS = frozenset("earned awarded given received achieved scored obtained".split())
_POINTS_WORDS = frozenset("points point pts pt score scores grade grades mark marks result rating".split())
_MAX_WORDS = frozenset("possible max maximum available out worth allotted allocated".split())
# A header's gloss of the scale: "Points Earned (out of 1)", "Score (0-1)", "Points / 1", "Score out of 1".
_HEADER_GLOSS_RE = re.compile(r"\([^)]*\)?|\[[^\]]*\]?|\s*(?:/|\bout of\b|\bof\b)\s*(?:\d+|possible|max\w*)\s*$",
                              re.IGNORECASE)


@functools.lru_cache(maxsize=4096)  # header cells recur in every reply
def _header_words(cell: str) -> frozenset[str]:
    return frozenset(_norm(_HEADER_GLOSS_RE.sub(" ", cell)).split())


def _points_column(header: list[str], label_col: int | None) -> tuple[int | None, str]:
    """Which header cell holds the earned points: one that says earned, else the only points-like
    cell that is not a maximum. ``(None, why)`` when several could be; ``(None, "")`` when none is."""
    words = [_header_words(c) for c in header]
    cols = [i for i in range(len(header)) if i != label_col]
    earned = [i for i in cols if words[i] & _EARNED_WORDS and not words[i] & _MAX_WORDS]
    if len(earned) == 1:
        return earned[0], ""
    plain = [i for i in cols if words[i] & _POINTS_WORDS and not words[i] & _MAX_WORDS]
    if not earned and len(plain) == 1:
        return plain[0], ""
    if not earned and not plain:
        return None, ""
    cells = " | ".join(header)
    return None, f"header '{cells}' names {len(earned) or len(plain)} candidate points-earned columns, not one"


# A label-column header holds one of these (searched in lower case: an IGNORECASE search is ~8x slower).
_LABEL_HINT_RE = re.compile(r"criteri|rubric|item|requirement|skill|aspect|categor|element")


def _label_column(header: list[str]) -> int | None:
    """The header cell that names the row labels ("Criteria", "Rubric item", "Skill")."""
    for i, cell in enumerate(header):
        if not _LABEL_HINT_RE.search(cell.lower()):  # the cheap test: this runs on every row of every table
            continue
        words = _header_words(cell)
        if words and words <= _LABEL_WORDS:
            return i
    return None


def _is_header(cells: list[str]) -> bool:
    """A header row without a separator line under it: a label-column cell and no numbers."""
    return _label_column(cells) is not None and all(parse_value(c) is None for c in cells)


_HTML_TABLE_RE = re.compile(r"<table\b.*?(?:</table\s*>|\Z)", re.IGNORECASE | re.DOTALL)
_HTML_ROW_RE = re.compile(r"<tr\b[^>]*>(.*?)(?=<tr\b|</tr\s*>|</t(?:head|body|foot)\b|</table|\Z)",
                          re.IGNORECASE | re.DOTALL)
_HTML_CELL_RE = re.compile(r"<(t[hd])\b[^>]*>(.*?)(?=<t[hd]\b|</t[hd]\s*>|</tr|\Z)", re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r"<[^>]*>")


def _tables(reply: str) -> list[_Table]:
    """Every table of a reply in order: markdown (pipes), tab-separated, and HTML."""
    content_end = len(reply.rstrip())  # a table that reaches it ends the reply
    tables: list[_Table] = []
    pos = 0
    for m in _HTML_TABLE_RE.finditer(reply):
        tables += _text_tables(reply, pos, m.start(), content_end)
        tables.append(_html_table(m.group(), end=m.end(), at_end=m.end() >= content_end))
        pos = m.end()
    return tables + _text_tables(reply, pos, len(reply), content_end)


def _html_table(html: str, end: int, at_end: bool) -> _Table:
    """An HTML table; its header is a first row of ``<th>`` cells or one like "Criteria | Points"."""
    table = _Table(None, at_end=at_end, end=end, cut=not re.search(r"</table\s*>\s*$", html, re.IGNORECASE))
    for row in _HTML_ROW_RE.finditer(html):
        tagged = _HTML_CELL_RE.findall(row.group(1))
        cells = [html_unescape(_TAG_RE.sub(" ", text)).strip() for _, text in tagged]
        if not cells:
            continue
        first = table.header is None and not table.body
        if first and (all(tag.lower() == "th" for tag, _ in tagged) or _is_header(cells)):
            table.header = cells
        else:
            table.body.append(cells)
    return table


def _table_line(line: str) -> list[str] | None:
    """A line's cells if it is a table row: pipes, or else tabs; at least two cells."""
    if "|" in line:
        cells = _cells(line)
        if line.lstrip().startswith("|"):  # "| At most one sentence |": a row cut short
            return cells
    elif "\t" in line:
        cells = [c.strip() for c in re.split(r"\t+", line.strip())]
    else:
        return None
    return cells if len(cells) >= 2 else None


def _text_tables(reply: str, start: int, stop: int, content_end: int) -> list[_Table]:
    """The markdown and tab tables of ``reply[start:stop]``: runs of table lines, split where a header
    starts (a line above a ``|---|`` separator, or one like "Criteria | Points Earned")."""
    tables: list[_Table] = []
    lines = reply[start:stop].splitlines(keepends=True)
    offset, i = start, 0  # where lines[i] starts in the reply
    while i < len(lines):
        if ("|" not in lines[i] and "\t" not in lines[i]) or _table_line(lines[i]) is None:
            offset += len(lines[i])
            i += 1
            continue
        block = []  # (cells, raw line) of one run of table lines
        while i < len(lines) and (cells := _table_line(lines[i])) is not None:
            block.append((cells, lines[i].rstrip("\r\n")))
            offset += len(lines[i])
            i += 1
        reach = offset  # one last line right under the table (maybe a tab row cut in its label) still ends it
        if i < len(lines) and lines[i].strip():
            reach += len(lines[i])
        run = _split_block(block, at_end=reach >= content_end)
        for table in run:
            table.end = offset
        tables += run
    return tables


def _split_block(block: list[tuple[list[str], str]], at_end: bool) -> list[_Table]:
    """One run of table lines as tables: a new one starts at each header row. When the run ends the
    reply, its last row shorter than the header (or unclosed where the header is closed) was cut."""
    tables = [_Table(None)]
    header_line = ""
    separators = ["--" in raw and _is_separator(cells) for cells, raw in block]
    for j, (cells, raw) in enumerate(block):
        if separators[j]:
            continue
        above_separator = j + 1 < len(block) and separators[j + 1]
        if ((above_separator and all(parse_value(c) is None for c in cells))
                or (_LABEL_HINT_RE.search(raw.lower()) and _is_header(cells))):
            tables.append(_Table(cells))
            header_line = raw
        else:
            tables[-1].body.append(cells)
    tables = [t for t in tables if t.header is not None or t.body]
    if tables and at_end:
        last, (last_cells, last_raw) = tables[-1], block[-1]
        width = len(last.header if last.header is not None else last.body[0])
        unclosed = header_line.rstrip().endswith("|") and not last_raw.rstrip().endswith("|")
        last.at_end = True
        # A total row cut short loses nothing: it is never read.
        last.cut = (len(last_cells) < width or unclosed) and not _is_total([last_cells])
    return tables


def _read_table(table: _Table, criteria: Sequence[Criterion], rubric: _Rubric) -> _Rows | None:
    """The points one table gives, or None when it grades nothing: its header names no points
    column and its rows hold no numbers (a restated rubric, a "Criterion | Evidence" table), or,
    headerless, no row has both a criterion and a number."""
    rows = _Rows()
    pairs = _labelled_cells(table, rubric, rows)
    if pairs is None:
        # Unless the reply stops in it before it shows what it is ("| Crit", "| Criteria | Poi"): it
        # may have been the judge's corrected table.
        unknown = not table.body or (table.header is None and len(table.body) == 1)
        if table.at_end and (table.cut or unknown):
            rows.fail("truncated", "the reply stops in a table before it shows what the table holds")
            return rows
        return None
    if table.cut:  # first: its last row's unreadable cell is a symptom of this
        rows.fail("truncated", "the reply stops inside its grading table")
    unmatched: list[tuple[str, float]] = []
    for label, cell in pairs:
        if "total" in label.lower() and "total" in _norm(label).split():
            continue
        index, value = _criterion_of(label, rubric), parse_value(cell)
        if index is None:
            if value is not None:
                unmatched.append((label, value))
        elif index == _AMBIGUOUS:
            rows.fail("ambiguous row", f"row {label.strip()!r} names more than one criterion")
        elif value is None:
            rows.fail("unreadable points", f"row {label.strip()!r}: {cell.strip()!r}")
        else:
            rows.add(index, value)
    # Rows that name a skill loosely can only take a skill that no row has named exactly.
    for label, value in unmatched:
        free = [i for i in range(len(criteria)) if i not in rows.values]
        index = _fuzzy_skill_match(label, criteria, free)
        if index is not None:
            rows.add(index, value)
    # A table that ends the reply without its total row or all its rows was probably cut off: even
    # with only the optional length row missing, the rows it has may be a draft.
    if table.at_end and len(rows.values) < len(criteria) and not _is_total(table.body):
        missing = "; ".join(c.label for i, c in enumerate(criteria) if i not in rows.values)
        rows.fail("missing criteria", f"the reply stops inside its grading table, before a row for: {missing}")
    return rows


def _labelled_cells(table: _Table, rubric: _Rubric, rows: _Rows) -> list[tuple[str, str]] | None:
    """Each body row's (label, points cell), by the header; None when the table grades nothing."""
    if table.header is None:
        return _headerless_cells(table.body, rubric, rows)
    header, body = table.header, table.body
    label_col = _label_column(header)
    points_col, why = _points_column(header, label_col)
    if points_col is None:
        if not why and not _numbers_beside_labels(header, body, rubric):
            return None  # a rubric restated, a "Criterion | Evidence" table
        rows.fail("unidentified points column",
                  why or f"header '{' | '.join(header)}' names no points column, yet its rows hold numbers")
        return []
    if label_col is None:  # "| | Points |": the first column that is not the points column
        label_col = 0 if points_col else 1
    return [(_cell(cells, label_col), _cell(cells, points_col)) for cells in body]


def _headerless_cells(body: list[list[str]], rubric: _Rubric, rows: _Rows) -> list[tuple[str, str]] | None:
    """Without a header, a row's first cell that is not a number is its label and its only number
    its points; a row naming a criterion beside two numbers leaves the points column unknown."""
    pairs, graded = [], False
    for cells in body:
        values = [parse_value(c) for c in cells]
        label = next((c for c, v in zip(cells, values) if v is None), "")
        numbers = [c for c, v in zip(cells, values) if v is not None]
        if numbers and _criterion_of(label, rubric) is not None:
            graded = True
            if len(numbers) > 1:
                rows.fail("unidentified points column",
                          f"row {label.strip()!r} has {len(numbers)} numbers and the table no header")
        pairs.append((label, numbers[0] if len(numbers) == 1 else ""))
    return pairs if graded else None


def _cell(cells: list[str], i: int) -> str:
    return cells[i] if i < len(cells) else ""


def _numbers_beside_labels(header: list[str], body: list[list[str]], rubric: _Rubric) -> bool:
    """Whether rows that name a criterion hold numbers in columns the header does not call maxima
    ("| Criteria | Judge 1 | Judge 2 |"): points, in a column nobody can tell."""
    label_col = _label_column(header) or 0
    cols = [i for i, c in enumerate(header) if i != label_col and not _header_words(c) & _MAX_WORDS]
    return any(_criterion_of(cells[label_col], rubric) is not None
               and any(parse_value(cells[i]) is not None for i in cols if i < len(cells))
               for cells in body if label_col < len(cells))


def _is_total(body: list[list[str]]) -> bool:
    return bool(body) and any("total" in _norm(c).split() for c in body[-1])


def _table_rows(reply: str, criteria: Sequence[Criterion]) -> _Rows | None:
    """The points of the reply's grading table, or None when no table grades anything.

    The answer is the LAST complete table (a draft corrected later is not read). A partial table
    is never mixed with another: before the answer it is ignored; after it, it may only repeat it
    (a summary of the skills), as a revision of some rows or a cut-off correction leaves the
    judge's final points unknown. So does a correction announced after the last table ("Let me
    correct that:") with no table after it. Without a complete table, the last one says what is missing.
    """
    rubric = _rubric(tuple(criteria))
    readings = [(t, rows) for t, rows in ((t, _read_table(t, criteria, rubric)) for t in _tables(reply))
                if rows is not None]
    complete = [n for n, (_, rows) in enumerate(readings) if _is_complete(rows, criteria)]
    if not complete:
        return readings[-1][1] if readings else None
    answer = readings[complete[-1]][1]
    for _, later in readings[complete[-1] + 1:]:
        if later.fatal:
            return later
        changed = [criteria[i].label for i, v in later.values.items() if set(v) != set(answer.values.get(i, ()))]
        if changed:
            answer = _Rows()
            answer.fail("conflicting tables", f"a later, partial table changes {'; '.join(changed)}")
    correction = _CORRECTION_RE.search(reply[readings[-1][0].end:].lower())
    if correction:
        answer = _Rows()
        answer.fail("revised in prose", f"after its last table the judge writes {correction.group()!r}, "
                    "and no corrected table follows")
    return answer


# A judge taking its table back ("Let me correct that:"): a corrected table follows, or (cut off) nothing.
_CORRECTION_RE = re.compile(
    r"\b(?:let me (?:correct|revise|fix|redo|re-?grade)|i made (?:a|an) (?:mistake|error)|on second thought"
    r"|correction\s*:)|^\W*wait\b",
    re.MULTILINE,
)  # searched in the lower-cased text


def _unless_prose_differs(table: _Rows, prose: _Rows, criteria: Sequence[Criterion]) -> _Rows:
    """A table of all ones, unless grading lines outside it ("Metaphor: 0") give a criterion other
    points: then the table may be the rubric restated with its 1-point maxima. Numbers outside
    [0, 1] in the prose are counts ("Sentences: 2"), not points, and are not compared."""
    changed = [criteria[i].label for i, v in prose.values.items()
               if i in table.values and {x for x in v if 0 <= x <= 1} - set(table.values[i])]
    if not changed:
        return table
    rows = _Rows()
    rows.fail("conflicting gradings", f"lines outside the table give other points to {'; '.join(changed)}")
    return rows


def _is_complete(rows: _Rows, criteria: Sequence[Criterion]) -> bool:
    return not rows.fatal and all(i in rows.values for i, c in enumerate(criteria) if c.kind != "length")


# "Point earned: 1", "Points awarded for metaphor: 1", "Score: 1", "**Score:** 1/1"
_MARKER_RE = re.compile(
    r"(?<!\w)(?:points?\s+(?:earned|awarded)(?P<for>\s+for\s+[^:\n]{1,200})?|score|points?)[*_]*\s*[:=][*_]*"
    r"[ \t]*(?P<val>[^\n]*)",
    re.IGNORECASE,
)
_LEADING_VALUE_RE = re.compile(r"[\s'\"*_`]*(\d+(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?)(?![\w/])")
_SEP_RE = re.compile(r"[:=]|\s[-\u2013\u2014]+\s")  # "Label: 1", "Label - 1", "Label = 1"
_TOTAL_WORDS = frozenset("total overall final sum grade".split())
_DIGIT_RE = re.compile(r"\d")
_MARKER_WORD_RE = re.compile(r"point|score")
_NUMBER_FIRST_RE = re.compile(r"[\s*_`'\"]*\(?\d")


def _prose_rows(reply: str, criteria: Sequence[Criterion]) -> _Rows:
    """The grading lines of a reply, outside its tables, read line by line:

    - a line "Label: 1 point", "Label - Score: 1", "- **Label**: Yes (1)" grades the criterion its label names;
    - a "Point earned: 1" / "Score: 1" marker whose own line names nothing grades the block since the
      previous marker: its first line that reads as a label (a heading), else the criterion the block
      mentions first.
    Totals are skipped; labels must start with the criterion (after numbering and rubric words).
    Grading lines that end the reply before every criterion has one, the length's included, were
    probably cut off, like a table that ends the reply (see ``_stops_in_grades``).
    """
    rubric = _rubric(tuple(criteria))
    rows = _Rows()
    block: list[str] = []  # lines since the last grading line
    after: list[str] = []  # the first two non-blank lines after the last grading line
    for line in reply.splitlines():
        if line.strip():
            after = [] if _prose_line(line, block, rows, criteria, rubric) else [*after, line][:2]
    if len(rows.values) < len(criteria) and _stops_in_grades(after, rows, rubric):
        missing = "; ".join(c.label for i, c in enumerate(criteria) if i not in rows.values)
        rows.fail("missing criteria", f"the reply stops in its grading lines, before one for: {missing}")
    return rows


def _stops_in_grades(after: list[str], rows: _Rows, rubric: _Rubric) -> bool:
    """Whether the reply stops in its grading lines: nothing follows the last one, or only a
    fragment of a line ("**", "7.", "At mo"), or the heading of a criterion still without a grade
    ("**At most one sentence**" and its explanation, the grade cut off)."""
    if not rows.values:
        return False
    if not after:
        return True
    named = _criterion_of(after[0], rubric, lead_only=True)
    if named is not None and named != _AMBIGUOUS and named not in rows.values:
        return True
    return len(after) == 1 and _is_fragment(after[0])


def _is_fragment(line: str) -> bool:
    """A short line that ends no sentence and totals nothing, or holds at most a word: a cut one."""
    text = line.strip()
    words = _norm(text).split()
    if len(words) <= 1:
        return True
    return len(text) < 60 and not text.endswith((".", "!", "?", ")")) and not set(words) & _TOTAL_WORDS


def _prose_line(line: str, block: list[str], rows: _Rows, criteria: Sequence[Criterion], rubric: _Rubric) -> bool:
    """Read one line into ``rows`` (or into ``block``, the lines since the last grading line);
    True if it grades a criterion."""
    if "|" in line or "\t" in line:
        return False
    if not _DIGIT_RE.search(line):  # no points on it (the cheap test: most lines are explanation)
        block.append(line)
        return False
    m = _find_marker(line)
    if m:
        before = line[: m.start()]
        if set(_norm(before).split()) & _TOTAL_WORDS:
            block.clear()
            return False
        index = _criterion_of(m.group("for"), rubric) if m.group("for") else None
        if index is None:
            index = _block_criterion(before, block, criteria, rubric)
        _add_prose(rows, index, m.group("val"), before or line, leading_ok=True)
        block.clear()
        return True
    graded = _graded_line(line, rubric)
    if graded:
        _add_prose(rows, *graded)
        block.clear()
        return True
    block.append(line)
    return False


def _find_marker(line: str) -> re.Match | None:
    """``_MARKER_RE.search(line)``, tried only where "point" or "score" starts (a case-blind search
    of a whole explanation line is the reader's slowest step otherwise)."""
    low = line.lower()
    if len(low) != len(line):  # lower() changed the length: positions would not carry over
        return _MARKER_RE.search(line)
    starts = sorted(m.start() for m in _MARKER_WORD_RE.finditer(low))
    return next((m for m in (_MARKER_RE.match(line, at) for at in starts) if m), None)


def _graded_line(line: str, rubric: _Rubric) -> tuple[int, str, str] | None:
    """A "Label: 1 point" / "- **Label** - Yes (1)" line: (criterion, value text, label), else None."""
    for sep in _SEP_RE.finditer(line):
        label, text = line[: sep.start()], line[sep.end():]
        if parse_value(text) is None:
            if _NUMBER_FIRST_RE.match(text):
                return None  # "Metaphor: 1, Red herring: 0": more than one grade on the line
            continue  # "Criterion 1: Correctly illustrates metaphor: 1": a later separator may do
        if set(_norm(label).split()) & _TOTAL_WORDS:
            return None
        index = _criterion_of(label, rubric, lead_only=True)
        return (index, text, label) if index is not None else None
    return None


def _add_prose(rows: _Rows, index: int | None, text: str, label: str, leading_ok: bool = False) -> None:
    """Record one grading line's value for its criterion, or why it cannot be."""
    if index is None:
        rows.problems.append("a 'Point earned' line names no criterion")
        return
    if index == _AMBIGUOUS:
        rows.fail("ambiguous row", f"{label.strip()!r} names more than one criterion")
        return
    value = parse_value(text)
    if value is None and leading_ok:  # "Point earned: 1 because ..." reads as 1, if no other number follows
        m = _LEADING_VALUE_RE.match(text)
        if m and not any(ch.isdigit() for ch in text[m.end():]):
            value = parse_value(m.group(1))
    if value is None:
        rows.fail("unreadable points", f"{label.strip()!r}: {text.strip()!r}")
    else:
        rows.add(index, value)


def _block_criterion(before: str, block: list[str], criteria: Sequence[Criterion], rubric: _Rubric) -> int | None:
    """The criterion a "Score: 1" marker grades: its own line's text before it if that reads as a
    label ("**Red herring**: yes. Point earned: 1"), else the block's first line that does (a heading:
    "2. Correctly illustrates metaphor:"), else the criterion the block mentions first."""
    for line in (before, *block):
        index = _criterion_of(line, rubric, lead_only=True)
        if index is not None:
            return index
    return _first_mentioned("\n".join((*block, before)), criteria)


def _first_mentioned(text: str, criteria: Sequence[Criterion]) -> int | None:
    """The criterion named earliest in a block of prose (its heading, in practice)."""
    norm = f" {_norm(text)} "
    best, best_pos, best_len = None, len(norm) + 1, 0
    for i, c in enumerate(criteria):
        for key in _keys(c):
            if c.kind != "skill" and key in _VAGUE_KEYS:
                continue  # too common in prose to identify a block
            pos = norm.find(f" {key} ")
            if pos >= 0 and (pos < best_pos or (pos == best_pos and len(key) > best_len)):
                best, best_pos, best_len = i, pos, len(key)
    return best


def parse_grading(reply: str, criteria: Sequence[Criterion]) -> Grading:
    """Read a grader reply into one point per criterion as the judge gave it, or :class:`Unscored`.

    The rules, so that a reply is scored only as a careful reader reads it:

    - Tables (markdown, tab-separated, HTML) come first. A table whose header names no points
      column (the rubric restated as "Criteria | Description", a "Criterion | Evidence" table)
      grades nothing and is ignored. The answer is the LAST table that covers every criterion but
      the (optional) length: a draft followed by a corrected table is read from the correction. A
      partial table is never mixed with another: before the answer it is ignored, after it it may
      only repeat it (a summary of the skills), and without a complete table the reply is unscored.
    - The points column is the one its header calls earned (``Points Earned (out of 1)``), else the
      only points-like one (``Score (0-1)``, ``Points (max 1)``, ``Points`` beside ``Max Points``);
      two candidates leave the reply unscored.
    - Without a grading table, prose lines are read: "Label: 1 point", "Label - Score: 1", or a
      "Point earned: 1" marker under a heading. A table of all ones that such lines contradict may be
      the rubric with its maxima: unscored.
    - A row is the criterion its label names first, as its rubric item (``match_criterion``); rows
      naming two criteria side by side, unreadable cells, values outside [0, 1], conflicting rows
      for one criterion, and a reply that stops inside its table are unscored. Totals are ignored.
    - The length row may be missing (its point is ``None``): code decides it anyway.
    """
    if not reply or not reply.strip():
        return Unscored("empty reply")
    rows = _table_rows(reply, criteria)
    if rows is None:  # no table grades anything: the prose styles
        rows = _prose_rows(reply, criteria)
    elif not rows.fatal and all(v == 1 for values in rows.values.values() for v in values):
        rows = _unless_prose_differs(rows, _prose_rows(reply, criteria), criteria)
    if rows.fatal:
        return rows.fatal
    if not rows.values:
        return Unscored("no grading table", "no table row or grading line names a criterion")
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
    """Per criterion, the mean of the valid gradings of one text rounded half to even, as the
    reference code does: 1 when the mean is above one half, else 0.

    Unscored gradings are left out (the reference counts an unreadable grading as zeros; here it
    is no grading); fewer than ``min_valid`` valid gradings (default two, or one when only one
    grading was asked for) leaves the text unscored. A tie (a mean of exactly one half) does not
    award the point. A point no grading gave (the optional length row) stays ``None``.
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


def _vote(values: Sequence[float]) -> int | None:
    # round() is half to even like numpy.rint; for a mean in [0, 1] that is "above one half".
    return int(round(math.fsum(values) / len(values))) if values else None


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
