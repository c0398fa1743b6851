"""Pairs from Human Eval sessions: scripted raters on a session built from a saved A/B experiment (majority,
agreement, ties, both bad on the review list), rows without prompts, and a session built from two evaluation
runs logged to MLflow."""

from __future__ import annotations

import pytest

from engine.evaluation.runner import EvalResult, EvalSpec, log_evaluation
from engine.preferences import human_pairs, review_items
from engine.qa.preference import is_pair, origin_of, rejected_of
from engine.qa.schema import Context
from engine.ratings import Rating, RatingStore
from engine.ratings.sources import session_from_experiment, session_from_runs
from tests.support.experiments import messages, save_experiment

RATERS = ("ann", "bob", "cy")
# Six ways three raters vote on an item (k % 6), in variant names: a variant, tie or both_bad.
PATTERNS = [
    ("base", "base", "base"),  # a pair, base chosen, all agree
    ("tuned", "tuned", "base"),  # a pair, tuned chosen, 2 of 3
    ("base", "tuned", "tie"),  # no majority
    ("tie", "tie", "tie"),  # a tie
    ("both_bad", "both_bad", "base"),  # both bad: on the review list
    ("tie", "tie", "tuned"),  # a tie by majority
]
SCRIPTED, UNRATED, ALONE = 60, (60, 61), 62  # items 0-59 by the patterns; 60, 61 unrated; 62 ann alone


def vote(store: RatingStore, session_id: str, k: int, rater: str, verdict: str) -> None:
    item_id = f"q{k:03d}"
    if verdict in ("base", "tuned"):
        verdict = "left" if store.reveal(session_id, item_id)["left"] == verdict else "right"
    assert store.submit(Rating(session_id, item_id, rater, verdict))


@pytest.fixture
def rated(settings) -> tuple[RatingStore, str]:
    """A 63-item session of the experiment, rated by three scripted raters."""
    store = RatingStore(settings.data_dir / "ratings.db")
    session_id = session_from_experiment(store, settings, save_experiment(settings, 63), "base", "tuned", seed=3)
    for k in range(SCRIPTED):
        for rater, verdict in zip(RATERS, PATTERNS[k % 6], strict=True):
            vote(store, session_id, k, rater, verdict)
    vote(store, session_id, ALONE, "ann", "tuned")
    return store, session_id


def test_scripted_raters_give_pairs_by_majority_with_their_agreement(settings, rated):
    store, session_id = rated
    found = human_pairs(store, session_id, settings)
    assert len(found.pairs) == 10 + 10 + 1 and all(is_pair(p) and origin_of(p) == "human" for p in found.pairs)
    assert dict(found.skipped) == {"split": 10, "tie": 20, "both_bad": 10, "unrated": 2}
    by_item = {p.metadata["detail"]["item_id"]: p for p in found.pairs}
    expected = {f"q{k:03d}" for k in range(SCRIPTED) if k % 6 in (0, 1)} | {f"q{ALONE:03d}"}
    assert set(by_item) == expected

    unanimous, two_of_three, alone = by_item["q000"], by_item["q001"], by_item[f"q{ALONE:03d}"]
    # the answers as the models wrote them, for the prompt both were asked in
    assert (unanimous.answer, rejected_of(unanimous)) == ("Answer: base answer 0.", "tuned answer 0")
    assert (two_of_three.answer, rejected_of(two_of_three)) == ("tuned answer 1", "Answer: base answer 1.")
    assert two_of_three.metadata["messages"] == messages(1)
    assert two_of_three.contexts == (Context("", "passage one 1"), Context("", "passage two 1"))
    assert two_of_three.metadata["reference"] == "gold 1"
    detail = two_of_three.metadata["detail"]
    assert detail["votes"] == {"ann": "tuned", "bob": "tuned", "cy": "base"}
    assert (detail["raters"], detail["agreement"]) == (["ann", "bob", "cy"], 0.6667)
    assert (detail["chosen_variant"], detail["rejected_variant"]) == ("tuned", "base")
    assert (detail["session"], detail["prompt"], detail["text"]) == (session_id, "exact", "raw")
    assert unanimous.metadata["detail"]["agreement"] == 1.0
    assert alone.metadata["detail"]["votes"] == {"ann": "tuned"}


def test_items_both_answers_of_which_the_majority_found_bad_are_on_the_review_list(settings, rated):
    store, session_id = rated
    review = human_pairs(store, session_id, settings).review
    assert [r.item_id for r in review] == [f"q{k:03d}" for k in range(SCRIPTED) if k % 6 == 4]
    first = review[0]
    assert first.question == "Question 4?" and first.answers == {"base": "base answer 4", "tuned": "tuned answer 4"}
    assert first.votes == {"ann": "both_bad", "bob": "both_bad", "cy": "base"} and first.raters == list(RATERS)
    assert first.session_id == session_id and first.reference == "gold 4" and first.context.startswith("passage one 4")
    assert review_items(store, session_id) == review  # the same list without building pairs


def test_rows_without_prompts_give_the_shown_answers_and_no_messages(settings):
    store = RatingStore(settings.data_dir / "ratings.db")
    experiment = save_experiment(settings, 4, with_prompts=False)
    session_id = session_from_experiment(store, settings, experiment, "base", "tuned")
    for k in range(4):
        vote(store, session_id, k, "ann", "base")
    found = human_pairs(store, session_id, settings)
    assert len(found.pairs) == 4
    pair = next(p for p in found.pairs if p.metadata["detail"]["item_id"] == "q002")
    assert (pair.answer, rejected_of(pair)) == ("base answer 2", "tuned answer 2")
    assert "messages" not in pair.metadata  # training rebuilds the prompt from the question and contexts
    assert pair.metadata["detail"]["prompt"] == "rebuilt" and pair.metadata["detail"]["text"] == "shown"
    assert pair.contexts == (Context("", "passage one 2"), Context("", "passage two 2"))


def test_a_session_of_two_evaluation_runs_finds_the_prompts_in_their_tables(settings, tracker, shared_data):
    runs = []
    for variant in ("good", "poor"):
        rows = [
            {
                "id": f"h{k}",
                "question": f"Q{k}?",
                "gold": "g",
                "prediction": f"{variant} {k}",
                "raw": f"{variant} {k}.",
                "em": 0.0,
                "f1": 0.0,
                "messages": messages(k) if k else None,
            }
            for k in range(3)
        ]  # fmt: skip  (h0: a row logged without its prompt)
        result = EvalResult(EvalSpec(limit=3), {"em": 0.0, "f1": 0.0}, rows, 1.0)
        runs.append(log_evaluation(tracker, result, "m", {"data_path": str(shared_data / "hotpotqa-dev.jsonl")}))
    store = RatingStore(settings.data_dir / "ratings.db")
    session_id = session_from_runs(store, tracker, runs[0], runs[1], ("good", "poor"))
    for k in range(3):
        side = "left" if store.reveal(session_id, f"h{k}")["left"] == "good" else "right"
        store.submit(Rating(session_id, f"h{k}", "ann", side))
    pairs = {p.metadata["detail"]["item_id"]: p for p in human_pairs(store, session_id, settings, tracker).pairs}
    assert (pairs["h1"].answer, rejected_of(pairs["h1"])) == ("good 1.", "poor 1.")
    assert pairs["h1"].metadata["messages"] == messages(1)
    assert (pairs["h0"].answer, pairs["h0"].metadata["detail"]["prompt"]) == ("good 0", "rebuilt")
