"""LoRA / QLoRA fine-tuning as a background job: settings, pre-flight, live curves, adapters."""

from dataclasses import replace
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

from engine import jobs
from engine.finetune.adapters import AdapterRegistry, check_name, merge_export
from engine.finetune.callbacks import read_curve
from engine.finetune.examples import MixSpec, RagExampleSpec
from engine.finetune.inputs import plan
from engine.finetune.lora import LoraSpec
from engine.finetune.spec import TrainSpec
from engine.finetune.trainer import list_runs, run_dir_for
from engine.models.spec import check_quantization_backend, resolve_device, spec_for
from ui import resources as r
from ui.widgets import current_job, job_status, user_errors

st.set_page_config(page_title="Fine-tune · Studio", page_icon="🛠️", layout="wide")
st.title("🛠️ Fine-tune")
st.caption(
    "Train a LoRA adapter that teaches the model to answer briefly from retrieved passages. Training examples "
    "come from the fixed HotpotQA split (600 train / 100 validation / 300 test questions, never mixed)."
)
D = TrainSpec()


def settings_form() -> tuple[TrainSpec, str]:
    """The training settings from the form, and which button was pressed."""
    with st.form("train"):
        top = st.columns(3)
        adapter = top[0].text_input("Adapter name", D.adapter, help="Letters, digits, '.', '_' and '-'.")
        base = top[1].text_input("Base model", placeholder="bundled SmolLM2-135M", help=r.MODEL_HELP)
        quant = top[2].selectbox(
            "Quantization", ("none", "8bit", "4bit"),
            help="QLoRA: load the frozen base in 8-bit or 4-bit (nf4) with bitsandbytes to save memory. "
            "CPU and CUDA only; on Apple Silicon choose none.",
        )  # fmt: skip
        st.markdown("**Data**")
        data = st.columns(4)
        dolly = data[0].slider(
            "Dolly share", 0.0, 0.5, 0.0, 0.05,
            help="Share of Dolly instruction examples mixed in (closed_qa is never used: it checks forgetting).",
        )  # fmt: skip
        distractors = data[1].number_input(
            "Distractor passages", 0, 8, D.rag.distractors,
            help="Non-gold paragraphs shown with the gold ones, shuffled, so the model learns to pick.",
        )  # fmt: skip
        limit = data[2].number_input("Max training examples", 0, 5000, 0, help="0: all of them.")
        max_length = data[3].number_input(
            "Max length (tokens)", 64, 4096, D.max_length, help="Longer examples are cut; prompts must fit."
        )
        st.markdown("**LoRA**")
        lora = st.columns(5)
        rank = lora[0].number_input("Rank r", 1, 256, D.lora.r, help="Size of the low-rank update (capacity).")
        alpha = lora[1].number_input("Alpha", 1, 512, D.lora.alpha, help="Scale of the update (alpha / r).")
        dropout = lora[2].number_input("Dropout", 0.0, 0.9, D.lora.dropout, 0.05, help="Dropout on the LoRA input.")
        mlp = lora[3].checkbox("Adapt MLP too", help="Add the MLP projections to the attention ones.")
        targets = lora[4].text_input("Target modules", placeholder="by architecture", help="Comma-separated override.")
        st.markdown("**Optimisation**")
        opt = st.columns(6)
        epochs = opt[0].number_input("Epochs", 0.1, 20.0, D.epochs, 0.5)
        lr = opt[1].number_input("Learning rate", 1e-6, 1e-2, D.learning_rate, format="%.0e")
        batch = opt[2].number_input("Batch size", 1, 64, D.batch_size)
        accum = opt[3].number_input("Grad. accumulation", 1, 64, D.grad_accum, help="Effective batch = batch x this.")
        scheduler = opt[4].selectbox("LR schedule", ("linear", "cosine", "constant_with_warmup"))
        warmup = opt[5].number_input("Warmup share", 0.0, 0.5, D.warmup_ratio, 0.01)
        st.markdown("**Validation and stopping**")
        val = st.columns(5)
        every = val[0].number_input("Validate every N steps", 0, 10000, 0, help="0: once per epoch. Also checkpoints.")
        val_limit = val[1].number_input("Validation questions", 1, 100, D.val_limit, help="Loss (and F1) on them.")
        stop_on = val[2].selectbox("Early stopping on", ("f1", "loss", "none"))
        patience = val[3].number_input("Patience", 0, 20, D.patience, help="Validations without improvement.")
        precision = val[4].selectbox("Precision", ("auto", "fp32", "bf16", "fp16"), help="auto: bf16 where native.")
        flags = st.columns(2)
        val_f1 = flags[0].checkbox("Validate F1 (answer the questions)", True, help="Slower; needed to stop on F1.")
        checkpointing = flags[1].checkbox("Gradient checkpointing", help="Less memory, about 30% more time.")
        buttons = st.columns([1, 1, 4])
        checked = buttons[0].form_submit_button("Pre-flight check")
        started = buttons[1].form_submit_button("Start training", type="primary")
    spec = TrainSpec(
        adapter=adapter.strip(), base=base.strip(), quantization=quant,
        lora=LoraSpec(int(rank), int(alpha), float(dropout), mlp, tuple(t.strip() for t in targets.split(",") if t)),
        mix=MixSpec(sources=(("hotpotqa", 1 - dolly), ("dolly", dolly)) if dolly else (("hotpotqa", 1.0),)),
        rag=RagExampleSpec(distractors=int(distractors)), train_limit=int(limit) or None, epochs=float(epochs),
        learning_rate=float(lr), batch_size=int(batch), grad_accum=int(accum), max_length=int(max_length),
        scheduler=scheduler, warmup_ratio=float(warmup), eval_every=int(every), val_limit=int(val_limit), val_f1=val_f1,
        stop_on=stop_on, patience=int(patience), gradient_checkpointing=checkpointing, precision=precision,
    )  # fmt: skip
    return spec, "check" if checked else "start" if started else ""


def curves(run_dir) -> None:
    rows = read_curve(run_dir)
    if not rows:
        st.caption("No training step yet.")
        return
    frame = pd.DataFrame(rows)
    left, right = st.columns(2)
    if "loss" in frame:
        train = frame.dropna(subset=["loss"])
        long = train.melt("step", ["loss"], "curve", "value")
        if "eval_loss" in frame:
            long = pd.concat([long, frame.dropna(subset=["eval_loss"]).melt("step", ["eval_loss"], "curve", "value")])
        fig = px.line(long, x="step", y="value", color="curve", markers=True, title="Loss")
        left.plotly_chart(fig, width="stretch")
    if "eval_f1" in frame:
        val = frame.dropna(subset=["eval_f1"])
        right.plotly_chart(px.line(val, x="step", y=["eval_f1", "eval_em"], markers=True, title="Validation"),
                           width="stretch")  # fmt: skip


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
        est = found.estimate
        cols = st.columns(4)
        cols[0].metric("Training examples", found.train_examples)
        cols[1].metric("Steps", est.steps)
        free = f"of {est.available_mb / 1024:.1f} GB free"
        cols[2].metric("Peak memory (est.)", f"{est.memory_mb / 1024:.1f} GB", free, delta_color="off")
        cols[3].metric("Time (est.)", f"{est.minutes:.0f} min")
        st.info(f"LoRA on {found.targets}: {found.summary}. Memory: {est.note}.")
    elif action == "start":
        st.session_state["train-job"] = jobs.start_job("train", {"spec": spec.to_dict()}).id

    @st.fragment(run_every=2.0)
    def live() -> None:
        job_id = current_job("train", "train-job")
        if not job_id:
            return
        with user_errors():
            state = job_status(job_id)
            if not state.done and st.button("Stop (keeps a checkpoint and the adapter)", key=f"stop-{job_id}"):
                jobs.request_stop(job_id)
                st.toast("Stopping after this step…")
            if state.mlflow_run_id:
                st.caption(f"MLflow run `{state.mlflow_run_id}` (experiment studio-training)")
            curves(run_dir_for(state.args["spec"]["adapter"], settings))

    st.subheader("Current run")
    live()

    active = {j.args.get("spec", {}).get("adapter") for j in jobs.list_jobs("train") if not j.done}
    runs = [run for run in list_runs(settings) if run.checkpoint_step and not run.saved and run.adapter not in active]
    if runs:
        st.subheader("Unfinished runs")
        for run in runs:
            cols = st.columns([3, 1])
            cols[0].write(f"**{run.adapter}**: last checkpoint at step {run.checkpoint_step}")
            if cols[1].button("Resume", key=f"resume-{run.adapter}"):
                args = {"spec": {"adapter": run.adapter}, "resume": True}
                st.session_state["train-job"] = jobs.start_job("train", args).id
                st.rerun()

    st.subheader("Adapters")
    adapters = registry.list()
    if not adapters:
        st.info("No adapter yet: train one above.")
    else:
        table = pd.DataFrame(
            [{"name": a.name, "base": a.base.get("name", ""), "created": a.created, "prompt": a.prompt,
              "r": a.lora.get("r"), **{k: round(v, 2) for k, v in a.metrics.items()},
              "MB": round(a.size_bytes / 2**20, 1), "mlflow run": a.mlflow_run_id} for a in adapters]
        )  # fmt: skip
        st.dataframe(table, hide_index=True, width="stretch")
        chosen = st.selectbox("Adapter", [a.name for a in adapters], key="adapter-chosen")
        cols = st.columns(3)
        new_name = cols[0].text_input("Rename to", key="adapter-new-name")
        if cols[0].button("Rename") and new_name.strip():
            registry.rename(chosen, new_name.strip())
            st.rerun()
        target = cols[1].text_input("Export folder", key="adapter-export", help="A new folder for the merged model.")
        if cols[1].button("Merge and export") and target.strip():
            with st.spinner("Merging…"):
                folder = merge_export(registry, chosen, Path(target.strip()), settings)
            st.success(f"Standalone model written to {folder}")
        sure = cols[2].checkbox("I want to delete it", key="adapter-delete-sure")
        if cols[2].button("Delete", type="secondary", disabled=not sure):
            registry.delete(chosen)
            st.rerun()
