"""The pipeline's units of work, each a command line of the project's own CLIs.

A unit is done when its stamp (``<out>/.pipeline/<id>.json``, written after the command exits 0)
records the same command and its outputs exist. A re-run skips done units and re-runs a unit whose
command changed; a killed unit runs again and resumes from what its CLI already wrote (the
datagen/judge SQLite cache, the trainer's accelerate states; an lm_eval unit regenerates its
sampled texts, but its judge calls come from the cache).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from skillmix_tasks.protocol import SINGLE_TURN

from .config import PipelineConfig, resolve_config_path


@dataclass
class Unit:
    stage: str
    id: str  # unique, file-name safe
    cmd: list[str]
    outputs: Callable[[], bool]  # True when the unit's outputs exist
    describe: str = ""
    always: bool = False  # cheap and fed by every other unit's outputs: run on every pipeline run


    def stamp_path(self, root: Path) -> Path:
        return root / ".pipeline" / f"{self.id}.json"

    def key(self) -> dict:
        return {"cmd": self.cmd}

    def status(self, root: Path) -> str:
        """done | changed (stamp from another command) | todo | always."""
        if self.always:
            return "always"
        path = self.stamp_path(root)
        if not path.is_file():
            return "todo"
        try:
            stamp = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return "todo"
        if stamp.get("key") != self.key():
            return "changed"
        return "done" if self.outputs() else "todo"

    def run(self, root: Path, log: Callable[[str], None] = print) -> None:
        log(f"$ {shlex.join(self.cmd)}")
        start = time.time()
        proc = subprocess.run(self.cmd)
        if proc.returncode != 0:
            raise StageFailed(f"{self.stage} unit {self.id} failed (exit {proc.returncode}): {shlex.join(self.cmd)}")
        if not self.outputs():
            raise StageFailed(f"{self.stage} unit {self.id} exited 0 but left no outputs: {shlex.join(self.cmd)}")
        path = self.stamp_path(root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"key": self.key(), "seconds": round(time.time() - start, 1),
                                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2) + "\n")


class StageFailed(RuntimeError):
    pass


def _py(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def _has(path: Path, pattern: str) -> Callable[[], bool]:
    return lambda: any(path.glob(pattern))


def data_file(config: PipelineConfig, k: int) -> Path:
    return config.root / "data" / f"d_skillmix_k{k}.jsonl"


def checkpoint_dir(config: PipelineConfig, student: str, mixture: str) -> Path:
    return config.root / "train" / f"{student}-{mixture}"


def datagen_judge(config: PipelineConfig) -> str | None:
    return config.datagen.judge or config.eval_judge


def datagen_args(config: PipelineConfig) -> list[str]:
    """skillmix-datagen's arguments for this config: the datagen unit's command and the dry run's estimate
    (``estimate.datagen_estimate``) both read them from here."""
    d = config.datagen
    args = ["--teacher", str(d.teacher), "--k", ",".join(map(str, d.k)), "--pool", ",".join(map(str, d.pool)),
            "--out", str(config.root / "data"), "--cache", config.cache_path, "--no-progress"]
    judge = datagen_judge(config)
    if judge:
        args += ["--judge", judge]
    if config.batch:
        args.append("--batch")
    return args + list(d.args)


def datagen_units(config: PipelineConfig) -> list[Unit]:
    d = config.datagen
    cmd = _py("skillmix.datagen") + datagen_args(config)
    files = [data_file(config, k) for k in d.k]
    return [Unit("datagen", "datagen", cmd, lambda: all(f.is_file() for f in files),
                 describe=f"teacher {d.teacher} writes D(k) for k={d.k}, graded by {datagen_judge(config)}")]


def train_config_path(config: PipelineConfig) -> str:
    from skillmix.training import __file__ as training_init

    return str(resolve_config_path(config.train.config, Path(training_init).parent / "configs", "train.config: "))


def train_units(config: PipelineConfig) -> list[Unit]:
    t = config.train
    units = []
    base = list(t.launcher) + ["-m", "skillmix.training"] if t.launcher else _py("skillmix.training")
    train_config = train_config_path(config)
    for s in config.students:
        for name, ks in t.mixtures.items():
            out = checkpoint_dir(config, s.name, name)
            data = "[" + ",".join(str(data_file(config, k)) for k in ks) + "]"
            cmd = base + ["--config", train_config, f"model={s.model}", f"data={data}",
                          f"output_dir={out}", f"run_name={s.name}-{name}", *t.overrides]
            units.append(Unit("train", f"train-{s.name}-{name}", cmd,
                              (lambda o=out: (o / "final" / "config.json").is_file()),
                              describe=f"{s.name} on D({','.join(map(str, ks))}) -> {out}/final"))
    return units


def eval_models(config: PipelineConfig) -> list[tuple[str, str]]:
    """(label, checkpoint) for every student and each of its fine-tuned checkpoints."""
    models = []
    for s in config.students:
        models.append((s.name, s.model))
        if "train" in config.stages:
            models += [(f"{s.name}-{m}", str(checkpoint_dir(config, s.name, m) / "final")) for m in config.train.mixtures]
    return models


def eval_units(config: PipelineConfig) -> list[Unit]:
    e = config.eval
    judge = config.eval_judge
    metadata = {"judge_config": {"cache": config.cache_path, **({"batch": True} if config.batch else {}),
                                 **e.judge_config}}
    if judge:
        metadata["judge"] = judge
    units = []
    for label, model in eval_models(config):
        model_args = f"pretrained={model}" + (f",{e.model_args}" if e.model_args else "")
        for protocol in e.protocols:
            for split in e.splits:
                for k in e.k:
                    # Both protocols are lm_eval tasks: skillmix_<split>_k<k> (two turns), ..._single (one prompt).
                    task = f"skillmix_{split}_k{k}" + ("_single" if protocol == SINGLE_TURN else "")
                    out = config.root / "eval" / protocol / label / task
                    cmd = _py("lm_eval") + ["--model", e.model, "--model_args", model_args, "--tasks", task,
                                            "--output_path", str(out), "--metadata", json.dumps(metadata, sort_keys=True),
                                            "--log_samples", "--apply_chat_template"]
                    for flag, value in (("--limit", e.limit), ("--batch_size", e.batch_size), ("--device", e.device),
                                        ("--gen_kwargs", e.gen_kwargs)):
                        if value is not None:
                            cmd += [flag, str(value)]
                    cmd += e.args
                    units.append(Unit("eval", f"eval-{protocol}-{label}-{task}", cmd, _has(out, "**/results_*.json"),
                                      describe=f"{label} on {task} ({protocol})"))
    return units


def leaderboard_unit(config: PipelineConfig) -> Unit:
    out = config.root / "leaderboard"
    cmd = _py("skillmix.leaderboard") + [str(config.root / "eval"), "--out", str(out)]
    # the first student is the baseline once there is another row to compare (a second student, or
    # the checkpoints trained from it); a lone row marked "baseline" says nothing
    if config.students and (len(config.students) > 1 or "train" in config.stages):
        cmd += ["--baseline", config.students[0].model]
    if config.leaderboard_note:
        cmd += ["--note", config.leaderboard_note]
    return Unit("leaderboard", "leaderboard", cmd, lambda: (out / "index.html").is_file(),
                describe=f"tables, page and plots in {out}", always=True)


def plan(config: PipelineConfig) -> list[Unit]:
    units: list[Unit] = []
    builders = {"datagen": datagen_units, "train": train_units, "eval": eval_units,
                "leaderboard": lambda c: [leaderboard_unit(c)]}
    for stage in ("datagen", "train", "eval", "leaderboard"):
        if stage in config.stages:
            units += builders[stage](config)
    return units
