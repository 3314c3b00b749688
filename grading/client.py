"""The one client layer: cached, concurrency-limited, budgeted completions with stats.

``CachedCompleter`` serves every caller that asks a model for text: the judge, the datagen
teacher, and (through the judge) the lm-eval filter. A reply is looked up in the SQLite cache
first; the rest are sent through the backend (the official SDKs, which retry), several samples
of one prompt in one request where the backend takes the API's ``n``. Each usable reply is
cached under its own key the moment it arrives, so a killed run resumes with no repeated call.
Processes sharing one cache file share the work too: a sample in flight in one is claimed there
and waited for by the others, and the first reply stored is the one everybody uses (``cache.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from skillmix_tasks.protocol import GENERATION_TEMPERATURE
from skillmix_tasks.scoring import Unscored

from .backends import Backend, BackendError, Completion, Usage
from .cache import CachedReply, ReplyCache, cache_key
from .cost import TYPICAL_REPLY_TOKENS, Budget, Price, message_tokens
from .estimate import CallEstimate
from .ratelimit import current_request

log = logging.getLogger(__name__)

# How much longer than its own request bound (``backend.deadline``) a process waits for a sample
# another process has claimed before asking for it itself.
CLAIM_GRACE = 30.0


@dataclass
class CallResult:
    text: str | None  # the raw reply; None when the call failed
    error: Unscored | None = None
    from_cache: bool = False
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None


# Failures every later request of the run would repeat (a wrong key, a model or URL that does not
# exist): after the first, the rest are unscored with that reason without being sent.
REFUSALS = ("auth error", "http 403", "http 404")


@dataclass
class CallStats:
    """What the calls did; cumulative over the life of a completer / judge."""

    calls: int = 0  # requests issued to the backend (one may carry several samples)
    judged: int = 0  # usable replies received from the backend (and cached)
    cached: int = 0  # replies read from the cache, no call
    failed: Counter = field(default_factory=Counter)  # replies that failed, by reason (never cached)
    budget_skipped: int = 0
    batches: int = 0  # provider batches submitted (their lines count as calls)
    batched: int = 0  # usable replies that came through a batch (counted in judged too)
    batch_retried: int = 0  # lines put into a new batch after expiring or a retryable error
    not_sent: int = 0  # requests not sent after the backend refused the key, the model or the URL (in failed too)
    usage: Usage = field(default_factory=Usage)
    cost: float | None = 0.0  # None: the judge has no known price


class CachedCompleter:
    """Cached, concurrency-limited, budgeted completions for any caller (the judge, a datagen
    teacher, a two-turn evaluation): ``await complete(messages, index)``. ``index`` tells apart
    several samples of the same messages, so each is cached and resumed on its own."""

    def __init__(self, backend: Backend, cache: ReplyCache | None = None, namespace: str = "default", *,
                 concurrency: int = 32, budget: Budget | None = None, price: Price | None = None,
                 key_extra: Mapping[str, Any] | None = None, temperature: float = GENERATION_TEMPERATURE, max_tokens: int = 1024,
                 choices_per_call: int = 1, typical_reply_tokens: int = TYPICAL_REPLY_TOKENS):
        self.backend = backend
        self.cache = cache
        self.namespace = namespace
        self.concurrency = concurrency
        self.budget = budget
        self.price = price
        self.key_extra = dict(key_extra or {})
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.typical_reply_tokens = typical_reply_tokens  # for estimates until real replies come in
        self.stats = CallStats(cost=0.0 if price else None)
        self.choices_per_call = max(1, int(choices_per_call))
        # Cleared for good when the server refuses ``n`` or ignores it.
        self._choices_ok = self.choices_per_call > 1 and getattr(backend, "supports_choices", False)
        self._sems: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]] = {}
        self._refused: BackendError | None = None  # set by the first refusal every later request would get

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
        """The budget's reservation for one request: real reply lengths once there are some."""
        if self.price is None:
            return 0.0
        done = self.stats.judged
        n_out = self.stats.usage.output_tokens / done if done else min(max_tokens, self.typical_reply_tokens)
        return self.price.cost(message_tokens(messages), n * n_out)

    def estimate(self, into: CallEstimate, messages: list[dict], indices: Sequence[int], *,
                 keys: Sequence[str] | None = None, hits: Mapping[str, Any] | None = None,
                 lookup: bool = True) -> CallEstimate:
        """Add to ``into`` what :meth:`complete_many` of these samples would send (cached ones
        excluded; ``hits`` is a cache lookup done by the caller, else one is made here)."""
        keys = list(keys) if keys is not None else [self.key(messages, i) for i in indices]
        if hits is None:
            hits = self.cache.get_many(keys) if lookup and self.cache is not None else {}
        missing = [k for k in keys if k not in hits]
        pending = self.cache.pending_batches(missing) if lookup and missing and self.cache is not None else {}
        return into.add(message_tokens(messages), len(keys), cached=len(keys) - len(missing), submitted=len(pending),
                        reply_tokens=min(self.max_tokens, self.typical_reply_tokens),
                        per_request=self.samples_per_request)

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
                    results[j] = self.cached_result(hit)
        per = self.samples_per_request
        groups = [todo[i: i + per] for i in range(0, len(todo), per)]
        requests = [self._request(messages, [keys[j] for j in g], temperature, max_tokens) for g in groups]
        parts = [await requests[0]] if len(requests) == 1 else await asyncio.gather(*requests)
        for group, part in zip(groups, parts):
            for j, r in zip(group, part):
                results[j] = r
        return results  # type: ignore[return-value]

    async def _request(self, messages: list[dict], keys: list[str], temperature, max_tokens, *,
                       claimed: bool = False) -> list[CallResult]:
        """The samples ``keys`` of one prompt, in one request where the backend takes ``n``, under
        the semaphore and the budget. With a cache, a sample that another process (or task) is
        asking for already is not sent again: its key is claimed there, and this waits for the
        reply (``ReplyCache.claim``). ``claimed``: the caller holds the claims already."""
        share = self.cache is not None and not claimed
        out: dict[str, CallResult] = {}
        todo, steal, sent = list(keys), False, False
        while todo:
            mine, busy, rest = ([] if share else todo), [], []
            async with self._semaphore():
                if share:
                    # Claimed here, not before the semaphore: only what goes out now, so the other
                    # processes take the keys this one has not reached yet.
                    stored, mine, busy = await self.cache.aclaim(todo, steal=steal)  # type: ignore[union-attr]
                    for k, hit in stored.items():
                        out[k] = self.cached_result(hit)
                try:
                    if mine:
                        sent = True
                        rest = await self._send(messages, mine, temperature, max_tokens, out)
                except BaseException:
                    if share:
                        self.cache.release(mine)  # type: ignore[union-attr]
                    raise
            try:
                if rest:  # the server refused or ignored ``n``: one request a sample, claims still held
                    for k, r in zip(rest, await self._one_by_one(messages, rest, temperature, max_tokens)):
                        out[k] = r
            finally:
                if share and mine:
                    self.cache.release(mine)  # type: ignore[union-attr]
            todo = busy
            if todo:
                steal = await self._await_others(todo)
        if share and sent:
            # Where another reply was stored first under a key, its result now holds that one (put's
            # on_conflict): every output can be rebuilt from the cache alone.
            await self.cache.written()  # type: ignore[union-attr]
        return [out[k] for k in keys]

    async def _await_others(self, keys: list[str]) -> bool:
        """Wait, outside the semaphore, until one of ``keys`` (claimed by a live holder) has a reply
        or is free again (its holder's call failed, it died, its lease ran out). True when the
        holder has kept it longer than a request can take here (the backend's ``deadline``, retries
        included): then this process sends it too, and the first reply stored wins."""
        deadline = getattr(self.backend, "deadline", None)
        limit = None if deadline is None else deadline + CLAIM_GRACE
        start, delay = time.monotonic(), 0.05
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.5)  # a few cheap reads a second, whatever the replies' latency
            if self.cache.claimable(keys):  # type: ignore[union-attr]
                return False
            if limit is not None and time.monotonic() - start > limit:
                log.warning("%s: %d sample(s) claimed by another process for over %.0f s; asking for them here too",
                            self.backend.spec, len(keys), limit)
                return True

    async def _send(self, messages: list[dict], keys: list[str], temperature, max_tokens,
                    out: dict[str, CallResult]) -> list[str]:
        """One request for ``keys``, the semaphore held; results into ``out``. Returns the keys to
        ask for one sample a request instead (the server refused ``n`` or returned fewer samples,
        or the budget cannot take them at once)."""
        n = len(keys)
        if self._refused is not None:  # a wrong key, model or URL: the rest would fail the same way
            self.stats.failed[self._refused.reason] += n
            self.stats.not_sent += n
            for k in keys:
                out[k] = CallResult(None, Unscored(self._refused.reason, f"not sent after an earlier refusal: "
                                                                         f"{self._refused.detail}"))
            return []
        estimate = self._estimate(messages, max_tokens, n)
        # Not sent (so one request a sample) if the server turned ``n`` down while this request
        # waited, or if the budget cannot take n samples at once.
        if not ((n == 1 or self._choices_ok) and (self.budget is None or self.budget.reserve(estimate))):
            if n > 1:
                return list(keys)
            self.stats.budget_skipped += 1
            max_cost = self.budget.max_cost  # type: ignore[union-attr]
            out[keys[0]] = CallResult(None, Unscored("budget", f"max_cost {max_cost} would be exceeded"))
            return []
        limiter = getattr(self.backend, "limiter", None)
        if limiter is not None:  # wait for room under the provider's rate limit (ratelimit.py)
            seq = await limiter.acquire(message_tokens(messages) + n * max_tokens)
            current_request.set(seq)
        self.stats.calls += 1
        start = time.monotonic()
        try:
            if n == 1:
                completions = [await self.backend.complete(messages, temperature=temperature, max_tokens=max_tokens)]
            else:
                completions = await self.backend.complete_choices(  # type: ignore[attr-defined]
                    messages, temperature=temperature, max_tokens=max_tokens, n=n)
        except BackendError as e:
            if self.budget is not None:
                self.budget.settle(estimate, 0.0)
            if e.reason in REFUSALS:
                self._refused = e
            if n == 1 or e.reason not in ("http 400", "http 422"):
                self.stats.failed[e.reason] += n
                for k in keys:
                    out[k] = CallResult(None, Unscored(e.reason, e.detail))
                return []
            self._no_choices(f"it refused n={n} ({e.reason})")
            return list(keys)
        finally:
            if limiter is not None:
                limiter.done(seq)
        elapsed = time.monotonic() - start
        if self.budget is not None:
            actual = sum(self.price.cost(c.usage.input_tokens, c.usage.output_tokens) for c in completions) \
                if self.price else 0.0
            self.budget.settle(estimate, actual)
        for key, c in zip(keys, completions):
            out[key] = self._reply(key, c, elapsed)
        if len(completions) < n:
            self._no_choices(f"it returned {len(completions)} of n={n} samples")
            return keys[len(completions):]
        return []

    async def _one_by_one(self, messages, keys, temperature, max_tokens) -> list[CallResult]:
        parts = await asyncio.gather(*(self._request(messages, [k], temperature, max_tokens, claimed=True)
                                       for k in keys))
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
        result = CallResult(c.text, None, False, c.usage, c.finish_reason)
        if self.cache is not None:
            def adopt(stored: CachedReply) -> None:
                # Another reply was stored under this key first: use it, as every later reader will.
                result.text, result.finish_reason, result.from_cache = stored.reply, stored.finish_reason, True

            self.cache.put(key, namespace=self.namespace, spec=str(self.backend.spec), reply=c.text,
                           finish_reason=c.finish_reason, input_tokens=c.usage.input_tokens,
                           output_tokens=c.usage.output_tokens, elapsed=elapsed, on_conflict=adopt)
        return result

    def cached_result(self, hit: CachedReply) -> CallResult:
        """A sample served from the cache, counted as such (every path that reads the cache uses this)."""
        self.stats.cached += 1
        return CallResult(hit.reply, None, True, Usage(hit.input_tokens, hit.output_tokens), hit.finish_reason)
