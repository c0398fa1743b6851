"""The embedding model is loaded on demand and unloaded when idle."""

from engine.rag.embedder import Embedder, EmbedderSpec


def test_an_idle_embedder_is_unloaded_and_loads_again_on_demand():
    spec = EmbedderSpec(name="idle-test", batch_size=8)
    embedder = Embedder.shared(spec)
    assert not embedder.is_loaded  # nothing loads until something is embedded
    first = embedder.embed(["a sentence about rivers"])
    assert embedder.is_loaded and embedder.loads == 1
    assert "idle-test" not in Embedder.unload_idle(idle_seconds=3600)
    embedder.last_used -= 120
    assert "idle-test" in Embedder.unload_idle(idle_seconds=60)
    assert not embedder.is_loaded
    again = embedder.embed(["a sentence about rivers"])
    assert embedder.is_loaded and embedder.loads == 2
    assert first == again
    Embedder.loaded.pop(spec)
