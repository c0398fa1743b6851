"""Knowledge bases in real Chroma on a temp dir, embedded with the real MiniLM model."""

from __future__ import annotations

import re
import subprocess
import sys
from itertools import islice
from pathlib import Path

import pytest

from engine.errors import InputError, NotFoundError
from engine.rag.chunking import Chunk, chunk_documents
from engine.rag.documents import Document, load_documents
from engine.rag.store import KnowledgeBaseInfo, KnowledgeBaseStore, check_name, chunk_metadata
from engine.settings import Settings

KB = "wiki-60"


def first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]


@pytest.fixture(scope="module")
def wiki_docs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Document]:
    path = tmp_path_factory.mktemp("wiki") / "wiki-60.jsonl"
    with (shared_data / "wiki-passages.jsonl").open(encoding="utf-8") as f:
        path.write_text("".join(islice(f, 60)), encoding="utf-8")
    docs = load_documents(path)
    assert len(docs) == 60
    return docs


@pytest.fixture(scope="module")
def wiki_chunks(wiki_docs) -> list[Chunk]:
    return chunk_documents(wiki_docs)


@pytest.fixture(scope="module")
def filled(tmp_path_factory, session_settings, embedder, wiki_chunks):
    """One store with the 60 passages, shared by the tests that only read it."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("kb"), shared_data_dir=session_settings.shared_data_dir)
    store = KnowledgeBaseStore(settings, embedder)
    added = store.add(KB, wiki_chunks)
    return store, added


def test_add_returns_the_number_added_and_count_matches(filled, wiki_chunks) -> None:
    store, added = filled
    assert len(wiki_chunks) >= 60
    assert added == len(wiki_chunks)
    assert store.count(KB) == len(wiki_chunks)
    assert KB in store.names()


def test_adding_again_adds_nothing(filled, wiki_chunks) -> None:
    store, _ = filled
    assert store.add(KB, wiki_chunks) == 0
    assert store.add(KB, wiki_chunks[:5]) == 0
    assert store.count(KB) == len(wiki_chunks)


def test_query_with_a_first_sentence_finds_its_passage(filled, wiki_docs) -> None:
    store, _ = filled
    picked = [wiki_docs[i] for i in (0, 7, 23, 41, 59)]
    results = store.query(KB, [first_sentence(d.text) for d in picked], k=5)
    assert len(results) == len(picked)  # one list per query, in query order
    for doc, hits in zip(picked, results, strict=True):
        assert len(hits) == 5
        top = hits[0]
        assert top.title == doc.title
        assert top.score > 0.5
        assert top.metadata["doc_id"] == doc.id and top.source == "wiki-60.jsonl"
        assert top.text in " ".join(doc.text.split())  # the chunk's text is the passage's
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        assert all(-1.0 <= s <= 1.0 + 1e-6 for s in scores)
        assert len({h.id for h in hits}) == 5


def test_k_larger_than_the_kb_returns_every_chunk(tmp_path, session_settings, embedder, wiki_chunks) -> None:
    store = KnowledgeBaseStore(Settings(data_dir=tmp_path, shared_data_dir=session_settings.shared_data_dir), embedder)
    assert store.add("tiny", wiki_chunks[:3]) == 3
    (hits,) = store.query("tiny", ["a rifle cartridge"], k=50)
    assert sorted(h.id for h in hits) == sorted(c.id for c in wiki_chunks[:3])


def test_list_reports_chunks_and_documents(filled, wiki_chunks) -> None:
    store, _ = filled
    infos = {i.name: i for i in store.list()}
    assert infos[KB] == KnowledgeBaseInfo(KB, len(wiki_chunks), 60)


def test_query_on_an_empty_kb_is_an_input_error(store) -> None:
    assert store.add("empty-kb", []) == 0
    assert store.count("empty-kb") == 0
    assert store.list() == [KnowledgeBaseInfo("empty-kb", 0, 0)]
    with pytest.raises(InputError, match="is empty"):
        store.query("empty-kb", ["anything"])


def test_unknown_kb_is_not_found(store) -> None:
    with pytest.raises(NotFoundError, match="'nope' does not exist"):
        store.query("nope", ["anything"])
    with pytest.raises(NotFoundError):
        store.count("nope")
    with pytest.raises(NotFoundError):
        store.delete("nope")
    with pytest.raises(NotFoundError):
        store.remove_except("nope", set())
    assert store.names() == []  # looking did not create it


@pytest.mark.parametrize(
    "name", ["a", "ab", "../x", "bad name", "", "   ", "-abc", "abc-", "x" * 65, "a/b/c", "a..b", "192.168.1.1", "été"]
)
def test_invalid_names_are_input_errors(store, name: str) -> None:
    with pytest.raises(InputError, match="Invalid knowledge base name"):
        check_name(name)
    with pytest.raises(InputError):
        store.add(name, [])
    with pytest.raises(InputError):
        store.query(name, ["q"])
    assert store.names() == []


@pytest.mark.parametrize("name", ["abc", "a.b_c-1", "x" * 63, "hotpotqa-wiki", "Studio-Docs2"])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name
    assert check_name(f"  {name} ") == name


def test_remove_except_deletes_exactly_the_others(store, wiki_chunks) -> None:
    chunks = wiki_chunks[:8]
    assert store.add("subset", chunks) == 8
    keep = {c.id for c in chunks[:3]}
    assert store.remove_except("subset", keep | {"not-stored-id"}) == 5
    assert store.count("subset") == 3
    remaining = set(store.collection("subset").get(include=[])["ids"])
    assert remaining == keep
    assert store.remove_except("subset", keep) == 0
    # removed chunks are not retrieved any more
    hits = store.query("subset", [first_sentence(chunks[5].text)], k=10)[0]
    assert {h.id for h in hits} == keep


def test_add_deduplicates_and_reports_progress(store, wiki_chunks) -> None:
    calls: list[tuple[int, int]] = []
    chunks = wiki_chunks[:4]
    assert store.add("dups", chunks + chunks, on_progress=lambda d, t: calls.append((d, t))) == 4
    assert store.count("dups") == 4
    assert calls == [(4, 4)]


def test_delete_removes_the_kb(store, wiki_chunks) -> None:
    store.add("doomed", wiki_chunks[:2])
    store.add("kept", wiki_chunks[2:4])
    store.delete("doomed")
    assert store.names() == ["kept"]
    with pytest.raises(NotFoundError):
        store.count("doomed")
    assert store.count("kept") == 2


def test_data_persists_for_a_new_store(settings, embedder, wiki_chunks) -> None:
    first = KnowledgeBaseStore(settings, embedder)
    assert first.add("persisted", wiki_chunks[:6]) == 6
    assert (settings.chroma_dir / "chroma.sqlite3").is_file()
    # another process (the app after a restart) reads the same data from disk
    script = (
        "import sys, chromadb; from chromadb.config import Settings as S; "
        "c = chromadb.PersistentClient(path=sys.argv[1], settings=S(anonymized_telemetry=False)); "
        "col = c.get_collection('persisted'); print(col.count(), *sorted(col.get(include=[])['ids']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(settings.chroma_dir)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["6", *sorted(c.id for c in wiki_chunks[:6])]
    # and a second store in this process sees it too, without adding again
    second = KnowledgeBaseStore(settings, embedder)
    assert second.count("persisted") == 6
    assert second.add("persisted", wiki_chunks[:6]) == 0
    (hits,) = second.query("persisted", [first_sentence(wiki_chunks[2].text)], k=1)
    assert hits[0].id == wiki_chunks[2].id


def test_chunk_metadata_keeps_scalars_only() -> None:
    chunk = Chunk("id1", "doc-1", "Title", "text", "file.jsonl", 3, {"year": 1999, "tags": ["x"], "ok": True})
    meta = chunk_metadata(chunk)
    assert meta == {
        "year": 1999,
        "ok": True,
        "doc_id": "doc-1",
        "title": "Title",
        "source": "file.jsonl",
        "index": 3,
    }
