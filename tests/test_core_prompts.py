import os

import pytest

from skillmix_tasks.catalog import default_catalog
from skillmix_tasks.prompts import (
    PROMPT_VERSION,
    criteria_for,
    extract_answer,
    grader_prompt,
    number_word,
    sentence_cap,
    student_single_turn,
    student_turn1,
    student_turn2,
)
from skillmix_tasks.sampling import sample_items


@pytest.mark.parametrize("k, cap, phrase", [(1, 1, "at most one sentence"), (2, 1, "at most one sentence"),
                                            (3, 2, "at most two sentences"), (6, 5, "at most five sentences")])
def test_sentence_cap_in_words(k, cap, phrase):
    item = sample_items("all", k, 1)[0]
    assert sentence_cap(k) == cap
    assert phrase in student_turn2(item)
    assert phrase in student_single_turn(item)
    assert phrase not in student_turn1(item)  # turn 1 has no cap; the improve turn adds it
    assert criteria_for(item)[-1].label.lower() == phrase


@pytest.mark.parametrize("k", range(1, 7))
def test_both_protocols_first_prompts_differ_only_in_the_length(k):
    """The two protocols ask for the same text: the first prompts share the task, the skill reference
    and the closing instruction word for word, and differ only inside the first sentence, where
    single-turn states the sentence cap and two-turn does not (so editing one cannot drift the other)."""
    for item in sample_items("all", k, 5):
        two, single = student_turn1(item), student_single_turn(item)
        head = os.path.commonprefix([two, single])
        n = len(os.path.commonprefix([two[len(head):][::-1], single[len(head):][::-1]]))
        tail = two[len(two) - n:]
        assert single.endswith(tail)
        two_mid, single_mid = two[len(head):len(two) - n], single[len(head):len(single) - n]
        for mid in (two_mid, single_mid):  # the difference stays inside the first sentence
            assert mid and "\n" not in mid and "." not in mid
        cap = criteria_for(item)[-1].label.lower()
        assert cap in single_mid and cap not in two
        assert item.topic in tail and '"Answer:"' in tail and '"Explanation:"' in tail
        for name in item.skills:
            skill = default_catalog().skill(name)
            assert f"- {skill.name}: {skill.definition} Example: {skill.example}" in tail
        assert two.rsplit("\n\n", 1)[1] == single.rsplit("\n\n", 1)[1]  # the same closing instruction


def test_number_words():
    assert [number_word(i) for i in (1, 2, 5, 10, 11)] == ["one", "two", "five", "ten", "11"]


def test_student_prompt_lists_each_skill_with_definition_and_example():
    item = sample_items("heldout", 4, 1)[0]
    prompt = student_single_turn(item)
    for name in item.skills:
        skill = default_catalog().skill(name)
        assert skill.definition in prompt and skill.example in prompt
    assert item.topic in prompt and '"Answer:"' in prompt and '"Explanation:"' in prompt


def test_criteria_are_k_plus_three_in_scoring_order():
    item = sample_items("train", 3, 1)[0]
    crit = criteria_for(item)
    assert [c.kind for c in crit] == ["skill"] * 3 + ["topic", "sense", "length"]
    assert [c.subject for c in crit[:3]] == list(item.skills)
    assert crit[3].label == f"Pertains to {item.topic}"


def test_grader_prompt_has_question_text_rubric_and_format():
    item = sample_items("heldout", 2, 1)[0]
    prompt = grader_prompt(item, "THE STUDENT TEXT")
    assert "THE STUDENT TEXT" in prompt and item.topic in prompt
    for c in criteria_for(item):
        assert f"- {c.label}" in prompt
    assert "'Criteria'" in prompt and "'Points Earned'" in prompt and "Total Points Earned" in prompt
    assert PROMPT_VERSION.startswith("skillmix-prompts-v")


def test_grader_asks_for_positive_scoring_with_a_short_system_prompt():
    # The reference's semantics (issue 14, defect 10): points are awarded for what the text does,
    # not withheld unless it "fully" meets a criterion; a short system prompt goes with it.
    from skillmix_tasks.prompts import GRADER_SYSTEM_PROMPT

    prompt = grader_prompt(sample_items("heldout", 3, 1)[0], "THE STUDENT TEXT")
    assert "positive scoring" in prompt and "fully meets" not in prompt and "0 otherwise" not in prompt
    assert 0 < len(GRADER_SYSTEM_PROMPT) < 80 and GRADER_SYSTEM_PROMPT not in prompt
    assert PROMPT_VERSION != "skillmix-prompts-v1"  # the grader prompt changed


def test_unknown_skill_in_item_is_a_clear_error():
    from skillmix_tasks.sampling import Item

    with pytest.raises(KeyError, match="unknown skill 'nonsense'"):
        student_turn1(Item("x", "custom", 1, ("nonsense",), "Knots"))


@pytest.mark.parametrize("reply, text", [
    ("Answer: The hive hums.\nExplanation: it does.", "The hive hums."),
    ("Draft\nAnswer: first\nExplanation: x\nAnswer: second one\n\nExplanation: y", "second one"),
    ("**Answer:** Bold text. **Explanation:** why", "Bold text."),
    ("answer: lower case works", "lower case works"),
    ("No markers, just text.", "No markers, just text."),
    ("The text itself.\nExplanation: after", "The text itself."),
    ("Answer:\n\n  Spaced out.  \n", "Spaced out."),
    # markers count only where the format puts them (issue 14, defect 4)
    ("Answer: The keeper demanded an explanation from the queen.",
     "The keeper demanded an explanation from the queen."),
    ("Answer: The keeper demanded an explanation from the queen.\nExplanation: it shows x.",
     "The keeper demanded an explanation from the queen."),
    ("Answer: No explanation was needed. Explanation: it shows x.", "No explanation was needed."),
    ("Answer: Her explanation: none came.\n\nExplanation: x", "Her explanation: none came."),
    ("Answer: The answer: yes, said the keeper.\nExplanation: x", "The answer: yes, said the keeper."),
    ("Answer: Why ask for an Explanation of bees?\n\n**Explanation**\nIt is a question.",
     "Why ask for an Explanation of bees?"),
    ("### Improved Answer:\nThe hive hums.\n### Explanation:\nBecause.", "The hive hums."),
    ("Here is my text.\nThe answer: the hive hums. Explanations vary.", "Here is my text.\nThe answer: the hive hums. Explanations vary."),
    ("Sure, here it is. Answer: The hive hums. Explanation: x", "The hive hums."),
    ("Revised answer: Bees sleep.\n\nExplanation - it is short.", "Bees sleep."),
])
def test_extract_answer(reply, text):
    assert extract_answer(reply) == text


def test_two_turn_messages_build_the_protocol_step_by_step():
    from skillmix_tasks.prompts import two_turn_messages

    item = sample_items("heldout", 3, 1)[0]
    first = two_turn_messages(item)
    assert first == [{"role": "user", "content": student_turn1(item)}]
    second = two_turn_messages(item, ["A1"])
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"] == "A1" and second[2]["content"] == student_turn2(item)
    whole = two_turn_messages(item, ["A1", "A2"])
    assert [m["content"] for m in whole[1::2]] == ["A1", "A2"] and whole[:3] == second
    with pytest.raises(ValueError):
        two_turn_messages(item, ["a", "b", "c"])
