"""skillmix-eval: the paper's two-turn protocol through lm-eval's model classes."""

import json
import os
import subprocess
import sys
from pathlib import Path

from fake_llm_server import FakeLLMServer
from lmeval_helpers import results, samples

EVAL = str(Path(sys.executable).with_name("skillmix-eval"))


def run_eval(args, out, srv=None, **env):
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "SKILLMIX_CACHE": str(out / "judge.sqlite"),
                **env}
    full_env.pop("SKILLMIX_JUDGE", None)
    judge = ["--judge", f"openai-compatible:judge@{srv.openai_url}"] if srv else []
    return subprocess.run([EVAL, *args, *judge, "--output_path", str(out)], capture_output=True, text=True,
                          env=full_env, timeout=600)


def test_two_turn_on_an_api_model_feeds_the_first_reply_back_and_resumes(tmp_path):
    with FakeLLMServer() as srv:
        args = ["--model", "local-chat-completions", "--model_args",
                f"model=student,base_url={srv.openai_url}/chat/completions", "--tasks", "skillmix_heldout_k3,skillmix_train_k2",
                "--limit", "2"]
        proc = run_eval(args, tmp_path, srv)
        assert proc.returncode == 0, proc.stderr[-3000:]
        student = [r["body"]["messages"] for r in srv.requests if r["body"].get("model") == "student"]
        judge = [r for r in srv.requests if r["body"].get("model") == "judge"]
        # 2 tasks x 2 items x 3 repeats, two turns each; 3 gradings per final answer
        assert len(student) == 2 * 2 * 3 * 2 and len(judge) == 2 * 2 * 3 * 3
        second = [m for m in student if len(m) == 3]
        assert len(second) == 12
        for m in second:
            assert [x["role"] for x in m] == ["user", "assistant", "user"]
            assert m[1]["content"].startswith("Answer: a short reply.")
            assert "at most" in m[2]["content"] and "sentence" in m[2]["content"]
        assert any("at most two sentences" in m[2]["content"] for m in second)  # k=3
        assert any("at most one sentence" in m[2]["content"] for m in second)  # k=2

        res = results(tmp_path)
        assert res["config"]["protocol"] == "two-turn"
        row = res["results"]["skillmix_heldout_k3"]
        assert row["full_marks,judged"] == 1.0 and isinstance(row["full_marks_stderr,judged"], float)
        assert row["unscored,judged"] == 0
        assert res["configs"]["skillmix_train_k2"]["metadata"]["judge"] == f"openai-compatible:judge@{srv.openai_url}"
        rows = samples(tmp_path, "skillmix_heldout_k3")
        assert len(rows) == 2 and len(rows[0]["resps"][0]) == 3 and len(rows[0]["resps"][0][0]) == 2
        assert json.loads(rows[0]["filtered_resps"][0])["status"] == "scored"

        # A re-run repeats no generation (generation log) and no judge call (judge cache).
        before = len(srv.requests)
        again = run_eval(args, tmp_path, srv)
        assert again.returncode == 0, again.stderr[-3000:]
        assert len(srv.requests) == before


def test_two_turn_on_a_hf_checkpoint_and_predict_only(tiny_model, tmp_path):
    proc = run_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks", "skillmix_heldout_k2",
                     "--limit", "2", "--repeats", "2", "--gen_kwargs", "max_gen_toks=8", "--predict_only"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = samples(tmp_path, "skillmix_heldout_k2")
    assert len(rows) == 2 and all(len(pair) == 2 for pair in rows[0]["resps"][0])
    assert json.loads(rows[0]["filtered_resps"][0])["status"] == "not judged"
    assert "<|im_start|>user" in rows[0]["arguments"][0][0]  # the model's own chat template


def test_two_turn_without_a_judge_fails_before_generating(tmp_path):
    proc = run_eval(["--model", "hf", "--model_args", "pretrained=/nonexistent", "--tasks", "skillmix_heldout_k3"], tmp_path)
    assert proc.returncode == 2 and "no usable judge" in proc.stderr and "SKILLMIX_JUDGE" in proc.stderr
