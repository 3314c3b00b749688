"""The verdict format has one owner: what the filter writes is what every reader reads, in every layout
lm-eval logs, and samples that must not be pooled are refused with their doc ids."""

import json

import pytest

from fake_llm_server import FakeLLMServer
from grading_helpers import items, judge_for
from skillmix.harness.regrade import InputError, read_pairs
from skillmix.harness.verdicts import SamplesError, check_one_run, parse_sample, read_samples, read_verdict, write_verdict
from skillmix_tasks.prompts import PROMPT_VERSION


def _line(doc: dict, verdict: str, nested: bool = False) -> dict:
    return {"doc_id": 0, "doc": doc, "resps": [["Answer: draft."] * 3],
            "filtered_resps": [[verdict]] if nested else [verdict], "filter": "judged"}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Real TextGrades of two items x 3 texts from a judge on a local OpenAI-protocol server."""
    tmp = tmp_path_factory.mktemp("v")
    with pytest.MonkeyPatch.context() as mp, FakeLLMServer() as srv:
        judge = judge_for("local", srv, tmp, mp)
        its = items(2, k=2)
        texts = ["The seam held, so the hem held.", "", "A short text on the topic."]
        grades = judge.grade([(it, t) for it in its for t in texts], progress=False)
    return its, texts, grades


def test_what_the_filter_writes_reads_back_the_same(graded):
    its, texts, grades = graded
    turns = [[f"Answer: draft {r}.", f"Answer: {t}\nExplanation: x."] for r, t in enumerate(texts)]
    for nested in (False, True):  # lm-eval nests the filtered response per repeat in some versions
        s = parse_sample(_line({**its[0].to_dict(), "protocol": "two-turn"},
                               write_verdict(its[0].to_dict(), "two-turn", turns, grades[:3], judge="j"), nested))
        assert (s.id, s.protocol, s.judge, s.prompt_version, s.status) == (its[0].id, "two-turn", "j", PROMPT_VERSION, "scored")
        assert s.final_texts() == texts  # the final turn's answer, never the draft
        assert [g.draft for g in s.generations] == [f"Answer: draft {r}." for r in range(3)]
        assert [g.status for g in s.generations] == ["scored" if g.scored else "unscored" for g in grades[:3]]
        assert [g.points for g in s.generations] == [list(g.score.points) for g in grades[:3]]
        # The empty answer scores 0 and the item's metrics are the max over its generations.
        assert s.generations[1].points == [0] * len(s.generations[1].criteria)
        assert s.scores == {m: max(getattr(g.score, m) for g in grades[:3]) for m in s.scores}
        assert s.skill_points == [max(g.score.points[i] for g in grades[:3]) for i in range(2)]


def test_unjudged_and_unreadable_verdicts_are_never_grades(graded):
    its, _, _ = graded
    doc = {**its[0].to_dict(), "protocol": "two-turn"}
    s = parse_sample(_line(doc, write_verdict(doc, "two-turn", [["Answer: a.", "Answer: b."]], status="not judged",
                                              reason="predict_only")))
    assert (s.status, s.reason, s.scores, s.outcome, s.final_texts()) == ("not judged", "predict_only", None,
                                                                         "not judged", ["b."])
    for bad in ("{not json", "[1, 2]", json.dumps({"status": "scored", "scores": {"full_marks": 7}})):
        s = parse_sample(_line(doc, bad))
        assert s.status == "unscored" and s.scores is None and s.outcome == "unscored"
    # A scored verdict whose scores are gone is not a score.
    assert parse_sample(_line(doc, json.dumps({"status": "scored", "scores": {}}))).status == "unscored"
    assert read_verdict(["{}"]) == {} and read_verdict(None) == {} and read_verdict([{"a": 1}]) == {"a": 1}


def test_single_turn_replies_come_from_resps_only_for_a_single_turn_doc(graded):
    its, _, _ = graded
    line = {"doc": {**its[0].to_dict(), "protocol": "single-turn"}, "resps": [["Answer: one.", "Answer: two."]],
            "filtered_resps": ["{}"]}
    assert parse_sample(line).final_texts() == ["one.", "two."]
    line["doc"]["protocol"] = "two-turn"  # lm-eval's resps of a two-turn task are drafts
    with pytest.raises(SamplesError, match="no turns to grade"):
        parse_sample(line, "f.jsonl:3").final_texts()


def test_pooling_is_refused_with_the_doc_ids(graded, tmp_path):
    its, _, _ = graded

    def sample(it, protocol="two-turn", judge="a", n=1):
        doc = {**it.to_dict(), "protocol": protocol}
        return parse_sample(_line(doc, write_verdict(doc, protocol, [["Answer: x.", "Answer: y."]], judge=judge)),
                            f"s.jsonl:{n}")

    check_one_run([sample(its[0]), sample(its[1])])  # one run: fine
    cases = [([sample(its[0]), sample(its[0], "single-turn", n=2)], "protocols"),
             ([sample(its[0]), sample(its[0], judge="b", n=2)], "judges"),
             ([sample(its[0]), sample(its[1]), sample(its[0], n=3)], "the same items twice")]
    for samples, word in cases:
        with pytest.raises(SamplesError) as e:
            check_one_run(samples)
        assert word in str(e.value) and its[0].id in str(e.value) and its[1].id not in str(e.value)
        assert "s.jsonl:1" in str(e.value)
    # Through skillmix-grade's reader, naming the file.
    path = tmp_path / "joined.jsonl"
    doc = {**its[0].to_dict(), "protocol": "two-turn"}
    line = _line(doc, write_verdict(doc, "two-turn", [["Answer: x.", "Answer: y."]]))
    single = {**line, "doc": {**doc, "protocol": "single-turn"},
              "filtered_resps": [write_verdict(doc, "single-turn", [["Answer: z."]])]}
    path.write_text(json.dumps(line) + "\n" + json.dumps(single) + "\n")
    with pytest.raises(InputError, match=rf"joined.jsonl: .*protocols.*{its[0].id}"):
        read_pairs(path)


def test_a_file_that_is_not_samples_names_file_and_line(tmp_path):
    path = tmp_path / "samples_skillmix_heldout_k2_2026-01-01T00-00-00.jsonl"
    path.write_text('{"doc": {"id": "a", "skills": ["metaphor"], "topic": "T"}}\n{"hello": 1}\n{broken\n')
    with pytest.raises(SamplesError, match=r"samples_.*\.jsonl:2: not a SKILL-MIX sample"):
        read_samples(path)
    warnings: list[str] = []
    with pytest.raises(SamplesError, match=r":3: not valid JSON"):  # a broken file is never half read
        read_samples(path, skip_bad_lines=warnings)
    path.write_text('{"doc": {"id": "a", "skills": ["metaphor"], "topic": "T"}}\n{"hello": 1}\n')
    assert [s.id for s in read_samples(path, skip_bad_lines=warnings)] == ["a"] and ":2:" in warnings[0]
