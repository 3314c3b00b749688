"""What the quickstart shows of a run without a judge: what is real before any grading.

From lm-eval samples of a SKILL-MIX task: each item's skills and topic, the model's turn-1 draft and
turn-2 answer, the checks that code makes without a judge (sentences against the cap, skills named
in the text), one grader prompt exactly as a judge would receive it, and what judging would cost
(this run and the paper's whole evaluation, with a few named judges, online and through the Batch APIs).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Iterable

from skillmix_tasks.prompts import extract_answer, number_word, sentence_cap
from skillmix_tasks.sampling import Item
from skillmix_tasks.names import names_skill
from skillmix_tasks.sentences import count_sentences

from skillmix.harness import verdicts
from skillmix.harness.verdicts import Sample

# Judges whose cost the quickstart quotes (list prices in skillmix.grading.cost).
COST_JUDGES = ("openai:gpt-4o-mini", "openai:gpt-4o", "anthropic:claude-sonnet-4-6", "openai:gpt-4")
WIDTH = 100
SHOWN_CHARS = 320  # of each text in the terminal


def newest_samples(eval_dir: Path) -> Path | None:
    files = sorted(eval_dir.glob("**/samples_skillmix_*.jsonl"), key=lambda f: f.stat().st_mtime)
    return files[-1] if files else None


def read_samples(path: Path) -> list[tuple[Item, Sample, list[list[str]]]]:
    """(item, sample, turns of each repeat) per sample line, in the file's order."""
    return [(s.item(), s, [g.turns or [g.text] for g in s.generations]) for s in verdicts.read_samples(path)]


def _quote(text: str, indent: str = "      ", limit: int = SHOWN_CHARS) -> str:
    """A text on a few wrapped lines; a long one is cut (the samples file holds it whole)."""
    text = " ".join(text.split()) or "(empty)"
    more = len(text) - limit
    if more > 0:
        text = text[:limit].rsplit(" ", 1)[0] + f" [... {more:,} more characters]"
    return textwrap.fill(f'"{text}"', WIDTH, initial_indent=indent, subsequent_indent=indent + " ")


def checks(item: Item, answer: str) -> str:
    """The programmatic checks of one final answer, in words."""
    if not answer.strip():
        return "empty answer: scores 0 on every metric, no judge needed"
    cap = sentence_cap(item.k)
    n = count_sentences(answer)
    length = (f"{n} sentence{'s' * (n != 1)} against a cap of {number_word(cap)}: "
              f"length point {'earned' if n <= cap else 'lost'}")
    named = [s for s in item.skills if names_skill(answer, s)]
    names = (f"names {', '.join(repr(s) for s in named)} in the text: that skill's point is 0" if named
             else "names no skill in the text (no penalty)")
    return f"{length}; {names}"


def item_report(rows: Iterable[tuple[Item, Sample, list[list[str]]]]) -> list[str]:
    lines = []
    for item, sample, turns in rows:
        status = sample.status
        if status == "scored" and sample.scores:
            s = sample.scores
            status = (f"scored: full marks {s['full_marks']:.0f}, all skills {s['all_skills']:.0f}, "
                      f"skills fraction {s['skills_fraction']:.2f}")
        elif sample.reason and status != "not judged":
            status = f"{status} ({sample.reason})"
        lines.append(f"  {item.id}: {', '.join(item.skills)} | topic: {item.topic} | {status}")
        for r, conv in enumerate(turns, 1):
            for t, reply in enumerate(conv, 1):
                label = ("draft (turn 1)" if t == 1 else "answer (turn 2)") if len(conv) > 1 else "answer"
                lines.append(f"    repeat {r}, {label}:")
                lines.append(_quote(extract_answer(reply)))
            lines.append(f"    checks: {checks(item, extract_answer(conv[-1]))}")
    return lines


def grader_messages_text(messages: list[dict]) -> str:
    return "\n".join(f"--- {m['role']} ---\n{m['content']}" for m in messages)


def first_grader_prompt(rows: list[tuple[Item, Sample, list[list[str]]]], judge_spec: str) -> str | None:
    """The first non-empty final answer's grader messages, built by the judge itself (so exactly as sent)."""
    from skillmix.grading.judge import resolve_judge
    from skillmix.grading.specs import dry_run_credentials

    for item, _, turns in rows:
        for conv in turns:
            answer = extract_answer(conv[-1])
            if answer.strip():
                with dry_run_credentials():
                    judge = resolve_judge(judge_spec, {"cache": "off"})
                return f"{item.id}, repeat 1, as {judge_spec} would receive it:\n" + \
                    grader_messages_text(judge.messages(item, answer))
    return None


def cost_table(rows: list[tuple[Item, Sample, list[list[str]]]], judges: Iterable[str] = COST_JUDGES) -> list[str]:
    """What judging this run and the paper's evaluation would cost, online and through the Batch APIs."""
    from skillmix.grading.judge import resolve_judge
    from skillmix.grading.specs import dry_run_credentials

    from .config import PipelineConfig
    from .estimate import eval_estimate

    pairs = [(item, extract_answer(conv[-1])) for item, _, turns in rows for conv in turns]
    out = ["  judge                          this run (online / batch)     paper's evaluation (online / batch)"]
    for spec in judges:
        with dry_run_credentials():
            judge = resolve_judge(spec, {"cache": "off"})
            here = judge.call_estimate(pairs)
            paper = eval_estimate(PipelineConfig.load("paper", [f"eval.judge={json.dumps(spec)}"]))
        price = judge.price
        run = f"${here.cost(price):.4f} / ${here.cost(price.batch):.4f}" if price else "n/a"
        full = (f"${paper['judge_cost_est']:,.0f} / ${paper['judge_batch_cost_est']:,.0f}"
                if paper.get("judge_cost_est") is not None else "n/a")
        out.append(f"  {spec:<30} {run:<29} {full}")
    out.append(f"  (this run: {len(pairs)} texts x {judge.settings.n_gradings} gradings, {here.calls} requests; "
               f"the paper's evaluation: {paper['texts']:,} texts over {len(paper['tasks'])} tasks x "
               f"{len(paper['models'])} models, {paper['judge_calls']:,} requests; list prices, estimated tokens)")
    return out


def report(eval_dir: Path, judge_for_prompt: str = COST_JUDGES[1]) -> list[str]:
    path = newest_samples(eval_dir)
    if path is None:
        return ["(no samples file found)"]
    rows = read_samples(path)
    lines = ["== Per item: skills, topic, the model's texts and the checks made without a judge", *item_report(rows)]
    prompt = first_grader_prompt(rows, judge_for_prompt)
    if prompt:
        lines += ["", "== One grader prompt: " + prompt]
    lines += ["", "== What judging would cost", *cost_table(rows)]
    return lines
