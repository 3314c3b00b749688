"""The training loop: `setup` builds everything, `train` is the loop (one screen, top to bottom).

Loss normalisation: each optimizer step averages the token losses of the whole global batch (all
micro-batches of all processes), not the mean of per-micro-batch means, so short and long answers weigh
what their token counts say, with or without packing and gradient accumulation.
"""

from __future__ import annotations

import json
import logging
import math
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from .checkpoint import StopSignal, git_commit, load_checkpoint_state, resume_from, save_checkpoint
from .config import ConfigError, TrainConfig
from .data import IGNORE, Collator, EpochSampler, build_dataset
from .model import check_liger, choose_attention, load_model, trainable_parameters

log = logging.getLogger("skillmix.training")


@dataclass
class Run:
    accelerator: Any
    model: Any
    tokenizer: Any
    optimizer: Any
    scheduler: Any
    dataloader: Any
    start_step: int
    provenance: dict
    flops_per_token: int


def check_output_dir_of(config: TrainConfig) -> None:
    """Refuse an output_dir that cannot hold checkpoints before the model is loaded: a file, a
    read-only folder, the base model's own folder, or a folder whose train_log.jsonl is a data file."""
    from skillmix_tasks.outputs import OutputPathError, check_output_dir

    try:
        check_output_dir(config.output_dir, files=["train_log.jsonl"], what="output_dir",
                         inputs=[config.model if Path(config.model).exists() else None, *config.data, config.pretrain_data])
    except OutputPathError as e:
        raise ConfigError(str(e)) from None


def setup(config: TrainConfig) -> Run:
    from accelerate import Accelerator
    from accelerate.utils import GradientAccumulationPlugin, set_seed
    from transformers import get_scheduler

    from accelerate import PartialState

    config.validate(PartialState().num_processes)
    check_output_dir_of(config)
    check_liger(config)
    accelerator = Accelerator(
        mixed_precision="bf16" if config.bf16 else None,  # None: whatever `accelerate launch` configured
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=config.gradient_accumulation_steps, sync_with_dataloader=False),
        step_scheduler_with_optimizer=False,  # we step it once per optimizer step, on every process
        log_with=trackers(config.report_to), project_dir=config.output_dir,
    )
    set_seed(config.seed)
    tokenizer = load_tokenizer(config.model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with accelerator.main_process_first():  # the data first: a bad file stops before the model loads
        dataset, stats = build_dataset(config, tokenizer)
    attn_implementation, flatten, attention = choose_attention(config)
    log.info("attention: %s", attention)
    model = load_model(config, attn_implementation)
    mask_dtype = torch.float32 if attn_implementation == "eager" else None
    dataloader = torch.utils.data.DataLoader(
        dataset, batch_size=config.micro_batch_size, sampler=EpochSampler(len(dataset), config.seed),
        num_workers=config.num_workers,
        # each new iterator draws a seed: from its own generator, not the global RNG, so that resuming
        # (a new iterator mid-epoch) leaves the dropout RNG where the uninterrupted run has it
        generator=torch.Generator().manual_seed(config.seed),
        collate_fn=Collator(pad_id, block_mask=config.packing and config.packing_attention == "block_mask",
                            mask_dtype=mask_dtype, flatten=flatten))
    params = [p for p in model.parameters() if p.requires_grad]
    opt_cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(params, lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2),
                        eps=config.adam_epsilon, weight_decay=config.weight_decay)
    scheduler = get_scheduler(config.lr_scheduler, optimizer, num_warmup_steps=config.warmup_steps,
                              num_training_steps=config.max_steps)
    model, optimizer, scheduler, dataloader = accelerator.prepare(model, optimizer, scheduler, dataloader)

    start_step, folder = 0, resume_from(config)
    if folder is not None:
        start_step = load_checkpoint_state(accelerator, folder)
        accelerator.print(f"resumed from {folder} at step {start_step}")
    provenance = {
        "base_model": config.model, "config": config.to_dict(), "data": stats,
        "world_size": accelerator.num_processes, "max_steps": config.max_steps,
        "resumed_from": str(folder) if folder else None, "skillmix_commit": git_commit(),
        "attention": attention, "liger": config.liger,
    }
    if accelerator.is_main_process and log_with_any(accelerator):
        accelerator.init_trackers(config.run_name, config={k: v if isinstance(v, (int, float, str, bool)) else str(v)
                                                           for k, v in config.to_dict().items()})
    unwrapped = accelerator.unwrap_model(model)
    n_params = sum(p.numel() for p in unwrapped.parameters())
    # forward 2N + input gradients 2N + weight gradients 2 x trainable (6N for full fine-tuning)
    flops_per_token = 4 * n_params + 2 * trainable_parameters(unwrapped)
    provenance.update(parameters=n_params, trainable_parameters=trainable_parameters(unwrapped))
    return Run(accelerator, model, tokenizer, optimizer, scheduler, dataloader, start_step,
               provenance, flops_per_token)


def train(config: TrainConfig) -> dict[str, Any]:
    """Train to ``config.max_steps`` (or ``max_steps_this_run`` more steps, or a stop signal)."""
    r = setup(config)
    acc, model, optimizer, scheduler = r.accelerator, r.model, r.optimizer, r.scheduler
    accum = config.gradient_accumulation_steps
    stop_at = min(config.max_steps, r.start_step + (config.max_steps_this_run or config.max_steps))
    batches = micro_batches(r.dataloader, start=r.start_step * accum)
    logger = MetricsLog(config, acc, r.flops_per_token, r.start_step)
    step, losses, saved = r.start_step, [], None
    model.train()
    with StopSignal() as stop, logger.progress(r.start_step) as bar:
        while step < stop_at:
            t0 = time.perf_counter()
            window = [next(batches) for _ in range(accum)]  # one optimizer step's micro-batches
            tokens = torch.stack([b.pop("n_tokens").sum() for b in window]).sum()
            targets = acc.reduce(sum((b["labels"][:, 1:] != IGNORE).sum() for b in window), "sum")
            loss_sum = torch.zeros((), device=acc.device)
            for batch in window:
                with acc.accumulate(model):
                    labels = batch.pop("labels")
                    # no KV cache: with one, transformers ignores the per-example position_ids reset
                    if config.liger:  # fused linear cross-entropy: the mean comes back, logits never exist
                        n = (labels[:, 1:] != IGNORE).sum()
                        loss = model(**batch, labels=labels, use_cache=False).loss * n
                    else:
                        logits = model(**batch, use_cache=False).logits
                        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                               ignore_index=IGNORE, reduction="sum")
                    # accelerate divides by `accum`, DDP averages over processes: undo both, so the
                    # gradient is that of (sum of token losses in the global batch) / (its token count)
                    acc.backward(loss * (accum * acc.num_processes) / targets.clamp(min=1))
                    loss_sum += loss.detach()
                    if acc.sync_gradients:
                        grad_norm = acc.clip_grad_norm_(model.parameters(), config.max_grad_norm or math.inf)
                    optimizer.step()  # a no-op until the last micro-batch of the window
                    optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            loss = (acc.reduce(loss_sum, "sum") / targets.clamp(min=1)).item()
            losses.append(loss)
            logger.step(step, loss=loss, lr=scheduler.get_last_lr()[0], grad_norm=grad_norm,
                        tokens=acc.reduce(tokens, "sum").item(), targets=targets.item(),
                        seconds=time.perf_counter() - t0, bar=bar)
            stopping = acc.reduce(torch.tensor(float(stop.received is not None), device=acc.device), "sum") > 0
            if stopping or step == stop_at or (config.save_steps and step % config.save_steps == 0):
                saved = save_checkpoint(acc, model, r.tokenizer, config, step, r.provenance,
                                        final=step == config.max_steps)
            if stopping:
                acc.print(f"{stop.received or 'stop signal'}: saved {saved} at step {step}; exiting")
                break
    logger.close()
    acc.end_training()
    return {"start_step": r.start_step, "step": step, "losses": losses, "checkpoint": str(saved) if saved else None,
            "data": r.provenance["data"], "stopped_by_signal": stop.received}


# --------------------------------------------------------------------------------------- helpers
def load_tokenizer(model: str):
    """The model's tokenizer, or a ConfigError naming ``model`` (missing folder, not a checkpoint, no
    chat template) before anything is trained or written."""
    from transformers import AutoTokenizer

    path = Path(model).expanduser()
    if path.exists() and not (path / "config.json").is_file():
        raise ConfigError(f"model: {model} is not a checkpoint folder (no config.json)")
    if not path.exists() and (path.is_absolute() or model.startswith((".", "~")) or model.count("/") > 1):
        raise ConfigError(f"model: no such folder {model}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as e:
        raise ConfigError(f"model: cannot load a tokenizer from {model!r} ({str(e).splitlines()[0]})") from None
    if tokenizer.chat_template is None:
        raise ConfigError(f"model: {model} has no chat template; the data are chat conversations")
    return tokenizer


def micro_batches(dataloader, start: int) -> Iterator[dict]:
    """Endless micro-batches; the order depends only on (seed, epoch, position), so resuming at
    micro-batch ``start`` replays exactly what the uninterrupted run would have seen.

    The epoch is set on the loader itself: accelerate's prepared loaders (and the one
    ``skip_first_batches`` returns) overwrite the sampler's epoch with their own iteration count when
    iterated, so a resumed run would otherwise replay epoch 0's order in every later epoch."""
    from accelerate import skip_first_batches

    epoch, skip = divmod(start, len(dataloader))
    while True:
        loader = skip_first_batches(dataloader, skip) if skip else dataloader
        loader.set_epoch(epoch)
        yield from loader
        epoch, skip = epoch + 1, 0


def trackers(report_to: str) -> list[str] | None:
    if report_to == "none":
        return None
    if report_to != "auto":
        return [t.strip() for t in report_to.split(",") if t.strip()]
    from accelerate.utils import is_tensorboard_available, is_wandb_available

    found = [name for name, ok in (("tensorboard", is_tensorboard_available()), ("wandb", is_wandb_available())) if ok]
    return found or None


def log_with_any(accelerator) -> bool:
    return bool(getattr(accelerator, "log_with", None))


# bf16 dense peak TFLOPs per GPU, for MFU when gpu_peak_tflops is not set
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0, "4090": 165.0}


def keep_log_until(path: Path, step: int) -> None:
    """Drop the lines of steps after ``step`` (what a killed run logged past its last checkpoint, and a
    torn last line), so a resumed run's log holds each step once."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    tmp.replace(path)


class MetricsLog:
    """JSONL + accelerate trackers + a tqdm bar, on the main process."""

    def __init__(self, config: TrainConfig, accelerator, flops_per_token: int, start_step: int = 0):
        self.config, self.acc, self.flops_per_token = config, accelerator, flops_per_token
        self.main = accelerator.is_main_process
        self.file = None
        if self.main:
            path = Path(config.output_dir) / "train_log.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            keep_log_until(path, start_step)
            self.file = open(path, "a", encoding="utf-8")
        self.peak_flops = None
        if torch.cuda.is_available():
            name = torch.cuda.get_device_name()
            tflops = config.gpu_peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
            self.peak_flops = tflops * 1e12 if tflops else None
        self.bar = None

    def progress(self, start: int):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.config.max_steps, initial=start, disable=not self.main, dynamic_ncols=True,
                        desc="train", file=sys.stderr)
        return self.bar

    def step(self, step: int, *, loss, lr, grad_norm, tokens, targets, seconds, bar) -> None:
        bar.update(1)
        if step % self.config.logging_steps and step != self.config.max_steps:
            return
        gn = grad_norm.item() if isinstance(grad_norm, torch.Tensor) else grad_norm
        tps = tokens / seconds
        row = {"step": step, "loss": loss, "lr": lr, "grad_norm": gn, "tokens": int(tokens),
               "loss_tokens": int(targets), "tokens_per_s": tps, "step_s": seconds, "time": time.time()}
        if torch.cuda.is_available():
            row["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
            if self.peak_flops:  # 6N FLOPs per token (forward + backward; 4N + 2 x trainable with LoRA), attention not counted
                row["mfu"] = self.flops_per_token * tps / (self.peak_flops * self.acc.num_processes)
        else:
            row["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tps:,.0f}")
        if self.main:
            self.file.write(json.dumps(row) + "\n")
            self.file.flush()
        if log_with_any(self.acc):
            self.acc.log({k: v for k, v in row.items() if k != "step" and v is not None}, step=step)

    def close(self) -> None:
        if self.file:
            self.file.close()
