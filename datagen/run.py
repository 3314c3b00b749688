"""The run: a teacher, a judge and a shared budget, configured and checked before any call; every
conversation of a :class:`~.pool.Plan` held and graded (online, or in rounds of Batch API batches),
the full-mark ones written as rows, and the summary, the dataset card's source.

Writes DIR/d_skillmix_k{k}.jsonl, DIR/README.md (the dataset card) and DIR/datagen_summary.json.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from skillmix_tasks.prompts import PROMPT_VERSION, two_turn_messages
from skillmix_tasks.sampling import Item
from skillmix_tasks.scoring import GenerationScore, Unscored

from skillmix.grading.backends import Usage, make_backend
from skillmix.grading.batch import complete_batch
from skillmix.grading.client import CachedCompleter
from skillmix.grading.cost import Budget, price_for
from skillmix.grading.judge import Judge, TextGrade, check_batch_mode
from skillmix.grading.specs import JudgeConfigError, choose_spec, make_settings, parse_spec

from .card import dataset_card
from .conversation import (TEACHER_MAX_TOKENS, TEACHER_NAMESPACE, TEACHER_TEMPERATURE, TYPICAL_TEACHER_TOKENS,
                           Conversation, add_reply, two_turn)
from .estimate import estimate
from .leakage import check_leakage
from .pool import Plan, eval_combinations
from .row import answer_key, make_row


class NothingJudged(RuntimeError):
    """No conversation of the run reached a judge's score: the run made no data, and says why
    (``summary``: what it did, calls and reasons, as a successful run reports it)."""

    def __init__(self, message: str, summary: dict):
        super().__init__(message)
        self.summary = summary


@dataclass
class KStats:
    """One k's counts, tokens and reasons, for the summary and the card."""

    pool: int = 0  # conversations planned (items x generations)
    generated: int = 0  # both teacher turns done
    judged: int = 0  # scored by the judge
    full_marks: int = 0
    kept: int = 0  # full marks, not a duplicate
    duplicates: int = 0
    heldout_items: int = 0
    eval_items: int = 0  # pool items that are also the benchmark's own lm-eval items
    unscored: Counter = field(default_factory=Counter)  # "teacher ..." / "judge ..." -> count
    teacher_usage: Usage = field(default_factory=Usage)
    judge_usage: Usage = field(default_factory=Usage)

    def to_dict(self) -> dict:
        return {"pool": self.pool, "generated": self.generated, "judged": self.judged,
                "full_marks": self.full_marks, "kept": self.kept, "duplicates_dropped": self.duplicates,
                "keep_ratio_of_judged": round(self.kept / self.judged, 4) if self.judged else None,
                "keep_ratio_of_pool": round(self.kept / self.pool, 4) if self.pool else None,
                "unscored_by_reason": dict(sorted(self.unscored.items())), "heldout_items": self.heldout_items,
                "eval_items": self.eval_items,
                "teacher_tokens": self.teacher_usage.to_dict(), "judge_tokens": self.judge_usage.to_dict()}


class Datagen:
    """The teacher, the judge and a shared budget, configured and checked before any call."""

    def __init__(self, teacher: str, judge: str | None, *, cache: str | None = None, max_cost: float | None = None,
                 prices: Mapping[str, Any] | None = None, teacher_temperature: float | None = TEACHER_TEMPERATURE,
                 teacher_max_tokens: int = TEACHER_MAX_TOKENS, teacher_concurrency: int = 16,
                 judge_config: Mapping[str, Any] | None = None, timeout: float | None = None,
                 max_retries: int | None = None, batch_size: int | None = None, batch: bool | None = None,
                 batch_wait: bool | None = None, batch_poll_interval: float | None = None):
        common = {k: v for k, v in {"timeout": timeout, "max_retries": max_retries, "cache": cache,
                                    "prices": prices, "batch_size": batch_size, "batch": batch, "batch_wait": batch_wait,
                                    "batch_poll_interval": batch_poll_interval}.items() if v is not None}
        self.budget = Budget(max_cost) if max_cost is not None else None
        jsettings = make_settings(judge_config, **common, max_cost=max_cost)
        self.judge = Judge(choose_spec(judge, None, command="skillmix-datagen"), jsettings, budget=self.budget)
        self.teacher_spec = parse_spec(teacher)
        # Batch mode is the teacher's and the judge's together (the rounds go turn 1, turn 2, gradings).
        batch_settings = {k: getattr(jsettings, k) for k in ("batch", "batch_wait", "batch_poll_interval", "batch_retries")}
        self.teacher_settings = make_settings(None, **{**common, **batch_settings}, temperature=teacher_temperature,
                                              max_tokens=teacher_max_tokens, concurrency=teacher_concurrency)
        self.teacher_price = price_for(self.teacher_spec, prices)
        if max_cost is not None and self.teacher_price is None:
            raise JudgeConfigError(f"--max-cost is set but no price is known for the teacher {self.teacher_spec.model}; "
                                   f"pass --prices '{{\"{self.teacher_spec.model}\": {{\"input\": 2.5, \"output\": 10}}}}'")
        self.batch = self.teacher_settings.batch
        backend = make_backend(self.teacher_spec, self.teacher_settings)
        if self.batch:
            check_batch_mode(backend, self.judge.cache, "teacher")
        self.teacher = CachedCompleter(
            backend, self.judge.cache, TEACHER_NAMESPACE, concurrency=teacher_concurrency, budget=self.budget,
            # What the teacher pays per token (budget, cost); ``teacher_price`` stays the online price.
            price=self.teacher_price.batch if self.batch and self.teacher_price else self.teacher_price,
            key_extra={"prompt_version": PROMPT_VERSION}, temperature=teacher_temperature,
            max_tokens=teacher_max_tokens, typical_reply_tokens=TYPICAL_TEACHER_TOKENS)

    # -- generation
    async def _one(self, item: Item, g: int) -> tuple[Conversation, TextGrade | None]:
        conv = await two_turn(self.teacher, item, g)
        if not conv.ok:
            return conv, None
        grade = (await self.judge.agrade([(item, conv.answer)], progress=False))[0]
        return conv, grade

    async def _batch_rounds(self, jobs: list[tuple[Item, int]], progress: bool
                            ) -> dict[tuple[str, int], tuple[Conversation, TextGrade | None]]:
        """Batch mode: every turn 1 in one round of batches, then every turn 2, then every grading.
        Each round resumes on its own (cached replies, recorded batches); with ``batch_wait`` off a
        round not done raises ``BatchPending`` and the next run goes on from there."""
        convs = [(Conversation(it, g, two_turn_messages(it)), []) for it, g in jobs]
        for turn in (1, 2):
            live = [(c, replies) for c, replies in convs if c.error is None]
            prompts = [two_turn_messages(c.item, replies) for c, replies in live]
            got = await complete_batch(self.teacher, [(m, [self.teacher.key(m, c.index)])
                                                      for m, (c, _) in zip(prompts, live)], progress=progress)
            for (c, replies), [r] in zip(live, got):
                add_reply(c, replies, r, turn)
        done = [c for c, _ in convs if c.ok]
        grades = await self.judge.agrade([(c.item, c.answer) for c in done], progress=progress)
        by_conv = {id(c): g for c, g in zip(done, grades)}
        return {(c.item.id, c.index): (c, by_conv.get(id(c))) for c, _ in convs}

    def _judge_usage(self, grade: TextGrade) -> Usage:
        """Tokens of a text's gradings, cached or not (the card counts the whole dataset)."""
        u = Usage()
        if self.judge.cache is None:
            return u
        msgs = self.judge.messages(grade.item, grade.text)
        keys = [self.judge.completer.key(msgs, i) for i in range(len(grade.gradings))]
        for hit in self.judge.cache.get_many(keys).values():
            u.add(Usage(hit.input_tokens, hit.output_tokens))
        return u

    async def agenerate(self, plan: Plan, out: Path, *, progress: bool = True) -> dict:
        from tqdm.auto import tqdm

        plan.check()
        pools = {k: plan.items(k) for k in plan.ks}
        stats = {k: KStats() for k in plan.ks}
        for k, items in pools.items():
            stats[k].heldout_items = check_leakage(items, plan.allow_heldout)
            evals = eval_combinations(k)
            stats[k].eval_items = sum((frozenset(i.skills), i.topic) in evals for i in items)
        jobs = [(k, it, g) for k in plan.ks for it in pools[k] for g in range(plan.generations)]
        results: dict[tuple[str, int], tuple[Conversation, TextGrade | None]] = {}
        # (batch mode shows a bar per round of batches instead)
        bar = tqdm(total=len(jobs), desc="datagen", unit="conv", disable=not progress or self.batch, leave=True)
        kept = 0

        # Conversations in flight are bounded so each one finishes (teacher, then judge) soon after
        # it starts: otherwise every turn 1 would queue ahead of every turn 2, and rows would come last.
        slots = asyncio.Semaphore(2 * self.teacher.concurrency + self.judge.settings.concurrency)

        async def run(k: int, item: Item, g: int) -> None:
            nonlocal kept
            async with slots:
                conv, grade = await self._one(item, g)
            results[(item.id, g)] = (conv, grade)
            kept += grade is not None and isinstance(grade.score, GenerationScore) and grade.score.full_marks == 1
            bar.update(1)
            bar.set_postfix(full_marks=kept, refresh=False)

        try:
            if self.batch:
                results.update(await self._batch_rounds([(it, g) for _, it, g in jobs], progress))
            else:
                await asyncio.gather(*(run(*job) for job in jobs))
        finally:
            bar.close()
            if self.judge.cache is not None:
                self.judge.cache.flush()
            for backend in (self.teacher.backend, self.judge.backend):
                close = getattr(backend, "aclose", None)
                if close is not None:
                    await close()

        rows_of: dict[int, list[dict]] = {}
        for k in plan.ks:
            s, rows, seen = stats[k], [], set()
            for item in pools[k]:
                for g in range(plan.generations):
                    s.pool += 1
                    conv, grade = results[(item.id, g)]
                    s.teacher_usage.add(conv.usage)
                    if grade is None:
                        s.unscored[conv.error.reason if conv.error else "teacher"] += 1
                        continue
                    s.generated += 1
                    s.judge_usage.add(self._judge_usage(grade))
                    if isinstance(grade.score, Unscored):
                        s.unscored[f"judge {grade.score.reason}"] += 1
                        continue
                    s.judged += 1
                    if grade.score.full_marks != 1:
                        continue
                    s.full_marks += 1
                    key = (tuple(sorted(item.skills)), item.topic, answer_key(conv.answer))
                    if key in seen:
                        s.duplicates += 1
                        continue
                    seen.add(key)
                    check_leakage([item], plan.allow_heldout)  # belt and braces: never write a leak
                    rows.append(make_row(conv, grade, plan, str(self.teacher_spec)))
            s.kept = len(rows)
            rows_of[k] = rows
        if jobs and not any(s.judged for s in stats.values()):
            # Every teacher or judge call failed (a bad key, a wrong URL, the budget): no dataset, and
            # the files of an earlier run are left as they were.
            reasons = Counter()
            for s in stats.values():
                reasons.update(s.unscored)
            why = [c.error if c.error else g.score for c, g in results.values()]
            detail = next((w.detail for w in why if isinstance(w, Unscored) and w.detail), "")
            raise NothingJudged(f"none of the {len(jobs)} conversations was judged ("
                                + ", ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) + ")"
                                + (f"; e.g. {detail[:300]}" if detail else "") + f". Nothing was written to {out}",
                                self._summary(plan, stats, {k: f"d_skillmix_k{k}.jsonl" for k in plan.ks}))
        out.mkdir(parents=True, exist_ok=True)
        files = {}
        for k, rows in rows_of.items():
            path = out / f"d_skillmix_k{k}.jsonl"
            tmp = path.with_suffix(".jsonl.tmp")
            with tmp.open("w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            tmp.replace(path)
            files[k] = path.name
        summary = self._summary(plan, stats, files)
        summary["per_k"] = {**_earlier_per_k(out, plan.ks), **summary["per_k"]}
        (out / "datagen_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        (out / "README.md").write_text(dataset_card(summary), encoding="utf-8")
        return summary

    def generate(self, plan: Plan, out: str | Path, *, progress: bool = True) -> dict:
        return asyncio.run(self.agenerate(plan, Path(out), progress=progress))

    def _summary(self, plan: Plan, stats: dict[int, KStats], files: dict[int, str]) -> dict:
        def cost(price, usage: Usage) -> float | None:
            return None if price is None else round(price.cost(usage.input_tokens, usage.output_tokens), 4)

        per_k = {}
        for k, s in stats.items():
            d = s.to_dict()
            d.update(file=files[k], skill_split=plan.splits[k][0], topic_split=plan.splits[k][1],
                     teacher=str(self.teacher_spec), judge=self.judge.spec, prompt_version=PROMPT_VERSION,
                     seed=plan.seed, heldout_allowed=plan.allow_heldout, eval_items_excluded=plan.exclude_eval,
                     teacher_cost=cost(self.teacher.price, s.teacher_usage),
                     judge_cost=cost(self.judge.completer.price, s.judge_usage))
            per_k[str(k)] = d
        t, j = self.teacher.stats, self.judge.completer.stats
        return {
            "teacher": str(self.teacher_spec), "judge": self.judge.spec, "prompt_version": PROMPT_VERSION,
            "seed": plan.seed, "generations_per_item": plan.generations, "heldout_allowed": plan.allow_heldout,
            "eval_items_excluded": plan.exclude_eval,
            "teacher_settings": {"temperature": self.teacher.temperature, "max_tokens": self.teacher.max_tokens},
            "judge_settings": {"n_gradings": self.judge.settings.n_gradings, **self.judge.settings.reply_settings()},
            "per_k": per_k,
            "this_run": {
                "teacher": {"calls": t.calls, "cached": t.cached, "failed": dict(t.failed), "not_sent": t.not_sent,
                            "budget_skipped": t.budget_skipped, "usage": t.usage.to_dict(),
                            "cost": None if t.cost is None else round(t.cost, 4)},
                "judge": self.judge.stats.to_dict() | {"cost": None if j.cost is None else round(j.cost, 4)},
                "max_cost": self.budget.max_cost if self.budget else None,
            },
        }

    # -- dry run
    def estimate(self, plan: Plan) -> dict:
        """Calls, tokens and cost a run would need, cached work excluded; no call is made."""
        return estimate(self, plan)


def _earlier_per_k(out: Path, ks: Sequence[int]) -> dict:
    """Per-k entries of an earlier run into the same folder (another k), so the card covers every file."""
    try:
        earlier = json.loads((out / "datagen_summary.json").read_text(encoding="utf-8"))["per_k"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {k: dict(d, from_earlier_run=True) for k, d in earlier.items()
            if int(k) not in ks and (out / d.get("file", "")).is_file()}
