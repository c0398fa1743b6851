"""The export panel: the base model, or an adapter merged into it, written as GGUF (with an Ollama Modelfile) or
safetensors by a background job, its progress in the job panel."""

from __future__ import annotations

import streamlit as st

from engine import jobs
from engine.models.export import EXPORT_FORMATS, ExportRun
from engine.settings import Settings
from engine.write_policy import check_export_target
from ui.job_panel import job_panel
from ui.widgets import user_errors

FORMAT_LABELS = {
    "gguf-f16": "GGUF F16 (llama.cpp, Ollama: 16-bit weights)",
    "gguf-q8_0": "GGUF Q8_0 (8-bit: about half the size)",
    "gguf-q4": "GGUF Q4_1 (4-bit: about a third of the size, answers drift most)",
    "safetensors": "safetensors (a transformers model folder)",
}


def show_export(result: dict) -> None:
    st.success(f"Exported to {result['folder']}")
    if result.get("format", "").startswith("gguf"):
        st.caption("In that folder: `ollama create NAME -f Modelfile`, then `ollama run NAME` (see its README.md).")


def export_panel(settings: Settings, adapter: str = "", key: str = "export") -> None:
    """Export ``adapter`` merged into its base ('': the active base model as it is): format, target folder,
    overwrite, and the Export button that starts the background job; the job's progress below."""
    formats = [f for f in EXPORT_FORMATS if f.startswith("gguf")] + ["safetensors"]
    fmt = st.selectbox("Format", formats, format_func=FORMAT_LABELS.get, key=f"{key}-format")
    target = st.text_input(
        "Export folder", key=f"{key}-target", help="A new (or empty) folder; the Studio writes nothing else there."
    )
    overwrite = st.checkbox("Overwrite an earlier export of the Studio there (never anything else)", key=f"{key}-over")
    if st.button("Export", key=f"{key}-start", disabled=not target.strip()):
        with user_errors():
            folder = check_export_target(target.strip(), overwrite)  # refused at once, not after the model loads
            run = ExportRun(adapter=adapter, format=fmt, to=str(folder.absolute()), overwrite=overwrite)
            st.session_state[f"{key}-job"] = jobs.start(run, settings).id
    job_panel("export", f"{key}-job", show_export)
