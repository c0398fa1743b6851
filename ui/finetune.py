"""The Fine-tune page's widgets: the training-settings form and the live training curves."""

from dataclasses import replace

import pandas as pd
import plotly.express as px
import streamlit as st

from engine.finetune.callbacks import read_curve
from engine.finetune.examples import DOLLY_CATEGORIES, MixSpec, RagExampleSpec
from engine.finetune.lora import LoraSpec
from engine.finetune.spec import TrainSpec
from engine.models.spec import MODEL_HELP
from engine.rag.prompt import TRAINED_STYLES
from engine.rag.styles import style_of
from ui import resources as r

SOURCE_LABELS = {"gold": "gold + distractors", "retrieved": "retrieved top 5"}
STYLE_LABELS = {
    "short": "short answer",
    "evidence": "evidence, then answer",
    "sentences": "sentences",
    "auto": "by the question",
}


def data_choice() -> tuple[str, str, TrainSpec]:
    """What to train on (a QA set, HotpotQA built in), its knowledge base, and the recipe the form starts from."""
    from engine.evaluation.qa_sets import HOTPOTQA, qa_set_names
    from engine.finetune.continued import fitting_hotpotqa_adapter
    from engine.finetune.presets import CONTINUED, PRESETS, preset_for, preset_spec

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


def settings_form() -> tuple[TrainSpec, str]:
    """The training settings from the form, and which button was pressed."""
    from engine.finetune.inputs import primary_pool

    dataset, kb, D = data_choice()
    shares = dict(D.mix.sources)
    with st.form("train"):
        top, starts = st.columns(4), ["", *r.adapter_names()]
        name = dataset.partition("@")[0] or "hotpotqa"
        adapter = top[0].text_input("Adapter name", f"{name}-lora", help="Letters, digits, '.', '_' and '-'.")
        start_from = top[3].selectbox(
            "Start from",
            starts,
            starts.index(D.start_from) if D.start_from in starts else 0,
            format_func=lambda a: a or "a new adapter",
            help="Continue a saved adapter instead of starting a new one: its rank and target modules are kept "
            "(the LoRA settings below are not used). Collection recipe 4: a HotpotQA adapter continued on your QA set.",
        )
        base = top[1].text_input("Base model", placeholder="bundled SmolLM2-135M", help=MODEL_HELP)
        quant = top[2].selectbox(
            "Quantization",
            ("none", "8bit", "4bit"),
            help="QLoRA: load the frozen base in 8-bit or 4-bit (nf4) with bitsandbytes to save memory. "
            "CPU and CUDA only; on Apple Silicon choose none.",
        )
        st.markdown("**Data**")
        data = st.columns(5)
        dolly = data[0].slider(
            "Dolly share",
            0.0,
            0.5,
            shares.get("dolly", 0.0),
            0.05,
            help="Share of Dolly instruction examples mixed in (closed_qa is never used: it checks forgetting).",
        )
        dolly_targets = data[4].selectbox(
            "Dolly answers",
            ("base", "reference"),
            index=("base", "reference").index(D.dolly_targets),
            help="base: the base model's own answers to the Dolly instructions (self-distillation), so the adapter "
            "keeps the base's behaviour outside the RAG prompt; generated once before training and cached. "
            "reference: Dolly's human responses.",
        )
        distractors = data[1].number_input(
            "Distractor passages",
            0,
            8,
            D.rag.distractors,
            help="Non-gold paragraphs shown with the gold ones, shuffled, so the model learns to pick "
            "(with gold + distractors sources).",
        )
        limit = data[2].number_input("Max training examples", 0, 5000, 0, help="0: all of them.")
        max_length = data[3].number_input(
            "Max length (tokens)", 64, 4096, D.max_length, help="Longer examples are cut; prompts must fit."
        )
        more = st.columns([1, 2, 1, 1])
        sources = more[2].selectbox(
            "Training sources",
            ("gold", "retrieved"),
            ("gold", "retrieved").index(D.rag.sources),
            format_func=SOURCE_LABELS.get,
            help="gold + distractors: each question's gold paragraphs and N others, shuffled. retrieved: the 5 "
            "paragraphs the evaluation's retriever ranks first, in its order (a gold one it ranks lower replaces "
            "the last other one), so training shows what evaluation and the Query page show.",
        )
        source_chars = more[3].number_input(
            "Source length (chars)",
            50,
            4000,
            D.rag.max_source_chars,
            50,
            help="Each passage is cut to this many characters: shorter trains faster; the answer must stay in.",
        )
        hotpotqa, generated, qa_dataset = 0.0, 0.0, ""
        if dataset:
            hotpotqa = more[0].slider(
                "HotpotQA share",
                0.0,
                0.5,
                shares.get("hotpotqa", 0.0),
                0.05,
                help="Share of HotpotQA training questions mixed into your QA set's.",
            )
        else:
            generated = more[0].slider(
                "Generated QA share",
                0.0,
                0.5,
                0.0,
                0.05,
                help="Share of QA pairs from a dataset version (Datasets page) mixed in: its training split only.",
            )
            qa_dataset = more[1].text_input(
                "Generated QA dataset",
                placeholder="wiki-qa  or  wiki-qa@<version>",
                help="A dataset name (its newest version) or name@version; its validation and test splits are "
                "never used.",
            )
        shape = st.columns(2)
        answer_style = shape[0].selectbox(
            "Answer style",
            TRAINED_STYLES,
            TRAINED_STYLES.index(D.rag.answer_style),
            format_func=STYLE_LABELS.get,
            help="What the adapter learns to write. short answer: the answer alone. by the question: the answer "
            "alone for who/when/where/which/how many questions, one to three sentences of the sources for 'What is "
            "X?', 'What does X do?', why and how questions, as the Query page asks them. sentences: for every question "
            "the sentences of the sources that hold the answer, for collections whose people answer in sentences "
            "(the guided loop picks it from their answers). evidence, then answer: "
            "first the sentences of the sources HotpotQA marks as the evidence, then the answer (about 80 more "
            "tokens to generate per question). Evaluations and the Query page read the answer after 'Answer:'. "
            "Measured on HotpotQA, evidence is much worse than short answers (test F1 23.9 against 36.1; "
            "docs/fine-tuning.md).",
        )
        follow_links = shape[1].number_input(
            "Follow links from the first N sources",
            0,
            5,
            D.rag.follow_links,
            help="Retrieval's second hop (retrieved sources and validation): passages whose title the first N "
            "passages mention move up, as the evaluation ranks them. 0: the embedding ranking only.",
        )
        categories = st.multiselect(
            "Dolly categories",
            DOLLY_CATEGORIES,
            D.dolly_categories,
            help="Which Dolly instructions the Dolly share draws from. closed_qa is never offered: the forgetting "
            "check scores it. information_extraction and summarization carry a context paragraph, as closed_qa does.",
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
        schedules = ("linear", "cosine", "constant_with_warmup")
        batch = opt[2].number_input("Batch size", 1, 64, D.batch_size)
        accum = opt[3].number_input("Grad. accumulation", 1, 64, D.grad_accum, help="Effective batch = batch x this.")
        scheduler = opt[4].selectbox("LR schedule", schedules, schedules.index(D.scheduler))
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
        adapter=adapter.strip(),
        base=base.strip(),
        quantization=quant,
        start_from=start_from,
        lora=LoraSpec(int(rank), int(alpha), float(dropout), mlp, tuple(t.strip() for t in targets.split(",") if t)),
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
        epochs=float(epochs),
        learning_rate=float(lr),
        batch_size=int(batch),
        grad_accum=int(accum),
        max_length=int(max_length),
        scheduler=scheduler,
        warmup_ratio=float(warmup),
        eval_every=int(every),
        val_limit=int(val_limit),
        val_f1=val_f1,
        stop_on=stop_on,
        patience=int(patience),
        gradient_checkpointing=checkpointing,
        precision=precision,
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
    from engine import jobs
    from engine.finetune.runs import list_runs
    from engine.finetune.spec import ResumeRun

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
