"""The Fine-tune page's widgets: the training-settings form, the adapters table, unfinished runs."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from engine import jobs
from engine.errors import InputError
from engine.evaluation.qa_sets import HOTPOTQA, qa_set_names
from engine.finetune.continued import fitting_hotpotqa_adapter
from engine.finetune.examples import DOLLY_CATEGORIES, MixSpec, RagExampleSpec
from engine.finetune.lora import LoraSpec
from engine.finetune.presets import CONTINUED, PRESETS, preset_for, preset_spec
from engine.finetune.runs import list_runs
from engine.finetune.spec import ResumeRun, TrainSpec, primary_pool
from engine.qa.preference import preference_datasets
from engine.rag.styles import style_of
from ui import resources as r
from ui.configs import check_option, config_bar, config_footer, forget, loaded, loads
from ui.knobs import knob_input, knob_row

METHOD_LABELS = {"sft": "SFT (answers)", "dpo": "DPO (preference pairs)", "orpo": "ORPO (preference pairs)"}
SOURCE_LABELS = {"gold": "gold + distractors", "retrieved": "retrieved top 5"}
STYLE_LABELS = {
    "short": "short answer",
    "evidence": "evidence, then answer",
    "sentences": "sentences",
    "auto": "by the question",
}


def train_widgets(spec: TrainSpec) -> dict:
    """The widgets above the training form for loaded settings (the form itself starts afresh from them)."""
    check_option(spec.dataset or HOTPOTQA, qa_set_names(r.settings()), "the QA set")
    if any(share > 0.5 for pool, share in spec.mix.sources if pool != primary_pool(spec.dataset)):
        raise InputError("The form mixes in shares of at most 0.5: run these settings from the shell (--config).")
    if spec.start_from:
        check_option(spec.start_from, r.adapter_names(), "the adapter to start from")
    if spec.dataset:
        check_option(spec.kb, r.store().names(), "the knowledge base")
    return {"train-on": spec.dataset or HOTPOTQA} | ({"train-kb": spec.kb} if spec.dataset else {})


def data_choice() -> tuple[str, str, TrainSpec, str]:
    """What to train on (a QA set, HotpotQA built in), its knowledge base, the recipe (or loaded settings) the
    form starts from, and the prefix of the form's widget keys (new with each recipe, QA set and load, so that
    the widgets start from the new values)."""
    from_file = config_bar("train", TrainSpec, "train", train_widgets)
    names = qa_set_names(r.settings())
    cols = st.columns(3)
    dataset = cols[0].selectbox(
        "Train on",
        names,
        index=1 if len(names) > 1 else 0,
        key="train-on",
        on_change=forget,
        args=("train",),
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
        on_change=forget,
        args=("train",),
    )
    prefix = f"train-{loads('train')}-{dataset}-{preset}"
    if from_file is not None:
        st.caption("The form starts from the loaded settings; choose a recipe to start from it instead.")
        return ("" if dataset == HOTPOTQA else dataset), kb, from_file, prefix
    st.caption(f"**{preset}** — measured on {PRESETS[preset].measured}.")
    found = preset_spec(preset)
    if preset == CONTINUED.name:  # the recipe continues a HotpotQA adapter: the best one saved, to begin with
        found = replace(found, start_from=fitting_hotpotqa_adapter(r.settings(), found.rag.answer_style == "sentences"))
    return ("" if dataset == HOTPOTQA else dataset), kb, found, prefix


OPTIMISATION = ("epochs", "learning_rate", "batch_size", "grad_accum", "scheduler", "warmup_ratio")
STOPPING = ("eval_every", "val_limit", "stop_on", "patience", "precision")


def share_slider(container, label: str, value: float, helptext: str, key: str | None = None) -> float:
    """One pool's share of the training mix: 0 to 0.5, in steps of 0.05."""
    return container.slider(label, 0.0, 0.5, value, 0.05, help=helptext, key=key)


def settings_form() -> tuple[TrainSpec, str]:
    """The training settings from the form, and which button was pressed."""
    dataset, kb, D, p = data_choice()
    shares = dict(D.mix.sources)
    with st.form("train"):
        top, starts = st.columns(5), ["", *r.adapter_names()]
        name = f"{dataset.partition('@')[0] or 'hotpotqa'}-lora" if loaded("train") is None else D.adapter
        adapter = top[0].text_input("Adapter name", name, help="Letters, digits, '.', '_' and '-'.", key=f"{p}-adapter")
        start_from = knob_input(
            top[3], TrainSpec, "start_from", starts, D.start_from, format_func=lambda a: a or "a new adapter", prefix=p
        )
        base = knob_input(top[1], TrainSpec, "base", default=D.base, prefix=p)
        quant = knob_input(top[2], TrainSpec, "quantization", default=D.quantization, prefix=p)
        qat = knob_input(top[4], TrainSpec, "quantization_aware", default=D.quantization_aware, prefix=p)
        st.markdown("**Data**")
        data = st.columns(5)
        dolly = share_slider(
            data[0],
            "Dolly share",
            shares.get("dolly", 0.0),
            "Share of Dolly instruction examples mixed in (closed_qa is never used: it checks forgetting).",
            f"{p}-dolly-share",
        )
        dolly_targets = knob_input(data[4], TrainSpec, "dolly_targets", default=D.dolly_targets, prefix=p)
        distractors = knob_input(data[1], RagExampleSpec, "distractors", default=D.rag.distractors, prefix=p)
        limit = knob_input(data[2], TrainSpec, "train_limit", default=D.train_limit or 0, prefix=p)
        max_length = knob_input(data[3], TrainSpec, "max_length", default=D.max_length, prefix=p)
        more = st.columns([1, 2, 1, 1])
        sources = knob_input(
            more[2], RagExampleSpec, "sources", default=D.rag.sources, format_func=SOURCE_LABELS.get, prefix=p
        )
        source_chars = knob_input(more[3], RagExampleSpec, "max_source_chars", default=D.rag.max_source_chars, prefix=p)
        hotpotqa, generated, qa_dataset = 0.0, 0.0, ""
        if dataset:
            hotpotqa = share_slider(
                more[0],
                "HotpotQA share",
                shares.get("hotpotqa", 0.0),
                "Share of HotpotQA training questions mixed into your QA set's.",
                f"{p}-hotpotqa-share",
            )
        else:
            generated = share_slider(
                more[0],
                "Generated QA share",
                shares.get("generated", 0.0),
                "Share of QA pairs from a dataset version (Datasets page) mixed in: its training split only.",
                f"{p}-generated-share",
            )
            qa_dataset = knob_input(
                more[1],
                TrainSpec,
                "qa_dataset",
                default=D.qa_dataset,
                placeholder="wiki-qa  or  wiki-qa@<version>",
                prefix=p,
            )
        shape = st.columns(2)
        answer_style = knob_input(
            shape[0], RagExampleSpec, "answer_style", default=D.rag.answer_style, format_func=STYLE_LABELS.get, prefix=p
        )
        follow_links = knob_input(shape[1], RagExampleSpec, "follow_links", default=D.rag.follow_links, prefix=p)
        categories = st.multiselect(
            "Dolly categories",
            DOLLY_CATEGORIES,
            D.dolly_categories,
            help="Which Dolly instructions the Dolly share draws from. closed_qa is never offered: the forgetting "
            "check scores it. information_extraction and summarization carry a context paragraph, as closed_qa does.",
            key=f"{p}-dolly-categories",
        )
        st.markdown("**Method**")
        method_row = st.columns(3)
        method = knob_input(
            method_row[0], TrainSpec, "method", default=D.method, format_func=METHOD_LABELS.get, prefix=p
        )
        preferences = knob_input(
            method_row[1],
            TrainSpec,
            "preferences",
            ["", *preference_datasets(r.settings())],
            D.preferences,
            format_func=lambda n: n or "none (SFT)",
            prefix=p,
        )
        beta = knob_input(method_row[2], TrainSpec, "beta", default=D.beta, prefix=p)
        st.markdown("**LoRA**")
        lora = st.columns(5)
        rank = knob_input(lora[0], LoraSpec, "r", default=D.lora.r, prefix=p)
        alpha = knob_input(lora[1], LoraSpec, "alpha", default=D.lora.alpha, prefix=p)
        dropout = knob_input(lora[2], LoraSpec, "dropout", default=D.lora.dropout, prefix=p)
        mlp = knob_input(lora[3], LoraSpec, "include_mlp", default=D.lora.include_mlp, prefix=p)
        targets = lora[4].text_input(
            "Target modules",
            ",".join(D.lora.targets),
            placeholder="by architecture",
            help="Comma-separated override.",
            key=f"{p}-targets",
        )
        st.markdown("**Optimisation**")
        optimisation = knob_row(TrainSpec, OPTIMISATION, D, p)
        st.markdown("**Validation and stopping**")
        stopping = knob_row(TrainSpec, STOPPING, D, p)
        flags = st.columns(2)
        val_f1 = knob_input(flags[0], TrainSpec, "val_f1", default=D.val_f1, prefix=p)
        checkpointing = knob_input(
            flags[1], TrainSpec, "gradient_checkpointing", default=D.gradient_checkpointing, prefix=p
        )
        buttons = st.columns([1, 1, 4])
        checked = buttons[0].form_submit_button("Pre-flight check")
        started = buttons[1].form_submit_button("Start training", type="primary")
    spec = replace(
        D,  # loaded settings keep what the form has no widget for (the recipes set nothing of that)
        adapter=adapter.strip(),
        base=base.strip(),
        quantization=quant,
        quantization_aware=qat,
        start_from=start_from,
        method=method,
        preferences=preferences,
        beta=float(beta),
        lora=replace(
            D.lora,
            r=int(rank),
            alpha=int(alpha),
            dropout=float(dropout),
            include_mlp=mlp,
            targets=tuple(t.strip() for t in targets.split(",") if t),
        ),
        dataset=dataset,
        kb=kb,
        mix=MixSpec.with_shares(dolly, generated, D.mix.seed, primary_pool(dataset), hotpotqa),
        dolly_targets=dolly_targets,
        qa_dataset=qa_dataset.strip(),
        dolly_categories=tuple(categories),
        rag=replace(
            D.rag,
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
    config_footer("train", spec, "train")
    return spec, "check" if checked else "start" if started else ""


def adapters_table(adapters) -> pd.DataFrame:
    """One row per adapter: base, prompt, answer style trained for, rank, metrics, size, MLflow run."""
    return pd.DataFrame(
        [
            {
                "name": a.name,
                "base": a.base.get("name", ""),
                "created": a.created,
                "method": (a.train.get("method") or "sft").upper(),
                "trained on": a.train.get("preferences") or a.train.get("dataset") or "hotpotqa",
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
