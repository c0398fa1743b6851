"""Models: the catalog, load / unload, the active model, live memory, presets, downgrades."""

import pandas as pd
import streamlit as st

from engine.machine import read_memory
from engine.models.catalog import PRESETS, find_entry, load_catalog
from engine.models.downgrade import budget_gb
from engine.models.preflight import device_kind, load_entry, preflight_rows
from engine.models.spec import resolve_device
from ui import models as ui
from ui import resources as r
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
    cols = st.columns([3, 2, 2])
    name = cols[0].selectbox("Catalog entry", [e.name for e in catalog], key="models-entry")
    aim = cols[1].radio("Preset", PRESETS, index=1, horizontal=True, key="models-aim",
                        help="quality: full precision; balanced: the device's fast native precision; "
                        "speed: 8-bit / 4-bit weights where bitsandbytes runs (not on Apple Silicon).")  # fmt: skip
    entry = find_entry(catalog, name)
    preset = entry.preset(kind, aim)
    cols[2].markdown(
        f"**{kind}** · dtype `{preset.dtype}` · quantization `{preset.quantization}` · "
        f"{preset.max_new_tokens} new tokens · batch {preset.batch_size}"
    )
    st.caption(entry.description or entry.source)
    budget = budget_gb(read_memory(device))
    with st.spinner("Estimating memory…"):
        rows = preflight_rows(entry, r.settings(), preset.batch_size, budget)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="content")
    st.caption(
        f"Pre-flight estimate for {preset.batch_size} sequences of 1,024 tokens, with about 0.35 GB of runtime; "
        f"the largest batch is the one whose estimate fits the {budget:.1f} GB the free memory allows now."
    )
    if st.button("Load and make active", type="primary"):
        with st.spinner(f"Loading {name}…"):
            outcome = load_entry(manager, entry, aim, catalog, r.settings(), r.tracker())
        plan = outcome.plan
        message = (
            f"Active: {plan.model} at {plan.precision} (estimate {plan.footprint.total_gb:.2f} GB, budget "
            f"{plan.budget_gb:.2f} GB). RSS {outcome.rss_before_gb:.2f} -> {outcome.rss_after_gb:.2f} GB."
        )
        if plan.downgraded:
            logged = f". Logged to MLflow (run {outcome.run_id})."
            st.session_state["models-warning"] = plan.downgrade_note(name) + logged
        st.session_state["models-notice"] = message
        st.rerun()

    st.subheader("Catalog")
    ui.catalog_editor(catalog)

    st.subheader("History")
    ui.history(manager)
