"""The Fine-tune page's widgets: the training-settings form and the live training curves."""

from dataclasses import replace

import pandas as pd
import plotly.express as px
import streamlit as st

from engine import jobs
from engine.evaluation.qa_sets import HOTPOTQA, qa_set_names
from engine.finetune.continued import fitting_hotpotqa_adapter
from engine.finetune.curve import read_curve
from engine.finetune.examples import DOLLY_CATEGORIES, MixSpec, RagExampleSpec
from engine.finetune.lora import LoraSpec
from engine.finetune.presets import CONTINUED, PRESETS, preset_for, preset_spec
from engine.finetune.runs import list_runs
from engine.finetune.spec import ResumeRun, TrainSpec, primary_pool
from engine.rag.styles import style_of
from ui import resources as r
from ui.knobs import knob_input, knob_row

SOURCE_LABELS = {"gold": "gold + distractors", "retrieved": "retrieved top 5"}
STYLE_LABELS = {
    "short": "short answer",
    "evidence": "evidence, then answer",
    "sentences": "sentences",
    "auto": "by the question",
}


def data_choice() -> tuple[str, str, TrainSpec]:
    """What to train on (a QA set, HotpotQA built in), its knowledge base, and the recipe the form starts from."""
    names = qa_set_names(r.settings())
    cols = st.columns(3)
    dataset = cols[0].selectbox(
        "Train on",
        names,
        index=1 if len(names) > 1 else 0,
        key="train-on",
        help="A QA set of yours (Datasets page: generated from your documents, reviewed, split by document): its "
        "train split is trained on, its validation split validates, its test split is never seen. hotpotqa: "
        "the built-in benchmark (600 train / 100 validation / 300 test questions).",
    )
    kbs = r.store().names()
    guess = dataset.removesuffix("-qa")
    kb = (
        ""
        if dataset == HOTPOTQA
        else cols[1].selectbox(
            "Sources from knowledge base",
            kbs,
            index=kbs.index(guess) if guess in kbs else 0,
            key="train-kb",
            help="Each training question is shown the passages this knowledge base returns for it, as the Query page "
            "retrieves (its own passage is kept), so training looks like use.",
        )
        or ""
    )
    default = preset_for("" if dataset == HOTPOTQA else dataset).name
    preset = cols[2].selectbox(
        "Recipe",
        list(PRESETS),
        index=list(PRESETS).index(default),
        key=f"train-preset-{dataset}",  # each QA set starts from its own recipe
        help="The form starts from a measured recipe; what it was measured on is below.",
    )
    st.caption(f"**{preset}** — measured on {PRESETS[preset].measured}.")
    found = preset_spec(preset)
    if preset == CONTINUED.name:  # the recipe continues a HotpotQA adapter: the best one saved, to begin with
        found = replace(found, start_from=fitting_hotpotqa_adapter(r.settings(), found.rag.answer_style == "sentences"))
    return ("" if dataset == HOTPOTQA else dataset), kb, found


OPTIMISATION = ("epochs", "learning_rate", "batch_size", "grad_accum", "scheduler", "warmup_ratio")
STOPPING = ("eval_every", "val_limit", "stop_on", "patience", "precision")


def share_slider(container, label: str, value: float, helptext: str) -> float:
    """One pool's share of the training mix: 0 to 0.5, in steps of 0.05."""
    return container.slider(label, 0.0, 0.5, value, 0.05, help=helptext)


def settings_form() -> tuple[TrainSpec, str]:
    """The training settings from the form, and which button was pressed."""
    dataset, kb, D = data_choice()
    shares = dict(D.mix.sources)
    with st.form("train"):
        top, starts = st.columns(4), ["", *r.adapter_names()]
        name = dataset.partition("@")[0] or "hotpotqa"
        adapter = top[0].text_input("Adapter name", f"{name}-lora", help="Letters, digits, '.', '_' and '-'.")
        start_from = knob_input(
            top[3], TrainSpec, "start_from", starts, D.start_from, format_func=lambda a: a or "a new adapter"
        )
        base = knob_input(top[1], TrainSpec, "base", default=D.base)
        quant = knob_input(top[2], TrainSpec, "quantization", default=D.quantization)
        st.markdown("**Data**")
        data = st.columns(5)
        dolly = share_slider(
            data[0],
            "Dolly share",
            shares.get("dolly", 0.0),
            "Share of Dolly instruction examples mixed in (closed_qa is never used: it checks forgetting).",
        )
        dolly_targets = knob_input(data[4], TrainSpec, "dolly_targets", default=D.dolly_targets)
        distractors = knob_input(data[1], RagExampleSpec, "distractors", default=D.rag.distractors)
        limit = knob_input(data[2], TrainSpec, "train_limit", default=D.train_limit or 0)
        max_length = knob_input(data[3], TrainSpec, "max_length", default=D.max_length)
        more = st.columns([1, 2, 1, 1])
        sources = knob_input(more[2], RagExampleSpec, "sources", default=D.rag.sources, format_func=SOURCE_LABELS.get)
        source_chars = knob_input(more[3], RagExampleSpec, "max_source_chars", default=D.rag.max_source_chars)
        hotpotqa, generated, qa_dataset = 0.0, 0.0, ""
        if dataset:
            hotpotqa = share_slider(
                more[0],
                "HotpotQA share",
                shares.get("hotpotqa", 0.0),
                "Share of HotpotQA training questions mixed into your QA set's.",
            )
        else:
            generated = share_slider(
                more[0],
                "Generated QA share",
                0.0,
                "Share of QA pairs from a dataset version (Datasets page) mixed in: its training split only.",
            )
            qa_dataset = knob_input(more[1], TrainSpec, "qa_dataset", placeholder="wiki-qa  or  wiki-qa@<version>")
        shape = st.columns(2)
        answer_style = knob_input(
            shape[0], RagExampleSpec, "answer_style", default=D.rag.answer_style, format_func=STYLE_LABELS.get
        )
        follow_links = knob_input(shape[1], RagExampleSpec, "follow_links", default=D.rag.follow_links)
        categories = st.multiselect(
            "Dolly categories",
            DOLLY_CATEGORIES,
            D.dolly_categories,
            help="Which Dolly instructions the Dolly share draws from. closed_qa is never offered: the forgetting "
            "check scores it. information_extraction and summarization carry a context paragraph, as closed_qa does.",
        )
        st.markdown("**LoRA**")
        lora = st.columns(5)
        rank = knob_input(lora[0], LoraSpec, "r", default=D.lora.r)
        alpha = knob_input(lora[1], LoraSpec, "alpha", default=D.lora.alpha)
        dropout = knob_input(lora[2], LoraSpec, "dropout", default=D.lora.dropout)
        mlp = knob_input(lora[3], LoraSpec, "include_mlp", default=D.lora.include_mlp)
        targets = lora[4].text_input("Target modules", placeholder="by architecture", help="Comma-separated override.")
        st.markdown("**Optimisation**")
        optimisation = knob_row(TrainSpec, OPTIMISATION, D)
        st.markdown("**Validation and stopping**")
        stopping = knob_row(TrainSpec, STOPPING, D)
        flags = st.columns(2)
        val_f1 = knob_input(flags[0], TrainSpec, "val_f1", default=D.val_f1)
        checkpointing = knob_input(flags[1], TrainSpec, "gradient_checkpointing", default=D.gradient_checkpointing)
        buttons = st.columns([1, 1, 4])
        checked = buttons[0].form_submit_button("Pre-flight check")
        started = buttons[1].form_submit_button("Start training", type="primary")
    spec = TrainSpec(
        adapter=adapter.strip(),
        base=base.strip(),
        quantization=quant,
        start_from=start_from,
        lora=LoraSpec(
            r=int(rank),
            alpha=int(alpha),
            dropout=float(dropout),
            include_mlp=mlp,
            targets=tuple(t.strip() for t in targets.split(",") if t),
        ),
        dataset=dataset,
        kb=kb,
        mix=MixSpec.with_shares(dolly, generated, 0, primary_pool(dataset), hotpotqa),
        dolly_targets=dolly_targets,
        qa_dataset=qa_dataset.strip(),
        dolly_categories=tuple(categories),
        rag=RagExampleSpec(
            distractors=int(distractors),
            max_source_chars=int(source_chars),
            sources=sources,
            follow_links=int(follow_links),
            answer_style=answer_style,
        ),
        train_limit=int(limit) or None,
        max_length=int(max_length),
        val_f1=val_f1,
        gradient_checkpointing=checkpointing,
        **optimisation,
        **stopping,
    )
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
        right.plotly_chart(
            px.line(val, x="step", y=["eval_f1", "eval_em"], markers=True, title="Validation"), width="stretch"
        )


def adapters_table(adapters) -> pd.DataFrame:
    """One row per adapter: base, prompt, answer style trained for, rank, metrics, size, MLflow run."""
    return pd.DataFrame(
        [
            {
                "name": a.name,
                "base": a.base.get("name", ""),
                "created": a.created,
                "prompt": a.prompt,
                "answers": STYLE_LABELS.get(style_of(a), style_of(a)),
                "r": a.lora.get("r"),
                **{k: round(v, 2) for k, v in a.metrics.items()},
                "MB": round(a.size_bytes / 2**20, 1),
                "mlflow run": a.mlflow_run_id,
            }
            for a in adapters
        ]
    )


def show_plan(found) -> None:
    """The pre-flight plan: examples, steps, estimated peak memory and time."""
    est = found.estimate
    cols = st.columns(4)
    cols[0].metric("Training examples", found.train_examples)
    cols[1].metric("Steps", est.steps)
    free = f"of {est.available_mb / 1024:.1f} GB free"
    cols[2].metric("Peak memory (est.)", f"{est.memory_mb / 1024:.1f} GB", free, delta_color="off")
    cols[3].metric("Time (est.)", f"{est.minutes:.0f} min")
    st.info(f"LoRA on {found.targets}: {found.summary}. Memory: {est.note}.")


def unfinished_runs(settings) -> None:
    """Runs with a checkpoint and no saved adapter, not training now, each with a Resume button."""
    active = {j.args.get("spec", {}).get("adapter") for j in jobs.list_jobs("train") if not j.done}
    runs = [run for run in list_runs(settings) if run.checkpoint_step and not run.saved and run.adapter not in active]
    if runs:
        st.subheader("Unfinished runs")
        for run in runs:
            cols = st.columns([3, 1])
            cols[0].write(f"**{run.adapter}**: last checkpoint at step {run.checkpoint_step}")
            if cols[1].button("Resume", key=f"resume-{run.adapter}"):
                st.session_state["train-job"] = jobs.start(ResumeRun(run.adapter)).id
                st.rerun()
