"""The Datasets page's step tabs: topics, split, versions and diff, augmentation (each saves a new version),
export, and the knowledge-base refresh."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import jobs
from engine.data import steps
from engine.data.augment import KINDS
from engine.data.knowledge import IngestRun
from engine.data.splits import SplitSpec
from engine.data.steps import DatasetStep
from engine.data.topics import TopicSpec
from engine.evaluation.history import evaluation_runs
from engine.qa.exports import jsonl_text
from engine.qa.summary import diff
from engine.qa.versions import DatasetStore
from ui.datasets import topic_map, version_picker
from ui.job_panel import job_panel
from ui.knobs import knob_input, knob_row


def show_saved(result: dict) -> None:
    st.success(f"Saved version {result['version']}: {result['report']}")


def start_step(job_key: str, step: str, picked: tuple[str, str], **args) -> None:
    """Start the background ``dataset`` job of ``step`` on the picked version; the page shows it under ``job_key``."""
    st.session_state[job_key] = jobs.start(DatasetStep(step, picked[0], picked[1], **args)).id


def topics_tab(store: DatasetStore) -> None:
    if not (picked := version_picker(store, "topics")):
        return
    topic_map(store.load(*picked))
    spec = knob_row(TopicSpec, ("method", "k_min", "k_max", "text"), TopicSpec())
    if st.button("Cluster into topics (a new version)"):
        start_step("topics-job", "topics", picked, spec=spec)
    job_panel("dataset", "topics-job", show_saved)


def show_split(result: dict) -> None:
    st.success(f"Saved version {result['version']}")
    st.dataframe(pd.DataFrame([result["sizes"]]), hide_index=True)
    st.markdown("**Leakage across splits** (each should be 0)")
    st.dataframe(pd.DataFrame([result["report"]]), hide_index=True)


def split_tab(store: DatasetStore) -> None:
    if not (picked := version_picker(store, "split")):
        return
    cols = st.columns(2)
    seed = knob_input(cols[0], SplitSpec, "seed")
    threshold = cols[1].number_input("Near-duplicate cosine", 0.5, 1.0, 0.95, 0.01)
    st.caption("80/10/10, stratified by topic, every document's items in one split; then the leakage check.")
    if st.button("Split (a new version)"):
        start_step("split-job", "split", picked, spec={"seed": int(seed)}, threshold=float(threshold))
    job_panel("dataset", "split-job", show_split)


def versions_tab(store: DatasetStore) -> None:
    """A dataset's versions (newest first) and what changed between two of them."""
    names = store.datasets()
    if not names:
        st.info("No dataset yet.")
        return
    dataset = st.selectbox("Dataset", names, key="versions-dataset")
    manifests = store.versions(dataset)
    st.dataframe(pd.DataFrame([m.to_dict() for m in manifests]).drop(columns=["prompt"]), hide_index=True)
    ids = [m.id for m in manifests]
    cols = st.columns(2)
    old = cols[0].selectbox("Compare", ids, index=min(1, len(ids) - 1))
    new = cols[1].selectbox("with", ids, index=0)
    found = diff(store.load(dataset, old), store.load(dataset, new))
    st.write(
        f"**{len(found.added)} added, {len(found.removed)} removed, {len(found.changed)} changed, "
        f"{found.unchanged} unchanged**"
    )
    st.dataframe(pd.DataFrame([{"stat": k, "change": v} for k, v in found.stat_deltas.items() if v]))


def augment_tab(store: DatasetStore, tracker) -> None:
    """Augmented copies of a version, or variants of the items an evaluation run got wrong; ``tracker()`` gives
    the MLflow tracker, made only when needed."""
    if not (picked := version_picker(store, "augment")):
        return
    kinds = st.multiselect("Kinds", KINDS, default=list(KINDS), help="Each variant stays in its origin's split.")
    if st.button("Augment (a new version)"):
        start_step("augment-job", "augment", picked, spec={"kinds": kinds})
    st.markdown(
        "**Hard cases**: variants of the items an evaluation run got wrong. A test or validation miss "
        "is never trained on: its most similar training items are varied instead."
    )
    runs = evaluation_runs(tracker(), 30)
    if runs.empty:
        st.caption("No evaluation run yet (Benchmarks page).")
    else:
        about = {
            row.run_id: f"{row.run_id[:8]} · {row.mode} · {row.model} · "
            + (f"F1 {row.f1:.1f}" if pd.notna(row.f1) else "no gold answers")
            for row in runs.itertuples()
        }
        run_id = st.selectbox("Evaluation run", list(about), format_func=about.get)
        threshold = st.slider("Wrong below F1", 1, 100, 50)
        if st.button("Make hard cases (a new version)"):
            start_step(
                "augment-job", "hard-cases", picked, run_id=run_id, threshold=float(threshold), spec={"kinds": kinds}
            )
    job_panel("dataset", "augment-job", show_saved)


def export_tab(settings, store: DatasetStore) -> None:
    if not (picked := version_picker(store, "export")):
        return
    lines = jsonl_text(store.load(*picked))
    st.download_button("Download JSONL", lines, f"{picked[0]}-{picked[1]}.jsonl", "application/jsonl")
    target = st.text_input("Or write to (a .jsonl / .csv file, or a folder for the Hugging Face format)")
    overwrite = st.checkbox("Overwrite an earlier export of the Studio there (never anything else)")
    if st.button("Export") and target.strip():
        st.success(f"Written to {steps.export_version(settings, *picked, target.strip(), overwrite=overwrite)}")


def kb_tab(store: DatasetStore) -> None:
    """Build or refresh a knowledge base from a version's passages or a local path (a background job)."""
    st.caption(
        "Only new or changed documents are embedded; removed ones are deleted; an on-disk cache "
        "(content hash + embedder) makes re-embedding free."
    )
    kb = st.text_input("Knowledge base", "my-qa-kb")
    source = st.radio("From", ("a dataset version's passages", "a local path"), horizontal=True)
    picked = version_picker(store, "kb") if source.startswith("a dataset") else None
    path = st.text_input("Path", placeholder="../shared/data/wiki-passages.jsonl") if picked is None else ""
    if st.button("Build or refresh"):
        source = {"dataset": picked[0], "version": picked[1]} if picked else {"path": path.strip()}
        st.session_state["refresh-job"] = jobs.start(IngestRun(kb.strip(), **source, mirror=True)).id
    job_panel("ingest", "refresh-job", lambda res: st.dataframe(pd.DataFrame([res]), hide_index=True))
