"""Batch layout for generation: left padding, and a shared prompt prefix computed once.

Prompts built from one template share a long prefix (the system message and worked
examples). Its key/value cache is computed once per call and copied into every batch, so
each question only pays for its own tokens. Layout of a row with a shared prefix::

    [prefix tokens][pad ... pad][the question's own tokens]   attention mask 1..1 0..0 1..1

Position ids follow the attention mask (cumsum), so the question's tokens sit right after
the prefix as if there were no padding, exactly as in an unpadded prompt.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

MIN_SHARED_PREFIX = 16  # tokens; below this the copy costs more than it saves


def common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix shared by all rows, leaving each row one token of its own."""
    if len(rows) < 2:
        return 0
    shortest = min(len(r) for r in rows)
    n = 0
    while n < shortest - 1 and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return n


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int, prefix: Sequence[int] = ()):
    """``input_ids`` and ``attention_mask`` tensors: ``prefix`` + left-padded rows."""
    import torch

    width = max(len(r) for r in rows)
    ids = [list(prefix) + [pad_id] * (width - len(r)) + list(r) for r in rows]
    mask = [[1] * len(prefix) + [0] * (width - len(r)) + [1] * len(r) for r in rows]
    return torch.tensor(ids), torch.tensor(mask)


def prefill(model, prefix: Sequence[int], device: str):
    """The key/value cache of ``prefix`` (batch of one)."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache()
    with torch.inference_mode():
        model(input_ids=torch.tensor([list(prefix)], device=device), cache=cache, use_cache=True)
    return cache


def expand(cache, batch: int):
    """A fresh copy of a batch-of-one cache, repeated for ``batch`` rows (generate extends it in place)."""
    copied = copy.deepcopy(cache)
    copied.batch_repeat_interleave(batch)
    return copied
