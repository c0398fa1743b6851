"""Background jobs: long work in a separate OS process, with its state on disk.

A job lives in ``jobs_dir/<id>/``: ``state.json`` (a :class:`JobState`), ``log.txt`` (the
worker's output and :meth:`JobContext.log` lines) and, once asked, a ``cancel`` flag file.
The worker is ``python -m engine job run <job_dir>`` in its own session, so it outlives a
closed tab or a stopped Streamlit; the page only reads the folder (:func:`get_job`).

A job kind (:mod:`engine.job_kinds`, registered by the package that owns the work) maps to a
``"module:function"`` task, imported lazily in the worker; a task is ``fn(args: dict, ctx: JobContext) -> dict``
and its return value is the job's result. :func:`start` starts the job a typed spec describes. This
module starts, reads and stops jobs; :mod:`engine.jobs.worker` runs them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import signal
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from subprocess import DEVNULL, STDOUT, Popen
from typing import Any

import psutil

from engine.allocator import allocator_env
from engine.errors import InputError, NotFoundError, StudioError
from engine.job_kinds import job_kind, job_start, register_job_kind
from engine.settings import ROOT, Settings, load_settings
from engine.write_policy import write_atomic

FINAL = ("succeeded", "failed", "cancelled")
DIED = "the job's process exited unexpectedly (see its log)"
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_START_GRACE = 60.0  # a queued job with no pid after this long was never launched
_CHILDREN: dict[int, Popen] = {}  # workers started here, kept to be reaped (no zombies, no warnings)


@dataclass(frozen=True)
class JobState:
    """A snapshot of one job, as stored in its ``state.json``."""

    id: str
    kind: str
    args: dict
    status: str  # queued, running, succeeded, failed, cancelled
    progress: float
    message: str
    created: float
    started: float | None = None
    finished: float | None = None
    pid: int | None = None
    mlflow_run_id: str | None = None
    error: str | None = None
    result: dict | None = None

    @property
    def done(self) -> bool:
        return self.status in FINAL

    @property
    def elapsed(self) -> float:
        """Seconds spent running so far (or in all, once finished)."""
        if self.started is None:
            return 0.0
        return max(0.0, (self.finished or time.time()) - self.started)


def register_kind(kind: str, target: str) -> None:
    """Make ``kind`` start the task ``target`` (``"package.module:function"``), with arguments as a dict."""
    register_job_kind(kind, target)


def read_state(job_dir: Path) -> dict:
    return json.loads((job_dir / "state.json").read_text(encoding="utf-8"))


def _write(job_dir: Path, data: dict) -> None:
    # The page reads while the worker writes: a reader never sees half a file.
    write_atomic(job_dir / "state.json", json.dumps(data, indent=1))


def _state(data: dict) -> JobState:
    return JobState(**{f.name: data[f.name] for f in fields(JobState) if f.name in data})


def update_state(job_dir: Path, only_if=None, **changes: Any) -> JobState:
    """Read-modify-write the state under a lock, so the starter, the worker and the page
    never lose each other's changes; ``only_if(state)`` False leaves it unchanged."""
    with open(job_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        data = read_state(job_dir)
        if only_if is None or only_if(_state(data)):
            data.update(changes)
            _write(job_dir, data)
    return _state(data)


def _job_dir(job_id: str, settings: Settings | None) -> Path:
    if not isinstance(job_id, str) or not _ID_RE.match(job_id):
        raise InputError(f"Invalid job id {job_id!r}.")
    job_dir = (settings or load_settings()).jobs_dir / job_id
    if not (job_dir / "state.json").is_file():
        raise NotFoundError(f"No job {job_id!r}.")
    return job_dir


def append_log(job_dir: Path, text: str) -> None:
    with open(job_dir / "log.txt", "a", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")


def _reap() -> None:
    for pid, child in list(_CHILDREN.items()):
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)


def _is_dead(state: JobState) -> bool:
    if state.pid is None:
        return state.status == "queued" and time.time() - state.created > _START_GRACE
    try:
        # Nobody waits for the worker (its parent may be gone), so it can linger as a zombie.
        return psutil.Process(state.pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False


def start(spec, settings: Settings | None = None) -> JobState:
    """Start the background job a spec describes (an EvalSpec, a TrainSpec, ...: its class names the kind)."""
    start_ = job_start(spec)
    return start_job(start_.kind.name, start_.to_args(spec), settings)


def start_job(kind: str, args: dict, settings: Settings | None = None) -> JobState:
    """Create a job folder and launch its worker process; returns the queued state."""
    settings = settings or load_settings()
    target = job_kind(kind).target
    try:
        json.dumps(args)
    except (TypeError, ValueError) as e:
        raise InputError(f"Job arguments must be JSON data: {e}") from e
    settings.jobs_dir.mkdir(parents=True, exist_ok=True)
    while True:  # a time-based id sorts by creation; the suffix makes it unique
        job_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        job_dir = settings.jobs_dir.resolve() / job_id  # absolute: the worker runs in ROOT
        with contextlib.suppress(FileExistsError):
            job_dir.mkdir()
            break
    state = JobState(
        id=job_id, kind=kind, args=dict(args), status="queued", progress=0.0, message="", created=time.time()
    )
    # The target is stored too: a kind registered at run time is unknown to the fresh worker.
    _write(job_dir, {**asdict(state), "target": target})
    env = {**os.environ, "STUDIO_DATA_DIR": str(settings.data_dir.resolve()), "PYTHONUNBUFFERED": "1"}
    env = allocator_env(env, release_freed=kind == "ingest")  # faster, in less memory: see engine.allocator
    cmd = [sys.executable, "-m", "engine", "job", "run", str(job_dir)]
    # A new session: the worker is not killed with the Streamlit server or the terminal.
    popen = dict(cwd=ROOT, env=env, stdin=DEVNULL, stderr=STDOUT, start_new_session=True)
    try:
        with open(job_dir / "log.txt", "ab") as log:
            proc = Popen(cmd, stdout=log, **popen)
    except OSError as e:
        update_state(job_dir, status="failed", error=f"could not start the job: {e}", finished=time.time())
        raise StudioError(f"Could not start the job: {e}") from e
    _reap()
    _CHILDREN[proc.pid] = proc
    return update_state(job_dir, pid=proc.pid)


def get_job(job_id: str, settings: Settings | None = None) -> JobState:
    """The job's current state; a job whose process died unnoticed is reported (and saved) failed."""
    job_dir = _job_dir(job_id, settings)
    _reap()
    state = _state(read_state(job_dir))
    if not state.done and _is_dead(state):
        # Re-checked under the lock: the worker may have finished between the read and the check.
        state = update_state(
            job_dir, lambda s: not s.done and _is_dead(s), status="failed", error=DIED, finished=time.time()
        )
    return state


def list_jobs(kind: str | None = None, settings: Settings | None = None) -> list[JobState]:
    """All jobs (of one kind, if given), newest first; unreadable folders are skipped."""
    settings = settings or load_settings()
    jobs = []
    for path in settings.jobs_dir.glob("*/state.json"):
        try:
            state = get_job(path.parent.name, settings)
        except (StudioError, OSError, ValueError, TypeError, KeyError):
            continue
        if kind is None or state.kind == kind:
            jobs.append(state)
    return sorted(jobs, key=lambda s: (s.created, s.id), reverse=True)


def cancel_job(job_id: str, settings: Settings | None = None) -> JobState:
    """Ask a job to stop (flag file, and SIGTERM to its process); a finished job is left as is."""
    state = get_job(job_id, settings)
    if state.done:
        return state
    job_dir = _job_dir(job_id, settings)
    (job_dir / "cancel").touch()
    if state.pid is not None and not _is_dead(state):
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signal.SIGTERM)
    return get_job(job_id, settings)


def request_stop(job_id: str, settings: Settings | None = None) -> JobState:
    """Ask a job to stop gracefully: unlike cancel, the task finishes its step and keeps its work
    (a training job saves a checkpoint and the adapter)."""
    state = get_job(job_id, settings)
    if not state.done:
        (_job_dir(job_id, settings) / "stop").touch()
    return state


def tail_log(job_id: str, lines: int = 20, settings: Settings | None = None) -> list[str]:
    """The last ``lines`` lines of the job's log (read from its end, however long it is)."""
    path = _job_dir(job_id, settings) / "log.txt"
    if not path.exists() or lines <= 0:
        return []
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 256 * 1024))
        text = f.read().decode("utf-8", errors="replace")
    return text.splitlines()[-lines:]


def wait_job(job_id: str, timeout: float, settings: Settings | None = None, poll: float = 0.2) -> JobState:
    """Poll until the job is done or ``timeout`` seconds passed; returns the last state seen."""
    deadline = time.monotonic() + timeout
    state = get_job(job_id, settings)
    while not state.done and time.monotonic() < deadline:
        time.sleep(poll)
        state = get_job(job_id, settings)
    return state
