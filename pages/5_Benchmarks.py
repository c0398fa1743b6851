"""Batch evaluation on HotpotQA as a background job: progress, results, drill-down, history."""

import plotly.express as px
import streamlit as st

from engine import jobs
from engine.evaluation.history import evaluation_runs, per_question
from engine.evaluation.runner import MODES, EvalSpec, resolve_data
from engine.models.spec import spec_for
from ui import resources as r
from ui.benchmarks import matrix_section
from ui.widgets import page_header, user_errors, watch_job

page_header(
    "Benchmarks",
    "📊",
    "HotpotQA evaluation (EM/F1 with the official normalization, retrieval recall@k, MRR, nDCG), and benchmark "
    "matrices: speed, memory and quality of a model at each precision, with llama.cpp beside it.",
)
MODE_HELP = (
    "closed-book: no sources; distractor: retrieval among the question's own 10 paragraphs; "
    "kb: retrieval from the hotpotqa-wiki knowledge base."
)

with user_errors():
    with st.form("eval"):
        cols = st.columns(5)
        data = cols[0].text_input("Dataset", "hotpotqa-dev.jsonl", help="A path, or a file in the shared data folder.")
        mode = cols[1].selectbox(
            "Mode",
            MODES,
            index=1,
            help=MODE_HELP,
        )
        limit = cols[2].number_input("Questions", 1, 1000, 50)
        k = cols[3].number_input("k", 1, 10, 5)
        batch = cols[4].number_input("Batch size", 1, 64, 16)
        more = st.columns(5)
        model = more[0].text_input("Model", placeholder="bundled SmolLM2-135M", help=r.MODEL_HELP)
        adapter = more[1].selectbox("Adapter", ["", *r.adapter_names()], format_func=lambda a: a or "none",
                                    help="A LoRA adapter from the Fine-tune page, merged into the model.")  # fmt: skip
        split = more[2].selectbox(
            "Questions", ["", "test", "validation", "train"], format_func=lambda s: s or "the file's first N",
            help="test / validation / train: the fixed HotpotQA split used for fine-tuning (600/100/300).",
        )  # fmt: skip
        prompt = more[3].selectbox("Prompt", ["", "few-shot", "zero-shot"], format_func=lambda p: p or "automatic",
                                   help="automatic: the adapter's training prompt, else few-shot.")  # fmt: skip
        follow = more[4].number_input(
            "Follow links from the first", 0, 5, EvalSpec.follow_links,
            help="distractor mode: passages whose title the first N retrieved passages mention move up "
            "(a second hop for multi-hop questions); 0: the embedding ranking only.",
        )  # fmt: skip
        if st.form_submit_button("Start evaluation", type="primary"):
            spec = EvalSpec(
                data=data, mode=mode, limit=int(limit), k=int(k), batch_size=int(batch), model=model.strip(),
                adapter=adapter, split=split, prompt=prompt, follow_links=int(follow),
            )  # fmt: skip
            spec_for(spec.model)  # bad paths are reported here, before a job starts
            resolve_data(spec.data, r.settings())
            st.session_state["eval-job"] = jobs.start_job("eval", spec.__dict__).id

    @st.fragment(run_every=1.0)
    def progress() -> None:
        watch_job("eval", "eval-job")

    progress()

    tracker = r.tracker()
    job_id = st.session_state.get("eval-job")
    state = jobs.get_job(job_id) if job_id else None
    if state and state.status == "succeeded" and state.mlflow_run_id:
        st.subheader("Results")
        metrics = state.result["metrics"]
        cols = st.columns(5)
        for col, name in zip(cols, ("em", "f1", "recall@5", "mrr", "questions_per_s"), strict=True):
            if name in metrics:
                col.metric(name, f"{metrics[name]:.1f}" if name in ("em", "f1") else f"{metrics[name]:.3f}")
        table = per_question(tracker, state.mlflow_run_id)
        st.dataframe(table.drop(columns=["raw"]), hide_index=True, width="stretch", height=300)
        choice = st.selectbox("Drill down", table.index, format_func=lambda i: table.loc[i, "question"][:120])
        row = table.loc[choice]
        st.markdown(f"**Question:** {row['question']}")
        st.markdown(
            f"**Gold:** {row['gold']} · **Prediction:** {row['prediction']} · EM {row['em']:.0f} · F1 {row['f1']:.1f}"
        )
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
