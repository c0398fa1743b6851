"""Loading a user's documents: JSONL, plain text, Markdown and PDF files, folders and uploads.

Every problem with the input is an :class:`~engine.errors.InputError` whose message names the
file and says what is wrong (a malformed JSONL file lists its bad line numbers), so the app can
show it as is. This module loads documents whole, for small inputs and uploads;
:mod:`engine.rag.sources` reads files of any size in pieces, with the same ids, titles and texts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InputError
from engine.rag.folders import SUPPORTED_SUFFIXES, check_bad_files, list_folder
from engine.rag.formats import READERS

TEXT_FIELDS = ("text", "content", "body")  # the first one present is a JSONL record's text
MAX_LISTED_ERRORS = 10
_SNIPPET_CHARS = 60


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str
    source: str  # the file's name, or its path relative to the loaded folder
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StreamedDocument:
    """A document whose text is read in pieces each time it is chunked, never held whole (a large file)."""

    id: str
    title: str
    source: str
    read: Callable[[], Iterator[str]]  # the raw text, in pieces (whitespace is normalized when chunked)
    metadata: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- JSONL


def _decode(data: bytes, name: str) -> str:
    """UTF-8 text of ``data`` (a leading BOM dropped); empty or undecodable data is an InputError."""
    if not data.strip():
        raise InputError(f"{name} is empty.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:  # byte numbers are 1-based, like line numbers
        raise InputError(f"{name} is not UTF-8 text (byte {e.start + 1}).") from None
    return text.removeprefix("\ufeff")


def _is_empty(value: object) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, list | dict) and not value)


def _field_problems(record: dict, required: Iterable[str | tuple[str, ...]]) -> list[str]:
    problems = []
    for spec in required:
        names = (spec,) if isinstance(spec, str) else tuple(spec)
        present = [n for n in names if n in record]
        label = " or ".join(f'"{n}"' for n in names)
        if not present:
            problems.append(f"no {label} field")
        elif _is_empty(record[present[0]]):
            problems.append(f'empty "{present[0]}" field')
    return problems


def file_lines(path: Path, name: str) -> Iterator[str]:
    """The lines of a UTF-8 file, one at a time, as ``_decode(data).splitlines()`` gives them: a file of
    whitespace only is "empty", a byte that is not UTF-8 an InputError naming its position."""
    offset, content = 0, False
    with path.open("rb") as f:
        for raw in f:  # split at b"\n", which is never part of a multi-byte UTF-8 character
            content = content or bool(raw.strip())
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"{name} is not UTF-8 text (byte {offset + e.start + 1}).") from None
            if not offset:
                text = text.removeprefix("\ufeff")
            offset += len(raw)
            # each piece ends at a line feed, and "\r\n" never straddles two: the same lines as the whole text's
            yield from text.splitlines()
    if not content:
        raise InputError(f"{name} is empty.")


def jsonl_rows(
    lines: Iterable[str], required: tuple = ("text",), check: Callable[[dict], str | None] | None = None
) -> Iterator[tuple[int, dict | None, str]]:
    """``(line number, record, "")`` for each good JSONL line, ``(number, None, problem)`` for a bad one."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            yield number, None, f"line {number} (invalid JSON: {e.msg} at column {e.colno})"
            continue
        if not isinstance(record, dict):
            yield number, None, f"line {number} (not a JSON object)"
            continue
        problems = _field_problems(record, required)
        if not problems and check is not None and (reason := check(record)):
            problems.append(reason)
        if problems:
            yield number, None, f"line {number} ({'; '.join(problems)})"
        else:
            yield number, record, ""


def bad_lines_message(name: str, bad: list[str], count: int | None = None) -> str:
    """``name: N malformed lines: ...`` with the first 10 of ``bad`` (``count`` of them in all)."""
    count = len(bad) if count is None else count
    listed = ", ".join(bad[:MAX_LISTED_ERRORS])
    more = f", and {count - MAX_LISTED_ERRORS} more" if count > MAX_LISTED_ERRORS else ""
    return f"{name}: {count} malformed {'line' if count == 1 else 'lines'}: {listed}{more}."


def load_jsonl_records(
    path_or_lines: str | os.PathLike | bytes | Iterable[str],
    required: Iterable[str | tuple[str, ...]] = ("text",),
    *,
    name: str | None = None,
    check: Callable[[dict], str | None] | None = None,
) -> list[dict]:
    """The JSON objects of a JSONL file (a path, its bytes, or its lines), checked strictly.

    Blank lines are skipped. Each name in ``required`` must be a field with a non-empty value;
    an entry may be a tuple of alternative names (the first present one is checked). ``check``
    may return a reason why a record is unusable. All bad lines are collected and reported in
    one InputError with their 1-based line numbers (the first 10, then "and N more"); a file
    with no records is an InputError too. ``name`` names the input in messages.
    """
    if isinstance(path_or_lines, str | os.PathLike):
        path = Path(path_or_lines)
        name = name or path.name
        if not path.is_file():
            raise InputError(f"{path} does not exist." if not path.exists() else f"{path} is not a file.")
        lines: Iterable[str] = file_lines(path, name)
    elif isinstance(path_or_lines, bytes):
        name = name or "JSONL data"
        lines = _decode(path_or_lines, name).splitlines()
    else:
        name = name or "JSONL data"
        lines = path_or_lines
    records: list[dict] = []
    bad: list[str] = []
    for _, record, problem in jsonl_rows(lines, tuple(required), check):
        if problem:
            bad.append(problem)
        else:
            records.append(record)
    if bad:
        raise InputError(bad_lines_message(name, bad))
    if not records:
        raise InputError(f"{name} is empty (no JSON records).")
    return records


def _content_id(title: str, text: str) -> str:
    return hashlib.sha256(f"{title}\x00{text}".encode()).hexdigest()[:32]


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) <= _SNIPPET_CHARS:
        return flat
    return flat[:_SNIPPET_CHARS].rsplit(" ", 1)[0] + "…"


def text_check(record: dict) -> str | None:
    """Why a checked JSONL record's text field cannot be a document's text (None: it can)."""
    key = next(k for k in TEXT_FIELDS if k in record)
    return None if isinstance(record[key], str) else f'"{key}" is not a string'


def record_document(record: dict, source: str) -> Document:
    """The Document of a checked JSONL record. The id is the record's ``id`` (else a hash of title and
    text); the title is its ``title`` (else the start of its text); other scalar fields are metadata."""
    text_key = next(k for k in TEXT_FIELDS if k in record)
    text = record[text_key].strip()
    title = str(record["title"]).strip() if not _is_empty(record.get("title")) else _snippet(text)
    doc_id = str(record["id"]) if not _is_empty(record.get("id")) else _content_id(title, text)
    metadata = {
        k: v
        for k, v in record.items()
        if k not in ("id", "title", text_key) and isinstance(v, str | int | float | bool)
    }
    return Document(id=doc_id, title=title, text=text, source=source, metadata=metadata)


# --------------------------------------------------------------------------- text, Markdown, PDF


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def first_heading(lines: Iterable[str]) -> str | None:
    """The text of the first level-1 ATX heading (``# Title``) among ``lines`` outside code fences, if any;
    reads no further than that line."""
    fence = None
    for line in lines:
        stripped = line.strip()
        marker = stripped[:3]
        if marker in ("```", "~~~"):
            fence = None if fence == marker else (fence or marker)
            continue
        if fence is None and (m := re.match(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", line)):
            return m.group(1).strip()
    return None


def markdown_title(text: str) -> str | None:
    """The text of the first level-1 ATX heading (``# Title``) outside code fences, if any."""
    return first_heading(text.splitlines())


def _parse(name: str, data: bytes, doc_id: str) -> list[Document]:
    """Documents from one file's bytes; ``name`` is its (relative) path, used in messages."""
    suffix = Path(name).suffix.lower()
    stem = Path(name).stem
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(
            f"{name}: unsupported file type {suffix or '(no suffix)'}; supported: {', '.join(SUPPORTED_SUFFIXES)}."
        )
    if suffix == ".jsonl":
        records = load_jsonl_records(data, required=(TEXT_FIELDS,), name=name, check=text_check)
        return [record_document(r, source=name) for r in records]
    if suffix in READERS:  # PDF, HTML, Word
        found = READERS[suffix](data, name)
        return [Document(id=doc_id, title=found.title or stem, text=found.text, source=name, metadata=found.metadata)]
    text = _normalize_newlines(_decode(data, name))
    if suffix == ".txt":
        return [Document(id=doc_id, title=stem, text=text, source=name, metadata={"format": "text"})]
    title = markdown_title(text) or stem
    return [Document(id=doc_id, title=title, text=text, source=name, metadata={"format": "markdown"})]


def parse_upload(name: str, data: bytes) -> list[Document]:
    """Documents from an uploaded file's name and bytes (e.g. from Streamlit's file uploader)."""
    name = Path(name).name or "upload"
    if not data:
        raise InputError(f"{name} is empty.")
    return _parse(name, data, doc_id=name)


def load_documents(path: str | os.PathLike, on_error: str = "abort") -> list[Document]:
    """Documents from a file, or from every supported file under a folder (see :mod:`engine.rag.folders`:
    recursively, sorted by relative path, hidden files and links out of the folder skipped). A file's
    document id is its path relative to the folder (or its name); a JSONL file gives one document per
    record. Bad files in a folder are all listed in one InputError, or with ``on_error="skip"`` left out."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path} does not exist.")
    if path.is_file():
        return _parse(path.name, path.read_bytes(), doc_id=path.name)
    listing = list_folder(path)
    docs: list[Document] = []
    problems = list(listing.problems)
    for rel, file in listing.files:
        try:
            docs.extend(_parse(rel, file.read_bytes(), doc_id=rel))
        except InputError as e:
            problems.append(str(e))
        except OSError as e:
            problems.append(f"{rel} cannot be read ({e.strerror}).")
    check_bad_files(problems, len(listing.files) + len(listing.problems), on_error)
    return docs
