"""HotpotQA questions (distractor setting) as evaluation items."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError
from engine.rag.documents import load_jsonl_records
from engine.rag.embedding_cache import cached_embedder
from engine.rag.links import with_links
from engine.rag.retriever import PoolRetriever


@dataclass(frozen=True)
class QAItem:
    """A question, its gold answer, the titles of its supporting paragraphs, and its own paragraphs;
    ``supporting_sentences`` are the (title, sentence) pairs marked as the evidence (HotpotQA's facts,
    or a record's sentences holding its answer)."""

    id: str
    question: str
    answer: str
    supporting_titles: tuple[str, ...] = ()
    paragraphs: tuple[tuple[str, str], ...] = ()  # (title, text)
    type: str = ""
    supporting_sentences: tuple[tuple[str, str], ...] = ()
    supporting_docs: tuple[str, ...] = ()  # document ids: retrieval is scored by them where titles repeat
    answers: tuple[str, ...] = ()  # every gold answer where there are several (SQuAD's); any of them scores


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
        facts = r.get("supporting_facts", [])
        support = tuple(dict.fromkeys(title for title, *_ in facts))
        items.append(
            QAItem(
                id=str(r.get("id", len(items))),
                question=r["question"],
                answer=r["answer"],
                supporting_titles=support,
                paragraphs=paragraphs,
                type=r.get("type", ""),
                supporting_sentences=supporting_sentences(r.get("context", []), facts),
            )
        )
    return items


def supporting_sentences(context: list, facts: list) -> tuple[tuple[str, str], ...]:
    """The (title, sentence) pairs of ``facts`` ([title, sentence index] pairs) found in ``context``."""
    sentences = {title: list(sents) for title, sents in context}
    found = []
    for fact in facts:
        if len(fact) == 2 and isinstance(fact[1], int) and 0 <= fact[1] < len(sentences.get(fact[0], [])):
            found.append((fact[0], sentences[fact[0]][fact[1]].strip()))
    return tuple(dict.fromkeys(found))


def distractor_retriever(items: list[QAItem], settings, embedder=None, follow_links: int = 0):
    """The distractor setting's retriever: each question's own paragraphs ranked by the (cached)
    embedder, with a hop along mentions of the first ``follow_links`` (see :mod:`engine.rag.links`).
    Evaluation and retrieved training sources both use it, so they rank alike."""
    pools = {item.question: item.paragraphs for item in items}
    return with_links(PoolRetriever(cached_embedder(settings, embedder), pools), follow_links)
