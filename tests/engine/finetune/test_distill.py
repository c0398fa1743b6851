"""Self-distilled Dolly targets: the base model's own greedy answers, cached, cut answers learned without an end."""

from __future__ import annotations

import pytest

from engine.errors import InputError
from engine.evaluation.instructions import dolly_examples
from engine.finetune.distill import cache_file, self_answers
from engine.finetune.encoding import IGNORE, end_token_id, tokenize_all
from engine.finetune.examples import MixSpec
from engine.finetune.spec import TrainSpec
from engine.models.generation import SamplingSpec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pool(shared_data):
    # Short prompts keep the generation quick; open_qa has no context.
    return dolly_examples(shared_data / "dolly-15k-mini.jsonl", categories=("open_qa",))[:5]


def test_answers_are_the_base_models_own_and_cached(generator, settings, pool, monkeypatch):
    answered, found = self_answers(pool, generator, settings, max_new_tokens=24, batch_size=4)
    direct = generator.generate([list(e.messages) for e in pool], SamplingSpec(max_new_tokens=24), 4)
    assert [e.answer for e in answered] == [c.text.strip() for c in direct]
    assert [e.complete for e in answered] == [c.new_tokens < 24 for c in direct]
    assert found.generated == found.examples == 5 and found.cut == sum(not e.complete for e in answered)
    assert any(not e.complete for e in answered)  # 24 tokens cut most of these answers
    assert [(e.id, e.messages, e.source) for e in answered] == [(e.id, e.messages, e.source) for e in pool]
    assert all(a.answer != e.answer for a, e in zip(answered, pool, strict=True))  # not the human responses

    # A second run, with a line cut by a kill at the end of the cache, generates only what is missing.
    path = cache_file(generator, 24, settings)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:10])
    asked = []
    real = generator.generate
    monkeypatch.setattr(generator, "generate", lambda conv, *a, **k: asked.append(len(conv)) or real(conv, *a, **k))
    again, found = self_answers(pool, generator, settings, max_new_tokens=24, batch_size=4)
    assert again == answered and asked == [1] and found.generated == 1
    third, found = self_answers(pool, generator, settings, max_new_tokens=24, batch_size=4)
    assert third == answered and asked == [1] and found.generated == 0  # the re-answered line was kept
    assert cache_file(generator, 32, settings) != path  # another token limit is another cache


def test_cut_answers_are_learned_without_the_end_token(generator, settings, pool):
    answered, _ = self_answers(pool, generator, settings, max_new_tokens=24, batch_size=4)
    end = end_token_id(generator.tokenizer)
    for example, row in zip(answered, tokenize_all(answered, generator.tokenizer, generator.render, 1024), strict=True):
        learned = [t for t in row["labels"] if t != IGNORE]
        assert (learned[-1] == end) == example.complete
        assert generator.tokenizer.decode(learned[:-1] if example.complete else learned) == example.answer


def test_a_training_mix_with_base_targets(generator, settings):
    from engine.finetune.inputs import build_examples

    spec = TrainSpec(mix=MixSpec.with_shares(dolly=0.5), dolly_targets="base", train_limit=4, val_limit=1,
                     dolly_categories=("summarization",))  # fmt: skip
    assert TrainSpec.from_dict(spec.to_dict()) == spec
    lazy, _, datasets = build_examples(spec, generator, settings)
    dolly = datasets[-1]
    assert dolly["split"] == "summarization" and dolly["targets"] == "base"
    assert dolly["self_answers"]["examples"] == 0 and lazy.pending == dolly["examples"]  # answered when trained on
    rows = lazy.make_all()
    assert dolly["self_answers"]["examples"] == dolly["examples"] > 0
    reference = build_examples(spec, generator, settings, distill=False)[0].make_all()
    changed = [a["labels"] != b["labels"] for a, b in zip(rows, reference, strict=True)]
    assert sum(changed) == dolly["examples"]  # the Dolly rows got new answers, the HotpotQA rows did not
    with pytest.raises(InputError, match="Unknown Dolly targets"):
        TrainSpec(dolly_targets="human")
    with pytest.raises(InputError, match="needs at least one Dolly category"):
        TrainSpec(mix=MixSpec.with_shares(dolly=0.5), dolly_categories=())
