"""Wall time of the two-turn tasks against the one-prompt variant, same docs, same model, one process.

A tiny local chat checkpoint (tests/tiny_model.py) is loaded once as lm-eval's ``hf`` model; the
same TaskManager then builds ``skillmix_heldout_k3`` (two turns: turn 2 from the filter, batched)
and ``skillmix_heldout_k3_single`` (one prompt), and ``lm_eval.evaluator.evaluate`` runs each with
the chat template, in output-only mode (metrics bypassed, as ``--predict_only``: no judge, since
both protocols grade the same number of texts), in alternating rounds; the medians are compared.
Timed: ``evaluate`` (generation, filters, metrics), not ``simple_evaluate``'s fixed set-up (model
and task loading, environment report), which is the same for both. Two turns generate twice
the tokens, so ~2x is the floor; the target is <= 2.3x (turn 2 batched, not per doc).

Run: python bench/two_turn_bench.py [--limit 8] [--rounds 3] [--max-gen-toks 32]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Outside simple_evaluate the tasks check a judge when built; output-only mode never calls it.
os.environ["SKILLMIX_JUDGE"] = "openai-compatible:unused@http://127.0.0.1:9/v1"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

TWO, ONE = "skillmix_heldout_k3", "skillmix_heldout_k3_single"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limit", type=int, default=8, help="docs per task (x 3 repeats)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--max-gen-toks", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8)
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)

    from lm_eval.evaluator import evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from tiny_model import build_tiny_model

    from skillmix.harness.verdicts import parse_sample

    ckpt = build_tiny_model(Path(tempfile.mkdtemp()) / "tiny")
    lm = HFLM(pretrained=str(ckpt), batch_size=args.batch_size, device="cpu")
    manager = TaskManager()

    def run(task: str) -> float:
        loaded = manager.load([task])
        for obj in loaded["tasks"].values():  # what simple_evaluate does for --gen_kwargs and --predict_only
            obj.set_config(key="generation_kwargs", value={"max_gen_toks": args.max_gen_toks}, update=True)
            obj.override_metric(metric_name="bypass")
        start = time.perf_counter()
        out = evaluate(lm=lm, task_dict=loaded, limit=args.limit, log_samples=True, apply_chat_template=True,
                       bootstrap_iters=0)
        wall = time.perf_counter() - start
        rows = out["samples"][task]
        turns = {len(g.turns) for r in rows for g in parse_sample(r).generations}
        assert len(rows) == args.limit and turns == ({2} if task == TWO else {1}), turns
        return wall

    run(ONE)  # warm-up: dataset build, first forward passes
    walls: dict[str, list[float]] = {TWO: [], ONE: []}
    for _ in range(args.rounds):
        for task in (ONE, TWO):
            walls[task].append(run(task))
    med = {t: statistics.median(v) for t, v in walls.items()}
    print(json.dumps({
        "docs": args.limit, "generations_per_turn": args.limit * 3, "max_gen_toks": args.max_gen_toks,
        "rounds": args.rounds, "one_prompt_wall_s": [round(x, 2) for x in walls[ONE]],
        "two_turn_wall_s": [round(x, 2) for x in walls[TWO]],
        "two_turn_over_one_prompt (median)": round(med[TWO] / med[ONE], 3), "target": 2.3,
    }, indent=2))


if __name__ == "__main__":
    main()
