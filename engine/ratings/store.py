"""Blind pairwise ratings in one SQLite file: sessions, their items (with the recorded left/right sides),
ratings and skips; and the corrections people wrote of models' answers (see :mod:`engine.ratings.corrections`).

The file is in WAL mode and every operation opens its own connection, so the app's threads, background
jobs and several raters' processes can read and write at once; every write is one ``BEGIN IMMEDIATE``
transaction, so a failed or rejected write leaves the stored rows as they were.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
import uuid
from contextlib import closing, contextmanager
from pathlib import Path

import pandas as pd

from engine.errors import InputError
from engine.ratings.corrections import Correction, check_correction
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
from engine.sqlite_wal import ensure_wal
from engine.write_policy import publish_file

BUSY_MS = 10_000  # how long a writer waits for another one's transaction before giving up

_SCORE_CHECKS = ",\n    ".join(f"{c} INTEGER CHECK ({c} BETWEEN 1 AND 5)" for c in SCORE_COLUMNS)
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, created REAL NOT NULL, variants TEXT NOT NULL,
    source TEXT NOT NULL, seed INTEGER
);
CREATE TABLE IF NOT EXISTS items (
    session_id TEXT NOT NULL REFERENCES sessions(id), item_id TEXT NOT NULL, position INTEGER NOT NULL,
    question TEXT NOT NULL, reference TEXT NOT NULL DEFAULT '', context TEXT NOT NULL DEFAULT '',
    left_variant TEXT NOT NULL, right_variant TEXT NOT NULL, left_answer TEXT NOT NULL, right_answer TEXT NOT NULL,
    PRIMARY KEY (session_id, item_id)
);
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY, session_id TEXT NOT NULL, item_id TEXT NOT NULL, rater TEXT NOT NULL,
    preference TEXT NOT NULL CHECK (preference IN ('left', 'right', 'tie', 'both_bad')), winner TEXT NOT NULL,
    {_SCORE_CHECKS},
    comment TEXT NOT NULL DEFAULT '', created REAL NOT NULL,
    UNIQUE (session_id, item_id, rater),
    FOREIGN KEY (session_id, item_id) REFERENCES items(session_id, item_id)
);
CREATE TABLE IF NOT EXISTS skips (
    session_id TEXT NOT NULL, item_id TEXT NOT NULL, rater TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (session_id, item_id, rater)
);
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY, place TEXT NOT NULL CHECK (place IN ('query', 'human_eval')),
    session_id TEXT NOT NULL DEFAULT '', item_id TEXT NOT NULL DEFAULT '', rater TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL, context TEXT NOT NULL DEFAULT '', answer TEXT NOT NULL, correction TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '', sources TEXT NOT NULL DEFAULT '[]', messages TEXT NOT NULL DEFAULT '[]',
    created REAL NOT NULL
);
"""


def default_store(settings: Settings) -> RatingStore:
    """The ratings database of the data dir."""
    return RatingStore(settings.data_dir / "ratings.db")


class RatingStore:
    """The sessions, items, ratings, skips and corrections of one SQLite file (safe to share between threads and
    processes)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ensure_wal(self.path, BUSY_MS / 1000)
        with self._write() as con:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    con.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions, we say BEGIN IMMEDIATE ourselves.
        con = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None)
        con.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        con.row_factory = sqlite3.Row
        return con

    @contextmanager
    def _read(self):
        with closing(self._connect()) as con:  # closing ends the read transaction: one snapshot per operation
            con.execute("BEGIN")
            yield con

    @contextmanager
    def _write(self):
        with closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

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
        with self._write() as con:
            con.execute(
                "INSERT INTO sessions (id, name, created, variants, source, seed) VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, name.strip(), time.time(), json.dumps(list(variants)), source_json, seed),
            )
            con.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return session_id

    def sessions(self) -> list[RatingSession]:
        """All sessions, newest first."""
        with self._read() as con:
            rows = con.execute("SELECT * FROM sessions ORDER BY created DESC").fetchall()
        return [_session(r) for r in rows]

    def session(self, session_id: str) -> RatingSession:
        """One session, or an InputError if there is none by that id."""
        with self._read() as con:
            return _session(_session_row(con, session_id))

    def items(self, session_id: str) -> list[RatingItem]:
        """The session's items in rating order."""
        with self._read() as con:
            _session_row(con, session_id)
            rows = con.execute("SELECT * FROM items WHERE session_id = ? ORDER BY position", (session_id,))
            return [RatingItem(**dict(r)) for r in rows.fetchall()]

    def next_item(self, session_id: str, rater: str) -> RatingItem | None:
        """The first item (by position) this rater has neither rated nor skipped, or None when done."""
        rater = check_rater(rater)
        with self._read() as con:
            _session_row(con, session_id)
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
        with self._read() as con:
            _session_row(con, session_id)
            count = lambda sql, *args: con.execute(sql, args).fetchone()[0]  # noqa: E731
            return Progress(
                count("SELECT COUNT(*) FROM ratings WHERE session_id = ? AND rater = ?", session_id, rater),
                count("SELECT COUNT(*) FROM skips WHERE session_id = ? AND rater = ?", session_id, rater),
                count("SELECT COUNT(*) FROM items WHERE session_id = ?", session_id),
            )

    def reveal(self, session_id: str, item_id: str) -> dict[str, str]:
        """Which variant was shown where: ``{"left": variant, "right": variant}``."""
        with self._read() as con:
            row = _item_row(con, session_id, item_id)
        return {"left": row["left_variant"], "right": row["right_variant"]}

    def submit(self, rating: Rating) -> bool:
        """Store a rating; True if it is new, False if this rater had already rated the item (a double
        submit is stored once: the first one counts)."""
        check_rating(rating)
        with self._write() as con:
            item = _item_row(con, rating.session_id, rating.item_id)
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
        with self._write() as con:
            _item_row(con, session_id, item_id)
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
        with self._write() as con:
            _session_row(con, session_id)
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
        with self._read() as con:
            _session_row(con, session_id)
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

    def add_correction(self, correction: Correction) -> int:
        """Store a correction (an InputError if it is empty or the model's answer as it is); returns its id."""
        c = check_correction(correction)
        with self._write() as con:
            if c.place == "human_eval":
                _item_row(con, c.session_id, c.item_id)
            cursor = con.execute(
                """INSERT INTO corrections (place, session_id, item_id, rater, question, context, answer, correction,
                                            model, sources, messages, created)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    c.place,
                    c.session_id,
                    c.item_id,
                    c.rater,
                    c.question,
                    c.context or "",
                    c.answer,
                    c.correction,
                    c.model or "",
                    json.dumps(list(c.sources), ensure_ascii=False),
                    json.dumps(list(c.messages), ensure_ascii=False),
                    time.time(),
                ),
            )
            return int(cursor.lastrowid)

    def corrections(self, place: str = "", session_id: str = "") -> list[Correction]:
        """The stored corrections, oldest first: all, or those made in one place, or in one session."""
        where, args = [], []
        for column, value in (("place", place), ("session_id", session_id)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM corrections" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created, id"
        with self._read() as con:
            rows = con.execute(sql, args).fetchall()
        return [_correction(r) for r in rows]

    def delete_correction(self, correction_id: int) -> None:
        """Delete a correction; an InputError if there is none by that id."""
        with self._write() as con:
            if con.execute("DELETE FROM corrections WHERE id = ?", (int(correction_id),)).rowcount != 1:
                raise InputError(f"there is no correction {correction_id!r}")


def _correction(row: sqlite3.Row) -> Correction:
    values = dict(row)
    values["sources"], values["messages"] = tuple(json.loads(values["sources"])), tuple(json.loads(values["messages"]))
    return Correction(**values)


def _session_row(con: sqlite3.Connection, session_id: str) -> sqlite3.Row:
    row = con.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None:
        raise InputError(f"there is no rating session {session_id!r}")
    return row


def _item_row(con: sqlite3.Connection, session_id: str, item_id: str) -> sqlite3.Row:
    _session_row(con, session_id)
    row = con.execute("SELECT * FROM items WHERE session_id = ? AND item_id = ?", (session_id, item_id)).fetchone()
    if row is None:
        raise InputError(f"rating session {session_id!r} has no item {item_id!r}")
    return row


def _session(row: sqlite3.Row) -> RatingSession:
    variants, source = tuple(json.loads(row["variants"])), json.loads(row["source"])
    return RatingSession(
        id=row["id"], name=row["name"], created=row["created"], variants=variants, source=source, seed=row["seed"]
    )
