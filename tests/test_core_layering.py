"""Imports run one way, in every package: each may use only the layers below it.

    skillmix_tasks  <-  grading  <-  harness  <-  datagen  <-  training  <-  leaderboard  <-  pipeline

(the leaderboard reads files: it uses the benchmark's constants and the harness's verdict reader, no judge,
no trainer). A reference counts however it is written: ``import``/``from`` (relative ones resolved), a
string naming one of our modules (``importlib.import_module``, ``python -m``, a YAML ``!function``), and a
task YAML's ``!function`` that lm-eval resolves next to the YAML. ``skillmix_tasks`` is pure besides:
no network, no model, no lm-eval.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Folder -> (import name, the packages of ours it may use).
LAYERS = {
    "skillmix_tasks": ("skillmix_tasks", set()),
    "grading": ("skillmix.grading", {"skillmix_tasks"}),
    "harness": ("skillmix.harness", {"skillmix_tasks", "grading"}),
    "datagen": ("skillmix.datagen", {"skillmix_tasks", "grading", "harness"}),
    "training": ("skillmix.training", {"skillmix_tasks", "grading", "harness", "datagen"}),
    "leaderboard": ("skillmix.leaderboard", {"skillmix_tasks", "harness"}),
    "pipeline": ("skillmix.pipeline", {"skillmix_tasks", "grading", "harness", "datagen", "training", "leaderboard"}),
}
BY_NAME = {name: folder for folder, (name, _) in LAYERS.items()}
OURS = re.compile(r"^(skillmix_tasks|skillmix\.\w+)(?:\.[\w.]+)?$")
# Third-party modules a layer must not touch.
PURE = {"torch", "transformers", "accelerate", "datasets", "openai", "anthropic", "httpx", "requests", "urllib",
        "http", "socket", "aiohttp", "vllm", "lm_eval", "peft"}
THIRD_PARTY = {"skillmix_tasks": PURE, "grading": {"lm_eval"}}


def _folder_of(module: str) -> str | None:
    m = OURS.match(module)
    if not m:
        return None
    return BY_NAME.get(m.group(1)) or ("?" + m.group(1) if m.group(1).startswith("skillmix.") else None)


def _module_path(path: Path, folder: str) -> list[str]:
    rel = path.relative_to(ROOT / folder).with_suffix("")
    parts = LAYERS[folder][0].split(".") + list(rel.parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def references(path: Path, folder: str) -> list[tuple[int, str]]:
    """(line, module) of everything a Python file refers to: imports and module-path strings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_path(path, folder)
    is_package = path.name == "__init__.py"
    docs = _docstrings(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((node.lineno, module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            for word in re.findall(r"(?:skillmix_tasks|skillmix\.\w+)(?:\.\w+)*", node.value):
                out.append((node.lineno, word))
    return out


def _sources():
    for folder in LAYERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield folder, path


def test_every_package_imports_only_the_layers_below_it():
    bad = []
    for folder, path in _sources():
        allowed = LAYERS[folder][1] | {folder}
        for line, module in references(path, folder):
            target = _folder_of(module)
            top = module.split(".")[0]
            if target is not None and target not in allowed:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {folder} refers to {module}")
            elif top in THIRD_PARTY.get(folder, ()):
                bad.append(f"{path.relative_to(ROOT)}:{line}: {folder} imports {module}")
    assert not bad, "\n".join(bad)


def test_task_yaml_functions_resolve_inside_the_harness():
    """lm-eval looks a ``!function a.b`` up as ``<yaml dir>/a.py`` first, then as an import."""
    refs = []
    for yaml_file in sorted(f for folder in LAYERS for f in (ROOT / folder).rglob("*yaml")):
        for qual in re.findall(r"!function\s+([\w.]+)", yaml_file.read_text(encoding="utf-8")):
            module = qual.rpartition(".")[0]
            local = yaml_file.parent / (module.replace(".", "/") + ".py")
            owner = yaml_file.relative_to(ROOT).parts[0]
            target = owner if local.is_file() else _folder_of(module)
            refs.append((yaml_file, qual, target))
            assert target in LAYERS.get(owner, ("", set()))[1] | {owner}, f"{yaml_file}: !function {qual} -> {target}"
    assert refs and all(t == "harness" for _, _, t in refs), refs


def test_the_layering_check_sees_each_way_of_naming_a_module(tmp_path, monkeypatch):
    """The check itself: a plain, relative, string and YAML reference upward are each caught."""
    fake = tmp_path / "grading"
    fake.mkdir()
    (fake / "sub").mkdir()
    (fake / "sub" / "m.py").write_text(
        '"""Docstrings may name skillmix.harness."""\n'
        "import skillmix.harness.verdicts\n"
        "from ...datagen import run\n"
        "import importlib\n"
        "importlib.import_module('skillmix.leaderboard.cli')\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    got = sorted(m for _, m in references(fake / "sub" / "m.py", "grading"))
    assert got == ["importlib", "skillmix.datagen", "skillmix.harness.verdicts", "skillmix.leaderboard.cli"]
    assert [_folder_of(m) for m in got] == [None, "datagen", "harness", "leaderboard"]


def test_only_the_verdict_module_reads_the_verdict_format():
    """One owner for the samples format: no other module of the packages reads lm-eval's filtered responses."""
    readers = [str(p.relative_to(ROOT)) for _, p in _sources() if "filtered_resps" in p.read_text(encoding="utf-8")
               and p.name != "verdicts.py"]
    assert not readers, readers


def test_importing_the_core_loads_no_heavy_or_network_module():
    code = ("import sys, skillmix_tasks; skillmix_tasks.sample_items('heldout', 3, 5); "
            "skillmix_tasks.default_catalog(); print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    loaded = {m.split(".")[0] for m in out}
    assert not loaded & (PURE - {"urllib", "http"}), loaded & PURE


def test_the_hook_keeps_interpreter_start_light():
    """``skillmix_lmeval.pth`` imports the hook in every interpreter of the environment (pip too): a bare
    interpreter has it, and nothing heavy or of the layers behind it."""
    code = "import sys; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "skillmix.harness._lmeval_hook" in out
    heavy = [m for m in out if m.split(".")[0] in PURE - {"urllib"} | {"skillmix_tasks", "yaml", "numpy"}
             or m.startswith(("skillmix.grading", "skillmix.harness.")) and m != "skillmix.harness._lmeval_hook"]
    assert not heavy, heavy
