"""The grader-reply reader against replies written in the styles real judges use.

``tests/data/grader_replies.jsonl``: one reply a line, in the manner of GPT-4o (tight markdown
tables), Claude (preambles, reasoning columns, restated rubrics), and open judges (Llama 3, Qwen 2.5,
Mistral: prose lists, HTML and tab tables, drafts corrected later, truncated outputs), each with the
points a careful reader finds (``criteria_for`` order; the length value as the judge gave it, null
without a length row) or ``{"unscored": why}`` where no careful reader could be sure. Every reply is
0/1 only: partial credit is the vote's business (see test_core_scoring.py), read here only by
``parse_value``.
"""

import json
from collections import Counter
from pathlib import Path

import pytest

from skillmix_tasks import default_catalog
from skillmix_tasks.prompts import criteria_for
from skillmix_tasks.sampling import Item
from skillmix_tasks.scoring import Unscored, match_criterion, parse_grading, parse_value

CORPUS = [json.loads(line) for line in (Path(__file__).parent / "data" / "grader_replies.jsonl").open(encoding="utf-8")]
READABLE = [r for r in CORPUS if isinstance(r["expect"], list)]
UNREADABLE = [r for r in CORPUS if isinstance(r["expect"], dict)]


def crit_of(row):
    return criteria_for(Item("corpus", "custom", row["k"], tuple(row["skills"]), row["topic"]))


def test_the_corpus_is_what_it_says():
    catalog = default_catalog()
    skills, topics = {s.name for s in catalog.skills}, {t.name for t in catalog.topics}
    assert len(CORPUS) >= 70 and len(UNREADABLE) >= 15
    assert len({r["id"] for r in CORPUS}) == len(CORPUS)
    assert set(Counter(r["style"] for r in CORPUS)) == {"gpt-4o", "claude", "llama-3", "qwen-2.5", "mistral"}
    for r in CORPUS:
        assert set(r["skills"]) <= skills and r["topic"] in topics and r["k"] == len(r["skills"]), r["id"]
        if r in READABLE:
            assert len(r["expect"]) == r["k"] + 3 and set(r["expect"]) <= {0, 1, None}, r["id"]
        else:
            assert r["expect"]["unscored"], r["id"]


@pytest.mark.parametrize("row", READABLE, ids=lambda r: r["id"])
def test_every_readable_reply_is_read_exactly(row):
    assert parse_grading(row["reply"], crit_of(row)) == tuple(row["expect"])


@pytest.mark.parametrize("row", UNREADABLE, ids=lambda r: r["id"])
def test_every_unreadable_reply_is_unscored_with_a_reason(row):
    result = parse_grading(row["reply"], crit_of(row))
    assert isinstance(result, Unscored) and result.reason and result.detail, result


RUBRIC_TABLE = "| Criteria | Description |\n|---|---|\n" + "\n".join(
    f"| {label} | what the rubric asks, in a sentence that mentions sense and two sentences |"
    for label in ("Correctly illustrates the skill", "Pertains to the topic", "Text makes sense", "Length"))


@pytest.mark.parametrize("row", [r for r in READABLE if "|" in r["reply"]], ids=lambda r: r["id"])
def test_a_table_without_a_points_column_changes_nothing_before_or_after(row):
    """A restated rubric (or any table whose header names no points column) grades nothing, so adding
    one around a readable table reply leaves its points as they were."""
    crit = crit_of(row)
    expected = tuple(row["expect"])
    rubric = RUBRIC_TABLE + "\n" + "\n".join(f"| {c.label} | see above |" for c in crit)
    assert parse_grading(f"The rubric:\n\n{rubric}\n\n{row['reply']}", crit) == expected
    assert parse_grading(f"{row['reply']}\n\nEvidence:\n\n{rubric}\n\nDone.", crit) == expected


ITEM = Item("t", "custom", 2, ("metaphor", "red herring"), "Beekeeping")
CRIT = criteria_for(ITEM)
LABELS = [c.label for c in CRIT]


def table(values, labels=LABELS, header="| Criteria | Points Earned |", tail="| Total | 9 |\n\nExplanation: ok."):
    rows = "\n".join(f"| {label} | {v} |" for label, v in zip(labels, values))
    return f"{header}\n|---|---|\n{rows}\n{tail}"


@pytest.mark.parametrize("header", [
    "| Criteria | Points Earned (out of 1) |", "| Criteria | Score (0-1) |", "| Criteria | Points (max 1) |",
    "| Criteria | Score out of 1 |", "| Rubric item | Points Earned / Possible |", "| Skill | Score [0/1] |",
])
def test_a_header_may_gloss_the_scale(header):
    assert parse_grading(table([1, 0, 1, 1, 0], header=header), CRIT) == (1, 0, 1, 1, 0)


@pytest.mark.parametrize("cell, expected", [
    ("1 out of 1", 1.0), ("0 out of 1", 0.0), ("Yes (1)", 1.0), ("No (0)", 0.0), ("1 (see below)", 1.0),
    ("\u2713 1", 1.0), ("\u2717 0", 0.0), ("1 \u2713", 1.0), ("**1**/1", 1.0), ("1 point", 1.0), ("0 points", 0.0),
    ("1 - met", 1.0), ("(1)", 1.0), ("1 of 1", 1.0), ("Partially (0.5)", 0.5), ("1/2", 0.5), ("0.5 points", 0.5),
    # unreadable: a verdict that contradicts the number, a range, another scale, a number in the remark
    ("Yes (0)", None), ("No (1)", None), ("Partial (1)", None), ("0-1", None), ("-1", None), ("8/10", None),
    ("1 (2 in the draft)", None), ("N/A", None), ("Yes", None), ("1. Correctly illustrates metaphor", None),
])
def test_value_forms(cell, expected):
    assert parse_value(cell) == expected


@pytest.mark.parametrize("lines", [
    [f"{label} - Score: {v}" for label, v in zip(LABELS, [1, 0, 1, 1, 0])],
    [f"* **{label}**: {v} point{'s' if v != 1 else ''}" for label, v in zip(LABELS, [1, 0, 1, 1, 0])],
    [f"{n}. {label}: {v}" for n, (label, v) in enumerate(zip(LABELS, [1, 0, 1, 1, 0]), 1)],
    [f"- **{label}:** {'Yes (1)' if v else 'No (0)'}" for label, v in zip(LABELS, [1, 0, 1, 1, 0])],
    [f"**Criterion {n}: {label}** - Score: {v}" for n, (label, v) in enumerate(zip(LABELS, [1, 0, 1, 1, 0]), 1)],
    [f"**{label}**\nThe text is judged on this.\n**Score:** {v}\n" for label, v in zip(LABELS, [1, 0, 1, 1, 0])],
    ["Metaphor: 1", "Red herring: 0", "Relevance to Beekeeping: 1", "Coherence: 1", "Brevity: 0"],
])
def test_one_grading_line_per_criterion(lines):
    reply = "Here is my grading.\n\n" + "\n".join(lines) + "\n\nTotal Score: 3/5"
    assert parse_grading(reply, CRIT) == (1, 0, 1, 1, 0)


def test_prose_lines_that_grade_twice_or_not_at_all_are_unscored():
    two = "Metaphor: 1, Red herring: 0\nTopic: 1\nCoherence: 1\nLength: 1"
    assert isinstance(parse_grading(two, CRIT), Unscored)
    verdicts = "The metaphor works and the red herring too; it is about bees, makes sense, one sentence. 5/5."
    assert parse_grading(verdicts, CRIT).reason == "no grading table"


DRAFT = table([1, 1, 1, 1, 1])
FINAL = table([1, 0, 1, 1, 0])


def test_the_last_complete_table_is_the_answer_and_partial_tables_never_mix():
    assert parse_grading(f"{DRAFT}\n\nWait, let me correct that:\n\n{FINAL}", CRIT) == (1, 0, 1, 1, 0)
    partial_first = table([0, 0], tail="\nNow all of it:\n")
    assert parse_grading(f"{partial_first}\n{FINAL}", CRIT) == (1, 0, 1, 1, 0)
    # A later partial table may repeat the answer (a summary) but not revise it.
    summary = "| Skill | Score |\n|---|---|\n| Metaphor | 1 |\n| Red herring | 0 |\n\nThat is all."
    assert parse_grading(f"{FINAL}\n\n{summary}", CRIT) == (1, 0, 1, 1, 0)
    revision = summary.replace("| Red herring | 0 |", "| Red herring | 1 |")
    assert parse_grading(f"{FINAL}\n\n{revision}", CRIT).reason == "conflicting tables"
    # A correction that stops mid-table leaves the final points unknown.
    cut = f"{DRAFT}\n\nLet me correct that:\n\n| Criteria | Points Earned |\n|---|---|\n| {LABELS[0]} | 0 |\n| {LABELS[1]} |"
    assert parse_grading(cut, CRIT).reason == "truncated"


@pytest.mark.parametrize("label, index", [
    ("Correctly illustrates metaphor - the hive as a city works in both sentences", 0),
    ("Correctly illustrates metaphor that works in both sentences", 0),
    ("Red herring (the red herring is no metaphor)", 1),
    ("Text makes sense (coherent repetition)", 3),
    ("Skill 2: Red herring", 1),
    ("Pertains to Beekeeping: the metaphor is about bees", 2),
    ("At most one sentence (it has 1 sentence; makes sense)", 4),
    ("Coherence", 3), ("Coherent", 3), ("Topic relevance", 2), ("Relevance to Beekeeping", 2), ("On topic", 2),
    ("Length", 4), ("Sentence limit", 4), ("Brevity", 4),
    # two criteria side by side: no single row
    ("Metaphor and red herring", None), ("Metaphor / red herring", None), ("Correctly illustrates metaphor, red herring", None),
    ("Text makes sense and is at most one sentence", None),
])
def test_a_row_is_the_criterion_its_label_names_first(label, index):
    assert match_criterion(label, CRIT) == index


def test_a_row_naming_two_criteria_is_unscored_not_guessed():
    reply = table([1, 1, 1, 1], labels=["Metaphor and red herring", *LABELS[2:]])
    assert parse_grading(reply, CRIT).reason == "ambiguous row"


def test_html_and_tab_tables():
    html = ("<table><thead><tr><th>Criteria</th><th>Points Earned</th></tr></thead><tbody>"
            + "".join(f"<tr><td><b>{label}</b></td><td>{v}</td></tr>" for label, v in zip(LABELS, [1, 0, 1, 1, 0]))
            + "</tbody></table>\nExplanation: fine.")
    assert parse_grading(html, CRIT) == (1, 0, 1, 1, 0)
    tabs = "Criteria\tPoints Earned\n" + "\n".join(f"{label}\t{v}" for label, v in zip(LABELS, [1, 0, 1, 1, 0]))
    assert parse_grading(tabs + "\nTotal\t3\n\nok", CRIT) == (1, 0, 1, 1, 0)
    assert parse_grading(html.split("<tr><td><b>Text")[0], CRIT).reason == "truncated"
    cut_label = parse_grading(tabs.rsplit("\t", 1)[0], CRIT)  # the length row cut inside its label
    assert cut_label.reason == "missing criteria" and "stops inside its grading table" in cut_label.detail


@pytest.mark.parametrize("reply, reason", [
    (table([1, 0, 1, 1, 0], tail="")[: -len("0 |")], "truncated"),  # stops in the last cell
    (table([1, 0, 1, 1, 0], tail="").rstrip().rstrip("|").rstrip(), "truncated"),  # no closing pipe on the last row
    # ends at a row boundary, without the length or total row: the rows it has may be all there is yet
    ("\n".join(table([1, 0, 1, 1, 0], tail="").splitlines()[:-1]), "missing criteria"),
])
def test_a_reply_that_stops_in_its_table_is_unscored(reply, reason):
    result = parse_grading(reply, CRIT)
    assert result.reason == reason and ("stops inside" in result.detail or reason == "truncated"), result


@pytest.mark.parametrize("values, reason", [
    ([1, 3, 1, 1, 1], "points out of range"), ([1, "N/A", 1, 1, 1], "unreadable points"),
    ([1, "Yes (0)", 1, 1, 1], "unreadable points"),
])
def test_values_outside_the_scale_or_unreadable_are_unscored(values, reason):
    assert parse_grading(table(values), CRIT).reason == reason


def test_a_points_column_that_cannot_be_told_or_a_rubric_of_maxima_contradicted_by_prose():
    two = "| Criteria | Score | Points |\n|---|---|---|\n" + "\n".join(f"| {label} | 1 | 0 |" for label in LABELS)
    assert parse_grading(two, CRIT).reason == "unidentified points column"
    rubric = table([1, 1, 1, 1, 1], header="| Criteria | Points |", tail="")
    grades = "\n".join(f"- {label}: {v}" for label, v in zip(LABELS, [1, 0, 1, 1, 0]))
    assert parse_grading(f"The rubric:\n{rubric}\nMy grades:\n{grades}", CRIT).reason == "conflicting gradings"


def test_a_correction_announced_after_the_last_table_and_cut_off_is_unscored():
    reply = f"{DRAFT}\n\nHmm, I made a mistake with the red herring. Let me correct that:\n"
    assert parse_grading(reply, CRIT).reason == "revised in prose"
    assert parse_grading(f"{reply}\n{FINAL}", CRIT) == (1, 0, 1, 1, 0)  # the corrected table came
    assert parse_grading(f"{FINAL}\n\nThe metaphor is correct and the text makes sense.", CRIT) == (1, 0, 1, 1, 0)


@pytest.mark.parametrize("tail", ["", "\n- At mo", "\n\n**", "\n7.", "\n\n**At most one sentence**\nThe text has one"])
def test_grading_lines_that_stop_before_the_length_line_are_unscored(tail):
    lines = "\n".join(f"- {label}: {v}" for label, v in zip(LABELS[:4], [1, 0, 1, 1]))
    result = parse_grading(f"Grades:\n{lines}{tail}", CRIT)
    assert result.reason == "missing criteria" and "stops in its grading lines" in result.detail, result
    # A judge that leaves the length out but finishes its reply is read (the length is code's anyway).
    assert parse_grading(f"Grades:\n{lines}\n\nTotal: 3 of 4. The text reads well.", CRIT) == (1, 0, 1, 1, None)


PREFIX_ROWS = [r for r in READABLE if "draft" not in r["id"]]


@pytest.mark.parametrize("row", PREFIX_ROWS, ids=lambda r: r["id"])
def test_a_reply_cut_anywhere_is_read_as_in_full_or_unscored(row):
    """Truncation never changes a score: every prefix of a readable reply (cut at line ends, just
    before and after them, and every 7th character) is read as the whole reply is, or unscored.
    Draft-then-corrected replies are left out: cut right after the draft, the draft is what they say."""
    crit, reply, expected = crit_of(row), row["reply"], tuple(row["expect"])
    cuts = set(range(1, len(reply), 7))
    for at, ch in enumerate(reply):
        if ch == "\n":
            cuts |= {at - 1, at, at + 1, at + 2}
    for cut in sorted(c for c in cuts if 0 < c < len(reply)):
        result = parse_grading(reply[:cut], crit)
        assert isinstance(result, Unscored) or result == expected, (cut, reply[:cut][-80:], result)
