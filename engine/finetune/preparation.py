"""Training rows made as training reaches them, so that the first step does not wait for all of them.

Two parts of the training examples cost minutes when made up front: ranking each HotpotQA
question's own paragraphs (embedding them: 6,400 for recipe 7 on a fresh data dir, about 2.5
min on 2 cores) and the base model's answers to the Dolly instructions (199 of them, about 2
min). :class:`LazyRows` holds those examples as :class:`Pending` and makes them a block at a
time, in the order training reads them, so the first step waits for one block only. The order
groups rows of similar estimated length, as the Trainer's ``group_by_length`` does with the
exact ones, and changes with each epoch (the Trainer calls :meth:`LazyRows.set_epoch`).

Everything a block makes is deterministic (the embedding and the self-answer caches, greedy
answers), so a resumed run trains on the rows it would have trained on.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.utils.data import Dataset

from engine.evaluation.hotpotqa import QAItem, distractor_retriever
from engine.finetune.distill import MAX_NEW_TOKENS, self_answers
from engine.finetune.encoding import tokenize_all
from engine.finetune.examples import Example, rag_examples, template_for
from engine.rag.hits import Hit
from engine.settings import Settings

BLOCK = 64  # rows made at once: about 10 s of ranking and 16 Dolly answers on 2 cores
MARGIN = 8  # tokens added to a prompt's bound: joining passages can tokenize a little differently


@dataclass(frozen=True)
class Pending:
    """An example before its costly part: a question whose sources are still to rank (``item``),
    or an instruction whose base-model answer is still to make (``example``)."""

    id: str
    source: str
    tokens: int  # the estimated length of its row, for grouping by length
    item: QAItem | None = None
    example: Example | None = None


class LazyRows(Dataset):
    """Tokenized training rows, each made on first use (see the module's docstring).

    ``entries`` are rows already made (dicts) or :class:`Pending`; ``prepare(pending)`` makes rows of
    a list of pending ones. With ``group`` (the batch size times the accumulation), positions follow a
    seeded, length-grouped order per epoch; without it, the entries' own order.
    """

    def __init__(
        self,
        entries: Sequence,
        prepare: Callable[[list[Pending]], list[dict]],
        group: int = 0,
        seed: int = 0,
        block: int = BLOCK,
    ):
        self.entries, self.prepare, self.group, self.seed, self.block = list(entries), prepare, group, seed, block
        self.rows = {i: e for i, e in enumerate(self.entries) if isinstance(e, dict)}
        self.set_epoch(0)

    @property
    def lengths(self) -> list[int]:
        """Each entry's row length: exact where it is made, else estimated."""
        return [len(self.rows[i]["input_ids"]) if i in self.rows else e.tokens for i, e in enumerate(self.entries)]

    @property
    def pending(self) -> int:
        return len(self.entries) - len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """The order of the positions in ``epoch``: length-grouped and seeded, else as given."""
        if not self.group:
            self.order = list(range(len(self.entries)))
            return
        from transformers.trainer_pt_utils import get_length_grouped_indices  # noqa: PLC0415 - loads transformers

        generator = torch.Generator().manual_seed(self.seed + int(epoch))
        self.order = get_length_grouped_indices(self.lengths, self.group, generator=generator)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, position: int) -> dict:
        index = self.order[position]
        if index not in self.rows:
            self.make(self.order[position : position + self.block])
        return self.rows[index]

    def make(self, indices: Sequence[int]) -> None:
        """Make the rows of those of ``indices`` not made yet, together, leaving the random state as it was."""
        todo = [i for i in indices if i not in self.rows]
        if not todo:
            return
        with random_state_kept():
            made = self.prepare([self.entries[i] for i in todo])
        for i, row in zip(todo, made, strict=True):
            self.rows[i] = row

    def make_all(self) -> list[dict]:
        """Every row, in the entries' order (it makes every pending one, a block at a time)."""
        for start in range(0, len(self.entries), self.block):
            self.make(range(start, min(start + self.block, len(self.entries))))
        return [self.rows[i] for i in range(len(self.entries))]


@contextmanager
def random_state_kept():
    """Python's, NumPy's and torch's random states as they were before the block, whatever it did.

    Making a block can load the embedder (initialising layers draws random numbers) or not, as the
    caches hold; without this, a resumed run would draw other dropout masks than the run it resumes.
    """
    python, numpy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng():
        try:
            yield
        finally:
            random.setstate(python)
            np.random.set_state(numpy)


def estimate_questions(pending: Sequence[Pending], rag, tokenizer, render, max_length: int):
    """The questions with their estimated row lengths, and those that might not fit ``max_length``.

    A question's prompt is bounded by its longest paragraphs as shown (``rag.k`` of them plus one
    per gold paragraph, which a low-ranked gold one can add), so only those whose bound reaches the
    max length need ranking now, where a prompt too long is an error before the first step.
    """
    if not pending:
        return [], []
    template = template_for(rag)
    texts = list(dict.fromkeys(t[: rag.max_source_chars] for p in pending for _, t in p.item.paragraphs))
    counts = dict(zip(texts, map(len, tokenizer(texts, add_special_tokens=False).input_ids), strict=True))
    answers = tokenizer([p.item.answer for p in pending], add_special_tokens=False).input_ids
    worst_messages, shapes = [], []
    for p, answer in zip(pending, answers, strict=True):
        paragraphs = sorted(p.item.paragraphs, key=lambda tp: -counts[tp[1][: rag.max_source_chars]])
        worst = paragraphs[: rag.k + len(p.item.supporting_titles)]
        hits = [
            Hit(id=f"{p.id}:{n}", title=title, text=text, source=p.source, score=0.0)
            for n, (title, text) in enumerate(worst)
        ]
        worst_messages.append(render(template.messages(p.item.question, hits)))
        lengths = [counts[t[: rag.max_source_chars]] for _, t in paragraphs]
        shapes.append((sum(lengths[: len(worst)]), sum(lengths) / len(lengths), len(answer)))
    bounds = [len(ids) + MARGIN for ids in tokenizer(worst_messages, add_special_tokens=False).input_ids]
    estimated, at_risk = [], []
    for p, bound, (worst, mean, answer) in zip(pending, bounds, shapes, strict=True):
        estimated.append(replace(p, tokens=round(bound - worst + rag.k * mean + answer)))
        if bound >= max_length:
            at_risk.append(p)
    return estimated, at_risk


def entries(examples, spec, generator, make, distill: bool) -> list:
    """The rows of the examples that are ready (tokenized now, so a prompt too long stops the run before it
    starts) and the pending ones, with the Dolly examples pending their base-model answers when ``distill``."""
    tokenizer, render = generator.tokenizer, generator.render
    out: list = list(examples)
    asked = [i for i, e in enumerate(out) if isinstance(e, Pending)]
    estimated, at_risk = estimate_questions([out[i] for i in asked], spec.rag, tokenizer, render, spec.max_length)
    for i, p in zip(asked, estimated, strict=True):
        out[i] = p
    if at_risk:  # ranked now: an error about the max length comes before the first step
        made = dict(zip((p.id for p in at_risk), make(at_risk), strict=True))
        out = [made.get(e.id, e) if isinstance(e, Pending) else e for e in out]
    dolly = [i for i, e in enumerate(out) if distill and isinstance(e, Example) and e.source == "dolly"]
    if dolly:
        prompts = tokenizer([render(list(out[i].messages)) for i in dolly], add_special_tokens=False).input_ids
        answers = tokenizer([out[i].answer for i in dolly], add_special_tokens=False).input_ids
        for i, p, a in zip(dolly, prompts, answers, strict=True):
            out[i] = Pending(out[i].id, "dolly", len(p) + min(len(a), MAX_NEW_TOKENS) + 1, example=out[i])
    ready = [i for i, e in enumerate(out) if isinstance(e, Example)]
    if ready:
        for i, row in zip(
            ready, tokenize_all([out[i] for i in ready], tokenizer, render, spec.max_length), strict=True
        ):
            out[i] = row
    return out


def preparer(spec, generator, settings: Settings, base_only, tally: dict | None):
    """``make(pending) -> rows``: ranks the pending questions among their own paragraphs (as the evaluation
    does), has the base model answer the pending instructions (``tally`` counts them), tokenizes."""

    def make(pending: list) -> list[dict]:
        examples = [None] * len(pending)
        for source in dict.fromkeys(p.source for p in pending if p.item is not None):
            asked = [i for i, p in enumerate(pending) if p.item is not None and p.source == source]
            items = [pending[i].item for i in asked]
            retriever = distractor_retriever(items, settings, follow_links=spec.rag.follow_links)
            for i, example in zip(asked, rag_examples(items, spec.rag, retriever, source), strict=True):
                examples[i] = example
        if where := [i for i, p in enumerate(pending) if p.item is None]:
            answered, found = answer_as_base([pending[i].example for i in where], generator, settings, base_only)
            for i, example in zip(where, answered, strict=True):
                examples[i] = example
            if tally is not None:
                for key, value in vars(found).items():
                    tally[key] += value
        return tokenize_all(examples, generator.tokenizer, generator.render, spec.max_length)

    return make


def answer_as_base(examples, generator, settings: Settings, base_only=None):
    """:func:`~engine.finetune.distill.self_answers` with the model in evaluation mode and, inside a
    training run, its adapter switched off (``base_only()``), so the answers are the base model's."""
    model = generator.model
    was_training = model.training
    model.eval()  # no dropout, and generation keeps its cache when training checkpoints activations
    try:
        with base_only() if base_only else contextlib.nullcontext():
            return self_answers(examples, generator, settings)
    finally:
        model.train(was_training)
