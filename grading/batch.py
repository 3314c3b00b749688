"""Batch mode of the client layer: the providers' Batch APIs (half price, outside the online
rate limits), for paper-scale judging and data generation.

``await complete_batch(completer, prompts)`` is ``complete_many`` for many prompts at once:

- cached samples are read; only the rest are submitted, in chunks within the provider's per-batch
  limits (OpenAI Files + Batches: 50,000 requests / 200 MB a batch, chat-completions lines, ``n``
  kept; Anthropic Message Batches: 100,000 requests / 256 MB);
- each batch's id and lines are written to the SQLite cache the moment it is created, so a killed
  run's successor finds them and polls the same batches: nothing is submitted twice;
- replies land in the cache under the same keys as online calls (online and batch replies mix);
- expired lines and retryable errors (429, 5xx, overloaded) go into a new batch, up to
  ``batch_retries`` times; other errors (a 400: the request itself is wrong) and lines still failing
  after that are unscored with the reason, and, not cached, are asked for again by a later run;
- with ``batch_wait`` off, the batches are polled once (what is done is collected) and
  :class:`BatchPending` is raised for the rest: run the same command again later to collect.

The one window that is not covered: a kill after the provider accepted a batch and before its id
is written (one SQLite commit) loses track of that batch; a re-run submits its lines again.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from dataclasses import dataclass
from typing import Sequence

from skillmix_tasks.scoring import Unscored

from .backends import (AnthropicBackend, BackendError, Completion, OpenAIBackend, anthropic_completion,
                       openai_completions)
from .client import CachedCompleter, CallResult
from .specs import redact

log = logging.getLogger(__name__)

# Reasons worth a new batch: the line may well succeed next time.
RETRYABLE = ("batch expired", "batch canceled", "batch missing line", "rate limited", "http 429", "http 500", "http 502", "http 503",
             "http 504", "http 529", "batch api_error", "batch overloaded_error", "batch rate_limit_error")


class BatchPending(Exception):
    """Batches are submitted (or still running) and the run was told not to wait."""

    def __init__(self, batch_ids: Sequence[str], requests: int):
        self.batch_ids = list(batch_ids)
        self.requests = requests
        super().__init__(f"{requests} request(s) in {len(self.batch_ids)} batch(es) "
                         f"({', '.join(self.batch_ids[:5])}{', ...' if len(self.batch_ids) > 5 else ''}) are not "
                         f"done yet; run the same command again to collect them")


@dataclass
class BatchState:
    status: str  # the provider's word
    done: bool  # results can be fetched (completed, expired, ended, failed, cancelled)
    finished: int  # lines answered or failed so far
    total: int


class _Provider:
    max_requests: int
    max_bytes: int

    def __init__(self, backend):
        self.backend = backend

    def _sdk_error(self, e: Exception) -> BackendError:
        import importlib

        sdk = importlib.import_module(self.sdk)
        return self.backend._error(e, sdk) if isinstance(e, sdk.APIError) else \
            BackendError("batch error", redact(f"{type(e).__name__}: {e}", self.backend._creds.secrets)[:300])


class OpenAIBatches(_Provider):
    """Files + Batches: a JSONL file of chat-completions requests, uploaded, then a batch over it."""

    max_requests, max_bytes, sdk = 50_000, 200 * 1024 * 1024, "openai"
    endpoint = "/v1/chat/completions"

    def line(self, custom_id: str, messages, *, temperature, max_tokens, n: int) -> dict:
        body = self.backend.request_body(messages, temperature=temperature, max_tokens=max_tokens, n=n)
        return {"custom_id": custom_id, "method": "POST", "url": self.endpoint, "body": body}

    async def submit(self, lines: list[dict]) -> str:
        client = self.backend._client()
        data = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode()
        try:
            f = await client.files.create(file=("skillmix-batch.jsonl", io.BytesIO(data), "application/jsonl"),
                                          purpose="batch")
            b = await client.batches.create(input_file_id=f.id, endpoint=self.endpoint, completion_window="24h")
        except Exception as e:  # noqa: BLE001 - reported as the lines' reason
            raise self._sdk_error(e) from None
        return b.id

    async def state(self, batch_id: str) -> BatchState:
        try:
            b = await self.backend._client().batches.retrieve(batch_id)
        except Exception as e:  # noqa: BLE001
            raise self._sdk_error(e) from None
        c = b.request_counts
        total, finished = (c.total, c.completed + c.failed) if c else (0, 0)
        return BatchState(b.status, b.status in ("completed", "expired", "failed", "cancelled"), finished, total)

    async def results(self, batch_id: str) -> dict[str, list[Completion] | BackendError]:
        client = self.backend._client()
        out: dict[str, list[Completion] | BackendError] = {}
        try:
            b = await client.batches.retrieve(batch_id)
            for file_id in (b.output_file_id, b.error_file_id):
                if file_id:
                    content = await client.files.content(file_id)
                    for n, raw in enumerate(content.text.split("\n"), 1):  # not splitlines(): replies hold U+2028
                        if raw.strip():
                            try:
                                row = json.loads(raw)
                                out[str(row["custom_id"])] = self._line_result(row)
                            except (ValueError, KeyError, TypeError, AttributeError) as e:
                                # One unreadable line is that line's loss (it is asked for again), not the batch's.
                                log.warning("batch %s, file %s line %d unreadable (%s); its request is missing",
                                            batch_id, file_id, n, type(e).__name__)
        except BackendError:
            raise
        except Exception as e:  # noqa: BLE001
            raise self._sdk_error(e) from None
        if b.status in ("failed", "cancelled"):
            errors = getattr(getattr(b, "errors", None), "data", None) or []
            detail = "; ".join(f"{getattr(x, 'code', '')}: {getattr(x, 'message', '')}" for x in errors[:3])
            out["*"] = BackendError(f"batch {'canceled' if b.status == 'cancelled' else 'failed'}", detail[:300])
        return out

    @staticmethod
    def _line_result(row: dict) -> list[Completion] | BackendError:
        error, response = row.get("error"), row.get("response") or {}
        if error:
            code = error.get("code") or "error"
            return BackendError("batch expired" if code == "batch_expired" else f"batch {code}",
                                str(error.get("message") or "")[:300])
        status, body = response.get("status_code"), response.get("body") or {}
        if status != 200:
            message = (body.get("error") or {}).get("message", "") if isinstance(body, dict) else str(body)
            return BackendError("rate limited" if status == 429 else f"http {status}", str(message)[:300])
        try:
            return openai_completions(body, int(1e9))
        except (IndexError, KeyError, AttributeError, TypeError, ValueError) as e:
            return BackendError("bad response", f"{type(e).__name__}: {e}"[:300])


class AnthropicBatches(_Provider):
    """Message Batches: the requests in one create call; results streamed as JSONL when ended."""

    max_requests, max_bytes, sdk = 100_000, 256 * 1024 * 1024, "anthropic"

    def line(self, custom_id: str, messages, *, temperature, max_tokens, n: int) -> dict:
        assert n == 1, "Message Batches have no n"
        return {"custom_id": custom_id,
                "params": self.backend.request_params(messages, temperature=temperature, max_tokens=max_tokens)}

    async def submit(self, lines: list[dict]) -> str:
        try:
            b = await self.backend._client().messages.batches.create(requests=lines)
        except Exception as e:  # noqa: BLE001
            raise self._sdk_error(e) from None
        return b.id

    async def state(self, batch_id: str) -> BatchState:
        try:
            b = await self.backend._client().messages.batches.retrieve(batch_id)
        except Exception as e:  # noqa: BLE001
            raise self._sdk_error(e) from None
        c = b.request_counts
        finished = c.succeeded + c.errored + c.canceled + c.expired
        return BatchState(b.processing_status, b.processing_status == "ended", finished, finished + c.processing)

    async def results(self, batch_id: str) -> dict[str, list[Completion] | BackendError]:
        out: dict[str, list[Completion] | BackendError] = {}
        try:
            async for row in await self.backend._client().messages.batches.results(batch_id):
                r = row.result
                if r.type == "succeeded":
                    out[row.custom_id] = [anthropic_completion(r.message)]
                elif r.type == "errored":
                    err = getattr(r.error, "error", None)
                    out[row.custom_id] = BackendError(f"batch {getattr(err, 'type', 'error')}",
                                                      str(getattr(err, "message", ""))[:300])
                else:  # expired, canceled
                    out[row.custom_id] = BackendError(f"batch {r.type}")
        except Exception as e:  # noqa: BLE001
            raise self._sdk_error(e) from None
        return out


def provider_for(backend) -> _Provider:
    if isinstance(backend, AnthropicBackend):
        return AnthropicBatches(backend)
    if isinstance(backend, OpenAIBackend):
        return OpenAIBatches(backend)
    raise ValueError(f"{backend.spec}: no Batch API (batch mode takes openai: and anthropic: judges and teachers)")


def _chunks(lines: list[dict], max_requests: int, max_bytes: int) -> list[list[dict]]:
    out: list[list[dict]] = [[]]
    size = 0
    for line in lines:
        n = len(json.dumps(line, ensure_ascii=False).encode()) + 1
        if out[-1] and (len(out[-1]) >= max_requests or size + n > max_bytes):
            out.append([])
            size = 0
        out[-1].append(line)
        size += n
    return [c for c in out if c]


async def complete_batch(completer: CachedCompleter, prompts: Sequence[tuple[list[dict], Sequence[str]]], *,
                         progress: bool = True) -> list[list[CallResult]]:
    """Per prompt (messages, one cache key per sample wanted), its samples' results."""
    from tqdm.auto import tqdm

    # The batch settings are the backend's (the judge's or the teacher's JudgeSettings).
    settings, cache, stats = completer.backend.settings, completer.cache, completer.stats
    if cache is None:
        raise ValueError("batch mode needs the reply cache: it holds the batch ids a resumed run collects")
    provider = provider_for(completer.backend)
    results: dict[str, CallResult] = {}
    messages_of: dict[str, list[dict]] = {}
    for messages, keys in prompts:
        for key in keys:
            messages_of.setdefault(key, messages)
    hits = cache.get_many(messages_of)
    for key, hit in hits.items():
        results[key] = completer.cached_result(hit)
    missing = [k for k in messages_of if k not in hits]
    pending = cache.pending_batches(missing)  # submitted by an earlier (killed, or --no-wait) run
    tracked = list(dict.fromkeys(pending.values()))
    if tracked:
        log.info("%s: %d sample(s) are already in %d submitted batch(es); polling those", completer.backend.spec,
                 len(pending), len(tracked))
    reserved: dict[str, float] = {}  # custom id -> the budget's reservation for that line

    async def submit(keys: list[str]) -> None:
        """Group ``keys`` into lines (samples of one prompt, n to a line), chunk, submit, record."""
        per = completer.samples_per_request
        by_prompt: dict[int, list[str]] = {}
        for k in keys:
            by_prompt.setdefault(id(messages_of[k]), []).append(k)
        lines, line_keys = [], {}
        for group in by_prompt.values():
            for i in range(0, len(group), per):
                part = group[i: i + per]
                messages = messages_of[part[0]]
                estimate = completer._estimate(messages, completer.max_tokens, len(part))
                if completer.budget is not None and not completer.budget.reserve(estimate):
                    for k in part:
                        stats.budget_skipped += 1
                        results[k] = CallResult(None, Unscored("budget", f"max_cost {completer.budget.max_cost} "
                                                                          f"would be exceeded"))
                    continue
                cid = part[0][:64]  # a cache key (sha-256 hex) fits both providers' custom id rules
                reserved[cid] = estimate
                line_keys[cid] = part
                lines.append(provider.line(cid, messages, temperature=completer.temperature,
                                           max_tokens=completer.max_tokens, n=len(part)))
        for chunk in _chunks(lines, provider.max_requests, provider.max_bytes):
            try:
                batch_id = await provider.submit(chunk)
            except BackendError as e:
                for line in chunk:
                    _release(line["custom_id"])
                    for k in line_keys[line["custom_id"]]:
                        stats.failed[e.reason] += 1
                        results[k] = CallResult(None, Unscored(e.reason, f"batch not submitted: {e.detail}"))
                continue
            cache.add_batch(batch_id, spec=str(completer.backend.spec), namespace=completer.namespace,
                            lines=[(x["custom_id"], line_keys[x["custom_id"]]) for x in chunk])
            stats.calls += len(chunk)
            stats.batches += 1
            tracked.append(batch_id)

    def _release(cid: str, actual: float = 0.0) -> None:
        if completer.budget is not None and cid in reserved:
            completer.budget.settle(reserved.pop(cid), actual)

    await submit([k for k in missing if k not in pending])

    wanted = set(missing)
    retries_left = settings.batch_retries
    collected = 0  # lines of the batches collected so far, for the bar
    bar = tqdm(total=0, desc=f"batch {completer.backend.spec}", unit="req", disable=not progress or not tracked,
               leave=True)
    try:
        while tracked:
            states: dict[str, BatchState] = {}
            for batch_id in tracked:
                try:
                    states[batch_id] = await provider.state(batch_id)
                except BackendError as e:
                    # The batch stays recorded: a later run polls it again. This run's samples in it are unscored.
                    log.warning("%s: cannot poll batch %s (%s); a later run will collect it", completer.backend.spec,
                                batch_id, e)
                    _give_up(cache, batch_id, wanted, results, f"cannot poll {batch_id}: {e.reason}")
            bar.total = collected + sum(st.total for st in states.values())
            bar.n = collected + sum(st.finished for st in states.values())
            bar.set_postfix_str(", ".join(f"{st}: {n}" for st, n in _count(x.status for x in states.values()).items()))
            bar.refresh()
            failed: list[tuple[str, BackendError]] = []
            for batch_id, state in states.items():
                if state.done:
                    failed += await _collect(completer, provider, batch_id, wanted, results, _release)
                    collected += state.total
            tracked = [b for b in tracked if b in states and not states[b].done]
            retry = [k for k, e in failed if e.reason in RETRYABLE and retries_left > 0]
            retrying = set(retry)
            for k, e in failed:
                if k not in retrying:
                    stats.failed[e.reason] += 1
                    results[k] = CallResult(None, Unscored(e.reason, e.detail))
            if retry:
                log.info("%s: %d line(s) expired or failed retryably; a new batch for them", completer.backend.spec,
                         len(retry))
                retries_left -= 1
                stats.batch_retried += len(retry)
                await submit(retry)
            if tracked and not settings.batch_wait:  # one look, what is done collected; the rest later
                raise BatchPending(tracked, sum(len(cache.batch_lines(b)) for b in tracked))
            if tracked:
                await asyncio.sleep(settings.batch_poll_interval)
    finally:
        bar.close()
        cache.flush()
    for key in missing:
        if key not in results:  # a provider that drops a line silently
            stats.failed["batch missing line"] += 1
            results[key] = CallResult(None, Unscored("batch missing line", "the batch ended without this line"))
    return [[results[k] for k in keys] for _, keys in prompts]


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _give_up(cache, batch_id: str, wanted: set[str], results: dict, detail: str) -> None:
    for keys in cache.batch_lines(batch_id).values():
        for k in keys:
            if k in wanted and k not in results:
                results[k] = CallResult(None, Unscored("batch pending", detail))


async def _collect(completer: CachedCompleter, provider: _Provider, batch_id: str, wanted: set[str],
                   results: dict, release) -> list[tuple[str, BackendError]]:
    """Fetch an ended batch's lines into the cache and ``results``; the failed lines' keys of this run."""
    cache, stats = completer.cache, completer.stats
    lines = cache.batch_lines(batch_id)
    try:
        got = await provider.results(batch_id)
    except BackendError as e:
        log.warning("%s: cannot fetch the results of batch %s (%s); a later run will", completer.backend.spec,
                    batch_id, e)
        _give_up(cache, batch_id, wanted, results, f"results of {batch_id}: {e.reason}")
        return []
    whole = got.get("*")
    failed: list[tuple[str, BackendError]] = []
    for cid, keys in lines.items():
        r = got.get(cid, whole or BackendError("batch missing line", f"{batch_id} has no line {cid}"))
        if isinstance(r, BackendError):
            release(cid)
            failed += [(k, r) for k in keys if k in wanted]
            continue
        release(cid, sum(completer.price.cost(c.usage.input_tokens, c.usage.output_tokens) for c in r)
                if completer.price else 0.0)
        for i, k in enumerate(keys):
            if i < len(r):
                stats.batched += 1
                results[k] = completer._reply(k, r[i], None)
            else:
                failed.append((k, BackendError("bad response", f"{len(r)} of {len(keys)} choices returned")))
    cache.batch_collected(batch_id)
    return failed
