"""``python -m engine train``: a LoRA adapter from a preset (the best measured recipe) and any changes to it.

Every setting flag defaults to the preset's value (or, with ``--config FILE``, the settings file's); a flag given on
the command line changes just that.
"""

from __future__ import annotations

import argparse

from engine.configs import add_config_argument
from engine.errors import InputError
from engine.evaluation.qa_sets import parse_ref
from engine.finetune.examples import MixSpec, RagExampleSpec
from engine.finetune.lora import LoraSpec
from engine.finetune.presets import PRESETS, RECIPE_7, preset_for
from engine.finetune.spec import TrainSpec, primary_pool
from engine.knobs import add_knob_argument, knobs_of
from engine.settings import load_settings
from engine.tracking import Tracker


def add_train_arguments(tr: argparse.ArgumentParser) -> None:
    collection = preset_for("my-qa").name
    arg = tr.add_argument
    arg(
        "--preset",
        default="",
        choices=["", *PRESETS],
        help=f"the recipe every other flag changes (default: {RECIPE_7.name} for HotpotQA, {collection} for "
        "a QA set of your own; see docs/fine-tuning.md)",
    )
    arg("--adapter", default="", help="name of the adapter to train or resume (default: <QA set>-lora)")
    arg(
        "--dataset",
        default="",
        help="the QA set to train on: a dataset NAME or NAME@VERSION, split (its train split is trained on, its "
        "validation split validates); default: HotpotQA's fixed split",
    )
    arg(
        "--kb",
        default="",
        help="the collection's knowledge base: retrieved training sources and validation come from it, as the "
        "Query page retrieves",
    )
    arg("--targets", default=None, help="comma-separated module names (default: by architecture)")
    arg("--hotpotqa", type=float, default=None, help="with --dataset: share of HotpotQA examples (0..1)")
    arg("--dolly", type=float, default=None, help="share of Dolly examples in the mix (0..1)")
    arg(
        "--dolly-categories",
        default=None,
        help="comma-separated Dolly categories to draw from (never closed_qa, the forgetting check)",
    )
    arg("--qa-share", type=float, default=None, help="share of the --qa-dataset pairs in the mix (0..1)")
    arg("--no-f1", action="store_true", help="validate on the loss only (no answering)")
    # The settings' flags: help, type and choices from the specs' knobs; each changes the preset only when given.
    spec_of = {"": TrainSpec, "lora": LoraSpec, "rag": RagExampleSpec}
    for flag, (name, nested) in FLAGS.items():
        if name in knobs_of(spec_of[nested]):
            add_knob_argument(tr, spec_of[nested], name, "--" + flag.replace("_", "-"), default=None)
    add_config_argument(tr, TrainSpec, lambda spec: {"dataset": spec.dataset, "kb": spec.kb, "adapter": spec.adapter})
    arg("--resume", action="store_true", help="resume the adapter's run from its last checkpoint")
    arg("--overwrite", action="store_true", help="replace an adapter or run of the same name")
    arg("--no-mlflow", action="store_true")


# flag -> (TrainSpec field, nested spec or "") for the flags that change one setting as they are
FLAGS = {
    "method": ("method", ""),
    "preferences": ("preferences", ""),
    "beta": ("beta", ""),
    "base": ("base", ""),
    "quantization": ("quantization", ""),
    "quantization_aware": ("quantization_aware", ""),
    "r": ("r", "lora"),
    "alpha": ("alpha", "lora"),
    "dropout": ("dropout", "lora"),
    "mlp": ("include_mlp", "lora"),
    "dolly_targets": ("dolly_targets", ""),
    "qa_dataset": ("qa_dataset", ""),
    "sources": ("sources", "rag"),
    "sources_k": ("k", "rag"),
    "follow_links": ("follow_links", "rag"),
    "answer_style": ("answer_style", "rag"),
    "distractors": ("distractors", "rag"),
    "source_chars": ("max_source_chars", "rag"),
    "limit": ("train_limit", ""),
    "epochs": ("epochs", ""),
    "lr": ("learning_rate", ""),
    "batch_size": ("batch_size", ""),
    "grad_accum": ("grad_accum", ""),
    "max_length": ("max_length", ""),
    "scheduler": ("scheduler", ""),
    "warmup": ("warmup_ratio", ""),
    "eval_every": ("eval_every", ""),
    "val_limit": ("val_limit", ""),
    "stop_on": ("stop_on", ""),
    "patience": ("patience", ""),
    "gradient_checkpointing": ("gradient_checkpointing", ""),
    "precision": ("precision", ""),
    "seed": ("seed", ""),
    "start_from": ("start_from", ""),
}


def categories_of(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def train_spec(a) -> object:
    """The TrainSpec of parsed ``train`` arguments: the preset (or the ``--config`` file's settings), changed by
    the flags given."""
    dataset = a.dataset.strip()
    loaded = getattr(a, "config_spec", None)
    if loaded is not None and a.preset:
        raise InputError("--preset and --config both give every setting: use one of them.")
    if loaded is not None:
        values = loaded.to_dict()
    else:
        preset = PRESETS[a.preset] if a.preset else preset_for(dataset)
        values = TrainSpec().to_dict()
        for key, value in preset.changes.items():
            values[key] = values[key] | value if isinstance(value, dict) else value
    for flag, (field, nested) in FLAGS.items():
        given = getattr(a, flag)
        if given is not None:
            (values[nested] if nested else values)[field] = given
    if a.targets is not None:
        values["lora"]["targets"] = categories_of(a.targets)
    if a.dolly_categories is not None:
        values["dolly_categories"] = categories_of(a.dolly_categories)
    if a.no_f1:
        values["val_f1"] = False
        values["stop_on"] = a.stop_on or ("loss" if values["stop_on"] == "f1" else values["stop_on"])
    for flag in ("dolly", "qa_share", "hotpotqa"):
        share = getattr(a, flag)
        if share is not None and not 0 <= share <= 1:
            raise InputError(f"--{flag.replace('_', '-')} is a share between 0 and 1.")
    primary = primary_pool(dataset)
    # the file's mix as it is, unless a flag changes a share, the seed or the QA set trained on
    changed = any(getattr(a, f) is not None for f in ("dolly", "qa_share", "hotpotqa", "seed"))
    if loaded is not None and not changed and primary_pool(loaded.dataset) == primary:
        values["mix"] = loaded.to_dict()["mix"]
    else:
        values["mix"] = mixed_shares(a, values, primary)
    name = parse_ref(dataset)[0] if dataset else "hotpotqa"
    values |= {"dataset": dataset, "kb": a.kb.strip(), "adapter": a.adapter.strip() or f"{name}-lora"}
    return TrainSpec.from_dict(values)


def mixed_shares(a, values: dict, primary: str) -> dict:
    """The mix of the shares given (else the preset's or the file's), drawn with the seed."""
    shares = dict(values["mix"]["sources"])
    if values["mix"]["sources"][0][0] != primary:  # the preset's primary share goes to the QA set trained on
        shares.pop(values["mix"]["sources"][0][0])
    mix = MixSpec.with_shares(
        shares.get("dolly", 0.0) if a.dolly is None else a.dolly,
        shares.get("generated", 0.0) if a.qa_share is None else a.qa_share,
        values["seed"],
        primary,
        shares.get("hotpotqa", 0.0) if a.hotpotqa is None else a.hotpotqa,
    )
    return {"sources": mix.sources, "total": None, "seed": mix.seed}


def run_train(a) -> int:
    settings = load_settings()
    tracker = None if a.no_mlflow else Tracker(settings)
    from engine.finetune.trainer import train  # noqa: PLC0415 - loads torch and transformers

    result = train(train_spec(a), settings, tracker, resume=a.resume, overwrite=a.overwrite)
    print(f"adapter {result.adapter}: {result.steps} steps in {result.seconds / 60:.1f} min, best {result.best_metric}")
    return 0
