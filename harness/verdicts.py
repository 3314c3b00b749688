"""The verdict format: what the ``judged`` filter hands each doc, and every reader of samples files.

This module is the only place that writes or reads it. lm-eval logs the verdict with ``str()`` as the
first of a sample's ``filtered_resps`` (``--log_samples``); ``skillmix-grade``, the leaderboard and the
quickstart report read samples files through :func:`read_samples` and nothing else.

A verdict is one JSON object per doc::

    {"id", "protocol", "judge", "prompt_version", "scoring_version",
     "status": "scored" | "unscored" | "not judged", "reason", "scores": {metric: value} | null,
     "generations": [{"repeat", "turns": [turn 1, turn 2] or [reply], "text": the graded answer,
                      ...the judge's grade of that text (TextGrade.to_dict): points, voted, gradings, replies}]}

lm-eval's own ``resps`` hold turn 1 only; the verdict holds every turn. Samples that must not be
pooled into one item (two protocols, two judges, two prompt versions or catalogs, or the same item
twice) are refused with their doc ids by :func:`check_one_run`.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

from skillmix_tasks.jsonl import iter_objects, loads
from skillmix_tasks.metrics import item_metrics
from skillmix_tasks.prompts import PROMPT_VERSION, extract_answer
from skillmix_tasks.protocol import METRICS, SINGLE_TURN, TWO_TURN, parse_task_name
from skillmix_tasks.sampling import Item
from skillmix_tasks.scoring import SCORING_VERSION, Unscored

STATUSES = ("scored", "unscored", "not judged")
OUTCOMES = ("full marks", "all skills", "missed skills", "unscored", "not judged")
SAMPLES_RE = re.compile(r"^samples_(?P<task>skillmix_\w+?)_(?P<ts>\d{4}-\d{2}-\d{2}T[\w.-]+)\.jsonl$")
_RESULTS_TS = re.compile(r"^results_(.+)\.json$")


class SamplesError(ValueError):
    """A samples file (or a set of them) that cannot be read as asked; the message names file, line and ids."""


# ----------------------------------------------------------------------------------------------- writing
def write_verdict(doc: dict, protocol: str, turns: Sequence[Sequence[str]], grades: Sequence[Any] | None = None, *,
                  status: str = "unscored", reason: str = "", judge: str = "") -> str:
    """One doc's verdict as the JSON string lm-eval logs.

    ``turns``: per repeat, the student's replies. ``grades``: the judge's ``TextGrade`` of each
    repeat's final answer, or None when nothing was judged (then ``status``/``reason`` say why)."""
    out: dict[str, Any] = {"id": doc.get("id"), "protocol": protocol, "judge": judge, "prompt_version": PROMPT_VERSION,
                           "scoring_version": SCORING_VERSION}
    if grades is None:
        out.update(scores=None, status=status, reason=reason,
                   generations=[{"repeat": r, "turns": list(t), "text": extract_answer(t[-1])}
                                for r, t in enumerate(turns)])
        return json.dumps(out, ensure_ascii=False)
    item = item_metrics([g.score for g in grades])
    if isinstance(item, Unscored):
        out.update(scores=None, status="unscored", reason=item.reason, detail=item.detail)
    else:
        out.update(scores={m: item[m] for m in METRICS}, status="scored")
    out["generations"] = [{**g.to_dict(), "repeat": r, "turns": list(t)} for r, (g, t) in enumerate(zip(grades, turns))]
    return json.dumps(out, ensure_ascii=False)


# ----------------------------------------------------------------------------------------------- reading
def _points(x: Any) -> list[int]:
    return [1 if p == 1 else 0 for p in x] if isinstance(x, list) else []


def _given(x: list) -> list[float | None]:
    """A grading's points as the judge gave them: numbers in [0, 1] (partial credit kept), else None."""
    return [p if isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 1 else None for p in x]


@dataclass
class Generation:
    """One generation of an item: the student's turns and what the judge made of the final one."""

    repeat: int
    turns: list[str]  # [turn 1, turn 2] (two-turn) or [reply] (single-turn); [] when the verdict lost them
    text: str  # the graded answer (the final turn's text after "Answer:")
    status: str  # scored / unscored (a generation of a judged item), or not judged
    reason: str
    criteria: list[str] = field(default_factory=list)
    voted: list[int] | None = None  # the judge's majority vote, before the programmatic rules
    points: list[int] = field(default_factory=list)  # after the rules
    gradings: list[Any] = field(default_factory=list)  # per grading: points as given, or {"unscored": reason}
    replies: list[str] = field(default_factory=list)

    @property
    def draft(self) -> str | None:
        return self.turns[0] if len(self.turns) == 2 else None


@dataclass
class Sample:
    """One line of a samples file: the item, its verdict and its generations."""

    id: str
    skills: list[str]
    topic: str
    doc: dict
    protocol: str  # "" when the line has no verdict
    judge: str
    prompt_version: str
    scoring_version: str  # the scoring rules that turned the judge's replies into points ("" if none)
    status: str  # scored / unscored / not judged
    reason: str  # why not scored ("" when scored)
    scores: dict[str, float] | None  # the item's metrics (max over its scored generations)
    generations: list[Generation] = field(default_factory=list)
    skill_points: list[int] | None = None  # per skill, 1 if any scored generation earned its point (scored items)
    where: str = ""  # file:line

    @property
    def outcome(self) -> str:
        if self.status != "scored" or not self.scores:
            return "not judged" if self.status == "not judged" else "unscored"
        if self.scores.get("full_marks") == 1:
            return "full marks"
        return "all skills" if self.scores.get("all_skills") == 1 else "missed skills"

    @property
    def catalog(self) -> str:
        return str(self.doc.get("catalog") or "")

    def item(self) -> Item:
        return Item.from_dict(self.doc)

    def final_texts(self) -> list[str]:
        """The answer to grade of each generation: its final turn, never a draft.

        Raises :class:`SamplesError` when a generation's final turn is missing (a two-turn verdict whose
        turn 2 failed holds turn 1 only: grading it would grade the draft)."""
        if not self.generations or any(not g.turns for g in self.generations):
            raise SamplesError(f"{self.where}: doc {self.id!r} has no turns to grade: neither a verdict with "
                               "generations[*].turns in 'filtered_resps' nor, for a single-turn doc, its replies in "
                               "'resps'; re-run the task")
        if self.protocol == TWO_TURN and any(len(g.turns) < 2 for g in self.generations):
            raise SamplesError(f"{self.where}: doc {self.id!r} is two-turn but has no turn 2 ({self.reason or 'lost'}); "
                               "its drafts are not graded: re-run the task")
        return [extract_answer(g.turns[-1]) for g in self.generations]

    def without_texts(self) -> "Sample":
        """The sample with its generations and doc dropped (what a summary needs, a fraction of the size)."""
        return replace(self, generations=[], doc={})


def read_verdict(filtered: Any) -> dict:
    """The verdict object in a doc's filtered responses (``filtered_resps``, or ``process_results``'
    ``results``): {} when there is none or it is not JSON."""
    first = filtered[0] if isinstance(filtered, list) and filtered else filtered
    if isinstance(first, list) and first:  # lm-eval nests per repeat in some versions
        first = first[0]
    if isinstance(first, str):
        try:
            v = loads(first)
        except (ValueError, RecursionError):
            return {}
        return v if isinstance(v, dict) else {}
    return first if isinstance(first, dict) else {}


def _generation(g: dict, r: int) -> Generation:
    turns = g.get("turns")
    turns = [str(t) for t in turns] if isinstance(turns, list) and all(isinstance(t, str) for t in turns) else []
    status = g.get("status") if g.get("status") in ("scored", "unscored") else "not judged"
    gradings = g.get("gradings") if isinstance(g.get("gradings"), list) else []
    replies = g.get("replies") if isinstance(g.get("replies"), list) else []
    return Generation(
        repeat=g["repeat"] if isinstance(g.get("repeat"), int) else r, turns=turns,
        text=str(g.get("text") or (extract_answer(turns[-1]) if turns else "")), status=status,
        reason="" if status == "scored" else str(g.get("reason") or ""),
        criteria=[str(c) for c in g["criteria"]] if isinstance(g.get("criteria"), list) else [],
        voted=_points(g["voted"]) if isinstance(g.get("voted"), list) else None, points=_points(g.get("points")),
        gradings=[_given(x) if isinstance(x, list) else {"unscored": str(x.get("unscored", "?"))
                                                           if isinstance(x, dict) else "?"} for x in gradings],
        replies=[str(x) if x is not None else "" for x in replies])


def _replies(resps: Any) -> list[str]:
    """lm-eval's ``resps`` of one doc: [[reply per repeat]] (one request with its repeats) or a flat list."""
    if isinstance(resps, list) and len(resps) == 1 and isinstance(resps[0], list):
        resps = resps[0]
    if not isinstance(resps, list):
        return []
    out = [r[0] if isinstance(r, list) and len(r) == 1 else r for r in resps]
    return out if all(isinstance(r, str) for r in out) else []


def parse_sample(line: dict, where: str = "") -> Sample:
    """One samples line; :class:`SamplesError` if it is no SKILL-MIX sample (no doc with id, skills, topic).

    A line without a readable verdict reads as unscored ("no verdict"), never as a grade."""
    doc = line.get("doc") if isinstance(line, dict) else None
    if (not isinstance(doc, dict) or not isinstance(doc.get("skills"), list) or not doc["skills"]
            or not all(isinstance(s, str) for s in doc["skills"]) or not isinstance(doc.get("topic"), str)
            or "id" not in doc):
        raise SamplesError(f"{where}: not a SKILL-MIX sample (no doc with id, skills and topic)")
    v = read_verdict(line.get("filtered_resps"))
    status = v.get("status") if v.get("status") in STATUSES else "unscored"
    scores = v.get("scores") if isinstance(v.get("scores"), dict) else None
    if scores:
        scores = {m: float(x) for m, x in scores.items()
                  if m in METRICS and isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x <= 1}
    if status == "scored" and not scores:
        status = "unscored"
    raw = v.get("generations") if isinstance(v.get("generations"), list) else []
    gens = [_generation(g, r) for r, g in enumerate(raw) if isinstance(g, dict)]
    protocol = str(v.get("protocol") or doc.get("protocol") or "")
    if not gens and protocol == SINGLE_TURN:
        # No verdict with the replies: lm-eval's own responses are the final turns of a single-turn task
        # (of a two-turn task they are the drafts, so they are never read as its answers).
        gens = [Generation(r, [t], extract_answer(t), "not judged", "") for r, t in enumerate(_replies(line.get("resps")))]
    skills = list(doc["skills"])
    skill_points = None
    if status == "scored":
        scored = [g.points for g in gens if g.status == "scored" and len(g.points) >= len(skills)]
        skill_points = [max(p[i] for p in scored) for i in range(len(skills))] if scored else None
    return Sample(
        id=str(doc["id"]), skills=skills, topic=doc["topic"], doc=doc,
        protocol=protocol, judge=str(v.get("judge") or ""),
        prompt_version=str(v.get("prompt_version") or doc.get("prompt_version") or ""),
        scoring_version=str(v.get("scoring_version") or ""), status=status,
        reason="" if status == "scored" else str(v.get("reason") or ("no verdict" if not v else "")),
        scores=scores or None, generations=gens, skill_points=skill_points, where=where)


def read_samples(path: str | Path, *, skip_bad_lines: list[str] | None = None) -> list[Sample]:
    """Every sample of one samples file, in order.

    A line that is no SKILL-MIX sample raises :class:`SamplesError` naming file and line, unless
    ``skip_bad_lines`` is a list: then the line is skipped and a warning appended to it. A file that
    cannot be read as JSONL raises :class:`SamplesError` either way."""
    out: list[Sample] = []
    try:
        for n, line in iter_objects(path, SamplesError):
            try:
                out.append(parse_sample(line, f"{path}:{n}"))
            except SamplesError as e:
                if skip_bad_lines is None:
                    raise
                skip_bad_lines.append(f"{e}; skipped")
    except (RecursionError, UnicodeDecodeError) as e:
        raise SamplesError(f"{path}: {e}") from None
    except SamplesError:
        raise
    except ValueError as e:  # the JSONL reader's own errors name the file and line
        raise SamplesError(str(e)) from None
    return out


def check_one_run(samples: Iterable[Sample]) -> None:
    """Refuse samples that would be pooled wrongly into one item: the same item id under two protocols,
    judges, prompt versions or catalogs, or the same item twice (max over six generations instead of
    three). The message names the doc ids and where they are."""
    seen: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        seen[s.id].append(s)
    repeated = {i: ss for i, ss in seen.items() if len(ss) > 1}
    if not repeated:
        return
    kinds = []
    for label, key in (("protocols", "protocol"), ("judges", "judge"), ("prompt versions", "prompt_version"),
                       ("scoring versions", "scoring_version"), ("catalogs", "catalog")):
        values = sorted({getattr(s, key) for ss in repeated.values() for s in ss})
        if len(values) > 1:
            kinds.append(f"{label} {', '.join(repr(v) for v in values)}")
    ids = sorted(repeated)
    where = "; ".join(f"{i} at {', '.join(s.where for s in repeated[i])}" for i in ids[:5])
    more = f" (and {len(ids) - 5} more)" if len(ids) > 5 else ""
    what = f"mixes {' and '.join(kinds)}" if kinds else "holds the same items twice"
    raise SamplesError(f"the input {what}: {len(ids)} doc id(s) appear more than once, which would pool their "
                       f"generations into one item: {where}{more}. Grade each run's samples file (one task, one "
                       "protocol) on its own.")


# ----------------------------------------------------------------------------------------------- files
def samples_task(path: str | Path) -> tuple[str, str] | None:
    """(task, timestamp) of an lm-eval samples file name of a SKILL-MIX task, else None."""
    m = SAMPLES_RE.match(Path(path).name)
    if not m or parse_task_name(m.group("task")) is None:
        return None
    return m.group("task"), m.group("ts")


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
