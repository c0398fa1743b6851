"""The Human Eval page under AppTest: a session from two evaluation runs, blind rating, reveal, undo, leaderboard."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from engine.evaluation.runner import EvalResult, EvalSpec, log_evaluation
from engine.ratings import default_store
from engine.settings import ROOT
from engine.tracking import Tracker

QUESTIONS = [("q1", "Who wrote Hamlet?", "Shakespeare"), ("q2", "Capital of France?", "Paris"),
             ("q3", "Largest planet?", "Jupiter")]  # fmt: skip


@pytest.fixture
def runs(settings, shared_data):
    """Two evaluation runs in the test's MLflow store answering the same three questions."""
    st.cache_resource.clear()
    tracker = Tracker(settings)
    ids = []
    for answers in (["Shakespeare", "Paris", "Jupiter"], ["Marlowe", "Lyon", "Jupiter"]):
        rows = [{"id": i, "question": q, "gold": g, "prediction": a, "em": 0.0, "f1": 0.0}
                for (i, q, g), a in zip(QUESTIONS, answers, strict=True)]  # fmt: skip
        result = EvalResult(EvalSpec(limit=3), {"em": 0.0, "f1": 0.0}, rows, 1.0)
        identity = {"data_path": str(shared_data / "hotpotqa-dev.jsonl")}
        ids.append(log_evaluation(tracker, result, "test-model", identity))
    yield ids
    st.cache_resource.clear()


def page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages/7_Human_Eval.py"), default_timeout=120).run()


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label and not b.disabled)


def rate(at: AppTest, preference: str) -> AppTest:
    next(r for r in at.radio if r.label == "Which answer is better?").set_value(preference)
    return button(at, "Submit rating").click().run()


def test_rating_a_session_built_from_two_runs(runs, settings):
    at = page()
    assert not at.exception, at.exception
    at.text_input(key="he-name-a").set_value("good")
    at.text_input(key="he-name-b").set_value("bad")
    at = at.run()
    button(at, "Create the session").click().run()
    assert not at.exception, at.exception
    assert any(s.value == "Session created." for s in at.success)
    assert any("Enter your name" in i.value for i in at.info)

    at.sidebar.text_input(key="he-rater").set_value("ann").run()
    shown = [i.value for i in at.info]
    assert "Shakespeare" in shown or "Marlowe" in shown  # the two answers, names hidden
    assert not any("good" in v or "bad" in v for v in shown)
    at = rate(at, "A is better")
    assert not at.exception, at.exception
    reveal = next(i.value for i in at.info if i.value.startswith("Answer A was"))
    store = default_store(settings)
    session = store.sessions()[0]
    sides = store.reveal(session.id, "q1")
    assert f"Answer A was **{sides['left']}**" in reveal  # the recorded side, revealed after rating
    assert store.ratings(session.id)["winner"].tolist() == [sides["left"]]

    at = rate(at, "Tie")
    button(at, "Undo last").click().run()
    assert len(store.ratings(session.id)) == 1 and store.next_item(session.id, "ann").item_id == "q2"
    at = rate(at, "B is better")
    at = rate(at, "Both bad")
    assert any("rated every item" in s.value for s in at.success)
    board = at.dataframe[0].value  # the leaderboard, the one table of the page
    assert set(board["variant"]) == {"good", "bad"} and board["wins"].sum() >= 1
    assert len(store.ratings(session.id)) == 3
    button(at, "Log to MLflow").click().run()
    assert any(s.value.startswith("Logged: MLflow run") for s in at.success), [s.value for s in at.success]


def test_bad_session_input_is_a_message(runs):
    at = page()
    at.text_input(key="he-name-a").set_value("same")
    at.text_input(key="he-name-b").set_value("same")
    at = at.run()
    button(at, "Create the session").click().run()
    assert not at.exception, at.exception
    assert at.error and at.error[0].value  # duplicate names: a message, no traceback


def test_a_session_from_a_judged_experiment_shows_the_judge_agreement(settings):
    from engine.ab.judging import save_judge
    from engine.ab.results import ExperimentResult, VariantResult, save_result
    from engine.evaluation.judge import DEFAULT_JUDGE, judge_from_texts
    from engine.ratings import Rating
    from engine.ratings.sources import session_from_experiment

    st.cache_resource.clear()
    rows = {name: [{"item_id": i, "question": q, "gold": g, "prediction": g if name == "good" else "no idea",
                    "em": 0.0, "f1": 0.0, "latency_s": 0.1, "prompt_tokens": 5, "new_tokens": 2}
                   for i, q, g in QUESTIONS] for name in ("good", "bad")}  # fmt: skip
    variants = {n: VariantResult(n, {"name": n}, r) for n, r in rows.items()}
    save_result(ExperimentResult("20261127-130000-he", {"name": "he"}, variants), settings)
    store = default_store(settings)
    sid = session_from_experiment(store, settings, "20261127-130000-he", "good", "bad")
    for rater in ("ann", "bob"):  # both raters prefer 'good' on every item
        for item in ("q1", "q2", "q3"):
            side = "left" if store.reveal(sid, item)["left"] == "good" else "right"
            store.submit(Rating(sid, item, rater, side))
    at = page()
    assert not at.exception, at.exception
    assert any("Run the local judge" in c.value for c in at.caption)  # no judgement of the pair yet

    # the judge prefers 'good' on q1 and q2 and flips on q3 (a tie): 2 of 3 items agree
    judge = judge_from_texts(["1", "1", "1"], ["2", "2", "1"], a="good", b="bad", item_ids=["q1", "q2", "q3"])
    save_judge("20261127-130000-he", judge, DEFAULT_JUDGE, True, settings)
    at = page()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Items the judge and raters share"] == "3"
    assert metrics["Agreement with the local judge"] == "67%"
    button(at, "Log to MLflow").click().run()
    assert any(s.value.startswith("Logged: MLflow run") for s in at.success)
    from engine.tracking import HUMAN_EVAL, Tracker

    tracker = Tracker(settings)
    (run,) = tracker.client.search_runs([tracker.experiment_id(HUMAN_EVAL)])
    assert run.data.metrics["judge.items"] == 3 and round(run.data.metrics["judge.percent"]) == 67


def test_a_rater_writes_the_right_answer_beside_the_rating(settings):
    from engine.ratings.sources import session_from_experiment
    from tests.support.experiments import save_experiment

    st.cache_resource.clear()
    store = default_store(settings)
    sid = session_from_experiment(store, settings, save_experiment(settings, 3), "base", "tuned")
    at = page()
    at.sidebar.text_input(key="he-rater").set_value("ann").run()

    def correct(at: AppTest, preference: str, text: str, corrects: str = "") -> AppTest:
        next(t for t in at.text_area if t.label == "The right answer").input(text)
        if corrects:
            next(r for r in at.radio if r.label == "It corrects").set_value(corrects)
        return rate(at, preference)

    # an answer preferred: the correction replaces the other one (B here)
    at = correct(at, "A is better", "gold 0")
    assert not at.exception, at.exception
    assert any("saved as a correction of answer B" in i.value for i in at.info)
    sides = store.reveal(sid, "q000")
    (first,) = store.corrections.find(session_id=sid)
    assert (first.item_id, first.rater, first.correction, first.model) == ("q000", "ann", "gold 0", sides["right"])
    assert first.answer == f"{sides['right']} answer 0"

    # a correction the same as the answer it corrects: a message, and neither the rating nor it is stored
    item = store.next_item(sid, "ann")
    at = correct(at, "Tie", item.left_answer, "Answer A")
    assert any("as it is" in e.value for e in at.error), [e.value for e in at.error]
    assert len(store.ratings(sid)) == 1 and len(store.corrections.find()) == 1

    at = correct(at, "Both bad", "gold 1", "Answer A")
    second = store.corrections.find()[-1]
    assert (second.item_id, second.answer, second.model) == (
        "q001",
        item.left_answer,
        store.reveal(sid, "q001")["left"],
    )
    at = rate(at, "Tie")  # no correction written: none stored
    assert len(store.corrections.find()) == 2 and len(store.ratings(sid)) == 3
