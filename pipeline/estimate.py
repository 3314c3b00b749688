"""``skillmix-pipeline --dry-run``: the judge and teacher calls a configuration implies, and their cost.

Nothing is called. The datagen estimate is skillmix-datagen's own dry run (cache-aware); the eval
estimate is an upper bound (the student texts do not exist yet, so no cached grading is subtracted).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from skillmix_tasks.protocol import DEFAULT_N, GENERATIONS_PER_ITEM

from skillmix.grading.cost import CHARS_PER_TOKEN, TYPICAL_REPLY_TOKENS, estimate_tokens, price_for
from skillmix.grading.estimate import CallEstimate
from skillmix.grading.specs import dry_run_credentials, make_settings, parse_spec
from skillmix_tasks import grader_prompt, sample_items

from .config import PipelineConfig
from .stages import datagen_args, eval_models

TYPICAL_STUDENT_TOKENS = 120  # a few sentences
TYPICAL_STUDENT_TEXT = "x" * round(TYPICAL_STUDENT_TOKENS * CHARS_PER_TOKEN)


def datagen_estimate(config: PipelineConfig) -> dict:
    """skillmix-datagen's own dry run with the datagen unit's arguments (``stages.datagen_args``)."""
    from skillmix.datagen.cli import parse_args, run

    args = datagen_args(config)
    with tempfile.TemporaryDirectory() as tmp, dry_run_credentials():
        if not Path(config.cache_path).is_file():
            # Do not create the cache just to look into it: an empty throwaway one (not "off", which
            # batch mode refuses) stands in.
            args = args + ["--cache", str(Path(tmp) / "empty.sqlite")]
        return run(parse_args(args + ["--dry-run"]))


def eval_estimate(config: PipelineConfig) -> dict:
    e = config.eval
    spec = parse_spec(config.eval_judge) if config.eval_judge else None
    settings = make_settings(e.judge_config)
    n_grad, max_tokens = settings.n_gradings, settings.max_tokens
    # The gradings of a text go out ``per`` to a request (the API's n); the prompt is billed once a request.
    per = settings.choices_for(spec) if spec else 1
    repeats = GENERATIONS_PER_ITEM
    n_items = e.limit or DEFAULT_N
    models = eval_models(config)
    tasks = [(split, k) for split in e.splits for k in e.k]
    est = CallEstimate()
    for split, k in tasks:
        for it in sample_items(split, k, n_items):
            est.add(estimate_tokens(grader_prompt(it, TYPICAL_STUDENT_TEXT)), n_grad, per_request=per,
                    reply_tokens=min(max_tokens, TYPICAL_REPLY_TOKENS), times=len(models) * len(e.protocols) * repeats)
    price = price_for(spec, e.judge_config.get("prices")) if spec else None
    d = est.to_dict(price, "judge_", digits=2)
    return {"judge": str(spec) if spec else None, "models": [m for _, m in models], "protocols": e.protocols,
            "tasks": [f"skillmix_{s}_k{k}" for s, k in tasks], "items_per_task": n_items,
            "generations_per_item": repeats, "gradings_per_text": n_grad, "texts": est.replies // n_grad,
            "judge_calls": d["judge_calls"], "judge_replies": d["judge_replies"], "choices_per_call": per,
            "input_tokens_est": est.input_tokens, "output_tokens_est": est.output_tokens,
            "judge_cost_est": d["judge_cost_est"], "judge_batch_cost_est": d["judge_batch_cost_est"]}


def training_estimate(config: PipelineConfig) -> dict:
    """Sequences and tokens the fine-tuning runs process (an upper bound: every sequence at max_length)."""
    from skillmix.training.config import TrainConfig

    from .stages import train_config_path

    path = train_config_path(config)
    tc = TrainConfig.from_sources(path, [o for o in config.train.overrides if "=" in o])
    runs = len(config.students) * len(config.train.mixtures)
    seqs = tc.max_steps * tc.global_batch_size
    return {"config": path, "runs": runs, "steps_per_run": tc.max_steps, "sequences_per_run": seqs,
            "max_tokens_per_run": seqs * tc.max_length}
