"""QA datasets: import or generate, browse, topics, leak-free splits, versions, augmentation, export, KB refresh."""

from dataclasses import asdict

import pandas as pd
import streamlit as st

from engine import jobs
from engine.data import steps
from engine.data.augment import KINDS
from engine.data.exports import jsonl_text
from engine.data.summary import diff
from engine.data.topics import TEXTS
from engine.data.versions import DatasetStore
from engine.evaluation.history import evaluation_runs
from ui import resources as r
from ui.datasets import browser, funnel_chart, generation_form, import_tab, job_panel, topic_map, version_picker
from ui.widgets import page_header, user_errors

page_header(
    "Datasets",
    "🗂️",
    "Turn documents into a curated, versioned QA dataset: every step saves a new immutable version "
    "(its id is a hash of its content) that names its parent, and is logged to MLflow (experiment studio-datasets).",
)
settings = r.settings()
store = DatasetStore(settings)
tabs = st.tabs(["Import", "Generate", "Browse", "Topics", "Split", "Versions", "Augment", "Export", "Knowledge base"])

with tabs[0], user_errors():
    import_tab(settings, r.tracker)

with tabs[1], user_errors():
    st.caption(
        "Answer spans are picked from each passage, the local model writes a question for each, and filters "
        "keep the pairs that are well formed and survive a retrieval and answering round trip."
    )
    if spec := generation_form():
        st.session_state["generate-job"] = jobs.start_job("generate-qa", asdict(spec)).id
    job_panel("generate-qa", "generate-job", funnel_chart)

with tabs[2], user_errors():
    if picked := version_picker(store, "browse"):
        browser(store.load(*picked))
        with st.expander("Stats and quality report"):
            st.json(store.report(*picked))

with tabs[3], user_errors():
    if picked := version_picker(store, "topics"):
        topic_map(store.load(*picked))
        cols = st.columns(4)
        method = cols[0].selectbox("Method", ("kmeans", "hdbscan"), help="KMeans with k chosen by silhouette.")
        k_min = cols[1].number_input("k from", 2, 50, 4)
        k_max = cols[2].number_input("k to", 2, 80, 16)
        text = cols[3].selectbox("Cluster on", TEXTS, help="What is embedded: the passage (what an item is about), "
                                 "the question, or both.")  # fmt: skip
        if st.button("Cluster into topics (a new version)"):
            spec = {"method": method, "k_min": int(k_min), "k_max": int(k_max), "text": text}
            args = {"step": "topics", "dataset": picked[0], "version": picked[1], "spec": spec}
            st.session_state["topics-job"] = jobs.start_job("dataset", args).id
        job_panel("dataset", "topics-job", lambda res: st.success(f"Saved version {res['version']}: {res['report']}"))

with tabs[4], user_errors():
    if picked := version_picker(store, "split"):
        cols = st.columns(2)
        seed = cols[0].number_input("Seed", 0, 10_000, 0)
        threshold = cols[1].number_input("Near-duplicate cosine", 0.5, 1.0, 0.95, 0.01)
        st.caption("80/10/10, stratified by topic, every document's items in one split; then the leakage check.")
        if st.button("Split (a new version)"):
            args = {"step": "split", "dataset": picked[0], "version": picked[1], "spec": {"seed": int(seed)},
                    "threshold": float(threshold)}  # fmt: skip
            st.session_state["split-job"] = jobs.start_job("dataset", args).id

        def show_split(res: dict) -> None:
            st.success(f"Saved version {res['version']}")
            st.dataframe(pd.DataFrame([res["sizes"]]), hide_index=True)
            st.markdown("**Leakage across splits** (each should be 0)")
            st.dataframe(pd.DataFrame([res["report"]]), hide_index=True)

        job_panel("dataset", "split-job", show_split)

with tabs[5], user_errors():
    names = store.datasets()
    if names:
        dataset = st.selectbox("Dataset", names, key="versions-dataset")
        manifests = store.versions(dataset)
        st.dataframe(pd.DataFrame([m.to_dict() for m in manifests]).drop(columns=["prompt"]), hide_index=True)
        ids = [m.id for m in manifests]
        cols = st.columns(2)
        old = cols[0].selectbox("Compare", ids, index=min(1, len(ids) - 1))
        new = cols[1].selectbox("with", ids, index=0)
        found = diff(store.load(dataset, old), store.load(dataset, new))
        st.write(f"**{len(found.added)} added, {len(found.removed)} removed, {len(found.changed)} changed, "
                 f"{found.unchanged} unchanged**")  # fmt: skip
        st.dataframe(pd.DataFrame([{"stat": k, "change": v} for k, v in found.stat_deltas.items() if v]))
    else:
        st.info("No dataset yet.")

with tabs[6], user_errors():
    if picked := version_picker(store, "augment"):
        kinds = st.multiselect("Kinds", KINDS, default=list(KINDS), help="Each variant stays in its origin's split.")
        if st.button("Augment (a new version)"):
            args = {"step": "augment", "dataset": picked[0], "version": picked[1], "spec": {"kinds": kinds}}
            st.session_state["augment-job"] = jobs.start_job("dataset", args).id
        st.markdown("**Hard cases**: variants of the items an evaluation run got wrong.")
        runs = evaluation_runs(r.tracker(), 30)
        if runs.empty:
            st.caption("No evaluation run yet (Benchmarks page).")
        else:
            about = {row.run_id: f"{row.run_id[:8]} · {row.mode} · {row.model} · F1 {row.f1:.1f}"
                     for row in runs.itertuples()}  # fmt: skip
            run_id = st.selectbox("Evaluation run", list(about), format_func=about.get)
            threshold = st.slider("Wrong below F1", 1, 100, 50)
            if st.button("Make hard cases (a new version)"):
                args = {"step": "hard-cases", "dataset": picked[0], "version": picked[1], "run_id": run_id,
                        "threshold": float(threshold), "spec": {"kinds": kinds}}  # fmt: skip
                st.session_state["augment-job"] = jobs.start_job("dataset", args).id
        job_panel("dataset", "augment-job", lambda res: st.success(f"Saved version {res['version']}: {res['report']}"))

with tabs[7], user_errors():
    if picked := version_picker(store, "export"):
        lines = jsonl_text(store.load(*picked))
        st.download_button("Download JSONL", lines, f"{picked[0]}-{picked[1]}.jsonl", "application/jsonl")
        target = st.text_input("Or write to (a .jsonl / .csv file, or a folder for the Hugging Face format)")
        overwrite = st.checkbox("Overwrite an earlier export of the Studio there (never anything else)")
        if st.button("Export") and target.strip():
            st.success(f"Written to {steps.export_version(settings, *picked, target.strip(), overwrite=overwrite)}")

with tabs[8], user_errors():
    st.caption("Only new or changed documents are embedded; removed ones are deleted; an on-disk cache "
               "(content hash + embedder) makes re-embedding free.")  # fmt: skip
    kb = st.text_input("Knowledge base", "my-qa-kb")
    source = st.radio("From", ("a dataset version's passages", "a local path"), horizontal=True)
    picked = version_picker(store, "kb") if source.startswith("a dataset") else None
    path = st.text_input("Path", placeholder="../shared/data/wiki-passages.jsonl") if picked is None else ""
    if st.button("Build or refresh"):
        args = {"kb": kb.strip()} | ({"dataset": picked[0], "version": picked[1]} if picked else {"path": path.strip()})
        st.session_state["refresh-job"] = jobs.start_job("refresh", args).id
    job_panel("refresh", "refresh-job", lambda res: st.dataframe(pd.DataFrame([res]), hide_index=True))
