"""Corrections in the ratings database: stored with what was shown, listed by place and session, deleted, and
refused when empty, unchanged or pointing at an item that does not exist."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from engine.errors import InputError
from engine.rag.hits import Hit
from engine.rag.pipeline import RagAnswer
from engine.ratings import Correction, RatingStore, SessionItem
from engine.ratings.corrections import answer_correction, item_correction


@pytest.fixture
def ratings_db(tmp_path) -> RatingStore:
    return RatingStore(tmp_path / "ratings.db")


@pytest.fixture
def session_id(ratings_db) -> str:
    items = [SessionItem("q1", "Who wrote Hamlet?", "Shakespeare", "Hamlet is a play.", {"a": "Marlowe", "b": "Kyd"})]
    return ratings_db.create_session("pilot", ("a", "b"), items, seed=0)


def query_answer() -> RagAnswer:
    hits = (Hit("c1", "Hamlet", "Hamlet is a tragedy by William Shakespeare.", "plays.md", 0.8),
            Hit("c2", "Kyd", "Thomas Kyd wrote The Spanish Tragedy.", "kyd.md", 0.5))  # fmt: skip
    messages = ({"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "Sources:\n[1] Hamlet: ...\n\nQuestion: Who wrote Hamlet?"})  # fmt: skip
    return RagAnswer("Who wrote Hamlet?", "Thomas Kyd", "Thomas Kyd.", hits, (2,), messages)


def test_a_query_correction_keeps_the_question_sources_answer_and_messages(ratings_db):
    answer = query_answer()
    new_id = ratings_db.corrections.add(answer_correction(answer, "  William Shakespeare ", model="smollm2"))
    (stored,) = ratings_db.corrections.find()
    assert stored.id == new_id and stored.created > 0
    assert (stored.place, stored.question, stored.answer, stored.correction, stored.model) == (
        "query", "Who wrote Hamlet?", "Thomas Kyd", "William Shakespeare", "smollm2",
    )  # fmt: skip
    assert stored.messages == answer.messages
    assert [s["title"] for s in stored.sources] == ["Hamlet", "Kyd"]
    assert "[1] Hamlet: Hamlet is a tragedy" in stored.context and "[2] Kyd:" in stored.context
    assert (stored.session_id, stored.item_id) == ("", "")


def test_a_human_eval_correction_names_its_item_and_the_variant_it_corrects(ratings_db, session_id):
    (item,) = ratings_db.items(session_id)
    sides = ratings_db.reveal(session_id, "q1")
    ratings_db.corrections.add(item_correction(item, sides, "right", "Shakespeare", "ann"))
    (stored,) = ratings_db.corrections.find(place="human_eval", session_id=session_id)
    assert stored.model == sides["right"] and stored.answer == item.right_answer
    assert (stored.rater, stored.item_id, stored.context) == ("ann", "q1", "Hamlet is a play.")
    assert ratings_db.corrections.find(place="query") == []
    assert ratings_db.corrections.find(session_id="other") == []


@pytest.mark.parametrize(
    ("correction", "message"),
    [
        ("", "Write the right answer"),
        ("   ", "Write the right answer"),
        ("thomas  KYD", "the model's answer as it is"),  # the same words: nothing corrected
    ],
)
def test_an_empty_or_unchanged_correction_is_refused(ratings_db, correction, message):
    with pytest.raises(InputError, match=message):
        ratings_db.corrections.add(answer_correction(query_answer(), correction))
    assert ratings_db.corrections.find() == []


def test_bad_corrections_are_refused_and_nothing_is_stored(ratings_db, session_id):
    (item,) = ratings_db.items(session_id)
    bad = [
        (Correction("query", "Q?", "", "A"), "no answer"),
        (Correction("query", " ", "x", "A"), "question"),
        (Correction("email", "Q?", "x", "A"), "one of query, human_eval"),
        (Correction("human_eval", "Q?", "x", "A"), "session and item"),
        (Correction("human_eval", "Q?", "x", "A", session_id=session_id, item_id="nope"), "no item 'nope'"),
        (Correction("human_eval", "Q?", "x", "A", session_id="nope", item_id="q1"), "no rating session"),
    ]
    for correction, message in bad:
        with pytest.raises(InputError, match=message):
            ratings_db.corrections.add(correction)
    with pytest.raises(InputError, match="left or right"):
        item_correction(item, {}, "middle", "x", "ann")
    assert ratings_db.corrections.find() == []


def test_corrections_are_listed_oldest_first_and_deleted_one_by_one(ratings_db, session_id):
    (item,) = ratings_db.items(session_id)
    sides = ratings_db.reveal(session_id, "q1")
    first = ratings_db.corrections.add(answer_correction(query_answer(), "Shakespeare"))
    second = ratings_db.corrections.add(item_correction(item, sides, "left", "William Shakespeare", "bob"))
    assert [c.id for c in ratings_db.corrections.find()] == [first, second]
    ratings_db.corrections.delete(first)
    assert [c.id for c in ratings_db.corrections.find()] == [second]
    with pytest.raises(InputError, match="no correction"):
        ratings_db.corrections.delete(first)


def test_concurrent_writers_store_every_correction(ratings_db):
    barrier = threading.Barrier(4)

    def write(n: int) -> None:
        barrier.wait(timeout=10)
        for k in range(10):
            ratings_db.corrections.add(Correction("query", f"Q{n}-{k}?", "wrong", f"right {n}-{k}"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(ratings_db.corrections.find()) == 40
    assert len({c.id for c in ratings_db.corrections.find()}) == 40


def test_an_older_ratings_file_gains_the_corrections_table(tmp_path):
    path = tmp_path / "ratings.db"
    with sqlite3.connect(path) as con:  # a file made before corrections existed: sessions only
        con.execute(
            "CREATE TABLE sessions (id TEXT PRIMARY KEY, name TEXT NOT NULL, created REAL NOT NULL, "
            "variants TEXT NOT NULL, source TEXT NOT NULL, seed INTEGER)"
        )
    store = RatingStore(path)
    store.corrections.add(Correction("query", "Q?", "wrong", "right"))
    assert [c.correction for c in store.corrections.find()] == ["right"]
