"""Generated QA pairs (a dataset version) as a training pool: train split only, grounded prompts, MLflow input."""

from __future__ import annotations

import json

import pytest

from engine.errors import InputError
from engine.finetune.examples import MixSpec, RagExampleSpec, record_examples
from engine.finetune.inputs import generated_pool, log_dataset_inputs
from engine.finetune.spec import TrainSpec
from engine.qa.records import normalize_hotpotqa
from engine.qa.versions import DatasetStore


@pytest.fixture
def version(settings, shared_data):
    lines = (shared_data / "hotpotqa-dev.jsonl").read_text(encoding="utf-8").splitlines()[:30]
    records = [normalize_hotpotqa(json.loads(line), n) for n, line in enumerate(lines)]
    splits = ["train"] * 20 + ["validation"] * 5 + ["test"] * 5
    records = [r.with_metadata(split=s) for r, s in zip(records, splits, strict=True)]
    return DatasetStore(settings).save("hpqa", records), records


def test_record_examples_hold_own_contexts_and_distractors(version):
    _, records = version
    record = records[0]
    (example,) = record_examples([record], RagExampleSpec(distractors=2))  # no other record: no distractor
    text = example.messages[-1]["content"]
    assert example.answer == record.answer and example.source == "generated" and example.id == record.id
    assert text.count("\n[") == len(record.contexts) and record.question in text
    examples = record_examples(records[:5], RagExampleSpec(distractors=2, max_source_chars=80))
    for ex, rec in zip(examples, records[:5], strict=True):
        assert ex.messages[-1]["content"].count("\n[") == len(rec.contexts) + 2
    assert examples == record_examples(records[:5], RagExampleSpec(distractors=2, max_source_chars=80))


def test_only_the_training_split_is_used(settings, version):
    manifest, records = version
    spec = TrainSpec(mix=MixSpec.with_shares(generated=0.5), qa_dataset="hpqa")
    examples, found = generated_pool(spec, settings)
    train_ids = {r.id for r in records if r.metadata["split"] == "train"}
    assert {e.id for e in examples} == train_ids and found["version"] == manifest.id and found["split"] == "train"
    pinned, _ = generated_pool(TrainSpec(mix=spec.mix, qa_dataset=f"hpqa@{manifest.id}"), settings)
    assert pinned == examples
    with pytest.raises(InputError, match="needs a dataset"):
        TrainSpec(mix=MixSpec.with_shares(generated=0.5))
    with pytest.raises(InputError, match="sum to at most 1"):
        MixSpec.with_shares(dolly=0.6, generated=0.6)


def test_a_training_run_names_the_version_as_its_input(settings, tracker, version):
    manifest, _ = version
    run_id = tracker.start("studio-training", "t")
    log_dataset_inputs(tracker, run_id, [{"name": "hotpotqa-dev.jsonl"}, {"dataset": "hpqa", "version": manifest.id}],
                       settings)  # fmt: skip
    inputs = tracker.client.get_run(run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [(f"hpqa@{manifest.id}", manifest.id)]
