"""The lm-eval glue of SKILL-MIX: the checks before a run, the dataset hook, and the ``judged`` filter.

lm-eval runs all generation first, then each task's filters, then ``process_results``. So:
- ``preflight`` runs when the ``lm_eval`` CLI resolves its tasks, before the model loads (the
  package's TaskManager hook calls it): a missing judge, or a two-turn task without
  ``--apply_chat_template``, is one message and exit status 2.
- ``load_dataset`` (the YAMLs' ``custom_dataset``) runs when a task is built, after the model
  loads and before any generation: it checks the judge again (the Python API has no CLI) and
  that the model can template a chat, which the two-turn protocol needs.
- ``judge_filter`` receives every turn-1 response of a task at once. For the two-turn protocol
  it generates turn 2 for every doc x repeat in one batched ``generate_until`` call on the same
  lm-eval model object (each rank its own docs), then grades the final turns concurrently
  through the cached judge, and gives each doc a JSON verdict (lm-eval logs ``str()`` of it).
  Once generation has happened nothing raises: a failure becomes unscored items that keep
  every turn generated so far.

What this needs from lm-eval's internals is in ``lmeval_internals``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from typing import Any, Iterable, Mapping

from skillmix_tasks.lmeval.utils import protocol_of
from skillmix_tasks.metrics import item_metrics
from skillmix_tasks.prompts import PROMPT_VERSION, extract_answer, two_turn_messages
from skillmix_tasks.protocol import PROTOCOLS, TWO_TURN
from skillmix_tasks.sampling import DEFAULT_N, DEFAULT_SEED, Item
from skillmix_tasks.scoring import METRICS, Unscored

from . import lmeval_internals as internals
from .specs import JudgeConfigError, redact

log = logging.getLogger(__name__)

LOCAL_JUDGES = ("hf:", "openai-compatible:")  # a model of the user's own, which may not be able to grade
MOST = 0.5  # a local judge that fails more than this share of its gradings is called out

# --metadata keys the tasks read (everything else in metadata is ignored).
JUDGE_KEY, JUDGE_CONFIG_KEY, PROTOCOL_KEY = "judge", "judge_config", "protocol"
USER_KEYS = (JUDGE_KEY, JUDGE_CONFIG_KEY, "n_items", "seed")  # what a user sets with --metadata

# With the ways to name a judge under lm_eval (specs.how_to_configure("lm_eval")): generate now, grade later.
PREDICT_ONLY_HINT = ("Or generate without a judge: lm_eval ... --predict_only --log_samples, then "
                     "skillmix-grade --input samples_*.jsonl.")


class SkillmixRunError(ValueError):
    """A SKILL-MIX task cannot run as asked; the message says what to change."""


def _fail(message: str, error: type[Exception] = SkillmixRunError) -> None:
    """Stop before any generation: one message under the ``lm_eval`` CLI, an exception elsewhere."""
    if internals.running_cli():
        print(f"\nskillmix: {message}\n", file=sys.stderr, flush=True)
        raise SystemExit(2)
    raise error(message)


def _judge_config(metadata: Mapping[str, Any]) -> tuple[str | None, dict]:
    config = metadata.get(JUDGE_CONFIG_KEY) or {}
    if isinstance(config, str):  # a path to a YAML judge config
        from .specs import load_config_file

        config = load_config_file(config)
    return metadata.get(JUDGE_KEY), dict(config)


def _resolve(metadata: Mapping[str, Any]):
    from .judge import resolve_judge

    spec, config = _judge_config(metadata)
    judge = resolve_judge(spec, config, command="lm_eval")
    if judge.settings.batch and not judge.settings.batch_wait:
        # lm-eval computes the metrics in the same run: a filter that does not wait grades nothing.
        raise JudgeConfigError("batch_wait: false cannot work inside lm_eval (the metrics are computed in the same "
                               "run, so every item would be unjudged). Generate with --predict_only --log_samples "
                               "and grade the samples with skillmix-grade --batch --no-wait, or let the filter "
                               "wait for its batches (batch_wait: true)")
    return judge


def _check_judge(metadata: Mapping[str, Any], tasks: str) -> None:
    try:
        _resolve(metadata)
    except JudgeConfigError as e:
        _fail(f"{tasks}: no usable judge, so nothing was generated.\n{e}\n{PREDICT_ONLY_HINT}", JudgeConfigError)


def _chat_template_missing(tasks: str) -> str:
    return (f"{tasks} run the paper's two-turn protocol: the model's reply goes back into a chat with the "
            "improve turn, so the model needs a chat template.")


def preflight(cli_config: Any = None) -> None:
    """Checks of an ``lm_eval`` CLI run before its model loads (no-op outside the CLI).

    Names decide here (``skillmix_<split>[_k<k>]`` two turns, ``..._single`` one prompt);
    ``load_dataset`` checks the tasks' own metadata again once they are built."""
    cfg = cli_config if cli_config is not None else internals.cli_config()
    if cfg is None:
        return
    names = cfg.tasks.split(",") if isinstance(cfg.tasks, str) else list(cfg.tasks or [])
    ours = [n for n in names if isinstance(n, str) and protocol_of(n.strip())]
    if not ours:
        return
    tasks, metadata = ", ".join(ours), dict(cfg.metadata or {})
    _check_metadata_keys(metadata, tasks)
    if not cfg.predict_only:
        _check_judge(metadata, tasks)
    two_turn = [n for n in ours if protocol_of(n.strip()) == TWO_TURN]
    if two_turn and not cfg.apply_chat_template:
        _fail(f"{_chat_template_missing(', '.join(two_turn))} Add --apply_chat_template (the model's own template), "
              f"or run the one-prompt variant: {', '.join(n.strip() + '_single' for n in two_turn)}.")


def _check_metadata_keys(metadata: Mapping[str, Any], tasks: str) -> None:
    """A --metadata key one typo away from ours is refused (it would be ignored, and the run would go
    on with the default); other keys are left alone, since lm-eval and other tasks read their own."""
    import difflib

    for key in metadata:
        close = [] if key in USER_KEYS else difflib.get_close_matches(str(key), USER_KEYS, n=1, cutoff=0.75)
        if close:
            _fail(f"{tasks}: unknown --metadata key {key!r}; did you mean {close[0]!r}? The SKILL-MIX tasks read "
                  f"{', '.join(USER_KEYS)}.")


def load_dataset(split: str, k: int, n_items: int = DEFAULT_N, seed: int = DEFAULT_SEED, protocol: str = TWO_TURN,
                 **metadata: Any):
    """``custom_dataset`` of the tasks: the items as a one-split DatasetDict.

    Before any generation: the protocol is known, the judge is usable (unless
    ``--predict_only``), and for two turns the model can template a chat."""
    import datasets

    from skillmix_tasks.lmeval.utils import build_docs

    internals.check_version()
    name = f"skillmix_{split}_k{k}" + ("" if protocol == TWO_TURN else "_single")
    if protocol not in PROTOCOLS:
        _fail(f"{name}: unknown protocol {protocol!r} in the task metadata; expected one of {', '.join(PROTOCOLS)}")
    if not internals.predict_only():
        _check_judge(metadata, name)
    if protocol == TWO_TURN:
        _check_chat(name)
    docs = build_docs(split, k, n_items, seed, protocol)
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def _check_chat(name: str) -> None:
    found, flag = internals.run_option("apply_chat_template")
    if not found:  # not inside lm-eval's evaluation (a direct call): nothing to check
        return
    if not flag:
        _fail(f"{_chat_template_missing(name)} Add --apply_chat_template (apply_chat_template=True in "
              f"simple_evaluate), or run {name}_single (one prompt).")
    lm = internals.running_lm()
    try:
        lm.apply_chat_template([{"role": "user", "content": "Hello."}])
    except Exception as e:  # a tokenizer without a template raises here, before any generation
        _fail(f"{_chat_template_missing(name)} This model has none ({type(e).__name__}: {e}). Use a checkpoint whose "
              f"tokenizer has one (tokenizer_config.json 'chat_template' or chat_template.jinja), or run "
              f"{name}_single (one prompt).")


def _texts(resps: Iterable[Any]) -> list[str]:
    return [r if isinstance(r, str) else str(r) for r in resps]


def _second_turns(task: Any, lm: Any, docs: list[dict], first: list[list[str]]) -> list[list[str]]:
    """Turn 2 of every doc x repeat in one batched call on the run's own model object."""
    found, system = internals.run_option("system_instruction")
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


def _verdict(doc: dict, protocol: str, turns: list[list[str]], grades: list | None, status: str | None,
             reason: str | None, judge: str) -> str:
    out: dict[str, Any] = {"id": doc.get("id"), "protocol": protocol, "judge": judge, "prompt_version": PROMPT_VERSION}
    if grades is None:
        out.update(scores=None, status=status, reason=reason,
                   generations=[{"repeat": r, "turns": t, "text": extract_answer(t[-1])} for r, t in enumerate(turns)])
        return json.dumps(out, ensure_ascii=False)
    item = item_metrics([g.score for g in grades])
    if isinstance(item, Unscored):
        out.update(scores=None, status="unscored", reason=item.reason, detail=item.detail)
    else:
        out.update(scores={m: item[m] for m in METRICS}, status="scored")
    out["generations"] = [{**g.to_dict(), "repeat": r, "turns": t} for r, (g, t) in enumerate(zip(grades, turns))]
    return json.dumps(out, ensure_ascii=False)


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


def judge_filter(resps: list[list[str]], docs: list[dict]) -> list[str]:
    """The ``judged`` filter: turn 2 where the protocol has one, then one JSON verdict per doc."""
    internals.check_version()
    task = internals.running_task()
    metadata = internals.task_metadata(task)
    protocol = str(metadata.get(PROTOCOL_KEY) or (docs[0].get(PROTOCOL_KEY) if docs else None) or TWO_TURN)
    instances = internals.task_instances(task) if task is not None else []
    # Several ranks: lm-eval pads the last request of a rank with extra copies; keep the task's repeats.
    repeats = [getattr(inst, "repeats", None) or len(r) for inst, r in zip(instances, resps)] or [len(r) for r in resps]
    first = [_texts(r)[:n] for r, n in zip(resps, repeats)]
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
            turns, reason = [[[t] for t in doc_first] for doc_first in first], "predict_only; turn 2 failed"
        return [_verdict(d, protocol, t, None, "not judged", reason, "") for d, t in zip(docs, turns)]
    verdicts, judge, stats = _judge_all(task, lm, docs, first, protocol, metadata)
    # Every rank gets here (each runs every task's filters in order): add up the judge statistics on rank 0.
    every_rank = internals.gather_to_rank0(lm, stats) if lm is not None else [stats]
    if judge is not None and every_rank is not None and task is not None and getattr(task, "config", None) is not None:
        stats = _sum_stats(every_rank)
        log.info("skillmix judge %s: %s", judge.spec, json.dumps(stats))
        _warn_local_judge(judge.spec, stats)
        # Lands in the results JSON (configs.<task>.metadata) for the leaderboard.
        internals.set_task_metadata(task, {**metadata, PROTOCOL_KEY: protocol, "judge": judge.spec,
                                           "judge_prompt_version": PROMPT_VERSION, "judge_stats": stats})
    _log_unscored(getattr(getattr(task, "config", None), "task", None) or "skillmix", verdicts)
    return verdicts


def _log_unscored(name: str, verdicts: list[str]) -> None:
    """Why items are unscored, in lm_eval's own output (its table shows only how many)."""
    reasons = Counter()
    for v in verdicts:
        d = json.loads(v)
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


def _conversations(task: Any, lm: Any, docs: list[dict], first: list[list[str]], protocol: str) -> list[list[list[str]]]:
    """Per doc, per repeat, the student's replies: [turn 1, turn 2] (two-turn) or [reply]."""
    if protocol != TWO_TURN:
        return [[[t] for t in doc_first] for doc_first in first]
    second = _second_turns(task, lm, docs, first)
    return [[[a, b] for a, b in zip(f, s)] for f, s in zip(first, second)]


def _judge_all(task, lm, docs, first, protocol, metadata) -> tuple[list[str], Any, dict]:
    """Verdicts, the judge (None if it could not be set up) and its statistics; never raises."""
    try:
        turns = _conversations(task, lm, docs, first, protocol)
    except Exception as e:  # after generation nothing raises: the verdicts keep turn 1
        log.exception("skillmix: turn 2 failed (%s); every item of this task is unscored", redact(str(e)))
        turns = [[[t] for t in doc_first] for doc_first in first]
        return [_verdict(d, protocol, t, None, "unscored", "turn 2 failed", "") for d, t in zip(docs, turns)], None, {}
    try:
        judge = _resolve(metadata)
    except Exception as e:
        log.error("skillmix: the judge could not be set up (%s); every item is unscored", redact(str(e)))
        return [_verdict(d, protocol, t, None, "unscored", "judge error", "") for d, t in zip(docs, turns)], None, {}
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
        verdicts = [_verdict(d, protocol, t, None, "unscored", "judge error", judge.spec) for d, t in zip(docs, turns)]
        return verdicts, judge, judge.stats.to_dict()
    per_doc: list[list] = [[] for _ in docs]
    for owner, grade in zip(owners, grades):
        per_doc[owner].append(grade)
    verdicts = [_verdict(d, protocol, t, g, None, None, judge.spec) for d, t, g in zip(docs, turns, per_doc)]
    return verdicts, judge, judge.stats.to_dict()
