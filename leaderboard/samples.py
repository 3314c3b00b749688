"""Read lm-eval samples files (``samples_<task>_<ts>.jsonl`` beside ``results_<ts>.json``) into items.

Each line is one item: lm-eval's ``doc`` (id, skills, topic, ...) and, as the first of its
``filtered_resps``, the judge filter's verdict JSON (status, reason, scores, and per generation the
graded text, the voted rubric rows, the points after the programmatic rules, each grading and the
judge's replies). Two-turn runs add the turn-1 draft: per generation ``turns`` ([draft, final]), or
lm-eval's ``resps`` as [draft, final] pairs. Missing fields read as absent, never as a grade.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillmix_tasks.jsonl import iter_objects, loads

OUTCOMES = ("full marks", "all skills", "missed skills", "unscored", "not judged")
_RESULTS_TS = re.compile(r"^results_(.+)\.json$")


@dataclass
class Item:
    id: str
    skills: list[str]
    topic: str
    status: str  # scored / unscored / not judged
    reason: str  # why unscored ("" when scored)
    scores: dict[str, float] | None  # the item's metrics (max over its scored generations)
    skill_points: list[int] | None  # per skill, 1 if any scored generation earned its point
    generations: list[dict] = field(default_factory=list)  # for the sample browser (see ``_generation``)

    @property
    def outcome(self) -> str:
        if self.status != "scored" or not self.scores:
            return "not judged" if self.status == "not judged" else "unscored"
        if self.scores.get("full_marks") == 1:
            return "full marks"
        return "all skills" if self.scores.get("all_skills") == 1 else "missed skills"


def samples_beside(results_file: str | Path, task: str, protocol: str = "") -> Path | None:
    """The samples file lm-eval wrote with ``--log_samples`` next to a results file, if any.

    ``task`` is the leaderboard's name (``skillmix_heldout_k3``); a single-turn result may come from
    the ``..._single`` task of the same run, whose samples carry that suffix."""
    f = Path(results_file)
    m = _RESULTS_TS.match(f.name)
    if not m:
        return None
    names = [f"{task}_single", task] if protocol == "single-turn" else [task]
    for name in names:
        s = f.with_name(f"samples_{name}_{m.group(1)}.jsonl")
        if s.is_file():
            return s
    return None


def read_items(path: str | Path, warnings: list[str]) -> list[Item] | None:
    """The items of one samples file, or None (with a warning naming the file) if it cannot be read."""
    items: list[Item] = []
    try:
        for lineno, line in iter_objects(path):
            item = _item(line)
            if item is None:
                warnings.append(f"{path}:{lineno}: not a SKILL-MIX sample (no doc with id, skills and topic); skipped")
            else:
                items.append(item)
    except (ValueError, RecursionError) as e:
        warnings.append(f"skipping samples file {path}: {e}")
        return None
    return items


def _verdict(line: dict) -> dict:
    fr = line.get("filtered_resps")
    first = fr[0] if isinstance(fr, list) and fr else fr
    if isinstance(first, list) and first:  # lm-eval nests per repeat in some versions
        first = first[0]
    if isinstance(first, str):
        try:
            v = loads(first)
        except (ValueError, RecursionError):
            return {}
        return v if isinstance(v, dict) else {}
    return first if isinstance(first, dict) else {}


def _item(line: dict) -> Item | None:
    doc = line.get("doc")
    if not isinstance(doc, dict) or not isinstance(doc.get("skills"), list) or "topic" not in doc or "id" not in doc:
        return None
    skills = [str(s) for s in doc["skills"]]
    v = _verdict(line)
    status = v.get("status") if v.get("status") in ("scored", "unscored", "not judged") else "unscored"
    scores = v.get("scores") if isinstance(v.get("scores"), dict) else None
    if status == "scored" and not scores:
        status = "unscored"
    if scores:
        scores = {m: float(x) for m, x in scores.items() if isinstance(x, (int, float)) and not isinstance(x, bool)
                  and 0 <= x <= 1}
    gens_raw = v.get("generations") if isinstance(v.get("generations"), list) else []
    resps = line.get("resps")
    resps = resps[0] if isinstance(resps, list) and len(resps) == 1 and isinstance(resps[0], list) else resps
    gens = [_generation(g, resps[i] if isinstance(resps, list) and i < len(resps) else None)
            for i, g in enumerate(gens_raw) if isinstance(g, dict)]
    skill_points = None
    if status == "scored":
        scored = [g["points"] for g in gens if g["status"] == "scored" and len(g["points"]) >= len(skills)]
        if scored:
            skill_points = [max(p[i] for p in scored) for i in range(len(skills))]
    reason = "" if status == "scored" else str(v.get("reason") or ("no verdict" if not v else ""))
    return Item(id=str(doc["id"]), skills=skills, topic=str(doc["topic"]), status=status, reason=reason,
                scores=scores or None, skill_points=skill_points, generations=gens)


def _points(x: Any) -> list[int]:
    return [1 if p == 1 else 0 for p in x] if isinstance(x, list) else []


def _generation(g: dict, resp: Any) -> dict:
    """What the browser shows of one generation: graded text, turn-1 draft, rubric, explanations."""
    turns = g.get("turns")
    if not (isinstance(turns, list) and len(turns) == 2) and isinstance(resp, list) and len(resp) == 2:
        turns = resp  # files of the former skillmix-eval logged each repeat as [turn 1, turn 2]
    draft = str(turns[0]) if isinstance(turns, list) and len(turns) == 2 else None
    status = "scored" if g.get("status") == "scored" else "unscored"
    voted = g.get("voted")
    gradings = g.get("gradings") if isinstance(g.get("gradings"), list) else []
    replies = g.get("replies") if isinstance(g.get("replies"), list) else []
    return {
        "text": str(g.get("text") or ""), "draft": draft, "status": status,
        "reason": "" if status == "scored" else str(g.get("reason") or ""),
        "criteria": [str(c) for c in g.get("criteria") or []] if isinstance(g.get("criteria"), list) else [],
        "voted": _points(voted) if isinstance(voted, list) else None,
        "points": _points(g.get("points")),
        "gradings": [_points(x) if isinstance(x, list) else {"unscored": str((x or {}).get("unscored", "?"))
                                                               if isinstance(x, dict) else "?"} for x in gradings],
        "replies": [str(r) if r is not None else "" for r in replies],
    }
