"""The lean transformers encoder gives the same vectors as sentence-transformers itself."""

import numpy as np

from engine.models.spec import resolve_source
from engine.rag.embedder import EmbedderSpec
from engine.rag.encoder import SentenceTransformersEncoder, TransformersEncoder, is_simple


def test_lean_encoder_matches_sentence_transformers(shared_data, tmp_path):
    import json

    folder = resolve_source(EmbedderSpec().source)
    from pathlib import Path

    assert is_simple(Path(folder))
    texts = [json.loads(line)["text"] for line in (shared_data / "wiki-passages.jsonl").open()][:12]
    texts += ["short", "What is the Studio for?", "word " * 400]  # the last one is truncated at 256 tokens
    lean = TransformersEncoder(Path(folder), "cpu").encode(texts)
    reference = SentenceTransformersEncoder(folder, "cpu").encode(texts)
    assert lean.shape == reference.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(lean, axis=1), 1.0, atol=1e-5)
    assert np.abs(lean - reference).max() < 1e-4


def test_folders_that_need_the_library(tmp_path):
    assert not is_simple(tmp_path)  # no modules.json
    (tmp_path / "modules.json").write_text(
        '[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},'
        '{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},'
        '{"idx":2,"name":"2","path":"2_Dense","type":"sentence_transformers.models.Dense"}]'
    )
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    assert not is_simple(tmp_path)  # a Dense layer: sentence-transformers handles it
