"""Retrievers: a knowledge base in the store, or an in-memory pool of passages per question."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError
from engine.rag.embedder import Embedder
from engine.rag.hits import Hit
from engine.rag.store import KnowledgeBaseStore


@dataclass
class KnowledgeBaseRetriever:
    """Top-k chunks of one knowledge base."""

    store: KnowledgeBaseStore
    kb: str

    def retrieve(self, questions: Sequence[str], k: int) -> list[list[Hit]]:
        return self.store.query(self.kb, questions, k)


@dataclass
class PoolRetriever:
    """Top-k passages from each question's own pool (HotpotQA's distractor setting).

    ``pools`` maps a question to its (title, text) passages. Passages are embedded once,
    up front, and shared between pools that contain the same text. Questions are matched
    without surrounding white space, since the pipeline strips what it is asked.
    """

    embedder: Embedder
    pools: Mapping[str, Sequence[tuple[str, str]]]

    def __post_init__(self) -> None:
        # 62 of the 1,000 shared HotpotQA questions end in a space; keyed as given, they found
        # no pool and were answered without sources.
        self.pools = {question.strip(): pool for question, pool in self.pools.items()}
        texts = list(dict.fromkeys(text for pool in self.pools.values() for _, text in pool))
        vectors = self.embedder.embed(texts) if texts else []
        self.vectors = {t: np.asarray(v) for t, v in zip(texts, vectors, strict=True)}

    def retrieve(self, questions: Sequence[str], k: int) -> list[list[Hit]]:
        query_vectors = np.asarray(self.embedder.embed(list(questions)))
        results = []
        for question, qv in zip(questions, query_vectors, strict=True):
            pool = self.pools.get(question.strip())
            if pool is None:
                raise InputError(f"No passages were given for the question {question!r}.")
            scores = [float(self.vectors[text] @ qv) for _, text in pool]
            order = sorted(range(len(pool)), key=lambda i: -scores[i])[:k]
            results.append(
                [
                    Hit(id=pool[i][0], title=pool[i][0], text=pool[i][1], source="context", score=scores[i])
                    for i in order
                ]
            )
        return results
