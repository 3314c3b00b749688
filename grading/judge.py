"""The SKILL-MIX judge: (item, text) pairs in, graded texts out.

Each text gets ``n_gradings`` independent gradings, asked for through the client layer
(``client.CachedCompleter``: concurrent, cached the moment each reply arrives, budgeted).
Replies are scored on read by the one scoring path, ``skillmix_tasks.scoring.score_text`` (parse,
vote per criterion, programmatic rules, metrics). A call that fails (after the SDK's retries), is
refused, comes back empty, or cannot be parsed makes its grading unscored with a reason; it is
never turned into points. A blank answer is not sent: it scores 0 ("empty answer").
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from skillmix_tasks.prompts import PROMPT_VERSION, criteria_for, grader_prompt
from skillmix_tasks.sampling import Item
from skillmix_tasks.scoring import SCORING_VERSION, GenerationScore, Grading, TextScore, Unscored, is_blank, score_text

from .backends import Backend, make_backend
from .batch import complete_batch, provider_for
from .cache import ReplyCache
from .client import CachedCompleter, CallResult
from .cost import Budget, price_for
from .estimate import CallEstimate
from .specs import JudgeConfigError, JudgeSettings, JudgeSpec, choose_spec, make_settings

JUDGE_NAMESPACE = "skillmix-grader"


@dataclass
class TextGrade:
    """One graded text: the verdict with everything behind it (Inspect-style: a score explains itself)."""

    item: Item
    text: str
    score: GenerationScore | Unscored
    replies: list[str | None]
    gradings: list[Grading]  # per grading: points in criteria_for order, or Unscored
    voted: Grading  # the judge's majority-voted points, before the programmatic rules
    from_cache: list[bool]
    judge: str = ""

    @property
    def scored(self) -> bool:
        return not isinstance(self.score, Unscored)

    def to_dict(self) -> dict:
        def grading(g: Grading) -> Any:
            return list(g) if not isinstance(g, Unscored) else {"unscored": g.reason, "detail": g.detail}

        out: dict[str, Any] = {
            "id": self.item.id, "split": self.item.split, "k": self.item.k, "skills": list(self.item.skills),
            "topic": self.item.topic, "text": self.text, "judge": self.judge, "prompt_version": PROMPT_VERSION,
            "scoring_version": SCORING_VERSION,
            "criteria": [c.label for c in criteria_for(self.item)],
        }
        if isinstance(self.score, Unscored):
            out.update(status="unscored", reason=self.score.reason, detail=self.score.detail)
        else:
            out.update(status="scored", points=list(self.score.points), full_marks=self.score.full_marks,
                       all_skills=self.score.all_skills, skills_fraction=self.score.skills_fraction)
            if self.score.reason:
                out["reason"] = self.score.reason
        out.update(voted=grading(self.voted), gradings=[grading(g) for g in self.gradings],
                   replies=self.replies, from_cache=self.from_cache)
        return out


@dataclass
class JudgeStats:
    texts: int = 0
    scored: int = 0
    unscored: Counter = field(default_factory=Counter)  # texts by reason
    gradings: int = 0
    unscored_gradings: Counter = field(default_factory=Counter)  # gradings by reason (failed + unparsable)
    seconds: float = 0.0

    def to_dict(self, completer: CachedCompleter | None = None, backend: Backend | None = None) -> dict:
        out: dict[str, Any] = {
            "texts": self.texts, "scored": self.scored, "unscored": dict(self.unscored),
            "gradings": self.gradings, "unscored_gradings": dict(self.unscored_gradings),
            "seconds": round(self.seconds, 3),
        }
        if completer is not None:
            s = completer.stats
            out.update(calls=s.calls, judged=s.judged, cached=s.cached, failed_calls=dict(s.failed),
                       budget_skipped=s.budget_skipped, batches=s.batches, batched=s.batched,
                       batch_retried=s.batch_retried, not_sent=s.not_sent, usage=s.usage.to_dict(),
                       cost=None if s.cost is None else round(s.cost, 6))
        if backend is not None:
            c = backend.counters
            out.update(http_attempts=c.attempts, retries=c.retries, rate_limited_429=c.rate_limited,
                       server_errors_5xx=c.server_errors)
        return out


class _BoundStats:
    """``judge.stats``: the judge's counters with ``to_dict()`` covering calls and HTTP too."""

    def __init__(self, judge: "Judge"):
        self._judge = judge

    def __getattr__(self, name: str) -> Any:
        return getattr(self._judge._stats, name)

    def to_dict(self) -> dict:
        return self._judge._stats.to_dict(self._judge.completer, self._judge.backend)


class Judge:
    """A configured SKILL-MIX judge. Build one with :func:`resolve_judge`."""

    def __init__(self, spec: JudgeSpec, settings: JudgeSettings, backend: Backend | None = None,
                 cache: ReplyCache | None | bool = True, budget: Budget | None = None):
        self.judge_spec = spec
        self.spec = str(spec)
        self.settings = settings
        self.backend = backend or make_backend(spec, settings)
        if cache is True:
            path = settings.cache_path()
            cache = ReplyCache(path) if path else None
        self.cache: ReplyCache | None = cache if isinstance(cache, ReplyCache) else None
        self.price = price_for(spec, settings.prices)
        if settings.max_cost is not None and self.price is None:
            raise JudgeConfigError(f"max_cost is set but no price is known for {spec.model}; pass prices "
                                   f"(e.g. prices: {{input: 2.5, output: 10.0}} in USD per million tokens)")
        self.budget = budget or (Budget(settings.max_cost) if settings.max_cost is not None else None)
        if settings.batch:
            check_batch_mode(self.backend, self.cache, "judge")
        self.completer = CachedCompleter(
            self.backend, self.cache, JUDGE_NAMESPACE, concurrency=settings.concurrency, budget=self.budget,
            # What this judge pays per token (the budget and cost stats); ``price`` stays the online one.
            price=self.price.batch if settings.batch and self.price else self.price, key_extra={"prompt_version": PROMPT_VERSION},
            temperature=settings.temperature, max_tokens=settings.max_tokens,
            choices_per_call=settings.choices_for(spec))
        self._stats = JudgeStats()
        self.stats = _BoundStats(self)

    def __repr__(self) -> str:
        return f"Judge({self.spec!r}, n_gradings={self.settings.n_gradings})"


    def messages(self, item: Item, text: str) -> list[dict]:
        system = [{"role": "system", "content": self.settings.system_prompt}] if self.settings.system_prompt else []
        return system + [{"role": "user", "content": grader_prompt(item, text)}]

    def _plan(self, pairs: Sequence[tuple[Item, str]]) -> tuple[list[list[dict]], list[list[str]]]:
        """Each text's messages and cache keys; a blank text has none (it is never sent)."""
        msgs = [self.messages(item, text) for item, text in pairs]
        keys = [[] if is_blank(text) else [self.completer.key(m, i) for i in range(self.settings.n_gradings)]
                for m, (_, text) in zip(msgs, pairs)]
        return msgs, keys

    async def agrade(self, pairs: Sequence[tuple[Item, str]], *, progress: bool = True) -> list[TextGrade]:
        from tqdm.auto import tqdm

        start = time.monotonic()
        pairs = [(item, text if isinstance(text, str) else str(text)) for item, text in pairs]
        msgs, keys = self._plan(pairs)
        hits = self.cache.get_many(k for row in keys for k in row) if self.cache is not None else {}
        results: list[list[CallResult | None]] = [[None] * len(row) for row in keys]
        todo = []
        for t, row in enumerate(keys):
            for g, key in enumerate(row):
                hit = hits.get(key)
                if hit is not None:
                    results[t][g] = self.completer.cached_result(hit)
                else:
                    todo.append((t, g))
        bar = tqdm(total=len(todo), desc=f"judge {self.spec}", unit="call",
                   disable=not progress or not todo or self.settings.batch,  # batch mode has a bar of its own
                   leave=True)  # a saved log shows the bar at 100%, not stuck where it was last drawn
        scored: list[TextScore | None] = [None] * len(pairs)
        missing: dict[int, list[int]] = {}
        for t, g in todo:
            missing.setdefault(t, []).append(g)

        def finish(t: int) -> None:
            # Parse and vote as soon as a text's last reply is in, overlapping the calls still in flight.
            item, text = pairs[t]
            scored[t] = score_text(item, text, [r.error if r.error is not None else (r.text or "")  # type: ignore[union-attr]
                                                for r in results[t]])

        async def one(t: int, gs: list[int]) -> None:
            # A text's missing gradings together: one request for all of them where the backend allows.
            got = await self.completer.complete_many(msgs[t], gs, keys=[keys[t][g] for g in gs], lookup=False)
            for g, r in zip(gs, got):
                results[t][g] = r
            bar.update(len(gs))
            finish(t)

        for t in range(len(pairs)):
            if t not in missing:
                finish(t)
        try:
            if self.settings.batch and missing:
                # All missing gradings through the provider's Batch API at once (resumable; see batch.py).
                got = await complete_batch(self.completer, [(msgs[t], [keys[t][g] for g in gs])
                                                            for t, gs in missing.items()], progress=progress)
                for (t, gs), part in zip(missing.items(), got):
                    for g, r in zip(gs, part):
                        results[t][g] = r
                    finish(t)
            else:
                await asyncio.gather(*(one(t, gs) for t, gs in missing.items()))
        finally:
            bar.close()
            if self.cache is not None:
                self.cache.flush()
        out = []
        for (item, text), row, ts in zip(pairs, results, scored):
            gradings, score = ts.gradings, ts.score  # type: ignore[union-attr]
            out.append(TextGrade(item, text, score, [r.text for r in row], gradings, ts.voted,  # type: ignore[union-attr]
                                 [r.from_cache for r in row], self.spec))  # type: ignore[union-attr]
            self._stats.texts += 1
            self._stats.gradings += len(row)
            self._stats.unscored_gradings.update(g.reason for g in gradings if isinstance(g, Unscored))
            if isinstance(score, Unscored):
                self._stats.unscored[score.reason] += 1
            else:
                self._stats.scored += 1
        self._stats.seconds += time.monotonic() - start
        return out

    async def _agrade_and_close(self, pairs, progress):
        try:
            return await self.agrade(pairs, progress=progress)
        finally:
            close = getattr(self.backend, "aclose", None)
            if close is not None:
                await close()

    def grade(self, pairs: Sequence[tuple[Item, str]], *, progress: bool = True) -> list[TextGrade]:
        """Synchronous :meth:`agrade`. Inside a running event loop (a notebook, an async
        caller) the grading runs in its own loop in a worker thread."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._agrade_and_close(pairs, progress))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, self._agrade_and_close(pairs, progress)).result()

    def call_estimate(self, pairs: Sequence[tuple[Item, str]], *, lookup: bool = True) -> CallEstimate:
        """What grading ``pairs`` would send (cached gradings excluded unless ``lookup`` is off)."""
        msgs, keys = self._plan(list(pairs))
        hits = self.cache.get_many(k for row in keys for k in row) if lookup and self.cache is not None else {}
        est = CallEstimate()
        for m, row in zip(msgs, keys):
            self.completer.estimate(est, m, range(len(row)), keys=row, hits=hits)
        return est

    def estimate(self, pairs: Sequence[tuple[Item, str]]) -> dict:
        """A dry run: how many calls a grading would make (cached ones excluded), their tokens and cost."""
        est = self.call_estimate(pairs)
        return {"judge": self.spec, "texts": len(pairs),
                "gradings": sum(not is_blank(text) for _, text in pairs) * self.settings.n_gradings,
                **est.to_dict(self.price), "choices_per_call": self.completer.samples_per_request,
                "max_cost": self.settings.max_cost}


def check_batch_mode(backend: Backend, cache: ReplyCache | None, role: str) -> None:
    """Batch mode needs a provider with a Batch API and the cache (which holds the batch ids)."""
    try:
        provider_for(backend)
    except ValueError as e:
        raise JudgeConfigError(f"batch: true for the {role}: {e}") from None
    if cache is None:
        raise JudgeConfigError(f"batch: true for the {role} needs the reply cache (cache: off is set): it holds the "
                               f"ids of the submitted batches, which a later run collects")


def resolve_judge(spec: str | None = None, config: Mapping[str, Any] | None = None, *, command: str | None = None,
                  **overrides: Any) -> Judge:
    """The judge named by ``spec``, else ``config['judge']``, else ``SKILLMIX_JUDGE``, else a
    key alone; settings from ``config`` and ``overrides``. Checks the provider, the API key and
    the hf folder now (no network), raising :class:`JudgeConfigError`; ``command`` (``lm_eval``,
    ``skillmix-grade`` ...) picks the flags the no-judge message shows."""
    judge_spec = choose_spec(spec, config, command=command)
    settings = make_settings(config, **overrides)
    return Judge(judge_spec, settings)


def judge_length_point(voted: Grading, k: int) -> int | None:
    """The judge's own length point (before the programmatic rule replaces it); None when the
    judge gave no length row or the text has no vote."""
    return None if isinstance(voted, Unscored) else voted[k + 2]
