"""Read lm-eval results JSONs (``lm_eval --tasks skillmix_...``) into flat SKILL-MIX entries.

One ``Entry`` = one SKILL-MIX task (split x k) of one results file. Everything the leaderboard
shows comes from the results file itself, plus ``skillmix_provenance.json`` when the evaluated
model is a local checkpoint folder that carries one.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillmix_tasks.protocol import METRICS, SPLITS, parse_task_name, task_name  # the leaderboard reads files

SPLIT_LABELS = {"train": "train", "heldout": "held-out", "all": "all"}
PROVENANCE_FILE = "skillmix_provenance.json"  # written by skillmix.training.checkpoint
_TS_RE = re.compile(r"results_(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?)")


@dataclass(frozen=True)
class Stat:
    value: float | None
    stderr: float | None

    def ci95(self) -> tuple[float, float] | None:
        if self.value is None or self.stderr is None:
            return None
        return max(0.0, self.value - 1.96 * self.stderr), min(1.0, self.value + 1.96 * self.stderr)


@dataclass
class Entry:
    model: str  # pretrained path/id (hf) or the API model name
    revision: str  # revision or hash when known, else ""
    protocol: str  # "two-turn" (skillmix_<split>_k<k>) or "single-turn" (..._single); configs.<task>.metadata.protocol
    judge: str  # judge spec string from the task metadata
    judge_prompt_version: str  # the grading version: judge prompt and scoring rules (grading_version)
    split: str
    k: int
    task: str
    stats: dict[str, Stat]  # metric -> mean over scored items, stderr
    n: int | None  # items evaluated (n-samples effective)
    unscored: int | None  # items with no score, left out of the means
    date: float  # when the run finished (epoch seconds)
    file: str
    model_source: str = ""
    provenance: dict[str, Any] | None = None
    items: list | None = None  # verdicts.Sample of the task's samples file (texts dropped), when lm-eval logged one
    samples_file: str = ""
    judged: bool = True  # False: a --predict_only run (generated, nothing judged); no metric values

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        # Gradings under other prompts or scoring rules are other numbers: never one row.
        return (self.model, self.revision, self.protocol, self.judge, self.judge_prompt_version)


@dataclass
class Loaded:
    entries: list[Entry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # malformed files or tasks, each naming its file
    ignored: list[str] = field(default_factory=list)  # results files with no SKILL-MIX task
    files: list[str] = field(default_factory=list)  # every results file read


class Malformed(ValueError):
    pass


def find_results(paths: list[str | Path]) -> list[Path]:
    found: set[Path] = set()
    for p in map(Path, paths):
        if p.is_file():
            found.add(p)
        elif p.is_dir():
            found.update(f for f in p.rglob("results_*.json") if f.is_file())
    return sorted(found)


def read_json(path: Path) -> Any:
    """A JSON file, with ``Infinity``/``NaN`` kept as floats (callers check every number they use).
    Raises ``Malformed`` for anything unreadable, a nesting too deep to decode included."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Malformed(str(e)) from None
    except RecursionError:
        raise Malformed("nested too deeply to be a results file") from None


def load(paths: list[str | Path]) -> Loaded:
    """Every SKILL-MIX entry in every ``results_*.json`` below ``paths``; bad files become warnings."""
    out = Loaded()
    for f in find_results(paths):
        out.files.append(str(f))
        try:
            entries, task_warnings = parse_results(read_json(f), str(f))
        except Malformed as e:
            out.warnings.append(f"skipping malformed results file {f}: {e}")
            continue
        except (TypeError, ValueError, AttributeError, OverflowError, RecursionError) as e:
            # a shape no check above foresaw: still one file's warning, never the whole leaderboard
            out.warnings.append(f"skipping malformed results file {f}: {type(e).__name__}: {e}")
            continue
        out.warnings.extend(task_warnings)
        if entries:
            out.entries.extend(entries)
        elif not task_warnings:
            out.ignored.append(str(f))
    return out


def parse_results(data: Any, file: str) -> tuple[list[Entry], list[str]]:
    """The SKILL-MIX entries of one parsed results JSON, and warnings for tasks that could not be read."""
    if not isinstance(data, dict):
        raise Malformed("not a JSON object")
    results = data.get("results")
    if not isinstance(results, dict):
        raise Malformed("no 'results' object")
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    configs = data.get("configs") if isinstance(data.get("configs"), dict) else {}
    n_samples = data.get("n-samples") if isinstance(data.get("n-samples"), dict) else {}
    model_args = _model_args(config.get("model_args"))
    model = str(model_args.get("pretrained") or model_args.get("model") or data.get("model_name") or "").strip()
    revision = _revision(data, model_args)
    # Older skillmix-eval files said it once per file; lm_eval files say it per task (configs.<task>.metadata).
    file_protocol = str(config.get("protocol") or data.get("protocol") or "single-turn")
    warnings: list[str] = []
    date = _date(data, file, warnings)
    provenance = read_provenance(model)
    entries = []
    for task, row in results.items():
        parsed = parse_task_name(str(task))
        if parsed is None or parsed[1] is None:
            continue  # foreign tasks and the group rows (skillmix_heldout, ...)
        split, k, _ = parsed
        try:
            judged = not _predict_only_row(row)
            stats, unscored = (_task_stats(row, f"{file}: results.{task}", warnings) if judged
                               else ({m: Stat(None, None) for m in METRICS}, None))
        except Malformed as e:
            warnings.append(f"skipping task {task} in {file}: {e}")
            continue
        task_config = configs.get(task) if isinstance(configs.get(task), dict) else {}
        meta = task_config.get("metadata") if isinstance(task_config.get("metadata"), dict) else {}
        task_model = model or str(meta.get("pretrained") or meta.get("model") or "")
        if not task_model:
            warnings.append(f"skipping task {task} in {file}: no model name")
            continue
        ns = n_samples.get(task)
        n = _count(ns.get("effective") if isinstance(ns, dict) else None, f"{file}: n-samples.{task}.effective", warnings)
        entries.append(Entry(
            model=task_model, revision=revision, protocol=str(meta.get("protocol") or file_protocol),
            judge=str(meta.get("judge") or ("unknown judge" if judged else "not judged")), judged=judged,
            judge_prompt_version=grading_version(meta) if judged else "",
            # one task name for both protocols (skillmix_heldout_k3 and ..._single): the protocol says which
            split=split, k=k, task=task_name(split, k), stats=stats,
            n=n, unscored=unscored, date=date, file=file,
            model_source=str(data.get("model_source") or config.get("model") or ""),
            provenance=provenance if task_model == model else read_provenance(task_model)))
    return entries, warnings


def grading_version(meta: dict) -> str:
    """The judge prompt and the scoring rules a result was graded under, as one label. Results from
    before the scoring version was recorded were scored by its first version."""
    prompt = str(meta.get("judge_prompt_version") or "")
    scoring = str(meta.get("judge_scoring_version") or "skillmix-scoring-v1")
    return f"{prompt}, {scoring}" if prompt else scoring


def _predict_only_row(row: Any) -> bool:
    """A ``--predict_only`` run's task row: lm-eval's ``bypass`` placeholder and no SKILL-MIX metric."""
    if not isinstance(row, dict):
        return False
    names = {key.split(",", 1)[0] for key in row if "," in key}
    return bool(names) and names <= {"bypass", "bypass_stderr"}


def _task_stats(row: Any, where: str, warnings: list[str]) -> tuple[dict[str, Stat], int | None]:
    """The three metrics and the unscored count of one task row. A metric that is not a number in
    [0, 1] drops the task; a non-finite stderr or count is a warning naming the field, shown unknown."""
    if not isinstance(row, dict):
        raise Malformed("task row is not an object")
    values: dict[str, dict[str, Any]] = {}  # filter -> {metric or metric_stderr: value}
    for key, v in row.items():
        if "," in key:
            name, filt = key.split(",", 1)
            values.setdefault(filt, {})[name] = v
    # the judged filter; another one only if a future YAML renames it
    filt = "judged" if "judged" in values else next(
        (f for f, d in values.items() if any(m in d or "unscored" in d for m in METRICS)), None)
    if filt is None:
        raise Malformed("no judged SKILL-MIX metrics (full_marks, all_skills, skills_fraction, unscored); "
                        "a --predict_only run?")
    d = values[filt]
    stats = {}
    for m in METRICS:
        value = _number(d.get(m), f"{m},{filt}")
        if value is not None and not 0.0 <= value <= 1.0:
            raise Malformed(f"'{m},{filt}' = {value} is outside [0, 1]")
        se = _number(d.get(f"{m}_stderr"), f"{m}_stderr,{filt}", lenient=True)
        if se is not None and not (math.isfinite(se) and se >= 0):
            warnings.append(f"{where}['{m}_stderr,{filt}'] = {se!r} is not a standard error; shown as unknown")
            se = None
        stats[m] = Stat(value, se)
    if d.get("unscored") is not None and (isinstance(d["unscored"], bool) or not isinstance(d["unscored"], (int, float))):
        raise Malformed(f"'unscored,{filt}' is not a number: {d['unscored']!r}")
    unscored = _count(d.get("unscored"), f"{where}['unscored,{filt}']", warnings)
    if unscored is None and all(s.value is None for s in stats.values()):
        raise Malformed("no SKILL-MIX metric values")
    return stats, unscored


def _number(v: Any, name: str, lenient: bool = False) -> float | None:
    """A metric value: None for missing, "N/A" and NaN (lm-eval's "no value"); ``Malformed`` for
    other non-numbers unless ``lenient``. Infinity is returned, for the caller's range check."""
    if v is None or (isinstance(v, str) and v.strip().upper() == "N/A"):
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        if lenient:
            return None
        raise Malformed(f"'{name}' is not a number: {v!r}")
    return None if math.isnan(v) else float(v)


def _count(v: Any, where: str, warnings: list[str]) -> int | None:
    """A count (items, unscored items): a finite whole number >= 0, else None with a warning."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or v != int(v):
        warnings.append(f"{where} = {v!r} is not a count; shown as unknown")
        return None
    return int(v)


def _model_args(args: Any) -> dict[str, Any]:
    if isinstance(args, dict):
        return args
    if isinstance(args, str):  # "pretrained=...,revision=..." as given on the command line
        return dict(kv.split("=", 1) for kv in args.split(",") if "=" in kv)
    return {}


def _revision(data: dict, model_args: dict) -> str:
    sha = str(data.get("model_sha") or "")
    rev = str(model_args.get("revision") or data.get("model_revision") or "")
    if sha:
        return f"{rev}@{sha[:12]}" if rev and rev != "main" else sha[:12]
    return "" if rev == "main" and "revision" not in model_args else rev


_MAX_DATE = _dt.datetime(9999, 1, 1).timestamp()


def _date(data: dict, file: str, warnings: list[str]) -> float:
    d = data.get("date")
    if isinstance(d, (int, float)) and not isinstance(d, bool):
        if math.isfinite(d) and 0 <= d < _MAX_DATE:
            return float(d)
        warnings.append(f"{file}: date = {d!r} is not a time; using the file name's timestamp")
    m = _TS_RE.search(Path(file).name)
    if m:
        try:
            return _dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H-%M-%S.%f" if "." in m.group(1)
                                         else "%Y-%m-%dT%H-%M-%S").timestamp()
        except ValueError:
            pass
    try:
        return Path(file).stat().st_mtime
    except OSError:
        return 0.0


def read_provenance(model: str) -> dict[str, Any] | None:
    """The training provenance of a local checkpoint folder, if it has one."""
    if not model:
        return None
    try:
        f = Path(model).expanduser() / PROVENANCE_FILE
        if f.is_file():
            data = read_json(f)
            return data if isinstance(data, dict) else None
    except (OSError, ValueError):  # Malformed is a ValueError
        return None
    return None


def provenance_summary(p: dict[str, Any] | None) -> str:
    """One line: base model, steps, data files (short hashes), conversations trained on, commit."""
    if not p:
        return ""
    parts = []
    if p.get("base_model"):
        parts.append(f"fine-tuned from {p['base_model']}")
    step, max_steps = p.get("step"), p.get("max_steps")
    if step is not None:
        parts.append(f"step {step}" + (f"/{max_steps}" if max_steps else "")
                     + ("" if p.get("complete", True) else " (incomplete)"))
    data = p.get("data") if isinstance(p.get("data"), dict) else {}
    files = data.get("files") if isinstance(data.get("files"), list) else []
    names = [f"{Path(str(f.get('path', '?'))).name}#{str(f.get('sha256', ''))[:8]}" for f in files if isinstance(f, dict)]
    if names:
        parts.append("data " + ", ".join(names))
    # what the model was trained on, not what was generated: conversations with no answer token left
    # within max_length are dropped (older files: conversations - dropped_no_answer_tokens)
    read, dropped, trained = (data.get(key) if isinstance(data.get(key), int) and not isinstance(data.get(key), bool)
                              and data.get(key) >= 0 else None
                              for key in ("conversations", "dropped_no_answer_tokens", "trained_conversations"))
    if trained is None and read is not None:
        trained = max(0, read - (dropped or 0))
    if trained is not None:
        parts.append(f"{trained} conversations trained on"
                     + (f" ({dropped} of {read} dropped: too long)" if dropped and read is not None else ""))
    if p.get("skillmix_commit"):
        parts.append(f"commit {str(p['skillmix_commit'])[:10]}")
    return "; ".join(parts) or "training provenance present"


def newest(entries: list[Entry]) -> list[Entry]:
    """Keep the newest entry per (model, revision, protocol, judge, task)."""
    best: dict[tuple, Entry] = {}
    for e in entries:
        key = (*e.key, e.task)
        if key not in best or (e.date, e.file) > (best[key].date, best[key].file):
            best[key] = e
    return sorted(best.values(), key=lambda e: (e.key, e.split, e.k))
