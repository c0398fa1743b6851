"""User-facing errors, and the one edge where any other exception becomes a message for the user.

A StudioError is raised for bad input and shown as its message. Any other exception reaching the CLI, a job
worker or a page is the Studio's (or a library's) fault: the user gets one line saying what happened, and
what to do where the library is known (a damaged GGUF or safetensors file, Chroma, MLflow, memory), plus the
path of a log file holding the traceback; never the traceback itself.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from engine.settings import load_settings


class StudioError(Exception):
    """An error whose message is written for the user of the Studio."""


class InputError(StudioError):
    """The user's input (a question, a file, a path, a setting) cannot be used."""


class NotFoundError(StudioError):
    """A named thing (model, knowledge base, job, dataset) does not exist."""


# (a module name prefix or an exception class name, what to do): the first match in the exception's chain wins
ADVICE = (
    ("gguf", "The GGUF model file looks damaged or incomplete: download or reinstall it and try again."),
    (
        "safetensors",
        "A model file (safetensors) is damaged or incomplete: remove that model's folder in the data "
        "dir's models/ (the Studio converts the bundled model again) or download it again.",
    ),
    (
        "SafetensorError",
        "A model file (safetensors) is damaged or incomplete: remove that model's folder in the "
        "data dir's models/ or download it again.",
    ),
    (
        "chromadb",
        "The knowledge-base store (Chroma) refused the request: check the knowledge base's name and, "
        "with a Chroma server (STUDIO_CHROMA_URL), that it is running.",
    ),
    (
        "mlflow",
        "The run tracker (MLflow) failed: check that the data dir is writable and, with an MLflow server "
        "(MLFLOW_TRACKING_URI), that it is running.",
    ),
    (
        "sqlalchemy",
        "The run tracker's database (MLflow's SQLite file) failed: check that the data dir is writable "
        "and not full; another Studio process may hold it, so try again.",
    ),
    ("OutOfMemoryError", "Out of memory: choose a smaller model, a lower precision or a smaller batch."),
    ("MemoryError", "Out of memory: choose a smaller model, a lower precision or a smaller batch."),
    ("PermissionError", "The Studio may not write there: check the folder's permissions or choose another one."),
    ("OSError", "A file operation failed: check the path, free disk space and permissions."),
)


def _chain(exc: BaseException) -> list[BaseException]:
    found = []
    while exc is not None and exc not in found:
        found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


def advice_for(exc: BaseException) -> str:
    """What to do about a library's exception, if the Studio knows the library; else ''."""
    for key, advice in ADVICE:
        for link in _chain(exc):
            names = [cls.__name__ for cls in type(link).__mro__]
            if type(link).__module__.split(".")[0] == key or key in names:
                return advice
    return ""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def log_dir() -> Path:
    """Where tracebacks go: the data dir's ``logs/`` (the temp folder if that cannot be made)."""
    folder = load_settings().data_dir / "logs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except OSError:
        return Path(tempfile.gettempdir())


def log_traceback(exc: BaseException, where: str) -> Path | None:
    """Write the exception's traceback to a new log file; its path (None if nothing could be written)."""
    name = f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{id(exc) % 10_000:04d}.log"
    text = f"{where}\n{''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))}"
    for folder in (log_dir(), Path(tempfile.gettempdir())):
        try:
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def describe(exc: BaseException, where: str = "") -> str:
    """One line for the user: a StudioError's message; for anything else what failed, what to do, and the log."""
    if isinstance(exc, StudioError):
        return str(exc)
    log = log_traceback(exc, where)
    advice = advice_for(exc)
    line = f"{type(exc).__name__}: {first_line(exc)}"
    details = f" (details in {log})" if log else ""
    return f"{line}. {advice}{details}" if advice else f"Unexpected error: {line}{details}"


def exit_status(command, interrupted: str = "interrupted") -> int:
    """Run a CLI ``command()`` (returning its exit status): any error is one line on stderr and status 2 (a
    traceback goes to a log file, see :func:`describe`), Ctrl-C the ``interrupted`` note and status 130."""
    try:
        return command()
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"error: {describe(exc, 'command line: ' + ' '.join(sys.argv))}", file=sys.stderr)
        return 2


def check_choice(value, choices, what: str, context: str = "") -> None:
    """InputError unless ``value`` is one of ``choices``: "Unknown <what> 'x': choose one of a, b." (after
    ``context`` and a colon, when given: "Variant 'v': unknown dtype 'x': ...")."""
    if value not in choices:
        lead = f"{context}: unknown" if context else "Unknown"
        raise InputError(f"{lead} {what} {value!r}: choose one of {', '.join(str(c) for c in choices)}.")
