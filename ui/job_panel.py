"""The one panel that shows a background job, on every page: progress, elapsed time and ETA, the log tail, Cancel
(and Stop, where the job can end early and keep its work), the MLflow run, the result once it succeeded, and what
to do next. It survives a reload: the page's job is kept in the session, else the newest of its kind is shown."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from engine import jobs
from ui.widgets import user_errors

POLL_SECONDS = 1.0


def eta_text(state: jobs.JobState) -> str:
    """Elapsed time, and the time left at the rate so far (once there is a rate to go by)."""
    elapsed = f"{state.elapsed:.0f} s"
    if state.done or not 0.02 <= state.progress < 1 or state.elapsed < 5:
        return elapsed
    left = state.elapsed * (1 - state.progress) / state.progress
    return f"{elapsed} · about {left / 60:.0f} min left" if left >= 90 else f"{elapsed} · about {left:.0f} s left"


def current_job(kind: str, key: str) -> str | None:
    """The job this page shows: the one it started (kept in the session), else after a reload
    the newest job of its kind, running or finished."""
    if key not in st.session_state:
        recent = jobs.list_jobs(kind)
        if recent:
            st.session_state[key] = recent[0].id
    return st.session_state.get(key)


def job_status(job_id: str, stop: str = "") -> jobs.JobState:
    """Progress bar, elapsed and ETA, Cancel (and ``stop``, the label of a button that asks the job to end early),
    errors, the MLflow run and the last log lines of one background job."""
    state = jobs.get_job(job_id)
    # A finished job's last progress message ("loading the model") would read as if it were still at it.
    shown = state.message and state.status != "succeeded"
    label = f"{state.kind} · {state.status} · {state.message}" if shown else f"{state.kind} · {state.status}"
    st.progress(min(max(state.progress, 0.0), 1.0), text=label)
    cols = st.columns([2, 1, 2])
    cols[0].caption(eta_text(state))
    if not state.done and cols[1].button("Cancel", key=f"cancel-{job_id}"):
        jobs.cancel_job(job_id)
        state = jobs.get_job(job_id)
    if stop and not state.done and cols[2].button(stop, key=f"stop-{job_id}"):
        jobs.request_stop(job_id)
        st.toast("Stopping after this step…")
    if state.status == "failed":
        st.error(f"The job failed: {state.error}")
    elif state.status == "cancelled":
        st.warning("The job was cancelled.")
    if state.mlflow_run_id:
        st.caption(f"MLflow run `{state.mlflow_run_id}`")
    with st.expander("Log", expanded=state.status == "failed"):
        st.code("\n".join(jobs.tail_log(job_id, 15)) or "(empty)")
    return state


def show_job(
    kind: str,
    key: str,
    render: Callable[[dict], None] | None = None,
    next_step: str = "",
    rerun_when_done: bool = False,
    stop: str = "",
    always: Callable[[jobs.JobState], None] | None = None,
) -> jobs.JobState | None:
    """The page's current job of ``kind``: its status; ``render(result)`` and ``next_step`` once it succeeded;
    ``always(state)`` on every poll (live curves); with ``rerun_when_done``, the whole page reruns once when it
    ends, so what it made appears below."""
    job_id = current_job(kind, key)
    if not job_id:
        return None
    with user_errors():
        state = job_status(job_id, stop)
        if always is not None:
            always(state)
        if state.status == "succeeded":
            if render is not None and state.result:
                render(state.result)
            if next_step:
                st.info(next_step)
        if rerun_when_done and state.done and st.session_state.get(f"{key}-shown") != job_id:
            st.session_state[f"{key}-shown"] = job_id
            st.rerun()
        return state
    return None


# show_job polled every second: a fragment, so only the panel reruns.
job_panel = st.fragment(show_job, run_every=POLL_SECONDS)
