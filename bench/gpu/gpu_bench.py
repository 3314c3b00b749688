"""GPU check of skillmix.training: tokens/s, MFU and peak memory of a ~1B Llama (random weights, bf16
autocast, length 1024), packed and unpacked, with and without Liger, LoRA, and a few steps of the
FSDP and ZeRO-3 accelerate configs on one GPU; plus the packed-vs-alone logits check on the kernel
the loop picks. Run through ``bench/gpu/run.sh`` (fits in 8 minutes on one H100/H200).

    python bench/gpu/gpu_bench.py --out bench/gpu/results            # on the GPU
    python bench/gpu/gpu_bench.py --dry-run --out /tmp/gpu-dry        # tiny model on CPU: is it broken?

Every case runs ``skillmix-train`` in its own process (so peak memory is its own) and reads its
``train_log.jsonl``; medians over the steps after the first ``--warmup``. A case that cannot run here
(no liger-kernel, no deepspeed, no GPU) is a row marked ``skipped`` with the reason, never an abort.
Writes ``results.json`` and ``results.md`` (a table) under ``--out``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = ROOT / "training" / "accelerate"
WORDS = ("the a sewing needle thread knot garden bee hive duel sword empire city plan river boat metaphor "
         "hyperbole topic answer explanation improve sentence skill").split()
# ~1.1B parameters, Llama-3.2-1B's shape with a 32k vocabulary
BIG = dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
           num_key_value_heads=8, vocab_size=32000, max_position_embeddings=4096)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, vocab_size=1024, max_position_embeddings=512)
LORA = "{r: 16, alpha: 32, dropout: 0.0, target_modules: [all-linear]}"


def build_model(out: Path, shape: dict, dry: bool) -> Path:
    """A random Llama from a config with the tests' byte-level BPE chat tokenizer (its ids fit any vocab)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_model import build_tiny_model

    build_tiny_model(out)  # tokenizer + chat template; the weights are replaced below
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(**shape, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=False, initializer_range=0.02)
    with torch.device("cuda" if torch.cuda.is_available() and not dry else "cpu"):
        model = LlamaForCausalLM(config)
    model.to(torch.bfloat16 if not dry else torch.float32).save_pretrained(out)
    return out


def write_data(path: Path, n: int, words: tuple[int, int], seed: int = 0) -> Path:
    """Two-turn conversations of a few hundred to ~1000 tokens (the D_SKILL-MIX shape)."""
    rng = random.Random(seed)
    text = lambda k: " ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + "."  # noqa: E731
    lo, hi = words
    with open(path, "w") as f:
        for i in range(n):
            msgs = [{"role": "user", "content": "Write about " + text(rng.randint(lo // 4, hi // 4))},
                    {"role": "assistant", "content": "Answer: " + text(rng.randint(lo // 4, hi // 4))},
                    {"role": "user", "content": "Improve it. " + text(rng.randint(lo // 8, hi // 8))},
                    {"role": "assistant", "content": "Answer: " + text(rng.randint(lo // 4, hi // 4))}]
            f.write(json.dumps({"id": f"bench-{i}", "messages": msgs}) + "\n")
    return path


def cases() -> list[dict]:
    """name, skillmix-train overrides, accelerate launch config (optional), what it needs (optional)."""
    return [
        {"name": "full, unpacked, sdpa", "over": ["packing=false", "attn_implementation=sdpa"]},
        {"name": "full, unpacked, auto attention", "over": ["packing=false", "attn_implementation=auto"]},
        {"name": "full, packed, auto attention", "over": ["packing=true", "attn_implementation=auto"]},
        {"name": "full, packed, sdpa (mask from position ids)", "over": ["packing=true", "attn_implementation=sdpa"]},
        {"name": "full, unpacked, Liger", "over": ["packing=false", "liger=true"], "needs": "liger"},
        {"name": "full, packed, auto attention, Liger", "over": ["packing=true", "liger=true"], "needs": "liger"},
        {"name": "LoRA r=16, packed, auto attention", "over": ["packing=true", f"lora={LORA}"]},
        {"name": "FSDP2 (fsdp.yaml), 1 process, packed", "over": ["packing=true", "gradient_checkpointing=false"],
         "launch": "fsdp.yaml", "needs": "gpu"},
        {"name": "ZeRO-3 (deepspeed_zero3.yaml), 1 process, packed", "over": ["packing=true"],
         "launch": "deepspeed_zero3.yaml", "needs": "deepspeed"},
    ]


def missing(need: str | None, dry: bool) -> str | None:
    import torch

    gpu = torch.cuda.is_available() and not dry
    if need == "liger":
        if importlib.util.find_spec("liger_kernel") is None:
            return "liger-kernel not installed"
        return None if gpu else "needs a CUDA GPU"
    if need == "deepspeed":
        if importlib.util.find_spec("deepspeed") is None:
            return "deepspeed not installed"
        return None if gpu else "needs a CUDA GPU"
    if need == "gpu" and not gpu:
        return "needs a CUDA GPU"
    return None


def run_case(case: dict, a, model: Path, data: Path, work: Path) -> dict:
    out = work / "run"
    shutil.rmtree(out, ignore_errors=True)
    common = [f"model={model}", f"data=[{data}]", f"output_dir={out}", f"max_steps={a.steps}",
              f"global_batch_size={a.global_batch}", f"micro_batch_size={a.micro_batch}", f"max_length={a.max_length}",
              f"bf16={'false' if a.dry_run else 'true'}", "save_steps=0", "save_state=false", "report_to=none",
              "warmup_steps=2", "learning_rate=1e-4", "resume=never", "logging_steps=1",
              # Throughput only: the random conversations may outrun max_length (most in the dry run), and
              # one dropped does not change tokens/s, so the trainer's data-loss stop is off here.
              "max_dropped_share=1.0"]
    if "launch" in case:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ACCELERATE / case["launch"]),
               "--num_processes", "1", "-m", "skillmix.training"]
    else:
        cmd = [sys.executable, "-m", "skillmix.training"]
    cmd += common + case["over"]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=a.case_timeout,
                          env=dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false"))
    row = {"case": case["name"], "wall_s": round(time.time() - t0, 1), "command": " ".join(cmd[1:])}
    if proc.returncode != 0:
        return {**row, "status": "failed", "reason": proc.stderr.strip().splitlines()[-1:] or ["?"]}
    logs = [json.loads(l) for l in (out / "train_log.jsonl").read_text().splitlines()]
    prov = json.loads((out / "final" / "skillmix_provenance.json").read_text())
    steady = logs[a.warmup:] or logs
    med = lambda key: statistics.median(r[key] for r in steady) if all(key in r for r in steady) else None  # noqa: E731
    row.update(status="ok", attention=prov.get("attention"), steps=len(logs), tokens_per_s=med("tokens_per_s"),
               mfu=med("mfu"), peak_mem_gb=max((r.get("peak_mem_gb") or r.get("peak_rss_gb") or 0) for r in logs),
               loss_first=logs[0]["loss"], loss_last=logs[-1]["loss"],
               parameters=prov.get("parameters"), trainable_parameters=prov.get("trainable_parameters"))
    shutil.rmtree(out, ignore_errors=True)  # a 1B checkpoint per case would fill the disk
    return row


def logits_check(model: Path, dry: bool) -> dict:
    """Packed rows through the attention the loop picks (flattened on the varlen path): each example's
    logits against the example alone, in bf16 on the GPU."""
    import torch

    from skillmix.training.config import TrainConfig
    from skillmix.training.data import Collator, PackedDataset, tokenize_conversation
    from skillmix.training.model import choose_attention, load_model
    from transformers import AutoTokenizer

    config = TrainConfig.from_dict({"model": str(model), "data": ["x"], "packing": True}).validate()
    impl, flatten, why = choose_attention(config)
    tok = AutoTokenizer.from_pretrained(model)
    device = "cuda" if torch.cuda.is_available() and not dry else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    net = load_model(config, impl).to(device, dtype).eval()
    rng = random.Random(1)
    text = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
    convs = [[{"role": "user", "content": text(40)}, {"role": "assistant", "content": text(rng.randint(20, 120))}]
             for _ in range(6)]
    examples = [tokenize_conversation(tok, c, 1024) for c in convs]
    rows = PackedDataset(examples, [[0, 1, 2], [3, 4, 5]])
    batch = Collator(tok.pad_token_id, flatten=flatten)([rows[0], rows[1]])
    worst = 0.0
    with torch.no_grad():
        logits = net(input_ids=batch["input_ids"].to(device), position_ids=batch["position_ids"].to(device)).logits
        layout = [(0, range(6))] if flatten else [(0, range(3)), (1, range(3, 6))]
        for b, members in layout:
            start = 0
            for j in members:
                n = len(examples[j]["input_ids"])
                alone = net(input_ids=torch.tensor([examples[j]["input_ids"]], device=device)).logits[0]
                worst = max(worst, (logits[b, start:start + n].float() - alone.float()).abs().max().item())
                start += n
    scale = 5e-2 if dtype == torch.bfloat16 else 1e-3
    return {"attention": why, "flattened": flatten, "max_abs_diff": worst, "tolerance": scale, "ok": worst <= scale}


def table(rows: list[dict], check: dict, meta: dict) -> str:
    lines = [f"GPU: {meta['gpu']} · torch {meta['torch']} · transformers {meta['transformers']} · "
             f"{meta['parameters']} parameters · length {meta['max_length']} · global batch {meta['global_batch']} "
             f"(micro {meta['micro_batch']}) · {meta['steps']} steps, medians after {meta['warmup']}", "",
             "| case | status | attention | tokens/s | MFU | peak memory GB | loss first -> last | wall s |",
             "|---|---|---|---:|---:|---:|---|---:|"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['case']} | {r['status']}: {r.get('reason')} | | | | | | {r.get('wall_s', '')} |")
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "n/a"
        lines.append(f"| {r['case']} | ok | {(r['attention'] or '').split(':')[0]} | {r['tokens_per_s']:,.0f} | {mfu} "
                     f"| {r['peak_mem_gb']:.1f} | {r['loss_first']:.3f} -> {r['loss_last']:.3f} | {r['wall_s']} |")
    lines += ["", f"Packed logits vs each example alone ({check.get('attention')}): max |diff| "
                  f"{check.get('max_abs_diff', float('nan')):.2e} (tolerance {check.get('tolerance')}): "
                  f"{'ok' if check.get('ok') else 'FAILED'}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench/gpu/results")
    p.add_argument("--dry-run", action="store_true", help="tiny model on CPU, 3 steps: checks the script, measures nothing")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--case-timeout", type=int, default=150)
    p.add_argument("--only", help="comma list of case-name substrings to run")
    a = p.parse_args()
    import torch
    import transformers

    dry = a.dry_run
    a.steps = a.steps or (3 if dry else 12)
    a.warmup = a.warmup if a.warmup is not None else (1 if dry else 3)
    a.max_length, a.global_batch, a.micro_batch = (128, 4, 2) if dry else (1024, 16, 4)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    model = build_model(work / "model", TINY if dry else BIG, dry)
    data = write_data(work / "data.jsonl", 64 if dry else 512, (40, 200) if dry else (200, 900))
    rows = []
    for case in cases():
        if a.only and not any(s.strip() in case["name"] for s in a.only.split(",")):
            continue
        why = missing(case.get("needs"), dry)
        row = {"case": case["name"], "status": "skipped", "reason": why} if why else run_case(case, a, model, data, work)
        rows.append(row)
        print(json.dumps(row), flush=True)
    try:
        check = logits_check(model, dry)
    except Exception as e:  # reported, not fatal: the throughput rows are still worth having
        check = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps({"logits_check": check}), flush=True)
    params = next((r["parameters"] for r in rows if r.get("parameters")), None)
    meta = {"gpu": torch.cuda.get_device_name() if torch.cuda.is_available() and not dry else "none (dry run on CPU)",
            "torch": torch.__version__, "transformers": transformers.__version__, "parameters": f"{params / 1e9:.2f}B" if params else "?",
            "max_length": a.max_length, "global_batch": a.global_batch, "micro_batch": a.micro_batch,
            "steps": a.steps, "warmup": a.warmup, "dry_run": dry}
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows, "logits_check": check}, indent=2))
    (out / "results.md").write_text(table(rows, check, meta))
    shutil.rmtree(work, ignore_errors=True)
    print((out / "results.md").read_text())
    return 0 if check.get("ok") and all(r["status"] != "failed" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
