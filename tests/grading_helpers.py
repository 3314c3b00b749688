"""Shared helpers for the grading tests: a fake key, items, and judges pointed at a FakeLLMServer."""

from __future__ import annotations

from skillmix.grading import resolve_judge
from skillmix_tasks import sample_items

FAKE_KEY = "sk-test-SECRET-4f9d2c7e1b"
TEXT = "The tailor argued that all seams either hold or fail. So the hem held."


def items(n: int = 4, k: int = 2, split: str = "heldout"):
    return sample_items(split, k, n=n)


def judge_for(provider: str, srv, tmp_path, monkeypatch, **config):
    """A judge of ``provider`` talking to ``srv`` with a fake key and a per-test cache."""
    for var in ("SKILLMIX_JUDGE", "SKILLMIX_CACHE", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    if provider == "openai":
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", srv.openai_url)
        spec = "openai:gpt-4o"
    elif provider == "anthropic":
        monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.anthropic_url)
        spec = "anthropic:claude-sonnet-4-6"
    else:
        spec = f"openai-compatible:local-judge@{srv.openai_url}"
    settings = {"cache": str(tmp_path / "judge.sqlite"), "timeout": 2.0, "max_retries": 2, **config}
    return resolve_judge(spec, settings)
