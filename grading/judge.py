"""The SKILL-MIX judge: (item, text) pairs in, graded texts out.

Each text gets ``n_gradings`` independent calls, all calls of a batch run concurrently under
a semaphore, and each reply goes to the cache as it arrives. Replies are parsed on read with
``skillmix_tasks.scoring``, voted per criterion, and the programmatic rules applied. A call
that fails (after the SDK's retries), is refused, comes back empty, or cannot be parsed makes
its grading unscored with a reason; it is never turned into points.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from skillmix_tasks.prompts import PROMPT_VERSION, criteria_for, grader_prompt, sentence_cap
from skillmix_tasks.sampling import Item
from skillmix_tasks.scoring import (
    GenerationScore,
    Grading,
    Unscored,
    apply_rules,
    generation_metrics,
    majority_vote,
    parse_grading,
)

from .backends import Backend, BackendError, Completion, Usage, make_backend
from .cache import ReplyCache, cache_key
from .cost import TYPICAL_REPLY_TOKENS, Budget, Price, estimate_tokens, price_for
from .specs import JudgeConfigError, JudgeSettings, JudgeSpec, choose_spec, make_settings

JUDGE_NAMESPACE = "skillmix-grader"

log = logging.getLogger(__name__)


@dataclass
class CallResult:
    text: str | None  # the raw reply; None when the call failed
    error: Unscored | None = None
    from_cache: bool = False
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None


@dataclass
class CallStats:
    """What the calls did; cumulative over the life of a completer / judge."""

    calls: int = 0  # requests issued to the backend (one may carry several samples)
    judged: int = 0  # usable replies received from the backend (and cached)
    cached: int = 0  # replies read from the cache, no call
    failed: Counter = field(default_factory=Counter)  # replies that failed, by reason (never cached)
    budget_skipped: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: float | None = 0.0  # None: the judge has no known price


class CachedCompleter:
    """Cached, concurrency-limited, budgeted completions for any caller (the judge, a datagen
    teacher, a two-turn evaluation): ``await complete(messages, index)``. ``index`` tells apart
    several samples of the same messages, so each is cached and resumed on its own."""

    def __init__(self, backend: Backend, cache: ReplyCache | None = None, namespace: str = "default", *,
                 concurrency: int = 32, budget: Budget | None = None, price: Price | None = None,
                 key_extra: Mapping[str, Any] | None = None, temperature: float = 0.7, max_tokens: int = 1024,
                 choices_per_call: int = 1):
        self.backend = backend
        self.cache = cache
        self.namespace = namespace
        self.concurrency = concurrency
        self.budget = budget
        self.price = price
        self.key_extra = dict(key_extra or {})
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.stats = CallStats(cost=0.0 if price else None)
        self.choices_per_call = max(1, int(choices_per_call))
        # Cleared for good when the server refuses ``n`` or ignores it.
        self._choices_ok = self.choices_per_call > 1 and getattr(backend, "supports_choices", False)
        self._sems: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]] = {}

    @property
    def samples_per_request(self) -> int:
        """How many samples one request asks for now (1 once the server has turned ``n`` down)."""
        return self.choices_per_call if self._choices_ok else 1

    def key(self, messages: list[dict], index: int = 0, *, temperature: float | None = None,
            max_tokens: int | None = None) -> str:
        # No credentials here: the spec string has none, and neither do the settings.
        return cache_key(namespace=self.namespace, spec=str(self.backend.spec), messages=messages, index=index,
                         temperature=self.temperature if temperature is None else temperature,
                         max_tokens=self.max_tokens if max_tokens is None else max_tokens, **self.key_extra)

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        entry = self._sems.get(id(loop))
        if entry is None or entry[0] is not loop:
            entry = (loop, asyncio.Semaphore(self.concurrency))
            self._sems = {k: v for k, v in self._sems.items() if not v[0].is_closed()}
            self._sems[id(loop)] = entry
        return entry[1]

    def _estimate(self, messages: list[dict], max_tokens: int, n: int = 1) -> float:
        if self.price is None:
            return 0.0
        n_in = estimate_tokens("".join(m.get("content") or "" for m in messages))
        done = self.stats.judged
        n_out = self.stats.usage.output_tokens / done if done else min(max_tokens, TYPICAL_REPLY_TOKENS)
        return self.price.cost(n_in, n * n_out)

    async def complete(self, messages: list[dict], index: int = 0, *, temperature: float | None = None,
                       max_tokens: int | None = None, key: str | None = None,
                       lookup: bool = True) -> CallResult:
        keys = None if key is None else [key]
        return (await self.complete_many(messages, [index], temperature=temperature, max_tokens=max_tokens,
                                         keys=keys, lookup=lookup))[0]

    async def complete_many(self, messages: list[dict], indices: Sequence[int], *, temperature: float | None = None,
                            max_tokens: int | None = None, keys: Sequence[str] | None = None,
                            lookup: bool = True) -> list[CallResult]:
        """Several samples (``indices``) of one prompt. Cached ones are read; the rest are asked
        for ``choices_per_call`` at a time, one request each, when the backend takes the API's
        ``n`` (else one request per sample). Each sample is cached under its own index, so the
        cache and a resumed run do not depend on how the samples were requested."""
        temperature = self.temperature if temperature is None else temperature
        max_tokens = self.max_tokens if max_tokens is None else max_tokens
        if keys is None:
            keys = [self.key(messages, i, temperature=temperature, max_tokens=max_tokens) for i in indices]
        results: list[CallResult | None] = [None] * len(keys)
        todo = list(range(len(keys)))
        if lookup and self.cache is not None:
            hits = self.cache.get_many(keys)
            todo = []
            for j, key in enumerate(keys):
                hit = hits.get(key)
                if hit is None:
                    todo.append(j)
                else:
                    self.stats.cached += 1
                    results[j] = CallResult(hit.reply, None, True, Usage(hit.input_tokens, hit.output_tokens),
                                            hit.finish_reason)
        per = self.samples_per_request
        groups = [todo[i: i + per] for i in range(0, len(todo), per)]
        requests = [self._request(messages, [keys[j] for j in g], temperature, max_tokens) for g in groups]
        parts = [await requests[0]] if len(requests) == 1 else await asyncio.gather(*requests)
        for group, part in zip(groups, parts):
            for j, r in zip(group, part):
                results[j] = r
        return results  # type: ignore[return-value]

    async def _request(self, messages: list[dict], keys: list[str], temperature, max_tokens) -> list[CallResult]:
        """One request for ``len(keys)`` samples, under the semaphore and the budget."""
        n = len(keys)
        completions = None
        async with self._semaphore():
            estimate = self._estimate(messages, max_tokens, n)
            # Not sent (so one request a sample, below) if the server turned ``n`` down while this
            # request waited, or if the budget cannot take n samples at once.
            if (n == 1 or self._choices_ok) and (self.budget is None or self.budget.reserve(estimate)):
                self.stats.calls += 1
                start = time.monotonic()
                try:
                    if n == 1:
                        completions = [await self.backend.complete(messages, temperature=temperature,
                                                                   max_tokens=max_tokens)]
                    else:
                        completions = await self.backend.complete_choices(  # type: ignore[attr-defined]
                            messages, temperature=temperature, max_tokens=max_tokens, n=n)
                except BackendError as e:
                    if self.budget is not None:
                        self.budget.settle(estimate, 0.0)
                    if n == 1 or e.reason not in ("http 400", "http 422"):
                        self.stats.failed[e.reason] += n
                        return [CallResult(None, Unscored(e.reason, e.detail)) for _ in keys]
                    self._no_choices(f"it refused n={n} ({e.reason})")
                elapsed = time.monotonic() - start
            elif n == 1:
                self.stats.budget_skipped += 1
                return [CallResult(None, Unscored("budget", f"max_cost {self.budget.max_cost} would be exceeded"))]
        if completions is None:
            return await self._one_by_one(messages, keys, temperature, max_tokens)
        if self.budget is not None:
            actual = sum(self.price.cost(c.usage.input_tokens, c.usage.output_tokens) for c in completions) \
                if self.price else 0.0
            self.budget.settle(estimate, actual)
        results = [self._reply(key, c, elapsed) for key, c in zip(keys, completions)]
        if len(completions) < n:
            self._no_choices(f"it returned {len(completions)} of n={n} samples")
            results += await self._one_by_one(messages, keys[len(completions):], temperature, max_tokens)
        return results

    async def _one_by_one(self, messages, keys, temperature, max_tokens) -> list[CallResult]:
        parts = await asyncio.gather(*(self._request(messages, [k], temperature, max_tokens) for k in keys))
        return [r for part in parts for r in part]

    def _no_choices(self, why: str) -> None:
        if self._choices_ok:
            self._choices_ok = False
            log.warning("%s: %s; asking for one sample per request from now on", self.backend.spec, why)

    def _reply(self, key: str, c: Completion, elapsed: float) -> CallResult:
        """Account for one received sample; cache it if it is a usable reply."""
        self.stats.usage.add(c.usage)
        if self.stats.cost is not None and self.price is not None:
            self.stats.cost += self.price.cost(c.usage.input_tokens, c.usage.output_tokens)
        # Refusals and empty replies are failed calls: not cached, so a re-run asks again.
        if c.refusal or (c.finish_reason == "content_filter"):
            self.stats.failed["refusal"] += 1
            return CallResult(None, Unscored("refusal", str(c.refusal or c.finish_reason)[:300]), usage=c.usage)
        if not c.text or not c.text.strip():
            self.stats.failed["empty reply"] += 1
            return CallResult(None, Unscored("empty reply", f"finish_reason={c.finish_reason}"), usage=c.usage)
        self.stats.judged += 1
        if self.cache is not None:
            self.cache.put(key, namespace=self.namespace, spec=str(self.backend.spec), reply=c.text,
                           finish_reason=c.finish_reason, input_tokens=c.usage.input_tokens,
                           output_tokens=c.usage.output_tokens, elapsed=elapsed)
        return CallResult(c.text, None, False, c.usage, c.finish_reason)


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
            "criteria": [c.label for c in criteria_for(self.item)],
        }
        if isinstance(self.score, Unscored):
            out.update(status="unscored", reason=self.score.reason, detail=self.score.detail)
        else:
            out.update(status="scored", points=list(self.score.points), full_marks=self.score.full_marks,
                       all_skills=self.score.all_skills, skills_fraction=self.score.skills_fraction)
        out.update(voted=grading(self.voted), gradings=[grading(g) for g in self.gradings],
                   replies=self.replies, from_cache=self.from_cache)
        return out


def _score(item: Item, text: str, results: Sequence[CallResult]) -> tuple[list[Grading], Grading, GenerationScore | Unscored]:
    criteria = criteria_for(item)
    gradings: list[Grading] = [r.error if r.error is not None else parse_grading(r.text or "", criteria)
                               for r in results]
    voted = majority_vote(gradings)
    if isinstance(voted, Unscored):
        # One shared cause (all "budget", all "timeout") is the text's reason; mixed causes stay generic.
        reasons = {g.reason for g in gradings if isinstance(g, Unscored)}
        if len(reasons) == 1:
            voted = Unscored(reasons.pop(), voted.detail)
        return gradings, voted, voted
    return gradings, voted, generation_metrics(item.k, apply_rules(item, text, voted))


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
                       budget_skipped=s.budget_skipped, usage=s.usage.to_dict(),
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
        self.completer = CachedCompleter(
            self.backend, self.cache, JUDGE_NAMESPACE, concurrency=settings.concurrency, budget=self.budget,
            price=self.price, key_extra={"prompt_version": PROMPT_VERSION},
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
        msgs = [self.messages(item, text) for item, text in pairs]
        keys = [[self.completer.key(m, i) for i in range(self.settings.n_gradings)] for m in msgs]
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
                    self.completer.stats.cached += 1
                    results[t][g] = CallResult(hit.reply, None, True, Usage(hit.input_tokens, hit.output_tokens),
                                               hit.finish_reason)
                else:
                    todo.append((t, g))
        bar = tqdm(total=len(todo), desc=f"judge {self.spec}", unit="call", disable=not progress or not todo,
                   leave=False)
        scored: list[tuple | None] = [None] * len(pairs)
        missing: dict[int, list[int]] = {}
        for t, g in todo:
            missing.setdefault(t, []).append(g)

        def finish(t: int) -> None:
            # Parse and vote as soon as a text's last reply is in, overlapping the calls still in flight.
            item, text = pairs[t]
            scored[t] = _score(item, text, results[t])  # type: ignore[arg-type]

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
            await asyncio.gather(*(one(t, gs) for t, gs in missing.items()))
        finally:
            bar.close()
            if self.cache is not None:
                self.cache.flush()
        out = []
        for (item, text), row, (gradings, voted, score) in zip(pairs, results, scored):  # type: ignore[misc]
            out.append(TextGrade(item, text, score, [r.text for r in row], gradings, voted,  # type: ignore[union-attr]
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

    def estimate(self, pairs: Sequence[tuple[Item, str]]) -> dict:
        """A dry run: how many calls a grading would make (cached ones excluded), their tokens and cost."""
        msgs, keys = self._plan(list(pairs))
        hits = self.cache.get_many(k for row in keys for k in row) if self.cache is not None else {}
        per = self.completer.samples_per_request
        n_in = n_calls = n_replies = 0
        for m, row in zip(msgs, keys):
            missing = sum(1 for k in row if k not in hits)
            requests = -(-missing // per)  # the prompt is sent (and billed) once a request
            n_calls += requests
            n_replies += missing
            n_in += requests * estimate_tokens("".join(x["content"] for x in m))
        n_out = n_replies * min(self.settings.max_tokens, TYPICAL_REPLY_TOKENS)
        return {"judge": self.spec, "texts": len(msgs), "gradings": sum(len(r) for r in keys),
                "cached": len(hits), "calls": n_calls, "replies": n_replies, "choices_per_call": per,
                "input_tokens_est": n_in, "output_tokens_est": n_out,
                "cost_est": None if self.price is None else round(self.price.cost(n_in, n_out), 4),
                "max_cost": self.settings.max_cost}


def resolve_judge(spec: str | None = None, config: Mapping[str, Any] | None = None, **overrides: Any) -> Judge:
    """The judge named by ``spec``, else ``config['judge']``, else ``SKILLMIX_JUDGE``, else a
    key alone; settings from ``config`` and ``overrides``. Checks the provider, the API key and
    the hf folder now (no network), raising :class:`JudgeConfigError`."""
    judge_spec = choose_spec(spec, config)
    settings = make_settings(config, **overrides)
    return Judge(judge_spec, settings)


def judge_length_point(voted: Grading, k: int) -> int | None:
    """The judge's own length point (before the programmatic rule replaces it)."""
    return None if isinstance(voted, Unscored) else voted[k + 2]


def programmatic_length_point(item: Item, text: str) -> int:
    from skillmix_tasks.sentences import count_sentences

    return int(count_sentences(text) <= sentence_cap(item.k))
