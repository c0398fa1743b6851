"""The guided loop's steps (see :mod:`engine.loop`): each ``step(spec, record, settings, report, check)``
returns what it found (with a one-line ``summary``); later steps read earlier ones from ``record``."""

from __future__ import annotations

from engine.data.generation import GenerationSpec, generate_qa
from engine.data.steps import split_version
from engine.errors import InputError
from engine.evaluation.qa_sets import load_qa_set
from engine.evaluation.runner import EvalSpec, prepare_evaluation, run_evaluation
from engine.finetune.continued import fitting_hotpotqa_adapter
from engine.finetune.presets import COLLECTION, CONTINUED, preset_spec
from engine.finetune.runs import last_checkpoint, run_dir_for
from engine.models.active import set_active
from engine.models.catalog import default_spec
from engine.models.generation import load_generator
from engine.rag.embedder import Embedder
from engine.rag.ingest import ingest_source
from engine.rag.store import KnowledgeBaseStore
from engine.settings import Settings
from engine.stats.bootstrap import paired_bootstrap
from engine.tracking import Tracker

AUTO = "auto"  # the loop picks the adapter its training continues (loop_steps.starting_adapter)


def ingest(spec, record, settings: Settings, report, check) -> dict:
    def progress(done: int, total: int) -> None:
        check()
        report(done / max(total, 1), f"{done:,} of about {total:,} chunks")

    store = KnowledgeBaseStore(settings, Embedder.shared())
    found = ingest_source(store, {"kb": spec.name, "path": spec.folder, "on_error": "skip"}, progress)
    skipped = f"; {len(found.skipped)} files left out" if found.skipped else ""
    return {
        "documents": found.documents,
        "chunks": found.chunks,
        "skipped": list(found.skipped),
        "summary": f"{found.documents} documents, {found.chunks} chunks{skipped}",
    }


def generate(spec, record, settings: Settings, report, check) -> dict:
    report(0.0, "loading the model")
    gen = GenerationSpec(
        kb=spec.name, dataset=spec.dataset, passages=spec.passages, answers_per_passage=spec.answers_per_passage
    )
    found = generate_qa(gen, load_generator(default_spec(), settings), Embedder.shared(), settings, report, check)
    return {
        "version": found.version,
        "kept": found.kept,
        "candidates": found.candidates,
        "summary": f"{found.kept} pairs kept of {found.candidates} candidates",
    }


def split(spec, record, settings: Settings, report, check) -> dict:
    report(0.0, "splitting by document")
    manifest, leaks, sizes = split_version(settings, spec.dataset, record["steps"]["generate"]["version"])
    return {
        "version": manifest.id,
        "sizes": sizes,
        "leaks": leaks.counts(),
        "summary": ", ".join(f"{n} {k}" for k, n in sizes.items()),
    }


SENTENCE_ANSWERS = 8  # median words of the people's answers from which a collection is asked in sentences


def collection_style(spec, settings: Settings) -> str:
    """The answer style the loop trains and asks in: ``sentences`` where the people answer the collection's
    questions in sentences (their answers' median is at least ``SENTENCE_ANSWERS`` words: Dolly's closed_qa 22,
    HotpotQA's 2), else ``auto`` (short, or sentences for "What is X?", by each question's form)."""
    if not spec.questions:
        return "auto"

    lengths = sorted(len(it.answer.split()) for it in load_qa_set(settings, spec.questions, "").items)
    lengths = [n for n in lengths if n]
    return "sentences" if lengths and lengths[len(lengths) // 2] >= SENTENCE_ANSWERS else "auto"


def loop_style(spec, record, settings: Settings) -> str:
    """The style the loop's baseline chose (and recorded): training and the adapter's evaluation keep it."""
    return record["steps"].get("baseline", {}).get("style") or collection_style(spec, settings)


def eval_spec(spec, record, adapter: str = "", style: str = "auto"):
    """The evaluation of the loop: the people's questions (or the generated test split), retrieved from the
    collection's knowledge base and asked in the collection's ``style`` (``auto``: the adapter's training style,
    else short or sentences by the question's form, as the Query page picks)."""
    if spec.questions:
        where = {"dataset": spec.questions, "split": ""}
    else:
        where = {"dataset": f"{spec.dataset}@{record['steps']['split']['version']}", "split": "test"}
    model = default_spec()  # the model as the Query page answers with it, base and adapter alike
    return EvalSpec(
        mode="kb",
        kb=spec.name,
        k=spec.k,
        limit=spec.eval_limit,
        adapter=adapter,
        dtype=model.dtype,
        quantization=model.quantization,
        answer_style=style,
        **where,
    )


def evaluated(spec, record, settings: Settings, report, check, adapter: str = "") -> dict:
    style = loop_style(spec, record, settings)
    found = eval_spec(spec, record, adapter, style)
    report(0.0, "loading the model")
    generator, embedder, store = prepare_evaluation(found, settings)
    result = run_evaluation(
        found,
        generator,
        embedder,
        store,
        settings,
        Tracker(settings),
        on_progress=lambda d, t: report(d / t, f"{d} of {t} questions"),
        check_cancelled=check,
    )
    m = result.metrics
    if "f1" not in m:
        raise InputError(
            "None of the test questions has a gold answer: the loop compares F1, which needs them "
            "(questions without one are judged for groundedness only)."
        )
    graded = {r["id"]: r["f1"] for r in result.rows if r["f1"] is not None}
    summary = f"F1 {m['f1']:.1f}, EM {m['em']:.1f} on {len(graded)} questions"
    summary += ", asked for sentences (the people answer in sentences)" if style == "sentences" else ""
    if m.get("groundedness") is not None:
        summary += f"; {len(result.rows) - len(graded)} without a gold answer: groundedness {m['groundedness']:.0f}"
    return {
        "f1": m["f1"],
        "em": m["em"],
        "recall@5": m.get("recall@5"),
        "run_id": result.run_id,
        "questions": len(result.rows),
        "scores": graded,
        "written_by_people": bool(spec.questions),
        "style": style,
        "groundedness": m.get("groundedness"),
        "summary": summary,
    }


def baseline(spec, record, settings: Settings, report, check) -> dict:
    return evaluated(spec, record, settings, report, check)


def starting_adapter(spec, style: str, settings: Settings) -> str:
    """The adapter the loop's training continues: the one ``spec.start_from`` names, none (""), or for ``auto``
    the best saved HotpotQA adapter for the collection's kind of answers (``fitting_hotpotqa_adapter``)."""
    return fitting_hotpotqa_adapter(settings, style == "sentences") if spec.start_from == AUTO else spec.start_from


def train(spec, record, settings: Settings, report, check) -> dict:
    qa = f"{spec.dataset}@{record['steps']['split']['version']}"
    changes = dict(spec.train)
    if (style := loop_style(spec, record, settings)) != "auto":  # a user's own rag changes still win
        changes["rag"] = {"answer_style": style} | dict(changes.get("rag") or {})
    start = changes.setdefault("start_from", starting_adapter(spec, style, settings))
    recipe = CONTINUED if start else COLLECTION
    found = preset_spec(recipe.name, adapter=spec.adapter, dataset=qa, kb=spec.name, **changes)
    resume = last_checkpoint(run_dir_for(spec.adapter, settings)) is not None

    def stop() -> bool:
        check()  # a cancelled job stops here, between steps; the checkpoint lets the step resume
        return False

    from engine.finetune.trainer import train as train_adapter  # noqa: PLC0415 - loads torch and transformers

    result = train_adapter(found, settings, Tracker(settings), report, stop, resume=resume)
    began = f" from {start}" if start else ""
    return {
        "adapter": result.adapter,
        "steps": result.steps,
        "best": result.best_metric,
        "run_id": result.run_id,
        "started_from": start,
        "recipe": recipe.name,
        "summary": f"{result.steps} steps{began}, best validation {result.best_metric or 0:.1f}",
    }


def evaluate(spec, record, settings: Settings, report, check) -> dict:
    return evaluated(spec, record, settings, report, check, adapter=record["steps"]["train"]["adapter"])


def compare(spec, record, settings: Settings, report, check) -> dict:
    base, tuned = record["steps"]["baseline"]["scores"], record["steps"]["evaluate"]["scores"]
    ids = [i for i in base if i in tuned]
    if len(ids) < 2:
        raise InputError("The two evaluations share fewer than 2 questions: run them again.")
    diff = paired_bootstrap([base[i] for i in ids], [tuned[i] for i in ids])
    who = "people's questions" if spec.questions else "generated test questions (not written by people)"
    verdict = "better" if diff.low > 0 else "worse" if diff.high < 0 else "no clear difference"
    summary = f"F1 {diff.mean:+.1f} [{diff.low:+.1f}, {diff.high:+.1f}] on {diff.n} {who}: {verdict}"
    return {"gain": diff.mean, "low": diff.low, "high": diff.high, "n": diff.n, "verdict": verdict, "summary": summary}


def activate(spec, record, settings: Settings, report, check) -> dict:
    if record["steps"]["compare"]["verdict"] != "better":
        return {"activated": False, "summary": "the base model stays active: the adapter is not measurably better"}
    set_active(settings, adapter=record["steps"]["train"]["adapter"])
    return {"activated": True, "summary": f"{record['steps']['train']['adapter']} answers on the Query page now"}
