"""HotpotQA questions (distractor setting) as evaluation items."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError
from engine.rag.documents import load_jsonl_records


@dataclass(frozen=True)
class QAItem:
    """A question, its gold answer, the titles of its supporting paragraphs, and its own paragraphs."""

    id: str
    question: str
    answer: str
    supporting_titles: tuple[str, ...] = ()
    paragraphs: tuple[tuple[str, str], ...] = ()  # (title, text)
    type: str = ""


def check_context(record: dict) -> str | None:
    context = record.get("context", [])
    if not isinstance(context, list) or any(not (isinstance(p, list) and len(p) == 2) for p in context):
        return '"context" is not a list of [title, sentences] pairs'
    return None


def load_hotpotqa(path: str | Path, limit: int | None = None) -> list[QAItem]:
    """The first ``limit`` questions of a HotpotQA JSONL file (the shared ``hotpotqa-dev.jsonl`` layout)."""
    if limit is not None and limit < 1:
        raise InputError("--limit must be at least 1.")
    records = load_jsonl_records(path, required=("question", "answer"), check=check_context)
    items = []
    for r in records[:limit]:
        paragraphs = tuple((title, "".join(sentences).strip()) for title, sentences in r.get("context", []))
        support = tuple(dict.fromkeys(title for title, _ in r.get("supporting_facts", [])))
        items.append(
            QAItem(
                str(r.get("id", len(items))),
                r["question"],
                r["answer"],
                support,
                paragraphs,
                r.get("type", ""),
            )
        )
    return items
