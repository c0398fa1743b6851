"""Writing QA records: JSONL and CSV files (atomically) and pandas tables for the page."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from engine.errors import InputError
from engine.qa.records import JSON_COLUMNS
from engine.qa.schema import QARecord
from engine.write_policy import write_atomic

CSV_COLUMNS = ("id", "question", "answer", "contexts", "doc_ids", "metadata")
FRAME_COLUMNS = ("id", "question", "answer", "n_contexts", "doc_ids")


def nonempty(records: Iterable[QARecord]) -> list[QARecord]:
    records = list(records)
    if not records:
        raise InputError("There are no records to write.")
    return records


def jsonl_text(records: Iterable[QARecord]) -> str:
    """One :meth:`QARecord.to_dict` object per line."""
    return "\n".join(json.dumps(r.to_dict(), ensure_ascii=False) for r in nonempty(records)) + "\n"


def csv_text(records: Iterable[QARecord]) -> str:
    """One row per record; contexts, doc_ids and metadata as JSON cells, so :func:`read_records` reads it back."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in nonempty(records):
        d = r.to_dict()
        writer.writerow([d[c] if c not in JSON_COLUMNS else json.dumps(d[c], ensure_ascii=False) for c in CSV_COLUMNS])
    return out.getvalue()


def write_csv(records: Iterable[QARecord], path: str | os.PathLike) -> Path:
    """:func:`csv_text` written atomically."""
    return write_atomic(path, csv_text(records))


def write_jsonl(records: Iterable[QARecord], path: str | os.PathLike) -> Path:
    """:func:`jsonl_text` written atomically (the Studio's own files; exports go through the write policy)."""
    return write_atomic(path, jsonl_text(records))


def _flat(metadata: dict, prefix: str = "") -> dict:
    """Metadata as table cells: nested dicts (e.g. ``scores``) as ``scores.name``, lists as JSON."""
    cells = {}
    for key, value in metadata.items():
        if isinstance(value, dict) and not prefix:
            cells.update(_flat(value, f"{key}."))
        elif isinstance(value, list | tuple | dict):
            cells[prefix + key] = json.dumps(value, ensure_ascii=False)
        else:
            cells[prefix + key] = value
    return cells


def to_frame(records: Iterable[QARecord]):
    """A pandas DataFrame, one row per record: id, question, answer, n_contexts, doc_ids, then metadata keys."""
    rows = []
    for r in records:
        row = {"id": r.id, "question": r.question, "answer": r.answer, "n_contexts": len(r.contexts)}
        row["doc_ids"] = ", ".join(r.doc_ids)
        row.update({(k if k not in FRAME_COLUMNS else f"metadata.{k}"): v for k, v in _flat(r.metadata).items()})
        rows.append(row)
    return pd.DataFrame(rows, columns=list(dict.fromkeys([*FRAME_COLUMNS, *(k for row in rows for k in row)])))
