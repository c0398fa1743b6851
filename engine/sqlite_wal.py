"""Putting a shared SQLite file in WAL mode, safely when several threads or processes open it at once."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

_RETRY_S = 0.02


def ensure_wal(path: str | Path, timeout_s: float) -> None:
    """Set the file at ``path`` (created if missing) to WAL mode, waiting up to ``timeout_s`` for other openers.

    SQLite does not call its busy handler while it changes the journal mode, so two connections
    that open a new file together can get "database is locked" at once; this retries instead.
    WAL is a property of the file: once set, every later connection gets it.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with closing(sqlite3.connect(path, timeout=timeout_s, isolation_level=None)) as con:
                if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    con.execute("PRAGMA journal_mode=WAL")
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(_RETRY_S)
