"""Tokenized training rows with the loss on the answer only, and the collator that pads them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.errors import InputError
from engine.finetune.examples import Example

IGNORE = -100  # the label the loss skips (PyTorch's cross-entropy ignore_index)
MIN_MAX_LENGTH = 8


def end_token_id(tokenizer) -> int:
    """The token that ends an assistant turn: ``<|im_end|>`` for ChatML templates, else the EOS token."""
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        return im_end
    if tokenizer.eos_token_id is None:
        raise InputError("The tokenizer has no end-of-sequence token to end the answers with.")
    return tokenizer.eos_token_id


def drop_too_long(examples: Sequence[Example], tokenizer, render: Callable[[list], str], max_length: int):
    """The examples whose prompt leaves room for an answer within ``max_length`` tokens, and how many were not."""
    prompts = tokenizer([render(list(e.messages)) for e in examples], add_special_tokens=False).input_ids
    kept = [e for e, p in zip(examples, prompts, strict=True) if len(p) < max_length]
    return kept, len(examples) - len(kept)


def tokenize(example: Example, tokenizer, render: Callable[[list], str], max_length: int) -> dict:
    """Input ids, attention mask and labels (-100 on the prompt, so the loss is on the answer only)."""
    return tokenize_all([example], tokenizer, render, max_length)[0]


def tokenize_all(examples: Sequence[Example], tokenizer, render: Callable[[list], str], max_length: int) -> list[dict]:
    """:func:`tokenize` for many examples; an InputError if any prompt leaves no room for its answer."""
    if max_length < MIN_MAX_LENGTH:
        raise InputError(f"The max length must be at least {MIN_MAX_LENGTH} tokens.")
    if not examples:
        raise InputError("The dataset is empty.")
    end = end_token_id(tokenizer)
    prompts = tokenizer([render(list(e.messages)) for e in examples], add_special_tokens=False).input_ids
    answers = tokenizer([e.answer for e in examples], add_special_tokens=False).input_ids
    if too_long := [len(p) for p in prompts if len(p) >= max_length]:
        raise InputError(
            f"max length {max_length} is below the prompt length of {len(too_long)} of {len(examples)} examples "
            f"(longest prompt {max(too_long)} tokens): raise the max length to at least {max(too_long) + 1} "
            "or shorten the sources."
        )
    rows = []
    for example, prompt, answer in zip(examples, prompts, answers, strict=True):
        ids = (prompt + answer + ([end] if example.complete else []))[:max_length]
        labels = [IGNORE] * len(prompt) + ids[len(prompt) :]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return rows


class Collator:
    """Pads a batch to its longest row (on the right): pad token ids, attention 0, labels -100."""

    def __init__(self, tokenizer, pad_to_multiple_of: int | None = None, answer_logits_only: bool = False):
        # Padding positions are masked out of attention and loss, so EOS serves when there is no pad token.
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_to_multiple_of = pad_to_multiple_of
        self.answer_logits_only = answer_logits_only
        if self.pad_token_id is None:
            raise InputError("The tokenizer has neither a padding nor an end-of-sequence token.")
        if pad_to_multiple_of is not None and pad_to_multiple_of < 1:
            raise InputError("pad_to_multiple_of must be at least 1.")

    def __call__(self, features: Sequence[dict]) -> dict:
        import torch

        length = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
        for f in features:
            ids = list(f["input_ids"])
            gap = length - len(ids)
            batch["input_ids"].append(ids + [self.pad_token_id] * gap)
            batch["attention_mask"].append(list(f.get("attention_mask", [1] * len(ids))) + [0] * gap)
            batch["labels"].append(list(f.get("labels", ids)) + [IGNORE] * gap)
        out = {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}
        if self.answer_logits_only:
            out |= answer_positions(out["labels"])
        return out


def answer_positions(labels) -> dict:
    """``logits_to_keep`` and ``shift_labels`` so the model projects onto the vocabulary only
    where the loss looks: the positions that predict an answer token.

    The LM head of a small model is a large share of its compute (SmolLM2-135M: 28M of 135M
    weights, applied to every position), and its float32 logits over a 49k vocabulary are
    most of the training memory. Only the few answer positions have a loss, so the loss is
    the same while the head costs a few positions instead of the whole prompt.
    """
    import torch

    nxt = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE)  # position p predicts token p + 1
    keep = nxt != IGNORE
    return {"logits_to_keep": keep, "shift_labels": nxt[keep]}
