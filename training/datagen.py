"""``skillmix-datagen``: the paper's training data, D_SKILL-MIX(k).

A teacher holds the two-turn SKILL-MIX conversation for every item of a seeded pool, the judge
grades the final answer (3 gradings, majority vote, programmatic rules), and only full-mark
conversations are kept::

    skillmix-datagen --teacher openai:gpt-4o --judge openai:gpt-4o --k 1,2,3 --pool 5000,10000,10000 --out data/
    skillmix-datagen --teacher hf:/ckpt/teacher --judge openai:gpt-4o --k 2 --pool 200 --out data/ --dry-run
    skillmix-datagen audit data/d_skillmix_k2.jsonl      # held-out skills/topics present? exit 1 if so

Pools follow the paper: k=1 over all 101 skills and the train topics, k>=2 over train skills and
train topics. Held-out topics, and held-out skills for k>=2, are refused unless --allow-heldout
(then the dataset card says so). The benchmark's own lm-eval items are left out of the pools unless
--include-eval-items (recorded on the card). Every teacher reply and every grading goes to the SQLite reply
cache the moment it arrives, so a killed run re-run repeats no finished call.

Writes DIR/d_skillmix_k{k}.jsonl (chat ``messages`` plus metadata and grades), DIR/README.md
(the dataset card) and DIR/datagen_summary.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import math
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from skillmix_tasks.catalog import Catalog, default_catalog
from skillmix_tasks.outputs import check_output_dir
from skillmix_tasks.prompts import PROMPT_VERSION, extract_answer, grader_prompt, student_turn2, two_turn_messages
from skillmix_tasks.protocol import (DEFAULT_N, DEFAULT_SEED, GENERATION_MAX_TOKENS, GENERATION_TEMPERATURE, MAX_K,
                                     SPLITS)
from skillmix_tasks.sampling import Item, draw_items, sample_items
from skillmix_tasks.scoring import GenerationScore, Unscored

from skillmix.grading.backends import Usage, make_backend
from skillmix.grading.batch import BatchPending, complete_batch
from skillmix.grading.client import CachedCompleter, CallResult
from skillmix.grading.cost import Budget, estimate_tokens, message_tokens, price_for
from skillmix.grading.estimate import CallEstimate
from skillmix.grading.judge import Judge, TextGrade, check_batch_mode
from skillmix.grading.specs import JudgeConfigError, choose_spec, make_settings, parse_spec

log = logging.getLogger("skillmix.training.datagen")

TEACHER_NAMESPACE = "skillmix-teacher"
DEFAULT_POOL = {1: 5000, 2: 10000, 3: 10000}  # the paper's pool sizes; other k default to 10000
TEACHER_TEMPERATURE = GENERATION_TEMPERATURE  # the paper's generation settings
TEACHER_MAX_TOKENS = GENERATION_MAX_TOKENS
TYPICAL_TEACHER_TOKENS = 250  # a few lines of text plus an explanation, for estimates only


# ----------------------------------------------------------------------------- the pool
def default_splits(k: int) -> tuple[str, str]:
    """(skill split, topic split) of the paper's recipe: k=1 all skills, k>=2 train skills; train topics."""
    return ("all" if k == 1 else "train"), "train"


def _pool_rng(k: int, skills_split: str, topics_split: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"skillmix-datagen|skills={skills_split}|topics={topics_split}|k={k}|seed={seed}"
                            .encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def eval_combinations(k: int, catalog: Catalog | None = None) -> set[tuple[frozenset[str], str]]:
    """The (skill set, topic) pairs of the benchmark's own lm-eval items at this k (all splits,
    the default seed and size), so a training pool can leave them out."""
    catalog = catalog or default_catalog()
    out: set[tuple[frozenset[str], str]] = set()
    for split in SPLITS:
        if k <= min(MAX_K, len(catalog.skills_in(split))):
            out.update((frozenset(i.skills), i.topic) for i in sample_items(split, k, DEFAULT_N, DEFAULT_SEED, catalog))
    return out


def _in_space(keys: Iterable[tuple[frozenset[str], str]], k: int, skills: Iterable[str], topics: Iterable[str]):
    skills, topics = set(skills), set(topics)
    return {key for key in keys if key[1] in topics and len(key[0]) == k and key[0] <= skills}


def pool_capacity(k: int, skills_split: str, topics_split: str, *, exclude: Iterable[tuple[frozenset[str], str]] = (),
                  catalog: Catalog | None = None) -> int:
    """The number of distinct (k skills, topic) items a pool can draw, ``exclude`` left out."""
    catalog = catalog or default_catalog()
    skills = [s.name for s in catalog.skills_in(skills_split)]
    topics = [t.name for t in catalog.topics_in(topics_split)]
    return math.comb(len(skills), k) * len(topics) - len(_in_space(exclude, k, skills, topics))


def sample_pool(k: int, n: int, *, skills_split: str, topics_split: str, seed: int = DEFAULT_SEED,
                exclude: Iterable[tuple[frozenset[str], str]] = (), catalog: Catalog | None = None) -> list[Item]:
    """``n`` distinct (k skills, topic) items, skills from ``skills_split`` and topics from
    ``topics_split``, ids ``d-k{k}-{i:05d}``. Same approach as the benchmark's sampler
    (SHA-256-seeded Mersenne Twister over sorted names, rejection of repeats), so a smaller
    pool is a prefix of a larger one."""
    catalog = catalog or default_catalog()
    skills = sorted(s.name for s in catalog.skills_in(skills_split))
    topics = sorted(t.name for t in catalog.topics_in(topics_split))
    if not isinstance(k, int) or k < 1 or k > len(skills):
        raise ValueError(f"k={k!r} is out of range for {skills_split} skills: expected 1..{len(skills)}")
    excluded = _in_space(exclude, k, skills, topics)
    total = math.comb(len(skills), k) * len(topics) - len(excluded)
    if n < 0 or n > total:
        raise ValueError(f"pool of {n} for k={k} is larger than the {total} distinct (skill set, topic) "
                         f"combinations of {skills_split} skills x {topics_split} topics"
                         + (f" (after leaving out {len(excluded)} evaluation items)" if excluded else ""))
    return draw_items(_pool_rng(k, skills_split, topics_split, seed), skills, topics, k, n,
                      lambda i: f"d-k{k}-{i:05d}", "datagen", exclude=excluded)


# ----------------------------------------------------------------------------- leakage guard
class LeakageError(ValueError):
    """A training pool would contain held-out content and the user did not allow it."""


class NothingJudged(RuntimeError):
    """No conversation of the run reached a judge's score: the run made no data, and says why
    (``summary``: what it did, calls and reasons, as a successful run reports it)."""

    def __init__(self, message: str, summary: dict):
        super().__init__(message)
        self.summary = summary


def leaks(item: Item, catalog: Catalog | None = None) -> list[str]:
    """What of the item is held out: any held-out topic; held-out skills when k >= 2."""
    catalog = catalog or default_catalog()
    found = []
    if catalog.topic(item.topic).split == "heldout":
        found.append(f"held-out topic {item.topic!r}")
    if item.k >= 2:
        found += [f"held-out skill {s!r}" for s in item.skills if catalog.skill(s).split == "heldout"]
    return found


def check_leakage(items: Iterable[Item], allow: bool = False, catalog: Catalog | None = None) -> int:
    """The number of items with held-out content; raises :class:`LeakageError` unless ``allow``."""
    bad = [(it, found) for it in items if (found := leaks(it, catalog))]
    if bad and not allow:
        it, found = bad[0]
        raise LeakageError(f"{len(bad)} pool item(s) contain held-out content (e.g. {it.id}: {', '.join(found)}); "
                           f"a training set must not contain held-out topics, nor held-out skills for k>=2. "
                           f"Pass --allow-heldout to do it anyway (the dataset card will say so).")
    return len(bad)


# ----------------------------------------------------------------------------- one conversation
@dataclass
class Conversation:
    """A two-turn SKILL-MIX conversation: (turn 1, reply 1, turn 2, reply 2) and the graded answer."""

    item: Item
    index: int  # which generation of the item
    messages: list[dict]  # as far as it got: 4 messages when ok
    answer: str = ""  # extract_answer of the last reply
    error: Unscored | None = None  # why it stopped (a failed call, budget), None when ok
    usage: Usage = field(default_factory=Usage)  # both calls, cached or not
    from_cache: list[bool] = field(default_factory=list)
    finish_reasons: list[str | None] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


async def two_turn(completer: CachedCompleter, item: Item, index: int = 0, *,
                   catalog: Catalog | None = None) -> Conversation:
    """The student protocol with ``completer`` as the model: turn 1, its reply, turn 2 with the
    history, its reply. Each reply is cached under (spec, settings, prompt version, messages, index)."""
    conv, replies = Conversation(item, index, two_turn_messages(item, [], catalog)), []
    for turn in (1, 2):
        r = await completer.complete(two_turn_messages(item, replies, catalog), index)
        if not add_reply(conv, replies, r, turn, catalog):
            break
    return conv


def add_reply(conv: Conversation, replies: list[str], r: CallResult, turn: int,
              catalog: Catalog | None = None) -> bool:
    """Take the teacher's reply to ``turn`` into the conversation; False (and ``conv.error``) if
    the conversation stops here. Shared by the online and the batch rounds."""
    if r.text is None:
        err = r.error or Unscored("no reply")
        conv.error = Unscored(f"teacher {err.reason}", f"turn {turn}: {err.detail}")
        return False
    conv.usage.add(r.usage)
    conv.from_cache.append(r.from_cache)
    conv.finish_reasons.append(r.finish_reason)
    replies.append(r.text)
    conv.messages = two_turn_messages(conv.item, replies, catalog)
    if turn == 2:
        conv.answer = extract_answer(conv.messages[-1]["content"])
        if not conv.answer:
            conv.error = Unscored("teacher no answer", "the last reply has no text to grade")
            return False
    return True


# ----------------------------------------------------------------------------- the run
@dataclass
class Plan:
    """What to generate: per k, the pool's size and where its skills and topics come from."""

    ks: list[int]
    pools: dict[int, int]
    splits: dict[int, tuple[str, str]]  # k -> (skill split, topic split)
    generations: int = 1
    seed: int = DEFAULT_SEED
    allow_heldout: bool = False
    # The benchmark's own lm-eval items are left out (training on them would inflate its train-split
    # scores); --include-eval-items puts them back, and the dataset card says so.
    exclude_eval: bool = True

    def check(self) -> None:
        """Refuse held-out splits unless allowed, before any sampling or call (the items are
        checked again one by one, and once more as each row is written)."""
        for k in self.ks:
            skills_split, topics_split = self.splits[k]
            if not self.allow_heldout and (topics_split != "train" or (k >= 2 and skills_split != "train")):
                what = f"held-out topic(s) (--topics {topics_split})" if topics_split != "train" else \
                    f"held-out skill(s) at k={k} (--skills {skills_split})"
                raise LeakageError(f"the k={k} pool would draw {what}; a training set must not contain held-out "
                                   f"topics, nor held-out skills for k>=2. Pass --allow-heldout to do it anyway "
                                   f"(the dataset card will say so).")

    def excluded(self, k: int, catalog: Catalog | None = None) -> set[tuple[frozenset[str], str]]:
        return eval_combinations(k, catalog) if self.exclude_eval else set()

    def capacity(self, k: int, catalog: Catalog | None = None) -> int:
        """How many distinct items the k pool can hold (eval items left out where they are)."""
        return pool_capacity(k, *self.splits[k], exclude=self.excluded(k, catalog), catalog=catalog)

    def items(self, k: int, catalog: Catalog | None = None) -> list[Item]:
        skills_split, topics_split = self.splits[k]
        try:
            return sample_pool(k, self.pools[k], skills_split=skills_split, topics_split=topics_split,
                               seed=self.seed, exclude=self.excluded(k, catalog), catalog=catalog)
        except ValueError as e:
            if not self.exclude_eval:
                raise
            raise ValueError(f"{e}; pass a smaller --pool, or --include-eval-items to draw the benchmark's own "
                             f"items too (the dataset card will say so)") from None



def _norm_answer(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _judge_points(g) -> list[int | None] | None:
    return None if isinstance(g, Unscored) else [None if p is None else int(p) for p in g]


def make_row(conv: Conversation, grade: TextGrade, plan: Plan, teacher: str) -> dict:
    """One dataset line: chat messages (what the trainer reads) plus everything behind the grade."""
    item, score = conv.item, grade.score
    assert isinstance(score, GenerationScore)
    skills_split, topics_split = plan.splits[item.k]
    return {
        "id": item.id if plan.generations == 1 else f"{item.id}-g{conv.index}",
        "item_id": item.id, "generation": conv.index, "k": item.k, "skills": list(item.skills),
        "topic": item.topic, "messages": [{"role": m["role"], "content": m["content"]} for m in conv.messages],
        "answer": conv.answer,
        "grades": {
            "criteria": grade.to_dict()["criteria"], "points": [int(p) for p in score.points],
            "full_marks": float(score.full_marks), "all_skills": float(score.all_skills),
            "skills_fraction": float(score.skills_fraction),
            # A judge's length point is None where it gave no length row (code decides that point).
            "voted": _judge_points(grade.voted),
            # Arrow needs one type per column: points or null, and the reason apart.
            "gradings": [_judge_points(g) for g in grade.gradings],
            "unscored_gradings": [g.reason if isinstance(g, Unscored) else None for g in grade.gradings],
            "replies": grade.replies,
        },
        "teacher": teacher, "judge": grade.judge, "prompt_version": PROMPT_VERSION,
        "skill_split": skills_split, "topic_split": topics_split, "seed": plan.seed,
        "heldout_allowed": plan.allow_heldout, "eval_items_excluded": plan.exclude_eval,
    }


@dataclass
class KStats:
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
                    key = (tuple(sorted(item.skills)), item.topic, _norm_answer(conv.answer))
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
        cache = self.judge.cache
        reply_tokens = min(self.teacher.max_tokens, self.teacher.typical_reply_tokens)
        placeholder = "x" * (4 * reply_tokens // 3)  # an answer of typical length, for answers not yet written
        per_k: dict[str, dict] = {}
        plan.check()
        for k in plan.ks:
            items = plan.items(k)
            n_heldout = check_leakage(items, plan.allow_heldout)
            teacher, judge = CallEstimate(), CallEstimate()
            for item in items:
                for g in range(plan.generations):
                    m1 = two_turn_messages(item)
                    hit1 = cache.get(self.teacher.key(m1, g)) if cache else None
                    answer = None
                    if hit1 is None:  # both turns to do; turn 2's prompt holds a typical turn-1 reply
                        self.teacher.estimate(teacher, m1, [g], hits={})
                        teacher.add(message_tokens(m1) + reply_tokens + estimate_tokens(student_turn2(item)),
                                    reply_tokens=reply_tokens)
                    else:
                        m2 = two_turn_messages(item, [hit1.reply])
                        hit2 = cache.get(self.teacher.key(m2, g)) if cache else None
                        answer = extract_answer(hit2.reply) if hit2 else None
                        self.teacher.estimate(teacher, m2, [g], hits={self.teacher.key(m2, g): hit2} if hit2 else {})
                    judge += self.judge.call_estimate([(item, answer if answer is not None else placeholder)],
                                                      lookup=answer is not None)
            per_k[str(k)] = {"conversations": len(items) * plan.generations, "heldout_items": n_heldout,
                             **teacher.to_dict(self.teacher_price, "teacher_"),
                             **judge.to_dict(self.judge.price, "judge_")}

        def total(field: str) -> float | None:
            costs = [d[f"{who}_{field}"] for d in per_k.values() for who in ("teacher", "judge")]
            return None if None in costs else round(sum(costs), 4)

        return {"dry_run": True, "mode": "batch" if self.batch else "online", "teacher": str(self.teacher_spec),
                "judge": self.judge.spec, "per_k": per_k, "total_cost_est": total("cost_est"),
                "total_batch_cost_est": total("batch_cost_est"), "max_cost": self.budget.max_cost if self.budget else None}


def _earlier_per_k(out: Path, ks: Sequence[int]) -> dict:
    """Per-k entries of an earlier run into the same folder (another k), so the card covers every file."""
    try:
        earlier = json.loads((out / "datagen_summary.json").read_text(encoding="utf-8"))["per_k"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {k: dict(d, from_earlier_run=True) for k, d in earlier.items()
            if int(k) not in ks and (out / d.get("file", "")).is_file()}


# ----------------------------------------------------------------------------- the dataset card
def dataset_card(summary: dict) -> str:
    per_k = summary["per_k"]
    configs = "\n".join(f"- config_name: k{k}\n  data_files: {d['file']}" for k, d in per_k.items())
    lines = [
        "---", "configs:", configs, "---", "",
        "# D_SKILL-MIX: synthetic SKILL-MIX training conversations", "",
        "Two-turn conversations (turn 1, answer 1, turn 2, answer 2) written by a teacher model and kept only "
        "when the judge gave the final answer full marks (all k+3 points after majority vote of the gradings "
        "and the programmatic rules: sentence count, no skill named). Recipe of Zhao et al., \"Can Models "
        "Learn Skill Composition from Examples?\" (NeurIPS 2024); made with `skillmix-datagen`.", "",
        f"- teacher: `{summary['teacher']}` (temperature {summary['teacher_settings']['temperature']}, "
        f"max tokens {summary['teacher_settings']['max_tokens']})",
        f"- judge: `{summary['judge']}` ({summary['judge_settings']['n_gradings']} gradings, majority vote)",
        f"- prompt version: `{summary['prompt_version']}`; seed {summary['seed']}; "
        f"{summary['generations_per_item']} generation(s) per item",
    ]
    included = {k: d for k, d in per_k.items() if not d.get("eval_items_excluded", True)}
    if included:
        n = sum(d.get("eval_items", 0) for d in included.values())
        lines.append(f"- **benchmark evaluation items were allowed (--include-eval-items) at k={', '.join(included)}: "
                     f"{n} pool item(s) are the benchmark's own lm-eval items; scores of a model trained on this "
                     f"data on those tasks are not on unseen combinations.**")
    else:
        lines.append("- benchmark evaluation items left out of the pools: yes (none of the benchmark's own "
                     "lm-eval items is here)")
    earlier = [k for k, d in per_k.items() if d.get("from_earlier_run")]
    if earlier:
        lines.append(f"- k={', '.join(earlier)}: from an earlier run into this folder (teacher "
                     f"{', '.join(sorted({'`' + per_k[k]['teacher'] + '`' for k in earlier}))}); its counts are that run's")
    if any(d.get("heldout_allowed") for d in per_k.values()):
        n = sum(d["heldout_items"] for d in per_k.values())
        lines.append(f"- **HELD-OUT CONTENT WAS ALLOWED (--allow-heldout): {n} pool item(s) use held-out topics or "
                     f"held-out skills at k>=2. Do not evaluate a model trained on this data on SKILL-MIX held-out "
                     f"splits.**")
    else:
        lines.append("- held-out content: none (no held-out topic; no held-out skill at k>=2)")
    lines += ["", "| k | file | skills x topics | pool | judged | full marks | kept | duplicates | "
              "keep ratio (judged) | keep ratio (pool) | unscored by reason |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for k, d in per_k.items():
        unscored = ", ".join(f"{r}: {n}" for r, n in d["unscored_by_reason"].items()) or "none"
        ratio = lambda x: "n/a" if x is None else f"{x:.1%}"  # noqa: E731
        lines.append(f"| {k} | `{d['file']}` | {d['skill_split']} x {d['topic_split']} | {d['pool']} | {d['judged']} | "
                     f"{d['full_marks']} | {d['kept']} | {d['duplicates_dropped']} | {ratio(d['keep_ratio_of_judged'])} | "
                     f"{ratio(d['keep_ratio_of_pool'])} | {unscored} |")
    lines += ["", "Tokens and cost of the whole dataset (cached replies included; cost from list prices, "
              "n/a where unknown):", "",
              "| k | teacher in | teacher out | teacher cost | judge in | judge out | judge cost |",
              "|---|---|---|---|---|---|---|"]
    money = lambda x: "n/a" if x is None else f"${x:.2f}"  # noqa: E731
    for k, d in per_k.items():
        t, j = d["teacher_tokens"], d["judge_tokens"]
        lines.append(f"| {k} | {t['input_tokens']} | {t['output_tokens']} | {money(d['teacher_cost'])} | "
                     f"{j['input_tokens']} | {j['output_tokens']} | {money(d['judge_cost'])} |")
    run = summary["this_run"]
    lines += ["", f"This run: {run['teacher']['calls']} teacher calls ({run['teacher']['cached']} from cache), "
              f"{run['judge'].get('calls', 0)} judge calls ({run['judge'].get('cached', 0)} from cache), "
              f"cost {money(run['teacher']['cost'])} + {money(run['judge']['cost'])}.", "",
              "Each line: `id`, `item_id`, `generation`, `k`, `skills`, `topic`, `messages` (user, assistant, "
              "user, assistant), `answer` (the graded text), `grades` (criteria, points, per-grading points, "
              "judge replies), `teacher`, `judge`, `prompt_version`, `skill_split`, `topic_split`, `seed`, "
              "`heldout_allowed`, `eval_items_excluded`.", "",
              "```python", "import datasets",
              f"ds = datasets.load_dataset(\"json\", data_files=\"{next(iter(per_k.values()))['file']}\", split=\"train\")",
              "```", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI
def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, not {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skillmix-datagen", description=__doc__.split("\n\n")[0],
                                epilog="Audit a dataset: skillmix-datagen audit FILE [FILE ...] (see --help there).",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", required=True, help="teacher spec, as for judges: openai:<model>, anthropic:<model>, "
                   "openai-compatible:<model>@<url>, hf:<checkpoint dir>")
    p.add_argument("--judge", help="judge spec (default: --config's judge, then $SKILLMIX_JUDGE)")
    p.add_argument("--config", help="YAML judge config (judge: <spec> plus judge settings)")
    p.add_argument("--k", type=_int_list, default=[1, 2, 3], help="comma-separated k values (default 1,2,3)")
    p.add_argument("--pool", type=_int_list, help="pool size per k, comma-separated, or one for all "
                   "(default 5000 for k=1, 10000 otherwise)")
    p.add_argument("--out", help="output folder")
    p.add_argument("--k1-skills", choices=SPLITS, default="all", help="skills of the k=1 pool (default all)")
    p.add_argument("--skills", choices=SPLITS, default="train", help="skills of the k>=2 pools (default train)")
    p.add_argument("--topics", choices=SPLITS, default="train", help="topics of every pool (default train)")
    p.add_argument("--allow-heldout", action="store_true",
                   help="allow held-out topics, and held-out skills at k>=2 (the dataset card says so)")
    p.add_argument("--include-eval-items", action="store_true",
                   help="also draw the benchmark's own lm-eval items (its 100 per split and k); by default they "
                        "are left out, so skillmix_train_k* scores combinations the training data never had "
                        "(the k=1 default pool then holds 4906, not 5000). The dataset card records the choice")
    p.add_argument("--generations", type=int, default=1, help="teacher conversations per item (default 1)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--temperature", type=float, default=TEACHER_TEMPERATURE, help=f"teacher temperature (default {TEACHER_TEMPERATURE})")
    p.add_argument("--max-tokens", type=int, default=TEACHER_MAX_TOKENS, help=f"teacher max tokens per turn (default {TEACHER_MAX_TOKENS})")
    p.add_argument("--concurrency", type=int, default=16, help="teacher calls in flight (default 16)")
    p.add_argument("--judge-concurrency", type=int, help="judge calls in flight (default: the judge's, 32)")
    p.add_argument("--n-gradings", type=int, help="gradings per answer (default 3)")
    p.add_argument("--cache", help="SQLite reply cache for teacher and judge ('off': none, no resume; "
                   "default $SKILLMIX_CACHE or ~/.cache/skillmix/judge.sqlite)")
    p.add_argument("--max-cost", type=float, help="USD for this run, teacher and judge together; "
                   "calls past it are not made (their conversations are counted unscored: budget)")
    p.add_argument("--prices", type=json.loads, help='JSON price table, e.g. \'{"my-model": {"input": 1, "output": 2}}\'')
    p.add_argument("--timeout", type=float)
    p.add_argument("--max-retries", type=int)
    p.add_argument("--batch-size", type=int, help="hf: prompts per generate() call")
    p.add_argument("--batch", action="store_true",
                   help="teacher and judge through the providers' Batch APIs (openai:, anthropic:): half the price, "
                        "in three rounds (turn 1, turn 2, gradings), each resumable; results within 24 h a round")
    p.add_argument("--no-wait", action="store_true",
                   help="with --batch: submit the next round and exit; run the same command again to go on")
    p.add_argument("--poll-interval", type=float, metavar="SECONDS", help="with --batch: seconds between polls (60)")
    p.add_argument("--dry-run", action="store_true", help="estimate calls, tokens and cost (online and batch); "
                   "call nothing")
    p.add_argument("--no-progress", action="store_true")
    return p


def plan_from_args(args: argparse.Namespace) -> Plan:
    ks = args.k
    if not ks or len(set(ks)) != len(ks) or any(k < 1 for k in ks):
        raise ValueError(f"--k must list distinct positive integers, not {ks}")
    pools = args.pool or [DEFAULT_POOL.get(k, 10000) for k in ks]
    if len(pools) == 1:
        pools = pools * len(ks)
    if len(pools) != len(ks):
        raise ValueError(f"--pool has {len(pools)} sizes for {len(ks)} k values")
    if args.generations < 1:
        raise ValueError("--generations must be >= 1")
    splits = {k: (args.k1_skills if k == 1 else args.skills, args.topics) for k in ks}
    plan = Plan(ks, dict(zip(ks, pools)), splits, args.generations, args.seed, args.allow_heldout,
                not args.include_eval_items)
    if not args.pool:  # the paper's sizes, as many as the space holds once the eval items are out
        for k in ks:
            room = plan.capacity(k)
            if plan.pools[k] > room:
                log.warning("k=%d: the default pool of %d is larger than the %d combinations left once the "
                            "benchmark's own items are out; drawing all %d", k, plan.pools[k], room, room)
                plan.pools[k] = room
    return plan


def run(args: argparse.Namespace) -> dict:
    from skillmix.grading.specs import load_config_file

    config = load_config_file(args.config) if args.config else {}
    judge_config = {**config, **{k: v for k, v in {"n_gradings": args.n_gradings,
                                                    "concurrency": args.judge_concurrency}.items() if v is not None}}
    plan = plan_from_args(args)
    if not args.dry_run and not args.out:
        raise ValueError("--out is required (or use --dry-run)")
    dg = Datagen(args.teacher, args.judge or config.get("judge"), cache=args.cache, max_cost=args.max_cost,
                 prices=args.prices, teacher_temperature=args.temperature, teacher_max_tokens=args.max_tokens,
                 teacher_concurrency=args.concurrency, judge_config=judge_config, timeout=args.timeout,
                 max_retries=args.max_retries, batch_size=args.batch_size, batch=True if args.batch else None,
                 batch_wait=False if args.no_wait else None, batch_poll_interval=args.poll_interval)
    if args.no_wait and not dg.batch:
        raise ValueError("--no-wait needs --batch")
    if args.dry_run:
        return dg.estimate(plan)
    # Before the first teacher call: a run that cannot write its dataset has paid for nothing.
    files = [f"d_skillmix_k{k}{ext}" for k in plan.ks for ext in (".jsonl", ".jsonl.tmp")]
    out = check_output_dir(args.out, files=[*files, "README.md", "datagen_summary.json"],
                           inputs=[args.config, dg.judge.settings.cache_path()])
    try:
        return dg.generate(plan, out, progress=not args.no_progress)
    except BatchPending as e:  # --no-wait: this round is submitted; the next run goes on from it
        return {"batch_pending": {"batches": e.batch_ids, "requests": e.requests},
                "note": "a round of batches is submitted and not done; run the same command again to go on"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "audit":
        from .audit import main as audit_main

        return audit_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = run(args)
    except (JudgeConfigError, LeakageError, ValueError, KeyError) as e:
        print(f"skillmix-datagen: error: {e}", file=sys.stderr)
        return 2
    except NothingJudged as e:
        print(json.dumps(e.summary, indent=2))
        print(f"skillmix-datagen: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
