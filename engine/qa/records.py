"""Reading and writing QA datasets: JSONL, CSV, pandas and Hugging Face ``datasets``.

Files in the Studio's own form (:meth:`QARecord.to_dict`), Dolly (instruction/context/response)
and HotpotQA (question/answer/context pairs) are recognised from their first record and mapped
to :class:`QARecord` by the normalizers in :data:`NORMALIZERS`. A bad line is reported with its
1-based line number; the caller chooses to abort on it or to leave it out. Records that repeat an id
(:func:`unique_ids`) are refused with their line numbers, or kept once.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from engine.errors import InputError, check_choice
from engine.qa.schema import NO_GOLD, Context, QARecord
from engine.rag.documents import MAX_LISTED_ERRORS, _decode

JSON_COLUMNS = ("contexts", "doc_ids", "metadata")  # CSV cells that hold JSON


@dataclass(frozen=True)
class ImportResult:
    records: list[QARecord]
    problems: tuple[str, ...]  # "line 7: invalid JSON (...)", one per left-out line
    skipped: int
    format: str  # the record kind: "studio", "dolly" or "hotpotqa"
    where: tuple[str, ...] = ()  # where each record was read: "line 3" or "row 3", one per record
    dropped: tuple[str, ...] = ()  # "line 9: the same id (...) as line 2", one per left-out repeat


# --------------------------------------------------------------------------- normalizers


def _text(record: dict, key: str) -> str:
    value = record.get(key)
    if isinstance(value, dict | list):
        raise InputError(f'"{key}" is not a text')
    text = "" if value is None else str(value).strip()
    if not text:
        raise InputError(f'missing or empty "{key}"')
    return text


def normalize_studio(record: dict, n: int = 0) -> QARecord:
    """A record in :meth:`QARecord.to_dict`'s form; a plain ``context`` text becomes its one context."""
    data = dict(record)
    if isinstance(data.get("metadata"), str):  # the form of to_hf_dataset, e.g. from the hub
        try:
            data["metadata"] = json.loads(data["metadata"] or "{}")
        except json.JSONDecodeError:
            raise InputError('"metadata" is not valid JSON') from None
    if not data.get("contexts") and isinstance(data.get("context"), str) and data["context"].strip():
        data["contexts"] = [data["context"].strip()]
    no_gold = isinstance(data.get("metadata"), dict) and data["metadata"].get(NO_GOLD) is True
    for key in ("question",) if no_gold else ("question", "answer"):
        _text(data, key)  # the same message for a missing field as the other normalizers
    return QARecord.from_dict(data)


def normalize_questions(record: dict, n: int = 0) -> QARecord:
    """A record of a file of questions (no ``answer`` field in its first records): without an answer it
    is a question without a gold answer (metadata ``no_gold``); with one, a record like any other."""
    if str(record.get("answer") or "").strip():
        return normalize_studio(record, n)
    data = {k: v for k, v in record.items() if k != "answer"}
    metadata = data.get("metadata") or {}
    if isinstance(metadata, str):  # the form of to_hf_dataset and of a CSV column
        try:
            metadata = json.loads(metadata or "{}")
        except json.JSONDecodeError:
            raise InputError('"metadata" is not valid JSON') from None
    if not isinstance(metadata, dict):
        raise InputError("metadata is a JSON object")
    return normalize_studio(data | {"metadata": {**metadata, NO_GOLD: True}}, n)


def answer_texts(value: object) -> list[str]:
    """The gold answers of an ``answers`` field: a list of texts, SQuAD's ``{"text": [...], ...}``, a CSV cell
    holding either as JSON, or one text."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass  # a text that merely starts with a bracket
    if isinstance(value, dict):
        value = value.get("text", [])
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str | int | float) for v in values if v is not None):
        raise InputError('"answers" is not a list of texts (or SQuAD\'s {"text": [...]})')
    return list(dict.fromkeys(str(v).strip() for v in values if v is not None and str(v).strip()))


def normalize_answers(record: dict, n: int = 0) -> QARecord:
    """A record with several gold answers (SQuAD and many Hub QA sets: ``answers``): the first is its answer,
    all of them its gold answers (metadata ``answers``), any of which scores; none: a question without one."""
    texts = answer_texts(record.get("answers"))
    data = {k: v for k, v in record.items() if k != "answers"}
    if not texts:
        return normalize_questions(data, n)
    found = normalize_studio(data | {"answer": texts[0]}, n)
    return replace(found, metadata={**found.metadata, "answers": texts}) if len(texts) > 1 else found


def normalize_dolly(record: dict, n: int) -> QARecord:
    """A Dolly record; ``n`` is its 0-based position in the file, which names its document."""
    doc_id = f"dolly-{n}"
    context = str(record.get("context") or "").strip()
    return QARecord(
        question=_text(record, "instruction"),
        answer=_text(record, "response"),
        contexts=(Context(title="", text=context, doc_id=doc_id),) if context else (),
        doc_ids=(doc_id,),
        metadata={"source": "dolly", "category": str(record.get("category") or "")},
    )


def _pairs(value: object, second: str) -> list[tuple[str, object]]:
    """HotpotQA's ``[[title, x], ...]``, or the hub's ``{"title": [...], second: [...]}`` form, as pairs."""
    if isinstance(value, dict) and isinstance(value.get("title"), list) and isinstance(value.get(second), list):
        return [(str(t), x) for t, x in zip(value["title"], value[second], strict=False)]
    if isinstance(value, list) and all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
        return [(str(t), x) for t, x in value]
    raise InputError(f'"{"context" if second == "sentences" else "supporting_facts"}" is not a list of pairs')


def normalize_hotpotqa(record: dict, n: int = 0) -> QARecord:
    """A HotpotQA record: its paragraphs are the contexts, its supporting titles the doc_ids."""
    contexts = []
    for title, sentences in _pairs(record.get("context"), "sentences"):
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            raise InputError(f"the sentences of paragraph {title!r} are not a list of texts")
        if text := "".join(sentences).strip():  # HotpotQA sentences carry their own leading spaces
            contexts.append(Context(title=title, text=text, doc_id=title))
    support = list(dict.fromkeys(t for t, _ in _pairs(record.get("supporting_facts") or [], "sent_id")))
    metadata = {
        "source": "hotpotqa",
        "category": str(record.get("type") or ""),
        "level": str(record.get("level") or ""),
        "hotpotqa_id": str(record.get("id") or ""),
        "supporting": support,
    }
    question, answer = _text(record, "question"), _text(record, "answer")
    return QARecord(
        question=question, answer=answer, contexts=tuple(contexts), doc_ids=tuple(support), metadata=metadata
    )


NORMALIZERS: dict[str, Callable[[dict, int], QARecord]] = {
    "studio": normalize_studio,
    "dolly": normalize_dolly,
    "hotpotqa": normalize_hotpotqa,
    "questions": normalize_questions,
    "answers": normalize_answers,
}


def detect_format(first_record: dict, name: str = "The data") -> str:
    """The normalizer for a record's fields: ``hotpotqa``, ``studio``, ``dolly`` or ``questions`` (a question
    and no answer field: questions without gold answers, for evaluation)."""
    keys = set(first_record)
    if {"question", "answer"} <= keys:
        try:
            _pairs(first_record.get("context"), "sentences")
            return "hotpotqa"
        except InputError:
            return "studio"
    if {"instruction", "response"} <= keys:
        return "dolly"
    if {"question", "answers"} <= keys:
        return "answers"
    if "question" in keys and "answer" not in keys:
        return "questions"
    raise InputError(
        f"{name} has unknown record fields ({', '.join(sorted(map(str, keys))) or 'none'}): a QA dataset needs "
        "question and answer (Studio or HotpotQA form), or instruction and response (Dolly form)."
    )


# --------------------------------------------------------------------------- reading

Row = tuple[str, dict | None, str]  # (where, the record or None, the problem or "")


def _jsonl_rows(text: str) -> Iterator[Row]:
    # split("\n"), not splitlines(): JSON strings may hold raw U+2028 and other line separators
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            yield f"line {number}", None, f"invalid JSON ({e.msg} at column {e.colno})"
            continue
        if isinstance(value, dict):
            yield f"line {number}", value, ""
        else:
            yield f"line {number}", None, "not a JSON object"


def _csv_rows(text: str, name: str) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
        start = reader.line_num + 1
        for row in reader:
            where, start = f"line {start}", reader.line_num + 1  # a quoted field may span lines
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield where, None, f"{len(row)} fields, but the header has {len(header)}"
                continue
            record: dict = {k: v for k, v in zip(header, row, strict=True) if v.strip()}
            try:
                for key in (k for k in JSON_COLUMNS if k in record):
                    record[key] = json.loads(record[key])
            except json.JSONDecodeError:
                yield where, None, f'the "{key}" column is not valid JSON'
                continue
            yield where, record, ""
    except csv.Error as e:
        raise InputError(f"{name} is not a readable CSV file (line {reader.line_num}: {e}).") from None


def collect(rows: Iterable[Row], name: str, kind: str, on_error: str) -> ImportResult:
    """Normalize the rows with ``kind`` (or the detected kind); abort on, or leave out, bad rows."""
    if on_error not in ("abort", "skip"):
        raise InputError(f"on_error must be 'abort' or 'skip', not {on_error!r}.")
    rows = list(rows)
    if kind == "auto":
        found = [r for _, r, _ in rows if r is not None][:20]
        kinds = [k for r in found if (k := _detect_or_none(r))]
        if found and not kinds:
            detect_format(found[0], name)  # raises, naming the fields it found
        # questions only when no sampled record has an answer: one record that lacks it is a mistake
        kind = next((k for k in kinds if k != "questions"), kinds[0]) if kinds else "studio"
    else:
        check_choice(kind, ("auto", *NORMALIZERS), "record kind")
    normalize, records, problems, places = NORMALIZERS[kind], [], [], []
    for n, (where, record, problem) in enumerate(rows):
        if record is not None:
            try:
                records.append(normalize(record, n))
                places.append(where)
            except (InputError, ValueError, TypeError) as e:
                problem = str(e) or type(e).__name__
        if problem:
            problems.append(f"{where}: {problem}")
    if problems and (on_error == "abort" or not records):
        listed = "; ".join(problems[:MAX_LISTED_ERRORS])
        more = f"; and {len(problems) - MAX_LISTED_ERRORS} more" if len(problems) > MAX_LISTED_ERRORS else ""
        what = "has no valid record" if not records else f"has {len(problems)} malformed record(s)"
        hint = "" if not records else " Fix them, or choose to skip bad records."
        raise InputError(f"{name} {what}: {listed}{more}.{hint}")
    if not records:
        raise InputError(f"{name} has no records.")
    return ImportResult(
        records=records, problems=tuple(problems), skipped=len(problems), format=kind, where=tuple(places)
    )


def unique_ids(result: ImportResult, name: str, dedupe: bool = False) -> ImportResult:
    """``result`` with each record id once (an id is a content hash, or the file's own ``id`` field).

    A repeated id is an InputError naming the lines of every copy; with ``dedupe`` the first of each id is
    kept and the others are left out, each listed in ``dropped`` with the line of the one kept.
    """
    where = result.where or tuple(f"record {i + 1}" for i in range(len(result.records)))
    places = defaultdict(list)
    for i, r in enumerate(result.records):
        places[r.id].append(i)
    repeated = {k: v for k, v in places.items() if len(v) > 1}
    if not repeated:
        return result
    if not dedupe:
        listed = [f"id {k} on {' and '.join(where[i] for i in v)}" for k, v in repeated.items()]
        more = f"; and {len(listed) - MAX_LISTED_ERRORS} more" if len(listed) > MAX_LISTED_ERRORS else ""
        raise InputError(
            f"{name} has {len(listed)} id(s) used by more than one record: {'; '.join(listed[:MAX_LISTED_ERRORS])}"
            f"{more}. Each record needs its own id: remove the copies, or keep one of each (--dedupe, or the box "
            "'Keep one record of each repeated id')."
        )
    first = {k: v[0] for k, v in places.items()}
    kept = [i for i, r in enumerate(result.records) if first[r.id] == i]
    dropped = tuple(
        f"{where[i]}: the same id ({r.id}) as {where[first[r.id]]}"
        for i, r in enumerate(result.records)
        if first[r.id] != i
    )
    return replace(
        result, records=[result.records[i] for i in kept], where=tuple(where[i] for i in kept), dropped=dropped
    )


def _detect_or_none(record: dict) -> str | None:
    try:
        return detect_format(record)
    except InputError:
        return None


def read_records(
    source: str | os.PathLike | bytes, name: str = "", fmt: str = "auto", kind: str = "auto", on_error: str = "abort"
) -> ImportResult:
    """QA records from a JSONL or CSV file (a path, or an upload's bytes named ``name``).

    ``fmt``: ``jsonl``, ``csv`` or ``auto`` (by the name's suffix, else by the content). ``kind``: a
    key of :data:`NORMALIZERS` or ``auto`` (detected from the first records). ``on_error``:
    ``abort`` raises an InputError listing the bad lines; ``skip`` leaves them out and lists them.
    """
    if isinstance(source, bytes):
        name = name or "The uploaded data"
        data = source
    else:
        path = Path(source).expanduser()
        name = name or path.name
        if not path.is_file():
            raise InputError(f"{path} does not exist." if not path.exists() else f"{path} is not a file.")
        data = path.read_bytes()
    text = _decode(data, name)
    if fmt == "auto":
        suffix = Path(name).suffix.lower()
        fmt = "csv" if suffix == ".csv" else "jsonl" if suffix in (".jsonl", ".ndjson") else ""
        fmt = fmt or ("jsonl" if text.lstrip().startswith("{") else "csv")
    check_choice(fmt, ("jsonl", "csv", "auto"), "file format")
    rows = _jsonl_rows(text) if fmt == "jsonl" else _csv_rows(text, name)
    return collect(rows, name, kind, on_error)
