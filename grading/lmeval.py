"""The lm-eval glue of the judge: the task's dataset hook and the ``judged`` filter.

lm-eval runs all generation first, then each task's filters, then ``process_results``. So:
- ``load_dataset`` (the YAMLs' ``custom_dataset``) runs when a task is built, before any
  generation, and checks the judge configuration there: a bad judge fails fast.
- ``judge_filter`` receives every response of a task at once, grades them concurrently
  through the cached judge, and gives each doc a JSON verdict (lm-eval logs ``str()`` of it).
  Once generation has happened nothing raises: any judge failure becomes unscored.

lm-eval 0.4.13 gives neither hook the task or the run options, so both look up the call
stack for them (``simple_evaluate``'s ``predict_only``; the task whose ``apply_filters`` is
running). Without them (another caller) the hooks judge with the environment's judge.
"""

from __future__ import annotations

import inspect
import json
import logging
from typing import Any, Mapping

from skillmix_tasks.metrics import item_metrics
from skillmix_tasks.prompts import PROMPT_VERSION, extract_answer
from skillmix_tasks.sampling import DEFAULT_N, DEFAULT_SEED, Item
from skillmix_tasks.scoring import METRICS, Unscored

from .specs import JudgeConfigError

log = logging.getLogger(__name__)

# --metadata keys the tasks read (everything else in metadata is ignored).
JUDGE_KEY, JUDGE_CONFIG_KEY = "judge", "judge_config"


def _frame_local(function: str, name: str, module_prefix: str = "lm_eval") -> Any:
    frame = inspect.currentframe()
    try:
        while frame is not None:
            if frame.f_code.co_name == function and frame.f_globals.get("__name__", "").startswith(module_prefix):
                return frame.f_locals.get(name)
            frame = frame.f_back
        return None
    finally:
        del frame


def _predict_only() -> bool:
    return bool(_frame_local("simple_evaluate", "predict_only"))


def _judge_config(metadata: Mapping[str, Any]) -> tuple[str | None, dict]:
    config = metadata.get(JUDGE_CONFIG_KEY) or {}
    if isinstance(config, str):  # a path to a YAML judge config
        from .specs import load_config_file

        config = load_config_file(config)
    return metadata.get(JUDGE_KEY), dict(config)


def _resolve(metadata: Mapping[str, Any]):
    from .judge import resolve_judge

    spec, config = _judge_config(metadata)
    judge = resolve_judge(spec, config)
    if judge.settings.batch and not judge.settings.batch_wait:
        # lm-eval computes the metrics in the same run: a filter that does not wait grades nothing.
        raise JudgeConfigError("batch_wait: false cannot work inside lm_eval (the metrics are computed in the same "
                               "run, so every item would be unjudged). Generate with --predict_only --log_samples "
                               "and grade the samples with skillmix-grade --batch --no-wait, or let the filter "
                               "wait for its batches (batch_wait: true)")
    return judge


def load_dataset(split: str, k: int, n_items: int = DEFAULT_N, seed: int = DEFAULT_SEED, **metadata: Any):
    """``custom_dataset`` of the tasks: the items as a one-split DatasetDict.

    Also validates the judge now (no network), unless this is a ``--predict_only`` run.
    """
    import datasets

    from skillmix_tasks.lmeval.utils import build_docs

    if not _predict_only():
        try:
            _resolve(metadata)
        except JudgeConfigError as e:
            raise JudgeConfigError(f"skillmix_{split}_k{k}: no usable judge, so nothing was generated.\n{e}") from None
    docs = build_docs(split, k, n_items, seed)
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def _verdict(doc: dict, grades: list | None, reason: str | None, judge: str, skipped: bool = False) -> str:
    out: dict[str, Any] = {"id": doc.get("id"), "judge": judge, "prompt_version": PROMPT_VERSION}
    if skipped:
        out.update(scores=None, status="not judged", reason=reason)
        return json.dumps(out)
    if grades is None:
        out.update(scores=None, status="unscored", reason=reason, generations=[])
        return json.dumps(out)
    item = item_metrics([g.score for g in grades])
    if isinstance(item, Unscored):
        out.update(scores=None, status="unscored", reason=item.reason, detail=item.detail)
    else:
        out.update(scores={m: item[m] for m in METRICS}, status="scored")
    out["generations"] = [g.to_dict() for g in grades]
    return json.dumps(out, ensure_ascii=False)


def judge_filter(resps: list[list[str]], docs: list[dict]) -> list[str]:
    """The ``judged`` filter: one JSON verdict per doc, over all of the doc's generations."""
    task = _frame_local("apply_filters", "self")
    metadata = dict(getattr(getattr(task, "config", None), "metadata", None) or {})
    if task is not None and set(getattr(task, "_metric_fn_list", {})) == {"bypass"}:  # --predict_only
        return [_verdict(d, None, "predict_only", "", skipped=True) for d in docs]
    try:
        judge = _resolve(metadata)
    except Exception as e:  # after generation nothing raises: the run keeps its generations
        log.error("skillmix: the judge could not be set up (%s); every item is unscored", e)
        return [_verdict(d, None, "judge error", "") for d in docs]
    pairs, owners = [], []
    for i, (doc, doc_resps) in enumerate(zip(docs, resps)):
        item = Item.from_dict(doc)
        for resp in doc_resps:
            pairs.append((item, extract_answer(resp if isinstance(resp, str) else str(resp))))
            owners.append(i)
    try:
        grades = judge.grade(pairs)
    except Exception as e:
        log.error("skillmix: judging failed (%s); every item is unscored", e)
        return [_verdict(d, None, "judge error", judge.spec) for d in docs]
    per_doc: list[list] = [[] for _ in docs]
    for owner, grade in zip(owners, grades):
        per_doc[owner].append(grade)
    stats = judge.stats.to_dict()
    log.info("skillmix judge %s: %s", judge.spec, json.dumps(stats))
    if task is not None and getattr(task, "config", None) is not None:
        # Lands in the results JSON (configs.<task>.metadata) for the leaderboard.
        task.config.metadata = {**metadata, "judge": judge.spec, "judge_prompt_version": PROMPT_VERSION,
                                "judge_stats": stats}
    return [_verdict(d, g, None, judge.spec) for d, g in zip(docs, per_doc)]
