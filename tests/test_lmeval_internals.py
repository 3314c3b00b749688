"""What skillmix.harness.lmeval_internals reads from lm-eval is still there.

Each check names the lm-eval function or attribute the two-turn protocol relies on; a failure
here means lm-eval changed and harness/lmeval_internals.py must follow (the tasks would
otherwise fail or, worse, skip turn 2)."""

import inspect

import lm_eval
import lm_eval.evaluator as evaluator
from lm_eval.api.filter import FilterEnsemble
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM, CachingLM
from lm_eval.api.task import ConfigurableTask, Task
from lm_eval.config.evaluate_config import EvaluatorConfig
from lm_eval.filters.custom import CustomFilter

from skillmix.harness import lmeval_internals as internals


def _code(fn):
    return inspect.unwrap(fn).__code__


def test_the_installed_lm_eval_is_a_supported_version():
    assert internals.SUPPORTED[0] <= internals._version(lm_eval.__version__) < internals.SUPPORTED[1]


def test_evaluate_generates_everything_then_filters_with_lm_in_scope():
    code = _code(evaluator.evaluate)
    assert code.co_name == "evaluate" and inspect.unwrap(evaluator.evaluate).__module__ == "lm_eval.evaluator"
    assert {"lm", "system_instruction", "apply_chat_template"} <= set(code.co_varnames)
    src = inspect.getsource(inspect.unwrap(evaluator.evaluate))
    # generation of every request, then the filters, in the same function
    assert src.index("getattr(lm, reqtype)(cloned_reqs)") < src.index("task.apply_filters()")


def test_simple_evaluate_builds_tasks_after_the_model_with_the_run_options_as_locals():
    code = _code(evaluator.simple_evaluate)
    assert code.co_name == "simple_evaluate"
    assert {"lm", "predict_only", "apply_chat_template", "gen_kwargs"} <= set(code.co_varnames)
    src = inspect.getsource(inspect.unwrap(evaluator.simple_evaluate))
    assert src.index("create_from_arg_string") < src.index("task_manager.load(tasks)")
    assert 'override_metric(metric_name="bypass")' in src
    assert 'set_config(\n                    key="generation_kwargs", value=gen_kwargs, update=True' in src


def test_filters_run_in_task_apply_filters_over_the_task_instances():
    for cls in (Task, ConfigurableTask):
        assert "self" in cls.apply_filters.__code__.co_varnames
        assert "self._instances" in inspect.getsource(cls.apply_filters)
    assert inspect.getmodule(ConfigurableTask.apply_filters).__name__ == "lm_eval.api.task"
    assert "zip(*((inst.resps, inst.doc) for inst in instances))" in inspect.getsource(FilterEnsemble.apply)
    assert "self.filter_fn(resps, docs)" in inspect.getsource(CustomFilter.apply)
    assert "deepcopy(self.config.generation_kwargs)" in inspect.getsource(ConfigurableTask.construct_requests)


def test_the_cli_resolves_tasks_in_evaluator_config_before_simple_evaluate():
    from lm_eval._cli.run import Run

    src = inspect.getsource(Run._execute)
    assert Run._execute.__code__.co_name == "_execute" and "args" in Run._execute.__code__.co_varnames
    assert src.index("cfg.process_tasks(") < src.index("simple_evaluate(")
    assert "TaskManager(" in inspect.getsource(EvaluatorConfig.process_tasks)
    fields = set(EvaluatorConfig.__dataclass_fields__)
    assert {"tasks", "predict_only", "apply_chat_template", "metadata"} <= fields


def test_models_and_requests_have_what_turn_2_uses():
    inst = internals.generate_request({"id": "x"}, "ctx", {"max_gen_toks": 4}, "skillmix_heldout_k3", 7, 2)
    assert isinstance(inst, Instance) and inst.args == ("ctx", {"max_gen_toks": 4})
    assert (inst.task_name, inst.doc_id, inst.repeats, inst.idx) == ("skillmix_heldout_k3", 7, 1, 2)
    for name in ("apply_chat_template", "generate_until", "rank", "world_size"):
        assert hasattr(LM, name), name
    assert "generate_until" in inspect.getsource(CachingLM.__getattr__)
    from lm_eval.models.huggingface import HFLM

    assert "gather_object" in HFLM.__dict__ and "apply_chat_template" in HFLM.__dict__


def test_lookups_return_nothing_outside_a_run():
    assert internals.running_task() is None and internals.running_lm() is None
    assert internals.predict_only() is False and internals.cli_config() is None and internals.running_cli() is False
    assert internals.run_option("system_instruction") == (False, None)
