"""The sample browser's data: one script per (row, task) under ``data/``, loaded by the page on demand.

Scripts, not JSON files: a page opened from disk (file://) may load ``<script src>`` but not fetch()
local files. Each script calls ``skillmixItems(id, data)`` with strict ASCII JSON (no raw U+2028, no
Infinity/NaN). Reading a samples file and writing its script is one job per task, run in the
build's worker processes (the samples are most of a build's input); only the compact items come back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from skillmix_tasks.jsonl import dumps_ascii

from skillmix.harness.verdicts import Generation, Sample, SamplesError, read_samples
from skillmix.leaderboard.skills import category_of
from skillmix.leaderboard.table import Row
from skillmix.leaderboard.workers import Workers

DATA_DIR = "data"


def cell_id(row_index: int, task: str) -> str:
    return f"{row_index}-{task}"


def cell_file(cid: str) -> str:
    return f"{DATA_DIR}/items_{cid}.js"


def _generation(g: Generation) -> dict:
    """What the browser shows of one generation: graded text, turn-1 draft, rubric, explanations."""
    status = "scored" if g.status == "scored" else "unscored"
    return {"text": g.text, "draft": g.draft, "status": status, "reason": "" if status == "scored" else g.reason,
            "criteria": g.criteria, "voted": g.voted, "points": g.points, "gradings": g.gradings,
            "replies": g.replies}


def _task_job(samples: str, target: str, meta: dict) -> tuple[list[Sample] | None, list[str]]:
    """Read one samples file and write its item script; the items come back without their texts."""
    warnings: list[str] = []
    try:
        items = read_samples(samples, skip_bad_lines=warnings)
    except SamplesError as e:
        return None, [f"skipping samples file {samples}: {e}"]
    except Exception as e:  # a shape no reader check foresaw: one file's warning, never the whole build
        return None, [f"skipping samples file {samples}: {type(e).__name__}: {e}"]
    cats = {s: category_of(s) for it in items for s in it.skills}
    payload = {**meta, "samples": samples, "categories": cats, "items": [
        {"id": it.id, "skills": it.skills, "topic": it.topic, "outcome": it.outcome, "reason": it.reason,
         "scores": it.scores, "sp": it.skill_points, "gens": [_generation(g) for g in it.generations]}
        for it in items]}
    # ASCII (U+2028/U+2029 escaped) and finite numbers only: the readers keep only finite numbers
    Path(target).write_text(f"skillmixItems({dumps_ascii(meta['id'])},{dumps_ascii(payload)});\n", encoding="ascii")
    return [it.without_texts() for it in items], warnings


def start_items(rows: list[Row], out: Path, workers: Workers) -> Callable[[], tuple[dict[str, dict], list[str]]]:
    """Start reading the samples beside every shown result and writing the item scripts in the
    workers; the returned call waits, fills ``entry.items`` and gives the page's index (id -> file,
    row, task, n) and the warnings of unreadable samples."""
    d = out / DATA_DIR
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("items_*.js"):  # a rebuild never leaves another run's items behind
        old.unlink()
    jobs = []
    for ri, r in enumerate(rows):
        for (split, k), e in sorted(r.cells.items()):
            if e.samples_file:
                cid = cell_id(ri, e.task)
                meta = {"id": cid, "row": r.label, "model": r.model, "protocol": r.protocol, "judge": r.judge,
                        "task": e.task, "split": split, "k": k}
                jobs.append((ri, e, cid, (e.samples_file, str(out / cell_file(cid)), meta)))
    pending = workers.map(_task_job, *zip(*[j[3] for j in jobs]), chunksize=4) if jobs else list

    def collect() -> tuple[dict[str, dict], list[str]]:
        index: dict[str, dict] = {}
        warnings: list[str] = []
        for (ri, e, cid, _), (items, w) in zip(jobs, pending()):
            warnings.extend(w)
            e.items = items
            if items is not None:
                index[cid] = {"file": cell_file(cid), "row": ri, "task": e.task, "split": e.split, "k": e.k,
                              "n": len(items)}
        return index, warnings

    return collect
