"""Blind pairwise ratings in one SQLite file (:mod:`engine.ratings.database`): sessions, their items (with the
recorded left/right sides), ratings and skips; and, in the same file, the corrections people wrote of models'
answers (:class:`engine.ratings.corrections.CorrectionBook`).
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
import uuid
from pathlib import Path

import pandas as pd

from engine.errors import InputError
from engine.ratings.corrections import CorrectionBook
from engine.ratings.database import RatingsDatabase, item_row, session_row
from engine.ratings.sessions import (
    SCORE_COLUMNS,
    Progress,
    Rating,
    RatingItem,
    RatingSession,
    SessionItem,
    check_rater,
    check_rating,
    check_variants,
)
from engine.settings import Settings
from engine.write_policy import publish_file


def default_store(settings: Settings) -> RatingStore:
    """The ratings database of the data dir."""
    return RatingStore(settings.data_dir / "ratings.db")


class RatingStore:
    """The sessions, items, ratings, skips and corrections of one SQLite file (safe to share between threads and
    processes)."""

    def __init__(self, path: str | Path):
        self.db = RatingsDatabase(path)
        self.path = self.db.path
        self.corrections = CorrectionBook(self.db)  # the corrections table

    def create_session(
        self, name: str, variants, items: list[SessionItem], source: dict | None = None, seed: int = 0
    ) -> str:
        """Store a session and its items, each with a seeded random choice of which variant is on the left;
        returns the new session id."""
        variants = check_variants(variants)
        if not isinstance(name, str) or not name.strip():
            raise InputError("a rating session needs a name")
        if not items:
            raise InputError("a rating session needs at least one item")
        ids = [str(it.item_id) for it in items]
        if len(set(ids)) != len(ids):
            raise InputError("item ids must be unique within a session")
        for it in items:
            missing = [v for v in variants if v not in it.answers]
            if missing:
                raise InputError(f"item {it.item_id!r} has no answer of {', '.join(map(repr, missing))}")
        try:
            source_json = json.dumps(source or {}, sort_keys=True)
        except TypeError as exc:
            raise InputError(f"the session's source must be plain JSON data: {exc}") from None
        rng = random.Random(seed)
        session_id = uuid.uuid4().hex[:12]
        rows = []
        for position, it in enumerate(items):
            left, right = variants if rng.random() < 0.5 else variants[::-1]
            rows.append(
                (
                    session_id,
                    str(it.item_id),
                    position,
                    it.question,
                    it.reference or "",
                    it.context or "",
                    left,
                    right,
                    str(it.answers[left] or ""),
                    str(it.answers[right] or ""),
                )
            )
        with self.db.write() as con:
            con.execute(
                "INSERT INTO sessions (id, name, created, variants, source, seed) VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, name.strip(), time.time(), json.dumps(list(variants)), source_json, seed),
            )
            con.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return session_id

    def sessions(self) -> list[RatingSession]:
        """All sessions, newest first."""
        with self.db.read() as con:
            rows = con.execute("SELECT * FROM sessions ORDER BY created DESC").fetchall()
        return [_session(r) for r in rows]

    def session(self, session_id: str) -> RatingSession:
        """One session, or an InputError if there is none by that id."""
        with self.db.read() as con:
            return _session(session_row(con, session_id))

    def items(self, session_id: str) -> list[RatingItem]:
        """The session's items in rating order."""
        with self.db.read() as con:
            session_row(con, session_id)
            rows = con.execute("SELECT * FROM items WHERE session_id = ? ORDER BY position", (session_id,))
            return [RatingItem(**dict(r)) for r in rows.fetchall()]

    def next_item(self, session_id: str, rater: str) -> RatingItem | None:
        """The first item (by position) this rater has neither rated nor skipped, or None when done."""
        rater = check_rater(rater)
        with self.db.read() as con:
            session_row(con, session_id)
            row = con.execute(
                """SELECT * FROM items i WHERE session_id = ?
                   AND NOT EXISTS (SELECT 1 FROM ratings r
                                   WHERE r.session_id = i.session_id AND r.item_id = i.item_id AND r.rater = ?)
                   AND NOT EXISTS (SELECT 1 FROM skips s
                                   WHERE s.session_id = i.session_id AND s.item_id = i.item_id AND s.rater = ?)
                   ORDER BY position LIMIT 1""",
                (session_id, rater, rater),
            ).fetchone()
        return RatingItem(**dict(row)) if row else None

    def progress(self, session_id: str, rater: str) -> Progress:
        """How many items this rater has rated and skipped, of how many."""
        rater = check_rater(rater)
        with self.db.read() as con:
            session_row(con, session_id)
            count = lambda sql, *args: con.execute(sql, args).fetchone()[0]  # noqa: E731
            return Progress(
                count("SELECT COUNT(*) FROM ratings WHERE session_id = ? AND rater = ?", session_id, rater),
                count("SELECT COUNT(*) FROM skips WHERE session_id = ? AND rater = ?", session_id, rater),
                count("SELECT COUNT(*) FROM items WHERE session_id = ?", session_id),
            )

    def reveal(self, session_id: str, item_id: str) -> dict[str, str]:
        """Which variant was shown where: ``{"left": variant, "right": variant}``."""
        with self.db.read() as con:
            row = item_row(con, session_id, item_id)
        return {"left": row["left_variant"], "right": row["right_variant"]}

    def submit(self, rating: Rating) -> bool:
        """Store a rating; True if it is new, False if this rater had already rated the item (a double
        submit is stored once: the first one counts)."""
        check_rating(rating)
        with self.db.write() as con:
            item = item_row(con, rating.session_id, rating.item_id)
            winner = {"left": item["left_variant"], "right": item["right_variant"]}.get(
                rating.preference, rating.preference
            )
            scores = [getattr(rating, c) for c in SCORE_COLUMNS]
            cursor = con.execute(
                f"""INSERT INTO ratings (session_id, item_id, rater, preference, winner, {", ".join(SCORE_COLUMNS)},
                                         comment, created)
                    VALUES (?, ?, ?, ?, ?, {", ".join("?" * len(SCORE_COLUMNS))}, ?, ?)
                    ON CONFLICT (session_id, item_id, rater) DO NOTHING""",
                (
                    rating.session_id,
                    rating.item_id,
                    rating.rater.strip(),
                    rating.preference,
                    winner,
                    *[None if s is None else int(s) for s in scores],
                    rating.comment or "",
                    time.time(),
                ),
            )
            new = cursor.rowcount == 1
            if new:  # rating an item skipped earlier replaces the skip
                con.execute(
                    "DELETE FROM skips WHERE session_id = ? AND item_id = ? AND rater = ?",
                    (rating.session_id, rating.item_id, rating.rater.strip()),
                )
        return new

    def skip(self, session_id: str, item_id: str, rater: str) -> bool:
        """Pass over an item for now; True if it was skipped (False if already rated or skipped)."""
        rater = check_rater(rater)
        with self.db.write() as con:
            item_row(con, session_id, item_id)
            rated = con.execute(
                "SELECT 1 FROM ratings WHERE session_id = ? AND item_id = ? AND rater = ?", (session_id, item_id, rater)
            ).fetchone()
            if rated:
                return False
            cursor = con.execute(
                "INSERT INTO skips VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (session_id, item_id, rater, time.time()),
            )
            return cursor.rowcount == 1

    def undo_last(self, session_id: str, rater: str) -> str | None:
        """Delete this rater's most recent rating or skip; returns its item id (None if there was nothing)."""
        rater = check_rater(rater)
        with self.db.write() as con:
            session_row(con, session_id)
            last = con.execute(
                """SELECT 'ratings' AS tbl, item_id, created, id AS n FROM ratings WHERE session_id = ? AND rater = ?
                   UNION ALL
                   SELECT 'skips', item_id, created, rowid FROM skips WHERE session_id = ? AND rater = ?
                   ORDER BY created DESC, n DESC LIMIT 1""",
                (session_id, rater, session_id, rater),
            ).fetchone()
            if last is None:
                return None
            con.execute(
                f"DELETE FROM {last['tbl']} WHERE session_id = ? AND item_id = ? AND rater = ?",
                (session_id, last["item_id"], rater),
            )
            return last["item_id"]

    def ratings(self, session_id: str):
        """The session's ratings with each item's sides, oldest first, as a pandas DataFrame."""
        with self.db.read() as con:
            session_row(con, session_id)
            rows = con.execute(
                f"""SELECT r.session_id, r.item_id, i.position, r.rater, r.preference, r.winner,
                           i.left_variant, i.right_variant, {", ".join("r." + c for c in SCORE_COLUMNS)},
                           r.comment, r.created
                    FROM ratings r JOIN items i ON i.session_id = r.session_id AND i.item_id = r.item_id
                    WHERE r.session_id = ? ORDER BY r.created, r.id""",
                (session_id,),
            )
            columns = [d[0] for d in rows.description]
            data = [tuple(r) for r in rows.fetchall()]
        frame = pd.DataFrame(data, columns=columns)
        return frame.astype({c: "Int64" for c in SCORE_COLUMNS})  # scores are optional: keep integers with gaps

    def export_csv(self, session_id: str, path: str | Path, overwrite: bool = False) -> Path:
        """Export the session's ratings to a new CSV file (whole or not at all; see :mod:`engine.write_policy`)."""
        return publish_file(path, self.ratings(session_id).to_csv(index=False), overwrite)


def _session(row: sqlite3.Row) -> RatingSession:
    variants, source = tuple(json.loads(row["variants"])), json.loads(row["source"])
    return RatingSession(
        id=row["id"], name=row["name"], created=row["created"], variants=variants, source=source, seed=row["seed"]
    )
