"""QA sets as evaluation items: a saved dataset version's split, or the built-in HotpotQA collection.

Every command that trains, evaluates or compares names its questions the same way:
``NAME`` (the dataset's newest version) or ``NAME@VERSION``, plus a split. ``hotpotqa`` is the
built-in collection: the fixed split of the shared HotpotQA file (the benchmark and demo).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError
from engine.evaluation.hotpotqa import QAItem, load_hotpotqa
from engine.evaluation.splits import split_items
from engine.qa.versions import DatasetStore
from engine.rag.prompt import answer_sentences
from engine.settings import Settings

HOTPOTQA = "hotpotqa"  # the built-in collection's name
HOTPOTQA_FILE = "hotpotqa-dev.jsonl"
SPLITS = ("train", "validation", "test")


def resolve_data(data: str, settings: Settings) -> Path:
    path = Path(data).expanduser()
    if not path.exists() and (settings.shared_data_dir / data).exists():
        path = settings.shared_data_dir / data
    if not path.is_file():
        raise InputError(f"Evaluation data {data!r} not found (looked in the shared data folder too).")
    return path


@dataclass(frozen=True)
class QASet:
    """The items of one split of a QA set, and what identifies them (for MLflow and reports)."""

    name: str  # "hotpotqa", or the dataset's name
    version: str  # the dataset version id (the HotpotQA file's name for the built-in one)
    split: str
    items: list[QAItem]

    @property
    def ref(self) -> str:
        return self.name if self.name == HOTPOTQA else f"{self.name}@{self.version}"


def parse_ref(ref: str) -> tuple[str, str]:
    """``NAME`` or ``NAME@VERSION`` as (name, version); an empty version is the newest."""
    name, _, version = (ref or "").strip().partition("@")
    if not name.strip():
        raise InputError("Name a QA set: a dataset NAME or NAME@VERSION (see `data versions`), or hotpotqa.")
    return name.strip(), version.strip()


def record_item(record) -> QAItem:
    """A dataset record as an evaluation item: its contexts are its passages (the ``given`` mode's sources),
    its context titles and document ids what retrieval should find, and its answer sentences the evidence."""
    evidence = tuple((c.title, s) for c in record.contexts for s in answer_sentences([c.text], record.answer))
    docs = tuple(dict.fromkeys(list(record.doc_ids) + [c.doc_id for c in record.contexts if c.doc_id]))
    return QAItem(
        id=record.id,
        question=record.question,
        answer=record.answer,
        supporting_titles=tuple(dict.fromkeys(c.title for c in record.contexts)),
        paragraphs=tuple((c.title, c.text) for c in record.contexts),
        type=str(record.metadata.get("category", "")),
        supporting_sentences=evidence,
        supporting_docs=docs,
        answers=tuple(record.metadata.get("answers") or ()),
    )


def split_records(records: Sequence, name: str, version: str, split: str) -> list:
    """The records of one split ('' : all); a split asked of a version that is not split is an InputError."""
    if not split:
        return list(records)
    if split not in SPLITS:
        raise InputError(f"Unknown split {split!r}: choose {', '.join(SPLITS)} or '' (all).")
    if not any("split" in r.metadata for r in records):
        raise InputError(
            f"Dataset {name!r} version {version} is not split: split it first (python -m engine data split "
            f"{name}), so that no test question is ever trained on."
        )
    return [r for r in records if r.metadata.get("split") == split]


def load_qa_set(settings: Settings, ref: str, split: str = "test", limit: int | None = None) -> QASet:
    """One split of a QA set: ``hotpotqa`` (the fixed split of the shared file) or a saved dataset version."""
    name, version = parse_ref(ref)
    if name == HOTPOTQA:
        path = resolve_data(version or HOTPOTQA_FILE, settings)
        items = split_items(path, settings, split) if split else load_hotpotqa(path)
        return QASet(name=HOTPOTQA, version=path.name, split=split, items=items[:limit])

    store = DatasetStore(settings)
    version = version or store.versions(name)[0].id
    records = split_records(store.load(name, version), name, version, split)[:limit]
    if not records:
        raise InputError(f"Dataset {name}@{version} has no {split or ''} records.".replace("  ", " "))
    return QASet(name=name, version=version, split=split, items=[record_item(r) for r in records])


def qa_set_names(settings: Settings) -> list[str]:
    """The QA sets a page can offer: the built-in HotpotQA collection, then every saved dataset."""
    return [HOTPOTQA, *DatasetStore(settings).datasets()]
