"""The worker side of background jobs: ``python -m engine job run <job_dir>`` runs one task,
reporting through a :class:`JobContext`; see :mod:`engine.jobs` for starting and reading jobs."""

from __future__ import annotations

import importlib
import json
import os
import signal
import threading
import time
import traceback
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Any

from engine.errors import InputError, StudioError, describe, exit_status
from engine.job_kinds import KINDS
from engine.jobs import (
    JobState,
    append_log,
    cancel_job,
    get_job,
    list_jobs,
    read_state,
    update_state,
)

_PROGRESS_INTERVAL = 0.25  # seconds between two progress writes (the final state is always written)


class JobCancelled(Exception):
    """Raised inside a task when its job was cancelled (flag file or SIGTERM)."""


class JobContext:
    """What a running task uses to report progress, log, and notice cancellation."""

    def __init__(self, job_dir: Path | str):
        self.job_dir = Path(job_dir)
        self.fraction = 0.0
        self.message = ""
        self._last_write = 0.0

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress in 0..1 (and a message); written at most ~4 times a second, but
        1.0 at once, and the latest value always lands in the job's final state."""
        self.fraction = min(1.0, max(0.0, float(fraction)))
        self.message = message or self.message
        now = time.monotonic()
        if now - self._last_write >= _PROGRESS_INTERVAL or self.fraction >= 1.0:
            self._last_write = now
            update_state(self.job_dir, progress=self.fraction, message=self.message)

    def log(self, line: str) -> None:
        """Append a line to the job's log (flushed at once)."""
        append_log(self.job_dir, line)

    def set_run_id(self, run_id: str) -> None:
        """Record the MLflow run this job logs to."""
        update_state(self.job_dir, mlflow_run_id=run_id)

    @property
    def cancelled(self) -> bool:
        return (self.job_dir / "cancel").exists()

    @property
    def stop_requested(self) -> bool:
        """A graceful stop was asked for (see :func:`request_stop`): the task ends when it can."""
        return (self.job_dir / "stop").exists()

    def check_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if the job was asked to stop."""
        if self.cancelled:
            raise JobCancelled("cancelled")


REQUIRED = tuple(f.name for f in fields(JobState) if f.default is MISSING)  # what every job's state.json holds


def read_job(job_dir: Path) -> dict:
    """The stored state of the job in ``job_dir``; an InputError, with nothing in the folder touched, where
    ``job_dir`` is not a job folder of the Studio (no state.json, or one that is not a job's)."""
    not_a_job = f"{job_dir} is not a job folder of the Studio"
    try:
        data = read_state(job_dir)
    except OSError:
        raise InputError(f"{not_a_job} (there is no state.json in it).") from None
    except ValueError:  # not JSON, not UTF-8
        raise InputError(f"{not_a_job} (its state.json is not a job's state).") from None
    missing = [k for k in REQUIRED if k not in data] if isinstance(data, dict) else list(REQUIRED)
    if missing:
        raise InputError(f"{not_a_job} (its state.json has no {', '.join(missing)}).")
    if not isinstance(data["args"], dict) or data["id"] != job_dir.name:
        raise InputError(f"{not_a_job} (its state.json is not the state of a job {job_dir.name!r}).")
    return data


def run_job(job_dir: Path | str) -> JobState:
    """Run a queued job to its end, in this process (the worker entry point)."""
    job_dir = Path(job_dir).resolve()
    data = read_job(job_dir)
    if data["status"] != "queued":
        raise InputError(f"Job {data['id']} is {data['status']}, not queued.")
    ctx = JobContext(job_dir)
    armed = [True]

    def on_sigterm(signum, frame):
        # Raising here interrupts the task wherever it is (even mid-sleep), unlike the flag file.
        if armed[0]:
            armed[0] = False
            raise JobCancelled("cancelled (SIGTERM)")

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if main else None
    final: dict[str, Any] = {}
    try:
        update_state(job_dir, status="running", pid=os.getpid(), started=time.time())
        ctx.check_cancelled()
        target = data.get("target") or getattr(KINDS.get(data["kind"]), "target", "")
        if ":" not in str(target):
            raise InputError(f"Job {data['id']} is of an unknown kind {data['kind']!r}.")
        module, _, name = str(target).partition(":")
        fn = getattr(importlib.import_module(module), name)  # imported here: heavy kinds stay lazy
        result = fn(dict(data["args"]), ctx)
        result = {} if result is None else result
        json.dumps(result)  # a result that cannot be stored fails the job, here rather than later
        armed[0] = False
        final = {"status": "succeeded", "progress": 1.0, "result": result}
    except JobCancelled:
        armed[0] = False
        final = {"status": "cancelled"}
    except StudioError as e:
        armed[0] = False
        final = {"status": "failed", "error": str(e)}
    except BaseException as e:  # any crash of the task is the job's failure: one line, the traceback logged
        armed[0] = False
        append_log(job_dir, traceback.format_exc())
        final = {"status": "failed", "error": describe(e, f"job {data['id']} ({data['kind']})")}
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous or signal.SIG_DFL)
    final.setdefault("progress", ctx.fraction)
    state = update_state(job_dir, message=ctx.message, finished=time.time(), **final)
    append_log(job_dir, f"job {state.id} {state.status}" + (f": {state.error}" if state.error else ""))
    return state


def main_job(argv: list[str]) -> int:
    """``python -m engine job ...``: ``run <job_dir>``, ``list``, ``status <id>``, ``cancel <id>``."""
    usage = "usage: python -m engine job {run <job_dir> | list | status <id> | cancel <id>}"
    cmd, rest = (argv[0], argv[1:]) if argv else ("", [])

    def command() -> int:
        if cmd == "run" and len(rest) == 1:
            return 0 if run_job(rest[0]).status == "succeeded" else 1
        if cmd == "list" and not rest:
            for s in list_jobs():
                print(f"{s.id}  {s.kind:<8} {s.status:<9} {s.progress:4.0%}  {s.message}")
            return 0
        if cmd in ("status", "cancel") and len(rest) == 1:
            state = get_job(rest[0]) if cmd == "status" else cancel_job(rest[0])
            print(json.dumps(asdict(state), indent=2))
            return 0
        raise InputError(usage)

    return exit_status(command)
