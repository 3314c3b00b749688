"""A checkpoint written by skillmix-train is scored by the real lm_eval CLI on the SKILL-MIX task."""

import os
import subprocess
import sys
from pathlib import Path

from fake_llm_server import FakeLLMServer
from lmeval_helpers import results, run_lm_eval
from test_training_data import write_chat_jsonl

TRAIN = str(Path(sys.executable).with_name("skillmix-train"))


def score(checkpoint: Path, tmp_path: Path, limit: int) -> tuple[dict, int]:
    """lm_eval --model hf on skillmix_heldout_k1 with a fake judge: (the task's results row, judge calls)."""
    with FakeLLMServer() as srv:
        evald = tmp_path / "eval"
        evald.mkdir()
        run = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={checkpoint}", "--tasks", "skillmix_heldout_k1",
                           "--limit", str(limit), "--apply_chat_template", "--gen_kwargs", "max_gen_toks=8"], evald,
                          {"SKILLMIX_JUDGE": f"openai-compatible:judge@{srv.openai_url}"})
        assert run.returncode == 0, run.stderr[-3000:]
        return results(evald)["results"]["skillmix_heldout_k1"], srv.calls


def test_trained_checkpoint_scores_through_lm_eval(tiny_model, tmp_path):
    data = write_chat_jsonl(tmp_path / "d_skillmix_k1.jsonl", 8, k=1, seed=0)
    out = tmp_path / "run"
    proc = subprocess.run(
        [TRAIN, "--config", str(Path(__file__).parents[1] / "training" / "configs" / "paper.yaml"),
         f"model={tiny_model}", f"data=[{data}]", f"output_dir={out}", "max_steps=3", "global_batch_size=2",
         "max_micro_batch_size=2", "max_length=128", "bf16=false", "gradient_checkpointing=false", "report_to=none",
         "warmup_steps=1", "save_steps=0"],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    checkpoint = out / "final"
    assert (checkpoint / "config.json").is_file()

    row, calls = score(checkpoint, tmp_path, limit=2)
    assert "full_marks,judged" in row and "full_marks_stderr,judged" in row and row["unscored,judged"] == 0
    assert calls == 2 * 3 * 3


def test_lora_checkpoint_scores_through_lm_eval(tiny_model, tmp_path):
    """A LoRA run's step folder holds the merged weights: lm_eval loads it as a plain HF checkpoint."""
    data = write_chat_jsonl(tmp_path / "d_skillmix_k1.jsonl", 4, k=1, seed=1)
    out = tmp_path / "run"
    proc = subprocess.run(
        [TRAIN, f"model={tiny_model}", f"data=[{data}]", f"output_dir={out}", "max_steps=2", "global_batch_size=2",
         "max_length=128", "report_to=none", "warmup_steps=0", "save_steps=0", "learning_rate=1e-2",
         "lora={r: 4, alpha: 8, target_modules: [q_proj, v_proj]}"],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    checkpoint = out / "final"
    assert (checkpoint / "adapter" / "adapter_config.json").is_file() and (checkpoint / "model.safetensors").is_file()

    row, calls = score(checkpoint, tmp_path, limit=1)
    assert "full_marks,judged" in row and row["unscored,judged"] == 0 and calls > 0
