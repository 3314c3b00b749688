"""Judge specs and settings: which judge, how it is called, and where that was configured.

A judge is a spec string (AlpacaEval-style: a judge is configuration, not code):

    openai:<model>                       OPENAI_API_KEY, optional OPENAI_BASE_URL
    anthropic:<model>                    ANTHROPIC_API_KEY, optional ANTHROPIC_BASE_URL
    openai-compatible:<model>@<base_url> vLLM, TGI, llama.cpp; key optional (SKILLMIX_JUDGE_API_KEY)
    hf:<local checkpoint dir>            in-process transformers

Resolution never touches the network, so callers can fail fast before hours of generation.
API keys are read here and kept out of everything that is printed, logged or cached.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from skillmix_tasks.prompts import GRADER_SYSTEM_PROMPT
from skillmix_tasks.protocol import N_GRADINGS
from skillmix_tasks.suggest import did_you_mean

log = logging.getLogger(__name__)

PROVIDERS = ("openai", "anthropic", "openai-compatible", "hf")
ENV_JUDGE = "SKILLMIX_JUDGE"
ENV_CACHE = "SKILLMIX_CACHE"
ENV_COMPATIBLE_KEY = "SKILLMIX_JUDGE_API_KEY"
DEFAULT_CACHE = Path("~/.cache/skillmix/judge.sqlite")

_WAYS_BY_COMMAND = {
    "lm_eval": ("""lm_eval ... --metadata '{"judge": "openai:gpt-4o"}'""",
                """lm_eval ... --metadata '{"judge_config": "judge.yaml"}' (a file or a mapping)"""),
    None: ("skillmix-grade / skillmix-datagen --judge openai:gpt-4o; under lm_eval, --metadata '{\"judge\": ...}'",
           "--config judge.yaml, or lm_eval --metadata '{\"judge_config\": \"judge.yaml\"}'"),
}


def how_to_configure(command: str | None = None) -> str:
    """The no-judge message, with the flags of ``command`` (``skillmix-grade``, ``skillmix-datagen``,
    ``lm_eval``; None: all of them)."""
    flag, config = _WAYS_BY_COMMAND.get(command) or (f"{command} --judge openai:gpt-4o",
                                                     f"{command} --config judge.yaml")
    return f"""No judge is configured. Configure one in any of these four ways:
  1. on the command line:   {flag}
  2. in the environment:    export {ENV_JUDGE}=anthropic:claude-sonnet-4-6
  3. in a YAML config:      judge: openai-compatible:my-model@http://localhost:8000/v1
                            ({config})
  4. an API key alone:      OPENAI_API_KEY or ANTHROPIC_API_KEY set picks a default judge
Spec forms: openai:<model> (OPENAI_API_KEY), anthropic:<model> (ANTHROPIC_API_KEY),
openai-compatible:<model>@<base_url> (key optional, {ENV_COMPATIBLE_KEY}), hf:<local checkpoint dir>."""


HOW_TO_CONFIGURE = how_to_configure()

# With only a key present the user has clearly chosen a provider; the model is our default.
DEFAULT_JUDGE_FOR_KEY = (("OPENAI_API_KEY", "openai:gpt-4o"), ("ANTHROPIC_API_KEY", "anthropic:claude-sonnet-4-6"))


class JudgeConfigError(ValueError):
    """The judge cannot be configured as asked; the message says how to fix it."""


# What a credential looks like where it may hide in a message: the user:password of a URL, a
# provider key (sk-..., sk-ant-..., hf_...), a bearer token, an api_key=/key= query value.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s?#]*@")
_KEYLIKE = re.compile(r"(?i)\b(?:sk|pk|rk)-[a-z0-9_-]{12,}|\bhf_[a-z0-9]{30,}|(?<=Bearer )[^\s'\"]+"
                      r"|(?<=[?&;])(?:api[_-]?key|key|token|access_token)=[^&\s'\"#]+")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with the given secrets and anything credential-like (see above) replaced by ***.
    Every message that may quote a spec, a URL or an SDK error goes through here."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    text = _URL_USERINFO.sub(r"\1***@", text)
    return _KEYLIKE.sub("***", text)


def carries_credentials(url: str) -> bool:
    """A URL with a user:password@, or a key in its path or query (the host is left alone: a server
    may well be called sk-inference-01): it would be echoed in every summary, cache key and results file."""
    if _URL_USERINFO.search(url):
        return True
    scheme, sep, rest = url.partition("://")
    tail = rest[next((i for i, c in enumerate(rest) if c in "/?#"), len(rest)):] if sep else url
    return redact(tail) != tail


@dataclass(frozen=True)
class JudgeSpec:
    provider: str
    model: str
    base_url: str | None = None  # openai-compatible only; the others read it from the env

    def __str__(self) -> str:
        if self.provider == "openai-compatible":
            return f"{self.provider}:{self.model}@{self.base_url}"
        return f"{self.provider}:{self.model}"


_COMPATIBLE_RE = re.compile(r"^(?P<model>.+?)@(?P<url>https?://\S+)$")
# Provider model ids: "gpt-4o", "claude-sonnet-4-6", "ft:gpt-4o:org:name:id", "meta-llama/Llama-3-70B".
_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])$")  # "_": container service names


def _check_url(url: str, shown: str) -> None:
    """A base URL read strictly: trailing text, a second spec after a comma or a bad port is refused,
    not sent on as part of the URL."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as e:
        raise JudgeConfigError(f"judge spec {shown!r}: the base URL is not valid ({e})") from None
    host = parts.hostname or ""
    bad = [c for c in ",;'\"<>{}|\\^`" if c in url]
    if not _HOST_RE.match(host if not host.count(":") else f"[{host}]") or bad or port == 0:
        what = f"it holds {''.join(bad)!r}" if bad else f"host {host!r} is not a host name or address"
        raise JudgeConfigError(f"judge spec {shown!r}: the base URL is not valid ({what}); one judge per spec, "
                               "as openai-compatible:<model>@http(s)://<host>[:port]/<path>")


def parse_spec(text: str) -> JudgeSpec:
    """Parse a spec string; checks its form only (keys and paths are checked by resolve)."""
    text = (text or "").strip()
    shown = redact(text)  # a spec may carry a password (user:pw@host) or a pasted key: never echo it
    provider, sep, rest = text.partition(":")
    provider = provider.strip().lower()
    if not sep or not rest.strip():
        raise JudgeConfigError(f"judge spec {shown!r} is not of the form <provider>:<model>.\n{HOW_TO_CONFIGURE}")
    if provider not in PROVIDERS:
        raise JudgeConfigError(f"unknown judge provider {redact(provider)!r} in {shown!r}; "
                               f"expected one of {', '.join(PROVIDERS)}")
    rest = rest.strip()
    if provider == "openai-compatible":
        m = _COMPATIBLE_RE.match(rest)
        if not m:
            raise JudgeConfigError(f"judge spec {shown!r}: expected openai-compatible:<model>@<http(s) base_url>")
        if carries_credentials(m.group("url")):
            raise JudgeConfigError(f"judge spec {shown!r}: credentials in the base URL (user:password@, a key or "
                                   f"token in the query) are not supported; put the key in {ENV_COMPATIBLE_KEY}")
        _check_url(m.group("url"), shown)
        spec = JudgeSpec(provider, m.group("model"), m.group("url").rstrip("/"))
    else:
        spec = JudgeSpec(provider, rest)
    if spec.provider != "hf" and not _MODEL_RE.match(spec.model):
        raise JudgeConfigError(f"judge spec {shown!r}: {redact(spec.model)!r} is not a model name (letters, digits "
                               "and . _ - : / only; one judge per spec)")
    if spec.provider != "hf" and redact(spec.model) != spec.model:
        raise JudgeConfigError(f"judge spec {shown!r}: the model name looks like an API key; keys go in the "
                               f"environment (OPENAI_API_KEY, ANTHROPIC_API_KEY, {ENV_COMPATIBLE_KEY})")
    return spec


@dataclass(frozen=True)
class JudgeSettings:
    """How the judge is called. Only ``reply_settings()`` enter the cache key."""

    # As the reference grader call: the API's own default temperature (1.0 for OpenAI and Anthropic;
    # None = not sent; the hf backend samples at 1.0) and a short system prompt. Gradings are
    # independent samples whose majority vote smooths the judge's noise. "" sends no system prompt.
    temperature: float | None = None
    max_tokens: int = 512  # the reference's grader budget (max_tokens=512 on its OpenAI calls)
    n_gradings: int = N_GRADINGS
    system_prompt: str | None = GRADER_SYSTEM_PROMPT
    concurrency: int = 32
    timeout: float = 120.0  # seconds per attempt
    max_retries: int = 4  # the SDK's own retries (429 with Retry-After, 5xx, timeouts)
    cache: str | None = None  # path, "off" for none; default SKILLMIX_CACHE or DEFAULT_CACHE
    max_cost: float | None = None  # USD; calls that would pass it are not made
    prices: Mapping[str, Any] | None = None  # {"input": $/Mtok, "output": $/Mtok} or {model: {...}}
    batch_size: int = 8  # hf backend: prompts per generate() call
    http: str = "aiohttp"  # SDK transport: "aiohttp" (the SDKs' DefaultAioHttpClient) or "httpx"
    # Gradings of one text asked for in one request (the OpenAI API's ``n``). None: all of a text's
    # gradings for ``openai:``, one per request elsewhere. vLLM takes ``n`` too: set it there.
    choices_per_call: int | None = None
    # Wait for room under the provider's tokens/requests-per-minute limits, read from the rate-limit
    # headers of its responses, instead of sending until refused (ratelimit.py).
    pace_by_rate_limits: bool = True
    # Through the provider's Batch API (openai:, anthropic:; half price, no online rate limit): see batch.py.
    batch: bool = False
    batch_poll_interval: float = 60.0  # seconds between status polls of the submitted batches
    batch_wait: bool = True  # False: submit and return (a later run with the same cache collects)
    batch_retries: int = 2  # new batches for expired and retryable errored lines, then unscored

    def reply_settings(self) -> dict:
        """What changes a reply, hence the cache key (not concurrency, timeouts or budget)."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "system_prompt": self.system_prompt}

    def choices_for(self, spec: "JudgeSpec") -> int:
        """How many samples one request asks for (1 where the backend has no ``n``)."""
        if self.choices_per_call is not None:
            return self.choices_per_call
        return self.n_gradings if spec.provider == "openai" else 1

    def cache_path(self) -> Path | None:
        raw = self.cache if self.cache is not None else os.environ.get(ENV_CACHE) or str(DEFAULT_CACHE)
        if str(raw).lower() in ("off", "none", ""):
            return None
        return Path(raw).expanduser()

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


SETTING_NAMES = tuple(f.name for f in dataclasses.fields(JudgeSettings))
CONFIG_KEYS = ("judge",) + SETTING_NAMES  # what a judge config (YAML, judge_config) may hold


def check_keys(config: Mapping[str, Any], where: str = "") -> None:
    """Refuse a key that is not a judge setting: a misspelt ``max_cost`` would remove the budget."""
    for key in config:
        if key not in CONFIG_KEYS:
            hint = did_you_mean(str(key), CONFIG_KEYS) or f"; known: {', '.join(CONFIG_KEYS)}"
            raise JudgeConfigError(f"{where}{': ' if where else ''}unknown judge setting {str(key)!r}{hint}")


def make_settings(config: Mapping[str, Any] | None = None, **overrides: Any) -> JudgeSettings:
    """Settings from a judge config dict (YAML, ``judge_config``) plus explicit overrides.

    Every key must be a setting (or ``judge``); anything else is a :class:`JudgeConfigError`
    that names it and the setting it most likely misspells.
    """
    check_keys(config or {})
    check_keys(overrides)
    values: dict[str, Any] = {}
    for source in (config or {}), overrides:
        for k, v in source.items():
            if k in SETTING_NAMES and (v is not None or k in ("temperature", "max_cost")):
                values[k] = v
    try:
        s = JudgeSettings(**values)
        s = dataclasses.replace(
            s, temperature=None if s.temperature is None else float(s.temperature), max_tokens=int(s.max_tokens), n_gradings=int(s.n_gradings),
            concurrency=int(s.concurrency), timeout=float(s.timeout), max_retries=int(s.max_retries),
            batch_size=int(s.batch_size), max_cost=None if s.max_cost is None else float(s.max_cost),
            choices_per_call=None if s.choices_per_call is None else int(s.choices_per_call),
            pace_by_rate_limits=_flag(s.pace_by_rate_limits, "pace_by_rate_limits"),
            batch=_flag(s.batch, "batch"), batch_wait=_flag(s.batch_wait, "batch_wait"),
            batch_poll_interval=float(s.batch_poll_interval), batch_retries=int(s.batch_retries),
        )
    except (TypeError, ValueError) as e:
        raise JudgeConfigError(f"bad judge setting: {e}") from None
    if s.http not in ("aiohttp", "httpx"):
        raise JudgeConfigError(f"http must be 'aiohttp' or 'httpx', not {s.http!r}")
    if s.choices_per_call is not None and s.choices_per_call < 1:
        raise JudgeConfigError(f"choices_per_call must be >= 1 (or unset for the provider's default), "
                               f"got {s.choices_per_call}")
    if s.batch_poll_interval <= 0 or s.batch_retries < 0:
        raise JudgeConfigError(f"batch_poll_interval must be > 0 and batch_retries >= 0 "
                               f"(got {s.batch_poll_interval}, {s.batch_retries})")
    if s.n_gradings < 1 or s.concurrency < 1 or s.max_tokens < 1 or s.max_retries < 0 or s.timeout <= 0:
        raise JudgeConfigError(f"judge settings out of range: n_gradings, concurrency, max_tokens >= 1, "
                               f"max_retries >= 0, timeout > 0 (got {s.n_gradings}, {s.concurrency}, "
                               f"{s.max_tokens}, {s.max_retries}, {s.timeout})")
    return s


def _flag(value: Any, name: str) -> bool:
    """A yes/no setting from YAML, JSON or a --metadata string (where "false" must not mean True)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", "none", ""):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


@dataclass(frozen=True)
class Credentials:
    """Where a backend connects and with what key. Never printed: ``repr`` hides the key.
    ``dry_run``: the key is a placeholder (see :func:`dry_run_credentials`); no call may be made."""

    api_key: str | None = None
    base_url: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)
    dry_run: bool = False

    def __repr__(self) -> str:
        return (f"Credentials(api_key={'***' if self.api_key else None}, base_url={self.base_url!r}"
                + (", dry_run=True)" if self.dry_run else ")"))


DRY_RUN_KEY = "dry-run-placeholder"
_dry_run = contextvars.ContextVar("skillmix_dry_run_credentials", default=False)


@contextlib.contextmanager
def dry_run_credentials() -> Iterator[None]:
    """Judges and teachers built inside (this thread or task only) do without a missing API key:
    a dry run makes no call, so their backends get a placeholder and refuse to be called.
    Keys that are set are read as usual; the environment is not changed."""
    token = _dry_run.set(True)
    try:
        yield
    finally:
        _dry_run.reset(token)


def credentials_for(spec: JudgeSpec) -> Credentials:
    """Read the key and base URL a spec needs from the environment; error if a key is missing
    (inside :func:`dry_run_credentials`: a placeholder instead)."""
    env = os.environ
    if spec.provider in ("openai", "anthropic"):
        key_var = "OPENAI_API_KEY" if spec.provider == "openai" else "ANTHROPIC_API_KEY"
        url_var = "OPENAI_BASE_URL" if spec.provider == "openai" else "ANTHROPIC_BASE_URL"
        key = env.get(key_var)
        dry_run = not key and _dry_run.get()
        if not key and not dry_run:
            raise JudgeConfigError(f"judge {spec} needs {key_var} in the environment (it is not set)")
        secrets = (key,) if key else ()
        url = env.get(url_var) or None
        if url and carries_credentials(url):
            # The SDKs send the key as a header and refuse a URL that carries credentials too:
            # every call would fail. Say so now, without the password.
            raise JudgeConfigError(f"{url_var}={redact(url, secrets)} carries credentials (user:password@, a key "
                                   f"or token in the query); the key goes in {key_var}: drop them from the URL")
        return Credentials(DRY_RUN_KEY, url, (), dry_run=True) if dry_run else Credentials(key, url, secrets)
    if spec.provider == "openai-compatible":
        key = env.get(ENV_COMPATIBLE_KEY)
        # vLLM and llama.cpp accept any key; the SDK insists on one.
        return Credentials(key or "EMPTY", spec.base_url, (key,) if key else ())
    path = Path(spec.model).expanduser()
    if not path.is_dir():
        raise JudgeConfigError(f"judge {spec}: {path} is not a directory (hf: takes a local checkpoint folder)")
    if not (path / "config.json").is_file():
        raise JudgeConfigError(f"judge {spec}: {path} has no config.json; is it a save_pretrained checkpoint?")
    return Credentials()


def choose_spec(spec: str | None = None, config: Mapping[str, Any] | None = None, *,
                command: str | None = None) -> JudgeSpec:
    """The spec from (in order) the argument, ``config['judge']``, ``SKILLMIX_JUDGE``, a key alone.
    ``command`` names the program whose flags the no-judge error shows."""
    text = spec or (config or {}).get("judge") or os.environ.get(ENV_JUDGE)
    if text:
        return parse_spec(str(text))
    for var, default in DEFAULT_JUDGE_FOR_KEY:
        if os.environ.get(var):
            log.warning("no judge configured; %s is set, so using the default judge %s", var, default)
            return parse_spec(default)
    raise JudgeConfigError(how_to_configure(command))


def load_config_file(path: str | os.PathLike) -> dict:
    """A YAML judge config: ``judge: <spec>`` plus any settings (``temperature: 0.7`` ...)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise JudgeConfigError(f"cannot read judge config {path}: {e}") from None
    if not isinstance(data, dict):
        raise JudgeConfigError(f"judge config {path} must be a mapping (judge: ..., temperature: ...)")
    check_keys(data, f"judge config {path}")
    return data
