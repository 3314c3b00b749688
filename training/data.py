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

A conversation with no answer token left after cutting to ``max_length`` is dropped. Drops are counted
per source (each file, and each ``k`` within it: datagen rows carry ``k``), shown as a table, written to
the provenance file, and a source that loses more than ``max_dropped_share`` of its conversations stops
the run (``DroppedDataError``) before the pre-training corpus or the model is loaded.
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


def read_rows(paths: Sequence[Path]) -> list[tuple[Path, int | None, list[dict[str, str]]]]:
    """(file, k, messages) for each row of chat JSONL (``{"messages": [{"role", "content"}, ...], ...}``);
    ``k`` is the row's integer ``k`` (the datagen's rows carry it), else None; other keys are ignored."""
    rows = []
    for path in paths:
        for n, row in iter_objects(path, DataError):
            messages = row.get("messages")
            if not isinstance(messages, list) or not messages or not all(
                    isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                    for m in messages):
                raise DataError(f"{path}:{n}: expected a 'messages' list of {{role, content}} strings")
            k = row.get("k")
            k = k if isinstance(k, int) and not isinstance(k, bool) else None
            rows.append((path, k, [{"role": m["role"], "content": m["content"]} for m in messages]))
    return rows


def read_conversations(paths: Sequence[Path]) -> list[list[dict[str, str]]]:
    """The ``messages`` of each row (see ``read_rows``)."""
    return [messages for _, _, messages in read_rows(paths)]


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


# ----------------------------------------------------------------------------- dropped conversations
class DroppedDataError(DataError):
    """A data source lost more than ``max_dropped_share`` of its conversations to ``max_length``."""


def _count(conversations: int = 0, dropped: int = 0) -> dict[str, Any]:
    return {"conversations": conversations, "dropped": dropped, "trained": conversations - dropped,
            "dropped_share": dropped / conversations if conversations else 0.0}


def count_sources(outcomes: Sequence[tuple[Path, int | None, bool]], paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Per file (in ``paths`` order) and per k within it: conversations, dropped, trained, dropped_share.
    ``outcomes``: (file, k, kept) for each conversation."""
    tally: dict[str, list[int]] = {str(p): [0, 0] for p in paths}
    per_k: dict[str, dict[int, list[int]]] = {str(p): {} for p in paths}
    for path, k, kept in outcomes:
        groups = [tally[str(path)]] + ([] if k is None else [per_k[str(path)].setdefault(k, [0, 0])])
        for t in groups:
            t[0] += 1
            t[1] += not kept
    return [dict(path=path, **_count(*tally[path]),
                 per_k={str(k): _count(*per_k[path][k]) for k in sorted(per_k[path])}) for path in tally]


def dropped_table(sources: list[dict[str, Any]], max_length: int) -> str:
    """The on-screen table of conversations per source (file, and k within it)."""
    lines = [("source", "k", "conversations", "dropped", "share", "trained")]

    def line(name, k, c):
        return (name, k, str(c["conversations"]), str(c["dropped"]), f"{100 * c['dropped_share']:.1f}%", str(c["trained"]))

    for s in sources:
        ks = s["per_k"]
        if len(ks) == 1 and next(iter(ks.values()))["conversations"] == s["conversations"]:
            lines.append(line(s["path"], next(iter(ks)), s))  # one k: the file is the k
            continue
        lines += [line(s["path"], k, c) for k, c in ks.items()]
        lines.append(line(s["path"], "all" if ks else "-", s))
    total = _count(sum(s["conversations"] for s in sources), sum(s["dropped"] for s in sources))
    lines.append(line("total", "", total))
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    text = ["  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            for row in lines]
    return (f"data: conversations per source (dropped: no answer token left within max_length={max_length})\n"
            + "\n".join(text))


def check_dropped(sources: list[dict[str, Any]], max_share: float, max_length: int) -> None:
    """Raise ``DroppedDataError`` naming every file, and k within it, that lost more than ``max_share``
    of its conversations (``max_share`` 1.0: never), or when no conversation is left at all."""
    offending = []
    for s in sources:
        named = [f"{s['path']} k={k}: {c['dropped']} of {c['conversations']} dropped ({100 * c['dropped_share']:.1f}%)"
                 for k, c in s["per_k"].items() if c["dropped_share"] > max_share]
        if not named and s["dropped_share"] > max_share:
            named = [f"{s['path']}: {s['dropped']} of {s['conversations']} dropped ({100 * s['dropped_share']:.1f}%)"]
        offending += named
    fix = (f"Use a larger max_length (now {max_length}) or truncate the prompt side (shorter user turns) "
           "so that the answers fit")
    if offending:
        raise DroppedDataError(
            f"too many conversations dropped (no answer token left within max_length={max_length}; at most "
            f"max_dropped_share={max_share:g} of each file and k): " + "; ".join(offending)
            + f". {fix}, or set max_dropped_share=1.0 to train on what is left")
    if not any(s["trained"] for s in sources):
        raise DroppedDataError(f"no conversation left to train on in {', '.join(s['path'] for s in sources)} "
                               f"({sum(s['conversations'] for s in sources)} read, all dropped). {fix}")


# ----------------------------------------------------------------------------- all together
def _main_process() -> bool:
    """True on the main process of an accelerate launch (or outside one)."""
    try:
        from accelerate import PartialState

        return PartialState().is_main_process
    except Exception:  # no accelerate state can be built: a plain single process
        return True


def build_dataset(config, tokenizer, report: bool | None = None) -> tuple[PackedDataset, dict[str, Any]]:
    """The training rows for ``config`` and statistics (also written to the provenance file).

    Stops with ``DroppedDataError`` (before the pre-training corpus is read) when a source loses more
    than ``config.max_dropped_share`` of its conversations. ``report``: log the per-source table; by
    default on the main process only."""
    if report is None:
        report = _main_process()
    paths = expand_paths(config.data)
    rows = read_rows(paths)
    examples, outcomes = [], []
    for path, k, messages in rows:
        ex = tokenize_conversation(tokenizer, messages, config.max_length, config.train_on_eos)
        kept = any(l != IGNORE for l in ex["labels"])
        if kept:
            ex["source"] = "sft"
            examples.append(ex)
        outcomes.append((path, k, kept))
    sources = count_sources(outcomes, paths)
    dropped = sum(s["dropped"] for s in sources)
    if report:
        log.log(logging.WARNING if dropped else logging.INFO, "%s", dropped_table(sources, config.max_length))
    check_dropped(sources, config.max_dropped_share, config.max_length)
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
        "conversations": len(outcomes),  # read from the files
        "dropped_no_answer_tokens": dropped,
        "trained_conversations": len(outcomes) - dropped,  # what the model sees
        "sources": sources,  # per file: conversations, dropped, trained, dropped_share, per_k {k: the same}
        "max_length": config.max_length,
        "max_dropped_share": config.max_dropped_share,
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
