"""The "add documents" panel: upload, local path or Hugging Face dataset -> an ingest job."""

from __future__ import annotations

import streamlit as st

from engine import jobs
from engine.errors import InputError
from engine.rag.documents import load_documents, parse_upload
from engine.rag.store import KnowledgeBaseStore, check_name
from ui.widgets import job_status, user_errors

SOURCES = ("Upload a file", "Local path", "Hugging Face dataset (online)")


def start_ingest(store: KnowledgeBaseStore, kb: str, source: str, upload, path: str, hf: str) -> jobs.JobState:
    """Validate the input here (fast, with a clear message), then embed in a background job."""
    check_name(kb)
    if source == SOURCES[0]:
        if upload is None:
            raise InputError("Choose a file to upload.")
        data = upload.getvalue()
        parse_upload(upload.name, data)  # raises a clear InputError for empty / non-UTF-8 / malformed files
        folder = store.settings.data_dir / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / upload.name.replace("/", "_")
        target.write_bytes(data)
        return jobs.start_job("ingest", {"kb": kb, "path": str(target)})
    if source == SOURCES[1]:
        load_documents(path.strip())  # the same check for paths
        return jobs.start_job("ingest", {"kb": kb, "path": path.strip()})
    if not hf.strip():
        raise InputError("Type a Hugging Face dataset name.")
    return jobs.start_job("ingest", {"kb": kb, "hf_dataset": hf.strip()})


@st.fragment(run_every=1.0)
def ingest_progress() -> None:
    job_id = st.session_state.get("ingest-job")
    if job_id:
        with user_errors():
            state = job_status(job_id)
            if state.status == "succeeded":
                res = state.result or {}
                st.success(
                    f"Ingested into {res.get('kb')}: {res.get('added')} chunks added, "
                    f"{res.get('unchanged')} already there."
                )


def ingest_panel(store: KnowledgeBaseStore) -> None:
    with st.expander("Add documents to a knowledge base", expanded=not store.names()):
        with st.form("ingest"):
            kb = st.text_input("Knowledge base", value="my-docs", help="An existing name adds to it.")
            source = st.radio("Source", SOURCES, horizontal=True, key="ingest-source")
            upload = st.file_uploader(
                "File (.jsonl with title/text, .txt, .md, .pdf)", type=["jsonl", "txt", "md", "pdf"]
            )
            path = st.text_input(
                "Local path (file or folder)", placeholder="../shared/data/wiki-passages.jsonl", key="ingest-path"
            )
            hf = st.text_input("Hugging Face dataset", placeholder="owner/name")
            if st.form_submit_button("Ingest"):
                with user_errors():
                    st.session_state["ingest-job"] = start_ingest(store, kb, source, upload, path, hf).id
        # A job started in an earlier session of this page is still shown after a reload.
        if "ingest-job" not in st.session_state:
            running = [j for j in jobs.list_jobs("ingest") if not j.done]
            if running:
                st.session_state["ingest-job"] = running[0].id
        ingest_progress()
