"""Everything skillmix reads from lm-eval's internals, in one place.

lm-eval 0.4.13 hands a task's hooks neither the model nor the run options, and the two-turn
protocol needs both between generation and metrics (upstream will not add multi-call evals,
EleutherAI/lm-evaluation-harness#2179). So this module finds them on the call stack:

- ``lm_eval.evaluator.evaluate``: locals ``lm`` (the model object every request went through,
  a ``CachingLM`` under ``--use_cache``), ``system_instruction``, ``apply_chat_template``;
  it calls ``task.apply_filters()`` after all generation, so a filter runs inside it.
- ``lm_eval.evaluator.simple_evaluate``: locals ``lm``, ``predict_only``,
  ``apply_chat_template``; it builds the tasks (our ``custom_dataset``) after the model.
- ``Task.apply_filters``: ``self`` is the running task (``config.metadata``,
  ``config.generation_kwargs``, ``_instances``, ``_metric_fn_list`` = {"bypass"} under
  ``--predict_only``).
- ``lm_eval.config.evaluate_config.EvaluatorConfig.process_tasks``: the CLI's parsed
  options, before the model is loaded (``predict_only``, ``apply_chat_template``, ``metadata``).
- ``lm_eval.api.instance.Instance`` and the model methods ``apply_chat_template`` and
  ``generate_until`` (every lm-eval model class has both), ``rank``, ``world_size``,
  ``gather_object``.

``tests/test_lmeval_internals.py`` fails loudly if any of these change.
"""

from __future__ import annotations

import copy
import inspect
import logging
from typing import Any

log = logging.getLogger(__name__)

SUPPORTED = ((0, 4, 13), (0, 5, 0))  # [lowest, first unsupported): matches the pin in pyproject.toml
_warned = False


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for p in text.split(".")[:3]:
        digits = "".join(c for c in p if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_version() -> None:
    """Warn once when the installed lm-eval is outside the versions these lookups were checked on."""
    global _warned
    import lm_eval

    version = getattr(lm_eval, "__version__", "0")
    if not (SUPPORTED[0] <= _version(version) < SUPPORTED[1]) and not _warned:
        _warned = True
        log.warning("skillmix: lm-eval %s is outside the supported >=0.4.13,<0.5; the two-turn protocol reaches "
                    "into lm-eval internals checked only there", version)


def _frame_local(function: str, name: str, module: str) -> tuple[bool, Any]:
    """(found, value) of local ``name`` in the innermost running ``function`` of ``module``."""
    frame = inspect.currentframe()
    try:
        while frame is not None:
            if frame.f_code.co_name == function and frame.f_globals.get("__name__", "") == module:
                return True, frame.f_locals.get(name)
            frame = frame.f_back
        return False, None
    finally:
        del frame


def running_task() -> Any:
    """The task whose filters are running, or None outside ``Task.apply_filters``."""
    return _frame_local("apply_filters", "self", "lm_eval.api.task")[1]


def running_lm() -> Any:
    """The model object of the running evaluation (inside ``evaluate``, else ``simple_evaluate``)."""
    found, lm = _frame_local("evaluate", "lm", "lm_eval.evaluator")
    if not found:
        lm = _frame_local("simple_evaluate", "lm", "lm_eval.evaluator")[1]
    return lm


def run_option(name: str) -> tuple[bool, Any]:
    """An option of the running evaluation: ``evaluate``'s local, else ``simple_evaluate``'s."""
    found, value = _frame_local("evaluate", name, "lm_eval.evaluator")
    if not found:
        found, value = _frame_local("simple_evaluate", name, "lm_eval.evaluator")
    return found, value


def predict_only() -> bool:
    """``--predict_only`` of the running ``simple_evaluate`` (False elsewhere)."""
    return bool(_frame_local("simple_evaluate", "predict_only", "lm_eval.evaluator")[1])


def task_predict_only(task: Any) -> bool:
    """lm-eval marks ``--predict_only`` tasks by replacing every metric with ``bypass``."""
    return set(getattr(task, "_metric_fn_list", {}) or {}) == {"bypass"}


def running_cli() -> bool:
    """Whether this runs under the ``lm_eval`` command (its ``Run._execute``)."""
    return _frame_local("_execute", "args", "lm_eval._cli.run")[0]


def cli_config() -> Any:
    """The ``lm_eval`` CLI's parsed options while it resolves the tasks (before the model loads), else None."""
    cfg = _frame_local("process_tasks", "self", "lm_eval.config.evaluate_config")[1]
    return cfg if cfg is not None and hasattr(cfg, "predict_only") else None


def indexed_task_names(manager: Any) -> list[str]:
    """Every task and group name a ``TaskManager`` has indexed."""
    return list(getattr(manager, "all_tasks", None) or [])


def task_metadata(task: Any) -> dict:
    return dict(getattr(getattr(task, "config", None), "metadata", None) or {})


def set_task_metadata(task: Any, metadata: dict) -> None:
    """What lands in the results JSON under ``configs.<task>.metadata``."""
    task.config.metadata = metadata


def task_instances(task: Any) -> list:
    """The task's requests on this rank, in the order its filters receive their responses."""
    return list(task._instances or [])


def generation_kwargs(task: Any) -> dict:
    """The task's generation settings after ``--gen_kwargs`` (lm-eval updates the config in place)."""
    return copy.deepcopy(dict(task.config.generation_kwargs or {}))


def generate_request(doc: dict, context: Any, gen_kwargs: dict, task_name: str, doc_id: int, idx: int = 0) -> Any:
    """A ``generate_until`` request in lm-eval's own form, as ``Task.construct_requests`` makes them."""
    from lm_eval.api.instance import Instance

    return Instance("generate_until", doc, (context, copy.deepcopy(gen_kwargs)), idx, (task_name, doc_id, 1))


def gather_to_rank0(lm: Any, obj: Any) -> list | None:
    """Every rank's ``obj`` on rank 0 (None on the others); ``[obj]`` with one process.

    Must be called by all ranks (each rank runs every task's filters, in the same order)."""
    if getattr(lm, "world_size", 1) <= 1:
        return [obj]
    return lm.gather_object(obj, dst=0)


def rank(lm: Any) -> int:
    return int(getattr(lm, "rank", 0) or 0)
