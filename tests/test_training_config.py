"""Config: YAML + key=value overrides, batch solving, errors that name the field."""

from pathlib import Path

import pytest

from skillmix.training.config import ConfigError, TrainConfig

PAPER = Path(__file__).resolve().parents[1] / "training" / "configs" / "paper.yaml"


def cfg(**kw):
    return TrainConfig.from_dict({"model": "m", "data": ["d.jsonl"], **kw})


def test_paper_config_is_the_published_recipe():
    c = TrainConfig.from_sources(PAPER, ["model=/ckpt"])
    assert (c.max_steps, c.global_batch_size, c.learning_rate, c.warmup_steps, c.max_length) == (4000, 64, 2e-5, 64, 1024)
    assert c.optimizer == "adam" and c.lr_scheduler == "constant_with_warmup"
    assert [Path(d).name for d in c.data] == [f"d_skillmix_k{k}.jsonl" for k in (1, 2, 3)]
    c.validate(world_size=4)
    assert c.micro_batch_size * c.gradient_accumulation_steps * 4 == 64


def test_overrides_are_yaml_typed():
    c = TrainConfig.from_sources(PAPER, ["model=/x", "max_steps=10", "bf16=false", "data=[a.jsonl,b.jsonl]",
                                         "learning_rate=1e-4", "pretrain_data=corpus.txt", "pretrain_ratio=0.25"])
    assert (c.max_steps, c.bf16, c.data, c.learning_rate, c.pretrain_ratio) == (10, False, ["a.jsonl", "b.jsonl"], 1e-4, 0.25)
    assert TrainConfig.from_sources(None, ["model=m", "data=a.jsonl,b.jsonl"]).data == ["a.jsonl", "b.jsonl"]


@pytest.mark.parametrize("kw, world, micro, accum", [
    ({}, 1, 8, 8), ({}, 4, 8, 2), ({}, 8, 8, 1), ({"micro_batch_size": 4}, 4, 4, 4),
    ({"gradient_accumulation_steps": 16}, 1, 4, 16), ({"micro_batch_size": 2, "gradient_accumulation_steps": 8}, 4, 2, 8),
    ({"global_batch_size": 12, "max_micro_batch_size": 5}, 1, 4, 3),
])
def test_batch_solving(kw, world, micro, accum):
    c = cfg(**kw).validate(world)
    assert (c.micro_batch_size, c.gradient_accumulation_steps) == (micro, accum)
    assert c.micro_batch_size * c.gradient_accumulation_steps * world == c.global_batch_size


@pytest.mark.parametrize("kw, world, field", [
    ({"micro_batch_size": 3}, 1, "micro_batch_size"),
    ({"micro_batch_size": 4, "gradient_accumulation_steps": 4}, 1, "micro_batch_size"),
    ({"gradient_accumulation_steps": 5}, 1, "gradient_accumulation_steps"),
    ({}, 3, "global_batch_size"),
    ({"model": None}, 1, "model"),
    ({"data": []}, 1, "data"),
    ({"pretrain_ratio": 0.2}, 1, "pretrain_data"),
    ({"pretrain_ratio": 1.0, "pretrain_data": "x"}, 1, "pretrain_ratio"),
    ({"packing_attention": "magic"}, 1, "packing_attention"),
    ({"max_steps": 0}, 1, "max_steps"),
])
def test_impossible_configs_name_the_field(kw, world, field):
    with pytest.raises(ConfigError, match=rf"^{field}:"):
        cfg(**kw).validate(world)


def test_unknown_or_mistyped_fields():
    with pytest.raises(ConfigError, match="^max_stpes: unknown field"):
        TrainConfig.from_sources(None, ["max_stpes=3"])
    with pytest.raises(ConfigError, match="^max_steps: expected int"):
        TrainConfig.from_sources(None, ["max_steps=ten"])
    with pytest.raises(ConfigError, match="^bf16: expected bool"):
        TrainConfig.from_sources(None, ["bf16=maybe"])


def test_cli_reports_config_errors(capsys):
    from skillmix.training.__main__ import main

    assert main(["--config", str(PAPER), "micro_batch_size=7", "model=m"]) == 2
    assert "micro_batch_size:" in capsys.readouterr().err
    assert main(["--config", str(PAPER), "model=m", "--print-config"]) == 0
    assert '"gradient_accumulation_steps": 8' in capsys.readouterr().out
