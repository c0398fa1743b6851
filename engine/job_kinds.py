"""The kinds of background job, each registered by the package that owns its work (as PEFT registers its
methods): a name, the task the worker process runs, and the typed specs a job of the kind starts from.

A spec's ``to_args`` turns it into the task's arguments (JSON data; ``asdict`` by default).
``engine.jobs.start(spec)`` finds the kind by the spec's class; the worker imports the task by the target
stored with the job.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

from engine.errors import InputError

NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


@dataclass(frozen=True)
class JobKind:
    name: str
    target: str  # "package.module:function": fn(args: dict, ctx: JobContext) -> dict


@dataclass(frozen=True)
class JobStart:
    """How a spec of one class starts a job: its kind, and its arguments."""

    kind: JobKind
    to_args: Callable  # spec -> the task's arguments


KINDS: dict[str, JobKind] = {}
STARTS: dict[type, JobStart] = {}


def register_job_kind(name: str, task: Callable | str, spec: type | None = None, to_args: Callable = asdict) -> JobKind:
    """Make ``name`` run ``task`` (a function, or its ``"module:function"``), started from ``spec`` objects whose
    arguments ``to_args`` makes. A kind may be registered again with another spec (the same task)."""
    target = task if isinstance(task, str) else f"{task.__module__}:{task.__qualname__}"
    if not NAME.match(name) or ":" not in target:
        raise InputError(f"Bad job kind {name!r} -> {target!r}: expected a name and 'module:function'.")
    kind = KINDS[name] = JobKind(name, target)
    if spec is not None:
        STARTS[spec] = JobStart(kind, to_args)
    return kind


def job_kind(name: str) -> JobKind:
    if name not in KINDS:
        raise InputError(f"Unknown job kind {name!r}; known kinds: {', '.join(sorted(KINDS))}.")
    return KINDS[name]


def job_start(spec) -> JobStart:
    """How a spec object starts its job."""
    if type(spec) not in STARTS:
        raise InputError(f"No job kind starts from a {type(spec).__name__}.")
    return STARTS[type(spec)]
