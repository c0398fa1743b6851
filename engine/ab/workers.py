"""The variants' side of an A/B experiment: the evaluation items, and each variant answering them in its
own spawned process (its load time and peak memory its own), with progress and cancellation."""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from engine.ab.results import (
    ROW_FIELDS,
)
from engine.ab.spec import ExperimentSpec, VariantSpec, to_eval_spec, to_model_spec
from engine.benchmark.speed import peak_memory_gb
from engine.errors import InputError, StudioError
from engine.evaluation.hotpotqa import distractor_retriever
from engine.evaluation.qa_sets import record_item, split_records
from engine.evaluation.runner import EvalSpec, answer_items, eval_items, score, templates
from engine.machine import GB
from engine.models.adapters import AdapterRegistry
from engine.models.generation import load_generator
from engine.models.manager import model_bytes
from engine.qa.versions import DatasetStore
from engine.rag.embedder import Embedder
from engine.rag.pipeline import RagPipeline, sampling_for
from engine.rag.retriever import KnowledgeBaseRetriever
from engine.rag.store import KnowledgeBaseStore
from engine.settings import Settings

PROGRESS_STEP = 4  # items answered between two progress reports (times the batch size)


# --- the evaluation items -------------------------------------------------------------------------------


def experiment_items(spec: ExperimentSpec, settings: Settings):
    """The items every variant answers, in order, and the spec with its dataset version resolved (an empty
    version is the dataset's newest). HotpotQA questions come from the fixed split (or the file's first ones);
    a dataset version's records keep their id, question, answer and contexts (the distractor mode's passages)."""
    if not spec.dataset:
        items, _ = eval_items(EvalSpec(data=spec.data, limit=spec.limit, split=spec.split), settings)
    else:
        store = DatasetStore(settings)
        version = spec.version or store.versions(spec.dataset)[0].id
        spec = replace(spec, version=version)
        records = split_records(store.load(spec.dataset, version), spec.dataset, version, spec.split)[: spec.limit]
        if spec.mode == "distractor" and records and not any(r.contexts for r in records):
            raise InputError(
                f"The records of dataset {spec.dataset!r} have no contexts to answer from: use mode closed-book."
            )
        # paired F1 and EM need a gold answer: questions without one are left out (Benchmarks judges them)
        items = [record_item(r) for r in records if r.has_gold]
    if len(items) < 2:
        raise InputError(
            f"The experiment has {len(items)} item(s) with a gold answer: the paired tests need at least 2."
        )
    return items, spec


def check_variants(spec: ExperimentSpec, settings: Settings) -> None:
    """Bad models and adapters fail here, before any process starts."""
    for variant in spec.variants:
        to_model_spec(variant)  # a model path that does not exist
        if variant.adapter:
            AdapterRegistry(settings).get(variant.adapter)


# --- one variant, in its own process ---------------------------------------------------------------------


def sampling_of(variant: VariantSpec, template):
    """The evaluation's decoding (to the end of the line, the answer style's length) with the variant's
    temperature and seed."""
    return replace(sampling_for(template), temperature=float(variant.temperature), seed=variant.seed)


def variant_rows(items, answers) -> list[dict]:
    """One row per item: ROW_FIELDS (EM and F1 on the 0-100 scale; latency = retrieval + generation), then the
    raw generated text, the context the answer was given and the chat messages it was asked in (what a
    preference pair of the answer trains on)."""
    rows = []
    for item, answer, scored in zip(items, answers, score(items, answers, with_retrieval=False), strict=True):
        row = {
            "item_id": item.id,
            "question": item.question,
            "gold": item.answer,
            "prediction": answer.answer,
            "em": scored["em"],
            "f1": scored["f1"],
            "latency_s": answer.retrieve_s + answer.generate_s,
            "prompt_tokens": answer.prompt_tokens,
            "new_tokens": answer.new_tokens,
        }
        rows.append(
            {k: row[k] for k in ROW_FIELDS}
            | {"raw": answer.raw, "context": answer.context, "messages": [dict(m) for m in answer.messages]}
        )
    return rows


def answer_variant(payload: dict, on_progress: Callable[[int, int], None] | None = None) -> dict:
    """One variant answers every item, in this (fresh) process: load its model (and compile the fast decoder
    where it has one, as the app does after loading; not when ``STUDIO_COMPILE_DECODER=0``), answer, score.

    ``payload``: ``experiment`` (ExperimentSpec as a dict), ``variant`` (its name), ``data_dir``, ``shared_dir``,
    optionally ``items`` (the QAItems; else read from the spec) and ``threads`` (torch's threads). Returns
    ``rows`` (see :func:`variant_rows`), ``load_s``, ``peak_memory_gb``, ``weights_gb``, ``device``, ``seconds``.
    """
    settings = Settings(data_dir=Path(payload["data_dir"]), shared_data_dir=Path(payload["shared_dir"]))
    experiment = ExperimentSpec.from_dict(payload["experiment"])
    variant = experiment.variant(payload["variant"])
    if payload.get("threads"):
        import torch

        torch.set_num_threads(int(payload["threads"]))
    items = payload.get("items") or experiment_items(experiment, settings)[0]
    start = time.perf_counter()
    generator = load_generator(to_model_spec(variant), settings)
    load_s = time.perf_counter() - start
    generator.warm_up_if_enabled(background=False)
    evaluation = to_eval_spec(variant, experiment)
    retriever = None
    if experiment.mode == "distractor":
        retriever = distractor_retriever(items, settings, None, evaluation.follow_links)
    elif experiment.mode == "kb":
        retriever = KnowledgeBaseRetriever(KnowledgeBaseStore(settings, Embedder.shared()), experiment.kb)
    start = time.perf_counter()
    # Each question in the style the variant's adapter asks it in (per question for an adapter trained "auto").
    answers = answer_items(
        items,
        templates(evaluation, items, settings),
        lambda prompt: RagPipeline(retriever, generator, prompt, sampling_of(variant, prompt)),
        variant.k,
        experiment.batch_size,
        PROGRESS_STEP * experiment.batch_size,
        on_progress,
    )
    seconds = time.perf_counter() - start
    return {
        "rows": variant_rows(items, answers),
        "load_s": load_s,
        "peak_memory_gb": peak_memory_gb(generator.loaded.device),
        "weights_gb": model_bytes(generator.model) / GB,
        "device": str(generator.loaded.device),
        "seconds": seconds,
    }


def _variant_process(payload: dict, messages) -> None:
    """A spawned process's work: answer, and send progress and the result (or the error) to the parent."""
    name = payload["variant"]
    try:
        result = answer_variant(payload, lambda done, total: messages.put(("progress", name, done, total)))
        messages.put(("done", name, result))
    except StudioError as e:
        messages.put(("error", name, "input", str(e)))
    except BaseException as e:  # anything else is a crash, reported with its traceback
        messages.put(("error", name, "crash", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


def run_in_processes(
    payloads: list[dict],
    on_progress: Callable[[str, int, int], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> dict[str, dict]:
    """Each payload's :func:`answer_variant` in its own spawned process, all at once; results by variant name.

    ``on_progress(variant, done, total)`` follows each process; ``check_cancelled()`` is called a few times a
    second, and whatever it raises (or an error in a process) stops every process of the group."""
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    procs = {
        p["variant"]: context.Process(target=_variant_process, args=(p, messages), name=f"ab-{p['variant']}")
        for p in payloads
    }
    results: dict[str, dict] = {}
    dead_since: dict[str, float] = {}
    finished = False
    try:
        for proc in procs.values():
            proc.start()
        while len(results) < len(procs):
            if check_cancelled:
                check_cancelled()
            try:
                message = messages.get(timeout=0.25)
            except queue.Empty:
                for name, proc in procs.items():  # a process killed (e.g. out of memory) sends nothing
                    if name not in results and proc.exitcode is not None:
                        since = dead_since.setdefault(name, time.monotonic())
                        if time.monotonic() - since > 5:  # its last message had time to arrive
                            raise StudioError(
                                f"Variant {name!r}: its process ended with exit code {proc.exitcode} before "
                                "answering (out of memory?)."
                            ) from None
                continue
            kind, name = message[0], message[1]
            if kind == "progress" and on_progress:
                on_progress(name, message[2], message[3])
            elif kind == "done":
                results[name] = message[2]
            elif kind == "error":
                if message[2] == "input":
                    raise StudioError(f"Variant {name!r}: {message[3]}")
                raise RuntimeError(f"Variant {name!r} failed in its process: {message[3]}")
        finished = True
    finally:
        for proc in procs.values():
            if proc.is_alive() and finished:
                proc.join(timeout=30)  # it has sent its result and is exiting
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        messages.close()
    return results
