"""Reading files of any size as documents, in pieces: text, Markdown, JSONL and PDF.

:func:`scan_path` reads a file or a folder once, without keeping its text: it checks every file
(UTF-8, JSONL lines, a PDF's text), counts documents and characters for the estimate, and lists
the bad files and the links it skipped (see :mod:`engine.rag.folders`). :func:`read_documents`
then yields the documents of the good files: a JSONL record as a :class:`Document`, a text,
Markdown or PDF file as a :class:`StreamedDocument` whose text is read again, block by block,
when it is chunked. Ids, titles, texts and metadata are those :func:`load_documents` gives.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InputError
from engine.rag.documents import (
    TEXT_FIELDS,
    bad_lines_message,
    file_lines,
    first_heading,
    jsonl_rows,
    record_document,
    text_check,
)
from engine.rag.folders import is_inside

READ_BYTES = 1 << 20  # a text file is decoded a megabyte at a time
SAMPLE_CHARS = 1 << 18  # text kept from the first documents to estimate how many chunks the rest give
KINDS = {".jsonl": "jsonl", ".txt": "text", ".md": "markdown", ".markdown": "markdown", ".pdf": "pdf"}


@dataclass(frozen=True)
class SourceFile:
    """One good file: what it holds, measured by the scan."""

    name: str  # the path relative to the scanned folder, or the file's name
    path: Path
    kind: str  # jsonl, text, markdown or pdf
    documents: int
    chars: int  # characters of text (a PDF's: estimated from the pages read)
    title: str = ""  # a text, Markdown or PDF file's document title
    pages: int = 0
    excess: int = 0  # the characters of its documents beyond one chunk (see engine.rag.estimate)
    sample: tuple[str, ...] = ()  # texts of its first documents, for the estimate


@dataclass(frozen=True)
class Scan:
    """A checked file or folder: the good files, in reading order, and what is left out."""

    path: Path
    files: tuple[SourceFile, ...]
    problems: tuple[str, ...] = ()  # one per bad file
    links: tuple[str, ...] = ()  # links skipped
    root: Path | None = None  # the folder the files must stay in (None for one file)
    key: dict = field(default_factory=dict)

    @property
    def documents(self) -> int:
        return sum(f.documents for f in self.files)

    @property
    def skipped(self) -> tuple[str, ...]:
        """Everything left out: the bad files, then the links."""
        return self.problems + self.links


def _open(path: Path, root: Path | None, name: str):
    # Checked again when read: a file swapped for a link out of the folder after the scan is not followed.
    if root is not None and not is_inside(path, root):
        raise InputError(f"{name} now leads outside the folder: it was not read.")
    try:
        return open(os.path.realpath(path), "rb")
    except OSError as e:
        raise InputError(f"{name} cannot be read ({e.strerror}).") from None


def text_pieces(path: Path, name: str, root: Path | None = None) -> Iterator[str]:
    """The text of a UTF-8 file, a block at a time (a leading BOM dropped); a byte that is not UTF-8 is an
    InputError naming its position."""
    decoder, offset = codecs.getincrementaldecoder("utf-8")(), 0
    with _open(path, root, name) as f:
        while block := f.read(READ_BYTES):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as e:  # e.start counts from the bytes the decoder still held
                held = len(decoder.getstate()[0])
                raise InputError(f"{name} is not UTF-8 text (byte {offset - held + e.start + 1}).") from None
            text = text if offset else text.removeprefix("\ufeff")
            offset += len(block)
            if text:
                yield text
        try:
            tail = decoder.decode(b"", final=True)
        except UnicodeDecodeError as e:
            raise InputError(f"{name} is not UTF-8 text (byte {offset - e.end + e.start + 1}).") from None
        if tail:
            yield tail


def _lines(pieces: Iterator[str]) -> Iterator[str]:
    """The lines of text given in pieces, as ``text.strip()`` with its line breaks normalized would split."""
    carry, started = "", False
    for piece in pieces:
        text = carry + piece
        if not started:
            text = text.lstrip()
            started = bool(text)
        cr = text.endswith("\r")  # it may pair with a "\n" at the start of the next piece
        lines = text[: -1 if cr else None].replace("\r\n", "\n").replace("\r", "\n").splitlines(keepends=True)
        carry = lines.pop() if lines and lines[-1].splitlines()[0] == lines[-1] else ""
        carry += "\r" if cr else ""
        yield from (line[:-1] for line in lines)  # every line break is one character here
    yield from carry.replace("\r\n", "\n").replace("\r", "\n").splitlines()


def _pdf_reader(handle, name: str):
    from pypdf import PdfReader

    try:
        reader = PdfReader(handle)
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputError(f"{name} is an encrypted PDF; remove the password and try again.")
        return reader, len(reader.pages)
    except InputError:
        raise
    except Exception as e:  # pypdf raises many kinds of errors on a damaged file
        raise InputError(f"{name} is not a readable PDF ({e}).") from None


def pdf_pieces(path: Path, name: str, root: Path | None = None) -> Iterator[str]:
    """A PDF's text a page at a time: the pages' stripped texts, blank pages left out, between blank lines."""
    with _open(path, root, name) as handle:
        reader, _ = _pdf_reader(handle, name)
        first = True
        for page in reader.pages:
            try:
                text = (page.extract_text() or "").strip()
            except Exception as e:  # noqa: BLE001 - a damaged page: pypdf raises many kinds
                raise InputError(f"{name} is not a readable PDF ({e}).") from None
            if text:
                yield text if first else "\n\n" + text
                first = False


class _Sampler:
    """Counts characters of the pieces passing through, and keeps the first ones as a sample."""

    def __init__(self, pieces: Iterator[str]):
        self.pieces, self.chars, self.kept = pieces, 0, []

    def __iter__(self) -> Iterator[str]:
        for piece in self.pieces:
            if self.chars < SAMPLE_CHARS:
                self.kept.append(piece[: SAMPLE_CHARS - self.chars])
            self.chars += len(piece)
            yield piece


def _scan_file(name: str, path: Path, root: Path | None, size: int) -> SourceFile:
    kind = KINDS[Path(name).suffix.lower()]
    if not os.path.getsize(path):
        raise InputError(f"{name} is empty.")
    if kind == "jsonl":
        docs = chars = excess = 0
        bad: list[str] = []
        sample: list[str] = []
        for _, record, problem in jsonl_rows(file_lines(path, name), (TEXT_FIELDS,), text_check):
            if problem:
                bad.append(problem) if len(bad) < 10 else None
                docs -= 1 << 40  # counted apart below
                continue
            text = record_document(record, name).text
            docs, chars, excess = docs + 1, chars + len(text), excess + max(0, len(text) - size)
            if sum(map(len, sample)) < SAMPLE_CHARS:
                sample.append(text)
        if docs < 0:  # each bad line took 2**40 off the count
            count = (-docs + (1 << 40) - 1) >> 40
            raise InputError(bad_lines_message(name, bad, count))
        if not docs:
            raise InputError(f"{name} is empty (no JSON records).")
        return SourceFile(name, path, kind, docs, chars, excess=excess, sample=tuple(sample))
    if kind == "pdf":
        sampler = _Sampler(pdf_pieces(path, name, root))
        with _open(path, root, name) as handle:
            _, pages = _pdf_reader(handle, name)
        for _ in sampler:  # pages are slow to read: a sample of text sizes the whole for the estimate
            if sampler.chars >= SAMPLE_CHARS:
                break
        sampler.pieces.close()
        if not sampler.chars:
            raise InputError(f"{name} has no extractable text (it may be a scanned image; run OCR on it first).")
        read = max(1, len("".join(sampler.kept)) and pages)
        chars = sampler.chars if sampler.chars < SAMPLE_CHARS else sampler.chars * pages // read
        return SourceFile(
            name, path, kind, 1, chars, Path(name).stem, pages, max(0, chars - size), ("".join(sampler.kept),)
        )
    sampler = _Sampler(text_pieces(path, name, root))
    title = first_heading(_lines(iter(sampler))) if kind == "markdown" else None
    for _ in sampler:  # the rest is read too: every byte is checked before anything is stored
        pass
    if not "".join(sampler.kept).strip() and not sampler.chars:
        raise InputError(f"{name} is empty.")
    text = "".join(sampler.kept)
    return SourceFile(
        name, path, kind, 1, sampler.chars, title or Path(name).stem, 0, max(0, sampler.chars - size), (text,)
    )
