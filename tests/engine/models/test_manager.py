"""The model manager with the bundled model: memory freed on unload, LRU eviction, hot-swap."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from engine.errors import InputError
from engine.models.generation import SamplingSpec, load_generator
from engine.models.manager import ModelManager, model_bytes, rss_gb
from engine.models.spec import DEFAULT_MODEL

FP32 = replace(DEFAULT_MODEL, dtype="float32", device="cpu")
BF16 = replace(DEFAULT_MODEL, dtype="bfloat16", device="cpu")
QUESTION = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture
def manager(session_settings):
    return ModelManager(lambda spec: load_generator(spec, session_settings), budget_gb=4.0, default=BF16)


def test_unload_gives_the_memory_back(manager):
    # A first load and unload makes the one-time allocations (tokenizer, caches); the second
    # is measured. bfloat16 weights are a converted copy in anonymous memory; float32 ones map
    # the safetensors file and count in RSS only once touched.
    manager.get(BF16)
    manager.unload(BF16)
    before = rss_gb()
    generator = manager.get(BF16)
    size = model_bytes(generator.model) / 1024**3
    assert size == pytest.approx(0.25, abs=0.05)  # 135M bfloat16 weights (tied embeddings counted once)
    del generator
    loaded = rss_gb()
    assert loaded - before > 0.6 * size
    event = manager.unload(BF16)
    assert manager.loaded() == []
    assert event.kind == "unload" and event.rss_before_gb == pytest.approx(loaded, abs=0.05)
    assert event.rss_after_gb - before < 0.5 * (loaded - before), (before, loaded, event)
    with pytest.raises(InputError, match="not loaded"):
        manager.unload(BF16)


def test_least_recently_used_model_is_evicted_under_the_budget(manager):
    manager.budget_gb = 0.7  # room for the float32 model (0.5 GB) or the bfloat16 one (0.25 GB), not both
    manager.get(FP32)
    manager.get(BF16)
    assert [s.spec for s in manager.loaded()] == [BF16]
    assert [e.kind for e in manager.events] == ["load", "load", "evict"]
    manager.budget_gb = 1.0
    manager.get(FP32)
    manager.get(BF16)  # used again: now the most recent
    assert [s.spec for s in manager.loaded()] == [FP32, BF16]
    assert manager.used_gb() == pytest.approx(0.75, abs=0.1)


def test_hot_swap_lets_a_running_generation_finish_on_the_old_model(manager):
    manager.budget_gb = 0.6  # the new model evicts the old one
    manager.activate(FP32)
    started, results = threading.Event(), {}

    def answer() -> None:
        with manager.use() as generator:
            started.set()
            results["model"] = generator.loaded.spec
            results["text"] = generator.generate([QUESTION], SamplingSpec(max_new_tokens=24))[0].text

    worker = threading.Thread(target=answer)
    worker.start()
    started.wait(30)
    manager.activate(BF16)  # while the float32 model is generating
    assert manager.active_spec == BF16 and [s.spec for s in manager.loaded()] == [BF16]
    worker.join(120)
    assert results["model"] == FP32 and results["text"].strip()
    kinds = [e.kind for e in manager.events]
    assert kinds[:2] == ["load", "swap"] and "evict" in kinds and kinds[-1] == "release"
    with manager.use() as generator:
        assert generator.loaded.spec == BF16


def test_no_active_model_is_a_clear_error(session_settings):
    empty = ModelManager(lambda spec: load_generator(spec, session_settings), budget_gb=1.0)
    with pytest.raises(InputError, match="No model is active"), empty.use():
        pass
