"""Incremental refresh of real Chroma knowledge bases, with the real embedder behind a counter."""

from __future__ import annotations

import json
from dataclasses import replace
from itertools import islice
from pathlib import Path

import pytest

from engine.data.knowledge import documents_from_records, refresh_job
from engine.errors import InputError
from engine.qa.schema import Context, QARecord
from engine.rag.chunking import ChunkSpec, chunk_document, chunk_documents
from engine.rag.documents import Document
from engine.rag.refresh import (
    DOC_CHUNKS,
    DOC_HASH,
    RefreshReport,
    document_hash,
    refresh_kb,
)
from engine.rag.store import KnowledgeBaseStore

KB = "wiki-refresh"


class CountingEmbedder:
    """The real embedder, recording every text it is asked to embed."""

    def __init__(self, inner):
        self.inner = inner
        self.spec = inner.spec
        self.texts: list[str] = []

    def embed(self, texts, on_progress=None):
        self.texts += list(texts)
        return self.inner.embed(texts, on_progress)


class Ctx:
    def __init__(self):
        self.progress_calls: list[tuple[float, str]] = []
        self.lines: list[str] = []

    def progress(self, fraction: float, message: str) -> None:
        self.progress_calls.append((fraction, message))

    def log(self, line: str) -> None:
        self.lines.append(line)

    def check_cancelled(self) -> None:
        pass


@pytest.fixture(scope="module")
def wiki_rows(shared_data: Path) -> list[dict]:
    with (shared_data / "wiki-passages.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in islice(f, 31)]


@pytest.fixture(scope="module")
def wiki_docs(wiki_rows) -> list[Document]:
    return [Document(str(r["id"]), r["title"], r["text"], "wiki") for r in wiki_rows]


@pytest.fixture
def counting(embedder) -> CountingEmbedder:
    return CountingEmbedder(embedder)


@pytest.fixture
def counted_store(settings, counting) -> KnowledgeBaseStore:
    return KnowledgeBaseStore(settings, counting)


def doc_ids(store: KnowledgeBaseStore, kb: str = KB) -> set[str]:
    return {m["doc_id"] for m in store.stored_metadata(kb).values()}


@pytest.mark.slow
def test_refresh_touches_only_what_changed(counted_store, counting, wiki_docs) -> None:
    docs = wiki_docs[:30]
    chunks = chunk_documents(docs)
    progress: list[tuple[int, int]] = []
    first = refresh_kb(counted_store, KB, docs, on_progress=lambda done, total: progress.append((done, total)))
    assert isinstance(first, RefreshReport)
    assert (first.documents, first.new_documents, first.changed_documents, first.unchanged_documents) == (30, 30, 0, 0)
    assert (first.chunks_embedded, first.chunks_deleted, first.cache_hits) == (len(chunks), 0, 0)
    assert first.chunks_computed == len(chunks) and first.seconds > 0
    assert sorted(counting.texts) == sorted(c.text for c in chunks)
    assert progress[-1] == (len(chunks), len(chunks))
    assert counted_store.count(KB) == len(chunks)
    before = counted_store.stored_metadata(KB)
    assert {m[DOC_HASH] for m in before.values()} == {document_hash(d, ChunkSpec()) for d in docs}
    assert all(m[DOC_CHUNKS] >= 1 for m in before.values())

    counting.texts.clear()
    second = refresh_kb(counted_store, KB, docs)
    assert (second.unchanged_documents, second.new_documents, second.changed_documents) == (30, 0, 0)
    assert (second.removed_documents, second.chunks_embedded, second.chunks_deleted) == (0, 0, 0)
    assert counting.texts == []
    assert second.as_dict()["chunks_computed"] == 0

    # Change one document's text, remove one, add one.
    changed = replace(docs[3], text=docs[3].text + " Its archives were digitised in 2019 by volunteers.")
    added = wiki_docs[30]
    current = [changed if d is docs[3] else d for d in docs if d is not docs[5]] + [added]
    expected_texts = {c.text for c in chunk_document(changed) + chunk_document(added)}
    expected_texts -= {c.text for c in chunks}  # a chunk of the changed document may be unchanged
    third = refresh_kb(counted_store, KB, current)
    assert (third.new_documents, third.changed_documents, third.removed_documents) == (1, 1, 1)
    assert third.unchanged_documents == 28 and third.documents == 30
    assert set(counting.texts) == expected_texts and len(counting.texts) == len(expected_texts)
    assert third.chunks_embedded == len(chunk_document(changed)) + len(chunk_document(added))
    assert third.cache_hits == third.chunks_embedded - len(expected_texts)
    stale_of_changed = {i for i, m in before.items() if m["doc_id"] == docs[3].id} - {
        c.id for c in chunk_document(changed)
    }
    removed = {i for i, m in before.items() if m["doc_id"] == docs[5].id}
    assert third.chunks_deleted == len(removed) + len(stale_of_changed)
    after = counted_store.stored_metadata(KB)
    assert doc_ids(counted_store) == {d.id for d in current}
    untouched = {i: m for i, m in before.items() if m["doc_id"] not in (docs[3].id, docs[5].id)}
    assert {i: after[i] for i in untouched} == untouched
    assert counted_store.count(KB) == len(chunk_documents(current))
    hit = counted_store.query(KB, ["archives digitised in 2019 by volunteers"], k=1)[0][0]
    assert hit.metadata["doc_id"] == docs[3].id and "digitised in 2019" in hit.text

    # A deleted knowledge base is rebuilt from the cache: no embedding at all.
    counted_store.delete(KB)
    counting.texts.clear()
    rebuilt = refresh_kb(counted_store, KB, current)
    assert rebuilt.new_documents == 30 and counting.texts == []
    assert rebuilt.cache_hits == rebuilt.chunks_embedded == len(chunk_documents(current))
    assert counted_store.count(KB) == rebuilt.chunks_embedded


@pytest.mark.slow
def test_a_half_written_document_is_redone_and_a_new_spec_rechunks(counted_store, counting, wiki_docs) -> None:
    docs = wiki_docs[:12]
    refresh_kb(counted_store, KB, docs)
    long_doc = max(docs, key=lambda d: len(chunk_document(d)))
    ids = [i for i, m in counted_store.stored_metadata(KB).items() if m["doc_id"] == long_doc.id]
    assert len(ids) >= 2
    counted_store.remove(KB, ids[:1])  # as if a refresh had stopped half-way through this document
    counting.texts.clear()
    report = refresh_kb(counted_store, KB, docs)
    assert (report.changed_documents, report.unchanged_documents) == (1, 11)
    assert report.cache_hits == report.chunks_embedded == len(ids) and counting.texts == []
    assert counted_store.count(KB) == len(chunk_documents(docs))

    small = ChunkSpec(size=300, overlap=30)
    resized = refresh_kb(counted_store, KB, docs, spec=small)
    assert resized.changed_documents == 12 and resized.unchanged_documents == 0
    assert counted_store.count(KB) == len(chunk_documents(docs, small))
    assert {m[DOC_HASH] for m in counted_store.stored_metadata(KB).values()} == {document_hash(d, small) for d in docs}


@pytest.mark.slow
def test_the_same_passage_in_two_documents_is_stored_twice(counted_store, wiki_docs) -> None:
    base = wiki_docs[0]
    twin = Document("twin", base.title, base.text, "wiki")
    refresh_kb(counted_store, KB, [base])
    report = refresh_kb(counted_store, KB, [twin, base])  # the new twin comes first: its ids must not clash
    assert (report.new_documents, report.unchanged_documents) == (1, 1)
    per_doc = len(chunk_document(base))
    assert counted_store.count(KB) == 2 * per_doc
    assert doc_ids(counted_store) == {"twin", base.id}
    again = refresh_kb(counted_store, KB, [twin, base])
    assert again.unchanged_documents == 2 and again.chunks_embedded == 0


def test_bad_input_is_refused_before_anything_is_stored(store, wiki_docs) -> None:
    with pytest.raises(InputError, match="no documents"):
        refresh_kb(store, KB, [])
    with pytest.raises(InputError, match="unique"):
        refresh_kb(store, KB, [wiki_docs[0], wiki_docs[0]])
    with pytest.raises(InputError, match="Invalid knowledge base name"):
        refresh_kb(store, "x", wiki_docs[:1])
    assert KB not in store.names()


def test_documents_from_records_are_the_distinct_contexts() -> None:
    a = Context("Alpha", "Alpha is a letter.", "doc-a")
    b = Context("Beta", "Beta follows alpha.")
    records = [
        QARecord("What is Alpha?", "a letter", (a, b)),
        QARecord("What follows alpha?", "Beta", (b, Context("Alpha again", "Other text.", "doc-a"))),
        QARecord("Blank?", "yes", (Context("Empty", "  "),)),
    ]
    docs = documents_from_records(records)
    assert [d.title for d in docs] == ["Alpha", "Beta"]  # first context of an id wins; blank ones are skipped
    assert docs[0].id == "doc-a" and docs[0].source == "dataset"
    assert len(docs[1].id) == 32 and docs[1].text == "Beta follows alpha."
    assert documents_from_records(records[1:2])[0].id == docs[1].id  # the hash id is stable


def test_refresh_job_needs_exactly_one_source(settings) -> None:
    with pytest.raises(InputError, match="exactly one source"):
        refresh_job({"kb": KB}, Ctx())
    with pytest.raises(InputError, match="exactly one source"):
        refresh_job({"kb": KB, "path": "x.jsonl", "dataset": "d"}, Ctx())
    with pytest.raises(InputError, match="which version"):
        refresh_job({"kb": KB, "dataset": "hotpot"}, Ctx())


@pytest.mark.slow
def test_refresh_job_from_a_file_and_from_a_dataset_version(settings, embedder, wiki_rows, shared_data, tmp_path):
    from engine.evaluation.hotpotqa import load_hotpotqa
    from engine.qa.versions import DatasetStore

    path = tmp_path / "wiki.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in wiki_rows[:8]), encoding="utf-8")
    ctx = Ctx()
    result = refresh_job({"kb": KB, "path": str(path)}, ctx)
    assert result["new_documents"] == 8 and result["chunks_embedded"] >= 8
    assert ctx.progress_calls[-1][0] == pytest.approx(0.99) and "8 new" in ctx.lines[-1]
    again = refresh_job({"kb": KB, "path": str(path)}, Ctx())
    assert again["unchanged_documents"] == 8 and again["chunks_embedded"] == 0

    items = load_hotpotqa(shared_data / "hotpotqa-dev.jsonl", limit=3)
    records = [QARecord(it.question, it.answer, tuple(Context(t, x, t) for t, x in it.paragraphs)) for it in items]
    version = DatasetStore(settings).save("hotpot-mini", records).id
    result = refresh_job({"kb": "hotpot-kb", "dataset": "hotpot-mini", "version": version}, Ctx())
    titles = {t for it in items for t, _ in it.paragraphs}
    assert result["new_documents"] == len(titles)
    store = KnowledgeBaseStore(settings, embedder)
    assert doc_ids(store, "hotpot-kb") == titles


@pytest.mark.slow
def test_the_ingest_job_adds_or_with_mirror_keeps_the_knowledge_base_in_step_with_its_file(
    settings, embedder, wiki_rows, tmp_path
):
    from engine.data.knowledge import IngestRun, fill_job

    path = tmp_path / "notes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in wiki_rows[:8]), encoding="utf-8")
    store = KnowledgeBaseStore(settings, embedder)
    added = fill_job(IngestRun(KB, path=str(path)).args(), Ctx())
    assert added["documents"] == 8 and added["added"] == store.count(KB) > 0
    ids = doc_ids(store)

    path.write_text("".join(json.dumps(r) + "\n" for r in wiki_rows[:5]), encoding="utf-8")
    again = fill_job(IngestRun(KB, path=str(path)).args(), Ctx())
    assert again["added"] == 0 and doc_ids(store) == ids  # an ingest adds: three documents left the file, not the KB

    mirrored = fill_job(IngestRun(KB, path=str(path), mirror=True).args(), Ctx())
    assert (mirrored["removed_documents"], mirrored["unchanged_documents"] + mirrored["changed_documents"]) == (3, 5)
    assert len(doc_ids(store)) == 5 < len(ids)
    same = fill_job(IngestRun(KB, path=str(path), mirror=True).args(), Ctx())
    assert (same["unchanged_documents"], same["chunks_embedded"], same["chunks_deleted"]) == (5, 0, 0)
