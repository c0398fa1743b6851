"""ensure_wal: several openers of a new SQLite file at once all get a WAL file, none an error."""

import sqlite3
import threading

import pytest

from engine.sqlite_wal import ensure_wal


def test_openers_racing_on_new_files_all_succeed(tmp_path) -> None:
    errors: list[BaseException] = []
    for trial in range(20):
        path = tmp_path / f"shared-{trial}.sqlite"
        barrier = threading.Barrier(6)

        def open_it(path=path, barrier=barrier) -> None:
            barrier.wait()
            try:
                ensure_wal(path, timeout_s=10)
            except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with sqlite3.connect(path) as con:
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert errors == []


def test_a_file_that_is_not_a_database_is_an_error(tmp_path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("these are notes, not a database " * 100)
    with pytest.raises(sqlite3.DatabaseError):
        ensure_wal(path, timeout_s=1)
    assert path.read_text().startswith("these are notes")
