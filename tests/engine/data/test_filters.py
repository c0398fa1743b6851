"""Answer spans and the quality filters: each filter rejects a hand-made bad case and keeps a good one."""

from __future__ import annotations

import json
import math
import random

import pytest

from engine.data.filters import NAMES, Candidate, FilterSpec, apply_filters, copy_share, duplicate_scores
from engine.data.questions import pick_spans
from engine.data.spans import find_spans
from engine.errors import InputError

PASSAGE = (
    "Abbey Road is the eleventh studio album by the English rock band the Beatles, released on 26 September 1969 "
    "by Apple Records. It was produced by George Martin and recorded at EMI Studios in London."
)
GOOD = "Which label released the Beatles record Abbey Road?"


def candidate(question: str = GOOD, answer: str = "Apple Records", **evidence) -> Candidate:
    found = {"retrieval_rank": 1, "model_answer": "Apple Records"} | evidence
    return Candidate(f"k{random.random()}", "p1", "Abbey Road", PASSAGE, answer, "name", question, found)


def rejected_by(c: Candidate, spec: FilterSpec = FilterSpec()) -> str | None:
    kept, _ = apply_filters([c], spec, {c.key: [1.0, 0.0]})
    return None if kept else c.evidence["rejected_by"]


def test_spans_are_in_the_passage_and_of_each_kind(shared_data):
    spans = find_spans(PASSAGE, "Abbey Road")
    assert {(s.text, s.kind) for s in spans} >= {("26 September 1969", "date"), ("Apple Records", "name"),
                                                  ("George Martin", "person"), ("EMI Studios", "name"),
                                                  ("London", "place")}  # fmt: skip
    (described,) = [s for s in pick_spans(PASSAGE, "Abbey Road", 3, random.Random(0)) if s.kind == "description"]
    assert described.text.startswith("Abbey Road is the eleventh studio album") and described.text.endswith(".")
    assert "1969" not in [s.text for s in spans]  # inside the date
    assert not any("Abbey Road" in s.text for s in spans)  # the title names what the question is about
    rows = [json.loads(line) for line in (shared_data / "wiki-passages.jsonl").open(encoding="utf-8")][:300]
    for row in rows:
        for span in pick_spans(row["text"], row["title"], 3, random.Random(0)):
            assert row["text"][span.start :].startswith(span.text)  # validated: a span of the passage
    assert pick_spans(PASSAGE, "Abbey Road", 2, random.Random(1)) == pick_spans(
        PASSAGE, "Abbey Road", 2, random.Random(1)
    )


def test_adjectives_and_lone_months_are_not_names_and_other_names_come_last():
    text = ("Thomas De Quincey was an English essayist. In September 1821 he moved to London, and in November he "
            "met a Russian painter. He was published by Charles Knight.")  # fmt: skip
    spans = find_spans(text, "Thomas De Quincey")
    assert [(s.text, s.kind) for s in spans] == [("September 1821", "date"), ("London", "place"),
                                                 ("Charles Knight", "person")]  # fmt: skip
    assert all(text[s.start :].startswith(s.text) for s in spans)
    table = "Run `engine ask` in 2024.\n| a | 12 | 2019 |\n```\nx = 5\n```\nThe Studio was made in 2025 by Ann Lee."
    assert [s.text for s in find_spans(table, "x")] == ["2024", "The Studio", "2025", "Ann Lee"]  # no table, no code
    # Two spans of a passage with a date, a place and a name: never the name while the others are left.
    for seed in range(20):
        assert "name" not in {s.kind for s in pick_spans(PASSAGE, "Abbey Road", 3, random.Random(seed))}


def test_a_good_candidate_passes_every_filter():
    c = candidate()
    assert rejected_by(c) is None
    assert set(c.evidence["scores"]) == set(NAMES)


@pytest.mark.parametrize(
    ("bad", "rejected"),
    [
        (candidate("which label released abbey road"), "well_formed"),  # no question mark, not capitalized
        (candidate("Did Apple Records release Abbey Road?"), "well_formed"),  # the answer is in the question
        (candidate("Passage: Abbey Road. Answer: which label?"), "well_formed"),  # prompt leftovers
        (candidate("Which label?"), "question_length"),
        (candidate(answer="the eleventh studio album by the English rock band"), "answer_length"),
        (candidate("Abbey Road is the eleventh studio album by which band?", answer="Beatles"), "not_copy"),
        (candidate(retrieval_rank=9), "round_trip_retrieval"),
        (candidate(retrieval_rank=0), "round_trip_retrieval"),
        (candidate(model_answer="EMI Studios"), "round_trip_answer"),
    ],
)
def test_each_filter_rejects_its_bad_case(bad, rejected):
    assert rejected_by(bad) == rejected


def test_thresholds_are_adjustable():
    assert rejected_by(candidate(retrieval_rank=9), FilterSpec(retrieval_k=10)) is None
    assert rejected_by(candidate(model_answer="Apple"), FilterSpec(min_answer_f1=0.5)) is None  # F1 0.67
    assert rejected_by(candidate(model_answer="Apple"), FilterSpec(min_answer_f1=0.8)) == "round_trip_answer"
    copied = candidate("Abbey Road is the eleventh studio album by which band?", "Beatles", model_answer="Beatles")
    assert copy_share(copied) == pytest.approx(8 / 10)
    assert rejected_by(copied, FilterSpec(max_copy=0.9)) is None
    with pytest.raises(InputError):
        FilterSpec(min_question_words=10, max_question_words=5)


def test_near_duplicates_are_removed_against_kept_questions():
    a, b, c = candidate(), candidate(), candidate("Who produced the Beatles album Abbey Road?", "George Martin",
                                                  model_answer="George Martin")  # fmt: skip
    vectors = {a.key: [1.0, 0.0], b.key: [0.96, 0.28], c.key: [0.0, 1.0]}  # a.b = 0.96, a.c = 0
    kept, funnel = apply_filters([a, b, c], FilterSpec(max_similarity=0.9), vectors)
    assert kept == [a, c] and b.evidence["rejected_by"] == "near_duplicate"
    step = next(s for s in funnel if s.name == "near_duplicate")
    assert (step.entered, step.passed) == (3, 2) and step.rate == pytest.approx(2 / 3)
    assert duplicate_scores([[1, 0], [1, 0], [1, 0]], 0.9) == [0.0, 1.0, 1.0]  # compared with kept ones only


def test_the_funnel_counts_what_each_filter_saw():
    pool = [candidate(), candidate("Which label?"), candidate(retrieval_rank=0), candidate(model_answer="no")]
    vectors = {c.key: [float(n == i) for i in range(4)] for n, c in enumerate(pool)}  # orthogonal: no duplicates
    kept, funnel = apply_filters(pool, FilterSpec(), vectors)
    assert [(s.name, s.entered, s.passed) for s in funnel] == [
        ("well_formed", 4, 4), ("question_length", 4, 3), ("answer_length", 3, 3), ("not_copy", 3, 3),
        ("near_duplicate", 3, 3), ("round_trip_retrieval", 3, 2), ("round_trip_answer", 2, 1),
    ]  # fmt: skip
    assert kept == pool[:1]
    missing = Candidate("x", "p", "t", PASSAGE, "Apple Records", "name", GOOD, {})  # no round trip was made
    assert rejected_by(missing) == "round_trip_retrieval"
    assert math.isnan(missing.evidence["scores"]["round_trip_retrieval"])


def test_a_descriptive_pair_is_judged_as_a_sentence():
    from engine.data.definitions import descriptive_question as describe_question
    from engine.data.questions import question_stem

    sentence = PASSAGE.split(". ")[0] + "."
    question = describe_question("Abbey Road (album)", sentence)
    assert question == "What is Abbey Road?" and question_stem("person", "George Martin") == "Who"
    found = {"retrieval_rank": 1, "model_answer": "the eleventh studio album by the Beatles"}
    described = Candidate("k-d", "p1", "Abbey Road", PASSAGE, sentence, "description", question, found)
    assert rejected_by(described) is None  # a 30-word answer, a short question, a short model answer it holds
    described.evidence["model_answer"] = "a song by Queen"
    assert rejected_by(described) == "round_trip_answer"
    as_span = Candidate("k-s", "p1", "Abbey Road", PASSAGE, sentence, "name", GOOD, {"retrieval_rank": 1})
    assert rejected_by(as_span) == "answer_length"  # only a descriptive answer may be a sentence
