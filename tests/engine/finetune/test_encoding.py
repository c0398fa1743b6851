"""Tokenization with the loss on the answer only, and the collator."""

from __future__ import annotations

import pytest

from engine.errors import InputError
from engine.evaluation.hotpotqa import QAItem, load_hotpotqa
from engine.evaluation.instructions import dolly_examples
from engine.evaluation.splits import split_items
from engine.finetune.encoding import IGNORE, Collator, drop_too_long, end_token_id, tokenize, tokenize_all
from engine.finetune.examples import RagExampleSpec, rag_examples


@pytest.fixture(scope="module")
def items(shared_data) -> list[QAItem]:
    return load_hotpotqa(shared_data / "hotpotqa-dev.jsonl", limit=40)


@pytest.mark.slow
def test_answer_only_labels_token_by_token(generator, items):
    tokenizer = generator.tokenizer
    end = end_token_id(tokenizer)
    assert end == tokenizer.convert_tokens_to_ids("<|im_end|>")
    for example in rag_examples(items[:5]):
        row = tokenize(example, tokenizer, generator.render, 2048)
        prompt = tokenizer(generator.render(list(example.messages)), add_special_tokens=False).input_ids
        ids, labels = row["input_ids"], row["labels"]
        assert ids[: len(prompt)] == prompt and len(ids) == len(labels) == len(row["attention_mask"])
        assert all(label == IGNORE for label in labels[: len(prompt)])
        assert all(labels[i] == ids[i] != IGNORE for i in range(len(prompt), len(ids)))
        assert set(row["attention_mask"]) == {1} and labels[-1] == end
        answer = [label for label in labels if label != IGNORE]
        assert tokenizer.decode(answer) == example.answer + "<|im_end|>"
        full = list(example.messages) + [{"role": "assistant", "content": example.answer}]
        chat = tokenizer.apply_chat_template(full, tokenize=False)
        assert tokenizer.decode(ids) == chat.removesuffix("\n")
        assert tokenizer(chat, add_special_tokens=False).input_ids[: len(ids)] == ids


@pytest.mark.slow
def test_truncation_and_the_max_length_error(generator, items):
    tokenizer, render = generator.tokenizer, generator.render
    examples = rag_examples(items[:6])
    lengths = [len(tokenizer(render(list(e.messages)), add_special_tokens=False).input_ids) for e in examples]
    cut = sorted(lengths)[2]
    with pytest.raises(InputError) as e:
        tokenize_all(examples, tokenizer, render, cut)
    too_long = sum(n >= cut for n in lengths)
    assert str(e.value) == (
        f"max length {cut} is below the prompt length of {too_long} of 6 examples (longest prompt {max(lengths)} "
        f"tokens): raise the max length to at least {max(lengths) + 1} or shorten the sources."
    )
    rows = tokenize_all(examples, tokenizer, render, max(lengths) + 1)
    assert all(len(r["input_ids"]) <= max(lengths) + 1 for r in rows)
    longest = rows[lengths.index(max(lengths))]
    assert longest["labels"][-1] == longest["input_ids"][-1] and longest["labels"].count(IGNORE) == max(lengths)
    with pytest.raises(InputError, match="dataset is empty"):
        tokenize_all([], tokenizer, render, 512)
    with pytest.raises(InputError, match="at least 8"):
        tokenize_all(examples, tokenizer, render, 7)


@pytest.mark.slow
def test_dolly_records_too_long_for_the_max_length_leave_the_pool(generator, shared_data):
    tokenizer, render = generator.tokenizer, generator.render
    pool = dolly_examples(shared_data / "dolly-15k-mini.jsonl", categories=("information_extraction",))
    lengths = [len(tokenizer(render(list(e.messages)), add_special_tokens=False).input_ids) for e in pool]
    kept, dropped = drop_too_long(pool, tokenizer, render, 1024)
    assert dropped == sum(n >= 1024 for n in lengths) > 0  # the shared file has articles as context
    assert [e.id for e in kept] == [e.id for e, n in zip(pool, lengths, strict=True) if n < 1024]
    tokenize_all(kept, tokenizer, render, 1024)  # what is left trains without the max-length error


@pytest.mark.slow
def test_collator_pads_right(generator, items, shared_data):
    tokenizer = generator.tokenizer
    examples = rag_examples(items[:3]) + dolly_examples(shared_data / "dolly-15k-mini.jsonl")[:1]
    rows = tokenize_all(examples, tokenizer, generator.render, 4096)
    batch = Collator(tokenizer)(rows)
    longest = max(len(r["input_ids"]) for r in rows)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (4, longest)
    for n, row in enumerate(rows):
        size, gap = len(row["input_ids"]), longest - len(row["input_ids"])
        assert batch["input_ids"][n].tolist() == row["input_ids"] + [tokenizer.pad_token_id] * gap
        assert batch["labels"][n].tolist() == row["labels"] + [IGNORE] * gap
        assert batch["attention_mask"][n].tolist() == [1] * size + [0] * gap
    eight = Collator(tokenizer, pad_to_multiple_of=8)(rows)
    assert eight["input_ids"].shape[1] % 8 == 0 and longest <= eight["input_ids"].shape[1] < longest + 8
    assert (eight["labels"][:, longest:] == IGNORE).all() and (eight["attention_mask"][:, longest:] == 0).all()


@pytest.mark.slow
def test_answer_only_logits_give_the_same_loss(generator, shared_data, settings) -> None:
    import copy

    import torch

    items = split_items(shared_data / "hotpotqa-dev.jsonl", settings, "train")[:3]
    rows = tokenize_all(rag_examples(items, RagExampleSpec(max_source_chars=100)), generator.tokenizer,
                        generator.render, 512)  # fmt: skip
    model = copy.deepcopy(generator.loaded.model)
    with torch.no_grad():
        full = model(**Collator(generator.tokenizer)(rows))
        only = model(**Collator(generator.tokenizer, answer_logits_only=True)(rows))
    answer_tokens = sum(sum(1 for t in r["labels"] if t != -100) for r in rows)
    assert only.logits.shape[0] == answer_tokens  # one row of logits per answer token, not per position
    assert full.logits.shape[1] > 100
    assert torch.allclose(full.loss, only.loss, atol=1e-6)
