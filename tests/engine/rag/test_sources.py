"""Streaming sources: a file read in pieces gives exactly the documents and chunks of the whole file, wherever
the pieces are cut; the scan counts, checks and estimates without keeping the text."""

from __future__ import annotations

import json
from itertools import islice

import pytest

from engine.errors import InputError
from engine.rag import chunking, sources
from engine.rag.chunking import ChunkSpec, chunk_documents
from engine.rag.documents import load_documents
from engine.rag.estimate import estimate
from engine.rag.sources import read_documents, scan_path
from tests.engine.rag.test_documents import text_pdf

MESSY = (
    "\ufeff  Title line\r\n\r\n\r\n\tFirst paragraph: caf\u00e9, na\u00efve, \u65e5\u672c\u8a9e text.\r"
    "Second line\u00a0with a no-break space.  \n\n\n\n" + "x" * 950 + " tail words. " * 40 + "\r\n \r\n"
    + "Last words \U0001f600 here.\n\n"
)  # fmt: skip


@pytest.fixture
def tiny_pieces(monkeypatch):
    """Read 7 bytes and chunk 13 characters at a time: every multi-byte character and CRLF is cut somewhere."""
    monkeypatch.setattr(sources, "READ_BYTES", 7)
    monkeypatch.setattr(chunking, "READ_CHARS", 13)


@pytest.mark.parametrize("spec", [ChunkSpec(), ChunkSpec(size=120, overlap=30), ChunkSpec(size=60, overlap=0)])
def test_streamed_text_and_markdown_chunk_as_the_whole_file(tmp_path, tiny_pieces, spec) -> None:
    for name, text in (("messy.txt", MESSY), ("notes.md", "```\n# not a title\n```\n# Real Title\r\n" + MESSY)):
        path = tmp_path / name
        path.write_bytes(text.encode("utf-8"))
        whole = load_documents(path)
        streamed = list(read_documents(scan_path(path)))
        assert [(d.id, d.title, d.source, d.metadata) for d in streamed] == [
            (d.id, d.title, d.source, d.metadata) for d in whole
        ]
        assert chunk_documents(streamed, spec) == chunk_documents(whole, spec)
    assert streamed[0].title == "Real Title"


def test_streamed_jsonl_and_pdf_match_the_whole_file_load(tmp_path, shared_data) -> None:
    lines = list(islice((shared_data / "wiki-passages.jsonl").open(encoding="utf-8"), 30))
    (tmp_path / "wiki.jsonl").write_text("".join(lines), encoding="utf-8")
    (tmp_path / "paper.pdf").write_bytes(text_pdf("Streaming PDF text"))
    whole = load_documents(tmp_path)
    streamed = list(read_documents(scan_path(tmp_path)))
    assert chunk_documents(streamed) == chunk_documents(whole)
    assert [(d.id, d.title, d.metadata) for d in streamed] == [(d.id, d.title, d.metadata) for d in whole]
    assert len(streamed) == 31 and streamed[0].id == "paper.pdf"


def test_a_byte_that_is_not_utf8_is_named_at_its_position_wherever_the_read_cuts(tmp_path, tiny_pieces) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes("caf\u00e9 ok ".encode() * 3 + b"\xff rest")
    with pytest.raises(InputError, match=r"bad\.txt is not UTF-8 text \(byte 28\)"):
        scan_path(path)
    with pytest.raises(InputError, match=r"bad\.txt is not UTF-8 text \(byte 28\)"):
        load_documents(path)


def test_whitespace_only_files_are_empty(tmp_path) -> None:
    (tmp_path / "blank.txt").write_text(" \n\t\r\n" * 1000, encoding="utf-8")
    with pytest.raises(InputError, match="blank.txt is empty"):
        scan_path(tmp_path / "blank.txt")


def test_the_estimate_is_near_the_real_chunk_count(tmp_path, shared_data, embedder) -> None:
    """Chunks from a sample of a large file, and seconds from timing the real embedder on its chunks."""
    passages = [json.loads(x)["text"] for x in islice((shared_data / "wiki-passages.jsonl").open(), 3000)]
    (tmp_path / "big.txt").write_text("\n\n".join(passages), encoding="utf-8")  # past the 256 K sample
    (tmp_path / "small.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in passages[:50]))
    scan = scan_path(tmp_path)
    guess = estimate(scan, ChunkSpec(), embedder)
    real = len(chunk_documents(read_documents(scan)))
    assert abs(guess.chunks - real) <= 0.1 * real
    assert guess.documents == 51 and guess.files == 2 and guess.seconds > 0
    assert f"about {guess.chunks:,} chunks" in guess.summary
