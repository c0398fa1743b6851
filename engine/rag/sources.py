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
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from engine.errors import InputError
from engine.rag.documents import (
    MAX_LISTED_ERRORS,
    TEXT_FIELDS,
    Document,
    StreamedDocument,
    bad_lines_message,
    file_lines,
    first_heading,
    jsonl_rows,
    record_document,
    text_check,
)
from engine.rag.folders import SUPPORTED_SUFFIXES, check_bad_files, check_on_error, is_inside, list_folder
from engine.rag.formats import READERS, Parsed, pdf_pages, pdf_reader

READ_BYTES = 1 << 20  # a text file is decoded a megabyte at a time
SAMPLE_CHARS = 1 << 18  # text kept from the first documents to estimate how many chunks the rest give
KINDS = {
    ".jsonl": "jsonl",
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".pdf": "pdf",
    ".html": "html",
    ".htm": "html",
    ".docx": "docx",
}
WHOLE = ("html", "docx")  # read whole (web pages and Word files are small), as Markdown: engine.rag.formats


@dataclass(frozen=True)
class SourceFile:
    """One good file: what it holds, measured by the scan."""

    name: str  # the path relative to the scanned folder, or the file's name
    path: Path
    kind: str  # jsonl, text, markdown, pdf, html or docx
    documents: int
    chars: int  # characters of text (a PDF's: estimated from the pages read)
    title: str = ""  # a text, Markdown or PDF file's document title
    pages: int = 0
    sample: tuple[str, ...] = ()  # texts of its first documents, for the estimate


@dataclass(frozen=True)
class Scan:
    """A checked file or folder: the good files, in reading order, and what is left out."""

    path: Path
    files: tuple[SourceFile, ...]
    problems: tuple[str, ...] = ()  # one per bad file
    links: tuple[str, ...] = ()  # links skipped
    root: Path | None = None  # the folder the files must stay in (None for one file)

    @property
    def documents(self) -> int:
        return sum(f.documents for f in self.files)

    @property
    def chars(self) -> int:
        return sum(f.chars for f in self.files)

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


def pdf_pieces(path: Path, name: str, root: Path | None = None) -> Iterator[str]:
    """A PDF's text a page at a time: the pages' stripped texts, blank pages left out, between blank lines."""
    with _open(path, root, name) as handle:
        reader, _ = pdf_reader(handle, name)
        for n, text in enumerate(pdf_pages(reader, name)):
            yield text if not n else "\n\n" + text


class _Sampler:
    """Counts characters of the pieces passing through, and keeps the first ones as a sample."""

    def __init__(self, pieces: Iterator[str]):
        self.pieces, self.chars, self.kept, self.content = pieces, 0, [], False

    def __iter__(self) -> Iterator[str]:
        for piece in self.pieces:
            if self.chars < SAMPLE_CHARS:
                self.kept.append(piece[: SAMPLE_CHARS - self.chars])
            self.chars += len(piece)
            self.content = self.content or not piece.isspace()
            yield piece


def _scan_jsonl(name: str, path: Path) -> SourceFile:
    docs = chars = 0
    bad: list[str] = []
    bad_count = 0
    sample: list[str] = []
    for _, record, problem in jsonl_rows(file_lines(path, name), (TEXT_FIELDS,), text_check):
        if problem:
            bad_count += 1
            if len(bad) < MAX_LISTED_ERRORS:
                bad.append(problem)
            continue
        text = record_document(record, name).text
        docs, chars = docs + 1, chars + len(text)
        if sum(map(len, sample)) < SAMPLE_CHARS:
            sample.append(text)
    if bad_count:
        raise InputError(bad_lines_message(name, bad, bad_count))
    if not docs:
        raise InputError(f"{name} is empty (no JSON records).")
    return SourceFile(name=name, path=path, kind="jsonl", documents=docs, chars=chars, sample=tuple(sample))


def _scan_pdf(name: str, path: Path, root: Path | None) -> SourceFile:
    with _open(path, root, name) as handle:
        _, pages = pdf_reader(handle, name)
    sampler = _Sampler(pdf_pieces(path, name, root))
    read = 0
    for _ in sampler:  # pages are slow to read: the first pages' text sizes the whole, for the estimate
        read += 1
        if sampler.chars >= SAMPLE_CHARS:
            break
    sampler.pieces.close()
    if not sampler.chars:
        raise InputError(f"{name} has no extractable text (it may be a scanned image; run OCR on it first).")
    chars = sampler.chars if sampler.chars < SAMPLE_CHARS else sampler.chars * pages // max(1, read)
    return SourceFile(
        name=name,
        path=path,
        kind="pdf",
        documents=1,
        chars=chars,
        title=Path(name).stem,
        pages=pages,
        sample=("".join(sampler.kept),),
    )


def read_whole(path: Path, name: str, root: Path | None = None) -> Parsed:
    """A web page or Word file read whole, as Markdown (see :mod:`engine.rag.formats`)."""
    with _open(path, root, name) as f:
        return READERS[Path(name).suffix.lower()](f.read(), name)


def whole_pieces(path: Path, name: str, root: Path | None = None) -> Iterator[str]:
    yield read_whole(path, name, root).text  # one piece


def _scan_whole(name: str, path: Path, root: Path | None, kind: str) -> SourceFile:
    found = read_whole(path, name, root)
    title = found.title or Path(name).stem
    return SourceFile(
        name=name,
        path=path,
        kind=kind,
        documents=1,
        chars=len(found.text),
        title=title,
        pages=0,
        sample=(found.text[:SAMPLE_CHARS],),
    )


def _scan_text(name: str, path: Path, root: Path | None, kind: str) -> SourceFile:
    sampler = _Sampler(text_pieces(path, name, root))
    pieces = iter(sampler)
    title = first_heading(_lines(pieces)) if kind == "markdown" else None
    for _ in pieces:  # the rest is read too: every byte is checked before anything is stored
        pass
    if not sampler.content:
        raise InputError(f"{name} is empty.")
    return SourceFile(
        name=name,
        path=path,
        kind=kind,
        documents=1,
        chars=sampler.chars,
        title=title or Path(name).stem,
        pages=0,
        sample=("".join(sampler.kept),),
    )


def scan_file(name: str, path: Path, root: Path | None = None) -> SourceFile:
    """Check one file whole, keeping only counts and a sample; a bad file is an InputError naming it."""
    kind = KINDS.get(Path(name).suffix.lower())
    if kind is None:
        raise InputError(
            f"{name}: unsupported file type {Path(name).suffix or '(no suffix)'}; supported: "
            f"{', '.join(SUPPORTED_SUFFIXES)}."
        )
    try:
        if not os.path.getsize(path):
            raise InputError(f"{name} is empty.")
        if kind == "jsonl":
            return _scan_jsonl(name, path)
        if kind == "pdf":
            return _scan_pdf(name, path, root)
        if kind in WHOLE:
            return _scan_whole(name, path, root, kind)
        return _scan_text(name, path, root, kind)
    except OSError as e:
        raise InputError(f"{name} cannot be read ({e.strerror}).") from None


def scan_path(path: str | os.PathLike, on_error: str = "abort") -> Scan:
    """Check a file, or every supported file of a folder (see :mod:`engine.rag.folders`), without keeping
    their text. Bad files are all listed in one InputError or, with ``on_error="skip"``, left out and
    listed in :attr:`Scan.problems` (as skipped links are in :attr:`Scan.links`)."""
    check_on_error(on_error)
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path} does not exist.")
    if not path.is_dir():
        return Scan(path, (scan_file(path.name, path),))
    listing = list_folder(path)
    files, problems = [], list(listing.problems)
    for rel, file in listing.files:
        try:
            files.append(scan_file(rel, file, listing.root))
        except InputError as e:
            problems.append(str(e))
    if not files and not problems:
        raise InputError(
            f"{path} holds no file to ingest: every supported file there is a link that leaves it "
            f"({'; '.join(listing.links)})."
        )
    check_bad_files(problems, len(listing.files) + len(listing.problems), on_error)
    return Scan(path=path, files=tuple(files), problems=tuple(problems), links=listing.links, root=listing.root)


def read_documents(scan: Scan) -> Iterator[Document | StreamedDocument]:
    """The documents of a scan's good files, in order: JSONL records one at a time, any other file as a
    :class:`StreamedDocument` read again (in pieces, where it can be) when chunked."""
    for f in scan.files:
        if f.kind == "jsonl":
            for _, record, _ in jsonl_rows(file_lines(f.path, f.name), (TEXT_FIELDS,), text_check):
                if record is not None:
                    yield record_document(record, f.name)
            continue
        if f.kind == "pdf":
            read, meta = partial(pdf_pieces, f.path, f.name, scan.root), {"format": "pdf", "pages": f.pages}
        elif f.kind in WHOLE:
            read, meta = partial(whole_pieces, f.path, f.name, scan.root), {"format": f.kind}
        else:
            read, meta = partial(text_pieces, f.path, f.name, scan.root), {"format": f.kind}
        yield StreamedDocument(id=f.name, title=f.title, source=f.name, read=read, metadata=meta)
