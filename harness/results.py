"""lm-eval results files from re-graded samples, so the leaderboard reads them like any lm-eval run.

The workflow for paper-scale evaluation at batch prices: generate without judging, then grade the
samples through the provider's Batch API (hours later is fine), then build the leaderboard::

    lm_eval --model hf --model_args pretrained=M --tasks skillmix_heldout_k3 --apply_chat_template \\
            --predict_only --log_samples --output_path runs/
    skillmix-grade --judge openai:gpt-4o --batch --input runs/M/samples_skillmix_heldout_k3_<ts>.jsonl \\
            --output grades.jsonl --results-dir runs/graded/
    skillmix-leaderboard runs/graded/ --out leaderboard/site

The results file is the ``--predict_only`` run's own ``results_<ts>.json`` (next to the samples: model,
arguments, versions, protocol), with the task's row replaced by the judged metrics under the ``judged``
filter (the task YAML's names: mean and stderr of full_marks, all_skills, skills_fraction; the count of
unscored items) and the judge in ``configs.<task>.metadata``, written as
``<results-dir>/<model folder>/results_<ts>_<task>_<judge>.json``: one file per task and judge, so grading
each task of a multi-task run into one folder adds a file per task and never overwrites another task's.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from skillmix_tasks.prompts import PROMPT_VERSION
from skillmix_tasks.protocol import parse_task_name
from skillmix_tasks.scoring import SCORING_VERSION

from .verdicts import samples_task


class ResultsError(ValueError):
    pass


def template_for(samples: str | Path) -> tuple[str, str, Path]:
    """(task, timestamp, the results file lm-eval wrote with these samples), or ResultsError."""
    samples = Path(samples)
    found = samples_task(samples)
    if found is None or parse_task_name(found[0])[1] is None:  # type: ignore[index]
        raise ResultsError(f"--results-dir: {samples} is not an lm-eval samples file of a SKILL-MIX task "
                           f"(samples_skillmix_<split>_k<k>_<timestamp>.jsonl)")
    task, ts = found
    results = samples.with_name(f"results_{ts}.json")
    if not results.is_file():
        raise ResultsError(f"--results-dir: {results} is missing; it is the results file lm-eval writes next to "
                           f"{samples.name} (model, arguments, versions), and the graded results start from it")
    return task, ts, results


def _number(x: float | None) -> Any:
    return "N/A" if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def write_results(samples: str | Path, judge_summary: dict, out_dir: str | Path) -> Path:
    """The graded results file for one judge's summary (``cli.summarize_grades``) of ``samples``."""
    task, ts, template = template_for(samples)
    data = json.loads(template.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ResultsError(f"{template}: not an lm-eval results object")
    metrics = judge_summary["metrics"]
    items = judge_summary["items"]
    row: dict[str, Any] = {"alias": task}
    for m, v in metrics.items():
        row[f"{m},judged"] = _number(v["mean"])
        row[f"{m}_stderr,judged"] = _number(v["stderr"])
    row["unscored,judged"] = items["n"] - items["scored"]
    row["unscored_stderr,judged"] = "N/A"
    data["results"] = {task: row}  # the predict_only rows (and other tasks of that run) are not this grading
    config = dict((data.get("configs") or {}).get(task) or {})
    config["metadata"] = {**(config.get("metadata") or {}), "judge": judge_summary["judge"],
                          "judge_prompt_version": PROMPT_VERSION,
                          "judge_scoring_version": SCORING_VERSION, "judge_stats": judge_summary["stats"],
                          "graded_from": str(samples)}
    data["configs"] = {task: config}
    for key in ("versions", "n-shot", "higher_is_better", "n-samples"):
        if isinstance(data.get(key), dict):
            data[key] = {t: v for t, v in data[key].items() if t == task}
    data.setdefault("n-samples", {})[task] = {"original": items["n"], "effective": items["n"]}
    data.pop("groups", None)
    data.pop("group_subtasks", None)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", judge_summary["judge"]).strip("_")
    out = Path(out_dir) / template.parent.name / f"results_{ts}_{task}_{slug}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    return out
