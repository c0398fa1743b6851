"""LoRA / QLoRA fine-tuning as a background job: settings, pre-flight, live curves, adapters."""

from dataclasses import replace

import streamlit as st

from engine import jobs
from engine.finetune.inputs import plan
from engine.finetune.runs import run_dir_for
from engine.models.adapters import AdapterRegistry, check_name
from engine.models.spec import check_quantization_backend, resolve_device, spec_for
from ui import resources as r
from ui.export import export_panel
from ui.finetune import adapters_table, settings_form, show_plan, unfinished_runs
from ui.job_panel import job_panel
from ui.training_curves import curves
from ui.widgets import page_header, user_errors

page_header(
    "Fine-tune",
    "🛠️",
    "Train a LoRA adapter that teaches the model to answer from retrieved passages, on a QA set of yours "
    "(its train split; validated on its validation split) or on the built-in HotpotQA benchmark.",
)
with user_errors():
    settings = r.settings()
    registry = AdapterRegistry(settings)
    spec, action = settings_form()
    if action:  # bad names, paths and backends are reported here, before any work starts
        check_name(spec.adapter)
        base = replace(spec_for(spec.base), quantization=spec.quantization)
        check_quantization_backend(base, resolve_device())
    if action == "check":
        with st.spinner("Loading the base model and building the examples…"):
            found = plan(spec, settings)
        show_plan(found)
    elif action == "start":
        st.session_state["train-job"] = jobs.start(spec).id

    st.subheader("Current run")
    job_panel(
        "train",
        "train-job",
        stop="Stop (keeps a checkpoint and the adapter)",
        rerun_when_done=True,
        always=lambda state: curves(run_dir_for(state.args["spec"]["adapter"], settings)),
    )

    unfinished_runs(settings)

    st.subheader("Adapters")
    adapters = registry.list()
    if not adapters:
        st.info("No adapter yet: train one above.")
    else:
        table = adapters_table(adapters)
        st.dataframe(table, hide_index=True, width="stretch")
        chosen = st.selectbox("Adapter", [a.name for a in adapters], key="adapter-chosen")
        cols = st.columns(2)
        new_name = cols[0].text_input("Rename to", key="adapter-new-name")
        if cols[0].button("Rename") and new_name.strip():
            registry.rename(chosen, new_name.strip())
            st.rerun()
        sure = cols[1].checkbox("I want to delete it", key="adapter-delete-sure")
        if cols[1].button("Delete", type="secondary", disabled=not sure):
            registry.delete(chosen)
            st.rerun()
        with st.expander(f"Export {chosen} merged into its base (GGUF for llama.cpp / Ollama, or safetensors)"):
            export_panel(settings, chosen, key="adapter-export")
