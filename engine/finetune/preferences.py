"""Preference training (DPO, ORPO) with TRL's trainers on the Studio's training run.

The run is the SFT run's (:mod:`engine.finetune.trainer`): the same base, adapter (new, or the one training
starts from), checkpoints and resume, validation F1, early stopping, graceful stop, curves and MLflow. What
differs is the data, preference pairs (:mod:`engine.qa.preference`) rendered into the prompt the model
answers in, and the trainer: TRL's ``DPOTrainer`` or ``ORPOTrainer`` in place of the Hugging Face one.

DPO's reference model: with an adapter to start from, TRL keeps a frozen copy of it (adapter ``ref``), so DPO
moves the SFT adapter relative to itself; with a new adapter the reference is the base (adapters off). ORPO
has no reference.
"""

from __future__ import annotations

import os
import random

from engine.errors import InputError
from engine.finetune.examples import asked_in, template_for
from engine.finetune.spec import TrainSpec
from engine.qa.preference import check_pairs, counts_by_origin, rejected_of
from engine.qa.schema import QARecord
from engine.qa.versions import DatasetStore
from engine.rag.hits import Hit
from engine.settings import Settings

REF_ADAPTER = "ref"  # the name TRL gives the frozen copy of the adapter DPO starts from
VALIDATION_SHARE, MAX_VALIDATION = 0.1, 50  # pairs held out for the preference loss when none are marked
# What TRL logs beyond the loss: the curve draws them (``/`` becomes ``_``: a file and MLflow key).
LOGGED = ("rewards/", "logps/", "nll_loss", "log_odds_ratio", "log_odds_chosen")


def load_pairs(ref: str, settings: Settings) -> tuple[list[QARecord], dict]:
    """The pairs of a preference dataset ``NAME`` (its newest version) or ``NAME@VERSION``, and its identity."""
    store = DatasetStore(settings)
    name, _, version = ref.strip().partition("@")
    version = version.strip() or store.versions(name.strip())[0].id
    records = check_pairs(store.load(name.strip(), version), f"Dataset {name.strip()}@{version}")
    found = {"name": f"{name.strip()}@{version}", "dataset": name.strip(), "version": version, "split": "pairs"}
    return records, found | {"origins": counts_by_origin(records)}


def split_pairs(records: list[QARecord], seed: int) -> tuple[list[QARecord], list[QARecord]]:
    """(training pairs, validation pairs): the pairs marked ``split`` validation, else a seeded tenth (at most
    50) held out; a dataset of one pair validates on it."""
    marked = [r for r in records if r.metadata.get("split") == "validation"]
    if marked:
        return [r for r in records if r.metadata.get("split") != "validation"] or marked, marked
    if len(records) < 2:
        return records, records
    size = max(1, min(MAX_VALIDATION, round(VALIDATION_SHARE * len(records))))
    held = set(random.Random(seed).sample(range(len(records)), size))
    return [r for n, r in enumerate(records) if n not in held], [r for n, r in enumerate(records) if n in held]


def messages_of(record: QARecord, spec: TrainSpec) -> list[dict]:
    """The chat messages a pair's answers answer: the ones recorded with it, else rebuilt from its question
    and contexts in the prompt the adapter is trained in."""
    if record.metadata.get("messages"):
        return [dict(m) for m in record.metadata["messages"]]
    hits = [
        Hit(id=f"{record.id}:{n}", title=c.title, text=c.text, source="pair", score=0.0)
        for n, c in enumerate(record.contexts)
    ]
    return asked_in(template_for(spec.rag), spec.rag, record.question).messages(record.question, hits)


def pair_rows(records: list[QARecord], spec: TrainSpec, render) -> list[dict]:
    """TRL's standard preference rows: the rendered prompt (up to the assistant's turn) and the two answers
    (TRL appends the end-of-turn token to each, as SFT training does)."""
    return [{"prompt": render(messages_of(r, spec)), "chosen": r.answer, "rejected": rejected_of(r)} for r in records]


def preference_examples(spec: TrainSpec, generator, settings: Settings, report=None):
    """(training rows, validation rows, datasets): the pairs as TRL datasets, and what the run trained on."""
    from datasets import Dataset

    say = report or (lambda fraction, message: None)
    say(0.0, f"reading the preference pairs of {spec.preferences}")
    records, found = load_pairs(spec.preferences, settings)
    train, val = split_pairs(records, spec.seed)
    if spec.train_limit:
        train = train[: spec.train_limit]
    found |= {"examples": len(train), "validation_pairs": len(val)}
    origins = ", ".join(f"{n} {o}" for o, n in counts_by_origin(train).items())
    say(0.0, f"{len(train)} training pairs ({origins}), {len(val)} held out for the preference loss")
    rows = [Dataset.from_list(pair_rows(part, spec, generator.render)) for part in (train, val)]
    return rows[0], rows[1], [found]


def pair_lengths(rows, tokenizer, max_length: int) -> list[int]:
    """Tokens of each pair's prompt and longer answer (as trained: cut at ``max_length``)."""
    prompts = tokenizer(list(rows["prompt"]), add_special_tokens=False).input_ids
    answers = [
        max(len(c), len(r))
        for c, r in zip(
            tokenizer(list(rows["chosen"]), add_special_tokens=False).input_ids,
            tokenizer(list(rows["rejected"]), add_special_tokens=False).input_ids,
            strict=True,
        )
    ]
    return [min(max_length, len(p) + a + 1) for p, a in zip(prompts, answers, strict=True)]


def preference_arguments(spec: TrainSpec, values: dict):
    """TRL's config for the method, from the arguments every method shares (``values``)."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # TRL's trainers report their use to the Hub otherwise
    own = {
        "beta": spec.beta,
        "max_length": spec.max_length,
        "disable_dropout": True,
        # TRL turns checkpointing on unless told (a GPU's default); on a CPU it costs a third more time.
        "activation_checkpointing": spec.gradient_checkpointing,
    }
    if spec.gradient_checkpointing:
        own["activation_checkpointing_kwargs"] = {"use_reentrant": False}
    if spec.method == "dpo":
        from trl import DPOConfig

        return DPOConfig(**values, **own, truncation_mode="keep_start")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.orpo import ORPOConfig  # noqa: PLC0415 - ORPO lives in TRL's experimental package

    return ORPOConfig(**values, **own)


def preference_trainer(spec: TrainSpec, model, tokenizer, args, train_rows, val_rows, callbacks):
    """TRL's trainer for the method on the PEFT model (a trained adapter named ``default`` is DPO's reference)."""
    if spec.method == "dpo":
        from trl import DPOTrainer as Trainer
    else:
        from trl.experimental.orpo import ORPOTrainer as Trainer  # noqa: PLC0415 - ORPO is in TRL's experimental package

    return Trainer(
        model=model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=val_rows,
        processing_class=tokenizer,
        callbacks=callbacks,
    )


def without_reference(model):
    """The trained model with DPO's frozen reference adapter removed, so that only the trained one is saved."""
    if REF_ADAPTER in getattr(model, "peft_config", {}):
        model.delete_adapter(REF_ADAPTER)
        model.set_adapter("default")
    return model


def logged_values(logs: dict) -> dict:
    """The preference metrics of a training log row (rewards, log-probabilities, ORPO's terms), file-safe names."""
    return {
        k.replace("/", "_"): float(v) for k, v in logs.items() if k.startswith(LOGGED) and isinstance(v, int | float)
    }


def check_tokens(tokenizer) -> None:
    if tokenizer.eos_token is None:
        raise InputError("Preference training needs a tokenizer with an end-of-sequence token to end the answers.")
