"""The pool retriever (HotpotQA's distractor setting) on real questions with the bundled embedder."""

import pytest

from engine.errors import InputError
from engine.evaluation.hotpotqa import load_hotpotqa
from engine.rag.retriever import PoolRetriever


def spaced_items(shared_data):
    """Real questions whose text ends or starts with white space (62 of the 1,000 do)."""
    items = [it for it in load_hotpotqa(shared_data / "hotpotqa-dev.jsonl") if it.question != it.question.strip()]
    assert items, "the shared file has questions with surrounding white space"
    return items[:3]


def test_questions_with_surrounding_space_find_their_pool(shared_data, embedder):
    items = spaced_items(shared_data)
    retriever = PoolRetriever(embedder, {it.question: it.paragraphs for it in items})
    # The pipeline strips what it is asked; the raw form must match as well.
    for asked in ([it.question.strip() for it in items], [it.question for it in items]):
        hits = retriever.retrieve(asked, 5)
        for item, found in zip(items, hits, strict=True):
            assert len(found) == 5
            assert {h.title for h in found} <= {title for title, _ in item.paragraphs}
            scores = [h.score for h in found]
            assert scores == sorted(scores, reverse=True)


def test_a_question_without_a_pool_is_an_error(shared_data, embedder):
    items = spaced_items(shared_data)
    retriever = PoolRetriever(embedder, {it.question: it.paragraphs for it in items})
    with pytest.raises(InputError, match="No passages"):
        retriever.retrieve(["a question nobody gave passages for?"], 5)
