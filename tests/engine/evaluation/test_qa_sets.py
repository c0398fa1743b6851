"""Evaluating on a user's QA set: a saved, split dataset version and its knowledge base (see
tests/engine/conftest.py for the collection: every document titled alike)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from engine.errors import InputError
from engine.evaluation.qa_sets import load_qa_set, parse_ref
from engine.evaluation.runner import EvalSpec, run_evaluation
from engine.evaluation.splits import split_items
from engine.qa.versions import DatasetStore
from engine.settings import ROOT


def test_refs_and_the_built_in_hotpotqa_set(settings, shared_data):
    assert parse_ref(" notes-qa@abc ") == ("notes-qa", "abc") and parse_ref("notes-qa") == ("notes-qa", "")
    with pytest.raises(InputError, match="Name a QA set"):
        parse_ref(" @v1")
    hotpot = load_qa_set(settings, "hotpotqa", "test", limit=7)
    assert [i.id for i in hotpot.items] == [i.id for i in split_items(shared_data / "hotpotqa-dev.jsonl",
                                                                      settings, "test")[:7]]  # fmt: skip
    assert hotpot.ref == "hotpotqa"


def test_a_split_dataset_evaluates_in_kb_mode_scored_by_document(
    collection, generator, embedder, store, settings, tracker
):
    qa = load_qa_set(settings, "notes-qa", "test")
    assert qa.version == collection and qa.items and all(i.supporting_docs for i in qa.items)
    spec = EvalSpec(dataset="notes-qa", split="test", mode="kb", kb="notes", k=3, batch_size=4, max_new_tokens=12)
    result = run_evaluation(spec, generator, embedder, store, settings, tracker)
    assert [r["id"] for r in result.rows] == [i.id for i in qa.items]
    # every title is "notes.md": only document ids tell the right passage from the others
    assert all(r["retrieved"].startswith("doc-") for r in result.rows)
    assert result.metrics["recall@5"] > 0.3
    assert result.metrics["mrr"] > 0.3
    run = tracker.client.get_run(result.run_id)
    assert run.data.params["dataset"] == f"notes-qa@{collection}" and run.data.params["dataset_split"] == "test"
    assert "data" not in run.data.params


def test_given_mode_answers_from_the_records_own_contexts(collection, generator, embedder, settings):
    spec = EvalSpec(dataset=f"notes-qa@{collection}", split="validation", mode="given", batch_size=4,
                    max_new_tokens=12)  # fmt: skip
    result = run_evaluation(spec, generator, embedder, None, settings)
    assert result.rows and result.metrics["recall@5"] == 1.0  # the records' own passages are all shown


def test_unsplit_and_unknown_sets_are_clear_errors(settings, collection_records):
    records, _ = collection_records(4)
    DatasetStore(settings).save("raw-qa", records)
    with pytest.raises(InputError, match="is not split: split it first"):
        load_qa_set(settings, "raw-qa", "test")
    assert len(load_qa_set(settings, "raw-qa", "").items) == 4  # '' : every record
    env = dict(os.environ, STUDIO_DATA_DIR=str(settings.data_dir), STUDIO_SHARED_DATA=str(settings.shared_data_dir))
    for args, message in ((["--dataset", "raw-qa", "--split", "test"], "is not split"),
                          (["--dataset", "nope", "--split", "test"], "no dataset 'nope'")):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "engine", "eval", *args, "--no-mlflow"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
