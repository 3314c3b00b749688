"""The checks of a SKILL-MIX ``lm_eval`` run before anything is generated.

- :func:`preflight` runs when the ``lm_eval`` CLI resolves its task names, before the model loads
  (the import hook calls it): a misspelt ``--metadata`` key, a missing judge, or a two-turn task
  without ``--apply_chat_template`` is one message and exit status 2.
- :func:`check_task` runs when a task is built (``tasks/utils.load_dataset``), after the model loads
  and before any generation: the judge again (the Python API has no CLI) and that the model can
  template a chat, which the two-turn protocol needs.
"""

from __future__ import annotations

import difflib
import sys
from typing import Any, Mapping

from skillmix_tasks.protocol import PROTOCOLS, TWO_TURN, parse_task_name

from skillmix.grading.specs import JudgeConfigError

from . import lmeval_internals as internals

# --metadata keys the tasks read (everything else in metadata is ignored).
JUDGE_KEY, JUDGE_CONFIG_KEY, PROTOCOL_KEY = "judge", "judge_config", "protocol"
USER_KEYS = (JUDGE_KEY, JUDGE_CONFIG_KEY, "n_items", "seed")  # what a user sets with --metadata

# With the ways to name a judge under lm_eval (specs.how_to_configure("lm_eval")): generate now, grade later.
PREDICT_ONLY_HINT = ("Or generate without a judge: lm_eval ... --predict_only --log_samples, then "
                     "skillmix-grade --input samples_*.jsonl.")


class SkillmixRunError(ValueError):
    """A SKILL-MIX task cannot run as asked; the message says what to change."""


def fail(message: str, error: type[Exception] = SkillmixRunError) -> None:
    """Stop before any generation: one message under the ``lm_eval`` CLI, an exception elsewhere."""
    if internals.running_cli():
        print(f"\nskillmix: {message}\n", file=sys.stderr, flush=True)
        raise SystemExit(2)
    raise error(message)


def resolve_judge(metadata: Mapping[str, Any]):
    """The run's judge from the task metadata (``judge``, ``judge_config``), else ``SKILLMIX_JUDGE``."""
    from skillmix.grading.judge import resolve_judge as resolve
    from skillmix.grading.specs import load_config_file

    config = metadata.get(JUDGE_CONFIG_KEY) or {}
    if isinstance(config, str):  # a path to a YAML judge config
        config = load_config_file(config)
    judge = resolve(metadata.get(JUDGE_KEY), dict(config), command="lm_eval")
    if judge.settings.batch and not judge.settings.batch_wait:
        # lm-eval computes the metrics in the same run: a filter that does not wait grades nothing.
        raise JudgeConfigError("batch_wait: false cannot work inside lm_eval (the metrics are computed in the same "
                               "run, so every item would be unjudged). Generate with --predict_only --log_samples "
                               "and grade the samples with skillmix-grade --batch --no-wait, or let the filter "
                               "wait for its batches (batch_wait: true)")
    return judge


def _check_judge(metadata: Mapping[str, Any], tasks: str) -> None:
    try:
        resolve_judge(metadata)
    except JudgeConfigError as e:
        fail(f"{tasks}: no usable judge, so nothing was generated.\n{e}\n{PREDICT_ONLY_HINT}", JudgeConfigError)


def _chat_template_missing(tasks: str) -> str:
    return (f"{tasks} run the paper's two-turn protocol: the model's reply goes back into a chat with the "
            "improve turn, so the model needs a chat template.")


def preflight(cli_config: Any = None) -> None:
    """Checks of an ``lm_eval`` CLI run before its model loads (no-op outside the CLI).

    Names decide here (``skillmix_<split>[_k<k>]`` two turns, ``..._single`` one prompt);
    :func:`check_task` checks the tasks' own metadata again once they are built."""
    cfg = cli_config if cli_config is not None else internals.cli_config()
    if cfg is None:
        return
    names = cfg.tasks.split(",") if isinstance(cfg.tasks, str) else list(cfg.tasks or [])
    ours = [n.strip() for n in names if isinstance(n, str) and parse_task_name(n)]
    if not ours:
        return
    tasks, metadata = ", ".join(ours), dict(cfg.metadata or {})
    _check_metadata_keys(metadata, tasks)
    if not cfg.predict_only:
        _check_judge(metadata, tasks)
    two_turn = [n for n in ours if parse_task_name(n)[2] == TWO_TURN]  # type: ignore[index]
    if two_turn and not cfg.apply_chat_template:
        fail(f"{_chat_template_missing(', '.join(two_turn))} Add --apply_chat_template (the model's own template), "
             f"or run the one-prompt variant: {', '.join(n + '_single' for n in two_turn)}.")


def _check_metadata_keys(metadata: Mapping[str, Any], tasks: str) -> None:
    """A --metadata key one typo away from ours is refused (it would be ignored, and the run would go
    on with the default); other keys are left alone, since lm-eval and other tasks read their own."""
    for key in metadata:
        close = [] if key in USER_KEYS else difflib.get_close_matches(str(key), USER_KEYS, n=1, cutoff=0.75)
        if close:
            fail(f"{tasks}: unknown --metadata key {key!r}; did you mean {close[0]!r}? The SKILL-MIX tasks read "
                 f"{', '.join(USER_KEYS)}.")


def check_task(name: str, protocol: str, metadata: Mapping[str, Any]) -> None:
    """Before any generation of a built task: a known protocol, a usable judge (unless
    ``--predict_only``), and for two turns a model that can template a chat."""
    internals.check_version()
    if protocol not in PROTOCOLS:
        fail(f"{name}: unknown protocol {protocol!r} in the task metadata; expected one of {', '.join(PROTOCOLS)}")
    if not internals.predict_only():
        _check_judge(metadata, name)
    if protocol == TWO_TURN:
        _check_chat(name)


def _check_chat(name: str) -> None:
    found, flag = internals.run_option("apply_chat_template")
    if not found:  # not inside lm-eval's evaluation (a direct call): nothing to check
        return
    if not flag:
        fail(f"{_chat_template_missing(name)} Add --apply_chat_template (apply_chat_template=True in "
             f"simple_evaluate), or run {name}_single (one prompt).")
    lm = internals.running_lm()
    try:
        lm.apply_chat_template([{"role": "user", "content": "Hello."}])
    except Exception as e:  # a tokenizer without a template raises here, before any generation
        fail(f"{_chat_template_missing(name)} This model has none ({type(e).__name__}: {e}). Use a checkpoint whose "
             f"tokenizer has one (tokenizer_config.json 'chat_template' or chat_template.jinja), or run "
             f"{name}_single (one prompt).")
