"""Paper-scale evaluation at batch prices, the documented way: ``lm_eval --predict_only --log_samples``
generates, ``skillmix-grade --batch --results-dir`` grades the samples through the OpenAI Batch API
(a local server speaking it, the real SDK) into an lm-eval results file, and the leaderboard reads it.
Also the other way: the task's filter itself waits for its batches when the judge has batch: true."""

import glob
import json
from pathlib import Path

import pytest

from fake_llm_server import FakeLLMServer
from grading_helpers import FAKE_KEY
from lmeval_helpers import results, run_lm_eval
from skillmix.harness.regrade import main as grade_main
from skillmix.leaderboard.results import load
from skillmix_tasks.jsonl import iter_objects
from skillmix_tasks.prompts import extract_answer

SHORT = ["--gen_kwargs", "max_gen_toks=12", "--limit", "2", "--apply_chat_template"]


@pytest.fixture
def srv():
    with FakeLLMServer() as s:
        yield s


def test_predict_only_then_batch_grading_into_a_results_file_the_leaderboard_reads(tiny_model, srv, tmp_path,
                                                                                      monkeypatch, capsys):
    gen = tmp_path / "gen"
    gen.mkdir()
    proc = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks", "skillmix_heldout_k2",
                        "--predict_only", "--log_samples", *SHORT], gen)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [samples] = glob.glob(str(gen / "**" / "samples_skillmix_heldout_k2_*.jsonl"), recursive=True)
    [generated] = load([gen]).entries  # a predict_only run is a "not judged" row with no metric values
    assert not generated.judged and generated.judge == "not judged" and generated.n == 2
    assert all(s.value is None for s in generated.stats.values())

    for var in ("SKILLMIX_JUDGE", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", srv.openai_url)
    graded = tmp_path / "graded"
    cmd = ["--judge", "openai:gpt-4o", "--batch", "--poll-interval", "0.01", "--input", samples,
           "--output", str(tmp_path / "g.jsonl"), "--results-dir", str(graded), "--cache", str(tmp_path / "c.sqlite"),
           "--no-progress", "--json"]
    assert grade_main(cmd) == 0
    summary = json.loads(capsys.readouterr().out)
    assert srv.calls == 0 and srv.batch.lines == 2 * 3  # 2 items x 3 generations, n=3 gradings a line
    [written] = summary["results_files"]
    assert Path(written).parent.parent == graded and Path(written).name.startswith("results_")
    res = json.loads(Path(written).read_text())
    row = res["results"]["skillmix_heldout_k2"]
    assert row["unscored,judged"] == 0 and 0 <= row["full_marks,judged"] <= 1
    assert res["configs"]["skillmix_heldout_k2"]["metadata"]["judge"] == "openai:gpt-4o"
    assert res["config"]["model_args"]["pretrained"] == str(tiny_model)

    # The two-turn protocol's final turn is what was graded, and the entry says which protocol made it.
    finals = sorted(extract_answer(g["turns"][-1]) for _, row in iter_objects(samples)
                    for g in json.loads(row["filtered_resps"][0])["generations"])
    assert sorted(row["text"] for _, row in iter_objects(tmp_path / "g.jsonl")) == finals
    [entry] = load([graded]).entries
    assert entry.protocol == "two-turn"
    assert (entry.judge, entry.task, entry.n, entry.unscored) == ("openai:gpt-4o", "skillmix_heldout_k2", 2, 0)
    assert entry.model == str(tiny_model) and entry.stats["full_marks"].value == row["full_marks,judged"]

    # Not an lm-eval samples file: refused before any call.
    plain = tmp_path / "texts.jsonl"
    plain.write_text(Path(samples).read_text())
    assert grade_main(cmd[:6] + [str(plain)] + cmd[7:]) == 2
    assert "not an lm-eval samples file" in capsys.readouterr().err


def test_the_filter_waits_for_its_batches_when_the_judge_is_in_batch_mode(tiny_model, srv, tmp_path):
    srv.batch.polls = 2
    metadata = json.dumps({"judge": "openai:gpt-4o", "judge_config": {"batch": True, "batch_poll_interval": 0.01}})
    proc = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks", "skillmix_heldout_k2",
                        "--metadata", metadata, *SHORT], tmp_path,
                       {"OPENAI_API_KEY": FAKE_KEY, "OPENAI_BASE_URL": srv.openai_url})
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = results(tmp_path)["results"]["skillmix_heldout_k2"]
    assert row["unscored,judged"] == 0 and srv.calls == 0 and srv.batch.lines == 6
    assert "in_progress" in srv.batch.statuses


def test_a_filter_told_not_to_wait_is_refused_before_generation(tiny_model, tmp_path):
    metadata = json.dumps({"judge": "openai:gpt-4o", "judge_config": {"batch": True, "batch_wait": False}})
    proc = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks", "skillmix_heldout_k2",
                        "--metadata", metadata, *SHORT], tmp_path, {"OPENAI_API_KEY": FAKE_KEY})
    assert proc.returncode != 0 and "batch_wait: false cannot work inside lm_eval" in proc.stderr
    assert "--predict_only" in proc.stderr and "Running generate_until requests" not in proc.stderr


def test_each_task_of_a_multi_task_run_graded_into_one_folder_is_kept(srv, tmp_path, capsys):
    """The documented route for paper-scale runs: one --predict_only run of several tasks, each task's samples
    graded into the same --results-dir; the leaderboard then reads every task, not the last one graded."""
    from test_tasks_two_turn import api_args, student_handler

    srv.handler = student_handler()
    gen = tmp_path / "gen"
    gen.mkdir()
    tasks = ["skillmix_heldout_k2", "skillmix_train_k1", "skillmix_heldout_k3_single"]
    proc = run_lm_eval([*api_args(srv), "--tasks", ",".join(tasks), "--limit", "1", "--predict_only",
                        "--log_samples"], gen)
    assert proc.returncode == 0, proc.stderr[-3000:]
    graded = tmp_path / "graded"
    for task in tasks:
        [samples] = glob.glob(str(gen / "**" / f"samples_{task}_2*.jsonl"), recursive=True)
        assert grade_main(["--judge", f"openai-compatible:judge@{srv.openai_url}", "--input", samples,
                           "--output", str(tmp_path / f"{task}.jsonl"), "--results-dir", str(graded),
                           "--cache", str(tmp_path / "c.sqlite"), "--no-progress"]) == 0
    capsys.readouterr()
    assert len(glob.glob(str(graded / "**" / "results_*.json"), recursive=True)) == 3
    entries = load([graded]).entries
    assert sorted((e.task, e.protocol) for e in entries) == [
        ("skillmix_heldout_k2", "two-turn"), ("skillmix_heldout_k3", "single-turn"), ("skillmix_train_k1", "two-turn")]
    assert all(e.judged and e.n == 1 for e in entries)
