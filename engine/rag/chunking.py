"""Splitting documents into overlapping chunks of bounded size, on natural boundaries.

A chunk is a slice of the document's whitespace-normalized text that starts and ends on a word.
It is at most ``spec.size`` characters: the splitter takes as many words as fit, then moves the
end back to the last paragraph end, else line end, else sentence end, as long as the chunk
keeps at least half the size (else it ends on a word). The next chunk starts on the earliest
word such that the shared text is at most ``spec.overlap`` characters, so consecutive chunks
overlap by whole words, and always ends past the previous one. A word longer than
``spec.size`` is cut into pieces of that size (pieces of one word do not overlap).

Chunk ids are content hashes, ``sha256(title + "\\x00" + text)`` (hex, first 32 characters),
so ingesting the same file twice yields the same ids. If an id repeats within one call (the
same text twice in a document, or identical documents), the later chunk's id hashes the
document id and chunk index too, so ids are unique within the call and still reproducible.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.errors import InputError
from engine.rag.documents import Document

_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")


@dataclass(frozen=True)
class ChunkSpec:
    size: int = 800  # characters
    overlap: int = 120  # characters shared by consecutive chunks (whole words, at most this)

    def __post_init__(self) -> None:
        for name in ("size", "overlap"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise InputError(f"Chunk {name} must be a whole number, not {value!r}.")
        if self.size <= 0:
            raise InputError(f"Chunk size must be positive, not {self.size}.")
        if not 0 <= self.overlap < self.size:
            raise InputError(
                f"Chunk overlap must be at least 0 and less than the chunk size ({self.size}), not {self.overlap}."
            )


@dataclass(frozen=True)
class Chunk:
    id: str
    doc_id: str
    title: str
    text: str
    source: str
    index: int  # position of the chunk in its document, from 0
    metadata: dict = field(default_factory=dict)


def normalize_whitespace(text: str) -> str:
    """Runs of spaces and tabs become one space, lines are stripped, blank lines are collapsed
    to one (a paragraph break), and the text is stripped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = (re.sub(r"[^\S\n]+", " ", line).strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _word_spans(text: str, size: int) -> list[tuple[int, int]]:
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    if all(e - s <= size for s, e in spans):
        return spans
    return [(p, min(p + size, e)) for s, e in spans for p in range(s, e, size)]


def _boundary_strength(text: str, spans: list[tuple[int, int]], k: int) -> int:
    """How good a place to end a chunk the end of word ``k`` is: 4 paragraph, 3 line, 2 sentence,
    1 word, 0 inside a hard-split word."""
    if k + 1 == len(spans):
        return 4
    gap = text[spans[k][1] : spans[k + 1][0]]
    if not gap:
        return 0
    if "\n\n" in gap:
        return 4
    if "\n" in gap:
        return 3
    return 2 if _SENTENCE_END.search(text[spans[k][0] : spans[k][1]]) else 1


def _split(text: str, spec: ChunkSpec) -> list[tuple[int, int]]:
    """The (start, end) offsets in ``text`` of its chunks."""
    spans = _word_spans(text, spec.size)
    if not spans:
        return []
    starts = [s for s, _ in spans]
    ends = [e for _, e in spans]
    pieces = []
    i, done = 0, -1  # the first word of the next chunk; the last word of the previous one
    while done + 1 < len(spans):
        last = bisect_right(ends, starts[i] + spec.size) - 1  # the furthest word that still fits
        if last <= done:  # the overlap leaves no room for the next word: shorten the overlap
            i = min(bisect_left(starts, ends[done + 1] - spec.size), done + 1)
            last = bisect_right(ends, starts[i] + spec.size) - 1
        end_word = last
        if last + 1 < len(spans):
            best = -1
            for k in range(last, done, -1):
                if k < last and ends[k] - starts[i] < spec.size // 2:
                    break
                strength = _boundary_strength(text, spans, k)
                if strength > best:
                    best, end_word = strength, k
        pieces.append((starts[i], ends[end_word]))
        done = end_word
        nxt = bisect_left(starts, ends[done] - spec.overlap) if spec.overlap else done + 1
        i = min(max(nxt, i + 1), done + 1)
    return pieces


def _chunk_id(title: str, text: str, doc_id: str, index: int, seen: set[str]) -> str:
    cid = hashlib.sha256(f"{title}\x00{text}".encode()).hexdigest()[:32]
    salt = 0
    while cid in seen:
        extra = f"\x00{doc_id}\x00{index}" + (f"\x00{salt}" if salt else "")
        cid = hashlib.sha256(f"{title}\x00{text}{extra}".encode()).hexdigest()[:32]
        salt += 1
    seen.add(cid)
    return cid


def _chunks(doc: Document, spec: ChunkSpec, seen: set[str]) -> list[Chunk]:
    text = normalize_whitespace(doc.text)
    return [
        Chunk(
            id=_chunk_id(doc.title, piece, doc.id, index, seen),
            doc_id=doc.id,
            title=doc.title,
            text=piece,
            source=doc.source,
            index=index,
            metadata=dict(doc.metadata),
        )
        for index, piece in enumerate(text[s:e] for s, e in _split(text, spec))
    ]


def chunk_document(doc: Document, spec: ChunkSpec | None = None) -> list[Chunk]:
    """The chunks of one document (none if its text is blank)."""
    return _chunks(doc, spec or ChunkSpec(), set())


def chunk_documents(docs: Iterable[Document], spec: ChunkSpec | None = None) -> list[Chunk]:
    """The chunks of all documents, in order; ids are unique across the whole call."""
    spec = spec or ChunkSpec()
    seen: set[str] = set()
    return [chunk for doc in docs for chunk in _chunks(doc, spec, seen)]
