"""The model to train: attention kernel choice, Liger kernels, LoRA adapters (peft), and the merged
weights a LoRA checkpoint is saved as (so `lm_eval --model hf` loads it like any checkpoint).

Attention with packing (``choose_attention``; the choice is logged and kept in the provenance):

- ``flash_attention_2`` / ``flash_attention_3`` (``auto`` on a CUDA GPU with flash-attn installed, in bf16): the
  collator flattens each micro-batch into one row without padding and the kernel runs varlen from
  the position ids that restart per example (transformers only reads packed position ids at batch 1,
  as its ``DataCollatorWithFlattening`` produces); no mask is built. Unpacked runs get the same
  padding-free layout (one example per row before flattening), so the paper's batch is unchanged.
- ``sdpa`` / ``eager`` / ``flex_attention``: transformers derives a block-diagonal causal mask from the
  restarting position ids; sdpa then runs its masked kernel (memory-efficient or math), not flash.
- ``packing_attention=block_mask``: the collator builds the 4D mask itself (fallback for model code
  that does not read packed position ids).
"""

from __future__ import annotations

import logging
import os
import torch

from .config import ConfigError, TrainConfig

log = logging.getLogger("skillmix.training")
VARLEN = ("flash_attention_2", "flash_attention_3")


def choose_attention(config: TrainConfig) -> tuple[str | None, bool, str]:
    """(attn_implementation for from_pretrained, flatten micro-batches into one row?, why), logged."""
    impl = config.attn_implementation
    if impl == "auto":
        from transformers.utils import is_flash_attn_2_available

        # flash kernels take 16-bit activations only: bf16 here, or mixed precision from `accelerate launch`
        half = config.bf16 or os.environ.get("ACCELERATE_MIXED_PRECISION") in ("bf16", "fp16")
        impl = "flash_attention_2" if half and torch.cuda.is_available() and is_flash_attn_2_available() else "sdpa"
    if impl in VARLEN and config.packing_attention != "block_mask":
        rows = "packed rows" if config.packing else "one example per row (unpacked)"
        return impl, True, (f"{impl} varlen: {rows}, each micro-batch flattened into one row, position ids "
                            "restart per example, no mask and no padding")
    if not config.packing:
        return impl, False, f"{impl}: one example per row, rows padded to the longest (causal kernel)"
    if config.packing_attention == "block_mask":
        return impl, False, f"{impl}: packed rows with a 4D block-diagonal mask built by the collator (fallback)"
    hint = "" if impl == "flex_attention" else \
        " (not the flash kernel: on a GPU install flash-attn for attn_implementation=flash_attention_2)"
    return impl, False, f"{impl}: packed rows, block-diagonal mask derived from the restarting position ids{hint}"


LIGER_MISSING = ("liger: true needs the liger-kernel package (pip install liger-kernel) and a CUDA GPU; "
                 "set liger=false to train without it")


def check_liger(config: TrainConfig) -> None:
    """Fail before anything loads when ``liger: true`` cannot be honoured."""
    import importlib.util

    if config.liger and importlib.util.find_spec("liger_kernel") is None:
        raise ConfigError(LIGER_MISSING)
    if config.liger and not torch.cuda.is_available():
        raise ConfigError("liger: true needs a CUDA GPU (Liger's kernels are Triton); set liger=false on CPU")


def apply_liger(model) -> None:
    """Liger's fused RMSNorm, RoPE, SwiGLU and linear cross-entropy, patched into this model instance."""
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(model=model)


def load_model(config: TrainConfig, attn_implementation: str | None):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(config.model, dtype=torch.float32,
                                                 attn_implementation=attn_implementation)
    model.config.use_cache = False
    if config.liger:
        apply_liger(model)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if config.lora is not None:
        model = add_lora(model, config)
    return model


def add_lora(model, config: TrainConfig):
    from peft import LoraConfig, get_peft_model

    lora = config.lora
    targets = lora.target_modules
    peft_config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, task_type="CAUSAL_LM",
                             target_modules="all-linear" if targets == ["all-linear"] else list(targets))
    try:
        model = get_peft_model(model, peft_config)
    except ValueError as e:  # e.g. a target module name the model does not have
        raise ConfigError(f"lora.target_modules: {e}") from None
    if config.gradient_checkpointing:
        model.enable_input_require_grads()
    trainable, total = model.get_nb_trainable_parameters()
    log.info("LoRA r=%d alpha=%g on %s: %d of %d parameters trainable (%.2f%%)", lora.r, lora.alpha,
             ",".join(targets), trainable, total, 100 * trainable / total)
    return model


def is_lora(model) -> bool:
    return hasattr(model, "peft_config")


def merged_state_dict(state_dict: dict[str, torch.Tensor], scaling: float) -> dict[str, torch.Tensor]:
    """A peft LoRA model's full state dict (as gathered by ``accelerator.get_state_dict``) as the base
    model's state dict with W + scaling * B @ A in every adapted linear layer; the training weights are
    not touched (no merge/unmerge round trip that would change them)."""
    prefix = "base_model.model."
    adapters: dict[tuple[str, str], torch.Tensor] = {}  # (layer stem, "A" | "B") -> weight
    for key, tensor in state_dict.items():
        if ".lora_A." in key or ".lora_B." in key:
            stem, rest = key.split(".lora_", 1)
            adapters[stem, rest[0]] = tensor
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        if ".lora_" in key:
            continue
        name = key[len(prefix):] if key.startswith(prefix) else key
        if ".base_layer." in key:
            stem = key.rsplit(".base_layer.", 1)[0]
            name = name.replace(".base_layer.", ".")
            if name.endswith(".weight") and (stem, "A") in adapters:
                a, b = adapters[stem, "A"].float(), adapters[stem, "B"].float()
                tensor = (tensor.float() + scaling * (b @ a)).to(tensor.dtype)
        out[name] = tensor
    return out


def trainable_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
