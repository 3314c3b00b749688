"""skillmix-grade end to end: both input formats, bad input, several judges, dry run, and a
run killed mid-way whose re-run makes no call for the gradings that had finished."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from fake_llm_server import Action, FakeLLMServer
from grading_helpers import FAKE_KEY, TEXT, items
from skillmix.grading.agreement import cohen_kappa
from skillmix.harness.regrade import main


@pytest.fixture
def env(monkeypatch, tmp_path):
    for var in ("SKILLMIX_JUDGE", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SKILLMIX_CACHE", str(tmp_path / "cache.sqlite"))
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    return tmp_path


@pytest.fixture
def srv():
    with FakeLLMServer() as s:
        yield s


def write_plain(path, n=3, gens=2):
    with open(path, "w") as f:
        for it in items(n):
            for g in range(gens):
                f.write(json.dumps({"id": it.id, "skills": list(it.skills), "topic": it.topic,
                                    "text": f"{TEXT[:40]} version {g}."}) + "\n")
    return path


def test_plain_jsonl(env, srv, capsys):
    inp = write_plain(env / "texts.jsonl")
    out = env / "grades.jsonl"
    spec = f"openai-compatible:m@{srv.openai_url}"
    assert main(["--judge", spec, "--input", str(inp), "--output", str(out), "--no-progress"]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 6 and all(x["status"] == "scored" and x["judge"] == spec for x in lines)
    summary = json.loads((env / "grades.summary.json").read_text())
    # A person gets a short table; --json prints the whole summary.
    table = capsys.readouterr().out
    assert len(table.splitlines()) < 10 and spec in table and "1.000" in table and "3 of 3" in table
    assert str(env / "grades.summary.json") in table
    assert main(["--judge", spec, "--input", str(inp), "--output", str(out), "--no-progress", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert {k: v for k, v in again.items() if k != "judges"} == {k: v for k, v in summary.items() if k != "judges"}
    assert [j["metrics"] for j in again["judges"]] == [j["metrics"] for j in summary["judges"]]
    [s] = summary["judges"]
    assert s["items"]["n"] == 3 and s["texts"]["n"] == 6 and s["metrics"]["full_marks"]["mean"] == 1.0
    assert s["stats"]["judged"] == 18 and s["stats"]["cached"] == 0 and "rate_limited_429" in s["stats"]
    assert summary["agreement"] is None


def test_lmeval_samples_and_two_judges(env, srv, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", srv.openai_url)
    inp = env / "samples_skillmix_heldout_k2_2024.jsonl"
    with open(inp, "w") as f:
        for it in items(3):
            gens = [f"Answer: {TEXT[:40]} {i}.\nExplanation: it shows the skills." for i in range(3)]
            f.write(json.dumps({"doc_id": 0, "doc": {**it.to_dict(), "protocol": "single-turn"}, "resps": [gens],
                                "filtered_resps": ['{"full_marks": 1}']}) + "\n")
    # The second judge fails the topic for items whose text ends in 1.
    srv.handler = lambda r: Action(points=[1, 1, 0, 1, 1]) if r["body"]["model"] == "strict" and " 1." in json.dumps(r["body"]) else None
    out = env / "g.jsonl"
    rc = main(["--judge", "openai:gpt-4o", "--judge", f"openai-compatible:strict@{srv.openai_url}",
               "--input", str(inp), "--output", str(out), "--no-progress"])
    assert rc == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 18 and "Explanation" not in lines[0]["text"] and lines[0]["text"].startswith("The tailor")
    summary = json.loads((env / "g.summary.json").read_text())
    strict = summary["judges"][1]
    # Item = max over its generations: the two generations the strict judge passes carry each item.
    assert strict["metrics"]["full_marks"]["mean"] == 1.0
    assert sum(x["full_marks"] == 0 for x in lines if "strict" in x["judge"]) == 3
    topic = summary["agreement"]["between_judges"][f"openai:gpt-4o vs openai-compatible:strict@{srv.openai_url}"]["topic"]
    assert topic["n"] == 9 and topic["percent_agreement"] == pytest.approx(6 / 9, abs=1e-3)
    assert summary["agreement"]["self_consistency"]["openai:gpt-4o"]["skill"]["unanimous"] == 1.0
    assert summary["agreement"]["length_vs_sentence_count"]["openai:gpt-4o"]["n"] == 9


@pytest.mark.parametrize("content, message", [
    ("{not json\n", "grades_in.jsonl:1: not valid JSON"),
    ('{"id": "a", "skills": ["metaphor"], "topic": "Sewing", "text": "x"}\n{"id": "b", "topic": "Sewing", "text": "x"}\n',
     "grades_in.jsonl:2: missing field(s) skills"),
    ('{"id": "a", "skills": ["no such skill"], "topic": "Sewing", "text": "x"}\n', "unknown skill"),
    ('{"doc": {"id": "a", "skills": ["metaphor"], "topic": "Sewing", "protocol": "single-turn"}, "resps": [[3]]}\n',
     "grades_in.jsonl:1: doc 'a' has no turns to grade"),
    ('{"hello": 1}\n', "expected an lm-eval sample"),
])
def test_bad_input_names_file_and_line(env, srv, capsys, content, message):
    inp = env / "grades_in.jsonl"
    inp.write_text(content)
    rc = main(["--judge", f"openai-compatible:m@{srv.openai_url}", "--input", str(inp), "--output", str(env / "o.jsonl")])
    assert rc == 2 and message in capsys.readouterr().err and srv.requests == []


def test_no_judge_error_and_dry_run(env, srv, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    inp = write_plain(env / "texts.jsonl")
    assert main(["--input", str(inp), "--output", str(env / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "four ways" in err and "skillmix-grade --judge openai:gpt-4o" in err and "lm_eval" not in err
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    assert main(["--judge", "openai:gpt-4o", "--input", str(inp), "--dry-run"]) == 0
    table = capsys.readouterr().out
    assert "nothing was sent" in table and "openai:gpt-4o" in table and "6 calls" in table
    assert main(["--judge", "openai:gpt-4o", "--input", str(inp), "--dry-run", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    # 6 texts x 3 gradings: 18 replies in 6 requests (the 3 gradings of a text are one request's n=3).
    assert (est["total_calls"], est["total_replies"]) == (6, 18) and est["total_cost_est"] > 0 and srv.requests == []
    assert main(["--judge", "openai:gpt-4o", "--input", str(inp), "--dry-run", "--choices-per-call", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_calls"] == 18


def test_kappa():
    assert cohen_kappa([1, 1, 0, 0], [1, 1, 0, 0]) == 1.0
    assert cohen_kappa([1, 0, 1, 0], [0, 1, 0, 1]) == -1.0
    assert cohen_kappa([1, 1, 1, 0], [1, 1, 0, 0]) == pytest.approx(0.5)
    assert cohen_kappa([], []) is None


def test_killed_run_resumes_without_repeating_finished_calls(env, tmp_path):
    inp = write_plain(env / "texts.jsonl", n=10, gens=3)  # 30 texts, 90 gradings
    cache = env / "kill.sqlite"
    with FakeLLMServer(latency=0.1) as srv:
        cmd = [sys.executable, "-m", "skillmix.harness.regrade", "--judge", f"openai-compatible:m@{srv.openai_url}",
               "--input", str(inp), "--output", str(env / "o.jsonl"), "--cache", str(cache),
               "--concurrency", "4", "--no-progress"]
        srv.kill_after(cmd, calls=30)
        first_calls = srv.calls
        assert 30 <= first_calls < 90 and not (env / "o.jsonl").exists()
        done = sqlite3.connect(cache).execute("select count(*) from replies").fetchone()[0]
        assert first_calls - 4 <= done <= first_calls  # only calls in flight were lost
        subprocess.run(cmd, env=dict(os.environ), check=True, stdout=subprocess.DEVNULL, timeout=120)
        assert srv.calls - first_calls == 90 - done
    summary = json.loads((env / "o.summary.json").read_text())["judges"][0]
    assert summary["stats"]["cached"] == done and summary["stats"]["judged"] == 90 - done
    assert summary["texts"]["scored"] == 30


def test_a_misspelt_setting_in_the_config_stops_before_any_call(env, srv, capsys):
    inp = write_plain(env / "texts.jsonl")
    cfg = env / "judge.yaml"
    cfg.write_text(f"judge: openai-compatible:m@{srv.openai_url}\nn_grading: 1\n")
    assert main(["--config", str(cfg), "--input", str(inp), "--output", str(env / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skillmix-grade: error:") and str(cfg) in err and "did you mean 'n_gradings'" in err
    assert srv.requests == [] and not (env / "o.jsonl").exists()
