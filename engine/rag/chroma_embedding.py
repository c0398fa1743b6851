"""Chroma's view of our embedder (kept apart so that the embedder itself needs no chromadb)."""

from __future__ import annotations

from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from engine.rag.embedder import DEFAULT_BATCH, Embedder, EmbedderSpec


@register_embedding_function
class StudioEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma's view of our embedder, so Chroma never falls back to its downloading default."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder

    def __call__(self, input: Documents) -> Embeddings:
        return [np.asarray(v, dtype=np.float32) for v in self.embedder.embed(list(input))]

    @staticmethod
    def name() -> str:
        return "studio-sentence-transformers"

    def get_config(self) -> dict[str, Any]:
        spec = self.embedder.spec
        return {"name": spec.name, "source": spec.source, "batch_size": spec.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> StudioEmbeddingFunction:
        spec = EmbedderSpec(config["name"], config["source"], batch_size=config.get("batch_size", DEFAULT_BATCH))
        return StudioEmbeddingFunction(Embedder.shared(spec))

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "ip", "l2"]
