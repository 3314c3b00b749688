"""Trainer throughput: skillmix.training vs TRL's SFTTrainer, same tiny model, data and machine.

    /work/venv/bin/pip install trl          # benchmark-only; never a project dependency
    python bench/train_bench.py [--steps 40 --batch 8 --max-length 512 --repeats 3] [--lora]

Each trainer runs in its own subprocess (so peak RSS is its own) with its best settings on this
hardware: packing of the chat conversations into full rows without cross-example attention, no
gradient checkpointing, fp32 on CPU (bf16 where a GPU has it), no evaluation, logging every step.
tokens/s counts the real (non-padding) tokens of the optimizer steps after `--warmup` steps, by wall
clock between step ends, identically for both. ``--lora`` trains the same LoRA adapters on both sides
(peft, r=16, alpha=32, no dropout, every linear layer but the head).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the a sewing needle thread knot garden bee hive duel sword empire city plan river boat metaphor "
         "hyperbole topic answer explanation improve sentence skill").split()


def make_inputs(workdir: Path, n_conv: int, seed: int = 0) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_model import build_tiny_model

    model = build_tiny_model(workdir / "model")
    rng = random.Random(seed)
    text = lambda n: " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."  # noqa: E731
    data = workdir / "d_skillmix_k2.jsonl"
    with open(data, "w") as f:
        for i in range(n_conv):
            messages = [{"role": "user", "content": "Write about " + text(rng.randint(20, 60))},
                        {"role": "assistant", "content": "Answer: " + text(rng.randint(10, 80))},
                        {"role": "user", "content": "Improve it. " + text(rng.randint(5, 20))},
                        {"role": "assistant", "content": "Answer: " + text(rng.randint(10, 60))}]
            f.write(json.dumps({"id": f"train-k2-{i:04d}", "k": 2, "messages": messages}) + "\n")
    return model, data


LORA = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": ["all-linear"]}


def rate(times: list[float], tokens: list[int], warmup: int) -> float:
    """Lists indexed by step - 1: tokens of steps warmup+1..N over the wall time from the end of step
    `warmup` to the end of step N."""
    return sum(tokens[warmup:]) / (times[-1] - times[warmup - 1])


def run_ours(a) -> dict:
    from skillmix.training.config import TrainConfig
    from skillmix.training.loop import train

    out = Path(a.workdir) / "ours"
    cfg = TrainConfig.from_dict({
        "model": a.model, "data": [a.data], "output_dir": str(out), "max_steps": a.steps, "global_batch_size": a.batch,
        "micro_batch_size": a.batch, "max_length": a.max_length, "packing": a.ours_packing, "learning_rate": 2e-5,
        "warmup_steps": 0, "save_steps": 0, "save_state": False, "report_to": "none", "resume": "never",
        "lora": LORA if a.lora else None})
    train(cfg)
    rows = [json.loads(l) for l in (out / "train_log.jsonl").read_text().splitlines()]
    return {"tokens_per_s": rate([r["time"] for r in rows], [r["tokens"] for r in rows], a.warmup)}


def run_trl(a) -> dict:
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, attn_implementation="sdpa")
    ds = datasets.load_dataset("json", data_files=a.data, split="train").select_columns(["messages"])
    times, tokens, pending = [], [], []

    class Clock(TrainerCallback):
        def on_step_end(self, *args, **kw):
            times.append(time.perf_counter())
            tokens.append(sum(pending))
            pending.clear()

    args = SFTConfig(
        output_dir=str(Path(a.workdir) / "trl"), max_steps=a.steps, per_device_train_batch_size=a.batch,
        gradient_accumulation_steps=1, learning_rate=2e-5, lr_scheduler_type="constant", max_length=a.max_length,
        **({"packing": True, "packing_strategy": "bfd", "padding_free": True} if a.trl_packing else {"packing": False}),
        logging_steps=1, save_strategy="no",
        report_to="none", use_cpu=True, dataloader_num_workers=0, gradient_checkpointing=False, bf16=False,
        disable_tqdm=True, seed=0)
    peft_config = None
    if a.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                                 target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, callbacks=[Clock()],
                         peft_config=peft_config)
    collate = trainer.data_collator

    def counting(features):
        batch = collate(features)
        pending.append(int(batch["attention_mask"].sum()) if "attention_mask" in batch else int(batch["input_ids"].numel()))
        return batch

    trainer.data_collator = counting
    trainer.train()
    return {"tokens_per_s": rate(times, tokens, a.warmup)}


def child(a) -> None:
    out = run_ours(a) if a.child == "ours" else run_trl(a)
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print("RESULT " + json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--n-conv", type=int, default=800)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ours-packing", action=argparse.BooleanOptionalAction, default=False,
                   help="pack rows in skillmix.training too (default off: on CPU SDPA, rows of one example keep "
                        "the is_causal kernel, which beats a dense block mask when examples are long)")
    p.add_argument("--trl-packing", action=argparse.BooleanOptionalAction, default=True,
                   help="TRL with packing=True, bfd, padding_free (default) or unpacked rows padded per batch")
    p.add_argument("--lora", action="store_true", help="LoRA adapters on both sides instead of full fine-tuning")
    p.add_argument("--out", help="write the results JSON here")
    p.add_argument("--child", choices=["ours", "trl"], help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return child(a)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    results: dict[str, list[dict]] = {"ours": [], "trl": []}
    with tempfile.TemporaryDirectory() as tmp:
        model, data = make_inputs(Path(tmp), a.n_conv)
        for rep in range(a.repeats):
            for name in ("ours", "trl"):  # interleaved, so drift in machine load hits both
                work = Path(tmp) / f"{name}-{rep}"
                cmd = [sys.executable, __file__, "--child", name, "--model", str(model), "--data", str(data),
                       "--workdir", str(work), "--steps", str(a.steps), "--warmup", str(a.warmup),
                       "--batch", str(a.batch), "--max-length", str(a.max_length),
                       "--ours-packing" if a.ours_packing else "--no-ours-packing",
                       "--trl-packing" if a.trl_packing else "--no-trl-packing"] + (["--lora"] if a.lora else [])
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
                if line is None:
                    sys.exit(f"{name} failed:\n{proc.stderr[-4000:]}")
                results[name].append(json.loads(line[7:]))
                print(name, rep, results[name][-1], flush=True)
    summary = {name: {"tokens_per_s_median": statistics.median(r["tokens_per_s"] for r in runs),
                      "peak_rss_gb_median": statistics.median(r["peak_rss_gb"] for r in runs), "runs": runs}
               for name, runs in results.items()}
    summary["ratio_tokens_per_s"] = summary["ours"]["tokens_per_s_median"] / summary["trl"]["tokens_per_s_median"]
    summary["ratio_peak_rss"] = summary["ours"]["peak_rss_gb_median"] / summary["trl"]["peak_rss_gb_median"]
    summary["settings"] = {k: getattr(a, k) for k in ("steps", "warmup", "batch", "max_length", "n_conv", "repeats",
                                                      "ours_packing", "trl_packing", "lora")}
    print(json.dumps({k: v for k, v in summary.items() if k in ("ratio_tokens_per_s", "ratio_peak_rss")}))
    if a.out:
        Path(a.out).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
