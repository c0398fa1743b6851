"""Splitting documents into overlapping chunks of bounded size, on natural boundaries.

A chunk is a slice of the document's whitespace-normalized text that starts and ends on a word.
It is at most ``spec.size`` characters: the splitter takes as many words as fit, then moves the
end back to the last paragraph end, else line end, else sentence end, as long as the chunk
keeps at least half the size (else it ends on a word). The next chunk starts on the earliest
word such that the shared text is at most ``spec.overlap`` characters, so consecutive chunks
overlap by whole words, and always ends past the previous one. A word longer than
``spec.size`` is cut into pieces of that size (pieces of one word do not overlap).

Chunking streams: the text is normalized and split as it is read, in pieces, holding about two
chunks of text beyond the current chunk's start; the chunks are exactly those of the whole text
at once, wherever the pieces are cut. So a 200 MB file is chunked in a few hundred kilobytes.

Chunk ids are content hashes, ``sha256(title + "\\x00" + text)`` (hex, first 32 characters),
so ingesting the same file twice yields the same ids. If an id repeats within one call (the
same text twice in a document, or identical documents), the later chunk's id hashes the
document id and chunk index too, so ids are unique within the call and still reproducible.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from engine.errors import InputError
from engine.knobs import knob
from engine.rag.documents import Document, StreamedDocument

_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")
_SPACES = re.compile(r"[^\S\n]+")
_LINE_END = re.compile(r" ?\n ?")
_BLANK_LINES = re.compile(r"\n{3,}")
READ_CHARS = 1 << 16  # characters of normalized text the splitter takes in at a time


@dataclass(frozen=True)
class ChunkSpec:
    size: int = knob(800, "characters per chunk", min=1, label="Chunk size")
    overlap: int = knob(120, "characters shared by consecutive chunks (whole words, at most this)", min=0)

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


def _compact(blank: str) -> str:
    """A run of whitespace shortened to what decides its normal form: none, one or two line breaks (or a
    space), and a last carriage return, which may pair with a line feed in the next piece."""
    cr = blank.endswith("\r")
    core = (blank[:-1] if cr else blank).replace("\r\n", "\n").replace("\r", "\n")
    lines = min(core.count("\n"), 2)
    return ("\n" * lines if lines else " " if core else "") + ("\r" if cr else "")


def normalize_pieces(pieces: Iterable[str]) -> Iterator[str]:
    """:func:`normalize_whitespace` of text given in pieces, in pieces: what it yields, joined, is the
    normal form of the pieces joined, wherever they were cut."""
    carry, started = "", False  # the whitespace at the end so far: what it becomes depends on what follows
    for piece in pieces:
        text = carry + piece
        body = text.rstrip()
        carry = _compact(text[len(body) :])
        if not body:
            continue
        body = body.replace("\r\n", "\n").replace("\r", "\n")
        if not started:
            body, started = body.lstrip(), True
        yield _BLANK_LINES.sub("\n\n", _LINE_END.sub("\n", _SPACES.sub(" ", body)))


def _slices(text: str) -> Iterator[str]:
    return (text[p : p + READ_CHARS] for p in range(0, len(text), READ_CHARS))


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


def split_text(pieces: Iterable[str], spec: ChunkSpec) -> Iterator[str]:
    """The chunk texts of normalized text given in pieces (cut anywhere), read as they are needed.

    A chunk starting at offset s looks at words up to s + size, the gap after the last of them (at most
    two characters in normalized text) and, when the overlap leaves no room, the next word (at most size
    long); so text up to s + 2 * size + 8 decides it, whatever follows, and text before s is never looked
    at again. The buffer holds that much plus one read.
    """
    size, ahead = spec.size, 2 * spec.size + 8
    source, more = iter(pieces), True
    buf, spans, starts, ends = "", [], [], []
    i, done = 0, -1  # the first word of the next chunk; the last word of the previous one
    while True:
        begin = starts[i] if i < len(starts) else len(buf)
        if more and len(buf) - begin < ahead:
            parts, have = [buf[begin:]], len(buf) - begin
            while have < ahead + READ_CHARS:
                piece = next(source, None)
                if piece is None:
                    more = False
                    break
                parts.append(piece)
                have += len(piece)
            buf, i, done = "".join(parts), 0, done - i
            spans = _word_spans(buf, size)
            starts, ends = [s for s, _ in spans], [e for _, e in spans]
            continue
        if done + 1 >= len(spans):
            return
        last = bisect_right(ends, starts[i] + size) - 1  # the furthest word that still fits
        if last <= done:  # the overlap leaves no room for the next word: shorten the overlap
            i = min(bisect_left(starts, ends[done + 1] - size), done + 1)
            last = bisect_right(ends, starts[i] + size) - 1
        end_word = last
        if last + 1 < len(spans):
            best = -1
            for k in range(last, done, -1):
                if k < last and ends[k] - starts[i] < size // 2:
                    break
                strength = _boundary_strength(buf, spans, k)
                if strength > best:
                    best, end_word = strength, k
        yield buf[starts[i] : ends[end_word]]
        done = end_word
        nxt = bisect_left(starts, ends[done] - spec.overlap) if spec.overlap else done + 1
        i = min(max(nxt, i + 1), done + 1)


def _chunk_id(title: str, text: str, doc_id: str, index: int, seen: set[str]) -> str:
    cid = hashlib.sha256(f"{title}\x00{text}".encode()).hexdigest()[:32]
    salt = 0
    while cid in seen:
        extra = f"\x00{doc_id}\x00{index}" + (f"\x00{salt}" if salt else "")
        cid = hashlib.sha256(f"{title}\x00{text}{extra}".encode()).hexdigest()[:32]
        salt += 1
    seen.add(cid)
    return cid


def normalized_pieces(doc: Document | StreamedDocument) -> Iterator[str]:
    """A document's normalized text in pieces: a streamed one read as it goes, an in-memory one sliced."""
    if isinstance(doc, StreamedDocument):
        return normalize_pieces(doc.read())
    return _slices(normalize_whitespace(doc.text))


def iter_chunks(
    docs: Iterable[Document | StreamedDocument], spec: ChunkSpec | None = None, seen: set[str] | None = None
) -> Iterator[Chunk]:
    """The chunks of the documents, in order, made as they are consumed; ids are unique across the call
    (``seen`` holds the ids so far: pass one set to continue a call)."""
    spec, seen = spec or ChunkSpec(), set() if seen is None else seen
    for doc in docs:
        for index, piece in enumerate(split_text(normalized_pieces(doc), spec)):
            yield Chunk(
                id=_chunk_id(doc.title, piece, doc.id, index, seen),
                doc_id=doc.id,
                title=doc.title,
                text=piece,
                source=doc.source,
                index=index,
                metadata=dict(doc.metadata),
            )


def chunk_document(doc: Document | StreamedDocument, spec: ChunkSpec | None = None) -> list[Chunk]:
    """The chunks of one document (none if its text is blank)."""
    return list(iter_chunks([doc], spec))


def chunk_documents(docs: Iterable[Document | StreamedDocument], spec: ChunkSpec | None = None) -> list[Chunk]:
    """The chunks of all documents, in order; ids are unique across the whole call."""
    return list(iter_chunks(docs, spec))
