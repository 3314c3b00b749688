"""Training configuration: one dataclass, loaded from YAML, overridden by ``key=value``.

``TrainConfig.from_sources("paper.yaml", ["model=/ckpt", "max_steps=10"])`` is what the CLI does.
Every check raises :class:`ConfigError` naming the offending field, before any model is loaded.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message starts with the field name."""


@dataclass
class TrainConfig:
    # what to train, on what
    model: str | None = None  # HF checkpoint dir or hub id (required)
    data: list[str] = field(default_factory=list)  # chat JSONL files/globs, rows with "messages"
    output_dir: str = "runs/train"
    # pre-training corpus mixed in with an unmasked LM loss (paper: corpus and ratio unpublished)
    pretrain_data: str | None = None  # .txt/.jsonl file, folder saved by datasets, or hub dataset name
    pretrain_ratio: float = 0.0  # fraction of all trained-on tokens that come from pretrain_data
    pretrain_text_field: str = "text"
    pretrain_split: str = "train"
    # optimisation (paper: Adam, 64 linear warm-up steps then constant 2e-5, 4000 steps, batch 64)
    max_steps: int = 4000
    global_batch_size: int = 64  # sequences per optimizer step, over all processes
    micro_batch_size: int | None = None  # per process; solved from the others when None
    gradient_accumulation_steps: int | None = None  # solved when None
    max_micro_batch_size: int = 8  # upper bound used when micro_batch_size is solved
    optimizer: str = "adam"  # adam | adamw
    learning_rate: float = 2e-5
    lr_scheduler: str = "constant_with_warmup"  # any transformers.get_scheduler name
    warmup_steps: int = 64
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0  # 0 disables clipping (the norm is still logged)
    seed: int = 42
    # sequences
    max_length: int = 1024
    packing: bool = False  # pack several examples per sequence (no cross-example attention)
    packing_attention: str = "position_ids"  # position_ids | block_mask (see README: fallback)
    train_on_eos: bool = True  # also learn the end-of-turn token after each assistant answer
    # hardware switches
    bf16: bool = False
    gradient_checkpointing: bool = False
    attn_implementation: str | None = "sdpa"  # sdpa | eager | flash_attention_2 | None (model default)
    # checkpoints and logging
    save_steps: int = 500  # 0: only at the end
    save_state: bool = True  # accelerator.save_state next to each checkpoint, for exact resume
    keep_last_states: int = 2  # older accelerate states are deleted (model weights are kept); 0 keeps all
    resume: str = "auto"  # auto (latest state in output_dir) | never | path to a step folder
    max_steps_this_run: int | None = None  # stop (and save) after this many steps in this process
    logging_steps: int = 1
    report_to: str = "auto"  # auto (tensorboard/wandb when installed) | none | comma list
    run_name: str = "skillmix"
    gpu_peak_tflops: float | None = None  # for MFU; guessed from the GPU name when None
    num_workers: int = 0

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_sources(cls, path: str | Path | None = None, overrides: list[str] | None = None) -> "TrainConfig":
        values: dict[str, Any] = {}
        if path is not None:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"{path}: expected a mapping of field: value")
            values.update(loaded)
        for item in overrides or []:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ConfigError(f"{item!r}: overrides are key=value")
            values[key.strip().replace("-", "_")] = yaml.safe_load(raw) if raw != "" else None
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        hints = get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in names:
                raise ConfigError(f"{key}: unknown field (known: {', '.join(sorted(names))})")
            kwargs[key] = _coerce(key, value, hints[key])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    # ------------------------------------------------------------------ checks
    def validate(self, world_size: int = 1) -> "TrainConfig":
        """Check every field and solve the batch split for ``world_size`` processes (in place)."""
        if not self.model:
            raise ConfigError("model: required (a checkpoint folder or hub id), e.g. model=/path/to/ckpt")
        if not self.data:
            raise ConfigError("data: required (chat JSONL files), e.g. data=[a.jsonl,b.jsonl]")
        for name in ("max_steps", "global_batch_size", "max_length", "max_micro_batch_size", "logging_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "save_steps", "keep_last_states", "weight_decay", "max_grad_norm"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate: must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.pretrain_ratio < 1.0:
            raise ConfigError(f"pretrain_ratio: must be in [0, 1), got {self.pretrain_ratio}")
        if self.pretrain_ratio > 0 and not self.pretrain_data:
            raise ConfigError("pretrain_data: required when pretrain_ratio > 0")
        if self.optimizer not in ("adam", "adamw"):
            raise ConfigError(f"optimizer: adam or adamw, got {self.optimizer!r}")
        if self.packing_attention not in ("position_ids", "block_mask"):
            raise ConfigError(f"packing_attention: position_ids or block_mask, got {self.packing_attention!r}")
        if self.packing_attention == "block_mask" and self.attn_implementation == "flash_attention_2":
            raise ConfigError("packing_attention: block_mask needs attn_implementation sdpa or eager "
                              "(flash_attention_2 isolates packed examples from position_ids already)")
        if self.max_steps_this_run is not None and self.max_steps_this_run < 1:
            raise ConfigError(f"max_steps_this_run: must be >= 1, got {self.max_steps_this_run}")
        self.solve_batch(world_size)
        return self

    def solve_batch(self, world_size: int = 1) -> tuple[int, int]:
        """global = micro x accumulation x world; fill in whichever of micro/accumulation is None."""
        g, micro, accum = self.global_batch_size, self.micro_batch_size, self.gradient_accumulation_steps
        where = f"global_batch_size={g} with {world_size} process(es)"
        if g % world_size:
            raise ConfigError(f"global_batch_size: {where}: not divisible by the number of processes")
        per_process = g // world_size
        if micro is not None and micro < 1:
            raise ConfigError(f"micro_batch_size: must be >= 1, got {micro}")
        if accum is not None and accum < 1:
            raise ConfigError(f"gradient_accumulation_steps: must be >= 1, got {accum}")
        if micro is not None and accum is not None:
            if micro * accum != per_process:
                raise ConfigError(f"micro_batch_size: {micro} x gradient_accumulation_steps {accum} x "
                                  f"{world_size} process(es) = {micro * accum * world_size} != {where}")
        elif micro is not None:
            if per_process % micro:
                raise ConfigError(f"micro_batch_size: {micro} does not divide {per_process} "
                                  f"(= {where} per process); choose a divisor or set gradient_accumulation_steps")
            accum = per_process // micro
        elif accum is not None:
            if per_process % accum:
                raise ConfigError(f"gradient_accumulation_steps: {accum} does not divide {per_process} "
                                  f"(= {where} per process)")
            micro = per_process // accum
        else:
            micro = max(d for d in range(1, min(per_process, self.max_micro_batch_size) + 1) if per_process % d == 0)
            accum = per_process // micro
        self.micro_batch_size, self.gradient_accumulation_steps = micro, accum
        return micro, accum


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Coerce a YAML/override value to the field's type, or raise a ConfigError naming the field."""
    args = [a for a in get_args(hint) if a is not type(None)]
    if value is None:
        if type(None) in get_args(hint):
            return None
        raise ConfigError(f"{key}: may not be null")
    base = args[0] if get_origin(hint) is not list and args else hint
    if get_origin(hint) is list or hint is list:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [str(v) for v in value]
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base is int:
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if base is float:
            return float(value)
        if base is str:
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {getattr(base, '__name__', base)}, got {value!r}") from None
    return value
