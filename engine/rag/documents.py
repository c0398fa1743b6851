"""Loading a user's documents: JSONL, plain text, Markdown and PDF files, folders and uploads.

Every problem with the input is an :class:`~engine.errors.InputError` whose message names the
file and says what is wrong (a malformed JSONL file lists its bad line numbers), so the app can
show it as is.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InputError

SUPPORTED_SUFFIXES = (".jsonl", ".txt", ".md", ".markdown", ".pdf")
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
        lines: Iterable[str] = _decode(path.read_bytes(), name).splitlines()
    elif isinstance(path_or_lines, bytes):
        name = name or "JSONL data"
        lines = _decode(path_or_lines, name).splitlines()
    else:
        name = name or "JSONL data"
        lines = path_or_lines
    required = tuple(required)
    records: list[dict] = []
    bad: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            bad.append(f"line {number} (invalid JSON: {e.msg} at column {e.colno})")
            continue
        if not isinstance(record, dict):
            bad.append(f"line {number} (not a JSON object)")
            continue
        problems = _field_problems(record, required)
        if not problems and check is not None and (reason := check(record)):
            problems.append(reason)
        if problems:
            bad.append(f"line {number} ({'; '.join(problems)})")
        else:
            records.append(record)
    if bad:
        listed = ", ".join(bad[:MAX_LISTED_ERRORS])
        more = f", and {len(bad) - MAX_LISTED_ERRORS} more" if len(bad) > MAX_LISTED_ERRORS else ""
        noun = "line" if len(bad) == 1 else "lines"
        raise InputError(f"{name}: {len(bad)} malformed {noun}: {listed}{more}.")
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


def _text_check(record: dict) -> str | None:
    key = next(k for k in TEXT_FIELDS if k in record)
    return None if isinstance(record[key], str) else f'"{key}" is not a string'


def _parse_jsonl(data: bytes, name: str, source: str) -> list[Document]:
    """One Document per record. The id is the record's ``id`` (else a hash of title and text);
    the title is its ``title`` (else the start of its text); other scalar fields are metadata."""
    records = load_jsonl_records(data, required=(TEXT_FIELDS,), name=name, check=_text_check)
    docs = []
    for record in records:
        text_key = next(k for k in TEXT_FIELDS if k in record)
        text = record[text_key].strip()
        title = str(record["title"]).strip() if not _is_empty(record.get("title")) else _snippet(text)
        doc_id = str(record["id"]) if not _is_empty(record.get("id")) else _content_id(title, text)
        metadata = {
            k: v
            for k, v in record.items()
            if k not in ("id", "title", text_key) and isinstance(v, str | int | float | bool)
        }
        docs.append(Document(id=doc_id, title=title, text=text, source=source, metadata=metadata))
    return docs


# --------------------------------------------------------------------------- text, Markdown, PDF


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def markdown_title(text: str) -> str | None:
    """The text of the first level-1 ATX heading (``# Title``) outside code fences, if any."""
    fence = None
    for line in text.splitlines():
        stripped = line.strip()
        marker = stripped[:3]
        if marker in ("```", "~~~"):
            fence = None if fence == marker else (fence or marker)
            continue
        if fence is None and (m := re.match(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", line)):
            return m.group(1).strip()
    return None


def _parse_pdf(data: bytes, name: str) -> tuple[str, int]:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputError(f"{name} is an encrypted PDF; remove the password and try again.")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except InputError:
        raise
    except Exception as e:  # pypdf raises many kinds of errors on a damaged file
        raise InputError(f"{name} is not a readable PDF ({e}).") from None
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise InputError(f"{name} has no extractable text (it may be a scanned image; run OCR on it first).")
    return text, len(pages)


def _parse(name: str, data: bytes, doc_id: str) -> list[Document]:
    """Documents from one file's bytes; ``name`` is its (relative) path, used in messages."""
    suffix = Path(name).suffix.lower()
    stem = Path(name).stem
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(
            f"{name}: unsupported file type {suffix or '(no suffix)'}; supported: {', '.join(SUPPORTED_SUFFIXES)}."
        )
    if suffix == ".jsonl":
        return _parse_jsonl(data, name, source=name)
    if suffix == ".pdf":
        if not data.strip():
            raise InputError(f"{name} is empty.")
        text, pages = _parse_pdf(data, name)
        meta = {"format": "pdf", "pages": pages}
        return [Document(id=doc_id, title=stem, text=text, source=name, metadata=meta)]
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


def _supported_files(folder: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fname in filenames:
            if not fname.startswith(".") and Path(fname).suffix.lower() in SUPPORTED_SUFFIXES:
                found.append(Path(dirpath) / fname)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def load_documents(path: str | os.PathLike) -> list[Document]:
    """Documents from a file, or from every supported file under a folder (recursively, sorted by
    relative path, hidden files and folders skipped). A file's document id is its path relative
    to the folder (or its name); a JSONL file gives one document per record."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path} does not exist.")
    if path.is_file():
        return _parse(path.name, path.read_bytes(), doc_id=path.name)
    files = _supported_files(path)
    if not files:
        raise InputError(f"{path} contains no supported files ({', '.join(SUPPORTED_SUFFIXES)}).")
    docs: list[Document] = []
    for file in files:
        rel = file.relative_to(path).as_posix()
        docs.extend(_parse(rel, file.read_bytes(), doc_id=rel))
    return docs
