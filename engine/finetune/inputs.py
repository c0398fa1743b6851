"""What a training run is built from: the base model, the tokenized examples, the validation
function, and the pre-flight plan (memory and time) shown before it starts."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, fields, replace

from engine.errors import InputError
from engine.evaluation.hotpotqa import distractor_retriever
from engine.evaluation.instructions import dolly_examples
from engine.evaluation.qa_sets import HOTPOTQA, load_qa_set, resolve_data
from engine.evaluation.runner import EvalSpec, run_evaluation
from engine.finetune.continued import continue_adapter
from engine.finetune.distill import DistillReport
from engine.finetune.encoding import drop_too_long
from engine.finetune.examples import mix, rag_examples, record_examples, without_gold
from engine.finetune.lora import Targets, detect_targets, summarize, to_lora_config
from engine.finetune.preferences import pair_lengths, preference_examples
from engine.finetune.preflight import estimate
from engine.finetune.preparation import BLOCK, LazyRows, Pending, entries, preparer
from engine.finetune.spec import TrainSpec, primary_pool, resolve_precision
from engine.models.adapters import AdapterRegistry
from engine.models.generation import Generator
from engine.models.loader import LoadedModel, load_model
from engine.models.spec import resolve_device, spec_for
from engine.qa.versions import DatasetStore, file_identity, log_dataset_input
from engine.rag.embedder import Embedder
from engine.rag.embedding_cache import cached_embedder
from engine.rag.retriever import KnowledgeBaseRetriever
from engine.rag.store import KnowledgeBaseStore
from engine.settings import Settings


def build_examples(spec: TrainSpec, generator, settings: Settings, report=None, distill: bool = True, base_only=None):
    """Training and validation rows (:class:`~engine.finetune.preparation.LazyRows`), and the data's identity.

    The primary pool is the QA set's training split (``spec.dataset``; HotpotQA's fixed split by
    default), validated on its validation split. With ``dolly_targets="base"`` the Dolly examples get
    the base model's own answers (made with ``generator`` under ``base_only()``, the context that
    switches a training adapter off, unless cached; ``distill=False`` keeps the references, for
    estimates). Questions ranked among their own paragraphs and the base model's answers are made
    as training reaches them; the rest, and any question whose prompt might not fit, now.
    """
    say = report or (lambda fraction, message: None)
    say(0.0, "reading the QA set's training and validation questions")
    train_set, val_set = qa_splits(spec, settings)
    primary = primary_pool(spec)
    retriever, depth = source_retriever(spec, [], settings) if spec.kb else (None, 0)
    pools = {primary: questions(spec, train_set.items, primary, retriever, depth, say)}
    datasets = [qa_identity(train_set, settings)]
    if primary != "hotpotqa" and spec.mix.uses("hotpotqa"):
        hotpot = load_qa_set(settings, "hotpotqa", "train")
        pools["hotpotqa"] = questions(replace(spec, dataset="", kb=""), hotpot.items, "hotpotqa", None, 0, say)
        datasets.append(qa_identity(hotpot, settings))
    if spec.mix.uses("dolly"):
        dolly = resolve_data(spec.dolly, settings)
        categories = spec.dolly_categories
        # A few Dolly records carry whole articles as context; a pool of thousands loses nothing
        # by leaving those out (counted in the dataset record), where one would stop the run.
        pools["dolly"], too_long = drop_too_long(
            dolly_examples(dolly, categories=categories), generator.tokenizer, generator.render, spec.max_length
        )
        datasets.append(
            file_identity(dolly)
            | {"split": ",".join(categories), "left_out_too_long": too_long, "targets": spec.dolly_targets}
        )
    if spec.mix.uses("generated"):
        pools["generated"], found = generated_pool(spec, settings)
        datasets.append(found)
    examples, _ = mix(pools, spec.mix)
    if spec.train_limit:
        examples = examples[: spec.train_limit]
    for d, name in zip(datasets, pools, strict=True):
        d["examples"] = sum(1 for e in examples if e.source == name)
    tally = None
    if spec.dolly_targets == "base" and distill and any(e.source == "dolly" for e in examples):
        tally = datasets[-1]["self_answers"] = {f.name: 0 for f in fields(DistillReport)}
    make = preparer(spec, generator, settings, base_only, tally)
    say(0.0, f"tokenizing {len(examples)} training examples")
    train_rows = LazyRows(
        entries(examples, spec, generator, make, tally is not None), make, spec.batch_size * spec.grad_accum, spec.seed
    )
    val_examples = questions(spec, val_set.items, primary, retriever, depth, say)
    val_rows = LazyRows(entries(val_examples, spec, generator, make, False), make)
    if train_rows.pending:
        say(
            0.0,
            f"{train_rows.pending} of {len(train_rows)} training examples are made as training reaches "
            f"them, {BLOCK} at a time: sources ranked, the base model's Dolly answers",
        )
    return train_rows, val_rows, datasets


def questions(spec: TrainSpec, items, source: str, retriever, depth: int, say):
    """The grounded examples of ``items``: made now where that is cheap (gold sources, a knowledge base's
    ranking), else :class:`~engine.finetune.preparation.Pending` (ranked among their own paragraphs later)."""
    if spec.rag.sources == "retrieved" and retriever is None:  # each question's own paragraphs: embedding them all
        skipped = set(without_gold(items))  # as rag_examples skips them
        return [Pending(it.id, source, 0, item=it) for it in items if it.id not in skipped]
    ranking = eta_reporter(say, "ranking the questions' sources in the knowledge base")
    return rag_examples(items, spec.rag, retriever, source, depth, ranking)


def qa_splits(spec: TrainSpec, settings: Settings):
    """The training split and the (first ``val_limit`` questions of the) validation split of the QA set;
    questions without a gold answer are left out of both (nothing to learn, no F1)."""
    ref = spec.dataset if primary_pool(spec) == "dataset" else f"{HOTPOTQA}@{spec.data}"
    train, val = load_qa_set(settings, ref, "train"), load_qa_set(settings, ref, "validation")
    train = replace(train, items=[it for it in train.items if it.answer.strip()])
    val = replace(val, items=[it for it in val.items if it.answer.strip()][: spec.val_limit])
    if not train.items:
        raise InputError(f"The training split of {train.ref} has no question with a gold answer to learn from.")
    return train, val


def qa_identity(qa, settings: Settings) -> dict:
    """What a run trained on, for the run record and MLflow: the file (HotpotQA) or the dataset version."""
    if qa.name == HOTPOTQA:
        return file_identity(resolve_data(qa.version, settings)) | {"split": qa.split}
    return {"name": qa.ref, "dataset": qa.name, "version": qa.version, "split": qa.split}


def source_retriever(spec: TrainSpec, items, settings: Settings):
    """The retriever of retrieved training sources (else None) and how deep it ranks (0: all of an item's
    paragraphs): the collection's knowledge base (``spec.kb``) the way the Query page retrieves, else the
    evaluation's ranking of each question's own paragraphs, behind the embedding cache."""
    if spec.rag.sources != "retrieved":
        return None, 0
    if spec.kb:
        store = KnowledgeBaseStore(settings, Embedder.shared())
        store.collection(spec.kb)  # a missing knowledge base fails here, before any work
        return KnowledgeBaseRetriever(store, spec.kb), spec.rag.k

    return distractor_retriever(items, settings, follow_links=spec.rag.follow_links), 0


def generated_pool(spec: TrainSpec, settings: Settings):
    """Grounded examples from a dataset version's training split (all of it when it is not split)."""
    store = DatasetStore(settings)
    name, _, version = spec.qa_dataset.strip().partition("@")
    version = version or store.versions(name)[0].id
    records = [r for r in store.load(name, version) if r.has_gold]  # nothing to learn from the others
    train = [r for r in records if r.metadata.get("split") == "train"] or records
    found = {
        "name": f"{name}@{version}",
        "dataset": name,
        "version": version,
        "split": "train" if len(train) < len(records) else "all (not split)",
    }
    return record_examples(train, spec.rag), found


def log_dataset_inputs(tracker, run_id: str, datasets: list[dict], settings: Settings) -> None:
    """Name the dataset versions a training run used as its MLflow inputs (digest: the version id)."""
    store = DatasetStore(settings)
    for d in datasets:
        if d.get("version"):
            log_dataset_input(
                tracker, run_id, store.manifest(d["dataset"], d["version"]), store.load(d["dataset"], d["version"])
            )


def eta_reporter(report, what: str):
    """``progress(done, total)`` that reports ``what`` with the counts and the time left (at the pace so far)."""
    began = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if report:
            left = (time.perf_counter() - began) / max(done, 1) * (total - done)
            report(0.0, f"{what}: {done} of {total} (about {left / 60:.0f} min left)")

    return progress


def validation(spec: TrainSpec, loaded, settings: Settings, precision: str):
    """``validate(model) -> {"f1", "em"}`` on the validation split, through the evaluation runner."""
    if not spec.val_f1:
        return None

    embedder = cached_embedder(settings)
    store = None
    if spec.kb:
        store = KnowledgeBaseStore(settings, Embedder.shared())
    dataset = spec.dataset if primary_pool(spec) == "dataset" else ""
    eval_spec = EvalSpec(
        data=spec.data,
        dataset=dataset,
        mode="kb" if spec.kb else "distractor",
        kb=spec.kb or "hotpotqa-wiki",
        split="validation",
        limit=spec.val_limit,
        k=spec.val_k,
        prompt="few-shot" if spec.rag.few_shot else "zero-shot",
        max_source_chars=spec.rag.max_source_chars,
        follow_links=spec.rag.follow_links,
        answer_style=spec.rag.answer_style,
    )

    def validate(model) -> dict[str, float]:
        import torch

        # The PEFT wrapper does not pass the shared-prefix cache through to the model; the
        # wrapped model has the adapter layers injected, so it answers with the adapter.
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        generator = Generator(
            LoadedModel(
                spec=loaded.spec,
                model=inner,
                tokenizer=loaded.tokenizer,
                device=loaded.device,
                load_seconds=0.0,
                from_cache=False,
            )
        )
        autocast = (
            torch.autocast(loaded.device, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
        )
        with autocast:
            result = run_evaluation(eval_spec, generator, embedder, store, settings=settings)
        return {"f1": result.metrics["f1"], "em": result.metrics["em"]}

    return validate


def load_base(spec: TrainSpec, settings: Settings):
    """The frozen base model for training, in the dtype it computes in, or k-bit and prepared for QLoRA.

    The base is never updated, so it needs no float32 master copy: in a bf16 or fp16 run it
    is loaded in that dtype, which halves its memory and the activations' and spares the
    per-step casts of autocast. The LoRA weights and their optimizer state stay in float32.
    """
    precision = resolve_precision(spec.precision, resolve_device(spec_for(spec.base).device))
    dtype = {"bf16": "bfloat16", "fp16": "float16"}.get(precision, "float32")
    model_spec = replace(spec_for(spec.base), quantization=spec.quantization, dtype=dtype)
    loaded = load_model(model_spec, settings)
    if spec.quantization != "none":
        from peft import prepare_model_for_kbit_training

        prepare_model_for_kbit_training(loaded.model, use_gradient_checkpointing=spec.gradient_checkpointing)
    return loaded


def lora_model(loaded, spec: TrainSpec, settings: Settings):
    """(the trainable PEFT model, its targets): a new LoRA from ``spec.lora``, or the saved adapter
    ``spec.start_from`` continued (its rank and targets as it was trained)."""
    from peft import get_peft_model

    if not spec.start_from:
        return get_peft_model(loaded.model, to_lora_config(spec.lora, loaded.model.config)), detect_targets(
            loaded.model.config, spec.lora
        )

    model = continue_adapter(loaded, AdapterRegistry(settings).get(spec.start_from))
    modules = model.peft_config["default"].target_modules
    modules = modules if isinstance(modules, str) else tuple(sorted(modules))
    return model, Targets(modules, f"adapter {spec.start_from!r}, continued")


@dataclass(frozen=True)
class Plan:
    targets: str
    summary: str
    train_examples: int
    validation_examples: int
    estimate: object  # preflight.Estimate


def plan(spec: TrainSpec, settings: Settings) -> Plan:
    """Load the base, build the examples and the adapter, and estimate memory and time; trains nothing."""
    loaded = load_base(spec, settings)
    if spec.method == "sft":
        train_rows, val_rows, _ = build_examples(spec, Generator(loaded), settings, distill=False)
        lengths = train_rows.lengths  # estimated where a row is not made yet
    else:
        train_rows, val_rows, _ = preference_examples(spec, Generator(loaded), settings)
        lengths = pair_lengths(train_rows, loaded.tokenizer, spec.max_length)
    model, targets = lora_model(loaded, spec, settings)
    summary = summarize(model)
    found = estimate(
        loaded.model.config,
        summary.total,
        summary.trainable,
        len(train_rows),
        sum(lengths) / len(lengths),
        max(lengths),
        spec.batch_size,
        spec.grad_accum,
        spec.epochs,
        spec.quantization,
        spec.gradient_checkpointing,
        loaded.device,
        quantization_aware=spec.quantization_aware,
        sequences=1 if spec.method == "sft" else 2,
        reference=spec.method == "dpo",
    )
    return Plan(
        targets=targets.note,
        summary=str(summary),
        train_examples=len(train_rows),
        validation_examples=len(val_rows),
        estimate=found,
    )
