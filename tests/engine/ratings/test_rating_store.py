"""The blind-rating store: concurrent writers, double submits, recorded sides, skip/undo, bad input."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading

import pandas as pd
import pytest

from engine.errors import InputError
from engine.ratings import Rating, RatingStore, SessionItem, default_store, items_from_answers
from engine.settings import Settings

VARIANTS = ("base", "tuned")


def make_items(n: int) -> list[SessionItem]:
    return [
        SessionItem(f"q{k}", f"question {k}?", f"gold {k}", f"source {k}", {"base": f"b{k}", "tuned": f"t{k}"})
        for k in range(n)
    ]


@pytest.fixture
def ratings_db(tmp_path) -> RatingStore:
    return RatingStore(tmp_path / "ratings.db")


@pytest.fixture
def session_id(ratings_db) -> str:
    return ratings_db.create_session("pilot", VARIANTS, make_items(6), source={"runs": ["r1", "r2"]}, seed=1)


def _write_many(path: str, session_id: str, worker: int, barrier) -> None:
    """One writer process: 50 ratings of its own rater, started together with the others."""
    store = RatingStore(path)
    barrier.wait(timeout=60)
    for k in range(50):
        new = store.submit(Rating(session_id, f"q{k}", f"rater{worker}", ("left", "right", "tie", "both_bad")[k % 4]))
        assert new


def test_concurrent_writer_processes_store_every_rating(tmp_path):
    path = tmp_path / "ratings.db"
    store = RatingStore(path)
    sid = store.create_session("load", VARIANTS, make_items(50), seed=0)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    workers = [ctx.Process(target=_write_many, args=(str(path), sid, w, barrier)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=180)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    ratings = store.ratings(sid)
    assert len(ratings) == 200
    assert ratings.groupby("rater").size().to_dict() == {f"rater{w}": 50 for w in range(4)}
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_double_submitted_rating_is_stored_once(ratings_db, session_id):
    first = Rating(session_id, "q0", "ann", "left", correctness_left=4, comment="first")
    assert ratings_db.submit(first) is True
    assert ratings_db.submit(Rating(session_id, "q0", "ann", "right", comment="second")) is False

    barrier = threading.Barrier(2)
    results = []

    def submit() -> None:
        barrier.wait(timeout=10)
        results.append(ratings_db.submit(Rating(session_id, "q1", "ann", "tie")))

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [False, True]
    ratings = ratings_db.ratings(session_id)
    assert len(ratings) == 2
    kept = ratings.set_index("item_id").loc["q0"]
    assert (kept["preference"], kept["comment"], kept["correctness_left"]) == ("left", "first", 4)


def test_sides_are_seeded_recorded_and_revealed(ratings_db):
    sid = ratings_db.create_session("sides", VARIANTS, make_items(30), seed=42)
    items = ratings_db.items(sid)
    lefts = [it.left_variant for it in items]
    assert set(lefts) == set(VARIANTS)  # both orders occur
    assert all({it.left_variant, it.right_variant} == set(VARIANTS) for it in items)
    for it in items:  # the answers follow their variant to its side
        assert it.left_answer == ("b" if it.left_variant == "base" else "t") + it.item_id[1:]
    again = ratings_db.create_session("sides again", VARIANTS, make_items(30), seed=42)
    assert [it.left_variant for it in ratings_db.items(again)] == lefts

    base_left = next(it for it in items if it.left_variant == "base")
    base_right = next(it for it in items if it.left_variant == "tuned")
    assert ratings_db.reveal(sid, base_left.item_id) == {"left": "base", "right": "tuned"}
    assert ratings_db.reveal(sid, base_right.item_id) == {"left": "tuned", "right": "base"}
    verdicts = {
        (base_left.item_id, "left"): "base", (base_left.item_id, "right"): "tuned",
        (base_right.item_id, "left"): "tuned", (base_right.item_id, "right"): "base",
    }  # fmt: skip
    for n, ((item_id, side), _) in enumerate(verdicts.items()):
        ratings_db.submit(Rating(sid, item_id, f"rater{n}", side))
    ratings_db.submit(Rating(sid, base_left.item_id, "rater9", "both_bad"))
    stored = ratings_db.ratings(sid)
    winners = {(r.item_id, r.preference): r.winner for r in stored.itertuples()}
    assert winners == {**verdicts, (base_left.item_id, "both_bad"): "both_bad"}
    assert set(stored.columns) >= {"left_variant", "right_variant", "winner", "position", "created"}


def test_skip_and_undo_move_through_the_items(ratings_db, session_id):
    assert ratings_db.next_item(session_id, "ann").item_id == "q0"
    ratings_db.submit(Rating(session_id, "q0", "ann", "left"))
    assert ratings_db.skip(session_id, "q1", "ann") is True
    assert ratings_db.skip(session_id, "q0", "ann") is False  # already rated
    assert ratings_db.progress(session_id, "ann") == (1, 1, 6)
    assert ratings_db.next_item(session_id, "ann").item_id == "q2"
    assert ratings_db.next_item(session_id, "bob").item_id == "q0"  # raters are independent
    ratings_db.submit(Rating(session_id, "q2", "ann", "tie"))
    ratings_db.submit(Rating(session_id, "q0", "bob", "right"))

    assert ratings_db.undo_last(session_id, "ann") == "q2"  # exactly the last one
    assert ratings_db.next_item(session_id, "ann").item_id == "q2"
    assert sorted(ratings_db.ratings(session_id)["item_id"] + "/" + ratings_db.ratings(session_id)["rater"]) == [
        "q0/ann", "q0/bob",
    ]  # fmt: skip
    assert ratings_db.undo_last(session_id, "ann") == "q1"  # then the skip
    assert ratings_db.next_item(session_id, "ann").item_id == "q1"
    assert ratings_db.progress(session_id, "ann") == (1, 0, 6)

    ratings_db.skip(session_id, "q1", "ann")  # rating a skipped item replaces the skip
    assert ratings_db.submit(Rating(session_id, "q1", "ann", "left")) is True
    assert ratings_db.progress(session_id, "ann") == (2, 0, 6)
    for k in range(2, 6):
        ratings_db.skip(session_id, f"q{k}", "ann")
    assert ratings_db.next_item(session_id, "ann") is None
    assert ratings_db.undo_last(session_id, "carl") is None


def test_bad_input_raises_and_keeps_the_stored_rows(ratings_db, session_id):
    ratings_db.submit(Rating(session_id, "q0", "ann", "left", fluency_right=5))
    before = ratings_db.ratings(session_id)
    bad = [
        Rating(session_id, "q1", "ann", "left", correctness_left=6),
        Rating(session_id, "q1", "ann", "left", groundedness_right=0),
        Rating(session_id, "q1", "ann", "left", fluency_left=2.5),
        Rating(session_id, "q1", "ann", "maybe"),
        Rating(session_id, "q1", " ", "left"),
        Rating(session_id, "nope", "ann", "left"),
        Rating("no-such-session", "q1", "ann", "left"),
    ]
    for rating in bad:
        with pytest.raises(InputError):
            ratings_db.submit(rating)
    for call in (ratings_db.items, ratings_db.ratings, lambda s: ratings_db.next_item(s, "ann")):
        with pytest.raises(InputError, match="no rating session"):
            call("no-such-session")
    with pytest.raises(InputError, match="no answer of 'tuned'"):
        ratings_db.create_session("broken", VARIANTS, [SessionItem("x", "q?", answers={"base": "b"})])
    with pytest.raises(InputError):
        ratings_db.create_session("dup", VARIANTS, make_items(2) + make_items(1))
    with pytest.raises(InputError):
        ratings_db.create_session("outcome", ("base", "tie"), make_items(2))
    with pytest.raises(sqlite3.IntegrityError):  # the table itself refuses a score out of range
        with sqlite3.connect(ratings_db.path) as con:
            con.execute("UPDATE ratings SET fluency_right = 9")
    pd.testing.assert_frame_equal(ratings_db.ratings(session_id), before)
    assert [s.name for s in ratings_db.sessions()] == ["pilot"]
    assert ratings_db.session(session_id).source == {"runs": ["r1", "r2"]}


def test_export_and_default_location(ratings_db, session_id, tmp_path):
    ratings_db.submit(Rating(session_id, "q0", "ann", "left", correctness_left=3, comment="ok, fine"))
    ratings_db.submit(Rating(session_id, "q1", "ann", "tie"))
    out = ratings_db.export_csv(session_id, tmp_path / "out" / "ratings.csv")
    back = pd.read_csv(out)
    assert list(back["item_id"]) == ["q0", "q1"]
    assert back.loc[0, "comment"] == "ok, fine" and back.loc[0, "correctness_left"] == 3
    store = default_store(Settings(data_dir=tmp_path / "data", shared_data_dir=tmp_path))
    assert store.path == tmp_path / "data" / "ratings.db" and store.sessions() == []


def test_items_from_answers_pairs_two_runs():
    items = items_from_answers(
        ["q1?", "q2?"], ["g1", None], [["p1", "p2"], "p3"], ["a1", "a2"], ["b1", "b2"], ("run-a", "run-b")
    )
    assert [it.item_id for it in items] == ["q0001", "q0002"]
    assert items[0].context == "p1\n\np2" and items[1].reference == ""
    assert items[1].answers == {"run-a": "a2", "run-b": "b2"}
    with pytest.raises(InputError, match="2 questions but 1 answers of run-b"):
        items_from_answers(["q1?", "q2?"], None, None, ["a1", "a2"], ["b1"], ("run-a", "run-b"))
    with pytest.raises(InputError, match="different names"):
        items_from_answers(["q1?"], None, None, ["a1"], ["b1"], ("run", "run"))
    with pytest.raises(InputError, match="at least one"):
        items_from_answers([], None, None, [], [], ("run-a", "run-b"))
    with pytest.raises(InputError, match="unique"):
        items_from_answers(["q1?", "q2?"], None, None, ["a", "b"], ["c", "d"], ("x", "y"), item_ids=["i", "i"])
