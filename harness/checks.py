"""The checks of a SKILL-MIX ``lm_eval`` run before anything is generated.

- :func:`preflight` runs when the ``lm_eval`` CLI resolves its task names, before the model loads
  (the import hook calls it): an unknown ``--metadata`` key, an ``--output_path`` that cannot be
  written, a missing judge, or a two-turn task without ``--apply_chat_template`` is one message and
  exit status 2. :func:`check_task_names` follows once lm-eval has indexed its tasks: a misspelt
  ``skillmix_`` task name gets a did-you-mean instead of lm-eval's traceback.
- :func:`check_task` runs when a task is built (``tasks/utils.load_dataset``), after the model loads
  and before any generation: the judge again (the Python API has no CLI) and that the model can
  template a chat, which the two-turn protocol needs.
"""

from __future__ import annotations

import difflib
from pathlib import Path
import sys
from typing import Any, Mapping

from skillmix_tasks.outputs import OutputPathError, check_output_dir
from skillmix_tasks.protocol import K_RANGE, PROTOCOLS, SPLITS, TWO_TURN, parse_task_name, task_name

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
    # lm-eval merges --model_args into the metadata it hands every task: those keys are the model's.
    model_keys = set(cfg.model_args or {}) if isinstance(cfg.model_args, dict) else set()
    foreign = [n for n in names if isinstance(n, str) and n.strip() and not parse_task_name(n)]
    _check_metadata_keys({k: v for k, v in metadata.items() if k not in model_keys}, tasks, strict=not foreign)
    _check_output_path(getattr(cfg, "output_path", None), tasks)
    if not cfg.predict_only:
        _check_judge(metadata, tasks)
    two_turn = [n for n in ours if parse_task_name(n)[2] == TWO_TURN]  # type: ignore[index]
    if two_turn and not cfg.apply_chat_template:
        fail(f"{_chat_template_missing(', '.join(two_turn))} Add --apply_chat_template (the model's own template), "
             f"or run the one-prompt variant: {', '.join(n + '_single' for n in two_turn)}.")


def _check_metadata_keys(metadata: Mapping[str, Any], tasks: str, strict: bool = True) -> None:
    """An unknown --metadata key is refused (it would be ignored, and the run would go on with the
    default), with the key it most likely meant. Beside tasks of other benchmarks (``strict`` off),
    which read keys of their own, only a key one typo away from ours is refused."""
    problems = []
    for key in metadata:
        if key in USER_KEYS:
            continue
        close = difflib.get_close_matches(str(key), USER_KEYS, n=1, cutoff=0.6 if strict else 0.75)
        if close or strict:
            problems.append(f"unknown --metadata key {key!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
    if problems:
        fail(f"{tasks}: {'; '.join(problems)}. The SKILL-MIX tasks read {', '.join(USER_KEYS)}"
             + ("" if strict else " (keys of the other tasks in the run are left to them)") + ".")


def _check_output_path(output_path: Any, tasks: str) -> None:
    """``--output_path`` is written after all generation and judging: check it first. lm-eval takes a
    folder, or a ``.json`` file whose folder it writes into."""
    if not output_path:
        return
    folder = str(output_path)
    if folder.endswith(".json"):
        folder = str(Path(folder).parent)
    try:
        check_output_dir(folder, what="--output_path")
    except OutputPathError as e:
        fail(f"{tasks}: {e}; nothing was generated.")


def known_task_names() -> list[str]:
    """Every SKILL-MIX task and group name."""
    names = [task_name(split, k, protocol) for protocol in PROTOCOLS for split in SPLITS for k in (*K_RANGE, None)]
    return sorted(names)


def check_task_names(manager: Any, cli_config: Any = None) -> None:
    """After lm-eval indexed its tasks: a ``skillmix`` task name it does not know gets one message with
    the name it most likely meant (lm-eval's own answer is a traceback after the model's set-up)."""
    cfg = cli_config if cli_config is not None else internals.cli_config()
    if cfg is None:
        return
    names = cfg.tasks.split(",") if isinstance(cfg.tasks, str) else list(cfg.tasks or [])
    known = set(internals.indexed_task_names(manager))
    for name in (n.strip() for n in names if isinstance(n, str)):
        if name.lower().startswith("skillmix") and name not in known and not name.endswith(".yaml"):
            close = difflib.get_close_matches(name, known_task_names(), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            fail(f"unknown task {name!r}; {hint}SKILL-MIX tasks are skillmix_<train|heldout|all>_k<1-6> (the paper's "
                 f"two turns), the same with _single (one prompt), and the groups skillmix_<split>[_single].")


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
