"""Training data: assistant-only labels, packing without cross-example leaks, pre-training mix."""

import json
import random
from pathlib import Path

import pytest
import torch

from skillmix.training.config import TrainConfig
from skillmix.training.data import (IGNORE, Collator, PackedDataset, assistant_char_spans, build_dataset, pack,
                                    tokenize_conversation)

WORDS = "the a sewing needle thread knot garden bee hive duel sword empire city plan river boat".split()


def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def conversation(rng, turns=2):
    messages = []
    for t in range(turns):
        messages.append({"role": "user", "content": f"Turn {t}: write about {sentence(rng, 4)} Answer: then Explanation:"})
        messages.append({"role": "assistant", "content": "Answer: " + sentence(rng, rng.randint(4, 14))})
    return messages


def write_chat_jsonl(path: Path, n: int, k: int = 2, seed: int = 0) -> Path:
    """Rows shaped like the datagen's d_skillmix_k{k}.jsonl."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for i in range(n):
            messages = conversation(rng)
            f.write(json.dumps({"id": f"train-k{k}-{i:03d}", "k": k, "skills": ["metaphor"] * k, "topic": "Sewing",
                                "messages": messages, "answer": messages[-1]["content"], "grades": {},
                                "teacher": "spec", "judge": "spec", "prompt_version": "test"}) + "\n")
    return path


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def labelled_spans(ids, labels):
    spans, cur = [], []
    for tok, lab in zip(ids, labels):
        if lab != IGNORE:
            assert lab == tok
            cur.append(tok)
        elif cur:
            spans.append(cur)
            cur = []
    return spans + ([cur] if cur else [])


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_unmasked_tokens_are_exactly_the_assistant_answers(tokenizer, turns):
    rng = random.Random(turns)
    for _ in range(10):
        messages = conversation(rng, turns)
        ex = tokenize_conversation(tokenizer, messages, 4096, train_on_eos=False)
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        assert [tokenizer.decode(s) for s in labelled_spans(ex["input_ids"], ex["labels"])] == answers
        # and the unmasked ids are those of the answers in context (nothing else is trained on)
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        assert ex["input_ids"] == tokenizer(full, add_special_tokens=False)["input_ids"]


def test_end_of_turn_token_is_trained_when_asked(tokenizer):
    messages = conversation(random.Random(0))
    ex = tokenize_conversation(tokenizer, messages, 4096, train_on_eos=True)
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    assert [tokenizer.decode(s) for s in labelled_spans(ex["input_ids"], ex["labels"])] == [a + "<|im_end|>" for a in answers]


def test_masks_work_for_another_template(tokenizer):
    """Not only ChatML: a Llama-2-like template with [INST] markers and an EOS string after answers."""
    tok = tokenizer
    old = tok.chat_template
    tok.chat_template = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] | trim }} [/INST]"
                         "{% else %} {{ m['content'] | trim }} {{ eos_token }}{% endif %}{% endfor %}")
    try:
        messages = conversation(random.Random(5))
        messages[1]["content"] = "  padded answer  "
        text, spans = assistant_char_spans(tok, messages, train_on_eos=False)
        assert [text[a:b] for a, b in spans] == ["padded answer", messages[3]["content"]]
    finally:
        tok.chat_template = old


def test_truncation_and_first_label(tokenizer):
    ex = tokenize_conversation(tokenizer, conversation(random.Random(1)), 20, train_on_eos=True)
    assert len(ex["input_ids"]) == len(ex["labels"]) == 20 and ex["labels"][0] == IGNORE


def test_packing_fills_rows_and_keeps_every_example_once():
    lengths = [random.Random(i).randint(5, 60) for i in range(200)]
    rows = pack(lengths, 128, packing=True)
    assert sorted(i for r in rows for i in r) == list(range(200))
    assert all(sum(lengths[i] for i in r) <= 128 for r in rows)
    assert sum(lengths) / (128 * len(rows)) > 0.9
    assert pack(lengths, 128, packing=False) == [[i] for i in range(200)]


@pytest.mark.parametrize("attn, mode", [("sdpa", "position_ids"), ("eager", "position_ids"),
                                        ("sdpa", "block_mask"), ("eager", "block_mask")])
def test_packed_example_logits_equal_its_logits_alone(tiny_model, tokenizer, attn, mode):
    """The packing boundary test: no attention across examples, positions restart per example."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32, attn_implementation=attn).eval()
    rng = random.Random(3)
    examples = [tokenize_conversation(tokenizer, conversation(rng), 512) for _ in range(4)]
    collate = Collator(tokenizer.pad_token_id, block_mask=mode == "block_mask",
                       mask_dtype=torch.float32 if attn == "eager" else None)
    packed = collate([PackedDataset(examples, [[0, 1, 2, 3]])[0]])
    assert packed["position_ids"][0, len(examples[0]["input_ids"])] == 0  # restarts
    with torch.no_grad():
        packed_logits = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"],
                              attention_mask=packed.get("attention_mask"), use_cache=False).logits[0]
        start = 0
        for ex in examples:
            n = len(ex["input_ids"])
            alone = model(input_ids=torch.tensor([ex["input_ids"]])).logits[0]
            torch.testing.assert_close(packed_logits[start:start + n], alone, atol=1e-4, rtol=1e-4)
            start += n
    # and the check has teeth: without the reset, later examples differ
    with torch.no_grad():
        leaky = model(input_ids=packed["input_ids"], use_cache=False).logits[0]
    n0, n1 = (len(e["input_ids"]) for e in examples[:2])
    assert not torch.allclose(leaky[n0:n0 + n1], packed_logits[n0:n0 + n1], atol=1e-3)


def test_pretrain_mix_hits_the_token_ratio(tiny_model, tmp_path):
    from transformers import AutoTokenizer
    from pydoc_data import topics

    data = write_chat_jsonl(tmp_path / "d_skillmix_k2.jsonl", 40)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in list(topics.topics.values())[:30]))
    tok = AutoTokenizer.from_pretrained(tiny_model)
    for ratio in (0.1, 0.25, 0.5):
        config = TrainConfig.from_dict({"model": str(tiny_model), "data": [str(data)], "max_length": 128, "packing": True,
                                        "pretrain_data": str(corpus), "pretrain_ratio": ratio}).validate()
        dataset, stats = build_dataset(config, tok)
        by_source = {"sft": 0, "pretrain": 0}
        for ex in dataset.examples:
            by_source[ex["source"]] += sum(l != IGNORE for l in ex["labels"])
            if ex["source"] == "pretrain":  # unmasked LM loss: every token after the first
                assert ex["labels"][1:] == ex["input_ids"][1:]
        measured = by_source["pretrain"] / (by_source["pretrain"] + by_source["sft"])
        assert measured == pytest.approx(ratio, abs=0.005)
        assert stats["pretrain_ratio_achieved"] == pytest.approx(measured)
        # full pre-training chunks get rows of their own, shuffled among the SFT rows: batches mix
        kinds = [{dataset.examples[i]["source"] for i in row} for row in dataset.rows]
        with_pretrain = [i for i, k in enumerate(kinds) if "pretrain" in k]
        assert with_pretrain and with_pretrain != list(range(len(kinds) - len(with_pretrain), len(kinds)))
    # plain text corpora work too
    txt = tmp_path / "corpus.txt"
    txt.write_text("\n\n".join(list(topics.topics.values())[:10]))
    config.pretrain_data = str(txt)
    assert build_dataset(config, tok)[1]["pretrain_examples"] > 0


def test_provenance_stats_hash_the_files(tiny_model, tmp_path):
    import hashlib
    from transformers import AutoTokenizer

    data = write_chat_jsonl(tmp_path / "d_skillmix_k1.jsonl", 5, k=1)
    config = TrainConfig.from_dict({"model": str(tiny_model), "data": [str(tmp_path / "d_skillmix_k*.jsonl")]}).validate()
    _, stats = build_dataset(config, AutoTokenizer.from_pretrained(tiny_model))
    assert stats["files"] == [{"path": str(data), "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}]
    assert stats["conversations"] == 5 and stats["rows"] == 5


@pytest.mark.parametrize("flatten", ["as chosen", True])
def test_packed_logits_equal_unpacked_on_the_kernel_path_the_loop_uses(tiny_model, tokenizer, flatten):
    """The attention the loop picks for packing here (``auto``: flash-attention-2 varlen on a GPU with
    flash-attn, else sdpa with the mask derived from position ids), loaded as the loop loads it, and the
    flattened layout of the varlen path (a micro-batch of packed rows as one row, no padding)."""
    from skillmix.training.model import choose_attention, load_model

    config = TrainConfig.from_dict({"model": str(tiny_model), "data": ["d"], "packing": True}).validate()
    impl, chosen_flatten, why = choose_attention(config)
    assert config.attn_implementation == "auto" and impl in why
    if not torch.cuda.is_available():
        assert impl == "sdpa" and not chosen_flatten and "derived from the restarting position ids" in why
    model = load_model(config, impl).eval()
    rng = random.Random(5)
    examples = [tokenize_conversation(tokenizer, conversation(rng), 512) for _ in range(5)]
    rows = PackedDataset(examples, [[0, 1, 2], [3, 4]])
    collate = Collator(tokenizer.pad_token_id, flatten=chosen_flatten if flatten == "as chosen" else flatten)
    batch = collate([rows[0], rows[1]])
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        if collate.flatten:
            assert batch["input_ids"].shape == (1, sum(len(e["input_ids"]) for e in examples))  # no padding
            segments = [(0, [0, 1, 2, 3, 4])]
        else:
            segments = [(0, [0, 1, 2]), (1, [3, 4])]
        for b, members in segments:
            start = 0
            for j in members:
                n = len(examples[j]["input_ids"])
                alone = model(input_ids=torch.tensor([examples[j]["input_ids"]])).logits[0]
                torch.testing.assert_close(logits[b, start:start + n], alone, atol=1e-4, rtol=1e-4)
                start += n


@pytest.mark.parametrize("kw, flatten, says", [
    ({"attn_implementation": "flash_attention_2", "packing": True}, True, "varlen: packed rows"),
    ({"attn_implementation": "flash_attention_2", "packing": False}, True, "varlen: one example per row"),
    ({"attn_implementation": "sdpa", "packing": True}, False, "mask derived from the restarting position ids"),
    ({"attn_implementation": "sdpa", "packing": True, "packing_attention": "block_mask"}, False, "fallback"),
    ({"attn_implementation": "eager", "packing": False}, False, "rows padded to the longest"),
])
def test_attention_choice_is_stated(kw, flatten, says):
    """The varlen kernels get micro-batches flattened into one row (transformers reads packed position
    ids at batch 1 only); the others keep rows and say how examples are kept apart."""
    from skillmix.training.model import choose_attention

    impl, flat, why = choose_attention(TrainConfig.from_dict({"model": "m", "data": ["d"], **kw}).validate())
    assert (impl, flat) == (kw["attn_implementation"], flatten) and says in why
