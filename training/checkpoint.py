"""Checkpoints: HF weights + tokenizer (what `lm_eval --model hf` loads), provenance, resumable state.

Layout of ``output_dir``::

    step-000500/                 save_pretrained(model, tokenizer incl. chat template); LoRA: merged weights
        adapter/                 LoRA runs only: the peft adapter (adapter_config.json, adapter_model.safetensors)
        skillmix_provenance.json data files + sha256, conversations trained on and dropped (per file and k), config, steps, tokens
        accelerate_state/        accelerator.save_state (weights, optimizer, scheduler, RNG)
            trainer_state.json   written last: {"step": 500, ...}; a state without it is ignored
    final/                       the same at the end of training
    train_log.jsonl              one line per logged step
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from .config import ConfigError
from .model import is_lora, merged_state_dict

STATE_DIR = "accelerate_state"
STATE_FILE = "trainer_state.json"
PROVENANCE_FILE = "skillmix_provenance.json"
ADAPTER_DIR = "adapter"  # LoRA runs: the peft adapter (the step folder itself holds the merged weights)


def step_dir(output_dir: str | Path, step: int, final: bool = False) -> Path:
    return Path(output_dir) / ("final" if final else f"step-{step:06d}")


def save_checkpoint(accelerator, model, tokenizer, config, step: int, provenance: dict[str, Any],
                    final: bool = False) -> Path:
    """save_pretrained (gathered across FSDP/ZeRO-3 shards) + provenance + optional accelerate state."""
    out = step_dir(config.output_dir, step, final)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    state_dict = accelerator.get_state_dict(model)  # collective: every process must call it
    unwrapped = accelerator.unwrap_model(model)
    if is_lora(unwrapped):
        # the adapter as peft saves it, and the merged weights as a plain HF folder for lm_eval --model hf
        unwrapped.save_pretrained(out / ADAPTER_DIR, is_main_process=accelerator.is_main_process,
                                  state_dict=state_dict)
        base = unwrapped.get_base_model()
        if accelerator.is_main_process:
            base.save_pretrained(out, state_dict=merged_state_dict(state_dict, config.lora.alpha / config.lora.r))
    else:
        unwrapped.save_pretrained(out, is_main_process=accelerator.is_main_process, state_dict=state_dict,
                                  save_function=accelerator.save)
    if accelerator.is_main_process:
        tokenizer.save_pretrained(out)  # also writes the chat template (chat_template.jinja)
        record = dict(provenance, step=step, complete=final or step >= config.max_steps,
                      saved_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        (out / PROVENANCE_FILE).write_text(json.dumps(record, indent=2, default=str))
    if config.save_state:
        accelerator.save_state(str(out / STATE_DIR))
        if accelerator.is_main_process:
            (out / STATE_DIR / STATE_FILE).write_text(json.dumps({"step": step}))
            prune_states(config.output_dir, config.keep_last_states)
    accelerator.wait_for_everyone()
    return out


def completed_states(output_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every checkpoint with a complete accelerate state, oldest first."""
    found = []
    for f in Path(output_dir).glob(f"*/{STATE_DIR}/{STATE_FILE}"):
        try:
            found.append((int(json.loads(f.read_text())["step"]), f.parent.parent))
        except (ValueError, KeyError, OSError):
            continue
    return sorted(found, key=lambda sf: (sf[0], sf[1].name == "final"))


def prune_states(output_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` accelerate states (weights and provenance stay)."""
    if keep <= 0:
        return
    for _, folder in completed_states(output_dir)[:-keep]:
        shutil.rmtree(folder / STATE_DIR, ignore_errors=True)


def resume_from(config) -> Path | None:
    """The checkpoint folder to resume from, per ``config.resume`` (auto | never | path)."""
    if config.resume == "never":
        return None
    if config.resume != "auto":
        path = Path(config.resume)
        if not (path / STATE_DIR / STATE_FILE).is_file():
            raise ConfigError(f"resume: {path} has no {STATE_DIR}/{STATE_FILE} (a step folder saved with save_state=true)")
        return path
    states = completed_states(config.output_dir)
    return states[-1][1] if states else None


def load_checkpoint_state(accelerator, folder: Path) -> int:
    """Restore model, optimizer, scheduler and RNG; return the optimizer step to continue from."""
    accelerator.load_state(str(folder / STATE_DIR))
    return int(json.loads((folder / STATE_DIR / STATE_FILE).read_text())["step"])


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class StopSignal:
    """SIGTERM (schedulers, `kill`) and SIGUSR1 (SLURM's pre-timeout signal) set a flag; the loop saves
    a checkpoint at the end of the current step and returns."""

    SIGNALS = ("SIGTERM", "SIGUSR1")

    def __init__(self):
        self.received: str | None = None
        self._previous = {}

    def __enter__(self) -> "StopSignal":
        for name in self.SIGNALS:
            sig = getattr(signal, name, None)
            if sig is not None:
                try:
                    self._previous[sig] = signal.signal(sig, self._handle)
                except ValueError:  # not the main thread: no signal handling
                    pass
        return self

    def _handle(self, signum, _frame) -> None:
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
