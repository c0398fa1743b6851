"""The on-disk embedding cache: real MiniLM vectors in a real SQLite file in a temp data dir."""

from __future__ import annotations

import hashlib
import json
import threading
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from engine.rag.embedder import EmbedderSpec
from engine.rag.embedding_cache import CachedEmbedder, cache_path, text_key


class CountingEmbedder:
    """The real embedder, recording every text it is asked to embed."""

    def __init__(self, inner):
        self.inner = inner
        self.spec = inner.spec
        self.calls: list[list[str]] = []

    @property
    def texts(self) -> list[str]:
        return [t for call in self.calls for t in call]

    def embed(self, texts, on_progress=None):
        self.calls.append(list(texts))
        return self.inner.embed(texts, on_progress)


class HashEmbedder:
    """Deterministic vectors from a text's hash: stands in for a model where only storage is tested."""

    spec = EmbedderSpec(name="hash-8")

    def embed(self, texts, on_progress=None):
        return [list(np.frombuffer(hashlib.sha256(t.encode()).digest(), dtype=np.uint8)[:8] / 255.0) for t in texts]


@pytest.fixture(scope="module")
def passages(shared_data: Path) -> list[str]:
    with (shared_data / "wiki-passages.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in islice(f, 12)]


@pytest.mark.slow
def test_vectors_match_the_embedder_and_survive_a_restart(settings, embedder, passages) -> None:
    counting = CountingEmbedder(embedder)
    cached = CachedEmbedder(counting, settings)
    assert cached.spec == embedder.spec
    assert cached.path == settings.data_dir / "embeddings" / "all-minilm-l6-v2.sqlite"
    texts = passages[:6] + [passages[0]]  # a repeated text is embedded once
    progress: list[tuple[int, int]] = []

    vectors = cached.embed(texts, on_progress=lambda done, total: progress.append((done, total)))
    assert (cached.hits, cached.misses) == (0, 7)
    assert sorted(counting.texts) == sorted(passages[:6])  # each once (shortest first)
    assert progress[-1] == (7, 7)
    direct = embedder.embed(texts)
    np.testing.assert_allclose(np.array(vectors), np.array(direct), atol=1e-6)
    assert vectors[0] == vectors[6]
    assert len(cached) == 6 and cached.path.is_file()

    again = cached.embed(texts)
    assert (cached.hits, cached.misses) == (7, 0)
    assert len(counting.calls) == 1  # no new call
    assert again == vectors  # hit and miss give the very same float32 values

    restarted = CachedEmbedder(CountingEmbedder(embedder), settings)
    mixed = restarted.embed(passages[4:9])
    assert (restarted.hits, restarted.misses) == (2, 3)
    assert sorted(restarted.embedder.texts) == sorted(passages[6:9])  # only the missing texts reach the model
    np.testing.assert_allclose(np.array(mixed), np.array(embedder.embed(passages[4:9])), atol=1e-6)
    restarted.embed(passages[:2])
    assert (restarted.total_hits, restarted.total_misses) == (4, 3)
    assert len(restarted) == 9


def test_an_empty_call_and_the_cache_file_name(settings) -> None:
    cached = CachedEmbedder(HashEmbedder(), settings)
    assert cached.embed([]) == []
    assert (cached.hits, cached.misses) == (0, 0)
    assert cached.path == cache_path(settings, "hash-8") == settings.data_dir / "embeddings" / "hash-8.sqlite"
    assert cache_path(settings, "org/model name").name == "org_model_name.sqlite"
    assert text_key("a") != text_key("a ")  # texts are keyed exactly as given


def test_many_texts_are_embedded_in_batches_and_saved_as_they_go(settings, monkeypatch) -> None:
    import engine.rag.embedding_cache as module

    monkeypatch.setattr(module, "EMBED_BATCH", 4)
    inner = HashEmbedder()
    calls: list[int] = []
    original = inner.embed

    def failing_embed(texts, on_progress=None):
        calls.append(len(texts))
        if len(calls) == 3:
            raise RuntimeError("the job was cancelled")
        return original(texts)

    inner.embed = failing_embed
    cached = CachedEmbedder(inner, settings)
    texts = [f"passage {i}" for i in range(10)]
    with pytest.raises(RuntimeError):
        cached.embed(texts)
    assert calls == [4, 4, 2]
    assert len(cached) == 8  # the two finished batches were kept
    inner.embed = original
    vectors = cached.embed(texts)
    assert (cached.hits, cached.misses) == (8, 2)
    np.testing.assert_allclose(np.array(vectors), np.array(original(texts)), atol=1e-6)


def test_concurrent_writers_share_one_file(settings) -> None:
    texts = [f"text number {i}" for i in range(300)]
    errors: list[BaseException] = []

    def work(start: int) -> None:
        try:
            CachedEmbedder(HashEmbedder(), settings).embed(texts[start : start + 150])
        except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in (0, 50, 100, 150)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    cached = CachedEmbedder(HashEmbedder(), settings)
    assert len(cached) == 300
    vectors = cached.embed(texts)
    assert cached.hits == 300
    np.testing.assert_allclose(np.array(vectors), np.array(HashEmbedder().embed(texts)), atol=1e-6)
