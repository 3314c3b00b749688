"""skillmix_tasks is pure: no network, no model, nothing from the layers above it."""

import ast
import subprocess
import sys
from pathlib import Path

import skillmix_tasks

PACKAGE = Path(skillmix_tasks.__file__).parent
FORBIDDEN = {"torch", "transformers", "accelerate", "datasets", "openai", "anthropic", "httpx", "requests",
             "urllib", "http", "socket", "aiohttp", "skillmix", "grading", "training", "leaderboard", "vllm"}
# lm_eval is allowed only in the lm-eval glue module that lm-eval itself imports.
LMEVAL_GLUE = {"lmeval"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_forbidden_imports_in_source():
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name in LMEVAL_GLUE:
            continue
        bad = _imports(path) & (FORBIDDEN | {"lm_eval"})
        assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {sorted(bad)}"


def test_importing_the_core_loads_no_heavy_or_network_module():
    code = ("import sys, skillmix_tasks; skillmix_tasks.sample_items('heldout', 3, 5); "
            "skillmix_tasks.default_catalog(); print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    loaded = {m.split(".")[0] for m in out}
    assert not loaded & (FORBIDDEN - {"urllib", "http"} | {"lm_eval"}), loaded & FORBIDDEN
