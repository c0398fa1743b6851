"""An on-disk cache of embeddings, so that a text is embedded once per embedder, ever.

Vectors live in one SQLite file per embedder, ``data_dir/embeddings/<embedder name>.sqlite``,
keyed by the sha256 of the text and stored as float32 bytes. The file uses WAL and short
transactions, so the app and a background job can share it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from engine.rag.embedder import Embedder
from engine.settings import Settings
from engine.sqlite_wal import ensure_wal

LOOKUP_BATCH = 500  # keys per SELECT: well under SQLite's limit on bound variables
EMBED_BATCH = 256  # texts per call to the wrapped embedder; each batch is saved before the next
_TIMEOUT_S = 30.0  # how long a writer waits for the other process's transaction


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_path(settings: Settings, embedder_name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", embedder_name) or "embedder"
    return settings.data_dir / "embeddings" / f"{safe}.sqlite"


class CachedEmbedder:
    """Wraps an embedder (``.spec``, ``.embed``): only texts never embedded before reach it.

    ``hits`` / ``misses`` count the texts of the last :meth:`embed` call found in / missing from
    the cache; ``total_hits`` / ``total_misses`` count them over this object's life. A text that
    appears twice in one call is embedded once.
    """

    def __init__(self, embedder, settings: Settings, path: Path | None = None):
        self.embedder = embedder
        self.path = Path(path) if path else cache_path(settings, embedder.spec.name)
        self.hits = self.misses = 0
        self.total_hits = self.total_misses = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ensure_wal(self.path, _TIMEOUT_S)
        with self.connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")

    @property
    def spec(self):
        return self.embedder.spec

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection whose ``with`` block is one transaction (committed on success)."""
        db = sqlite3.connect(self.path, timeout=_TIMEOUT_S)
        try:
            with db:
                yield db
        finally:
            db.close()

    def lookup(self, keys: Sequence[str]) -> dict[str, list[float]]:
        """The cached vectors of ``keys`` (missing keys are absent)."""
        found: dict[str, list[float]] = {}
        with self.connect() as db:
            for start in range(0, len(keys), LOOKUP_BATCH):
                batch = list(keys[start : start + LOOKUP_BATCH])
                marks = ",".join("?" * len(batch))
                for key, blob in db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", batch):
                    found[key] = np.frombuffer(blob, dtype=np.float32).tolist()
        return found

    def save(self, keys: Sequence[str], vectors: Sequence[Sequence[float]]) -> None:
        rows = [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in zip(keys, vectors, strict=True)]
        with self.connect() as db:
            db.executemany("INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        with self.connect() as db:
            return db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]

    def embed(self, texts: Sequence[str], on_progress: Callable[[int, int], None] | None = None) -> list[list[float]]:
        """Vectors for ``texts`` in order, from the cache where possible; ``on_progress(done, total)``.

        Every vector goes through float32, so a text gets the same vector whether it was a hit or
        a miss.
        """
        texts = list(texts)
        keys = [text_key(t) for t in texts]
        vectors = self.lookup(list(dict.fromkeys(keys)))
        self.hits = sum(k in vectors for k in keys)
        self.misses = len(keys) - self.hits
        self.total_hits += self.hits
        self.total_misses += self.misses
        missing = list({k: t for k, t in zip(keys, texts, strict=True) if k not in vectors}.items())
        missing.sort(key=lambda kt: len(kt[1]))  # similar lengths share a batch: see Embedder.embed
        done = self.hits
        if on_progress and done:
            on_progress(done, len(texts))
        for start in range(0, len(missing), EMBED_BATCH):
            batch = missing[start : start + EMBED_BATCH]
            fresh = self.embedder.embed([t for _, t in batch])
            self.save([k for k, _ in batch], fresh)  # saved per batch: a cancelled job keeps its work
            for (key, _), vector in zip(batch, fresh, strict=True):
                vectors[key] = np.asarray(vector, dtype=np.float32).tolist()
            embedded = {key for key, _ in batch}
            done += sum(k in embedded for k in keys)  # a repeated text is done with its first copy
            if on_progress:
                on_progress(done, len(texts))
        return [vectors[k] for k in keys]


def cached_embedder(settings: Settings, embedder=None) -> CachedEmbedder:
    """``embedder`` (default: the process's shared one) behind the on-disk cache: texts embedded
    once are free afterwards. An embedder that is already cached is returned as it is."""
    if isinstance(embedder, CachedEmbedder):
        return embedder
    if embedder is None:
        embedder = Embedder.shared()
    return CachedEmbedder(embedder, settings)
