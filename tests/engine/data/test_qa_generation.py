"""QA generation with the bundled model on a few real passages: valid items, a funnel, resume, a version."""

from __future__ import annotations

import json

import pytest

from engine.data.filters import NAMES, FilterSpec
from engine.data.generation import GenerationSpec, WorkFolder, generate_qa
from engine.data.questions import clean_question, question_messages, question_stem, span_sentence
from engine.errors import InputError
from engine.qa.versions import DatasetStore

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
        strict = FilterSpec(
            min_question_words=31, max_question_words=40, max_sentence_words=1, retrieval_k=12, min_answer_f1=0.0
        )  # no question that long; no one-word descriptive sentence
        with pytest.raises(InputError, match="No generated pair passed every filter"):
            generate_qa(GenerationSpec(source=str(path), dataset="tiny", passages=0, answers_per_passage=2,
                                       filters=strict), generator, embedder, settings)  # fmt: skip
    finally:
        generator.generate = real
    assert calls == [] and again.resumed and (again.candidates, again.version) == (report.candidates, report.version)


def test_generation_from_a_knowledge_base_keeps_each_pairs_document(generator, embedder, store, settings, passages):
    """A folder of documents becomes QA pairs: the pairs come from the knowledge base's chunks, and each
    names the document its chunk belongs to (so splits keep a document's pairs together)."""
    from engine.rag.documents import Document
    from engine.rag.ingest import ingest_documents

    _, rows = passages
    docs = [Document(f"file-{n}.md", f"Notes {n}", r["text"], f"file-{n}.md") for n, r in enumerate(rows[:6])]
    ingest_documents(store, "my-notes", docs)
    loose = FilterSpec(retrieval_k=12, min_answer_f1=0.0, max_copy=1.0)
    spec = GenerationSpec(kb="my-notes", dataset="notes-qa", passages=0, answers_per_passage=2, batch_size=4,
                          filters=loose)  # fmt: skip
    report = generate_qa(spec, generator, embedder, settings)
    manifest = DatasetStore(settings).manifest("notes-qa", report.version)
    assert manifest.sources[0]["kb"] == "my-notes" and manifest.sources[0]["chunks"] >= 6
    texts = {d.id: d.text for d in docs}
    records = DatasetStore(settings).load("notes-qa", report.version)
    assert records and all(r.doc_ids[0] in texts and r.contexts[0].text in texts[r.doc_ids[0]] for r in records)
    with pytest.raises(Exception, match="does not exist"):
        generate_qa(GenerationSpec(kb="no-such-kb", dataset="x-qa"), generator, embedder, settings)


def test_generation_bad_input(generator, embedder, settings, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match="empty"):
        generate_qa(GenerationSpec(source=str(empty)), generator, embedder, settings)
    with pytest.raises(InputError, match="not found"):
        generate_qa(GenerationSpec(source=str(tmp_path / "missing.jsonl")), generator, embedder, settings)
    with pytest.raises(InputError):
        GenerationSpec(answers_per_passage=0)


@pytest.mark.parametrize(
    ("kind", "answer", "stem"),
    [("year", "1889", "In what year"), ("date", "26 September 1969", "On what date"),
     ("number", "260 people", "How many people"), ("number", "3.5", "How many"), ("name", "Apple Records", "What"),
     ("person", "George Martin", "Who"), ("place", "London", "Where")],
)  # fmt: skip
def test_question_stem_follows_the_answer_kind(kind, answer, stem):
    assert question_stem(kind, answer) == stem


def test_question_prompt_holds_the_answer_sentence_and_ends_with_the_stem():
    passage = "Abbey Road is an album. It was released on 26 September 1969 by Apple. It sold well."
    assert span_sentence(passage, "26 September 1969") == "It was released on 26 September 1969 by Apple."
    assert span_sentence(passage, "Abbey Road") == "Abbey Road is an album."
    messages = question_messages("Abbey Road", passage, "26 September 1969", "date")
    assert messages[-2]["content"].startswith("Passage: Abbey Road: It was released on 26 September 1969 by Apple.")
    assert "It sold well" not in messages[-2]["content"]
    assert messages[-1] == {"role": "assistant", "content": "On what date"}
    assert question_messages("Abbey Road", passage, "Apple", "name")[-1] == {"role": "assistant", "content": "What"}
    assert question_messages("Abbey Road", passage, "Apple", "other")[-1]["role"] == "user"  # no stem: free
    assert clean_question(" was it released?\nMore", "On what date") == "On what date was it released?"
    assert clean_question("On what date was it released?", "On what date") == "On what date was it released?"


def test_generator_continues_a_prefilled_answer(generator):
    messages = [{"role": "user", "content": "Name a year."}, {"role": "assistant", "content": "In what year"}]
    text = generator.render(messages)
    assert text.endswith("In what year") and text.count("In what year") == 1
