"""The ratings SQLite file: its schema, and connections for one read snapshot or one write transaction.

The file is in WAL mode and every operation opens its own connection, so the app's threads, background
jobs and several raters' processes can read and write at once; every write is one ``BEGIN IMMEDIATE``
transaction, so a failed or rejected write leaves the stored rows as they were.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path

from engine.errors import InputError
from engine.ratings.sessions import SCORE_COLUMNS
from engine.sqlite_wal import ensure_wal

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


class RatingsDatabase:
    """One ratings file, created with its tables on first use."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ensure_wal(self.path, BUSY_MS / 1000)
        with self.write() as con:
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
    def read(self):
        """A connection in one read transaction."""
        with closing(self._connect()) as con:  # closing ends the read transaction: one snapshot per operation
            con.execute("BEGIN")
            yield con

    @contextmanager
    def write(self):
        """A connection in one write transaction: committed at the end, rolled back on any exception."""
        with closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")


def session_row(con: sqlite3.Connection, session_id: str) -> sqlite3.Row:
    """A session's row, or an InputError naming the missing session."""
    row = con.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None:
        raise InputError(f"there is no rating session {session_id!r}")
    return row


def item_row(con: sqlite3.Connection, session_id: str, item_id: str) -> sqlite3.Row:
    """An item's row, or an InputError naming the missing session or item."""
    session_row(con, session_id)
    row = con.execute("SELECT * FROM items WHERE session_id = ? AND item_id = ?", (session_id, item_id)).fetchone()
    if row is None:
        raise InputError(f"rating session {session_id!r} has no item {item_id!r}")
    return row
