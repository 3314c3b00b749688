"""The accelerate loop on a tiny CPU model: learning, checkpoints, provenance, exact resume, SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skillmix.training.checkpoint import PROVENANCE_FILE, STATE_DIR
from skillmix.training.config import TrainConfig
from test_training_data import write_chat_jsonl


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Each in-process run builds its own Accelerator (they are process-wide singletons)."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture(scope="module")
def chat_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    return [str(write_chat_jsonl(d / f"d_skillmix_k{k}.jsonl", 12, k=k, seed=k)) for k in (1, 2)]


def config(tiny_model, data, out, **kw):
    base = {"model": str(tiny_model), "data": data, "output_dir": str(out), "max_steps": 6, "global_batch_size": 4,
            "micro_batch_size": 2, "learning_rate": 1e-3, "warmup_steps": 2, "max_length": 128, "save_steps": 0,
            "report_to": "none", "logging_steps": 1}
    return TrainConfig.from_dict({**base, **kw})


def test_loss_falls_and_final_checkpoint_loads(tiny_model, chat_data, tmp_path):
    from skillmix.training.loop import train
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "run"
    result = train(config(tiny_model, chat_data, out, max_steps=30, packing=True, save_steps=20, keep_last_states=1))
    losses = result["losses"]
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5, losses

    final = out / "final"
    assert result["checkpoint"] == str(final)
    model = AutoModelForCausalLM.from_pretrained(final)
    tok = AutoTokenizer.from_pretrained(final)
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    assert (final / "chat_template.jinja").is_file()
    assert model.config.num_hidden_layers == 2
    prov = json.loads((final / PROVENANCE_FILE).read_text())
    assert prov["step"] == 30 and prov["complete"] and prov["base_model"] == str(tiny_model)
    assert [f["path"] for f in prov["data"]["files"]] == chat_data and all(len(f["sha256"]) == 64 for f in prov["data"]["files"])
    assert prov["config"]["global_batch_size"] == 4 and prov["config"]["gradient_accumulation_steps"] == 2
    # intermediate checkpoint kept its weights; only the newest accelerate state is kept
    assert (out / "step-000020" / "model.safetensors").is_file()
    assert not (out / "step-000020" / STATE_DIR).exists() and (final / STATE_DIR).is_dir()
    rows = [json.loads(l) for l in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 31))
    assert {"loss", "lr", "grad_norm", "tokens_per_s", "peak_rss_gb"} <= set(rows[0])
    assert rows[0]["lr"] == pytest.approx(5e-4) and rows[-1]["lr"] == pytest.approx(1e-3)  # warm-up, then constant


LORA = {"r": 8, "alpha": 16, "dropout": 0.1, "target_modules": ["all-linear"]}


@pytest.mark.parametrize("packing, lora", [(False, None), (True, None), (True, LORA)])
def test_interrupted_and_resumed_run_matches_step_for_step(tiny_model, chat_data, tmp_path, packing, lora):
    """6 steps straight vs 3 + 3 (stopping mid-epoch, so the resumed data position matters); with LoRA
    (dropout on, so the restored RNG states matter too)."""
    from accelerate.state import AcceleratorState, GradientState
    from skillmix.training.loop import train

    kw = dict(max_steps=6, packing=packing, max_length=96 if packing else 128, lora=lora)
    straight = train(config(tiny_model, chat_data, tmp_path / "a", **kw))["losses"]
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    first = train(config(tiny_model, chat_data, tmp_path / "b", max_steps_this_run=3, **kw))
    assert first["step"] == 3 and (tmp_path / "b" / "step-000003" / STATE_DIR).is_dir()
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    second = train(config(tiny_model, chat_data, tmp_path / "b", **kw))
    assert second["start_step"] == 3
    assert first["losses"] + second["losses"] == pytest.approx(straight, rel=1e-5, abs=1e-6)
    rows = [json.loads(l) for l in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]


def test_sigterm_saves_a_resumable_checkpoint(tiny_model, chat_data, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "skillmix.training", f"model={tiny_model}", f"data=[{','.join(chat_data)}]",
           f"output_dir={out}", "max_steps=100000", "global_batch_size=2", "max_length=64", "save_steps=0",
           "report_to=none"]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "train_log.jsonl"
    deadline = time.time() + 90
    while time.time() < deadline and not (log.exists() and len(log.read_text().splitlines()) >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["stopped_by_signal"] == "SIGTERM" and summary["step"] >= 2
    folder = Path(summary["checkpoint"])
    assert (folder / STATE_DIR / "trainer_state.json").is_file()
    prov = json.loads((folder / PROVENANCE_FILE).read_text())
    assert prov["step"] == summary["step"] and not prov["complete"]

    from skillmix.training.loop import train

    resumed = train(config(tiny_model, chat_data, out, global_batch_size=2, micro_batch_size=None, max_length=64,
                           max_steps=summary["step"] + 1))
    assert resumed["start_step"] == summary["step"] and resumed["step"] == summary["step"] + 1


def test_lora_trains_and_saves_a_merged_checkpoint_and_its_adapter(tiny_model, chat_data, tmp_path):
    import torch
    from peft import PeftModel
    from skillmix.training.checkpoint import ADAPTER_DIR
    from skillmix.training.loop import train
    from transformers import AutoModelForCausalLM

    out = tmp_path / "run"
    result = train(config(tiny_model, chat_data, out, max_steps=20, learning_rate=1e-2, packing=True,
                          lora={**LORA, "dropout": 0.0}))
    losses = result["losses"]
    assert sum(losses[-4:]) / 4 < 0.7 * sum(losses[:4]) / 4, losses
    final = out / "final"
    prov = json.loads((final / PROVENANCE_FILE).read_text())
    assert prov["config"]["lora"] == {**LORA, "dropout": 0.0}
    assert 0 < prov["trainable_parameters"] < 0.2 * prov["parameters"]
    adapter = json.loads((final / ADAPTER_DIR / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and adapter["lora_alpha"] == 16 and adapter["base_model_name_or_path"] == str(tiny_model)
    # the step folder is a plain HF checkpoint holding base + adapter merged
    merged = AutoModelForCausalLM.from_pretrained(final).eval()
    assert not any("lora" in k or "base_layer" in k for k in merged.state_dict())
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), final / ADAPTER_DIR).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    x = torch.randint(0, 400, (2, 24))
    with torch.no_grad():
        torch.testing.assert_close(merged(x).logits, with_adapter(x).logits, atol=1e-4, rtol=1e-4)
        assert (merged(x).logits - base(x).logits).abs().max() > 0.1  # training changed it
