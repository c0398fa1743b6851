"""EM/F1 against hand-computed cases from the official HotpotQA definitions; retrieval metrics."""

import math

import pytest

from engine.evaluation.metrics import (
    Sample,
    answer_in_context,
    context_utilization,
    exact_match,
    f1,
    f1_precision_recall,
    ndcg_at_k,
    normalize_answer,
    recall_at_k,
    reciprocal_rank,
    score_sample,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  A  cat, an apple and THE dog. ", "cat apple and dog"),
        ("Theatre", "theatre"),  # 'the' is removed only as a whole word
        ("U.S.A.", "usa"),
        ("", ""),
    ],
)
def test_normalization_is_squad_hotpotqa(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_after_normalization():
    assert exact_match("the Eiffel Tower.", "Eiffel Tower") == 1.0
    assert exact_match("Eiffel", "Eiffel Tower") == 0.0


def test_f1_hand_computed():
    # prediction tokens: [paris, france]; gold: [paris]: P = 1/2, R = 1, F1 = 2/3
    assert f1_precision_recall("Paris, France", "Paris") == pytest.approx((2 / 3, 0.5, 1.0))
    # gold normalizes to [city, of, new, york]; all 3 predicted tokens match: P = 1, R = 3/4, F1 = 6/7
    assert f1("new york city", "the city of new york") == pytest.approx(6 / 7)
    # 2 of 3 predicted tokens in the 4-token gold: P = 2/3, R = 1/2, F1 = 4/7
    assert f1("new york state", "the city of new york") == pytest.approx(4 / 7)
    # repeated tokens count with multiplicity (Counter intersection): common = 1
    assert f1("the the paris paris", "paris") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert f1("London", "Paris") == 0.0
    assert f1("", "Paris") == 0.0


def test_f1_yes_no_rule():
    # HotpotQA: if either side is yes/no/noanswer and they differ, F1 is 0 even with overlap
    assert f1("yes no", "yes") == 0.0
    assert f1("no", "no") == 1.0
    assert f1("yes it is", "yes") == 0.0
    assert f1("Yes.", "yes") == 1.0


def test_recall_mrr_ndcg_hand_computed():
    retrieved = ["A", "X", "B", "Y", "Z"]
    gold = ["A", "B"]
    assert recall_at_k(retrieved, gold, 2) == 0.5
    assert recall_at_k(retrieved, gold, 5) == 1.0
    assert recall_at_k(retrieved, [], 5) == 0.0
    assert reciprocal_rank(retrieved, gold) == 1.0
    assert reciprocal_rank(["X", "Y", "B"], gold) == pytest.approx(1 / 3)
    assert reciprocal_rank(["X"], gold) == 0.0
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3)
    assert ndcg_at_k(retrieved, gold, 5) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(["A", "B"], gold, 5) == pytest.approx(1.0)
    # a repeated relevant title (two chunks of one paragraph) counts once
    assert ndcg_at_k(["A", "A"], gold, 5) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_context_metrics():
    context = "Paris is the capital of France."
    assert context_utilization("Paris", context) == 1.0
    assert context_utilization("Paris and Berlin", context) == pytest.approx(1 / 3)  # only paris
    assert answer_in_context("the capital", context) == 1.0
    assert answer_in_context("Berlin", context) == 0.0
    assert answer_in_context("yes", context) == 1.0


def test_score_sample_registry():
    sample = Sample("Paris", "Paris", ("France", "Paris"), ("Paris",), "Paris is a city.")
    closed = score_sample(sample, with_retrieval=False)
    assert set(closed) == {"em", "f1"}
    full = score_sample(sample, with_retrieval=True)
    assert full["em"] == 1.0 and full["recall@5"] == 1.0 and full["recall@2"] == 1.0
    assert full["mrr"] == 0.5
