"""Chunking real passages: bounded sizes, real overlap, full coverage, stable unique ids."""

from __future__ import annotations

import json
from itertools import islice

import pytest

from engine.errors import InputError
from engine.rag.chunking import Chunk, ChunkSpec, chunk_document, chunk_documents, normalize_whitespace
from engine.rag.documents import Document
from engine.settings import load_settings

SHARED = load_settings().shared_data_dir


def _records(name: str, n: int) -> list[dict]:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"shared data not found at {path} (set STUDIO_SHARED_DATA)")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in islice(f, n)]


@pytest.fixture(scope="module")
def long_doc() -> Document:
    """About 40 real Wikipedia paragraphs as one document, paragraphs separated by blank lines."""
    passages = _records("wiki-passages.jsonl", 40)
    text = "\n\n".join(p["text"] for p in passages)
    return Document(id="wiki-40", title="Forty passages", text=text, source="wiki.jsonl")


def _overlap_words(prev: list[str], nxt: list[str]) -> int:
    """The length of the longest suffix of ``prev`` that is a prefix of ``nxt``."""
    for k in range(min(len(prev), len(nxt)), 0, -1):
        if prev[-k:] == nxt[:k]:
            return k
    return 0


def _merge(chunks: list[Chunk]) -> list[str]:
    merged: list[str] = []
    for i, chunk in enumerate(chunks):
        words = chunk.text.split()
        k = _overlap_words(chunks[i - 1].text.split(), words) if i else 0
        merged.extend(words[k:])
    return merged


@pytest.mark.parametrize("size,overlap", [(800, 120), (300, 60), (200, 0), (120, 100)])
def test_chunks_are_bounded_overlap_and_cover_the_text(long_doc: Document, size: int, overlap: int) -> None:
    spec = ChunkSpec(size=size, overlap=overlap)
    chunks = chunk_document(long_doc, spec)

    assert len(chunks) > len(long_doc.text) // size
    assert all(0 < len(c.text) <= size for c in chunks)
    assert all(c.text == c.text.strip() for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all((c.doc_id, c.title, c.source) == ("wiki-40", "Forty passages", "wiki.jsonl") for c in chunks)
    # every chunk is a piece of the (normalized) text, and together they give back all of it
    normalized = normalize_whitespace(long_doc.text)
    assert all(c.text in normalized for c in chunks)
    if overlap:
        assert _merge(chunks) == long_doc.text.split()
    else:
        assert [w for c in chunks for w in c.text.split()] == long_doc.text.split()
    # consecutive chunks share whole words: about `overlap` characters, never more
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        k = _overlap_words(prev.text.split(), nxt.text.split())
        shared = " ".join(nxt.text.split()[:k])
        assert len(shared) <= overlap
        if overlap:
            assert k > 0 and len(shared) >= overlap // 3, (prev.text[-overlap:], nxt.text[:overlap])


def test_chunks_end_on_paragraph_or_sentence_boundaries(long_doc: Document) -> None:
    chunks = chunk_document(long_doc, ChunkSpec(size=500, overlap=80))
    ends = [c.text.rstrip("\"')”’]") for c in chunks]
    on_sentence = sum(e.endswith((".", "!", "?")) for e in ends)
    assert on_sentence >= 0.9 * len(chunks)

    text = " ".join(f"Sentence number {i} is right here." for i in range(100))
    chunks = chunk_document(Document("s", "S", text, "s.txt"), ChunkSpec(size=200, overlap=40))
    assert all(c.text.endswith(".") for c in chunks)


def test_paragraphs_that_fit_are_kept_whole() -> None:
    paragraphs = [f"Paragraph {i}. " + " ".join(["word"] * 40) + "." for i in range(6)]
    doc = Document("p", "P", "\n\n".join(paragraphs), "p.md")
    chunks = chunk_document(doc, ChunkSpec(size=500, overlap=0))
    assert [c.text for c in chunks] == ["\n\n".join(paragraphs[i : i + 2]) for i in range(0, 6, 2)]


def test_ids_are_stable_unique_content_hashes(long_doc: Document) -> None:
    spec = ChunkSpec(size=300, overlap=50)
    first = chunk_document(long_doc, spec)
    second = chunk_document(long_doc, spec)
    assert [c.id for c in first] == [c.id for c in second]
    assert len({c.id for c in first}) == len(first)
    assert all(len(c.id) == 32 and int(c.id, 16) >= 0 for c in first)

    import hashlib

    expected = hashlib.sha256(f"{long_doc.title}\x00{first[0].text}".encode()).hexdigest()[:32]
    assert first[0].id == expected


def test_repeated_text_gets_unique_ids_within_a_call() -> None:
    doc = Document("r", "Repeat", "Same paragraph here.\n\nSame paragraph here.", "r.txt")
    chunks = chunk_document(doc, ChunkSpec(size=25, overlap=0))
    assert [c.text for c in chunks] == ["Same paragraph here."] * 2
    assert len({c.id for c in chunks}) == 2
    assert [c.id for c in chunk_document(doc, ChunkSpec(size=25, overlap=0))] == [c.id for c in chunks]

    twins = chunk_documents([doc, Document("r2", "Repeat", doc.text, "r2.txt")], ChunkSpec(25, 0))
    assert len({c.id for c in twins}) == 4


def test_chunk_documents_on_real_dolly_contexts() -> None:
    records = [r for r in _records("dolly-15k-mini.jsonl", 400) if r["context"]]
    docs = [
        Document(f"d{i}", r["instruction"], r["context"], "dolly", {"category": r["category"]})
        for i, r in enumerate(records)
    ]
    spec = ChunkSpec(size=400, overlap=60)
    chunks = chunk_documents(docs, spec)

    assert {c.doc_id for c in chunks} == {d.id for d in docs}
    assert all(0 < len(c.text) <= 400 for c in chunks)
    assert len({c.id for c in chunks}) == len(chunks)
    for doc in docs:
        mine = [c for c in chunks if c.doc_id == doc.id]
        assert _merge(mine) == doc.text.split()
        assert all(c.metadata == doc.metadata for c in mine)
        if len(normalize_whitespace(doc.text)) <= 400:
            assert len(mine) == 1


def test_short_text_is_one_chunk_and_blank_text_none() -> None:
    doc = Document("x", "X", "  A short   text,\twith  odd spacing.  ", "x.txt", {"k": 1})
    [chunk] = chunk_document(doc)
    assert chunk.text == "A short text, with odd spacing."
    assert (chunk.index, chunk.metadata) == (0, {"k": 1})
    assert chunk_document(Document("e", "E", " \n\n \t", "e.txt")) == []


def test_word_longer_than_size_is_hard_split() -> None:
    doc = Document("w", "W", "start " + "x" * 250 + " end", "w.txt")
    chunks = chunk_document(doc, ChunkSpec(size=100, overlap=20))
    assert all(0 < len(c.text) <= 100 for c in chunks)
    assert "".join(c.text for c in chunks).count("x") >= 250
    assert chunks[0].text.startswith("start") and chunks[-1].text.endswith("end")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 0},
        {"size": -5},
        {"size": 100, "overlap": 100},
        {"size": 100, "overlap": -1},
        {"size": 10.5},
        {"overlap": True},
    ],
)
def test_bad_chunk_spec_is_an_input_error(kwargs: dict) -> None:
    with pytest.raises(InputError, match="Chunk"):
        ChunkSpec(**kwargs)


def test_default_spec() -> None:
    assert ChunkSpec() == ChunkSpec(size=800, overlap=120)
