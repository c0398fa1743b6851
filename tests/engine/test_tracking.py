"""MLflow tracking on a real SQLite store in a temp data dir, and logging an answered query."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import pandas as pd
import pytest

from engine.models.generation import SamplingSpec
from engine.rag.chunking import chunk_documents
from engine.rag.documents import load_documents
from engine.rag.history import log_query
from engine.rag.pipeline import RagAnswer, RagPipeline
from engine.rag.prompt import PromptTemplate
from engine.rag.retriever import KnowledgeBaseRetriever
from engine.rag.store import KnowledgeBaseStore
from engine.settings import Settings
from engine.tracking import EVALUATION, QUERY, Tracker


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """An empty folder to run in, so that anything MLflow writes into the cwd shows up."""
    return tmp_path_factory.mktemp("cwd")


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, session_settings, workdir):
    """One tracker (creating an MLflow SQLite store takes seconds) for the tests of this module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        settings = Settings(data_dir=tmp_path_factory.mktemp("data"), shared_data_dir=session_settings.shared_data_dir)
        yield Tracker(settings), settings


@pytest.fixture
def in_workdir(workdir, monkeypatch) -> Path:
    monkeypatch.chdir(workdir)
    return workdir


def test_store_and_artifacts_live_in_the_data_dir(tracked, in_workdir: Path) -> None:
    tracker, settings = tracked
    assert tracker.uri == f"sqlite:///{settings.data_dir / 'mlflow.db'}"
    run_id = tracker.start(EVALUATION, "where-things-go")
    tracker.log_text(run_id, "hello", "note.txt")
    tracker.end(run_id)
    assert (settings.data_dir / "mlflow.db").is_file()
    written = list((settings.data_dir / "mlartifacts").rglob("note.txt"))
    assert len(written) == 1 and written[0].read_text() == "hello"
    assert run_id in written[0].parts
    assert not (in_workdir / "mlruns").exists()
    assert list(in_workdir.iterdir()) == []  # nothing at all landed in the cwd


def test_a_run_is_recorded_with_params_metrics_and_a_table(tracked, in_workdir: Path) -> None:
    tracker, _ = tracked
    frame = pd.DataFrame(
        {
            "question": ["Who?", "When?", "Où ?"],
            "f1": [0.5, 1.0, 0.0],
            "n": [1, 2, 3],
            "ok": [True, False, True],
        }
    )
    run_id = tracker.start(EVALUATION, "eval-40", {"k": 5, "model": "smollm2", "mode": "distractor"}, {"who": "test"})
    tracker.log_metrics(run_id, {"recall@5": 0.75, "f1": 0.5, "em": 0})
    tracker.log_table(run_id, frame, "per_question.json")
    tracker.end(run_id)

    runs = tracker.recent(EVALUATION)
    run = next(r for r in runs if r.run_id == run_id)
    assert runs[0].run_id == run_id  # the newest first
    assert (run.experiment, run.name, run.status) == (EVALUATION, "eval-40", "FINISHED")
    assert run.params == {"k": "5", "model": "smollm2", "mode": "distractor"}
    assert run.metrics == {"recall_at_5": 0.75, "f1": 0.5, "em": 0.0}
    assert run.start_time > 1.6e9  # seconds, not milliseconds
    assert tracker.client.get_run(run_id).data.tags["who"] == "test"

    back = tracker.load_table(run_id, "per_question.json")
    pd.testing.assert_frame_equal(back, frame)
    assert not (in_workdir / "mlruns").exists()


def test_recent_orders_runs_and_limits_them(tracked) -> None:
    tracker, _ = tracked
    ids = []
    for n in range(3):
        ids.append(tracker.start("studio-order-test", f"run-{n}"))
        tracker.end(ids[-1], status="FAILED" if n == 1 else "FINISHED")
    runs = tracker.recent("studio-order-test")
    assert [r.run_id for r in runs] == ids[::-1]
    assert [r.status for r in runs] == ["FINISHED", "FAILED", "FINISHED"]
    assert [r.run_id for r in tracker.recent("studio-order-test", limit=2)] == ids[:0:-1]
    assert tracker.recent("studio-no-such-experiment") == []


def test_long_params_are_truncated(tracked) -> None:
    tracker, _ = tracked
    run_id = tracker.start(EVALUATION, "long", {"prompt": "x" * 7000})
    assert tracker.client.get_run(run_id).data.params["prompt"] == "x" * 6000


def test_a_second_tracker_finds_the_same_experiments(tracked) -> None:
    tracker, settings = tracked
    run_id = tracker.start(QUERY, "seen-by-another")
    tracker.end(run_id)
    other = Tracker(settings)
    assert other.experiment_id(QUERY) == tracker.experiment_id(QUERY)
    assert run_id in [r.run_id for r in other.recent(QUERY)]


@pytest.mark.slow
def test_log_query_records_a_real_answer(tracked, generator, embedder, shared_data, tmp_path, in_workdir) -> None:
    tracker, _ = tracked
    with (shared_data / "wiki-passages.jsonl").open(encoding="utf-8") as f:
        (tmp_path / "w.jsonl").write_text("".join(islice(f, 5)), encoding="utf-8")
    store = KnowledgeBaseStore(Settings(data_dir=tmp_path / "kb", shared_data_dir=shared_data), embedder)
    store.add("five", chunk_documents(load_documents(tmp_path / "w.jsonl")))
    # a short prompt (no worked examples) keeps the one generation quick on a CPU
    template = PromptTemplate(examples=(), max_source_chars=300)
    sampling = SamplingSpec(max_new_tokens=8, stop=("\n",))
    pipeline = RagPipeline(KnowledgeBaseRetriever(store, "five"), generator, template, sampling)
    answer = pipeline.answer("Who created the sitcom 'Allo 'Allo!?", k=2)
    assert answer.answer and len(answer.hits) == 2

    run_id = log_query(tracker, answer, "five", generator.name, 2)

    run = tracker.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == answer.question
    assert tracker.client.get_experiment(run.info.experiment_id).name == QUERY
    params = run.data.params
    expected = {"question": answer.question, "answer": answer.answer, "kb": "five", "k": "2"}
    assert params == expected | {"model": "smollm2-135m-instruct", "style": "short"}
    m = run.data.metrics
    assert m["retrieval_s"] == pytest.approx(answer.retrieve_s) and m["retrieval_s"] > 0
    assert m["generation_s"] == pytest.approx(answer.generate_s) and m["generation_s"] > 0
    assert m["total_s"] == pytest.approx(answer.retrieve_s + answer.generate_s)
    assert m["tokens_per_s"] == pytest.approx(answer.tokens_per_s) and m["tokens_per_s"] > 0
    assert m["prompt_tokens"] == answer.prompt_tokens > 0
    assert m["new_tokens"] == answer.new_tokens > 0
    assert m["top_score"] == pytest.approx(answer.hits[0].score)
    assert m["rss_mb"] > 100  # this process holds two models
    assert "cpu_percent" in m

    paths = {a.path for a in tracker.client.list_artifacts(run_id)}
    assert {"prompt.txt", "answer.json"} <= paths
    folder = Path(tracker.client.download_artifacts(run_id, "", str(tmp_path / "dl")))
    prompt = (folder / "prompt.txt").read_text()
    assert prompt.startswith("[system]\n") and answer.question in prompt
    assert f"[1] {answer.hits[0].title}:" in prompt
    logged = json.loads((folder / "answer.json").read_text())
    assert logged["answer"] == answer.answer and logged["raw"] == answer.raw
    assert logged["citations"] == list(answer.citations)
    assert [r["id"] for r in logged["retrieved"]] == [h.id for h in answer.hits]
    assert logged["retrieved"][0]["score"] == pytest.approx(answer.hits[0].score)
    assert not (in_workdir / "mlruns").exists()


def test_log_query_closed_book(tracked) -> None:
    tracker, _ = tracked
    answer = RagAnswer(
        question="What is the capital of France?", answer="Paris", raw="Paris.", hits=(), citations=(),
        messages=({"role": "system", "content": "s"}, {"role": "user", "content": "Question: q"}),
        retrieve_s=0.0, generate_s=0.5, prompt_tokens=20, new_tokens=2,
    )  # fmt: skip
    run_id = log_query(tracker, answer, None, "smollm2-135m-instruct", 5)
    run = tracker.client.get_run(run_id)
    assert run.data.params["kb"] == "(closed book)"
    assert run.data.metrics["top_score"] == 0.0
    assert run.data.metrics["tokens_per_s"] == pytest.approx(4.0)
    assert run.data.metrics["total_s"] == pytest.approx(0.5)
