"""The guided loop on Home: a folder of documents to a measured, better model, step by step as a background job."""

import pandas as pd
import streamlit as st

from engine import jobs
from engine.data.steps import DatasetStep
from engine.loop import (
    AUTO,
    LoopRun,
    LoopSpec,
    list_loops,
    misses_args,
    next_step,
    read_loop,
    start_loop,
    step_rows,
)
from engine.qa.versions import DatasetStore
from ui import resources as r
from ui.job_panel import show_job
from ui.knobs import knob_input
from ui.widgets import user_errors

HELP = (
    "Point the Studio at a folder of your documents. It builds a knowledge base, writes QA pairs from them "
    "(review them on the Datasets page), measures the base model on your questions, trains an adapter with the "
    "measured collection recipe (continuing your HotpotQA adapter, if you have trained one: it measured best), "
    "measures it on the same questions and compares the two with a paired 95% "
    "interval; a measurably better adapter becomes the model the Query page answers with."
)

START_LABELS = {AUTO: "a fitting HotpotQA adapter (auto)", "": "a new adapter"}


def new_loop_form() -> None:
    with st.form("new-loop"):
        cols = st.columns([1, 2, 1])
        name = cols[0].text_input(
            "Collection name",
            placeholder="my-notes",
            help="Names the knowledge base, <name>-qa and <name>-lora. Letters, digits, '.', '_' and '-'.",
        )
        folder = cols[1].text_input(
            "Folder of documents",
            placeholder="/home/me/notes",
            help="Text, Markdown, PDF, HTML, Word (.docx) and JSONL files; links out of it are left out.",
        )
        questions = knob_input(
            cols[2],
            LoopSpec,
            "questions",
            ["", *DatasetStore(r.settings()).datasets()],
            format_func=lambda d: d or "the generated test split",
        )
        more = st.columns(4)
        passages = knob_input(more[0], LoopSpec, "passages")
        limit = knob_input(more[1], LoopSpec, "eval_limit")
        starts = [AUTO, "", *r.adapter_names()]
        start = knob_input(more[2], LoopSpec, "start_from", starts, format_func=lambda a: START_LABELS.get(a, a))
        stop = knob_input(more[3], LoopRun, "until", format_func=lambda s: s or "the last step")
        if st.form_submit_button("Start the loop", type="primary"):
            spec = LoopSpec(
                name=name.strip(),
                folder=folder.strip(),
                questions=questions,
                passages=int(passages),
                eval_limit=int(limit),
                start_from=start,
            )
            start_loop(r.settings(), spec)
            st.session_state["loop-job"] = jobs.start(LoopRun(spec.name, stop)).id
            st.session_state["loop-name"] = spec.name


def loop_panel() -> None:
    """Start a loop, or follow and continue one: its steps, the running job, the comparison."""
    st.subheader("Your documents, end to end")
    st.caption(HELP)
    with user_errors():
        names = list_loops(r.settings())
        if names:
            live(st.selectbox("Loop", names, key="loop-name"))
        with st.expander("Start a new loop", expanded=not names):
            new_loop_form()


@st.fragment(run_every=3.0)
def live(name: str) -> None:
    """The loop's steps (done, running, to do), its job's progress, and the buttons that continue it."""
    with user_errors():
        record = read_loop(r.settings(), name)
        state = show_job("loop", "loop-job", rerun_when_done=True)
        running = bool(state and not state.done and state.args.get("name") == name)
        st.dataframe(
            pd.DataFrame(step_rows(record, next_step(record) if running else "")), hide_index=True, width="stretch"
        )
        if (step := next_step(record)) and not running:
            cols = st.columns([1, 1, 3])
            if cols[0].button(f"Run from {step}", type="primary", key="loop-continue"):
                st.session_state["loop-job"] = jobs.start(LoopRun(name)).id
                st.rerun()
            if cols[1].button(f"Run {step} only", key="loop-one"):
                st.session_state["loop-job"] = jobs.start(LoopRun(name, step)).id
                st.rerun()
        if (args := misses_args(record)) and not running:
            if st.button(
                "Make training items from the test misses",
                key="loop-misses",
                help="A new version of the QA set: the training items nearest to each question the adapter "
                "got wrong, varied. A test question is never trained on.",
            ):
                st.session_state["loop-misses-job"] = jobs.start(DatasetStep(**args)).id
            show_job("dataset", "loop-misses-job", rerun_when_done=True)
