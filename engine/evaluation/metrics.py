"""Answer and retrieval metrics: pure functions in an explicit registry.

EM and F1 follow the official HotpotQA evaluation script (``hotpot_evaluate_v1.py``),
whose answer normalization is SQuAD's: lower case, drop punctuation, drop the articles
a/an/the, collapse white space. HotpotQA adds one rule to F1: if either side is
"yes", "no" or "noanswer" and the two differ, F1 is 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.text import normalize_answer, token_share

SPECIAL = ("yes", "no", "noanswer")


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_precision_recall(prediction: str, gold: str) -> tuple[float, float, float]:
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    if (pred in SPECIAL or ref in SPECIAL) and pred != ref:
        return 0.0, 0.0, 0.0
    pred_tokens, ref_tokens = pred.split(), ref.split()
    same = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if same == 0:
        return 0.0, 0.0, 0.0
    precision, recall = same / len(pred_tokens), same / len(ref_tokens)
    return 2 * precision * recall / (precision + recall), precision, recall


def f1(prediction: str, gold: str) -> float:
    return f1_precision_recall(prediction, gold)[0]


def recall_at_k(retrieved: Sequence[str], relevant: Sequence[str], k: int) -> float:
    """Share of the relevant titles found among the first ``k`` retrieved titles."""
    relevant_set = set(relevant)
    if not relevant_set:
        return 0.0
    return len(relevant_set & set(retrieved[:k])) / len(relevant_set)


def reciprocal_rank(retrieved: Sequence[str], relevant: Sequence[str]) -> float:
    """1/rank of the first relevant title; 0 when none is retrieved."""
    for rank, title in enumerate(retrieved, start=1):
        if title in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(retrieved: Sequence[str], relevant: Sequence[str], k: int) -> float:
    """Binary-relevance nDCG@k; a relevant title counts once (at its first position)."""
    relevant_set = set(relevant)
    if not relevant_set:
        return 0.0
    seen: set[str] = set()
    dcg = 0.0
    for rank, title in enumerate(retrieved[:k], start=1):
        if title in relevant_set and title not in seen:
            seen.add(title)
            dcg += 1.0 / math.log2(rank + 1)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(relevant_set)) + 1))
    return dcg / ideal


def context_utilization(prediction: str, context: str) -> float:
    """Share of the answer's (normalized) tokens that occur in the retrieved text."""
    return token_share(prediction, context)


def answer_in_context(gold: str, context: str) -> float:
    """1 if the normalized gold answer occurs in the normalized retrieved text."""
    answer = normalize_answer(gold)
    if not answer or answer in SPECIAL:
        return float(answer in SPECIAL)  # yes/no answers need no span in the context
    return float(f" {answer} " in f" {normalize_answer(context)} ")


@dataclass(frozen=True)
class Sample:
    """What one evaluated question produced: the inputs every metric may read."""

    prediction: str
    gold: str
    retrieved_titles: tuple[str, ...] = ()
    gold_titles: tuple[str, ...] = ()
    context: str = ""


Metric = Callable[[Sample], float]

ANSWER_METRICS: dict[str, Metric] = {
    "em": lambda s: exact_match(s.prediction, s.gold),
    "f1": lambda s: f1(s.prediction, s.gold),
}

RETRIEVAL_METRICS: dict[str, Metric] = {
    "recall@2": lambda s: recall_at_k(s.retrieved_titles, s.gold_titles, 2),
    "recall@5": lambda s: recall_at_k(s.retrieved_titles, s.gold_titles, 5),
    "mrr": lambda s: reciprocal_rank(s.retrieved_titles, s.gold_titles),
    "ndcg@5": lambda s: ndcg_at_k(s.retrieved_titles, s.gold_titles, 5),
    "context_utilization": lambda s: context_utilization(s.prediction, s.context),
    "answer_in_context": lambda s: answer_in_context(s.gold, s.context),
}


def score_sample(sample: Sample, with_retrieval: bool) -> dict[str, float]:
    """Every registered metric for one sample (retrieval metrics only when there was retrieval)."""
    metrics = dict(ANSWER_METRICS, **(RETRIEVAL_METRICS if with_retrieval else {}))
    return {name: fn(sample) for name, fn in metrics.items()}
