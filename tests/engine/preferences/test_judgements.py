"""Pairs from the local judge's saved verdicts on an A/B experiment: only answers picked in both orders."""

from __future__ import annotations

import pytest

from engine.ab.judging import save_judge
from engine.errors import InputError
from engine.evaluation.judge import DEFAULT_JUDGE, judge_from_texts
from engine.preferences.judgements import judge_pairs
from engine.qa.preference import origin_of, rejected_of
from tests.support.experiments import messages, save_experiment

# The judge's replies with base's answer first, then with tuned's first, item by item (q000-q004).
A_FIRST = ["1", "2", "1", "tie", "Answer 2 is better"]
B_FIRST = ["2", "1", "1", "2", "1"]
# q000: base both times; q001: tuned both times; q002: position 1 both times (a flip: tie);
# q003: a tie in one order (tie); q004: tuned both times ("Answer 2" with base first, then position 1).


def judge(settings, experiment: str, a: str = "base", b: str = "tuned", model: str = "judge-model") -> None:
    found = judge_from_texts(A_FIRST, B_FIRST, a=a, b=b, item_ids=[f"q{k:03d}" for k in range(5)], model=model)
    save_judge(experiment, found, DEFAULT_JUDGE, True, settings)


def test_only_answers_picked_in_both_orders_make_pairs(settings):
    experiment = save_experiment(settings, 5)
    judge(settings, experiment)
    found = judge_pairs(experiment, settings)
    assert dict(found.skipped) == {"tie": 2}
    pairs = {p.metadata["detail"]["item_id"]: p for p in found.pairs}
    assert set(pairs) == {"q000", "q001", "q004"} and all(origin_of(p) == "judge" for p in found.pairs)
    base_won, tuned_won = pairs["q000"], pairs["q001"]
    assert (base_won.answer, rejected_of(base_won)) == ("Answer: base answer 0.", "tuned answer 0")
    assert (tuned_won.answer, rejected_of(tuned_won)) == ("tuned answer 1", "Answer: base answer 1.")
    detail = tuned_won.metadata["detail"]
    assert (detail["judge"], detail["verdict_a_first"], detail["verdict_b_first"]) == ("judge-model", "2", "1")
    assert (detail["reply_a_first"], detail["reply_b_first"]) == ("2", "1")
    assert (detail["chosen_variant"], detail["rejected_variant"], detail["experiment"]) == ("tuned", "base", experiment)
    assert tuned_won.metadata["messages"] == messages(1) and tuned_won.metadata["reference"] == "gold 1"
    assert found.sources == [
        {"description": f"the local judge on A/B experiment {experiment!r}", "experiment": experiment,
         "judged": ["base vs tuned"]}
    ]  # fmt: skip


def test_the_pair_judged_in_the_other_order_gives_the_same_verdicts(settings):
    experiment = save_experiment(settings, 5)
    judge(settings, experiment, a="tuned", b="base")  # A is tuned now: the same replies pick the other variant
    pairs = {p.metadata["detail"]["item_id"]: p for p in judge_pairs(experiment, settings).pairs}
    assert set(pairs) == {"q000", "q001", "q004"}
    assert pairs["q000"].metadata["detail"]["chosen_variant"] == "tuned"
    assert pairs["q001"].metadata["detail"]["chosen_variant"] == "base"


def test_an_experiment_without_a_judgement_is_a_message(settings):
    experiment = save_experiment(settings, 3)
    with pytest.raises(InputError, match="has not been judged"):
        judge_pairs(experiment, settings)
