import os
import sys
from pathlib import Path

import pytest

# No hub access in tests, ever.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).parent))

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "skillmix_public_gradings.jsonl"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Llama chat checkpoint folder (see tests/tiny_model.py)."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
