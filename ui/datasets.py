"""The Datasets page's widgets: the import tab, generation settings, the browser, topics, versions, jobs."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import plotly.express as px
import streamlit as st

from engine.data import steps
from engine.data.filters import FilterSpec
from engine.data.generation import GenerationSpec, teacher_spec
from engine.errors import InputError
from engine.knobs import knobs_of
from engine.qa.exports import to_frame
from engine.qa.records import NORMALIZERS
from engine.qa.versions import DatasetStore
from ui.configs import check_option, config_bar, config_footer, form_spec, knob_widgets
from ui.knobs import knob_input

SHARED = ("wiki-passages.jsonl", "hotpotqa-dev.jsonl", "dolly-15k-mini.jsonl")


def version_picker(store: DatasetStore, key: str, label: str = "Version") -> tuple[str, str] | None:
    """A dataset and one of its versions (newest first), or None when there is no dataset yet."""
    names = store.datasets()
    if not names:
        st.info("No dataset yet: import one or generate one.")
        return None
    cols = st.columns(2)
    dataset = cols[0].selectbox("Dataset", names, key=f"{key}-dataset")
    versions = store.versions(dataset)
    labels = {m.id: f"{m.id} · {m.created[:16]} · {m.counts.get('records')} records · {m.note[:40]}" for m in versions}
    version = cols[1].selectbox(label, list(labels), format_func=labels.get, key=f"{key}-version")
    return dataset, version


def import_form() -> dict | None:
    """The import settings: a shared file, an upload, a local path or a hub name; None until submitted."""
    with st.form("import"):
        dataset = st.text_input("Dataset name", "my-qa", help="Letters, digits, '.', '_' and '-'.")
        how = st.radio("Source", ("Shared data", "Upload", "Local path", "Hugging Face (online)"), horizontal=True)
        shared = st.selectbox("Shared file", SHARED[1:], help="Public data in the shared data folder.")
        upload = st.file_uploader("JSONL or CSV (question/answer(s), Dolly or HotpotQA fields)", type=["jsonl", "csv"])
        path = st.text_input("Local path", placeholder="/path/to/qa.jsonl or a saved Hugging Face dataset folder")
        hub = st.text_input("Hugging Face dataset name", placeholder="owner/name")
        cols = st.columns(2)
        kind = cols[0].selectbox(
            "Record kind",
            ("auto", *NORMALIZERS),
            help="questions: a file of questions without gold answers (evaluated for "
            "groundedness by the local judge, never trained on); answers: several gold "
            "answers per question (SQuAD's answers), any of which scores",
        )
        skip = cols[1].radio(
            "Malformed lines",
            ("stop and list them", "skip them"),
            horizontal=True,
            help="Skipped lines are listed with their line numbers.",
        )
        dedupe = st.checkbox(
            "Keep one record of each repeated id",
            help="Otherwise records that share an id stop the import, listed with their line numbers; "
            "the copies left out are listed.",
        )
        if not st.form_submit_button("Import", type="primary"):
            return None
    source = {"Shared data": shared, "Local path": path.strip(), "Hugging Face (online)": hub.strip()}.get(how)
    name = ""
    if how == "Upload":
        if upload is None:
            raise InputError("Choose a file to upload.")
        source, name = upload.getvalue(), upload.name
    if not source:
        raise InputError("Say where the data is: a path or a dataset name.")
    return {
        "dataset": dataset.strip(),
        "source": source,
        "name": name,
        "kind": kind,
        "on_error": "skip" if skip == "skip them" else "abort",
        "dedupe": dedupe,
    }


def import_tab(settings, tracker) -> None:
    """The Import tab: the form; once submitted, what the import saved and the lines it left out (malformed
    ones, and repeats of an id). ``tracker()`` gives the MLflow tracker, made only when needed."""
    if not (found := import_form()):
        return
    manifest, result = steps.import_source(settings, **found, tracker=tracker())
    st.success(f"Saved {manifest.dataset}@{manifest.id}: {len(result.records)} records ({result.format}).")
    if result.problems:
        st.warning(f"{result.skipped} malformed lines were skipped:\n\n" + "\n".join(result.problems[:20]))
    if result.dropped:
        st.warning(f"{len(result.dropped)} repeated ids were left out:\n\n" + "\n".join(result.dropped[:20]))


def generation_form(kbs: list[str]) -> GenerationSpec | None:
    """The generation settings: passages from a knowledge base's chunks (your documents) or a JSONL file,
    the teacher model, and the filters."""

    def widgets(spec: GenerationSpec) -> dict:
        check_option(spec.kb, ["", *kbs], "the knowledge base")
        return knob_widgets("generate", spec)

    base = config_bar("generate", GenerationSpec, "generate", widgets) or GenerationSpec()
    with st.form("generate"):
        cols = st.columns(3)
        kb = knob_input(
            cols[0],
            GenerationSpec,
            "kb",
            options=["", *kbs],
            format_func=lambda k: f"knowledge base {k}" if k else "the JSONL file",
            prefix="generate",
        )
        source = knob_input(cols[1], GenerationSpec, "source", prefix="generate")
        model = knob_input(cols[2], GenerationSpec, "model", placeholder="the default model", prefix="generate")
        cols = st.columns(3)
        dataset = knob_input(cols[0], GenerationSpec, "dataset", prefix="generate")
        passages = knob_input(cols[1], GenerationSpec, "passages", prefix="generate")
        per = knob_input(cols[2], GenerationSpec, "answers_per_passage", prefix="generate")
        st.markdown("**Quality filters** (re-applied on a resumed run, so they can be changed without regenerating)")
        names = list(knobs_of(FilterSpec))
        columns = zip(st.columns(len(names)), names, strict=True)
        values = {n: knob_input(c, FilterSpec, n, prefix="generate") for c, n in columns}
        submitted = st.form_submit_button("Generate", type="primary")
    spec = form_spec(
        submitted,
        lambda: replace(
            base,  # loaded settings keep what the form has no widget for
            source=source.strip(),
            kb=kb,
            dataset=dataset.strip(),
            passages=int(passages),
            answers_per_passage=int(per),
            model=model.strip(),
            filters=FilterSpec(**values),
        ),
    )
    config_footer("generate", spec, "generate")
    if not submitted:
        return None
    teacher_spec(spec)  # a teacher path that does not exist is a message now, not a failed job
    return spec


def funnel_chart(result: dict) -> None:
    steps = [{"step": "candidates", "kept": result["candidates"]}]
    steps += [
        {"step": s["name"], "kept": s["passed"], "pass rate": f"{100 * s['rate']:.0f}%"} for s in result["funnel"]
    ]
    frame = pd.DataFrame(steps)
    st.plotly_chart(px.funnel(frame, x="kept", y="step", title="Generation funnel"), width="stretch")
    st.dataframe(pd.DataFrame(result["funnel"]), hide_index=True, width="stretch")
    st.caption("Time per step (s): " + ", ".join(f"{k} {v}" for k, v in result["seconds"].items()))
    left, right = st.columns(2)
    left.markdown("**Kept, to read**")
    left.dataframe(pd.DataFrame(result["sample"])[["question", "answer"]], hide_index=True, width="stretch")
    right.markdown("**Rejected, with the filter that rejected them**")
    if result["rejected_sample"]:
        right.dataframe(
            pd.DataFrame(result["rejected_sample"])[["question", "answer", "rejected_by"]],
            hide_index=True,
            width="stretch",
        )


def browser(records) -> None:
    """The records of a version as a table, with filters on split, topic, source, text and quality scores."""
    frame = to_frame(records)
    cols = st.columns(4)
    for col, column in zip(cols, ("split", "topic_label", "source"), strict=False):
        if column in frame and frame[column].notna().any():
            chosen = col.multiselect(column.replace("_", " "), sorted(frame[column].dropna().astype(str).unique()))
            if chosen:
                frame = frame[frame[column].astype(str).isin(chosen)]
    text = cols[3].text_input("Search question or answer")
    if text:
        hit = frame["question"].str.contains(text, case=False) | frame["answer"].str.contains(text, case=False)
        frame = frame[hit]
    scores = [c for c in frame.columns if c.startswith("scores.")]
    if "scores.round_trip_answer" in frame:
        low = st.slider("Minimum round-trip answer F1", 0.0, 1.0, 0.0, 0.05)
        frame = frame[frame["scores.round_trip_answer"].fillna(0) >= low]
    st.caption(f"{len(frame)} of {len(records)} records")
    shown = ["question", "answer", *(c for c in ("split", "topic_label", "source") if c in frame), *scores, "id"]
    st.dataframe(frame[[c for c in shown if c in frame]], hide_index=True, width="stretch", height=360)


def topic_map(records) -> None:
    frame = to_frame(records)
    if "topic_label" not in frame or "map_x" not in frame:
        st.info("This version has no topics yet: cluster it below.")
        return
    sizes = frame["topic_label"].value_counts().rename_axis("topic").reset_index(name="records")
    left, right = st.columns(2)
    left.plotly_chart(px.bar(sizes, x="records", y="topic", orientation="h", title="Topic sizes"), width="stretch")
    fig = px.scatter(frame, x="map_x", y="map_y", color="topic_label", hover_data=["question"], title="Topic map")
    right.plotly_chart(fig, width="stretch")
