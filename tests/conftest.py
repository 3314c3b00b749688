import os
import sys
from pathlib import Path

import pytest

# No hub access in tests, ever.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).parent))

REFERENCE_FILE = Path("shared") / "reference" / "skillmix_public_gradings.jsonl"


def _find_reference() -> Path:
    """The real GPT-4 grader replies of the public reference repository (not redistributed here): $SKILLMIX_REFERENCE, else
    ``shared/reference/`` in the checkout or in any folder above it (a worktree sits deeper than main)."""
    if os.environ.get("SKILLMIX_REFERENCE"):
        return Path(os.environ["SKILLMIX_REFERENCE"])
    root = Path(__file__).resolve().parents[1]
    for folder in (root, *root.parents):
        if (folder / REFERENCE_FILE).is_file():
            return folder / REFERENCE_FILE
    return root.parent / REFERENCE_FILE


REFERENCE = _find_reference()


@pytest.fixture(scope="session")
def reference_rows() -> list[dict]:
    """The reference replies, one dict a line. Missing data skips locally but fails under CI=true:
    the golden parser tests must not pass silently by skipping."""
    if not REFERENCE.is_file():
        msg = f"{REFERENCE} is missing (set SKILLMIX_REFERENCE or place shared/reference/ next to the checkout)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true: {msg}")
        pytest.skip(msg)
    from skillmix_tasks.jsonl import iter_objects

    return [row for _, row in iter_objects(REFERENCE)]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Llama chat checkpoint folder (see tests/tiny_model.py)."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def fake_server():
    """A local OpenAI/Anthropic wire-protocol server (tests/fake_llm_server.py); it counts every request."""
    from fake_llm_server import FakeLLMServer

    with FakeLLMServer() as s:
        yield s


@pytest.fixture
def openai_env(monkeypatch, tmp_path, fake_server):
    """``openai:`` judges and teachers talk to ``fake_server`` with a fake key; no judge, cache or other
    base URL leaks in from the caller's environment. Returns ``tmp_path``, also the working directory."""
    from grading_helpers import FAKE_KEY

    for var in ("SKILLMIX_JUDGE", "SKILLMIX_CACHE", "ANTHROPIC_BASE_URL", "SKILLMIX_JUDGE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_url)
    monkeypatch.chdir(tmp_path)
    return tmp_path
