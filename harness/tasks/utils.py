"""The hooks of the SKILL-MIX lm-eval tasks: the dataset, turn 2 and the judge, and the metrics.

lm-eval runs all generation first (turn 1 is its own generation of ``doc_to_text``), then each task's
filters, then ``process_results`` one doc at a time. So:

- ``load_dataset`` (``custom_dataset``) builds the items, after the model loads and before any
  generation, and stops a run that cannot work (``harness/checks.py``).
- ``judge_filter`` (the ``judged`` filter) receives every turn-1 response of the task at once. For
  the two-turn protocol it generates turn 2 for every doc x repeat in one batched ``generate_until``
  call on the run's own model object (``second_turns`` below; each rank its own docs), then grades
  the final turns concurrently through the cached judge (``skillmix.grading.judge.Judge.grade``; each
  grading reply is parsed in ``skillmix_tasks/scoring.py``, ``score_text``) and gives each doc a JSON
  verdict (``harness/verdicts.py``). Once generation has happened nothing raises: a failure becomes
  unscored items that keep every turn generated so far.
- ``process_results`` reads the verdict's item metrics: each metric is the max over the item's
  generations (``skillmix_tasks/metrics.py``, ``item_metrics``) of the per-text metrics
  (``skillmix_tasks/scoring.py``, ``generation_metrics``); lm-eval's ``mean`` gives the task's number
  and its stderr.

What this needs from lm-eval's internals is in ``harness/lmeval_internals.py``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

from skillmix_tasks.prompts import PROMPT_VERSION, extract_answer, first_prompt, two_turn_messages
from skillmix_tasks.protocol import DEFAULT_N, DEFAULT_SEED, METRICS, TWO_TURN, task_name
from skillmix_tasks.scoring import SCORING_VERSION
from skillmix_tasks.sampling import Item, sample_items

from skillmix.grading.specs import redact
from skillmix.harness import lmeval_internals as internals
from skillmix.harness.checks import PROTOCOL_KEY, check_task, resolve_judge
from skillmix.harness.verdicts import read_verdict, write_verdict

log = logging.getLogger("skillmix.harness.tasks")

LOCAL_JUDGES = ("hf:", "openai-compatible:")  # a model of the user's own, which may not be able to grade
MOST = 0.5  # a local judge that fails more than this share of its gradings is called out


# --------------------------------------------------------------------------------------------- the dataset
def build_docs(split: str, k: int, n: int = DEFAULT_N, seed: int = DEFAULT_SEED, protocol: str = TWO_TURN) -> list[dict]:
    """The task's docs: one per item, with the protocol's first prompt precomputed."""
    return [
        {**item.to_dict(), "prompt": first_prompt(item, protocol), "protocol": protocol, "prompt_version": PROMPT_VERSION}
        for item in sample_items(split, int(k), int(n), int(seed))
    ]


def load_dataset(split: str, k: int, n_items: int = DEFAULT_N, seed: int = DEFAULT_SEED, protocol: str = TWO_TURN,
                 **metadata: Any):
    """``custom_dataset`` of the tasks: the items as a one-split DatasetDict, after the run's checks."""
    import datasets

    check_task(task_name(split, k, protocol), protocol, metadata)
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(build_docs(split, k, n_items, seed, protocol))})


def doc_to_text(doc: dict) -> str:
    return doc["prompt"]


# --------------------------------------------------------------------------------------------- turn 2
def second_turns(task: Any, lm: Any, docs: list[dict], first: list[list[str]]) -> list[list[str]]:
    """Turn 2 of every doc x repeat in one batched call on the run's own model object."""
    _, system = internals.run_option("system_instruction")
    gen_kwargs = internals.generation_kwargs(task)
    name = getattr(getattr(task, "config", None), "task", None) or "skillmix"
    requests, owners = [], []
    for d, (doc, replies) in enumerate(zip(docs, first)):
        item = Item.from_dict(doc)
        for r, reply in enumerate(replies):
            messages = two_turn_messages(item, [reply])
            if system:  # --system_instruction was in turn 1's chat too
                messages = [{"role": "system", "content": system}] + messages
            requests.append(internals.generate_request(doc, lm.apply_chat_template(messages), gen_kwargs, name, d, r))
            owners.append((d, r))
    log.info("skillmix %s: turn 2 for %d generations (rank %d)", name, len(requests), internals.rank(lm))
    replies = lm.generate_until(requests) if requests else []
    out: list[list[str]] = [[""] * len(r) for r in first]
    for (d, r), reply in zip(owners, replies):
        out[d][r] = reply if isinstance(reply, str) else str(reply)
    return out


def _first_turns(first: list[list[str]]) -> list[list[list[str]]]:
    """Per doc, per repeat, turn 1 alone: a single-turn conversation, or what is kept when turn 2 failed."""
    return [[[t] for t in doc_first] for doc_first in first]


def _conversations(task: Any, lm: Any, docs: list[dict], first: list[list[str]], protocol: str) -> list[list[list[str]]]:
    """Per doc, per repeat, the student's replies: [turn 1, turn 2] (two-turn) or [reply]."""
    if protocol != TWO_TURN:
        return _first_turns(first)
    second = second_turns(task, lm, docs, first)
    return [[[a, b] for a, b in zip(f, s)] for f, s in zip(first, second)]


# --------------------------------------------------------------------------------------------- the filter
def judge_filter(resps: list[list[str]], docs: list[dict]) -> list[str]:
    """The ``judged`` filter: turn 2 where the protocol has one, then one JSON verdict per doc."""
    internals.check_version()
    task = internals.running_task()
    metadata = internals.task_metadata(task)
    protocol = str(metadata.get(PROTOCOL_KEY) or (docs[0].get(PROTOCOL_KEY) if docs else None) or TWO_TURN)
    instances = internals.task_instances(task) if task is not None else []
    # Several ranks: lm-eval pads the last request of a rank with extra copies; keep the task's repeats.
    repeats = [getattr(inst, "repeats", None) or len(r) for inst, r in zip(instances, resps)] or [len(r) for r in resps]
    first = [[t if isinstance(t, str) else str(t) for t in r][:n] for r, n in zip(resps, repeats)]
    lm = internals.running_lm()
    if protocol == TWO_TURN and (task is None or lm is None):
        raise RuntimeError("the two-turn SKILL-MIX filter runs inside lm_eval's evaluation (it needs the model "
                           "object for turn 2); call lm_eval or lm_eval.simple_evaluate")
    if (task is not None and internals.task_predict_only(task)) or internals.predict_only():
        reason = "predict_only"
        try:
            turns = _conversations(task, lm, docs, first, protocol)
        except Exception as e:  # keep turn 1
            log.exception("skillmix: turn 2 failed (%s)", e)
            turns, reason = _first_turns(first), "predict_only; turn 2 failed"
        name = getattr(getattr(task, "config", None), "task", None) or "skillmix"
        log.warning("skillmix %s: --predict_only, so nothing is judged: lm-eval's table shows its 'bypass' placeholder "
                    "(999) for this task, which is no score. Grade the texts later, without regenerating: "
                    "skillmix-grade --judge <spec> --input samples_%s_<date>.jsonl --results-dir <folder>", name, name)
        return [write_verdict(d, protocol, t, status="not judged", reason=reason) for d, t in zip(docs, turns)]
    verdicts, judge, stats = _judge_all(task, lm, docs, first, protocol, metadata)
    # Every rank gets here (each runs every task's filters in order): add up the judge statistics on rank 0.
    every_rank = internals.gather_to_rank0(lm, stats) if lm is not None else [stats]
    if judge is not None and every_rank is not None and task is not None and getattr(task, "config", None) is not None:
        stats = _sum_stats(every_rank)
        log.info("skillmix judge %s: %s", judge.spec, json.dumps(stats))
        _warn_local_judge(judge.spec, stats)
        # Lands in the results JSON (configs.<task>.metadata) for the leaderboard.
        internals.set_task_metadata(task, {**metadata, PROTOCOL_KEY: protocol, "judge": judge.spec,
                                           "judge_prompt_version": PROMPT_VERSION,
                                           "judge_scoring_version": SCORING_VERSION, "judge_stats": stats})
    _log_unscored(getattr(getattr(task, "config", None), "task", None) or "skillmix", verdicts)
    return verdicts


def _judge_all(task, lm, docs, first, protocol, metadata) -> tuple[list[str], Any, dict]:
    """Verdicts, the judge (None if it could not be set up) and its statistics; never raises."""
    try:
        turns = _conversations(task, lm, docs, first, protocol)
    except Exception as e:  # after generation nothing raises: the verdicts keep turn 1
        log.exception("skillmix: turn 2 failed (%s); every item of this task is unscored", redact(str(e)))
        turns = _first_turns(first)
        return [write_verdict(d, protocol, t, reason="turn 2 failed") for d, t in zip(docs, turns)], None, {}
    try:
        judge = resolve_judge(metadata)
    except Exception as e:
        log.error("skillmix: the judge could not be set up (%s); every item is unscored", redact(str(e)))
        return [write_verdict(d, protocol, t, reason="judge error") for d, t in zip(docs, turns)], None, {}
    pairs, owners = [], []
    for i, (doc, doc_turns) in enumerate(zip(docs, turns)):
        item = Item.from_dict(doc)
        for conversation in doc_turns:
            pairs.append((item, extract_answer(conversation[-1])))  # only the final turn is graded
            owners.append(i)
    try:
        grades = judge.grade(pairs)
    except Exception as e:
        log.error("skillmix: judging failed (%s); every item is unscored", redact(str(e)))
        verdicts = [write_verdict(d, protocol, t, reason="judge error", judge=judge.spec) for d, t in zip(docs, turns)]
        return verdicts, judge, judge.stats.to_dict()
    per_doc: list[list] = [[] for _ in docs]
    for owner, grade in zip(owners, grades):
        per_doc[owner].append(grade)
    verdicts = [write_verdict(d, protocol, t, g, judge=judge.spec) for d, t, g in zip(docs, turns, per_doc)]
    return verdicts, judge, judge.stats.to_dict()


def _sum_stats(parts: list[dict]) -> dict:
    """Judge statistics of all ranks added up (numbers add, dicts merge key by key)."""
    out: dict = {}
    for part in parts:
        for key, value in (part or {}).items():
            if isinstance(value, bool) or value is None:
                out.setdefault(key, value)
            elif isinstance(value, (int, float)):
                out[key] = round(out.get(key, 0) + value, 6) if isinstance(value, float) else out.get(key, 0) + value
            elif isinstance(value, dict):
                out[key] = _sum_stats([out.get(key) or {}, value])
            else:
                out.setdefault(key, value)
    return out


def _log_unscored(name: str, verdicts: list[str]) -> None:
    """Why items are unscored, in lm_eval's own output (its table shows only how many)."""
    reasons: Counter = Counter()
    for v in verdicts:
        d = read_verdict(v)
        if d.get("status") == "unscored":
            reasons[d.get("reason") or "unknown"] += 1
    if not reasons:
        return
    unscored, why = sum(reasons.values()), "; ".join(f"{r}: {n}" for r, n in reasons.most_common())
    log.warning("skillmix %s: %d of %d items unscored (left out of the means): %s", name, unscored, len(verdicts), why)
    if unscored == len(verdicts):
        # lm_eval still exits 0 and writes the run; say loudly that it holds no score, and how to grade
        # its texts again without generating them again.
        log.error("skillmix %s: no item was scored (%s), so this run has no score to quote. With --log_samples its "
                  "texts are in samples_%s_<date>.jsonl under --output_path; grade them again, without "
                  "regenerating, with: skillmix-grade --judge <spec> --input <that file> --results-dir <folder>",
                  name, why, name)


def _warn_local_judge(spec: str, stats: dict) -> None:
    """A local judge that fails most gradings says so: its few scores are no real grading."""
    total, failed = stats.get("gradings") or 0, sum((stats.get("unscored_gradings") or {}).values())
    if spec.startswith(LOCAL_JUDGES) and total and failed / total > MOST:
        log.warning("skillmix: the judge %s failed %d of %d gradings (%s); a model that cannot write the grading "
                    "table is not a real grader, so treat these numbers as demo-grade", spec, failed, total,
                    ", ".join(f"{r}: {n}" for r, n in Counter(stats.get("unscored_gradings") or {}).most_common()))


# --------------------------------------------------------------------------------------------- the metrics
def process_results(doc: dict, results: list) -> dict:
    """Metrics of one item from the judge filter's verdict.

    An unscored item reports only ``unscored: 1``, so it is left out of the three means
    (lm-eval aggregates each metric over the docs that produced it) instead of counting as 0."""
    scores = read_verdict(results).get("scores")
    if not scores:
        return {"unscored": 1}
    return {**{m: float(scores[m]) for m in METRICS}, "unscored": 0}


def count(values: list) -> int:
    """Aggregation for ``unscored``: how many items had no score."""
    return int(sum(values))
