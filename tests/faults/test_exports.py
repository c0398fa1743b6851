"""Exports never destroy what the user owns: a dataset exported into an existing folder or over an existing
file (CLI and page), an adapter merge into a user's folder, a ratings CSV and a benchmark table over a user's
file. Each test sets up the user's files, does the bad thing, and checks the message and the files' bytes."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.data import steps
from engine.errors import InputError
from engine.settings import ROOT
from engine.write_policy import UnsafeWriteError, is_studio_export


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder``: relative path -> SHA-256 of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def dataset(settings, shared_data, tmp_path):
    """A dataset version of five Dolly records in the test's data dir: (name, version)."""
    source = tmp_path / "five.jsonl"
    source.write_text("".join((shared_data / "dolly-15k-mini.jsonl").read_text().splitlines(True)[:5]))
    manifest, _ = steps.import_source(settings, "mine", source)
    return "mine", manifest.id


@pytest.fixture
def home(tmp_path) -> Path:
    """The user's folder: a document, a nested file and a spreadsheet, as in a real ~/Documents."""
    folder = tmp_path / "home" / "myproject"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes, not the Studio's\n")
    (folder / "sub" / "data.bin").write_bytes(os.urandom(4096))
    (folder / "table.csv").write_text("a,b\n1,2\n")
    return folder


def export_cli(settings, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"STUDIO_DATA_DIR": str(settings.data_dir), "STUDIO_SHARED_DATA": str(settings.shared_data_dir)}
    return subprocess.run([sys.executable, "-m", "engine", "data", "export", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_cli_export_into_a_users_folder_leaves_every_file(settings, dataset, home):
    before = snapshot(home.parent)
    refused = export_cli(settings, dataset[0], "--to", str(home))
    assert refused.returncode == 2, refused.stderr
    assert f"{home} already exists" in refused.stderr and "Traceback" not in refused.stderr
    forced = export_cli(settings, dataset[0], "--to", str(home), "--overwrite")
    assert forced.returncode == 2, forced.stderr
    assert "is not an unchanged export of the Studio, so it is left as it is" in forced.stderr
    assert snapshot(home.parent) == before


@pytest.mark.parametrize("name", ["notes.jsonl", "table.csv"])
def test_cli_export_over_a_users_file_leaves_it(settings, dataset, home, name):
    target = home / name
    target.write_text("the user's own lines\n") if not target.exists() else None
    before = snapshot(home.parent)
    for extra in ((), ("--overwrite",)):
        done = export_cli(settings, dataset[0], "--to", str(target), *extra)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert str(target) in done.stderr
    assert snapshot(home.parent) == before


def test_an_earlier_export_is_replaced_only_on_request_and_only_while_unchanged(settings, dataset, tmp_path):
    target = tmp_path / "exports" / "hf"
    first = export_cli(settings, dataset[0], "--to", str(target))
    assert first.returncode == 0, first.stderr
    assert is_studio_export(target)
    assert export_cli(settings, dataset[0], "--to", str(target)).returncode == 2
    assert export_cli(settings, dataset[0], "--to", str(target), "--overwrite").returncode == 0
    (target / "README.md").write_text("my notes on this export\n")  # the user adds a file: now it is theirs
    before = snapshot(target)
    again = export_cli(settings, dataset[0], "--to", str(target), "--overwrite")
    assert again.returncode == 2 and "left as it is" in again.stderr
    assert snapshot(target) == before


def test_the_export_is_refused_before_the_version_is_read(settings, dataset, home):
    """The target is checked first: a refused export costs nothing and writes nothing, even beside it."""
    before = snapshot(home.parent)
    with pytest.raises(InputError, match="already exists"):
        steps.export_version(settings, dataset[0], "no-such-version", home)
    assert snapshot(home.parent) == before


def test_the_datasets_page_export_leaves_the_users_folder(settings, dataset, home):
    import streamlit as st

    st.cache_resource.clear()  # the page's cached stores must see this test's data dir
    before = snapshot(home.parent)
    at = AppTest.from_file(str(ROOT / "pages" / "4_Datasets.py"), default_timeout=120).run()
    export = next(t for t in at.tabs if t.label == "Export")
    next(t for t in export.text_input if t.label.startswith("Or write to")).input(str(home))
    next(b for b in export.button if b.label == "Export").click().run()
    assert not at.exception, at.exception
    assert any(f"{home} already exists" in e.value for e in at.error), [e.value for e in at.error]
    export = next(t for t in at.tabs if t.label == "Export")
    next(c for c in export.checkbox if c.label.startswith("Overwrite")).check()
    next(b for b in export.button if b.label == "Export").click().run()
    assert not at.exception, at.exception
    assert any("left as it is" in e.value for e in at.error), [e.value for e in at.error]
    assert snapshot(home.parent) == before


def test_an_adapter_merge_into_a_users_folder_is_refused_before_any_load(settings, home, monkeypatch):
    from engine.models import adapters, export

    def no_load(*_a, **_k):
        raise AssertionError("the model was loaded before the target was checked")

    monkeypatch.setattr("engine.models.export.load_model", no_load)  # where merge_export looks it up
    before = snapshot(home.parent)
    registry = adapters.AdapterRegistry(settings)
    for overwrite in (False, True):
        with pytest.raises(InputError, match=str(home)):
            export.merge_export(registry, "someadapter", home, settings, overwrite=overwrite)
    assert snapshot(home.parent) == before


def test_a_ratings_csv_over_a_users_file_is_refused(settings, home):
    from engine.ratings.sessions import SessionItem
    from engine.ratings.store import RatingStore

    store = RatingStore(settings.data_dir / "ratings.db")
    items = [SessionItem(f"q{i}", f"Question {i}?", answers={"a": "x", "b": "y"}) for i in range(2)]
    session = store.create_session("pilot", ("a", "b"), items)
    before = snapshot(home.parent)
    for overwrite in (False, True):
        with pytest.raises(InputError, match="table.csv"):
            store.export_csv(session, home / "table.csv", overwrite=overwrite)
    assert snapshot(home.parent) == before
    written = store.export_csv(session, home / "ratings.csv")
    assert written.is_file() and is_studio_export(written)


def test_a_benchmark_table_over_a_users_file_is_refused_before_it_runs(settings, home):
    env = os.environ | {"STUDIO_DATA_DIR": str(settings.data_dir)}
    before = snapshot(home.parent)
    done = subprocess.run([sys.executable, "-m", "engine", "bench", "--out", str(home / "notes.txt")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "notes.txt already exists" in done.stderr and "Traceback" not in done.stderr
    assert snapshot(home.parent) == before


def test_unsafe_write_is_an_input_error():
    """The UI and the CLI show an InputError's message as it is, so a refusal is never a traceback."""
    assert issubclass(UnsafeWriteError, InputError)
