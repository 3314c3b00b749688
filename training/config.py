"""Training configuration: one dataclass, loaded from YAML, overridden by ``key=value``.

``TrainConfig.from_sources("paper.yaml", ["model=/ckpt", "max_steps=10", "lora.r=8"])`` is what the CLI
does, through the project's one config loader (``skillmix_tasks.dataclass_config``). Every check raises
:class:`ConfigError` naming the offending field (or file:line), before any model is loaded.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillmix_tasks import dataclass_config


class ConfigError(dataclass_config.ConfigError):
    """A configuration value that cannot be used; the message starts with the field name."""


@dataclass
class LoraSection:
    """LoRA adapters through peft (``lora: {r: 16}``, ``lora=true`` for these defaults)."""

    r: int = 16
    alpha: float = 32.0  # scaling = alpha / r
    dropout: float = 0.05
    # module names (or suffixes) to adapt; "all-linear": every linear layer but the output head
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])


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
    # a conversation with no answer token left within max_length is dropped; stop before training when a data
    # file, or one k within it, loses more than this share of its conversations (1.0: never stop)
    max_dropped_share: float = 0.05
    # hardware switches
    bf16: bool = False
    gradient_checkpointing: bool = False
    # auto: flash_attention_2 on a CUDA GPU with flash-attn installed in bf16 (varlen, padding-free), else sdpa; or
    # sdpa | eager | flash_attention_2 | flash_attention_3 | flex_attention | None (the model's default)
    attn_implementation: str | None = "auto"
    liger: bool = False  # Liger fused kernels (RMSNorm, RoPE, SwiGLU, fused linear cross-entropy); GPU, pip install liger-kernel
    # parameter-efficient fine-tuning (off: full fine-tuning, as in the paper)
    lora: LoraSection | None = None
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
        values = dataclass_config.read_yaml(path, ConfigError) if path is not None else {}
        return cls.from_dict(dataclass_config.apply_overrides(values, overrides, ConfigError))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        return dataclass_config.build(cls, values, error=ConfigError)

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
        if not 0.0 <= self.max_dropped_share <= 1.0:
            raise ConfigError(f"max_dropped_share: must be in [0, 1] (a share of each data file's conversations; "
                              f"1.0 disables the check), got {self.max_dropped_share}")
        if self.optimizer not in ("adam", "adamw"):
            raise ConfigError(f"optimizer: adam or adamw, got {self.optimizer!r}")
        if self.packing_attention not in ("position_ids", "block_mask"):
            raise ConfigError(f"packing_attention: position_ids or block_mask, got {self.packing_attention!r}")
        if self.packing_attention == "block_mask" and self.attn_implementation in ("flash_attention_2", "flash_attention_3"):
            raise ConfigError("packing_attention: block_mask needs attn_implementation sdpa or eager "
                              "(flash_attention_2 isolates packed examples from position_ids already)")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be in [0, 1), got {getattr(self, name)}")
        if self.adam_epsilon <= 0:
            raise ConfigError(f"adam_epsilon: must be > 0, got {self.adam_epsilon}")
        if self.gpu_peak_tflops is not None and self.gpu_peak_tflops <= 0:
            raise ConfigError(f"gpu_peak_tflops: must be > 0, got {self.gpu_peak_tflops}")
        from transformers.trainer_utils import SchedulerType

        if self.lr_scheduler not in {s.value for s in SchedulerType}:
            raise ConfigError(f"lr_scheduler: unknown {self.lr_scheduler!r} "
                              f"(known: {', '.join(s.value for s in SchedulerType)})")
        if self.lora is not None:
            if self.lora.r < 1:
                raise ConfigError(f"lora.r: must be >= 1, got {self.lora.r}")
            if self.lora.alpha <= 0:
                raise ConfigError(f"lora.alpha: must be > 0, got {self.lora.alpha}")
            if not 0 <= self.lora.dropout < 1:
                raise ConfigError(f"lora.dropout: must be in [0, 1), got {self.lora.dropout}")
            if not self.lora.target_modules:
                raise ConfigError("lora.target_modules: at least one module name (or all-linear)")
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
