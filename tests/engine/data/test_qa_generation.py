"""QA generation with the bundled model on a few real passages: valid items, a funnel, resume, a version."""

from __future__ import annotations

import json

import pytest

from engine.data.filters import NAMES, FilterSpec
from engine.data.generation import GenerationSpec, WorkFolder, generate_qa
from engine.data.versions import DatasetStore
from engine.errors import InputError

pytestmark = pytest.mark.slow


@pytest.fixture
def passages(tmp_path, shared_data):
    """A small source: 12 real passages (the round trip retrieves among all of them)."""
    rows = [json.loads(line) for line in (shared_data / "wiki-passages.jsonl").open(encoding="utf-8")][:12]
    path = tmp_path / "passages.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


def test_generation_yields_valid_items_and_resumes(generator, embedder, settings, passages):
    path, rows = passages
    loose = FilterSpec(retrieval_k=12, min_answer_f1=0.0, max_copy=1.0)  # keep what is well-formed and sized
    spec = GenerationSpec(source=str(path), dataset="tiny", passages=0, answers_per_passage=2, batch_size=2,
                          filters=loose)  # fmt: skip
    work = WorkFolder(settings.data_dir / "datasets" / "_generation" / spec.key())
    checks = []

    def cancel_at_the_second_chunk():
        checks.append(1)
        if len(checks) == 2:
            raise KeyboardInterrupt  # as a cancelled job stops: between two chunks

    with pytest.raises(KeyboardInterrupt):
        generate_qa(spec, generator, embedder, settings, check=cancel_at_the_second_chunk)
    assert len(work.read("questions")) == 8  # the first chunk (4 batches of 2) was kept
    report = generate_qa(spec, generator, embedder, settings)
    assert report.resumed and report.candidates == report.funnel[0]["entered"] == len(work.read("questions")) > 8
    assert [s["name"] for s in report.funnel] == list(NAMES)
    assert all(a["passed"] == b["entered"] for a, b in zip(report.funnel, report.funnel[1:], strict=False))
    assert report.kept == report.funnel[-1]["passed"] > 0
    records = DatasetStore(settings).load("tiny", report.version)
    texts = {r["id"]: r["text"] for r in rows}
    for r in records:
        passage = r.contexts[0]
        assert passage.text == texts[passage.doc_id] and r.doc_ids == (passage.doc_id,)
        assert r.answer in passage.text  # the answer is a span of its passage
        assert r.question.endswith("?") and r.answer.lower() not in r.question.lower()
        assert set(r.metadata["scores"]) == set(NAMES) and r.metadata["source"] == "generated"
    assert set(report.seconds) >= {"generate questions", "round trips (retrieve and answer)", "apply filters"}

    # A second run of the same spec generates nothing again; other thresholds are re-applied to what is stored.
    calls = []
    real = generator.generate
    generator.generate = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        again = generate_qa(GenerationSpec(source=str(path), dataset="tiny", passages=0, answers_per_passage=2,
                                           filters=loose), generator, embedder, settings)  # fmt: skip
        strict = FilterSpec(min_question_words=31, max_question_words=40, retrieval_k=12, min_answer_f1=0.0)
        with pytest.raises(InputError, match="No generated pair passed every filter"):
            generate_qa(GenerationSpec(source=str(path), dataset="tiny", passages=0, answers_per_passage=2,
                                       filters=strict), generator, embedder, settings)  # fmt: skip
    finally:
        generator.generate = real
    assert calls == [] and again.resumed and (again.candidates, again.version) == (report.candidates, report.version)


def test_generation_bad_input(generator, embedder, settings, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match="empty"):
        generate_qa(GenerationSpec(source=str(empty)), generator, embedder, settings)
    with pytest.raises(InputError, match="not found"):
        generate_qa(GenerationSpec(source=str(tmp_path / "missing.jsonl")), generator, embedder, settings)
    with pytest.raises(InputError):
        GenerationSpec(answers_per_passage=0)
