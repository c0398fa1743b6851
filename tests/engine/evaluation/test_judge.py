"""The pairwise judge: verdict parsing, combining both orders, the order swap with fake judges, one real run."""

import math
import re
from types import SimpleNamespace

import pytest

from engine.ab.judging import judge_experiment
from engine.ab.results import ExperimentResult, VariantResult
from engine.errors import InputError
from engine.evaluation.judge import JudgeSpec, judge_from_texts, judge_messages, judge_pairs
from engine.evaluation.verdicts import combine, parse_verdict, read_verdict


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", "1"),
        (" 2", "2"),
        (" Answer 1.", "1"),
        ("**Answer 2** is better because it names the city.", "2"),
        ("The first answer", "1"),
        ("the second one", "2"),
        ("Answer two", "2"),
        ("#1", "1"),
        ("tie", "tie"),
        ("Tie.", "tie"),
        ("Both answers are equally good.", "tie"),
        ("Neither", "tie"),
        ("Answer 1 and answer 2 are equally good", "tie"),
        ("2 is better than 1", "2"),
        ("Answer 1 is better than answer 2.", "1"),
        ("\n\n  Answer 2\nAnswer 1", "2"),  # the first line with words decides
        ("12", "tie"),  # not a position
        ("1.5 points", "tie"),
        ("", "tie"),
        ("I cannot decide.", "tie"),
        ("I think answer ii", "2"),
    ],
)
def test_parse_verdict(text, expected):
    assert parse_verdict(text) == expected


def test_unparseable_replies_are_flagged():
    assert read_verdict("I cannot decide.") == ("tie", False)
    assert read_verdict("") == ("tie", False)
    assert read_verdict("tie") == ("tie", True)
    assert read_verdict("Answer 2") == ("2", True)


def test_combine_keeps_a_verdict_that_picks_the_same_answer_in_both_orders():
    assert combine("1", "2") == ("A", False)  # A in position 1, then A in position 2
    assert combine("2", "1") == ("B", False)


def test_combine_turns_a_position_flip_into_a_tie():
    assert combine("1", "1") == ("tie", True)  # position 1 both times: A, then B
    assert combine("2", "2") == ("tie", True)


def test_combine_keeps_ties():
    for pair in (("tie", "tie"), ("tie", "1"), ("2", "tie"), ("1", "tie")):
        assert combine(*pair) == ("tie", False)
    with pytest.raises(InputError):
        combine("A", "1")


def test_rates_on_a_synthetic_list():
    first = ["1", "1", "2", "tie", "1", "garbage"]
    second = ["2", "1", "2", "1", "2", "2"]
    found = judge_from_texts(first, second, a="x", b="y")
    assert found.verdicts == ["A", "tie", "tie", "tie", "A", "tie"]
    assert found.flipped == [False, True, True, False, False, False]
    assert found.flip_rate == pytest.approx(2 / 6)
    assert (found.wins_a, found.wins_b, found.ties) == (2, 0, 4)
    assert found.unparsed == 1
    # decisive judgements: first order 1,1,2,1 and second order 2,1,2,1,2,2 -> 1 picked 5 times of 10
    assert found.position_1_rate == pytest.approx(5 / 10)
    summary = found.summary()
    assert summary["a"] == "x" and summary["items"] == 6 and summary["wins_a"] == 2 and summary["ties"] == 4


def test_items_not_judged_are_ties_outside_the_rates():
    found = judge_from_texts(["1", ""], ["1", ""], judged=[True, False])
    assert found.verdicts == ["tie", "tie"]
    assert found.flip_rate == 1.0  # one judged item, and it flipped
    assert found.unparsed == 0
    empty = judge_from_texts([], [])
    assert math.isnan(empty.flip_rate) and math.isnan(empty.position_1_rate)


def test_messages_hold_the_question_the_answers_in_order_and_the_reference():
    msgs = judge_messages("Where is the Eiffel Tower?", "Paris", "Rome", reference="Paris")
    user = next(m["content"] for m in msgs if m["role"] == "user")
    assert "Where is the Eiffel Tower?" in user
    assert user.index("Answer 1: Paris") < user.index("Answer 2: Rome")
    assert "Correct answer: Paris" in user
    assert msgs[-1]["role"] == "assistant"  # the reply's start
    without = judge_messages("Q?", "a", "b")
    assert "Correct answer" not in next(m["content"] for m in without if m["role"] == "user")
    bare = judge_messages("Q?", "a", "b", spec=JudgeSpec(prefill="", system=""))
    assert [m["role"] for m in bare] == ["user"]


def test_spec_checks_its_template():
    with pytest.raises(InputError, match="answer_2"):
        JudgeSpec(template="{question} {answer_1}")
    with pytest.raises(InputError, match="unknown fields"):
        JudgeSpec(template="{question} {answer_1} {answer_2} {gold}")
    with pytest.raises(InputError):
        JudgeSpec(max_new_tokens=0)
    assert JudgeSpec().model == ""  # the bundled model


class FakeJudge:
    """Answers each prompt with ``decide(answer_1, answer_2, reference)``; records the calls."""

    name = "fake-judge"

    def __init__(self, decide):
        self.decide = decide
        self.calls = []

    def generate(self, conversations, sampling, batch_size=8):
        self.calls.append((list(conversations), sampling, batch_size))
        out = []
        for conv in conversations:
            user = next(m["content"] for m in conv if m["role"] == "user")
            first = re.search(r"^Answer 1: (.*)$", user, re.M).group(1)
            second = re.search(r"^Answer 2: (.*)$", user, re.M).group(1)
            ref = re.search(r"^Correct answer: (.*)$", user, re.M)
            out.append(SimpleNamespace(text=self.decide(first, second, ref.group(1) if ref else "")))
        return out


PAIRS = [
    ("Capital of France?", "Paris", "Lyon", "Paris"),
    ("Largest planet?", "Saturn", "Jupiter", "Jupiter"),
    ("Author of Hamlet?", "William Shakespeare", "Marlowe", "Shakespeare"),
    ("Boiling point of water in C?", "90", "100", "100"),
]


def test_a_pure_position_bias_gives_only_ties():
    judge = FakeJudge(lambda first, second, ref: "1")
    found = judge_pairs(judge, PAIRS, batch_size=4)
    assert found.verdicts == ["tie"] * 4
    assert found.flip_rate == 1.0
    assert found.position_1_rate == 1.0
    assert (found.wins_a, found.wins_b, found.ties) == (0, 0, 4)
    # one batched, greedy call with both orders of every pair
    assert len(judge.calls) == 1
    conversations, sampling, batch_size = judge.calls[0]
    assert len(conversations) == 8 and batch_size == 4
    assert sampling.temperature == 0
    assert found.first_texts == ["1"] * 4 and found.second_texts == ["1"] * 4
    assert found.model == "fake-judge"


def test_a_judge_that_picks_the_gold_answer_is_order_independent():
    judge = FakeJudge(lambda first, second, ref: "Answer 1" if ref in first else "Answer 2")
    found = judge_pairs(judge, PAIRS, a="left", b="right", item_ids=["p", "q", "r", "s"])
    assert found.verdicts == ["A", "B", "A", "B"]
    assert found.flip_rate == 0.0
    assert found.position_1_rate == pytest.approx(0.5)
    assert (found.wins_a, found.wins_b) == (2, 2)
    assert [r["item_id"] for r in found.rows()] == ["p", "q", "r", "s"]
    assert found.rows()[0]["a_first"] == "Answer 1" and found.rows()[0]["b_first"] == "Answer 2"


def test_identical_answers_are_ties_without_asking_the_model():
    judge = FakeJudge(lambda first, second, ref: "1")
    found = judge_pairs(judge, [("Q?", "The Paris", "paris.", "Paris"), *PAIRS[:1]])
    assert found.verdicts == ["tie", "tie"]
    assert found.judged == [False, True]
    assert len(judge.calls[0][0]) == 2  # only the second pair, in both orders
    assert found.first_texts[0] == "" and found.flip_rate == 1.0
    judge = FakeJudge(lambda first, second, ref: "1")
    judge_pairs(judge, [("Q?", "same", "same", "")], spec=JudgeSpec(skip_identical=False))
    assert len(judge.calls[0][0]) == 2


def _experiment(n: int = 6) -> ExperimentResult:
    golds = [f"answer {i}" for i in range(n)]

    def variant(name: str, right: bool) -> VariantResult:
        rows = [{"item_id": f"q{i}", "question": f"Question {i}?", "gold": g, "prediction": g if right else "dunno",
                 "em": float(right), "f1": 100.0 * right, "latency_s": 0.1, "prompt_tokens": 10, "new_tokens": 2}
                for i, g in enumerate(golds)]  # fmt: skip
        return VariantResult(name, {}, rows)

    return ExperimentResult("exp", {}, {"weak": variant("weak", False), "strong": variant("strong", True)})


def test_judge_experiment_pairs_the_variants_by_item():
    judge = FakeJudge(lambda first, second, ref: "1" if ref and ref in first else "2")
    found = judge_experiment(judge, _experiment(), "weak", "strong")
    assert found.verdicts == ["B"] * 6 and found.flip_rate == 0.0
    assert (found.a, found.b) == ("weak", "strong")
    assert found.item_ids == [f"q{i}" for i in range(6)]
    with pytest.raises(InputError, match="No variant"):
        judge_experiment(judge, _experiment(), "weak", "missing")
    with pytest.raises(InputError):
        judge_experiment(judge, _experiment(), "weak", "weak")


def test_the_bundled_model_judges_both_orders(generator):
    found = judge_pairs(generator, PAIRS[:3], batch_size=6)
    assert len(found.verdicts) == 3
    assert set(found.verdicts) <= {"A", "B", "tie"}
    assert len(found.first_texts) == len(found.second_texts) == 3
    assert all(isinstance(t, str) and t.strip() for t in found.first_texts + found.second_texts)
    assert all(found.judged)
    assert 0.0 <= found.flip_rate <= 1.0
