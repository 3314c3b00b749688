import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skillmix_tasks.prompts import criteria_for
from skillmix_tasks.metrics import item_metrics
from skillmix_tasks.sampling import Item, sample_items
from skillmix_tasks.scoring import (
    GenerationScore,
    Unscored,
    apply_rules,
    generation_metrics,
    majority_vote,
    names_skill,
    parse_grading,
    parse_value,
    score_generation,
)

ITEM = Item("t-k3-000", "custom", 3, ("red herring", "metaphor", "modus ponens"), "Beekeeping")
CRIT = criteria_for(ITEM)


def table(rows, header="| Criteria | Points Earned |\n|---|---|", total=True):
    body = "\n".join(f"| {label} | {value} |" for label, value in rows)
    tail = "\n| Total Points Earned | 99 |" if total else ""
    return f"Here's the grading table:\n\n{header}\n{body}{tail}\n\nExplanation: fine."


def rows_for(points, crit=CRIT):
    return [(c.label, p) for c, p in zip(crit, points)]


def test_plain_table():
    assert parse_grading(table(rows_for([1, 0, 1, 1, 1, 0])), CRIT) == (1, 0, 1, 1, 1, 0)


@pytest.mark.parametrize("cell, expected", [
    ("1", 1.0), ("0", 0.0), ("**1**", 1.0), ('"0"', 0.0), ("1/1", 1.0), ("0/1", 0.0), ("1 point", 1.0),
    ("0 points", 0.0), ("0.5", 0.5), ("1/2", 0.5), ("`1`", 1.0), ("1.", 1.0), ("yes", None), ("", None),
    ("one", None),
])
def test_parse_value(cell, expected):
    assert parse_value(cell) == expected


def test_partial_credit_is_kept_and_out_of_range_is_unscored():
    assert parse_grading(table(rows_for([1, "0.5", 1, 1, 1, 1])), CRIT) == (1, 0.5, 1, 1, 1, 1)
    assert parse_grading(table(rows_for([1, "1/2", "2/2", 1, 1, 1])), CRIT) == (1, 0.5, 1, 1, 1, 1)
    bad = parse_grading(table(rows_for([1, 2, 1, 1, 1, 1])), CRIT)
    assert isinstance(bad, Unscored) and bad.reason == "points out of range"


def test_bold_quoted_cells_and_missing_outer_pipes():
    reply = ("Criteria | Points Earned\n--- | ---\n"
             + "\n".join(f"**{c.label}** | **{p}**" for c, p in zip(CRIT, [1, 1, 0, 1, 0, 1])))
    assert parse_grading(reply, CRIT) == (1, 1, 0, 1, 0, 1)
    quoted = table([(f'"{c.label}"', f"'{p}'") for c, p in zip(CRIT, [0, 1, 0, 1, 1, 1])])
    assert parse_grading(quoted, CRIT) == (0, 1, 0, 1, 1, 1)


def test_extra_columns_use_the_points_earned_column():
    header = "| # | Criteria | Points Possible | Points Earned | Comment |\n|--|--|--|--|--|"
    body = "\n".join(f"| {i} | {c.label} | 1 | {p} | ok |" for i, (c, p) in enumerate(zip(CRIT, [1, 0, 0, 1, 1, 1])))
    assert parse_grading(f"{header}\n{body}", CRIT) == (1, 0, 0, 1, 1, 1)


def test_rows_in_another_order_with_total_first_and_chatter_around():
    rows = rows_for([1, 0, 1, 0, 1, 1])
    random.Random(3).shuffle(rows)
    reply = "Sure! " + table([("Total", 4)] + rows, total=False) + "\nHope this helps."
    assert parse_grading(reply, CRIT) == (1, 0, 1, 0, 1, 1)


def test_fractions_and_point_words():
    reply = table([(c.label, v) for c, v in zip(CRIT, ["1/1", "0/1", "1 point", "1 pt", "0 points", "1"])])
    assert parse_grading(reply, CRIT) == (1, 0, 1, 1, 0, 1)


def test_missing_row_is_unscored_not_zero():
    result = parse_grading(table(rows_for([1, 1, 1, 1, 1])[:4] + [(CRIT[5].label, 1)]), CRIT)
    assert isinstance(result, Unscored) and result.reason == "missing criteria"
    assert "Text makes sense" in result.detail


def test_conflicting_duplicate_rows_are_unscored():
    rows = rows_for([1, 1, 1, 1, 1, 1]) + [(CRIT[0].label, 0)]
    result = parse_grading(table(rows), CRIT)
    assert isinstance(result, Unscored) and result.reason == "conflicting rows"


def test_unreadable_points_cell_is_unscored_with_the_row_named():
    result = parse_grading(table(rows_for([1, "yes", 1, 1, 1, 1])), CRIT)
    assert isinstance(result, Unscored) and "Correctly illustrates metaphor" in result.detail


@pytest.mark.parametrize("reply, reason", [
    ("", "empty reply"),
    ("I cannot help with grading this.", "no grading table"),
    ("| a | b |\n|---|---|\n| x | 1 |", "no grading table"),
])
def test_refusals_and_junk_are_unscored(reply, reason):
    result = parse_grading(reply, CRIT)
    assert isinstance(result, Unscored) and result.reason == reason


def test_longest_match_separates_similar_names():
    item = Item("x", "custom", 2, ("irony", "dramatic irony"), "Opera")
    crit = criteria_for(item)
    rows = [("Correctly illustrates dramatic irony", 0), ("Correctly illustrates irony", 1),
            ("Pertains to Opera", 1), ("Text makes sense", 1), ("At most one sentence", 1)]
    assert parse_grading(table(rows), crit) == (1, 0, 1, 1, 1)


def test_point_earned_prose_is_read_when_complete():
    reply = ("**Red Herring**: yes. Point earned: 1\n\n**Metaphor**: no. Point earned: 0\n\n"
             "**Modus ponens**: partly. Point earned: 0.5\n\nPertains to Beekeeping: Point earned: 1\n"
             "Text makes sense - Point earned: 1\nAt most two sentences: Point earned: 1\nGrade: 4")
    assert parse_grading(reply, CRIT) == (1, 0, 0.5, 1, 1, 1)


def test_every_reference_table_reply_is_read_exactly(reference_rows):
    rows = [r for r in reference_rows if r["grader_prompt_style"] == "table"]
    assert len(rows) >= 10
    for r in rows:
        item = Item("ref", "custom", r["k"], tuple(r["skills"]), r["topic"])
        expected = tuple(int(float(v)) for v in r["reference_parse_points"].split(","))
        assert parse_grading(r["grader_reply"], criteria_for(item)) == expected, r["source"]


# Hand-read from each reference reply: the skill points a careful reader finds, or None when
# the reply is truncated or names no points. Half points are kept as given (the vote rounds them).
POINT_EARNED_TRUTH = {0: (0, 0, 0), 1: None, 2: (0, 0.5, 1), 3: None, 4: None, 5: (0, 1, 0), 11: (1, 0, 0),
                      12: (1, 0, 0), 13: (0, 0, 1), 14: None, 15: None, 21: (1, 1, 0), 22: (1, 0, 0)}


def test_point_earned_replies_are_read_correctly_or_unscored(reference_rows):
    rows = reference_rows
    seen = 0
    for i, r in enumerate(rows):
        if r["grader_prompt_style"] != "point-earned":
            continue
        seen += 1
        item = Item("ref", "custom", r["k"], tuple(r["skills"]), r["topic"])
        crit = criteria_for(item)
        # Against the full rubric these replies lack topic/sense/length rows: unscored, never zeros.
        full = parse_grading(r["grader_reply"], crit)
        assert isinstance(full, Unscored) and full.reason, i
        # Against the skills they were asked about: correct where complete, unscored otherwise.
        skills_only = parse_grading(r["grader_reply"], crit[: r["k"]])
        if POINT_EARNED_TRUTH[i] is None:
            assert isinstance(skills_only, Unscored), (i, skills_only)
        else:
            assert skills_only == POINT_EARNED_TRUTH[i], i
    assert seen == len(POINT_EARNED_TRUTH)


CELL_STYLES = [lambda p: str(p), lambda p: f"**{p}**", lambda p: f"{p}/1", lambda p: f"{p} point",
               lambda p: f'"{p}"', lambda p: f"{p}.0"]
LABEL_STYLES = [lambda s: s, lambda s: f"**{s}**", lambda s: s.lower(), lambda s: s.upper(), lambda s: f"'{s}'"]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), k=st.integers(1, 6), split=st.sampled_from(["train", "heldout", "all"]))
def test_parser_recovers_points_from_any_table_variant(data, k, split):
    item = data.draw(st.sampled_from(sample_items(split, k, 20)))
    crit = criteria_for(item)
    points = data.draw(st.lists(st.integers(0, 1), min_size=k + 3, max_size=k + 3))
    cell = data.draw(st.sampled_from(CELL_STYLES))
    label = data.draw(st.sampled_from(LABEL_STYLES))
    rows = [(label(c.label), cell(p)) for c, p in zip(crit, points)]
    rows = data.draw(st.permutations(rows))
    total_at = data.draw(st.integers(0, len(rows)))
    rows = list(rows[:total_at]) + [("Total Points Earned", sum(points))] + list(rows[total_at:])
    pipes = data.draw(st.booleans())
    lines = ["| Criteria | Points Earned |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    if not pipes:
        lines = [line.strip("| ") for line in lines]
    reply = data.draw(st.sampled_from(["", "Here's the grading table:\n\n"])) + "\n".join(lines) + "\n\nExplanation: ..."
    assert parse_grading(reply, crit) == tuple(points)


@settings(max_examples=100, deadline=None)
@given(reply=st.text(max_size=400))
def test_parser_never_crashes_and_never_invents_points(reply):
    result = parse_grading(reply, CRIT)
    assert isinstance(result, Unscored) or (len(result) == len(CRIT) and all(
        p is None or (0 <= p <= 1 and p in {0, 0.5, 1}) for p in result)) and (isinstance(result, Unscored) or
                                                                                 None not in result[:-1])


@pytest.mark.parametrize("text, skill, named", [
    ("A red herring swam by.", "red herring", True),
    ("A RED  HERRING swam by.", "red herring", True),
    ("That is a red-herring.", "red herring", True),
    ("The reddish herring swam.", "red herring", False),
    ("Metaphors abound.", "metaphor", True),
    ("Her words were metaphors for loss.", "metaphor", True),
    ("The metaphor's edge cut.", "metaphor", True),
    ("A metaphorical hive.", "metaphor", False),
    ("Two red herrings swam by.", "red herring", True),
    ("The red-herrings' scent faded.", "red herring", True),
    ("Puns were everywhere.", "pun", True),
    ("The punishment fit the crime.", "pun", False),
    ("A spun thread.", "pun", False),
    ("Both fallacies of division fail.", "fallacy of division", True),
    ("Self-serving biases again.", "self serving bias", True),
    ("Her hyperboles tired us.", "hyperbole", True),
    ("An ad hominem's sting.", "ad hominem", True),
    ("Analogies help.", "analogy", True),
    ("What a metaphor!", "metaphor", True),
    ("An accident happened.", "accident (fallacy)", True),
    ("A fallacy here.", "accident (fallacy)", False),
    ("Self-serving bias again.", "self serving bias", True),
])
def test_name_penalty(text, skill, named):
    assert names_skill(text, skill) is named


def test_apply_rules_replaces_length_and_penalises_names():
    text = "The bees hum. Honey flows. A metaphor buzzes."
    # judge gave everything; text names "metaphor" and has 3 sentences > cap 2
    assert apply_rules(ITEM, text, (1, 1, 1, 1, 1, 1)) == (1, 0, 1, 1, 1, 0)
    # the judge's length point is ignored in both directions
    assert apply_rules(ITEM, "The hive hums.", (1, 1, 1, 1, 1, 0)) == (1, 1, 1, 1, 1, 1)


def test_majority_vote():
    assert majority_vote([(1, 0, 1), (1, 1, 0), (0, 1, 1)]) == (1, 1, 1)
    assert majority_vote([(1, 0, 1), (0, 0, 1), (0, 1, 0)]) == (0, 0, 1)
    # unscored gradings excluded; a 1-1 tie does not award the point
    assert majority_vote([(1, 0), Unscored("api error"), (1, 1)]) == (1, 0)
    one = majority_vote([(1, 1), Unscored("api error"), Unscored("missing criteria")])
    assert isinstance(one, Unscored) and one.reason == "too few valid gradings"
    assert "api error" in one.detail and "missing criteria" in one.detail
    assert majority_vote([(1, 1)]) == (1, 1)  # one grading asked for, one given
    assert isinstance(majority_vote([]), Unscored)


@pytest.mark.parametrize("points, full, all_skills, fraction", [
    ((1, 1, 1, 1, 1, 1), 1, 1, 1.0),
    ((1, 1, 1, 1, 1, 0), 0, 1, 0.0),
    ((1, 1, 1, 0, 0, 1), 0, 0, 0.0),
    ((1, 0, 1, 1, 1, 1), 0, 0, 2 / 3),
    ((0, 0, 0, 1, 1, 1), 0, 0, 0.0),
])
def test_generation_metrics(points, full, all_skills, fraction):
    g = generation_metrics(3, points)
    assert (g.full_marks, g.all_skills, g.skills_fraction) == (full, all_skills, pytest.approx(fraction))
    with pytest.raises(ValueError):
        generation_metrics(3, points[:5])


def test_score_generation_end_to_end():
    full = table(rows_for([1, 1, 1, 1, 1, 1]))
    text = "The keeper's hive is a humming city; if smoke calms bees, then we smoke."
    score = score_generation(ITEM, text, [full, full, "garbage"])
    assert isinstance(score, GenerationScore) and score.full_marks == 1.0
    unscored = score_generation(ITEM, text, ["garbage", "", full])
    assert isinstance(unscored, Unscored) and unscored.reason == "too few valid gradings"


def test_golden_reply_tests_fail_under_ci_when_the_data_is_missing(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "CI": "true", "SKILLMIX_REFERENCE": str(tmp_path / "absent.jsonl")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                          "-k", "every_reference_table_reply"], cwd=Path(__file__).parents[1], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "1 error" in run.stdout and "CI=true" in run.stdout, run.stdout[-2000:]
    env["CI"] = ""
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                          "-k", "every_reference_table_reply"], cwd=Path(__file__).parents[1], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "1 skipped" in run.stdout, run.stdout[-2000:]


# -- the earned column is chosen by its header (issue 14, defect 5)
@pytest.mark.parametrize("header, row", [
    ("| Criteria | Points Possible | Points Earned |", "| {label} | 1 | {p} |"),
    ("| Criteria | Points Earned | Points Possible |", "| {label} | {p} | 1 |"),
    ("| Criteria | Max Points | Points |", "| {label} | 1 | {p} |"),
    ("| Criteria | Points | Max Points |", "| {label} | {p} | 1 |"),
    ("| Criteria | Maximum | Score |", "| {label} | 1 | {p} |"),
    ("| Criterion | Score | Out of |", "| {label} | {p} | 1 |"),
    ("| Criteria | Available Points | Awarded |", "| {label} | 1 | {p} |"),
    ("| # | Criteria | Points Possible | Points Earned | Comment |", "| 1 | {label} | 1 | {p} | fine |"),
])
def test_three_column_tables_read_the_earned_column(header, row):
    points = [1, 0, 0, 1, 0, 1]
    ncols = header.count("|") - 1
    body = "\n".join(row.format(label=c.label, p=p) for c, p in zip(CRIT, points))
    reply = f"{header}\n|{'---|' * ncols}\n{body}\n| Total | 6 | 3 |"
    assert parse_grading(reply, CRIT) == tuple(points)


@pytest.mark.parametrize("header", [
    "| Criteria | Points A | Points B |",
    "| Criteria | Judge 1 | Judge 2 |",
    None,  # no header at all: two numbers a row
])
def test_a_table_whose_earned_column_cannot_be_identified_is_unscored(header):
    body = "\n".join(f"| {c.label} | 1 | 0 |" for c in CRIT)
    reply = (f"{header}\n|---|---|---|\n" if header else "") + body
    result = parse_grading(reply, CRIT)
    assert isinstance(result, Unscored) and result.reason == "unidentified points column", result


# -- the length row is optional: its point is computed by code (issue 14, defect 6)
def test_a_grading_without_the_length_row_is_scored():
    result = parse_grading(table(rows_for([1, 0, 1, 1, 1])), CRIT)
    assert result == (1, 0, 1, 1, 1, None)
    text = "The hive hums."
    score = score_generation(ITEM, text, [table(rows_for([1, 1, 1, 1, 1]))] * 3)
    assert isinstance(score, GenerationScore) and score.points == (1, 1, 1, 1, 1, 1)
    # other rows stay required
    missing_sense = parse_grading(table(rows_for([1, 1, 1, 1]) + [(CRIT[5].label, 1)]), CRIT)
    assert isinstance(missing_sense, Unscored) and missing_sense.reason == "missing criteria"


def test_vote_with_and_without_length_rows():
    assert majority_vote([(1, 1, None), (1, 0, 1), (0, 1, None)]) == (1, 1, 1)
    assert majority_vote([(1, 1, None), (1, 1, None)]) == (1, 1, None)
    assert majority_vote([(1, 1, 1), (1, 0, 1), (0, 1, None)]) == (1, 1, 1)


# -- an empty or blank answer scores 0, with its reason, and no reply is needed (defect 1)
@pytest.mark.parametrize("text", ["", "   ", "\n\t\n", "**", "..."])
def test_a_blank_answer_is_a_scored_zero(text):
    lenient = table(rows_for([1, 1, 1, 1, 1, 1]))
    for replies in ([], [lenient] * 3, ["garbage"] * 3):
        score = score_generation(ITEM, text, replies)
        assert isinstance(score, GenerationScore), score
        assert (score.full_marks, score.all_skills, score.skills_fraction) == (0, 0, 0)
        assert score.points == (0,) * 6 and score.reason == "empty answer"


def test_score_text_keeps_the_gradings_and_a_shared_failure_reason():
    from skillmix_tasks.scoring import score_text

    full = table(rows_for([1, 1, 1, 1, 1, 1]))
    s = score_text(ITEM, "The hive hums.", [full, Unscored("timeout", "30 s"), full])
    assert s.gradings[1] == Unscored("timeout", "30 s") and s.voted == (1, 1, 1, 1, 1, 1)
    assert isinstance(s.score, GenerationScore) and s.score.full_marks == 1.0
    failed = score_text(ITEM, "The hive hums.", [Unscored("budget", "x")] * 3)
    assert isinstance(failed.score, Unscored) and failed.score.reason == "budget"
    mixed = score_text(ITEM, "The hive hums.", [Unscored("budget"), "garbage", Unscored("timeout")])
    assert mixed.score.reason == "too few valid gradings"


def _reference_metrics(k, generations):
    """The public reference code's arithmetic (aggregate_metrics.py), written out independently with
    numpy as it does it: per criterion the float32 mean of the gradings rounded by ``np.rint`` (half to
    even), per generation the three metrics, per item the max over generations."""
    import numpy as np

    best = {"full_marks": 0.0, "all_skills": 0.0, "skills_fraction": 0.0}
    for gradings in generations:
        voted = np.rint(np.array(gradings, dtype=np.float32).mean(axis=0))
        skills, rest = voted[:k], voted[k:]
        full = float(voted.sum() == k + 3)
        all_sk = float(skills.sum() == k and rest.sum() >= 2)
        frac = float(skills.sum() / k) if rest.sum() == 3 else 0.0
        best = {"full_marks": max(best["full_marks"], full), "all_skills": max(best["all_skills"], all_sk),
                "skills_fraction": max(best["skills_fraction"], frac)}
    return best


def test_partial_credit_and_ties_as_the_reference_rounds_them():
    """Crafted gradings with half points, fractions and ties, against the reference's arithmetic."""
    assert majority_vote([(1, 1, 0.5)] * 1 + [(1, 0.5, 0.5), (0.5, 0, 0.5)]) == (1, 0, 0)
    assert majority_vote([(1,), (0.5,), (0,)]) == (0,)  # a mean of exactly one half: not earned (rint(0.5) = 0)
    assert majority_vote([(1,), (1,), (0.5,)]) == (1,) and majority_vote([(1,), (0.5,), (0.5,)]) == (1,)
    assert majority_vote([(0.5,), (0.5,), (0.5,)]) == (0,) and majority_vote([(1,), (0.5,)]) == (1,)
    assert majority_vote([(1,), (0,)]) == (0,) and majority_vote([(1,), (1,), (0,), (0,)]) == (0,)  # ties
    # Where we differ on purpose: an unreadable grading is no grading here; the reference counts it as zeros.
    assert majority_vote([(1,), (0.5,), Unscored("no grading table")]) == (1,)
    assert _reference_metrics(1, [[[1, 1, 1, 1], [0.5, 1, 1, 1], [0, 0, 0, 0]]])["full_marks"] == 0.0
    rng = random.Random(7)
    values = (0, 0.25, 0.5, 0.75, 1, 1, 0, 0.5)  # exact binary fractions: float32 and float64 agree
    for trial in range(3000):
        k = rng.randint(1, 6)
        n_gradings = rng.choice((1, 2, 3, 3, 3, 4, 5))
        gens = [[[rng.choice(values) for _ in range(k + 3)] for _ in range(n_gradings)] for _ in range(3)]
        ours = [generation_metrics(k, majority_vote(g)) for g in gens]
        assert item_metrics(ours) == pytest.approx(_reference_metrics(k, gens)), (trial, gens)


def test_metrics_equal_the_reference_arithmetic_on_every_table_reply(reference_rows):
    import itertools

    from skillmix_tasks.metrics import item_metrics

    import re

    rows = [r for r in reference_rows if r["grader_prompt_style"] == "table"]
    assert len(rows) >= 10 and {r["k"] for r in rows} == {3}
    ours, theirs = [], []
    for r in rows:
        item = Item("ref", "custom", r["k"], tuple(r["skills"]), r["topic"])
        points = [float(v) for v in r["reference_parse_points"].split(",")]
        # Each reply as the judge wrote it, and with its topic / sense / length row turned to 0 (the
        # real replies give those rows 1, which would leave "at least 2 of the other 3" untested).
        variants = [(r["grader_reply"], points)]
        for row, marker in ((3, "pertains"), (4, "sense"), (5, "at most")):
            lines = r["grader_reply"].splitlines()
            at = next(i for i, line in enumerate(lines) if "|" in line and marker in line.lower())
            lines[at] = re.sub(r"\d(?=\s*\|?\s*$)", "0", lines[at])
            variants.append(("\n".join(lines), [0 if c == row else p for c, p in enumerate(points)]))
        for reply, expected in variants:
            ours.append(parse_grading(reply, criteria_for(item)))
            theirs.append(expected)
            assert list(ours[-1]) == expected
    # Every triple of replies is one generation's three gradings; three generations make an item.
    triples = list(itertools.combinations(range(len(rows)), 3))
    random.Random(0).shuffle(triples)
    items_checked = 0
    for start in range(0, len(triples) - 2, 3):
        gens = triples[start:start + 3]
        scores = [generation_metrics(3, majority_vote([ours[i] for i in g])) for g in gens]
        expected = _reference_metrics(3, [[theirs[i] for i in g] for g in gens])
        assert item_metrics(scores) == pytest.approx(expected), gens
        items_checked += 1
    assert items_checked == len(triples) // 3
    # and each reply alone, graded three times, is one generation of one item
    for o, t in zip(ours, theirs):
        assert item_metrics([generation_metrics(3, majority_vote([o] * 3))]) == pytest.approx(_reference_metrics(3, [[t] * 3]))


@pytest.mark.parametrize("text", ["The bees bask in the sun. The hive hums.", "The cat sat. It purred.",
                                  "They flew to the U.S. The trip was long.", "We left at 6 a.m. It was dark."])
def test_two_sentences_miss_the_length_point_at_cap_one(text):
    item = Item("x", "custom", 2, ("red herring", "metaphor"), "Beekeeping")  # k=2: at most one sentence
    assert apply_rules(item, text, (1, 1, 1, 1, 1)) == (1, 1, 1, 1, 0)
    assert apply_rules(item, "Dr. Smith keeps the U.S. Army hives.", (1, 1, 1, 1, 0))[-1] == 1
