"""The pipeline's configuration: one YAML file, ``key=value`` overrides (dotted for sections),
``${ENV_VAR}`` expansion in strings. Every error names the field (``eval.limit: ...``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillmix_tasks.dataclass_config import ConfigError, apply_overrides, build, read_yaml
from skillmix_tasks.protocol import PROTOCOLS, SPLITS

from skillmix.grading.specs import JudgeConfigError, parse_spec

CONFIG_DIR = Path(__file__).parent / "configs"
STAGES = ("datagen", "train", "eval", "leaderboard")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SHELL = {"split": "shell"}  # a string given for this list is a command line: "accelerate launch --num_processes 4"


class PipelineConfigError(ConfigError):
    """A configuration value that cannot be used; the message starts with the field name."""


@dataclass
class Student:
    name: str  # short label: output folders are <name>-<mixture>
    model: str  # HF checkpoint folder or hub id


@dataclass
class DatagenSection:
    teacher: str | None = None  # teacher spec (openai:<model>, anthropic:<model>, hf:<dir>, ...)
    judge: str | None = None  # grader of the teacher's texts (default: eval.judge)
    k: list[int] = field(default_factory=lambda: [1, 2, 3])
    # The paper's 5,000 / 10,000 / 10,000; k=1 has 4,906 combinations once the eval items are left out.
    pool: list[int] = field(default_factory=lambda: [4906, 10000, 10000])
    args: list[str] = field(default_factory=list, metadata=SHELL)  # extra skillmix-datagen flags


@dataclass
class TrainSection:
    config: str = "paper"  # skillmix-train YAML: a path, or the name of a bundled one
    mixtures: dict[str, list[int]] = field(default_factory=lambda: {"d1": [1], "d12": [1, 2], "d123": [1, 2, 3]})
    overrides: list[str] = field(default_factory=list, metadata=SHELL)  # skillmix-train key=value overrides
    launcher: list[str] = field(default_factory=list, metadata=SHELL)  # e.g. [accelerate, launch, --config_file, multi_gpu.yaml]


@dataclass
class EvalSection:
    judge: str | None = None  # default: $SKILLMIX_JUDGE
    judge_config: dict[str, Any] = field(default_factory=dict)  # judge settings (n_gradings, max_tokens, ...)
    splits: list[str] = field(default_factory=lambda: ["train", "heldout"])
    k: list[int] = field(default_factory=lambda: [2, 3, 4, 5])
    protocols: list[str] = field(default_factory=lambda: ["two-turn"])
    model: str = "hf"  # lm-eval model type (hf, vllm, ...)
    model_args: str = ""  # appended to pretrained=<checkpoint>, e.g. dtype=bfloat16
    batch_size: str | None = None
    device: str | None = None
    limit: int | None = None  # items per task (a prefix of the 100); None: all
    gen_kwargs: str | None = None
    args: list[str] = field(default_factory=list, metadata=SHELL)  # extra lm_eval flags


@dataclass
class PipelineConfig:
    out: str = "runs/pipeline"  # every stage writes under here; a re-run skips what is done
    students: list[Student] = field(default_factory=list)
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    cache: str | None = None  # judge/teacher SQLite cache (default <out>/cache.sqlite)
    # Teacher and judges through the providers' Batch APIs (half price; datagen --batch, the eval judge's
    # batch: true, whose lm-eval filter then waits for its batches).
    batch: bool = False
    datagen: DatagenSection = field(default_factory=DatagenSection)
    train: TrainSection = field(default_factory=TrainSection)
    eval: EvalSection = field(default_factory=EvalSection)
    leaderboard_note: str | None = None  # a line shown above the leaderboard

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None) -> "PipelineConfig":
        path = resolve_config_path(path)
        values = apply_overrides(read_yaml(path, PipelineConfigError), overrides, PipelineConfigError)
        try:
            return build(cls, _expand(values, ""), error=PipelineConfigError).validate()
        except PipelineConfigError as e:
            raise PipelineConfigError(f"{path}: {e}") from None

    def validate(self) -> "PipelineConfig":
        bad = [s for s in self.stages if s not in STAGES]
        if bad:
            raise PipelineConfigError(f"stages: unknown {bad} (known: {', '.join(STAGES)})")
        if ("train" in self.stages or "eval" in self.stages) and not self.students:
            raise PipelineConfigError("students: required, a list of {name, model}")
        names = [s.name for s in self.students]
        if len(set(names)) != len(names):
            raise PipelineConfigError(f"students: names must be distinct, got {names}")
        for i, s in enumerate(self.students):
            if not re.fullmatch(r"[A-Za-z0-9._-]+", s.name):
                raise PipelineConfigError(f"students[{i}].name: letters, digits, '.', '_' or '-' only, got {s.name!r}")
        d = self.datagen
        if "datagen" in self.stages:
            if not d.teacher:
                raise PipelineConfigError("datagen.teacher: required when the datagen stage runs")
            if len(d.pool) not in (1, len(d.k)):
                raise PipelineConfigError(f"datagen.pool: {len(d.pool)} sizes for {len(d.k)} k values {d.k}")
        for name, ks in self.train.mixtures.items():
            if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
                raise PipelineConfigError(f"train.mixtures.{name}: a mixture name is letters, digits, '.', '_', '-'")
            missing = sorted(set(ks) - set(d.k))
            if "train" in self.stages and missing:
                raise PipelineConfigError(f"train.mixtures.{name}: k={missing} is not generated (datagen.k is {d.k})")
        for field_name, spec in (("datagen.teacher", d.teacher), ("datagen.judge", d.judge), ("eval.judge", self.eval.judge)):
            if spec:
                try:  # the form only (no key, no network): a typo fails here, not after a stage
                    parse_spec(spec)
                except JudgeConfigError as e:
                    raise PipelineConfigError(f"{field_name}: {e}") from None
        e = self.eval
        for field_name, values, known in (("eval.splits", e.splits, SPLITS), ("eval.protocols", e.protocols, PROTOCOLS)):
            bad = [v for v in values if v not in known]
            if bad:
                raise PipelineConfigError(f"{field_name}: unknown {bad} (known: {', '.join(known)})")
        if any(k < 1 for k in e.k):
            raise PipelineConfigError(f"eval.k: positive integers, got {e.k}")
        if e.limit is not None and e.limit < 1:
            raise PipelineConfigError(f"eval.limit: must be >= 1, got {e.limit}")
        return self

    # ------------------------------------------------------------------ derived paths
    @property
    def root(self) -> Path:
        return Path(self.out)

    @property
    def cache_path(self) -> str:
        return self.cache or str(self.root / "cache.sqlite")

    @property
    def eval_judge(self) -> str | None:
        return self.eval.judge or os.environ.get("SKILLMIX_JUDGE")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_config_path(path: str | Path, bundled_dir: Path = CONFIG_DIR, field: str = "") -> Path:
    """A file path, or the name of a YAML file bundled in ``bundled_dir`` (``paper``, ``tiny``, ...)."""
    p = Path(path)
    if p.is_file():
        return p
    bundled = bundled_dir / (p.name if p.suffix in (".yaml", ".yml") else f"{p.name}.yaml")
    if bundled.is_file() and (len(p.parts) == 1 or p.parent.name == "configs"):
        return bundled
    known = ", ".join(sorted(f.stem for f in bundled_dir.glob("*.yaml")))
    raise PipelineConfigError(f"{field}{path}: no such config file (bundled configs: {known})")


def _expand(value: Any, where: str) -> Any:
    """``${VAR}`` in strings from the environment; an unset variable is an error naming the field."""
    if isinstance(value, str):
        def sub(m: re.Match) -> str:
            if m.group(1) not in os.environ:
                raise PipelineConfigError(f"{where}: environment variable {m.group(1)} is not set")
            return os.environ[m.group(1)]
        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value
