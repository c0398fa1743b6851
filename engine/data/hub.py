"""Hugging Face ``datasets``: QA records to and from a Dataset, on disk or (online) from the hub."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from engine.errors import InputError
from engine.qa.exports import nonempty
from engine.qa.records import ImportResult, collect
from engine.qa.schema import QARecord
from engine.write_policy import publish_folder


def to_hf_dataset(records: Iterable[QARecord]):
    """A ``datasets.Dataset``: id, question, answer, contexts ({title, text, doc_id}), doc_ids, metadata (JSON)."""
    import datasets

    text = datasets.Value("string")
    features = datasets.Features(
        {
            "id": text,
            "question": text,
            "answer": text,
            "contexts": datasets.List({"title": text, "text": text, "doc_id": text}),
            "doc_ids": datasets.List(text),
            "metadata": text,
        }
    )
    rows = [{**r.to_dict(), "metadata": json.dumps(r.metadata, ensure_ascii=False)} for r in records]
    return datasets.Dataset.from_list(rows, features=features)


def save_hf(records: Iterable[QARecord], folder: str | os.PathLike, overwrite: bool = False) -> Path:
    """Export :func:`to_hf_dataset` with ``save_to_disk`` as a new folder, or over an earlier Studio export of it
    with ``overwrite`` (never over anything else: see :mod:`engine.write_policy`)."""
    dataset = to_hf_dataset(nonempty(records))
    return publish_folder(folder, lambda tmp: dataset.save_to_disk(str(tmp)), overwrite)


def load_hf(name_or_folder: str, split: str = "train", on_error: str = "abort") -> ImportResult:
    """Records from a folder written by :func:`save_hf`, else from the Hugging Face hub (needs the internet)."""
    import datasets

    folder = Path(name_or_folder).expanduser()
    try:
        if folder.is_dir():
            loaded = datasets.load_from_disk(str(folder))
            rows = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        else:
            rows = datasets.load_dataset(name_or_folder, split=split)
    except Exception as e:  # the hub and the disk loader raise many types: offline, unknown name, bad split
        reason = " ".join(str(e).split())[:300] or type(e).__name__
        raise InputError(f"Could not load the Hugging Face dataset {name_or_folder!r} ({split}): {reason}") from None
    return collect(((f"row {i + 1}", dict(r), "") for i, r in enumerate(rows)), name_or_folder, "auto", on_error)
