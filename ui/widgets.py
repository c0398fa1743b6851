"""Small widgets shared by the pages."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator

import streamlit as st

from engine import jobs
from engine.errors import StudioError, describe


def page_header(name: str, icon: str, caption: str = "") -> None:
    """The page's browser title, heading and one-line description (the first Streamlit call of a page)."""
    st.set_page_config(page_title=name if name == "Studio" else f"{name} · Studio", page_icon=icon, layout="wide")
    st.title(f"{icon} {name}")
    if caption:
        st.caption(caption)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Show any error as a message instead of a traceback: a StudioError as it is, anything else as one line
    with what to do and the log file holding its traceback (see :func:`engine.errors.describe`)."""
    try:
        yield
    except StudioError as exc:
        st.error(str(exc))
    except Exception as exc:  # Streamlit's rerun/stop signals are BaseExceptions: they pass through
        st.error(describe(exc, "a page of the app"))


def kb_picker(
    names: list[str], key: str, default: str = "studio-docs", incomplete: dict[str, str] | None = None
) -> str | None:
    """A knowledge-base select box; one an ingest left unfinished (``incomplete``: name -> state) is marked."""
    if not names:
        st.warning("There is no knowledge base yet. Ingest documents below.")
        return None
    incomplete = incomplete or {}
    index = names.index(default) if default in names else 0
    kb = st.selectbox(
        "Knowledge base", names, index=index, key=key,
        format_func=lambda n: f"{n} ({incomplete[n]})" if n in incomplete else n,
    )  # fmt: skip
    if kb in incomplete:
        st.warning(f"{kb} is {incomplete[kb]}: answers can miss what is not stored yet. Resume or roll back below.")
    return kb


def job_status(job_id: str) -> jobs.JobState:
    """Progress bar, message, last log lines and a cancel button for one background job."""
    state = jobs.get_job(job_id)
    # A finished job's last progress message ("loading the model") would read as if it were still at it.
    shown = state.message and state.status != "succeeded"
    label = f"{state.kind} · {state.status} · {state.message}" if shown else f"{state.kind} · {state.status}"
    st.progress(min(max(state.progress, 0.0), 1.0), text=label)
    cols = st.columns([1, 1, 4])
    cols[0].caption(f"{state.elapsed:.0f} s")
    if not state.done and cols[1].button("Cancel", key=f"cancel-{job_id}"):
        jobs.cancel_job(job_id)
        state = jobs.get_job(job_id)
    if state.status == "failed":
        st.error(f"The job failed: {state.error}")
    elif state.status == "cancelled":
        st.warning("The job was cancelled.")
    with st.expander("Log", expanded=state.status == "failed"):
        st.code("\n".join(jobs.tail_log(job_id, 15)) or "(empty)")
    return state


def current_job(kind: str, key: str) -> str | None:
    """The job this page shows: the one it started (kept in the session), else after a reload
    the newest job of its kind, running or finished."""
    if key not in st.session_state:
        recent = jobs.list_jobs(kind)
        if recent:
            st.session_state[key] = recent[0].id
    return st.session_state.get(key)


def watch_job(kind: str, key: str) -> jobs.JobState | None:
    """Show the page's current job of ``kind`` (progress, log, errors); when it finishes, rerun the
    whole page once so the results below it appear. Call inside a fragment that reruns itself."""
    job_id = current_job(kind, key)
    if not job_id:
        return None
    with user_errors():
        state = job_status(job_id)
        if state.done and st.session_state.get(f"{key}-shown") != job_id:
            st.session_state[f"{key}-shown"] = job_id
            st.rerun()
        return state
    return None


def seconds_since(ts: float) -> str:
    delta = time.time() - ts
    if delta < 90:
        return f"{delta:.0f} s ago"
    if delta < 5400:
        return f"{delta / 60:.0f} min ago"
    return f"{delta / 3600:.1f} h ago"


def coalesce(pieces: Iterable[str], every: float = 0.25) -> Iterator[str]:
    """The same text in fewer, larger pieces: at most one every ``every`` seconds.

    Each piece makes the browser redraw the answer; on a small machine those redraws take
    CPU from the model that is still generating.
    """
    buffer, last = "", time.monotonic()
    for piece in pieces:
        buffer += piece
        if time.monotonic() - last >= every:
            yield buffer
            buffer, last = "", time.monotonic()
    if buffer:
        yield buffer
