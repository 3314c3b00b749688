"""The protocol constants are defined once (skillmix_tasks.protocol); copies that cannot import them
(the lm-eval task template) must agree with them."""

import ast
from pathlib import Path

import yaml

import skillmix_tasks
from skillmix_tasks import protocol

ROOT = Path(skillmix_tasks.__file__).resolve().parents[1]


def _template() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    return yaml.load((ROOT / "harness" / "tasks" / "_default_template_yaml").read_text(), Loader=Loader)


def test_the_task_template_uses_the_protocol_generation_settings():
    t = _template()
    assert t["generation_kwargs"]["temperature"] == protocol.GENERATION_TEMPERATURE
    assert t["generation_kwargs"]["max_gen_toks"] == protocol.GENERATION_MAX_TOKENS
    assert t["repeats"] == protocol.GENERATIONS_PER_ITEM
    assert [m["metric"] for m in t["metric_list"] if m["metric"] in protocol.METRICS] == list(protocol.METRICS)


def test_every_task_yaml_is_a_protocol_split_and_k():
    names = {p.stem for p in (ROOT / "harness" / "tasks").glob("skillmix_*_k*.yaml")}
    two_turn = {f"skillmix_{s}_k{k}" for s in protocol.SPLITS for k in protocol.K_RANGE}
    assert names == two_turn | {f"{t}_single" for t in two_turn}  # the one-prompt variant of each


def test_defaults_elsewhere_are_the_protocol_constants():
    from skillmix.grading.specs import JudgeSettings
    from skillmix.leaderboard import results
    from skillmix import datagen
    from skillmix_tasks import catalog, sampling, scoring

    assert catalog.SPLITS is protocol.SPLITS and results.SPLITS is protocol.SPLITS
    assert scoring.METRICS is protocol.METRICS and results.METRICS is protocol.METRICS
    assert (sampling.DEFAULT_N, sampling.DEFAULT_SEED, sampling.MAX_K) == (protocol.DEFAULT_N, protocol.DEFAULT_SEED,
                                                                          protocol.MAX_K)
    assert (datagen.TEACHER_TEMPERATURE, datagen.TEACHER_MAX_TOKENS) == (protocol.GENERATION_TEMPERATURE,
                                                                         protocol.GENERATION_MAX_TOKENS)
    assert JudgeSettings().n_gradings == protocol.N_GRADINGS


# Literal copies of a protocol constant in the source are what this module exists to prevent.
_COPIES = {("full_marks", "all_skills", "skills_fraction"), ("train", "heldout", "all")}


def test_no_module_spells_out_the_splits_or_metrics_again():
    offenders = []
    for folder in ("skillmix_tasks", "grading", "datagen", "training", "leaderboard", "pipeline"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "protocol.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Tuple) and all(isinstance(e, ast.Constant) for e in node.elts):
                    if tuple(e.value for e in node.elts) in _COPIES:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
