"""One small async interface over the official SDKs and in-process transformers.

``await backend.complete(messages, temperature=..., max_tokens=...) -> Completion`` or
``BackendError``; backends with ``supports_choices`` (OpenAI's ``n``) also have
``complete_choices(..., n=N) -> list[Completion]``, several samples from one request. Retries
with backoff and Retry-After are the SDKs' own (``max_retries``, ``timeout`` configured here);
an httpx event hook counts attempts, retries and 429s, and feeds the rate-limit headers to the
backend's ``RateLimiter`` (``ratelimit.py``), which the client layer waits on before each request.

Deadlines: httpx's timeouts are per read, so a server sending a byte now and then held a request
as long as it liked. Each HTTP attempt, its whole response included, is cut at ``timeout``
(``_bound_attempts``; the SDK retries it like any timeout), and a call, retries included, at
``deadline`` (``_SDKBackend.deadline``), whatever the SDK's waits between attempts add up to.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from .ratelimit import RateLimiter, current_request
from .specs import Credentials, JudgeSettings, JudgeSpec, credentials_for, parse_spec, redact

log = logging.getLogger(__name__)

# The SDKs wait between attempts (their backoff, at most 8 s, or a server's Retry-After, which the
# Anthropic SDK honours however long): a call's hard bound counts each wait at up to this.
RETRY_WAIT_CAP = 60.0


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, other: "Usage") -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens

    def to_dict(self) -> dict:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


@dataclass
class Completion:
    text: str | None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    refusal: str | None = None


class BackendError(Exception):
    """A call that failed after the SDK's retries. ``reason`` is a category
    (``rate limited``, ``timeout``, ``connection error``, ``http 500``, ``auth error``);
    ``detail`` has secrets removed."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class CallCounters:
    """HTTP-level counts from the event hooks (per backend, across runs)."""

    attempts: int = 0
    retries: int = 0
    rate_limited: int = 0  # 429 responses, retried or not
    server_errors: int = 0  # 5xx responses

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Backend(Protocol):
    spec: JudgeSpec
    counters: CallCounters

    async def complete(self, messages: list[dict], *, temperature: float, max_tokens: int) -> Completion: ...


@functools.lru_cache(maxsize=1)
def _ssl_context():
    """The default verifying SSL context, built once a process: loading the CA bundle costs
    ~40 ms, paid otherwise by every client (one per event loop, so per ``Judge.grade``)."""
    import httpx2

    return httpx2.create_ssl_context()


class _TimeoutAt:
    """``asyncio.timeout_at`` (Python 3.11) for 3.10: cancel the current task at loop time ``when``
    and raise TimeoutError from the block."""

    def __init__(self, when: float):
        self.when = when
        self._fired = False

    async def __aenter__(self) -> None:
        self._task = asyncio.current_task()
        self._handle = asyncio.get_running_loop().call_at(self.when, self._fire)

    def _fire(self) -> None:
        self._fired = True
        self._task.cancel()  # type: ignore[union-attr]

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        self._handle.cancel()
        if self._fired and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc
        return False


_timeout_at = asyncio.timeout_at if sys.version_info >= (3, 11) else _TimeoutAt  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=1)
def _attempt_deadline_transport():
    """The transport wrapper that cuts each HTTP attempt (connection, request, the whole response
    body) at a number of seconds. Built on first use: httpx is imported lazily here."""
    import httpx2

    def timed_out(seconds: float, request):
        # httpx's own exception, so that the SDK retries it and reports it as any other timeout.
        return httpx2.ReadTimeout(f"no complete response within {seconds:g} s", request=request)

    class DeadlineStream(httpx2.AsyncByteStream):
        """A response body that must be in by ``deadline`` (loop time), however it trickles."""

        def __init__(self, inner, deadline: float, seconds: float, request):
            self.inner, self.deadline, self.seconds, self.request = inner, deadline, seconds, request

        async def __aiter__(self):
            chunks = self.inner.__aiter__()
            while True:
                try:
                    async with _timeout_at(self.deadline):
                        chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    return
                except (TimeoutError, asyncio.TimeoutError) as e:
                    raise timed_out(self.seconds, self.request) from e
                yield chunk

        async def aclose(self) -> None:
            await self.inner.aclose()

    class AttemptDeadline(httpx2.AsyncBaseTransport):
        def __init__(self, inner, seconds: float):
            self.inner, self.seconds = inner, seconds

        async def handle_async_request(self, request):
            deadline = asyncio.get_running_loop().time() + self.seconds
            try:
                async with _timeout_at(deadline):
                    response = await self.inner.handle_async_request(request)
            except (TimeoutError, asyncio.TimeoutError) as e:
                raise timed_out(self.seconds, request) from e
            response.stream = DeadlineStream(response.stream, deadline, self.seconds, request)
            return response

        async def aclose(self) -> None:
            await self.inner.aclose()

    return AttemptDeadline


def _bound_attempts(client, seconds: float):
    """``client`` with each HTTP attempt cut at ``seconds`` (its transports wrapped: the clients,
    the SDKs' aiohttp one included, build them themselves)."""
    wrap = _attempt_deadline_transport()
    transport = getattr(client, "_transport", None)
    if transport is None:  # an httpx without the attribute: only each call's deadline applies
        log.debug("cannot bound the attempts of %s; each call's deadline still applies", type(client).__name__)
        return client
    client._transport = wrap(transport, seconds)
    mounts = getattr(client, "_mounts", None)
    if isinstance(mounts, dict):  # proxy transports
        for pattern, t in list(mounts.items()):
            if t is not None:
                mounts[pattern] = wrap(t, seconds)
    return client


class _SDKBackend:
    """Shared plumbing: one SDK client per event loop (httpx pools are bound to their loop,
    and ``Judge.grade`` may run each batch in a fresh loop)."""

    def __init__(self, spec: JudgeSpec, settings: JudgeSettings, creds: Credentials):
        self.spec = spec
        self.settings = settings
        self._creds = creds
        self.counters = CallCounters()
        # Paces requests by the rate-limit headers of the responses (hooked below). Local servers
        # (openai-compatible:) send none: no pacing, and no probe request to find that out.
        paced = settings.pace_by_rate_limits and spec.provider in ("openai", "anthropic")
        self.limiter = RateLimiter() if paced else None
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}
        self._lock = threading.Lock()

    def _hooks(self) -> dict:
        counters, limiter = self.counters, self.limiter

        async def on_request(request):
            counters.attempts += 1
            # The Stainless SDKs number their attempts in this header: the cheapest honest count.
            if request.headers.get("x-stainless-retry-count", "0") not in ("0", ""):
                counters.retries += 1

        async def on_response(response):
            if limiter is not None:
                limiter.observe(current_request.get(), response.headers)
            if response.status_code == 429:
                counters.rate_limited += 1
            elif response.status_code >= 500:
                counters.server_errors += 1

        return {"request": [on_request], "response": [on_response]}

    def _http_client(self, sdk):
        import httpx2

        kwargs = dict(
            verify=_ssl_context(),
            timeout=httpx2.Timeout(self.settings.timeout, connect=min(10.0, self.settings.timeout)),
            limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=max(100, self.settings.concurrency)),
            follow_redirects=True, event_hooks=self._hooks(),
        )
        if self.settings.http == "aiohttp":
            # The SDK's own aiohttp transport: httpx's pool rescans every connection on each
            # request, which costs ~2 ms of CPU a call at concurrency 64.
            try:
                return _bound_attempts(sdk.DefaultAioHttpClient(**kwargs), self.settings.timeout)
            except (AttributeError, RuntimeError):
                log.debug("aiohttp transport unavailable; using httpx")
        return _bound_attempts(httpx2.AsyncClient(**kwargs), self.settings.timeout)

    @property
    def deadline(self) -> float:
        """The longest one call may take, retries included: ``max_retries + 1`` attempts of at most
        ``timeout`` each (the whole response, however it trickles) and the waits between them,
        counted at up to RETRY_WAIT_CAP each, and a second so that an attempt's own cut comes
        first. The client layer also waits this long (and a little) for a request another process
        has claimed."""
        s = self.settings
        return (s.max_retries + 1) * s.timeout + s.max_retries * RETRY_WAIT_CAP + 1.0

    async def _bounded(self, call):
        """Await the SDK ``call`` within :attr:`deadline`; past it, a "timeout" failure."""
        deadline = self.deadline
        try:
            async with _timeout_at(asyncio.get_running_loop().time() + deadline):
                return await call
        except (TimeoutError, asyncio.TimeoutError):
            raise BackendError("timeout", f"no reply within {deadline:g} s ({self.settings.max_retries + 1} "
                                          f"attempt(s) of at most {self.settings.timeout:g} s and the waits "
                                          f"between them)") from None

    def _client(self):
        if self._creds.dry_run:
            raise RuntimeError(f"judge {self.spec} was built for a dry run, without an API key: it makes no calls")
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.get(id(loop))
            if entry is None or entry[0] is not loop:
                # Forget clients of finished loops; their sockets died with the loop.
                self._clients = {k: v for k, v in self._clients.items() if not v[0].is_closed()}
                entry = (loop, self._new_client())
                self._clients[id(loop)] = entry
            return entry[1]

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        entry = self._clients.pop(id(loop), None)
        if entry is not None:
            await entry[1].close()

    def _error(self, e: Exception, sdk) -> BackendError:
        detail = redact(str(e), self._creds.secrets)[:500]
        if isinstance(e, sdk.RateLimitError):
            return BackendError("rate limited", detail)
        if isinstance(e, sdk.APITimeoutError) and not _dropped(e):
            return BackendError("timeout", detail)
        if isinstance(e, sdk.APIConnectionError):
            return BackendError("connection error", detail)
        if isinstance(e, sdk.AuthenticationError):
            return BackendError("auth error", detail)
        if isinstance(e, sdk.APIStatusError):
            return BackendError(f"http {e.status_code}", detail)
        return BackendError("bad response", f"{type(e).__name__}: {detail}")


def _dropped(e: BaseException) -> bool:
    """Whether an SDK "timeout" is really a connection the server dropped. The SDKs' aiohttp
    transport re-raises aiohttp's ServerDisconnectedError as httpx's ConnectTimeout; what lies
    under it tells a dropped connection (a connection error, no timeout) from a real timeout."""
    try:
        from aiohttp import ClientConnectionError
    except ImportError:  # the httpx transport reports a disconnect as a connection error itself
        return False
    causes, x = [], e.__cause__ or e.__context__
    while x is not None and len(causes) < 10:
        causes.append(x)
        x = x.__cause__ or x.__context__
    if any(isinstance(c, TimeoutError) for c in causes):  # aiohttp's timeouts are TimeoutErrors too
        return False
    return any(isinstance(c, (ClientConnectionError, ConnectionError)) for c in causes)


class OpenAIBackend(_SDKBackend):
    """``openai:`` and ``openai-compatible:`` (vLLM, TGI, llama.cpp) via ``openai.AsyncOpenAI``."""

    def _new_client(self):
        import openai

        return openai.AsyncOpenAI(
            api_key=self._creds.api_key, base_url=self._creds.base_url, max_retries=self.settings.max_retries,
            timeout=self.settings.timeout, http_client=self._http_client(openai),
        )

    # Several samples of one prompt in one request (the API's ``n``): the prompt is sent, and
    # counted in the returned usage, once. ``CachedCompleter`` uses it when the settings allow.
    supports_choices = True

    async def complete(self, messages, *, temperature, max_tokens) -> Completion:
        return (await self.complete_choices(messages, temperature=temperature, max_tokens=max_tokens, n=1))[0]

    def request_body(self, messages, *, temperature, max_tokens, n: int = 1) -> dict:
        """The chat-completions body, online and in a batch file alike."""
        body: dict = {"model": self.spec.model, "messages": messages, "max_tokens": max_tokens}
        if temperature is not None:
            body["temperature"] = temperature
        if n > 1:
            body["n"] = n
        return body

    async def complete_choices(self, messages, *, temperature, max_tokens, n: int) -> list[Completion]:
        """``n`` samples of one prompt from one request. A server that ignores ``n`` may return
        fewer; the caller asks for the rest. The usage, reported for the whole request, is split
        evenly over the replies so that their sum is the request's."""
        import openai

        body = self.request_body(messages, temperature=temperature, max_tokens=max_tokens, n=n)
        try:
            # The SDK's generic ``post`` (same retries, timeouts, errors as ``chat.completions.create``)
            # with the body as plain JSON: the typed request transform and response models cost
            # ~1.5 ms of CPU a call, the whole client budget at high concurrency.
            r = await self._bounded(self._client().post("/chat/completions", body=body, cast_to=object))
            return openai_completions(r, n)
        except openai.OpenAIError as e:
            raise self._error(e, openai) from None
        except (IndexError, KeyError, AttributeError, TypeError, ValueError) as e:
            raise BackendError("bad response", f"{type(e).__name__}: {redact(str(e), self._creds.secrets)[:300]}") from None


def openai_completions(r: dict, n: int) -> list[Completion]:
    """The replies in a chat-completions response body (at most ``n``, in choice order)."""
    choices = sorted(r["choices"][:n], key=lambda c: c.get("index") or 0)
    if not choices:
        raise ValueError("no choices in the reply")
    usage = r.get("usage") or {}
    n_in = _split(usage.get("prompt_tokens") or 0, len(choices))
    n_out = _split(usage.get("completion_tokens") or 0, len(choices))
    out = []
    for i, choice in enumerate(choices):
        message = choice.get("message") or {}
        out.append(Completion(message.get("content"), Usage(n_in[i], n_out[i]), choice.get("finish_reason"),
                              message.get("refusal")))
    return out


def _split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` integer shares that add up to it (the remainder on the first)."""
    share, rest = divmod(int(total), parts)
    return [share + rest] + [share] * (parts - 1)


class AnthropicBackend(_SDKBackend):
    """``anthropic:`` via ``anthropic.AsyncAnthropic`` (system prompt is a separate field there)."""

    def _new_client(self):
        import anthropic

        return anthropic.AsyncAnthropic(
            api_key=self._creds.api_key, base_url=self._creds.base_url, max_retries=self.settings.max_retries,
            timeout=self.settings.timeout, http_client=self._http_client(anthropic),
        )

    def request_params(self, messages, *, temperature, max_tokens) -> dict:
        """The Messages API parameters, online and in a message batch alike."""
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        params: dict = {"model": self.spec.model, "max_tokens": max_tokens,
                        "messages": [m for m in messages if m["role"] != "system"]}
        if system:
            params["system"] = system
        if temperature is not None:
            params["temperature"] = temperature
        return params

    async def complete(self, messages, *, temperature, max_tokens) -> Completion:
        import anthropic

        params = self.request_params(messages, temperature=temperature, max_tokens=max_tokens)
        if "temperature" in params:
            # anthropic 2.x dropped the ``temperature`` argument; the Messages API still reads it.
            params["extra_body"] = {"temperature": params.pop("temperature")}
        try:
            return anthropic_completion(await self._bounded(self._client().messages.create(**params)))
        except anthropic.AnthropicError as e:
            raise self._error(e, anthropic) from None
        except (IndexError, AttributeError, TypeError, ValueError) as e:
            raise BackendError("bad response", f"{type(e).__name__}: {redact(str(e), self._creds.secrets)[:300]}") from None


def anthropic_completion(r: Any) -> Completion:
    """The reply in a Messages API ``Message`` (online, or a succeeded batch result)."""
    text = "".join(getattr(b, "text", "") for b in r.content if getattr(b, "type", "") == "text")
    usage = Usage(r.usage.input_tokens or 0, r.usage.output_tokens or 0)
    refusal = "stop_reason=refusal" if r.stop_reason == "refusal" else None
    return Completion(text, usage, r.stop_reason, refusal)


class HFBackend:
    """``hf:<dir>``: a local checkpoint in-process. Concurrent ``complete`` calls are gathered
    into batches (left-padded ``generate``) run one at a time in a worker thread, so the event
    loop stays free and the model sees full batches."""

    def __init__(self, spec: JudgeSpec, settings: JudgeSettings):
        self.spec = spec
        self.settings = settings
        self.counters = CallCounters()
        self.batches: list[int] = []  # sizes of the generate() calls, for tests and tuning
        self._model = None
        self._tok = None
        self._load_lock = threading.Lock()
        self._gen_lock = threading.Lock()
        self._queues: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = {}

    def _load(self):
        with self._load_lock:
            if self._model is None:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer

                tok = AutoTokenizer.from_pretrained(self.spec.model)
                tok.padding_side = "left"
                if tok.pad_token is None:
                    tok.pad_token = tok.eos_token
                device = "cuda" if torch.cuda.is_available() else "cpu"
                model = AutoModelForCausalLM.from_pretrained(self.spec.model).to(device).eval()
                self._tok, self._model = tok, model
        return self._tok, self._model

    def _generate(self, batch: list[tuple[list[dict], float, int]]) -> list[Completion]:
        import torch

        tok, model = self._load()
        temperature, max_tokens = batch[0][1], batch[0][2]
        prompts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m, _, _ in batch]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        kwargs: dict = {"max_new_tokens": max_tokens, "pad_token_id": tok.pad_token_id}
        temperature = 1.0 if temperature is None else temperature  # None: the APIs' default, 1.0
        sample = temperature > 0
        kwargs.update({"do_sample": True, "temperature": temperature} if sample else {"do_sample": False})
        with self._gen_lock, torch.no_grad():
            out = model.generate(**enc, **kwargs)
        self.batches.append(len(batch))
        n_in = enc["input_ids"].shape[1]
        results = []
        for i in range(len(batch)):
            new = out[i, n_in:]
            n_out = int((new != tok.pad_token_id).sum())
            text = tok.decode(new, skip_special_tokens=True)
            n_prompt = int(enc["attention_mask"][i].sum())
            finish = "length" if n_out >= max_tokens else "stop"
            results.append(Completion(text, Usage(n_prompt, n_out), finish))
        return results

    def _queue(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        entry = self._queues.get(id(loop))
        if entry is None or entry[0] is not loop:
            q: asyncio.Queue = asyncio.Queue()
            self._queues = {k: v for k, v in self._queues.items() if not v[0].is_closed()}
            self._queues[id(loop)] = (loop, q)
            loop.create_task(self._worker(q))
            return q
        return entry[1]

    async def _worker(self, q: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await q.get()
            await asyncio.sleep(0)  # let the other concurrent callers enqueue
            batch = [first]
            while len(batch) < self.settings.batch_size and not q.empty():
                batch.append(q.get_nowait())
            # Only same-settings requests share a generate() call; the rest wait for the next one.
            key = batch[0][1:3]
            same = [b for b in batch if b[1:3] == key]
            for b in batch:
                if b[1:3] != key:
                    q.put_nowait(b)
            try:
                results = await loop.run_in_executor(None, self._generate, [b[0] for b in same])
                for b, r in zip(same, results):
                    if not b[3].done():
                        b[3].set_result(r)
            except Exception as e:  # noqa: BLE001 - a model failure must fail its calls, not hang them
                for b in same:
                    if not b[3].done():
                        b[3].set_exception(BackendError("hf error", f"{type(e).__name__}: {e}"[:500]))

    async def complete(self, messages, *, temperature, max_tokens) -> Completion:
        fut = asyncio.get_running_loop().create_future()
        self.counters.attempts += 1
        await self._queue().put(((messages, temperature, max_tokens), temperature, max_tokens, fut))
        return await fut

    async def aclose(self) -> None:
        pass


def make_backend(spec: str | JudgeSpec, settings: JudgeSettings | None = None) -> Backend:
    """A backend for a spec; reads keys from the environment, never calls the network."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    settings = settings or JudgeSettings()
    creds = credentials_for(spec)
    if spec.provider in ("openai", "openai-compatible"):
        return OpenAIBackend(spec, settings, creds)
    if spec.provider == "anthropic":
        return AnthropicBackend(spec, settings, creds)
    return HFBackend(spec, settings)
