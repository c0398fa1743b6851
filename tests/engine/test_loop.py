"""The guided loop on a real collection: a folder of documents, people's questions, the bundled model.

Kept small (a few chunks, a few training steps) so the whole loop runs in minutes on 2 CPU cores;
what is checked is that each step does its part and hands the next one what it needs.
"""

from __future__ import annotations

import json

import pytest

from engine.data.augment import AugmentSpec
from engine.data.steps import hard_case_version
from engine.errors import InputError, NotFoundError
from engine.loop import STEPS, LoopSpec, list_loops, misses_args, read_loop, run_loop, start_loop, step_rows
from engine.models.active import read_active
from engine.models.adapters import AdapterRegistry
from engine.qa.versions import DatasetStore

pytestmark = pytest.mark.slow

TINY_TRAINING = {"train_limit": 8, "epochs": 1.0, "val_limit": 2, "val_f1": False, "stop_on": "loss",
                 "max_length": 512, "rag": {"max_source_chars": 150, "sources": "retrieved", "k": 2}}  # fmt: skip


@pytest.fixture
def folder(tmp_path, collection_records):
    """The collection's documents as Markdown files, and its questions as the people's test set."""
    records, docs = collection_records(12)
    folder = tmp_path / "documents"
    folder.mkdir()
    for d in docs:
        (folder / d.source).write_text(f"# {d.title}\n\n{d.text}\n", encoding="utf-8")
    return folder, records


def test_the_loop_goes_from_a_folder_to_a_paired_comparison(folder, settings):
    path, records = folder
    DatasetStore(settings).save("people", records)
    spec = LoopSpec("notes", str(path), questions="people", passages=8, eval_limit=6, k=2,
                    train=tuple(TINY_TRAINING.items()))  # fmt: skip
    start_loop(settings, spec)
    seen = []
    record = run_loop(settings, "notes", lambda f, m: seen.append((f, m)), until="split")
    assert list(record["steps"]) == ["ingest", "generate", "split"]
    assert record["steps"]["ingest"]["documents"] == len(list(path.iterdir()))
    generated = DatasetStore(settings).load("notes-qa", record["steps"]["split"]["version"])
    files = {p.name for p in path.iterdir()}
    assert generated and all(r.doc_ids[0] in files for r in generated)  # each pair names its file
    assert {r.metadata["split"] for r in generated} == {"train", "validation", "test"}
    assert all(0 <= f <= 1 for f, _ in seen) and any(m.startswith("generate:") for _, m in seen)

    record = run_loop(settings, "notes")  # continues where it stopped
    assert list(record["steps"]) == list(STEPS)
    base, tuned = record["steps"]["baseline"], record["steps"]["evaluate"]
    assert base["questions"] == tuned["questions"] == 6 and base["written_by_people"]
    assert set(base["scores"]) == set(tuned["scores"])
    compare = record["steps"]["compare"]
    assert compare["n"] == 6 and compare["low"] <= compare["gain"] <= compare["high"]
    trained = AdapterRegistry(settings).get("notes-lora")
    assert trained.datasets[0]["dataset"] == "notes-qa"
    assert trained.train["rag"]["answer_style"] == "auto"  # asked per question, as the evaluation asked it
    train = record["steps"]["train"]  # no HotpotQA adapter is saved here: a new adapter, collection recipe 3
    assert train["started_from"] == "" and train["recipe"] == "collection-recipe-3" and not trained.train["start_from"]
    activated = record["steps"]["activate"]["activated"]
    assert activated == (compare["verdict"] == "better")
    assert read_active(settings).adapter == ("notes-lora" if activated else "")
    on_disk = json.loads((settings.data_dir / "loops" / "notes.json").read_text())
    assert on_disk["steps"].keys() == record["steps"].keys()
    assert [row["state"] for row in step_rows(read_loop(settings, "notes"))] == ["done"] * len(STEPS)
    assert list_loops(settings) == ["notes"]

    # the adapter's misses on the people's questions become training items, never test items
    args = misses_args(record, threshold=100.0)
    assert args["dataset"] == "notes-qa" and args["run_id"] == tuned["run_id"]
    found, report = hard_case_version(settings, args["dataset"], args["version"], args["run_id"], 100.0,
                                      AugmentSpec(kinds=("typos",), typo_rate=0.2))  # fmt: skip
    assert report["external"] == report["wrong"] > 0 and report["matched"] == 0
    variants = [r for r in DatasetStore(settings).load("notes-qa", found.id) if r.metadata.get("hard_case")]
    people = {r.id for r in records}
    assert variants and all(v.metadata["split"] == "train" and v.metadata["for_miss"] in people for v in variants)


def test_bad_loops_are_clear_errors(settings, tmp_path):
    with pytest.raises(InputError, match="Invalid collection name"):
        LoopSpec("../x", str(tmp_path))
    with pytest.raises(InputError, match="folder"):
        LoopSpec("notes", " ")
    with pytest.raises(NotFoundError, match="no loop 'nothing'"):
        read_loop(settings, "nothing")
    start_loop(settings, LoopSpec("notes", str(tmp_path / "missing")))
    with pytest.raises(InputError, match="other settings"):
        start_loop(settings, LoopSpec("notes", str(tmp_path)))
    with pytest.raises(InputError, match="other settings"):  # other training changes are other settings too
        start_loop(settings, LoopSpec("notes", str(tmp_path / "missing"), train=(("epochs", 3.0),)))
    with pytest.raises(InputError, match="does not exist"):
        run_loop(settings, "notes")
    assert read_loop(settings, "notes")["steps"] == {}  # a failed step records nothing


def test_a_collection_whose_people_answer_in_sentences_is_trained_and_asked_in_sentences(settings, tmp_path):
    from engine.loop.steps import collection_style, eval_spec
    from engine.qa.schema import QARecord

    short = [QARecord(f"Who wrote book {n}?", "Jane Austen") for n in range(5)]
    long = [QARecord(f"Why did the fair happen {n}?", "It happened because the city wanted to show its "
                     "engineering to the world in the year of the centenary.") for n in range(5)]  # fmt: skip
    DatasetStore(settings).save("short-answers", short)
    DatasetStore(settings).save("sentence-answers", long[:3] + short[:2])
    styles = {q: collection_style(LoopSpec("notes", str(tmp_path), questions=q), settings)
              for q in ("short-answers", "sentence-answers", "")}  # fmt: skip
    assert styles == {"short-answers": "auto", "sentence-answers": "sentences", "": "auto"}
    spec = LoopSpec("notes", str(tmp_path), questions="sentence-answers")
    assert eval_spec(spec, {}, style="sentences").answer_style == "sentences"


def saved_adapter(settings, name: str, base: dict, f1: float, dataset: str = "", primary: str = "hotpotqa",
                  style: str = "short") -> None:  # fmt: skip
    """An adapter's record as training writes it (``studio.json``); its weights are not needed to choose it."""
    folder = settings.data_dir / "adapters" / name
    folder.mkdir(parents=True)
    train = {"dataset": dataset, "mix": {"sources": [[primary, 0.75], ["dolly", 0.25]]}, "rag": {"answer_style": style}}
    meta = {"base": base, "metrics": {"best_eval_f1": f1}, "train": train, "created": "2026-12-06T10:00:00+00:00"}
    (folder / "studio.json").write_text(json.dumps(meta))


def test_the_loop_continues_the_best_hotpotqa_adapter_that_fits_the_collections_answers(settings, tmp_path):
    from engine.loop.steps import starting_adapter
    from engine.models.catalog import default_spec

    base = dict(vars(default_spec()))
    spec = LoopSpec("notes", str(tmp_path))
    assert spec.start_from == "auto" and starting_adapter(spec, "auto", settings) == ""  # none saved: a new one
    saved_adapter(settings, "hotpotqa-short", base, 29.1)
    saved_adapter(settings, "hotpotqa-better", base, 31.0)
    saved_adapter(settings, "hotpotqa-sentences", base, 12.0, style="sentences")
    saved_adapter(settings, "other-collection", base, 80.0, dataset="notes-qa", primary="dataset")
    saved_adapter(settings, "other-base", base | {"source": "HuggingFaceTB/SmolLM2-360M-Instruct", "gguf_file": None},
                  90.0)  # fmt: skip
    assert starting_adapter(spec, "auto", settings) == "hotpotqa-better"  # the best on the default model's weights
    assert starting_adapter(spec, "sentences", settings) == "hotpotqa-sentences"  # trained for sentences
    assert starting_adapter(LoopSpec("notes", str(tmp_path), start_from=""), "auto", settings) == ""
    named = LoopSpec("notes", str(tmp_path), start_from="hotpotqa-short")
    assert starting_adapter(named, "sentences", settings) == "hotpotqa-short"  # a name is taken as given
    with pytest.raises(InputError, match="Invalid adapter name"):
        LoopSpec("notes", str(tmp_path), start_from="../x")
