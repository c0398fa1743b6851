"""The embedder's batching: texts encoded shortest first, vectors returned in the order given."""

import json
from itertools import islice

import numpy as np


def test_vectors_come_back_in_order_whatever_the_batching(shared_data, embedder):
    with (shared_data / "wiki-passages.jsonl").open(encoding="utf-8") as f:
        passages = [json.loads(line)["text"] for line in islice(f, 40)]
    texts = [p[: 20 + 37 * i % 900] for i, p in enumerate(passages)]  # lengths from 20 to 900 characters, mixed
    assert sorted(texts, key=len) != texts
    progress = []
    vectors = np.array(embedder.embed(texts, on_progress=lambda done, total: progress.append((done, total))))
    alone = np.array([embedder.encoder.encode([t])[0] for t in texts])
    np.testing.assert_allclose(vectors, alone, atol=2e-5)
    assert progress[-1] == (len(texts), len(texts))
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
