"""Ingestion into real Chroma knowledge bases: files, uploads, the Studio's own docs, HF datasets."""

from __future__ import annotations

import json
import time
from itertools import islice
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.rag.chunking import ChunkSpec, chunk_documents
from engine.rag.documents import Document, load_documents
from engine.rag.ingest import (
    DOCS_KB,
    IngestReport,
    ensure_docs_kb,
    ingest_documents,
    ingest_path,
    ingest_upload,
    load_hf_documents,
    studio_documents,
)
from engine.rag.refresh import refresh_kb
from engine.settings import ROOT


@pytest.fixture(scope="module")
def wiki_lines(shared_data: Path) -> list[str]:
    with (shared_data / "wiki-passages.jsonl").open(encoding="utf-8") as f:
        return list(islice(f, 45))


@pytest.fixture
def wiki_40(tmp_path: Path, wiki_lines) -> Path:
    path = tmp_path / "wiki-40.jsonl"
    path.write_text("".join(wiki_lines[:40]), encoding="utf-8")
    return path


def test_ingest_path_then_again_adds_nothing(store, wiki_40: Path) -> None:
    chunks = chunk_documents(load_documents(wiki_40))
    progress: list[tuple[int, int]] = []
    report = ingest_path(store, "wiki", wiki_40, on_progress=lambda d, t: progress.append((d, t)))
    assert report == IngestReport("wiki", documents=40, chunks=len(chunks), added=len(chunks))
    assert report.chunks >= 40 and report.unchanged == 0
    assert store.count("wiki") == len(chunks)
    assert progress and progress[-1] == (len(chunks), len(chunks))

    again = ingest_path(store, "wiki", wiki_40)
    assert (again.documents, again.chunks, again.added, again.unchanged) == (40, len(chunks), 0, len(chunks))
    n = len(chunks)
    expected = {"kb": "wiki", "documents": 40, "chunks": n, "added": 0, "unchanged": n, "skipped": []}
    assert again.as_dict() == expected
    assert store.count("wiki") == len(chunks)


def test_ingest_path_with_a_chunk_spec(store, wiki_40: Path) -> None:
    small = ChunkSpec(size=200, overlap=20)
    report = ingest_path(store, "wiki-small", wiki_40, spec=small)
    assert report.chunks == len(chunk_documents(load_documents(wiki_40), small)) > 40 * 2
    assert store.count("wiki-small") == report.added == report.chunks


def test_ingest_upload_of_bytes(store, wiki_lines) -> None:
    data = "".join(wiki_lines[40:45]).encode()
    report = ingest_upload(store, "uploads", "five.jsonl", data)
    assert (report.documents, report.added) == (5, report.chunks)
    md = b"# Tea notes\n\nOolong is a partly oxidized tea from Fujian and Taiwan.\n"
    report = ingest_upload(store, "uploads", "/some/client/path/tea.md", md)
    assert (report.documents, report.chunks, report.added) == (1, 1, 1)
    (hits,) = store.query("uploads", ["Which tea is partly oxidized?"], k=1)
    assert hits[0].title == "Tea notes" and hits[0].source == "tea.md"
    assert store.count("uploads") == report.added + sum(1 for _ in chunk_documents(_docs(wiki_lines[40:45])))


def _docs(lines: list[str]) -> list[Document]:
    return [Document(r["id"], r["title"], r["text"], "five.jsonl") for r in map(json.loads, lines)]


def test_malformed_upload_names_its_lines_and_loses_nothing(store, wiki_lines) -> None:
    first = ingest_upload(store, "kb-safe", "good.jsonl", "".join(wiki_lines[:3]).encode())
    before = store.count("kb-safe")
    assert before == first.added > 0
    bad = (wiki_lines[3] + "{not json\n" + wiki_lines[4] + '{"title": "no text"}\n').encode()
    with pytest.raises(InputError) as err:
        ingest_upload(store, "kb-safe", "bad.jsonl", bad)
    message = str(err.value)
    assert "bad.jsonl" in message and "line 2" in message and "line 4" in message
    assert "line 1 " not in message and "line 3 " not in message
    assert store.count("kb-safe") == before  # nothing stored is lost, nothing half-added


@pytest.mark.parametrize("kb", ["x", "bad name", "../up"])
def test_invalid_kb_name_is_rejected_before_reading(store, wiki_40: Path, kb: str) -> None:
    with pytest.raises(InputError, match="Invalid knowledge base name"):
        ingest_path(store, kb, wiki_40)
    assert store.names() == []


def test_no_documents_is_an_input_error(store) -> None:
    with pytest.raises(InputError, match="no documents"):
        ingest_documents(store, "nothing", [])
    with pytest.raises(InputError, match="does not exist"):
        ingest_path(store, "nothing", "/no/such/file.jsonl")
    assert store.names() == []


def test_docs_kb_answers_what_the_studio_is_for(store) -> None:
    docs = studio_documents()
    assert {d.source for d in docs} >= {"README.md", "guide.md"}
    report = ensure_docs_kb(store)
    assert report.kb == DOCS_KB and report.documents == len(docs)
    assert report.chunks_embedded == store.count(DOCS_KB) > 0
    (hits,) = store.query(DOCS_KB, ["What is the Studio for?"], k=3)
    assert hits[0].source in ("README.md", "guide.md")
    assert hits[0].score > 0.3
    assert all(h.source in {d.source for d in docs} for h in hits)  # every hit is from our own docs
    assert "Studio" in hits[0].text

    again = ensure_docs_kb(store)
    assert (again.chunks_embedded, again.chunks_deleted, again.unchanged_documents) == (0, 0, len(docs))
    assert store.count(DOCS_KB) == report.chunks_embedded
    assert (ROOT / "README.md").is_file()


def test_a_refresh_drops_chunks_of_documents_that_disappeared_an_ingest_does_not(store, wiki_40: Path) -> None:
    docs = load_documents(wiki_40)[:6]
    full = ingest_documents(store, "mirror", docs)
    kept_chunks = chunk_documents(docs[:4])
    gone = full.chunks - len(kept_chunks)
    assert gone > 0
    # an ingest adds: nothing is deleted
    assert ingest_documents(store, "mirror", docs[:4]).added == 0
    assert store.count("mirror") == full.chunks
    report = refresh_kb(store, "mirror", docs[:4])
    assert (report.chunks_deleted, report.removed_documents, report.documents) == (gone, 2, 4)
    assert store.count("mirror") == len(kept_chunks)
    stored = set(store.collection("mirror").get(include=[])["ids"])
    assert stored == {c.id for c in kept_chunks}


def test_unknown_hf_dataset_offline_is_an_input_error_quickly(offline_hub) -> None:
    start = time.monotonic()
    with pytest.raises(InputError, match="Could not load Hugging Face dataset 'studio-tests/no-such-dataset'"):
        load_hf_documents("studio-tests/no-such-dataset")
    assert time.monotonic() - start < 20
