"""Shared fixtures: real bundled models (loaded once), real Chroma and MLflow in temp dirs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine import jobs
from engine.settings import Settings, load_settings

# The job machinery's own test kinds; the worker process imports them by the target stored with the job.
jobs.register_kind("sleep", "tests.support.tasks:sleep_task")
jobs.register_kind("fail", "tests.support.tasks:fail_task")

# Models loaded through the manager compile their fast decoder in the background (a minute of
# CPU); tests of the decoder compile it themselves.
os.environ.setdefault("STUDIO_COMPILE_DECODER", "0")

# One data dir for the whole session holds the converted model cache, so the slow GGUF
# conversion happens once; tests that store things get their own dir (the `settings` fixture).
SESSION_DATA = Path(os.environ.get("STUDIO_TEST_CACHE", Path(__file__).resolve().parent.parent / "data" / "test-cache"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = load_settings().shared_data_dir
    if not (path / "hotpotqa-dev.jsonl").is_file():
        pytest.fail(f"the shared data is missing at {path}: set STUDIO_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def session_settings() -> Settings:
    SESSION_DATA.mkdir(parents=True, exist_ok=True)
    return Settings(data_dir=SESSION_DATA, shared_data_dir=load_settings().shared_data_dir)


@pytest.fixture
def settings(tmp_path, monkeypatch, session_settings) -> Settings:
    """A fresh data dir (Chroma, MLflow, jobs) that shares the session's model cache."""
    (tmp_path / "models").symlink_to(session_settings.models_dir, target_is_directory=True)
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("STUDIO_CHROMA_URL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return Settings(data_dir=tmp_path, shared_data_dir=session_settings.shared_data_dir)


@pytest.fixture(scope="session")
def generator(session_settings):
    from engine.models.generation import load_generator

    session_settings.models_dir.mkdir(parents=True, exist_ok=True)
    return load_generator(settings=session_settings)


@pytest.fixture(scope="session")
def embedder():
    from engine.rag.embedder import Embedder

    return Embedder.shared()


@pytest.fixture
def store(settings, embedder):
    from engine.rag.store import KnowledgeBaseStore

    return KnowledgeBaseStore(settings, embedder)


@pytest.fixture
def tracker(settings):
    from engine.tracking import Tracker

    return Tracker(settings)


@pytest.fixture
def offline_hub(monkeypatch) -> None:
    """The Hugging Face hub and datasets libraries in offline mode, as on a machine with no internet."""
    import datasets
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    # both libraries read these variables once, at import (which another fixture may have done)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)


@pytest.fixture(autouse=True)
def keep_main_module():
    """Put ``sys.modules["__main__"]`` back after each test: AppTest leaves the page script there, and a
    process spawned later (multiprocessing "spawn") would run that page as its main module and abort."""
    import sys

    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


# --- a user's collection: documents, their knowledge base, and a split QA set ----------------------------
# Real HotpotQA questions (written by people) with their gold paragraphs as the documents, every
# document titled alike ("notes.md"), as a folder of a user's files may be: retrieval can only be
# scored by document id.

TITLE = "notes.md"


def make_collection(shared_data, limit: int = 24) -> tuple[list, list]:
    """QA records of the first ``limit`` HotpotQA questions, and their gold paragraphs as documents."""
    from engine.evaluation.hotpotqa import load_hotpotqa
    from engine.qa.schema import Context, QARecord
    from engine.rag.documents import Document

    records, docs = [], {}
    for n, item in enumerate(load_hotpotqa(shared_data / "hotpotqa-dev.jsonl", limit=limit)):
        gold = [(t, text) for t, text in item.paragraphs if t in item.supporting_titles]
        ids = [f"doc-{n}-{k}" for k in range(len(gold))]
        for doc_id, (_, text) in zip(ids, gold, strict=True):
            docs[doc_id] = Document(doc_id, TITLE, text, f"{doc_id}.md")
        contexts = tuple(Context(TITLE, text, doc_id) for doc_id, (_, text) in zip(ids, gold, strict=True))
        records.append(QARecord(item.question, item.answer, contexts, tuple(ids), {"source": "people"}))
    return records, list(docs.values())


@pytest.fixture(scope="session")
def collection_records(shared_data):
    """``make(limit)``: see :func:`make_collection`."""
    return lambda limit=24: make_collection(shared_data, limit)


@pytest.fixture
def collection(settings, store, shared_data):
    """A split dataset ``notes-qa`` and its knowledge base ``notes``; returns the version id."""
    from engine.data.splits import split_records
    from engine.qa.versions import DatasetStore
    from engine.rag.ingest import ingest_documents

    records, docs = make_collection(shared_data)
    ingest_documents(store, "notes", docs)
    split = [r for rows in split_records(records).values() for r in rows]
    return DatasetStore(settings).save("notes-qa", split).id
