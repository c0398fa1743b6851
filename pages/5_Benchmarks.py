"""Batch evaluation on a QA set (yours, or HotpotQA) as a background job: progress, results, drill-down, history."""

import plotly.express as px
import streamlit as st

from engine import jobs
from engine.evaluation.history import evaluation_runs, per_question
from ui import resources as r
from ui.benchmarks import eval_form, matrix_section, result_metrics, row_scores
from ui.job_panel import job_panel
from ui.widgets import page_header, user_errors

page_header(
    "Benchmarks",
    "📊",
    "Evaluation on a QA set of yours or on HotpotQA (EM/F1 with the official normalization, retrieval recall@k, "
    "MRR, nDCG), and benchmark matrices: speed, memory and quality of a model at each precision, with llama.cpp "
    "beside it.",
)
with user_errors():
    if spec := eval_form():
        st.session_state["eval-job"] = jobs.start(spec).id

    job_panel("eval", "eval-job", rerun_when_done=True)

    tracker = r.tracker()
    job_id = st.session_state.get("eval-job")
    state = jobs.get_job(job_id) if job_id else None
    if state and state.status == "succeeded" and state.mlflow_run_id:
        st.subheader("Results")
        result_metrics(state.result["metrics"])
        table = per_question(tracker, state.mlflow_run_id)
        shown = table.drop(columns=["raw", "messages"], errors="ignore")  # long texts (the raw output: below)
        st.dataframe(shown, hide_index=True, width="stretch", height=300)
        choice = st.selectbox("Drill down", table.index, format_func=lambda i: table.loc[i, "question"][:120])
        row = table.loc[choice]
        st.markdown(f"**Question:** {row['question']}")
        st.markdown(row_scores(row))
        st.caption(f"Raw output: {row['raw']}")
        if "retrieved" in row and row["retrieved"]:
            st.markdown(f"**Retrieved:** {row['retrieved']}  \n**Supporting:** {row['supporting']}")

    st.subheader("Past evaluation runs")
    runs = evaluation_runs(tracker)
    if runs.empty:
        st.info("No evaluation has run yet.")
    else:
        fig = px.line(
            runs.sort_values("started"),
            x="started",
            y="f1",
            color="mode",
            markers=True,
            hover_data=["em", "recall_at_5", "limit", "model", "run_id"],
            title="F1 by run",
        )
        st.plotly_chart(fig, width="stretch")
        st.dataframe(
            runs.round(dict.fromkeys(runs.select_dtypes("number").columns, 3)), hide_index=True, width="stretch"
        )

    st.header("Benchmark matrix")
    st.caption(
        "Each precision is loaded in a fresh process and measured on the same RAG prompts: load time, time to "
        "first token, decoding and batched tokens/s, peak memory, perplexity, and EM/F1 against the reference "
        "with a paired bootstrap interval. Runs are logged to MLflow (studio-benchmarks)."
    )
    matrix_section()
