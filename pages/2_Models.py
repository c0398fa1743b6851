"""Models: the catalog, load / unload, the active model, live memory, presets, downgrades."""

import streamlit as st

from engine.models.catalog import load_catalog
from engine.models.preflight import device_kind
from engine.models.spec import resolve_device
from ui import models as ui
from ui import resources as r
from ui.api_server import serve_panel
from ui.export import export_panel
from ui.widgets import page_header, user_errors

page_header(
    "Models",
    "🧠",
    "Load models from the catalog with a preset; the active model answers on the Query page. Loads that would "
    "not fit the free memory step down to a smaller precision or model, and say why.",
)

with user_errors():
    manager = r.manager()
    device = resolve_device("auto")
    kind = device_kind(device)
    if notice := st.session_state.pop("models-notice", None):
        st.success(notice)
    if warning := st.session_state.pop("models-warning", None):
        st.warning(warning)

    st.subheader("Memory")
    ui.memory_gauge(manager, device)

    st.subheader("Loaded")
    ui.loaded_models(manager)
    ui.embedder_status()

    st.subheader("Quantize a loaded model")
    ui.quantize_form(manager, device)

    st.subheader("Load a model")
    catalog = load_catalog(r.settings())
    ui.load_form(manager, catalog, kind, device)

    st.subheader("Serve")
    serve_panel()

    st.subheader("Export")
    with st.expander("The active model, as GGUF (llama.cpp, Ollama) or safetensors"):
        export_panel(r.settings(), manager.active_spec.adapter if manager.active_spec else "", key="model-export")

    st.subheader("Catalog")
    ui.catalog_editor(catalog)

    st.subheader("History")
    ui.history(manager)
