"""Fixtures of the dataset tests: real HotpotQA items as records, and the real embedder with a memo."""

from __future__ import annotations

import pytest

from engine.evaluation.hotpotqa import load_hotpotqa
from engine.qa.schema import Context, QARecord


@pytest.fixture(scope="session")
def hotpot_records(shared_data):
    """``make(limit, label)``: HotpotQA items as records, gold paragraphs as contexts, supporting titles
    as documents, and the item's type (bridge / comparison) in ``metadata[label]``."""

    def make(limit: int, label: str = "topic") -> list[QARecord]:
        records = []
        for item in load_hotpotqa(shared_data / "hotpotqa-dev.jsonl", limit=limit):
            gold = tuple(Context(t, text, t) for t, text in item.paragraphs if t in item.supporting_titles)
            records.append(QARecord(item.question, item.answer, gold, item.supporting_titles, {label: item.type}))
        return records

    return make


class CachedEmbed:
    """The real embedder, each text embedded once per module; ``calls`` counts the calls."""

    def __init__(self, embedder):
        self.embedder, self.vectors, self.calls = embedder, {}, 0

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        self.vectors.update(zip(missing, self.embedder.embed(missing), strict=True))
        return [self.vectors[t] for t in texts]


@pytest.fixture(scope="module")
def embed(embedder) -> CachedEmbed:
    return CachedEmbed(embedder)
