"""The teacher's side: its settings and one two-turn SKILL-MIX conversation.

The messages are the benchmark's own (``skillmix_tasks.prompts.two_turn_messages``, the same the
two-turn evaluation builds), and the teacher is any ``skillmix.grading.client.CachedCompleter``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skillmix_tasks.catalog import Catalog
from skillmix_tasks.prompts import extract_answer, two_turn_messages
from skillmix_tasks.protocol import GENERATION_MAX_TOKENS, GENERATION_TEMPERATURE
from skillmix_tasks.sampling import Item
from skillmix_tasks.scoring import Unscored

from skillmix.grading.backends import Usage
from skillmix.grading.client import CachedCompleter, CallResult

TEACHER_NAMESPACE = "skillmix-teacher"
TEACHER_TEMPERATURE = GENERATION_TEMPERATURE  # the paper's generation settings
TEACHER_MAX_TOKENS = GENERATION_MAX_TOKENS
TYPICAL_TEACHER_TOKENS = 250  # a few lines of text plus an explanation, for estimates only


@dataclass
class Conversation:
    """A two-turn SKILL-MIX conversation: (turn 1, reply 1, turn 2, reply 2) and the graded answer."""

    item: Item
    index: int  # which generation of the item
    messages: list[dict]  # as far as it got: 4 messages when ok
    answer: str = ""  # extract_answer of the last reply
    error: Unscored | None = None  # why it stopped (a failed call, budget), None when ok
    usage: Usage = field(default_factory=Usage)  # both calls, cached or not
    from_cache: list[bool] = field(default_factory=list)
    finish_reasons: list[str | None] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


async def two_turn(completer: CachedCompleter, item: Item, index: int = 0, *,
                   catalog: Catalog | None = None) -> Conversation:
    """The student protocol with ``completer`` as the model: turn 1, its reply, turn 2 with the
    history, its reply. Each reply is cached under (spec, settings, prompt version, messages, index)."""
    conv, replies = Conversation(item, index, two_turn_messages(item, [], catalog)), []
    for turn in (1, 2):
        r = await completer.complete(two_turn_messages(item, replies, catalog), index)
        if not add_reply(conv, replies, r, turn, catalog):
            break
    return conv


def add_reply(conv: Conversation, replies: list[str], r: CallResult, turn: int,
              catalog: Catalog | None = None) -> bool:
    """Take the teacher's reply to ``turn`` into the conversation; False (and ``conv.error``) if
    the conversation stops here. Shared by the online and the batch rounds."""
    if r.text is None:
        err = r.error or Unscored("no reply")
        conv.error = Unscored(f"teacher {err.reason}", f"turn {turn}: {err.detail}")
        return False
    conv.usage.add(r.usage)
    conv.from_cache.append(r.from_cache)
    conv.finish_reasons.append(r.finish_reason)
    replies.append(r.text)
    conv.messages = two_turn_messages(conv.item, replies, catalog)
    if turn == 2:
        conv.answer = extract_answer(conv.messages[-1]["content"])
        if not conv.answer:
            conv.error = Unscored("teacher no answer", "the last reply has no text to grade")
            return False
    return True
