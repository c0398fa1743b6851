"""The Models page's widgets: the memory gauge, loaded models, the catalog editor, the history."""

from __future__ import annotations

import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.machine import read_memory
from engine.models.catalog import PRESETS, catalog_path, entry_as_dict, find_entry, save_user_catalog
from engine.models.downgrade import budget_gb
from engine.models.manager import ModelManager, describe
from engine.models.preflight import load_entry, preflight_rows
from engine.models.remote import speed_label
from engine.models.spec import BNB_QUANTIZATIONS, QUANTIZATIONS, is_remote
from engine.rag.embedder import IDLE_SECONDS, Embedder
from ui import resources as r
from ui.widgets import user_errors

PRESSURE_COLOURS = {"low": "green", "moderate": "orange", "high": "red", "critical": "red"}


@st.fragment(run_every=2.0)
def memory_gauge(manager: ModelManager, device: str) -> None:
    """RAM (or GPU memory) in use, the pressure level, and what the loaded models hold; live."""
    now = read_memory(device)
    used = now.limit_gb - now.free_gb
    gauge = go.Figure(
        go.Indicator(
            mode="gauge+number",
            value=100 * used / now.limit_gb,
            number={"suffix": " %"},
            title={"text": f"{'GPU' if now.device_total_gb else 'RAM'} in use"},
            gauge={
                "axis": {"range": [0, 100]},
                "bar": {"color": PRESSURE_COLOURS[now.pressure]},
                "steps": [{"range": [70, 85], "color": "#fde2b3"}, {"range": [85, 100], "color": "#f8c0c0"}],
            },
        )
    )
    gauge.update_layout(height=220, margin={"t": 40, "b": 10, "l": 20, "r": 20})
    left, right = st.columns([2, 3])
    left.plotly_chart(gauge, width="stretch", key="memory-gauge")
    cols = right.columns(2)
    cols[0].metric("Pressure", now.pressure)
    cols[1].metric("Free", f"{now.free_gb:.1f} of {now.limit_gb:.1f} GB")
    cols[0].metric("This server's RSS", f"{now.process_rss_gb:.2f} GB")
    cols[1].metric("Loaded models", f"{manager.used_gb():.2f} of {manager.budget_gb:.1f} GB budget")
    if now.pressure in ("high", "critical"):
        right.warning(f"Memory pressure is {now.pressure}: new loads are downgraded (or refused when critical).")


def loaded_models(manager: ModelManager) -> None:
    """The loaded models, the active one marked, each with an Unload button."""
    slots = manager.loaded()
    if not slots:
        st.caption("No model is loaded; the active model loads at the first question.")
        return
    active = manager.active_spec
    for slot in reversed(slots):  # most recently used first
        cols = st.columns([4, 2, 2, 1])
        mark = " · **active**" if slot.spec == active else ""
        cols[0].markdown(f"`{describe(slot.spec)}`{mark}")
        decoding = getattr(slot.generator, "decoding", None)
        cols[1].caption(f"{slot.size_gb:.2f} GB of weights" + (f" · {decoding()}" if decoding else ""))
        since = time.strftime("%H:%M:%S", time.localtime(slot.loaded_at))
        cols[2].caption(f"in use by {slot.users}" if slot.users else f"loaded at {since}")
        if cols[3].button("Unload", key=f"unload-{describe(slot.spec)}"):
            with user_errors():
                event = manager.unload(slot.spec)
                rss = f"RSS {event.rss_before_gb:.2f} -> {event.rss_after_gb:.2f} GB"
                st.session_state["models-notice"] = f"Unloaded {event.model}: {rss} ({event.detail})."
                st.rerun()


def quantize_form(manager: ModelManager, device: str) -> None:
    """Quantize a loaded full-precision model in memory, without reading its files again; a model with an adapter
    is reloaded at the precisions that keep it unmerged on the quantized base (engine.models.manager)."""
    full = [s.spec for s in reversed(manager.loaded()) if s.spec.quantization == "none"]
    if not full:
        st.caption("Load a model in full precision (with or without an adapter) to quantize it here.")
        return
    if device == "mps":
        st.info("Apple Silicon (mps) has no 8-bit / 4-bit backend: float16 is the smallest precision here.")
        return
    choices = [q for q in QUANTIZATIONS[1:] if device == "cpu" or q in BNB_QUANTIZATIONS]
    cols = st.columns([4, 2, 1])
    labels = {describe(s): s for s in full}
    target = cols[0].selectbox("Loaded model", list(labels), key="quantize-model")
    quantization = cols[1].selectbox(
        "Quantization",
        choices,
        key="quantize-to",
        help="8bit / 4bit (nf4) / 4bit-fp4: bitsandbytes; int8-dynamic: torch's dynamic int8 (CPU only). "
        "The Benchmarks page measures what each costs in quality and gains in speed. With an adapter, "
        "int8-dynamic quantizes the merged weights; the others reload the base quantized with the adapter "
        "unmerged beside it (merged, int4 rounds a trained adapter away).",
    )
    if cols[2].button("Quantize", key="quantize-go"):
        with user_errors(), st.spinner(f"Quantizing {target} to {quantization}…"):
            spec = manager.quantize(labels[target], quantization)
            event = manager.events[-1]
            st.session_state["models-notice"] = (
                f"Quantized in memory: {describe(spec)}, {event.detail}. "
                f"RSS {event.rss_before_gb:.2f} -> {event.rss_after_gb:.2f} GB."
            )
            st.rerun()


def embedder_status() -> None:
    """The embedding models: loaded on demand, unloaded after an idle time; an Unload button."""
    if not Embedder.loaded:
        st.caption("No embedding model has been asked for yet; it loads at the first retrieval.")
    for embedder in list(Embedder.loaded.values()):
        cols = st.columns([4, 4, 1])
        cols[0].markdown(f"`{embedder.spec.name}` (embeddings)")
        if embedder.is_loaded:
            cols[1].caption(f"loaded; idle {embedder.idle_seconds():.0f} s, unloaded after {IDLE_SECONDS:.0f} s idle")
            if cols[2].button("Unload embeddings", key=f"unload-embedder-{embedder.spec.name}"):
                embedder.unload()
                st.session_state["models-notice"] = f"Unloaded the embedding model {embedder.spec.name}."
                st.rerun()
        else:
            cols[1].caption(f"not loaded: loads on demand (loaded {embedder.loads} time(s) so far)")


def history(manager: ModelManager) -> None:
    """What the manager did since the server started: loads, swaps, evictions, unloads."""
    if not manager.events:
        st.caption("Nothing yet.")
        return
    rows = [
        {
            "time": time.strftime("%H:%M:%S", time.localtime(e.at)),
            "event": e.kind,
            "model": e.model,
            "detail": e.detail,
            "RSS before (GB)": round(e.rss_before_gb, 2),
            "RSS after (GB)": round(e.rss_after_gb, 2),
        }
        for e in reversed(manager.events)
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def catalog_editor(entries) -> None:
    """The catalog as a table, and the user's YAML file, checked before it is saved."""
    table = pd.DataFrame(
        [
            {k: v for k, v in entry_as_dict(e).items() if k != "presets"}
            | {"bundled": e.bundled, "measured speed": speed_label(r.settings(), e.source)}
            for e in entries
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")
    path = catalog_path(r.settings())
    with st.expander(f"Your catalog ({path})"):
        st.caption(
            "A YAML list of entries: name, source (Hugging Face id, folder, folder + gguf_file, or a model behind "
            "an OpenAI-compatible server: openai:<base_url>#<model>, its key from $STUDIO_REMOTE_API_KEY), optional "
            "description, params_m and presets per device kind (cpu / cuda / mps) and aim (quality / balanced / "
            "speed) with dtype, quantization, max_new_tokens, batch_size. An entry named like a bundled one "
            "replaces it."
        )
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        with st.form("catalog"):
            text = st.text_area("catalog.yaml", current, height=220, key="catalog-text")
            if st.form_submit_button("Check and save"):
                with user_errors():
                    saved = save_user_catalog(r.settings(), text)
                    st.session_state["models-notice"] = f"Saved {len(saved)} entr{'y' if len(saved) == 1 else 'ies'}."
                    st.rerun()


def load_form(manager: ModelManager, catalog, kind: str, device: str) -> None:
    """A catalog entry and a preset, their pre-flight estimate, and the button that loads it (stepping down
    where it would not fit, and saying why)."""
    cols = st.columns([3, 2, 2])
    name = cols[0].selectbox("Catalog entry", [e.name for e in catalog], key="models-entry")
    aim = cols[1].radio(
        "Preset",
        PRESETS,
        index=1,
        horizontal=True,
        key="models-aim",
        help="quality: full precision; balanced: the device's fast native precision; "
        "speed: 8-bit / 4-bit weights where bitsandbytes runs (not on Apple Silicon).",
    )
    entry = find_entry(catalog, name)
    preset = entry.preset(kind, aim)
    cols[2].markdown(
        f"**{kind}** · dtype `{preset.dtype}` · quantization `{preset.quantization}` · "
        f"{preset.max_new_tokens} new tokens · batch {preset.batch_size}"
    )
    st.caption(entry.description or entry.source)
    budget = budget_gb(read_memory(device))
    if is_remote(entry.source):
        speed = speed_label(r.settings(), entry.source)
        st.caption(f"A model behind a server: it holds no memory here. Speed: {speed or 'measured when it loads'}.")
    else:
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
        if plan.precision == "remote":
            message = f"Active: {plan.model}, a model behind a server ({speed_label(r.settings(), entry.source)})."
        if plan.downgraded:
            logged = f". Logged to MLflow (run {outcome.run_id})."
            st.session_state["models-warning"] = plan.downgrade_note(name) + logged
        st.session_state["models-notice"] = message
        st.rerun()
