"""Training data: chat conversations -> token ids with assistant-only labels -> (packed) batches.

Done once, before the loop, on every process (deterministic, so all processes agree):

1. ``tokenize_conversation`` renders the tokenizer's own chat template and labels only the characters of
   assistant contents (plus the end-of-turn token when ``train_on_eos``). The spans are found by rendering
   the conversation prefix by prefix, so any prefix-stable template works, not only ChatML.
2. ``pretrain_examples`` cuts a pre-training corpus into chunks with every token labelled, enough of them
   for ``pretrain_ratio`` of all labelled tokens.
3. ``pack`` groups examples into rows of at most ``max_length`` tokens (first-fit decreasing), or one
   example per row without packing. Position ids restart at 0 for every example; ``collate`` adds a
   block-diagonal 4D mask instead when ``packing_attention=block_mask``.

The first label of every example is -100, so no example is ever trained to predict from its neighbour.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch

from skillmix_tasks.jsonl import iter_objects

IGNORE = -100
log = logging.getLogger(__name__)


class DataError(ValueError):
    """A data file that cannot be used; the message names the file (and line)."""


class TemplateError(ValueError):
    """The chat template does not render conversations prefix by prefix."""


# ----------------------------------------------------------------------------- reading
def expand_paths(patterns: Sequence[str]) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(Path(pattern).expanduser())))
        if not matches:
            raise DataError(f"data: no file matches {pattern!r}")
        paths.extend(Path(m) for m in matches)
    return paths


def read_conversations(paths: Sequence[Path]) -> list[list[dict[str, str]]]:
    """Rows of chat JSONL (``{"messages": [{"role", "content"}, ...], ...}``); other keys are ignored."""
    conversations = []
    for path in paths:
        for n, row in iter_objects(path, DataError):
            messages = row.get("messages")
            if not isinstance(messages, list) or not messages or not all(
                    isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                    for m in messages):
                raise DataError(f"{path}:{n}: expected a 'messages' list of {{role, content}} strings")
            conversations.append([{"role": m["role"], "content": m["content"]} for m in messages])
    return conversations


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- tokenising
def assistant_char_spans(tokenizer, messages: list[dict[str, str]], train_on_eos: bool = True) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant answers.

    For assistant turn i the text rendered for ``messages[:i]`` with a generation prompt must be a prefix
    of the text rendered for ``messages[:i+1]``, itself a prefix of the whole conversation; the answer
    is then searched after that prefix (templates may strip it).
    """
    def render(msgs, gen):
        if not msgs:
            return ""
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)

    full = render(messages, False)
    eos = tokenizer.eos_token if train_on_eos else None
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prefix, upto = render(messages[:i], True), render(messages[: i + 1], False)
        if not (upto.startswith(prefix) and full.startswith(upto)):
            raise TemplateError(f"chat template is not prefix-stable at message {i}: cannot locate the "
                                "assistant answer (use a template that renders earlier turns unchanged)")
        content = message["content"]
        start = upto.find(content, len(prefix))
        if start < 0 and content.strip():
            content = content.strip()
            start = upto.find(content, len(prefix))
        if start < 0:
            raise TemplateError(f"assistant message {i} does not appear in the rendered template")
        end = start + len(content)
        if eos:
            j = upto.find(eos, end)
            if j >= 0:
                end = j + len(eos)
        if end > start:
            spans.append((start, end))
    return full, spans


def tokenize_conversation(tokenizer, messages, max_length: int, train_on_eos: bool = True) -> dict[str, list[int]]:
    """input_ids and labels (-100 outside assistant answers), truncated to ``max_length``."""
    text, spans = assistant_char_spans(tokenizer, messages, train_on_eos)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, labels, k = enc["input_ids"], [], 0
    for tok, (start, _end) in zip(ids, enc["offset_mapping"]):
        while k < len(spans) and start >= spans[k][1]:
            k += 1
        inside = k < len(spans) and spans[k][0] <= start < spans[k][1]
        labels.append(tok if inside else IGNORE)
    ids, labels = ids[:max_length], labels[:max_length]
    if labels:
        labels[0] = IGNORE
    return {"input_ids": ids, "labels": labels}


# ----------------------------------------------------------------------------- pre-training mix
def load_pretrain_texts(spec: str, text_field: str = "text", split: str = "train") -> Iterator[str]:
    """Documents from a .txt file (blank-line separated), a .jsonl file, a `save_to_disk` folder or a
    `datasets` name."""
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix in (".jsonl", ".json"):
        for n, row in iter_objects(path, DataError):
            if not isinstance(row.get(text_field), str):
                raise DataError(f"{path}:{n}: no string field {text_field!r} (pretrain_text_field)")
            yield row[text_field]
    elif path.is_file():
        for doc in path.read_text(encoding="utf-8").split("\n\n"):
            if doc.strip():
                yield doc.strip()
    else:
        import datasets

        ds = datasets.load_from_disk(str(path)) if path.is_dir() else datasets.load_dataset(spec, split=split)
        if isinstance(ds, datasets.DatasetDict):
            ds = ds[split]
        for row in ds:
            yield row[text_field]


def pretrain_examples(tokenizer, texts: Iterable[str], target_tokens: int, max_length: int) -> list[dict[str, list[int]]]:
    """Chunks of the concatenated corpus (documents joined by EOS) holding ``target_tokens`` labelled
    tokens; the corpus is cycled when it is too small (logged)."""
    eos = tokenizer.eos_token_id
    docs = [tokenizer(t, add_special_tokens=False)["input_ids"] + ([eos] if eos is not None else []) for t in texts]
    docs = [d for d in docs if len(d) > 1]
    if target_tokens <= 0:
        return []
    if not docs:
        raise ValueError("pretrain_data: no documents")
    out, labelled, stream, passes = [], 0, [], 0
    while labelled < target_tokens:
        for doc in docs:
            stream.extend(doc)
            while len(stream) >= max_length and labelled < target_tokens:
                take = min(max_length, target_tokens - labelled + 1)
                chunk, stream = stream[:take], stream[take:]
                out.append({"input_ids": chunk, "labels": [IGNORE] + chunk[1:]})
                labelled += len(chunk) - 1
            if labelled >= target_tokens:
                break
        passes += 1
        if passes > 1 and labelled < target_tokens and passes % 10 == 0:
            log.warning("pretrain_data: corpus repeated %d times to reach the ratio", passes)
    return out


# ----------------------------------------------------------------------------- packing
def pack(lengths: Sequence[int], max_length: int, packing: bool) -> list[list[int]]:
    """Rows of example indices: first-fit decreasing into ``max_length`` bins, or one per row."""
    if not packing:
        return [[i] for i in range(len(lengths))]
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    free: list[int] = []
    for i in order:
        for r, space in enumerate(free):
            if lengths[i] <= space:
                rows[r].append(i)
                free[r] -= lengths[i]
                break
        else:
            rows.append([i])
            free.append(max_length - lengths[i])
    return rows


class PackedDataset(torch.utils.data.Dataset):
    """One item = one row: its examples concatenated, position ids restarting per example."""

    def __init__(self, examples: list[dict[str, list[int]]], rows: list[list[int]]):
        self.examples, self.rows = examples, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        item = {"input_ids": [], "labels": [], "position_ids": [], "seq_lens": []}
        for j in self.rows[i]:
            ex = self.examples[j]
            item["input_ids"] += ex["input_ids"]
            item["labels"] += ex["labels"]
            item["position_ids"] += list(range(len(ex["input_ids"])))
            item["seq_lens"].append(len(ex["input_ids"]))
        return item


class EpochSampler(torch.utils.data.Sampler):
    """A seeded permutation per epoch; ``set_epoch`` makes the order a function of (seed, epoch) only,
    which is what exact resume needs."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


@dataclass
class Collator:
    pad_token_id: int
    block_mask: bool = False  # add a 4D block-diagonal causal mask (fallback isolation of packed examples)
    mask_dtype: torch.dtype | None = None  # None: boolean (sdpa); a float dtype: additive (eager)
    pad_to_multiple_of: int = 8
    flatten: bool = False  # one row of all items, no padding (varlen flash attention reads the position ids)

    def __call__(self, items: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        if self.flatten:
            items = [{key: [v for it in items for v in it[key]] for key in items[0]}]
            return {"input_ids": torch.tensor([items[0]["input_ids"]]), "labels": torch.tensor([items[0]["labels"]]),
                    "position_ids": torch.tensor([items[0]["position_ids"]]),
                    "n_tokens": torch.tensor([len(items[0]["input_ids"])])}
        width = max(len(it["input_ids"]) for it in items)
        width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        ids = torch.full((len(items), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
        pos = torch.zeros((len(items), width), dtype=torch.long)
        seg = torch.full((len(items), width), -1, dtype=torch.long)
        for b, it in enumerate(items):
            n = len(it["input_ids"])
            ids[b, :n] = torch.tensor(it["input_ids"])
            labels[b, :n] = torch.tensor(it["labels"])
            # padding continues the last example's positions: it is never attended to nor trained on
            last = it["seq_lens"][-1]
            pos[b, :n] = torch.tensor(it["position_ids"])
            pos[b, n:] = torch.arange(last, last + width - n)
            start = 0
            for s, length in enumerate(it["seq_lens"]):
                seg[b, start:start + length] = s
                start += length
        batch = {"input_ids": ids, "labels": labels, "position_ids": pos,
                 "n_tokens": torch.tensor([len(it["input_ids"]) for it in items])}
        if self.block_mask:
            batch["attention_mask"] = block_causal_mask(seg, self.mask_dtype)
        return batch


def block_causal_mask(segments: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """(B, 1, T, T) mask: token i sees token j iff j <= i and both belong to the same example.
    Padding (segment -1) sees itself only, so no row is fully masked."""
    t = segments.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    same = segments[:, :, None] == segments[:, None, :]
    eye = torch.eye(t, dtype=torch.bool)
    allowed = ((same & causal) | eye)[:, None]
    if dtype is None:
        return allowed
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)


# ----------------------------------------------------------------------------- all together
def build_dataset(config, tokenizer) -> tuple[PackedDataset, dict[str, Any]]:
    """The training rows for ``config`` and statistics (also written to the provenance file)."""
    paths = expand_paths(config.data)
    conversations = read_conversations(paths)
    examples, dropped = [], 0
    for messages in conversations:
        ex = tokenize_conversation(tokenizer, messages, config.max_length, config.train_on_eos)
        if any(l != IGNORE for l in ex["labels"]):
            ex["source"] = "sft"
            examples.append(ex)
        else:
            dropped += 1
    sft_labelled = sum(sum(l != IGNORE for l in ex["labels"]) for ex in examples)
    pretrain: list[dict] = []
    if config.pretrain_ratio > 0:
        target = round(sft_labelled * config.pretrain_ratio / (1 - config.pretrain_ratio))
        texts = load_pretrain_texts(config.pretrain_data, config.pretrain_text_field, config.pretrain_split)
        pretrain = pretrain_examples(tokenizer, texts, target, config.max_length)
        for ex in pretrain:
            ex["source"] = "pretrain"
    examples += pretrain
    rows = pack([len(ex["input_ids"]) for ex in examples], config.max_length, config.packing)
    # rows are shuffled each epoch by the sampler; a fixed shuffle here mixes sources inside packed rows
    random.Random(config.seed).shuffle(rows)
    pre_labelled = sum(len(ex["input_ids"]) - 1 for ex in pretrain)
    n_tokens = sum(len(ex["input_ids"]) for ex in examples)
    stats = {
        "files": [{"path": str(p), "sha256": file_sha256(p)} for p in paths],
        "conversations": len(conversations),
        "dropped_no_answer_tokens": dropped,
        "sft_examples": len(examples) - len(pretrain),
        "sft_labelled_tokens": sft_labelled,
        "pretrain_examples": len(pretrain),
        "pretrain_labelled_tokens": pre_labelled,
        "pretrain_ratio_achieved": pre_labelled / max(1, pre_labelled + sft_labelled),
        "rows": len(rows),
        "tokens": n_tokens,
        "row_fill": n_tokens / max(1, len(rows) * config.max_length),
    }
    if config.pretrain_data and Path(config.pretrain_data).expanduser().is_file():
        stats["pretrain_file"] = {"path": config.pretrain_data, "sha256": file_sha256(Path(config.pretrain_data).expanduser())}
    return PackedDataset(examples, rows), stats
