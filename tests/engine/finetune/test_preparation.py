"""Training rows made as training reaches them: the same rows as made up front, a block at a time,
in a length-grouped order per epoch; a prompt that may not fit is checked before the first step."""

from __future__ import annotations

import pytest

from engine.errors import InputError
from engine.finetune.examples import RagExampleSpec
from engine.finetune.preparation import LazyRows, Pending
from engine.finetune.spec import TrainSpec

RECIPE_SOURCES = RagExampleSpec(max_source_chars=450, sources="retrieved", follow_links=2)


def test_the_order_groups_lengths_changes_by_epoch_and_makes_a_block_at_a_time():
    lengths = [(n * 37) % 101 + 1 for n in range(40)]
    made: list[list[str]] = []

    def prepare(pending):
        made.append([p.id for p in pending])
        return [{"input_ids": [0] * p.tokens} for p in pending]

    entries = [Pending(str(n), "x", t) if n % 2 else {"input_ids": [0] * t} for n, t in enumerate(lengths)]
    rows = LazyRows(entries, prepare, group=4, seed=3, block=6)
    assert len(rows) == 40 and rows.pending == 20 and sorted(rows.order) == list(range(40))
    first = rows[0]
    assert len(first["input_ids"]) == max(lengths)  # the longest batch first, as the Trainer's grouping does
    assert len(made) == (rows.order[0] % 2) and all(len(m) <= 6 for m in made)
    epoch0 = list(rows.order)
    assert [len(rows[p]["input_ids"]) for p in range(40)] == [lengths[i] for i in epoch0]
    assert rows.pending == 0 and sum(map(len, made)) == 20  # each pending entry made once
    assert len(made) < 20  # ... a block at a time, not one by one
    rows.set_epoch(1)
    assert rows.order != epoch0 and sorted(rows.order) == list(range(40))
    rows.set_epoch(0)
    assert rows.order == epoch0  # seeded: a resumed run reads the same order
    plain = LazyRows(entries, prepare)
    assert plain.order == list(range(40)) and plain.make_all()[1] == {"input_ids": [0] * lengths[1]}


@pytest.mark.slow
def test_lazy_rows_are_the_rows_made_up_front(generator, settings):
    from engine.evaluation.hotpotqa import distractor_retriever
    from engine.finetune.encoding import tokenize_all
    from engine.finetune.examples import mix, rag_examples
    from engine.finetune.inputs import build_examples, qa_splits, questions

    spec = TrainSpec(rag=RECIPE_SOURCES, train_limit=24, val_limit=3, max_length=1100)
    rows, val_rows, datasets = build_examples(spec, generator, settings)
    assert len(rows) == datasets[0]["examples"] == 24 and len(val_rows) == 3
    # Only the few whose longest paragraphs might not fit are ranked before training starts.
    assert rows.pending >= 20 and val_rows.pending == 3
    before, rows.block = rows.pending, 8
    rows[next(p for p, i in enumerate(rows.order) if i not in rows.rows)]
    assert before - 8 <= rows.pending < before
    train_set, val_set = qa_splits(spec, settings)
    by_id = {it.id: it for it in train_set.items}
    chosen = [by_id[e.id] for e in mix({"hotpotqa": questions(spec, train_set.items, "hotpotqa", None, 0, None)},
                                       spec.mix)[0][:24]]  # fmt: skip
    # Ranked all at once, where the rows were made a block at a time with a retriever per block.
    everything = distractor_retriever(chosen + val_set.items, settings, follow_links=2)
    render = generator.render
    eager = tokenize_all(rag_examples(chosen, spec.rag, everything), generator.tokenizer, render, 1100)
    assert rows.make_all() == eager
    assert val_rows.make_all() == tokenize_all(rag_examples(val_set.items, spec.rag, everything),
                                               generator.tokenizer, render, 1100)  # fmt: skip
    pending = [(e, r) for e, r in zip(rows.entries, eager, strict=True) if isinstance(e, Pending)]
    estimated = [(e.tokens, len(r["input_ids"])) for e, r in pending]
    error = sum(abs(a - b) for a, b in estimated) / sum(b for _, b in estimated)
    assert error < 0.25  # near enough to group rows of like length


@pytest.mark.slow
def test_a_prompt_that_may_not_fit_is_an_error_before_the_first_step(generator, settings):
    from engine.finetune.inputs import build_examples

    with pytest.raises(InputError, match="raise the max length"):
        build_examples(TrainSpec(rag=RECIPE_SOURCES, train_limit=8, val_limit=1, max_length=300), generator, settings)
