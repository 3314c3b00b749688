"""The SKILL-MIX tasks through the real lm_eval CLI, on a tiny local checkpoint and API models,
judged by a local OpenAI-protocol server."""

import json
from pathlib import Path

import pytest

from fake_llm_server import Action, FakeLLMServer
from lmeval_helpers import results, run_lm_eval, samples
from skillmix_tasks.catalog import default_catalog

SHORT = ["--gen_kwargs", "max_gen_toks=12"]


@pytest.fixture()
def judge_server():
    with FakeLLMServer() as srv:
        yield srv


def judge_env(srv):
    return {"SKILLMIX_JUDGE": f"openai-compatible:fake-judge@{srv.openai_url}"}


def test_heldout_k3_single_on_a_hf_checkpoint_reports_three_metrics_with_stderr(tiny_model, judge_server, tmp_path):
    # The one-prompt variant needs no chat template (two turns: tests/test_tasks_two_turn.py).
    task = "skillmix_heldout_k3_single"
    proc = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks", task,
                        "--limit", "3", "--log_samples", *SHORT], tmp_path, judge_env(judge_server))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = results(tmp_path)
    row = res["results"][task]
    for metric in ("full_marks", "all_skills", "skills_fraction"):
        assert 0.0 <= row[f"{metric},judged"] <= 1.0
        assert isinstance(row[f"{metric}_stderr,judged"], float)
    assert row["unscored,judged"] == 0
    assert res["n-samples"][task]["effective"] == 3
    meta = res["configs"][task]["metadata"]
    assert meta["protocol"] == "single-turn"
    assert meta["judge"].startswith("openai-compatible:fake-judge@") and meta["judge_prompt_version"]
    assert meta["judge_stats"]["gradings"] == 3 * 3 * 3 and meta["judge_stats"]["judged"] == 27
    assert judge_server.calls == 27  # 3 items x 3 generations x 3 gradings

    cat = default_catalog()
    heldout_skills = {s.name for s in cat.skills_in("heldout")}
    heldout_topics = {t.name for t in cat.topics_in("heldout")}
    rows = samples(tmp_path, task)
    assert len(rows) == 3
    for s in rows:
        assert set(s["doc"]["skills"]) <= heldout_skills and s["doc"]["topic"] in heldout_topics
        assert len(s["resps"][0]) == 3  # repeats: 3
        verdict = json.loads(s["filtered_resps"][0])
        assert verdict["status"] == "scored" and len(verdict["generations"]) == 3
        gen = verdict["generations"][0]
        assert len(gen["gradings"]) == 3 and "| Criteria | Points Earned |" in gen["replies"][0]


def test_train_split_uses_only_train_skills_and_predict_only_needs_no_judge(tiny_model, tmp_path):
    proc = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks", "skillmix_train_k2_single",
                        "--limit", "2", "--predict_only", *SHORT], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cat = default_catalog()
    train_skills = {s.name for s in cat.skills_in("train")}
    train_topics = {t.name for t in cat.topics_in("train")}
    rows = samples(tmp_path, "skillmix_train_k2_single")
    assert len(rows) == 2
    for s in rows:
        assert set(s["doc"]["skills"]) <= train_skills and s["doc"]["topic"] in train_topics
        assert json.loads(s["filtered_resps"][0])["status"] == "not judged"


def test_missing_judge_is_one_message_before_the_model_loads(tmp_path):
    # The checkpoint does not exist: the message comes before lm_eval tries to load it.
    proc = run_lm_eval(["--model", "hf", "--model_args", "pretrained=/nonexistent/model", "--apply_chat_template",
                        "--tasks", "skillmix_heldout_k3,skillmix_train_k2_single", "--limit", "2"], tmp_path)
    assert proc.returncode == 2
    err = proc.stderr
    assert "no usable judge" in err and "skillmix_heldout_k3, skillmix_train_k2_single" in err
    for way in ("SKILLMIX_JUDGE=", "--metadata '{\"judge\"", "--predict_only", "openai-compatible:", "hf:"):
        assert way in err, way
    assert "--judge " not in err  # lm_eval has no such flag
    assert "Traceback" not in err and "Initializing hf model" not in err

    # --predict_only needs no judge (the run then fails later, on the missing checkpoint)
    proc = run_lm_eval(["--model", "hf", "--model_args", "pretrained=/nonexistent/model", "--apply_chat_template",
                        "--tasks", "skillmix_heldout_k3", "--limit", "2", "--predict_only"], tmp_path)
    assert "no usable judge" not in proc.stderr and "Initializing hf model" in proc.stderr


def _refused_before_the_model_loads(proc) -> None:
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "Initializing hf model" not in proc.stderr


def test_unknown_metadata_keys_are_refused_before_the_model_loads(tmp_path):
    metadata = '{"n_item": 5, "max_seq_lengths": [4096], "trust_remote_code": true}'
    args = ["--model", "hf", "--model_args", "pretrained=/nonexistent/model,trust_remote_code=True",
            "--apply_chat_template", "--limit", "2", "--predict_only", "--metadata", metadata]
    proc = run_lm_eval([*args, "--tasks", "skillmix_heldout_k3"], tmp_path)
    _refused_before_the_model_loads(proc)
    assert "unknown --metadata key 'n_item'; did you mean 'n_items'?" in proc.stderr
    assert "unknown --metadata key 'max_seq_lengths'" in proc.stderr  # SKILL-MIX alone: nothing else reads it
    assert "'trust_remote_code'" not in proc.stderr  # lm-eval merges --model_args into the metadata
    # Beside another benchmark's task, that task's own keys are left to it; a typo of ours is still refused.
    proc = run_lm_eval([*args, "--tasks", "skillmix_heldout_k3,ruler_niah_single_1"], tmp_path)
    _refused_before_the_model_loads(proc)
    assert "did you mean 'n_items'?" in proc.stderr and "max_seq_lengths" not in proc.stderr


def test_a_misspelt_task_name_gets_the_name_it_meant(tmp_path):
    proc = run_lm_eval(["--model", "hf", "--model_args", "pretrained=/nonexistent/model", "--apply_chat_template",
                        "--tasks", "skillmix_heldot_k3", "--limit", "2", "--predict_only"], tmp_path)
    _refused_before_the_model_loads(proc)
    assert "unknown task 'skillmix_heldot_k3'; did you mean 'skillmix_heldout_k3'?" in proc.stderr


def test_an_unwritable_output_path_costs_no_generation(tmp_path):
    """Checked before the model loads: a run that could not write its results generated for nothing."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    # Below a file, and in a folder no process may create files in (/proc, read-only even for root).
    for output in (blocker / "out", Path("/proc") / "skillmix-out"):
        proc = run_lm_eval(["--model", "hf", "--model_args", "pretrained=/nonexistent/model", "--apply_chat_template",
                            "--tasks", "skillmix_heldout_k3", "--limit", "2", "--predict_only",
                            "--output_path", str(output)], tmp_path)
        _refused_before_the_model_loads(proc)
        assert f"--output_path {output}" in proc.stderr and "nothing was generated" in proc.stderr


def test_group_over_api_models_with_chat_template_and_unscored_items(judge_server, tmp_path):
    # The same local server plays the student (OpenAI chat API) and the judge; the judge's
    # replies to items of k=1 are malformed, so those items are unscored, not zero.
    def handler(request):
        prompt = request["body"]["messages"][-1]["content"]
        if "Criteria" in prompt and "at most one sentence" in prompt and prompt.count("Correctly illustrates") == 1:
            return Action(text="I would rather not grade this.")
        return None

    judge_server.handler = handler
    proc = run_lm_eval(["--model", "local-chat-completions", "--model_args",
                        f"model=student,base_url={judge_server.openai_url}/chat/completions,num_concurrent=4",
                        "--apply_chat_template", "--tasks", "skillmix_heldout", "--limit", "2", "--log_samples"],
                       tmp_path, judge_env(judge_server))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = results(tmp_path)["results"]
    for k in range(1, 7):
        assert f"skillmix_heldout_k{k}" in res
    assert res["skillmix_heldout_k1"]["unscored,judged"] == 2
    assert "full_marks,judged" not in res["skillmix_heldout_k1"] or res["skillmix_heldout_k1"]["full_marks,judged"] != 0
    assert res["skillmix_heldout_k2"]["unscored,judged"] == 0
    # The fake student answers "Answer: a short reply." - one sentence, on the judge's full marks.
    assert res["skillmix_heldout_k2"]["full_marks,judged"] == 1.0
    group = res["skillmix_heldout"]
    assert "full_marks,judged" in group
    verdict = json.loads(samples(tmp_path, "skillmix_heldout_k1")[0]["filtered_resps"][0])
    assert verdict["status"] == "unscored" and verdict["reason"] == "no grading table"
    # lm_eval exits 0, so its output says loudly that the task holds no score, and how to grade it again.
    assert "skillmix skillmix_heldout_k1: no item was scored (no grading table: 2)" in proc.stderr
    assert "skillmix-grade --judge <spec> --input" in proc.stderr and "skillmix_heldout_k2: no item" not in proc.stderr
