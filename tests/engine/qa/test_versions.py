"""Immutable dataset versions: content-hash ids, storage, statistics, diffs and MLflow inputs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from engine.errors import InputError, NotFoundError
from engine.qa.records import read_records
from engine.qa.schema import QARecord
from engine.qa.summary import ANSWER_TYPES, answer_type, diff, stats
from engine.qa.versions import EXPERIMENT, DatasetStore, log_dataset_input, log_version

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def hotpot(shared_data) -> list[QARecord]:
    return read_records(shared_data / "hotpotqa-dev.jsonl").records


def with_answer(record: QARecord, answer: str) -> QARecord:
    return replace(record, answer=answer, id="")  # an empty id: the new content's hash


def test_same_content_same_id_in_another_process_and_one_answer_changes_it(settings, shared_data, hotpot) -> None:
    store = DatasetStore(settings)
    first = store.save("hotpot-dev", hotpot[:200], sources=[shared_data / "hotpotqa-dev.jsonl"], note="first 200")
    assert len(first.id) == 16 and first.counts == {"records": 200, "sources": {"hotpotqa": 200}}
    digest = hashlib.sha256((shared_data / "hotpotqa-dev.jsonl").read_bytes()).hexdigest()
    assert first.sources == (
        {"name": "hotpotqa-dev.jsonl", "path": str((shared_data / "hotpotqa-dev.jsonl").resolve()), "sha256": digest},
    )
    # the id is a content hash: another interpreter (another hash seed) computes the same one
    code = (
        "import sys; from engine.qa.records import read_records; from engine.qa.schema import content_hash;"
        "print(content_hash(read_records(sys.argv[1]).records[:200]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code, str(shared_data / "hotpotqa-dev.jsonl")], env=env,
                         capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    assert out.stdout.strip() == first.id
    edited = list(hotpot[:200])
    edited[57] = with_answer(edited[57], edited[57].answer + " (edited)")
    second = store.save("hotpot-dev", edited, parent=first.id)
    assert second.id != first.id and second.parent == first.id
    assert [m.id for m in store.versions("hotpot-dev")] == [second.id, first.id]
    assert store.datasets() == ["hotpot-dev"]


def test_saving_the_same_content_again_touches_nothing(settings, hotpot) -> None:
    store = DatasetStore(settings)
    saved = store.save("immutable", hotpot[:50], note="original")
    folder = store.folder("immutable", saved.id)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert set(before) == {"records.jsonl", "manifest.json", "report.json"}
    again = store.save("immutable", list(reversed(hotpot[:50])), note="a different note")  # same set of records
    assert again == saved and again.note == "original"
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    assert [p.name for p in folder.parent.iterdir()] == [saved.id]  # no temp folder left behind
    loaded = store.load("immutable", saved.id)
    assert [r.to_dict() for r in loaded] == [r.to_dict() for r in hotpot[:50]]
    assert store.manifest("immutable", saved.id) == saved
    assert store.report("immutable", saved.id) == json.loads(json.dumps(stats(hotpot[:50])))


def test_unsafe_names_are_refused_and_unknown_ones_are_not_found(settings, hotpot) -> None:
    store = DatasetStore(settings)
    for name in ("../x", "a/b", "", " ", ".hidden", "x" * 65, "..", "a..b"):
        with pytest.raises(InputError, match="Invalid dataset name"):
            store.save(name, hotpot[:2])
    assert not (settings.data_dir / "x").exists() and store.datasets() == []
    saved = store.save("known", hotpot[:2])
    with pytest.raises(NotFoundError, match="There is no dataset 'unknown'; saved datasets: known"):
        store.versions("unknown")
    with pytest.raises(NotFoundError, match=f"Dataset 'known' has no version '0123456789abcdef'.*: {saved.id}"):
        store.load("known", "0123456789abcdef")
    with pytest.raises(NotFoundError):
        store.manifest("known", "../../known")
    with pytest.raises(InputError, match="at least one record"):
        store.save("known", [])
    store.delete_dataset("known")
    assert store.datasets() == [] and list((settings.data_dir / "datasets").iterdir()) == []


def test_answer_types() -> None:
    cases = {
        "Yes": "yes/no", "no.": "yes/no", "1990": "date", "4 July 1776": "date", "January 16, 2013": "date",
        "42,972": "number", "2.1 million": "number", "five": "number", "Denise Levertov": "entity",
        "University of Oxford": "entity", "the Boston Celtics": "entity", "board game": "phrase",
        "It was blue": "phrase", " ".join(["word"] * 21): "long",
    }  # fmt: skip
    assert {answer: answer_type(answer) for answer in cases} == cases
    assert set(cases.values()) == set(ANSWER_TYPES)


def test_stats_report_lengths_types_metadata_and_filter_rates(hotpot) -> None:
    records = [
        r.with_metadata(split="train" if i < 7 else "test", topic_label="Film" if i % 2 else "Music")
        for i, r in enumerate(hotpot[:10])
    ]
    records[0] = records[0].with_metadata(scores={"answer_f1": 1.0, "retrieval_rank": 1, "duplicate": True})
    records[1] = records[1].with_metadata(scores={"answer_f1": 0.2, "retrieval_rank": 7, "duplicate": False})
    report = stats(records, thresholds={"answer_f1": 0.5, "retrieval_rank": {"max": 5}})
    assert report["count"] == 10
    question_words = sorted(len(r.question.split()) for r in records)
    assert (report["lengths"]["question"]["min"], report["lengths"]["question"]["max"]) == (
        question_words[0], question_words[-1],
    )  # fmt: skip
    assert report["lengths"]["question"]["mean"] == round(sum(question_words) / 10, 3)
    assert report["answer_types"] == {t: 0 for t in ANSWER_TYPES} | Counter(answer_type(r.answer) for r in records)
    assert report["sources"] == {"hotpotqa": 10} and sum(report["categories"].values()) == 10
    assert report["splits"] == {"train": 7, "test": 3} and report["topics"] == {"Music": 5, "Film": 5}
    assert report["filters"]["answer_f1"] == {"scored": 2, "mean": 0.6, "passed": 1, "pass_rate": 0.5}
    assert report["filters"]["retrieval_rank"]["passed"] == 1
    assert report["filters"]["duplicate"] == {"scored": 2, "passed": 1, "pass_rate": 0.5}
    assert "filters" not in stats(hotpot[:10]) and "splits" not in stats(hotpot[:10])


def test_diff_finds_added_removed_changed_and_stat_deltas(hotpot) -> None:
    old = [r.with_metadata(split="train") for r in hotpot[:30]]
    new = [r for i, r in enumerate(old) if i not in (3, 4, 5)]  # removed: 3, 4, 5
    new[0] = with_answer(new[0], "yes")  # changed answer
    new[1] = replace(new[1], question="  " + new[1].question.upper() + " ", contexts=new[1].contexts[:2], id="")
    added = [r.with_metadata(split="test") for r in hotpot[30:34]]
    new += added
    result = diff(old, new)
    assert [r.id for r in result.removed] == [old[i].id for i in (3, 4, 5)]
    assert [r.id for r in result.added] == [r.id for r in added]
    assert [(o.id, n.id) for o, n in result.changed] == [(old[0].id, new[0].id), (old[1].id, new[1].id)]
    assert result.unchanged == 30 - 3 - 2
    deltas = result.stat_deltas
    assert deltas["count"] == len(new) - len(old) == 1
    assert deltas["split.train"] == -3 and deltas["split.test"] == 4
    types_old, types_new = (
        Counter(map(answer_type, (r.answer for r in old))),
        Counter(answer_type(r.answer) for r in new),
    )
    assert {t: deltas[f"answer_type.{t}"] for t in ANSWER_TYPES} == {
        t: types_new[t] - types_old[t] for t in ANSWER_TYPES
    }
    assert deltas["answer_type.yes/no"] >= 1
    old_mean = sum(len(r.answer.split()) for r in old) / len(old)
    new_mean = sum(len(r.answer.split()) for r in new) / len(new)
    assert deltas["mean_words.answer"] == pytest.approx(new_mean - old_mean, abs=2e-3)
    same = diff(old, list(reversed(old)))
    assert (same.added, same.removed, same.changed, same.unchanged) == ((), (), (), 30)
    assert set(same.stat_deltas.values()) == {0}


def test_log_version_names_the_data_as_a_run_input(settings, tracker, hotpot) -> None:
    store = DatasetStore(settings)
    # a source label with characters MLflow refuses in a parameter name (the user's own words)
    records = [r.with_metadata(split="train", source="notes (by people)") for r in hotpot[:40]]
    manifest = store.save("hotpot-small", records, generator="SmolLM2-135M", thresholds={"answer_f1": 0.5})
    run_id = log_version(tracker, manifest, records)
    run = tracker.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert tracker.client.get_experiment(run.info.experiment_id).name == EXPERIMENT
    params = run.data.params
    assert (params["dataset"], params["version"], params["count"], params["count.splits.train"]) == (
        "hotpot-small", manifest.id, "40", "40",
    )  # fmt: skip
    assert params["count.sources.notes _by people_"] == "40"
    (entry,) = run.inputs.dataset_inputs
    assert (entry.dataset.name, entry.dataset.digest) == (f"hotpot-small@{manifest.id}", manifest.id)
    assert json.loads(entry.dataset.profile)["num_rows"] == 40
    assert {t.key: t.value for t in entry.tags}["mlflow.data.context"] == "dataset"
    assert {a.path for a in tracker.client.list_artifacts(run_id)} == {"manifest.json", "report.json"}
    # a training run names the exact version it used
    training = tracker.start("studio-training", "train")
    log_dataset_input(tracker, training, manifest, records)
    (used,) = tracker.client.get_run(training).inputs.dataset_inputs
    assert used.dataset.digest == manifest.id and [t.value for t in used.tags] == ["training"]
