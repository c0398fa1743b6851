"""Background jobs, with real worker processes and real files in a temporary data dir."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from engine import job_kinds, jobs
from engine.errors import InputError, NotFoundError
from engine.jobs import worker as job_worker
from engine.settings import ROOT, Settings


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    s = Settings(data_dir=tmp_path)
    yield s
    for job in jobs.list_jobs(settings=s):  # never leave a worker behind
        if not job.done and job.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(job.pid, signal.SIGKILL)


def wait_until(job_id, settings, predicate, timeout=10.0):
    """Poll the job until ``predicate(state)``; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = jobs.get_job(job_id, settings)
        if predicate(state):
            return state
        time.sleep(0.05)
    pytest.fail(f"job {job_id} never reached the expected state: {state}")


def test_sleep_job_runs_to_success(settings):
    started = jobs.start_job("sleep", {"seconds": 0.3, "steps": 3}, settings)
    assert started.status == "queued" and started.pid and not started.done
    assert (settings.jobs_dir / started.id / "state.json").is_file()
    state = jobs.wait_job(started.id, timeout=15, settings=settings)
    assert state.status == "succeeded" and state.done
    assert state.progress == 1.0
    assert state.result == {"slept": 0.3}
    assert state.message == "step 3/3"
    assert state.error is None
    assert state.started >= state.created and state.finished >= state.started
    assert 0.3 <= state.elapsed < 10
    assert any("succeeded" in line for line in jobs.tail_log(state.id, settings=settings))


def test_state_is_readable_while_running(settings):
    job = jobs.start_job("sleep", {"seconds": 3, "steps": 30}, settings)
    state = wait_until(job.id, settings, lambda s: s.status == "running" and 0 < s.progress < 1)
    assert state.pid and state.started and not state.done and state.message.startswith("step ")
    assert not jobs.wait_job(job.id, timeout=0.1, settings=settings).done  # a timeout returns the state
    jobs.cancel_job(job.id, settings)
    assert jobs.wait_job(job.id, timeout=5, settings=settings).status == "cancelled"


def test_cancel_interrupts_a_stuck_task(settings):
    # One 60 s step: the task never checks the flag, so only the SIGTERM can stop it.
    job = jobs.start_job("sleep", {"seconds": 60, "steps": 1}, settings)
    wait_until(job.id, settings, lambda s: s.status == "running")
    t0 = time.monotonic()
    jobs.cancel_job(job.id, settings)
    state = jobs.wait_job(job.id, timeout=5, settings=settings)
    assert state.status == "cancelled" and state.finished
    assert time.monotonic() - t0 < 5
    assert jobs.cancel_job(job.id, settings) == state  # a finished job is left unchanged


def test_cancel_flag_is_seen_by_the_task(settings):
    job = jobs.start_job("sleep", {"seconds": 60, "steps": 600}, settings)
    wait_until(job.id, settings, lambda s: s.status == "running")
    (settings.jobs_dir / job.id / "cancel").touch()  # the flag alone, no signal
    assert jobs.wait_job(job.id, timeout=5, settings=settings).status == "cancelled"


def test_killed_worker_is_reported_failed(settings):
    job = jobs.start_job("sleep", {"seconds": 30, "steps": 30}, settings)
    state = wait_until(job.id, settings, lambda s: s.status == "running")
    os.kill(state.pid, signal.SIGKILL)
    state = jobs.wait_job(job.id, timeout=5, settings=settings)
    assert state.status == "failed" and state.error == jobs.DIED and state.finished
    saved = json.loads((settings.jobs_dir / job.id / "state.json").read_text())
    assert saved["status"] == "failed" and saved["error"] == jobs.DIED


def test_crashing_task_records_error_and_traceback(settings):
    job = jobs.start_job("fail", {}, settings)
    state = jobs.wait_job(job.id, timeout=15, settings=settings)
    assert state.status == "failed"
    # one line naming the log file that holds the traceback (see engine.errors.describe)
    assert state.error.startswith("Unexpected error: ValueError: boom (details in ") and "\n" not in state.error
    assert str(settings.data_dir / "logs") in state.error
    assert state.progress == 0.5 and state.message == "about to fail"
    log = "\n".join(jobs.tail_log(job.id, lines=100, settings=settings))
    assert "Traceback (most recent call last)" in log and "fail_task" in log


def test_user_error_is_shown_as_is_without_traceback(settings):
    job = jobs.start_job("fail", {"user_error": True, "message": "No such model."}, settings)
    state = jobs.wait_job(job.id, timeout=15, settings=settings)
    assert state.status == "failed" and state.error == "No such model."
    assert "Traceback" not in "\n".join(jobs.tail_log(job.id, lines=100, settings=settings))


def test_unknown_kind_and_bad_args(settings):
    with pytest.raises(InputError, match="sleep"):
        jobs.start_job("no-such-kind", {}, settings)
    with pytest.raises(InputError):
        jobs.start_job("sleep", {"seconds": object()}, settings)
    assert not settings.jobs_dir.exists() or not any(settings.jobs_dir.iterdir())


@pytest.mark.parametrize("bad_id", ["../etc", "..", "a/b", "", "x\x00y", "/tmp"])
def test_job_ids_cannot_escape_the_jobs_dir(settings, bad_id):
    for call in (jobs.get_job, jobs.cancel_job, jobs.tail_log):
        with pytest.raises((InputError, NotFoundError)):
            call(bad_id, settings=settings)


def test_missing_job_is_not_found(settings):
    with pytest.raises(NotFoundError):
        jobs.get_job("20990101-000000-abcdef", settings)


def test_list_jobs_newest_first_and_by_kind(settings):
    ids = [jobs.start_job("sleep", {"seconds": 0, "steps": 1}, settings).id for _ in range(3)]
    failing = jobs.start_job("fail", {}, settings).id
    (settings.jobs_dir / "junk").mkdir()
    (settings.jobs_dir / "junk" / "state.json").write_text("not json")
    (settings.jobs_dir / "empty").mkdir()
    assert [j.id for j in jobs.list_jobs(settings=settings)] == [failing, *reversed(ids)]
    assert [j.id for j in jobs.list_jobs("fail", settings=settings)] == [failing]
    for job_id in [*ids, failing]:
        assert jobs.wait_job(job_id, timeout=15, settings=settings).done


def test_kind_registered_at_run_time_reaches_the_worker(settings, monkeypatch):
    monkeypatch.setattr(job_kinds, "KINDS", dict(job_kinds.KINDS))
    jobs.register_kind("nap", "tests.support.tasks:sleep_task")
    with pytest.raises(InputError):
        jobs.register_kind("bad", "no-colon")
    job = jobs.start_job("nap", {"seconds": 0, "steps": 1}, settings)
    assert jobs.wait_job(job.id, timeout=15, settings=settings).result == {"slept": 0.0}


def test_context_throttles_progress_and_records_run_id(settings, monkeypatch):
    job = jobs.start_job("sleep", {"seconds": 0, "steps": 1}, settings)
    jobs.wait_job(job.id, timeout=15, settings=settings)
    ctx = job_worker.JobContext(settings.jobs_dir / job.id)
    writes = []
    real_update = job_worker.update_state
    monkeypatch.setattr(job_worker, "update_state", lambda d, **kw: writes.append(kw) or real_update(d, **kw))
    for i in range(100):
        ctx.progress(i / 100, f"item {i}")
    ctx.progress(1.0, "all")
    assert 2 <= len(writes) <= 3 and writes[-1] == {"progress": 1.0, "message": "all"}
    ctx.set_run_id("abc123")
    ctx.log("hello from the task")
    assert jobs.get_job(job.id, settings).mlflow_run_id == "abc123"
    assert jobs.tail_log(job.id, lines=1, settings=settings) == ["hello from the task"]
    assert not ctx.cancelled
    (settings.jobs_dir / job.id / "cancel").touch()
    with pytest.raises(job_worker.JobCancelled):
        ctx.check_cancelled()


def test_cli(settings):
    job = jobs.start_job("sleep", {"seconds": 0, "steps": 1}, settings)
    jobs.wait_job(job.id, timeout=15, settings=settings)
    env = {**os.environ, "STUDIO_DATA_DIR": str(settings.data_dir)}

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )

    out = cli("job", "status", job.id)
    assert out.returncode == 0 and json.loads(out.stdout)["status"] == "succeeded"
    out = cli("job", "list")
    assert out.returncode == 0 and job.id in out.stdout
    missing = cli("job", "status", "nope")  # every error of the command line: one line, status 2
    assert missing.returncode == 2 and missing.stderr == "error: No job 'nope'.\n"
    assert cli("job", "frobnicate").returncode == 2
    assert cli("something-else").returncode == 2


def test_every_product_kind_is_registered_by_its_package_and_reaches_a_task():
    import importlib

    from engine.ab.judging import JudgeRun
    from engine.ab.spec import ExperimentSpec
    from engine.benchmark.matrix import BenchSpec
    from engine.data.generation import GenerationSpec
    from engine.data.knowledge import IngestRun
    from engine.data.steps import DatasetStep
    from engine.evaluation.runner import EvalSpec
    from engine.finetune.spec import ResumeRun, TrainSpec
    from engine.loop import LoopRun

    experiment = ExperimentSpec.from_dict({"variants": [{"name": "base"}, {"name": "other"}]})
    specs = [
        (EvalSpec(), "eval"), (BenchSpec(), "bench"), (TrainSpec(), "train"), (ResumeRun("a"), "train"),
        (GenerationSpec(), "generate-qa"), (JudgeRun("e", "a", "b"), "judge"),
        (DatasetStep("split", "d", "v"), "dataset"), (LoopRun("notes"), "loop"), (IngestRun("kb", path="x"), "ingest"),
        (experiment, "ab"),
    ]  # fmt: skip
    for spec, kind in specs:
        start = job_kinds.job_start(spec)
        assert start.kind.name == kind
        json.dumps(start.to_args(spec))  # what the worker reads back
        module, _, name = start.kind.target.partition(":")
        assert callable(getattr(importlib.import_module(module), name))
    assert job_kinds.job_start(ResumeRun("a")).to_args(ResumeRun("a")) == {"spec": {"adapter": "a"}, "resume": True}
    assert job_kinds.job_start(DatasetStep("split", "d", "v")).to_args(DatasetStep("split", "d", "v")) == {
        "step": "split",
        "dataset": "d",
        "version": "v",
        "spec": {},
    }
    with pytest.raises(InputError, match="No job kind starts from a dict"):
        jobs.start({"kind": "eval"}, None)
