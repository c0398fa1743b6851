"""A user's collection for the engine tests: documents, their knowledge base, and a split QA set.

The collection is real: HotpotQA's human-written questions with their gold paragraphs as the
documents, every document titled alike ("notes.md"), as a folder of a user's files may be, so
retrieval can only be scored by document id.
"""

from __future__ import annotations

import pytest

from engine.data.schema import Context, QARecord
from engine.evaluation.hotpotqa import load_hotpotqa
from engine.rag.documents import Document

TITLE = "notes.md"


def make_collection(shared_data, limit: int = 24) -> tuple[list[QARecord], list[Document]]:
    """QA records of the first ``limit`` HotpotQA questions, and their gold paragraphs as documents."""
    records, docs = [], {}
    for n, item in enumerate(load_hotpotqa(shared_data / "hotpotqa-dev.jsonl", limit=limit)):
        gold = [(t, text) for t, text in item.paragraphs if t in item.supporting_titles]
        ids = [f"doc-{n}-{k}" for k in range(len(gold))]
        for doc_id, (_, text) in zip(ids, gold, strict=True):
            docs[doc_id] = Document(doc_id, TITLE, text, f"{doc_id}.md")
        contexts = tuple(Context(TITLE, text, doc_id) for doc_id, (_, text) in zip(ids, gold, strict=True))
        records.append(QARecord(item.question, item.answer, contexts, tuple(ids), {"source": "people"}))
    return records, list(docs.values())


@pytest.fixture(scope="session")
def collection_records(shared_data):
    """``make(limit)``: see :func:`make_collection`."""
    return lambda limit=24: make_collection(shared_data, limit)


@pytest.fixture
def collection(settings, store, shared_data):
    """A split dataset ``notes-qa`` and its knowledge base ``notes``; returns the version id."""
    from engine.data.splits import split_records
    from engine.data.versions import DatasetStore
    from engine.rag.ingest import ingest_documents

    records, docs = make_collection(shared_data)
    ingest_documents(store, "notes", docs)
    split = [r for rows in split_records(records).values() for r in rows]
    return DatasetStore(settings).save("notes-qa", split).id
