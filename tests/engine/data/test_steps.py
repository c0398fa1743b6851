"""Dataset steps on real HotpotQA records: import -> topics -> split -> augment -> export, each a new version."""

from __future__ import annotations

import pytest

from engine.cli.data import main as data_main
from engine.data import steps
from engine.data.augment import AugmentSpec
from engine.data.splits import SplitSpec
from engine.data.topics import TopicSpec
from engine.errors import InputError, NotFoundError
from engine.qa.summary import diff
from engine.qa.versions import DatasetStore

pytestmark = pytest.mark.slow

N_HOTPOT = 60


@pytest.fixture
def hotpot(settings, shared_data, tmp_path):
    """The first 60 HotpotQA questions (600 paragraphs for the distractor retriever), imported as dataset ``hp``."""
    lines = (shared_data / "hotpotqa-dev.jsonl").read_text(encoding="utf-8").splitlines()[:N_HOTPOT]
    path = tmp_path / "hp.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest, result = steps.import_source(settings, "hpqa", str(path))
    assert result.format == "hotpotqa" and manifest.counts["records"] == N_HOTPOT
    return manifest


def test_topics_split_augment_export_chain(settings, hotpot, tracker, tmp_path):
    store = DatasetStore(settings)
    labelled, topics = steps.cluster_version(settings, "hpqa", hotpot.id, TopicSpec(k_min=3, k_max=6), tracker)
    assert labelled.parent == hotpot.id and 3 <= topics.k <= 6
    records = store.load("hpqa", labelled.id)
    assert all("topic_label" in r.metadata and "map_x" in r.metadata for r in records)

    split, leaks, sizes = steps.split_version(settings, "hpqa", labelled.id, SplitSpec(seed=1), 0.95, tracker)
    assert split.parent == labelled.id and sum(sizes.values()) == N_HOTPOT and leaks.clean, leaks.counts()
    assert split.counts["splits"] == sizes and sizes["train"] > sizes["validation"] > 0 and sizes["test"] > 0

    augmented, report = steps.augment_version(settings, "hpqa", split.id, AugmentSpec(kinds=("shuffle", "typos")),
                                              tracker=tracker)  # fmt: skip
    changes = diff(store.load("hpqa", split.id), store.load("hpqa", augmented.id))
    assert len(changes.added) == report["total"] > 0 and not changes.removed and not changes.changed
    by_id = {r.id: r for r in store.load("hpqa", augmented.id)}
    for r in by_id.values():
        if "origin" in r.metadata:
            assert r.metadata["split"] == by_id[r.metadata["origin"]].metadata["split"]

    for name in ("out.jsonl", "out.csv", "hf-folder"):
        target = steps.export_version(settings, "hpqa", augmented.id, tmp_path / name)
        again, _ = steps.import_source(settings, "hp-copy", str(target))
        assert again.id == augmented.id  # the same content, so the same version id
    with pytest.raises(InputError, match="Unknown export format"):
        steps.export_version(settings, "hpqa", augmented.id, tmp_path / "x", fmt="xml")


def test_the_data_command_line(settings, hotpot, capsys):
    assert data_main(["versions", "hpqa"]) == 0
    assert hotpot.id in capsys.readouterr().out
    assert data_main(["split", "hpqa", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "| train | validation | test |" in out and "| 0 | 0 | 0 |" in out  # sizes, then zero leaks
    assert data_main(["show", "hpqa", "--version", "nope"]) == 2
    assert "has no version 'nope'" in capsys.readouterr().err
    assert data_main(["import", "/no/such/file.jsonl", "--dataset", "none-yet"]) == 2
    assert "error:" in capsys.readouterr().err
    with pytest.raises(NotFoundError):
        DatasetStore(settings).versions("none-yet")


def test_hard_cases_from_a_real_evaluation_run(settings, hotpot, tracker, generator, embedder, shared_data, tmp_path):
    from engine.data.augment import normalize_text
    from engine.evaluation.runner import EvalSpec, run_evaluation

    result = run_evaluation(EvalSpec(limit=8, batch_size=8, max_new_tokens=16), generator, embedder, None, settings,
                            tracker)  # fmt: skip
    wrong = {normalize_text(r["question"]) for r in result.rows if r["f1"] < 50}
    assert wrong, "the bundled model gets some of 8 HotpotQA questions wrong"
    spec = AugmentSpec(kinds=("typos", "distractors"))
    found, report = steps.hard_case_version(settings, "hpqa", hotpot.id, result.run_id, 50.0, spec, tracker=tracker)
    assert found.parent == hotpot.id and report["wrong"] == report["matched"] == len(wrong)
    records = DatasetStore(settings).load("hpqa", found.id)
    by_id = {r.id: r for r in records}
    variants = [r for r in records if r.metadata.get("hard_case")]
    assert len(records) == N_HOTPOT + len(variants) and report["variants"] == len(variants) > 0
    assert {normalize_text(by_id[v.metadata["origin"]].question) for v in variants} == wrong
    assert all(v.metadata["origin_f1"] < 50 for v in variants)
    later = tmp_path / "later.jsonl"  # questions the evaluation did not ask
    later.write_text("\n".join((shared_data / "hotpotqa-dev.jsonl").read_text().splitlines()[500:510]) + "\n")
    other, _ = steps.import_source(settings, "other", str(later))
    with pytest.raises(InputError, match="0 are in other@"):
        steps.hard_case_version(settings, "other", other.id, result.run_id, 50.0, spec, tracker=tracker)


def test_augmented_distractors_are_retrieved_for_the_question(settings, hotpot, tracker):
    store = DatasetStore(settings)
    records = store.load("hpqa", hotpot.id)
    spec = AugmentSpec(kinds=("distractors",), distractors=1)
    found, report = steps.augment_version(settings, "hpqa", hotpot.id, spec, tracker=tracker)
    variants = [r for r in store.load("hpqa", found.id) if r.metadata.get("augmentation") == "distractors"]
    assert len(variants) == report["made"]["distractors"] > N_HOTPOT * 2 // 3
    retrieve, by_id = steps.pool_retriever(records, settings), {r.id: r for r in records}
    for variant in variants[:30]:
        origin = by_id[variant.metadata["origin"]]
        (added,) = [c for c in variant.contexts if c not in origin.contexts]
        assert added in retrieve(origin.question, len(origin.contexts) + 6)  # among the most similar, not random


@pytest.mark.slow
def test_misses_of_a_test_evaluation_become_training_items_never_test_items(
    collection, settings, generator, embedder, store, tracker
):
    from engine.evaluation.runner import EvalSpec, run_evaluation

    spec = EvalSpec(dataset="notes-qa", split="test", mode="kb", kb="notes", k=3, batch_size=4, max_new_tokens=12)
    result = run_evaluation(spec, generator, embedder, store, settings, tracker)
    tested = {r["id"] for r in result.rows if r["f1"] < 100}
    assert tested, "the bundled model misses some of the test questions"
    found, report = steps.hard_case_version(settings, "notes-qa", collection, result.run_id, 100.0,
                                            AugmentSpec(kinds=("typos",)), tracker=tracker)  # fmt: skip
    assert report["held_out"] == report["matched"] == len(tested) and report["neighbours"] > 0
    datasets = DatasetStore(settings)
    before, after = datasets.load("notes-qa", collection), datasets.load("notes-qa", found.id)
    variants = [r for r in after if r.metadata.get("hard_case")]
    train_ids = {r.id for r in before if r.metadata["split"] == "train"}
    assert variants and all(v.metadata["split"] == "train" and v.metadata["origin"] in train_ids for v in variants)
    assert all(v.metadata["for_miss"] in tested for v in variants)
    # the test split is exactly what it was: no test item moved, none added
    tests_before = [r.id for r in before if r.metadata["split"] == "test"]
    assert [r.id for r in after if r.metadata["split"] == "test"] == tests_before
