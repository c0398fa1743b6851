"""The "add documents" panel: upload, local path or Hugging Face dataset -> checked, estimated -> an ingest job;
and the knowledge bases an ingest left incomplete, with Resume and Roll back."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from engine import jobs
from engine.data.knowledge import IngestRun
from engine.errors import InputError
from engine.rag.ingest import kb_state, preview_source, rollback_ingest
from engine.rag.store import KnowledgeBaseStore, check_name
from engine.write_policy import write_atomic
from ui.job_panel import job_panel
from ui.knobs import knob_input
from ui.widgets import user_errors

SOURCES = ("Upload a file", "Local path", "Hugging Face dataset (online)")


def ingest_args(
    store: KnowledgeBaseStore, kb: str, source: str, upload, path: str, hf: str, skip: bool, mirror: bool = False
) -> dict:
    """The ingest job's arguments for the form's input (an upload is saved in the data dir first)."""
    args = {"kb": check_name(kb), "on_error": "skip" if skip else "abort"} | ({"mirror": True} if mirror else {})
    if source == SOURCES[0]:
        if upload is None:
            raise InputError("Choose a file to upload.")
        name = Path(upload.name).name or "upload"
        return args | {"path": str(write_atomic(store.settings.data_dir / "uploads" / name, upload.getvalue()))}
    if source == SOURCES[1]:
        if not path.strip():
            raise InputError("Type the path of a file or a folder.")
        return args | {"path": str(Path(path.strip()).expanduser())}
    if not hf.strip():
        raise InputError("Type a Hugging Face dataset name.")
    return args | {"hf_dataset": hf.strip()}


def preview(store: KnowledgeBaseStore, args: dict) -> dict:
    """The checked source and its estimate, computed once (a large file takes seconds to check)."""
    if "path" not in args:
        return {
            "args": args,
            "summary": f"Hugging Face dataset `{args['hf_dataset']}`, read when the job starts",
            "skipped": [],
        }
    scan, guess = preview_source(args, store.embedder)
    return {"args": args, "summary": f"`{scan.path}`: {guess.summary}", "skipped": list(scan.skipped)}


def show_preview(shown: dict) -> None:
    """What the ingest will take, and what it leaves out; the button that starts it."""
    st.info(f"**{shown['args']['kb']}** ← {shown['summary']}.")
    if shown["skipped"]:
        with st.expander(f"Left out ({len(shown['skipped'])})", expanded=True):
            st.markdown("\n".join(f"- {line}" for line in shown["skipped"]))
    if st.button("Start ingest", type="primary", key="ingest-start"):
        st.session_state["ingest-job"] = jobs.start(IngestRun.from_args(shown["args"])).id
        del st.session_state["ingest-preview"]
        st.rerun()


def ingested(res: dict) -> None:
    if "chunks_embedded" in res:  # a mirror
        changes = f"{res['new_documents']} new, {res['changed_documents']} changed, {res['removed_documents']} removed"
        st.success(f"{res['kb']} holds its source: {changes}, {res['unchanged_documents']} unchanged documents.")
        return
    st.success(f"Ingested into {res.get('kb')}: {res.get('added')} chunks added, {res.get('unchanged')} already there.")


def kept_note(state: jobs.JobState) -> None:
    if state.status in ("cancelled", "failed"):
        st.caption("What was stored is kept: the knowledge base is marked incomplete (see below).")


def incomplete_panel(store: KnowledgeBaseStore, incomplete: dict[str, str]) -> None:
    """Each knowledge base an ingest left unfinished (name -> state): resume it, or roll it back."""
    running = {j.args.get("kb") for j in jobs.list_jobs("ingest") if not j.done}
    for kb, label in incomplete.items():
        if kb in running:
            continue
        state = kb_state(store, kb)
        st.warning(f"**{kb}** is {label} (from `{state.source}`, started {state.started}).")
        left, right = st.columns(2)
        if left.button("Resume", key=f"resume-{kb}", disabled=not state.args):
            st.session_state["ingest-job"] = jobs.start(IngestRun.from_args(state.args)).id
            st.rerun()
        if right.button("Roll back", key=f"rollback-{kb}"):
            st.success(f"{kb}: {rollback_ingest(store, kb)} chunks of the unfinished ingest removed.")


def ingest_panel(store: KnowledgeBaseStore) -> None:
    incomplete = store.incomplete()
    with st.expander("Add documents to a knowledge base", expanded=not store.names() or bool(incomplete)):
        with st.form("ingest"):
            kb = st.text_input("Knowledge base", value="my-docs", help="An existing name adds to it.")
            source = st.radio("Source", SOURCES, horizontal=True, key="ingest-source")
            upload = st.file_uploader(
                "File (.jsonl with title/text, .txt, .md, .pdf, .html, .docx)",
                type=["jsonl", "txt", "md", "pdf", "html", "htm", "docx"],
            )
            path = st.text_input(
                "Local path (file or folder)", placeholder="../shared/data/wiki-passages.jsonl", key="ingest-path"
            )
            hf = st.text_input("Hugging Face dataset", placeholder="owner/name")
            skip = st.checkbox(
                "Skip bad files",
                key="ingest-skip",
                help="A folder: ingest the good files and list the bad ones, instead of stopping at them.",
            )
            mirror = knob_input(st, IngestRun, "mirror", key="ingest-mirror")
            if st.form_submit_button("Check and estimate"):
                with user_errors():
                    args = ingest_args(store, kb, source, upload, path, hf, skip, mirror)
                    st.session_state["ingest-preview"] = preview(store, args)
        with user_errors():
            if "ingest-preview" in st.session_state:
                show_preview(st.session_state["ingest-preview"])
            # A job started in an earlier session of this page is still shown after a reload.
            if "ingest-job" not in st.session_state:
                running = [j for j in jobs.list_jobs("ingest") if not j.done]
                if running:
                    st.session_state["ingest-job"] = running[0].id
            job_panel("ingest", "ingest-job", ingested, "Ask about the documents on the Query page.", always=kept_note)
            incomplete_panel(store, incomplete)
