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
    with pytest.raises(ConfigError, match="^max_steps: expected an integer"):
        TrainConfig.from_sources(None, ["max_steps=ten"])
    with pytest.raises(ConfigError, match="^bf16: expected a boolean"):
        TrainConfig.from_sources(None, ["bf16=maybe"])


def test_cli_reports_config_errors(capsys):
    from skillmix.training.__main__ import main

    assert main(["--config", str(PAPER), "micro_batch_size=7", "model=m"]) == 2
    assert "micro_batch_size:" in capsys.readouterr().err
    assert main(["--config", str(PAPER), "model=m", "--print-config"]) == 0
    assert '"gradient_accumulation_steps": 8' in capsys.readouterr().out


@pytest.fixture
def fresh_accelerate_state():
    from accelerate.state import AcceleratorState, GradientState

    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.mark.parametrize("value", ["nan", "inf", "-.inf", ".nan"])
def test_non_finite_numbers_are_refused(value):
    for name in ("learning_rate", "max_grad_norm", "pretrain_ratio", "adam_epsilon"):
        with pytest.raises(ConfigError, match=rf"^{name}: must be a finite number"):
            TrainConfig.from_sources(None, ["model=m", f"{name}={value}"])


def test_lora_section_from_yaml_and_dotted_overrides(tmp_path):
    assert TrainConfig.from_sources(None, ["model=m"]).lora is None  # off by default: the paper recipe
    c = TrainConfig.from_sources(None, ["model=m", "lora=true", "lora.r=4"])
    assert (c.lora.r, c.lora.alpha, c.lora.target_modules) == (4, 32.0, ["all-linear"])
    f = tmp_path / "lora.yaml"
    f.write_text("model: m\nlora:\n  r: 8\n  alpha: 16\n  dropout: 0.0\n  target_modules: [q_proj, v_proj]\n")
    c = TrainConfig.from_sources(f, ["lora.dropout=0.1"])
    assert (c.lora.r, c.lora.alpha, c.lora.dropout, c.lora.target_modules) == (8, 16.0, 0.1, ["q_proj", "v_proj"])
    with pytest.raises(ConfigError, match=r"^lora\.rank: unknown field"):
        TrainConfig.from_sources(f, ["lora.rank=3"])
    with pytest.raises(ConfigError, match=r"^lora\.r: must be >= 1"):
        TrainConfig.from_sources(f, ["lora.r=0", "data=[d]"]).validate()
    with pytest.raises(ConfigError, match=r"^lora\.dropout: must be a finite number"):
        TrainConfig.from_sources(f, ["lora.dropout=nan"])


def write_trained_run(out: Path) -> dict[Path, bytes]:
    """Files a previous run left (a checkpoint and its log): a refused run must leave them as they are."""
    (out / "step-000003" / "accelerate_state").mkdir(parents=True)
    (out / "step-000003" / "accelerate_state" / "trainer_state.json").write_text('{"step": 3}')
    (out / "train_log.jsonl").write_text("".join(f'{{"step": {s}, "loss": 1.0}}\n' for s in (1, 2, 3, 4)))
    return {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", ["missing config", "bad yaml", "missing data", "bad json line", "bad row",
                                  "missing model", "not a checkpoint", "nan", "bad scheduler", "missing resume"])
def test_cli_errors_name_the_file_line_or_field_and_lose_nothing(case, tiny_model, tmp_path, capsys,
                                                                 fresh_accelerate_state):
    from skillmix.training.__main__ import main
    from test_training_data import write_chat_jsonl

    data = write_chat_jsonl(tmp_path / "d.jsonl", 3)
    lines = data.read_text().splitlines()
    out = tmp_path / "run"
    before = write_trained_run(out)
    args, expect = [f"model={tiny_model}", f"data=[{data}]", f"output_dir={out}", "report_to=none"], None
    if case == "missing config":
        args, expect = ["--config", str(tmp_path / "nope.yaml")] + args, f"{tmp_path / 'nope.yaml'}: no such config file"
    elif case == "bad yaml":
        (tmp_path / "bad.yaml").write_text("max_steps: 3\nlearning_rate: [1e-4\nbf16: true\n")
        args, expect = ["--config", str(tmp_path / "bad.yaml")] + args, f"{tmp_path / 'bad.yaml'}:3: not valid YAML"
    elif case == "missing data":
        args[1], expect = f"data=[{data},{tmp_path / 'gone.jsonl'}]", f"data: no file matches '{tmp_path / 'gone.jsonl'}'"
    elif case == "bad json line":
        data.write_text("\n".join(lines[:2] + ["", '{"messages": [ oops'] + lines[2:]) + "\n")
        expect = f"{data}:4: not valid JSON"
    elif case == "bad row":
        data.write_text("\n".join(lines[:1] + ['{"messages": [{"role": "user", "content": 3}]}'] + lines[1:]) + "\n")
        expect = f"{data}:2: expected a 'messages' list"
    elif case == "missing model":
        args[0], expect = f"model={tmp_path / 'no-such-model'}", f"model: no such folder {tmp_path / 'no-such-model'}"
    elif case == "not a checkpoint":
        args[0], expect = f"model={tmp_path}", f"model: {tmp_path} is not a checkpoint folder"
    elif case == "nan":
        args, expect = args + ["learning_rate=nan"], "learning_rate: must be a finite number"
    elif case == "bad scheduler":
        args, expect = args + ["lr_scheduler=cosine_warm"], "lr_scheduler: unknown 'cosine_warm'"
    elif case == "missing resume":
        args, expect = args + [f"resume={tmp_path / 'run' / 'step-000009'}"], "resume:"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expect in err and "Traceback" not in err, err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing trained is lost
