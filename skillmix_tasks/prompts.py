"""Student and grader prompts, the rubric criteria, and answer extraction.

Every prompt here is in the project's own words. ``PROMPT_VERSION`` changes whenever any
prompt text changes; it is recorded in results, samples, datasets and the judge cache key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from .catalog import Catalog, Skill, default_catalog
from .protocol import PROTOCOLS, SINGLE_TURN, TWO_TURN
from .sampling import Item

PROMPT_VERSION = "skillmix-prompts-v2"  # v2: positive scoring, a short grader system prompt

# The judge's system message: short, as the reference's grader call has one.
GRADER_SYSTEM_PROMPT = "You are a helpful assistant who grades short pieces of writing."

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def number_word(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def sentence_cap(k: int) -> int:
    """The length limit of a SKILL-MIX(k) answer: max(1, k - 1) sentences."""
    return max(1, k - 1)


def _cap_phrase(k: int) -> str:
    cap = sentence_cap(k)
    return f"at most {number_word(cap)} sentence" + ("" if cap == 1 else "s")


def skill_name(name: str) -> str:
    """The bare name of a skill: the part before any parenthesised gloss."""
    return name.split("(", 1)[0].strip()


@dataclass(frozen=True)
class Criterion:
    """One 1-point row of the rubric."""

    kind: str  # "skill", "topic", "sense" or "length"
    label: str  # the row text the grader is asked to use
    subject: str = ""  # the skill or topic name for "skill" / "topic" rows


def criteria_for(item: Item) -> list[Criterion]:
    """The k + 3 criteria of an item, in scoring order: skills, topic, sense, length."""
    rows = [Criterion("skill", f"Correctly illustrates {s}", s) for s in item.skills]
    rows.append(Criterion("topic", f"Pertains to {item.topic}", item.topic))
    rows.append(Criterion("sense", "Text makes sense"))
    cap = _cap_phrase(item.k)
    rows.append(Criterion("length", cap[0].upper() + cap[1:]))
    return rows


def _skills_of(item: Item, catalog: Catalog | None) -> list[Skill]:
    catalog = catalog or default_catalog()
    return [catalog.skill(name) for name in item.skills]


def _skill_reference(skills: Sequence[Skill]) -> str:
    return "\n".join(f"- {s.name}: {s.definition} Example: {s.example}" for s in skills)


# The closing instruction of both protocols' first prompt.
_FIRST_PROMPT_CLOSING = (
    "Keep the text as brief as you can while making each skill clearly visible in it. "
    'Write the text after "Answer:", then explain how it shows each skill after "Explanation:".'
)


def _first_prompt(item: Item, length: str, catalog: Catalog | None) -> str:
    """A first student prompt, the same for both protocols but for ``length``: how long the text is."""
    skills = _skills_of(item, catalog)
    names = ", ".join(s.name for s in skills)
    return (
        f"Write a short, natural piece of text{length}, set in the context of "
        f"{item.topic}. The text has to show every one of these language skills: {names}.\n\n"
        f"Here is what each skill means, with an example of it:\n{_skill_reference(skills)}\n\n"
        f"{_FIRST_PROMPT_CLOSING}"
    )


def student_turn1(item: Item, catalog: Catalog | None = None) -> str:
    """Turn 1 of the two-turn protocol: write the text (no length cap yet)."""
    return _first_prompt(item, " of only a few lines", catalog)


def student_turn2(item: Item) -> str:
    """Turn 2: the improve round, with the max(1, k - 1) sentence cap written in words."""
    return (
        f"Read your answer once more and make it better: show each of the listed skills more "
        f"clearly, stay in the context of {item.topic}, and use {_cap_phrase(item.k)}. "
        f'Write the improved text after "Answer:", then the explanation after "Explanation:".'
    )


def two_turn_messages(item: Item, replies: Sequence[str] = (), catalog: Catalog | None = None) -> list[dict]:
    """The two-turn protocol as chat messages, given the student's replies so far.

    No reply: the turn-1 request. One reply: turn 1, the reply, and the improve turn (what the
    student answers next). Two replies: the whole conversation (what training data stores).
    The teacher (datagen) and the two-turn evaluation both build their chats here.
    """
    if len(replies) > 2:
        raise ValueError(f"the protocol has two turns; got {len(replies)} replies")
    messages = [{"role": "user", "content": student_turn1(item, catalog)}]
    for turn, reply in enumerate(replies, start=1):
        messages.append({"role": "assistant", "content": reply})
        if turn == 1:
            messages.append({"role": "user", "content": student_turn2(item)})
    return messages


def student_single_turn(item: Item, catalog: Catalog | None = None) -> str:
    """One-prompt variant: turn 1 with the sentence cap stated up front."""
    return _first_prompt(item, f", {_cap_phrase(item.k)} long", catalog)


def first_prompt(item: Item, protocol: str = TWO_TURN, catalog: Catalog | None = None) -> str:
    """The first (for single-turn: the only) student prompt of ``protocol``."""
    if protocol == TWO_TURN:
        return student_turn1(item, catalog)
    if protocol == SINGLE_TURN:
        return student_single_turn(item, catalog)
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")


def grader_prompt(item: Item, text: str, catalog: Catalog | None = None) -> str:
    """The judge prompt: question, student text, skill reference, and the rubric table format."""
    skills = _skills_of(item, catalog)
    names = ", ".join(s.name for s in skills)
    criteria = criteria_for(item)
    rubric = "\n".join(f"- {c.label}" for c in criteria)
    return (
        "You are grading a student's answer to a writing exercise.\n\n"
        f'The exercise was: "Write a piece of text of {_cap_phrase(item.k)} in the context of '
        f'{item.topic} that shows all of these skills: {names}."\n\n'
        f"The student's text:\n<<<\n{text}\n>>>\n\n"
        f"What each skill means, with an example of it:\n{_skill_reference(skills)}\n\n"
        f"Grade the text against the rubric below with positive scoring: each criterion is worth "
        f"one point, and the text earns the point for every criterion it satisfies.\n{rubric}\n\n"
        "Answer with a markdown table that has exactly two columns, 'Criteria' and "
        "'Points Earned', one row per criterion using the criterion text above, and a final "
        "row 'Total Points Earned'. Put only a number in the 'Points Earned' column. After the "
        "table, write 'Explanation:' followed by your reasoning."
    )


# Where the format puts the markers: "Answer:" opening a line (after any markdown, maybe "Improved
# Answer:"), and "Explanation" opening a line or, inline, as a capitalised "Explanation:". An
# "answer:" or "explanation" inside the student's sentences is text, not a marker.
_MARKUP = r"[ \t>*_#`-]*"
_ANSWER_RE = re.compile(
    rf"^{_MARKUP}(?:(?:improved|revised|final|updated|new|my|your)\s+)?answer[*_]*\s*:[*_]*",
    re.IGNORECASE | re.MULTILINE,
)
_INLINE_ANSWER_RE = re.compile(r"Answer[*_]*\s*:[*_]*")
_EXPLANATION_RE = re.compile(
    rf"(?im:^{_MARKUP}explanation[*_ \t]*(?:[:\-\u2013\u2014]|$))|Explanation[*_]*\s*:"
)


def extract_answer(reply: str) -> str:
    """The graded text of a reply: after the last ``Answer:``, before ``Explanation``.

    Markers count only where the format puts them (see ``_ANSWER_RE``, ``_EXPLANATION_RE``), so
    "Answer: The keeper demanded an explanation from the queen." keeps its whole sentence. A
    reply without ``Answer:`` is graded whole (up to any ``Explanation``), so a model that
    ignores the format is still graded on what it wrote.
    """
    start = 0
    for m in _ANSWER_RE.finditer(reply):
        start = m.end()
    if not start:  # no marker opens a line: a capitalised inline "Answer:" still marks the text
        start = max((m.end() for m in _INLINE_ANSWER_RE.finditer(reply)), default=0)
    rest = reply[start:]
    m = _EXPLANATION_RE.search(rest)
    if m:
        rest = rest[: m.start()]
    return rest.strip().strip("*").strip()
