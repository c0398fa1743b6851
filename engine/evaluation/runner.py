"""Batch evaluation on a QA set (HotpotQA or a saved dataset version): closed-book, given-sources RAG
(``distractor``: each question's own passages) or knowledge-base RAG.

Generation is batched; the per-question table and the aggregate metrics go to MLflow. A question
without a gold answer is never scored by F1 or EM: the local judge says whether its sources support
the answer, reported as ``groundedness`` (engine.evaluation.grounding), a metric of its own.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import pandas as pd

from engine.evaluation.grounding import GroundingSpec, judge_grounding
from engine.evaluation.hotpotqa import QAItem, distractor_retriever, load_hotpotqa
from engine.evaluation.metrics import Sample, score_sample
from engine.evaluation.qa_sets import SPLITS, load_qa_set, resolve_data
from engine.evaluation.splits import split_items
from engine.job_kinds import register_job_kind
from engine.knobs import check_knobs, knob
from engine.models.adapters import AdapterRegistry
from engine.models.generation import load_generator
from engine.models.spec import DTYPES, MODEL_HELP, QUANTIZATIONS, spec_for
from engine.rag.embedder import Embedder
from engine.rag.pipeline import RagAnswer, RagPipeline, sampling_for
from engine.rag.prompt import AUTO, STYLES, PromptTemplate, prompt_for
from engine.rag.retriever import KnowledgeBaseRetriever
from engine.rag.store import KnowledgeBaseStore
from engine.rag.styles import question_template, trained_style
from engine.settings import Settings, load_settings
from engine.tracking import EVALUATION, Tracker

MODES = ("closed-book", "distractor", "given", "kb")  # given: distractor under its general name
OWN_SOURCES = ("distractor", "given")
PROMPTS = ("", "few-shot", "zero-shot")
MODE_HELP = (
    "closed-book: no sources; distractor (given): each question's own passages (HotpotQA: its 10 paragraphs; a QA "
    "set of yours: the records' contexts); kb: retrieval from a knowledge base, as the Query page does."
)
PERCENT = ("em", "f1")  # reported on a 0-100 scale like the HotpotQA leaderboard
GOLD_ANSWER = ("em", "f1", "answer_in_context")  # need a gold answer: None for a question without one
GOLD_SOURCES = ("recall@2", "recall@5", "mrr", "ndcg@5")  # need to know which sources hold the answer


@dataclass(frozen=True)
class EvalSpec:
    """One evaluation run; each knob's help and choices serve the Benchmarks form and ``engine eval`` alike."""

    data: str = knob(
        "hotpotqa-dev.jsonl", "without a QA set: a HotpotQA-format file (a path, or a file in the shared data folder)"
    )
    dataset: str = knob("", "a QA set: a dataset NAME or NAME@VERSION (its split), or hotpotqa (the fixed split)")
    mode: str = knob("distractor", MODE_HELP, MODES)
    limit: int | None = knob(200, "the first N questions (of the split)", min=1, label="Questions (at most)")
    k: int = knob(5, "sources per question", min=1, label="k")
    kb: str = knob("hotpotqa-wiki", "the knowledge base for mode kb", label="Knowledge base (mode kb)")
    batch_size: int = knob(16, "questions answered at once", min=1)
    max_new_tokens: int = knob(0, "0: what the answer style needs (32 short, 256 with evidence)", min=0)
    model: str = knob("", MODEL_HELP)
    adapter: str = knob("", "a LoRA adapter from the registry (Fine-tune page, `adapters`), merged into the model")
    dtype: str = knob("auto", "", DTYPES)
    quantization: str = knob(
        "none", "int4-weight: the app's default on a CPU (what the Query page answers with)", QUANTIZATIONS
    )
    split: str = knob(
        "",
        "a split of the QA set (HotpotQA: the fixed split used for fine-tuning, 600/100/300); "
        "empty: the file's first questions, or all of a QA set's records",
        ("", *SPLITS),
    )
    prompt: str = knob("", "empty: the adapter's training prompt, else few-shot", PROMPTS)
    max_source_chars: int = knob(
        0, "each source cut to N characters; 0: as the adapter was trained (as the Query page asks it), else 600", min=0
    )
    answer_style: str = knob(
        "",
        "empty: the adapter's training style, else short; auto: per question, as the Query "
        "page asks (short, or sentences for 'What is X?', why and how questions)",
        ("", *STYLES, AUTO),
    )
    follow_links: int = knob(
        2,
        "distractor mode: passages whose title the first N retrieved passages mention move "
        "up (a second hop for multi-hop questions); 0: the embedding ranking only",
        min=0,
        label="Follow links from the first",
    )
    judge: str = knob(
        "", "the model that judges groundedness for questions without a gold answer (empty: the bundled model)"
    )

    def __post_init__(self) -> None:
        check_knobs(self)


@dataclass
class EvalResult:
    spec: EvalSpec
    metrics: dict[str, float]
    rows: list[dict] = field(repr=False)
    seconds: float
    run_id: str | None = None


def eval_items(spec: EvalSpec, settings: Settings) -> tuple[list[QAItem], dict]:
    """The spec's questions, and what identifies them (logged with the run)."""
    if spec.dataset:
        qa = load_qa_set(settings, spec.dataset, spec.split, spec.limit)
        return qa.items, {"dataset": qa.ref, "dataset_split": qa.split or "all"}
    path = resolve_data(spec.data, settings)
    identity = {"data_path": str(path), "data_sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16]}
    if not spec.split:
        return load_hotpotqa(path, spec.limit), identity

    return split_items(path, settings, spec.split)[: spec.limit], identity


def retrieval_keys(item: QAItem, hits) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What was retrieved and what should have been, by document id where the item names its documents
    and the hits carry theirs (titles need not be unique in a user's collection), else by title."""
    if item.supporting_docs and hits and all(h.metadata.get("doc_id") for h in hits):
        return tuple(h.metadata["doc_id"] for h in hits), item.supporting_docs
    return tuple(h.title for h in hits), item.supporting_titles


def template(spec: EvalSpec, settings: Settings) -> PromptTemplate:
    """The prompt: few-shot (worked examples) or zero-shot, as asked or as the adapter was trained."""
    return prompt_for(settings, spec.adapter, spec.prompt, spec.max_source_chars or None, spec.answer_style)


def templates(spec: EvalSpec, items: list[QAItem], settings: Settings) -> list[PromptTemplate]:
    """Each question's prompt: the spec's (see :func:`template`), or with ``auto`` (asked, or the adapter's
    training style) the style the question's form wants, as the Query page and training ask it."""
    prompt = template(spec, settings)
    trained = trained_style(settings, spec.adapter)  # "" without an adapter
    if (spec.answer_style or trained or "short") != AUTO:
        return [prompt] * len(items)
    return [question_template(prompt, item.question, AUTO, trained, bool(spec.adapter)) for item in items]


def answer_items(items, prompts, pipeline_for, k: int, batch_size: int, step: int, on_progress=None, check=None):
    """The answers to ``items`` in order, each asked in its prompt (``prompts``, one per item; see
    :func:`templates`) through ``pipeline_for(prompt)``, one pipeline per distinct prompt. Work goes in
    slices of ``step`` questions, so that progress and cancellation (``check``) are seen between them."""
    answers: list[RagAnswer | None] = [None] * len(items)
    done = 0
    for prompt in dict.fromkeys(prompts):
        pipeline = pipeline_for(prompt)
        asked = [i for i, p in enumerate(prompts) if p == prompt]
        for lo in range(0, len(asked), step):
            if check:
                check()
            part = asked[lo : lo + step]
            found = pipeline.answer_many([items[i].question for i in part], k, batch_size)
            for i, answer in zip(part, found, strict=True):
                answers[i] = answer
            done += len(part)
            if on_progress:
                on_progress(done, len(items))
    return answers


def score(items: list[QAItem], answers: list[RagAnswer], with_retrieval: bool) -> list[dict]:
    """One row per question with every metric it can have: a metric that needs what the question lacks
    (a gold answer, the sources that hold it) is None, left out of its mean, never counted as 0."""
    rows = []
    for item, ans in zip(items, answers, strict=True):
        retrieved, relevant = retrieval_keys(item, ans.hits)
        sample = Sample(
            prediction=ans.answer,
            gold=item.answer,
            retrieved_titles=retrieved,
            gold_titles=relevant,
            context=ans.context,
        )
        lacking = (GOLD_ANSWER if not item.answer.strip() else ()) + (GOLD_SOURCES if not relevant else ())
        found = score_sample(sample, with_retrieval)
        for gold in item.answers[1:]:  # several gold answers: the best of them, as SQuAD scores
            other = score_sample(replace(sample, gold=gold), with_retrieval)
            found |= {k: max(found[k], other[k]) for k in GOLD_ANSWER if k in found}
        scores = {k: None if k in lacking else v * (100 if k in PERCENT else 1) for k, v in found.items()}
        rows.append(
            {
                "id": item.id,
                "question": item.question,
                "gold": item.answer,
                "prediction": ans.answer,
                "raw": ans.raw,
                **scores,
                "groundedness": None,
                "retrieved": " | ".join(retrieved),
                "supporting": " | ".join(relevant),
                "prompt_tokens": ans.prompt_tokens,
                "new_tokens": ans.new_tokens,
                # The prompt exactly as asked (sources as shown, with their titles, and the worked examples): a
                # preference pair built from this answer trains on it (engine.preferences.prompts).
                "messages": [dict(m) for m in ans.messages],
            }
        )
    return rows


def aggregate(rows: list[dict]) -> dict[str, float]:
    """Each metric's mean over the questions that have it (see :func:`score`)."""
    keys = dict.fromkeys(k for r in rows for k, v in r.items() if isinstance(v, float))
    means = {}
    for k in keys:
        values = [r[k] for r in rows if isinstance(r.get(k), float)]
        means[k] = sum(values) / len(values)
    return means


def judge_ungraded(spec: EvalSpec, items, answers, rows, generator, judge, settings: Settings) -> int:
    """Groundedness (0-100) in the rows of the questions without a gold answer, from the local judge
    (``judge``, else the evaluated model when it is the bundled one, else ``spec.judge`` loaded); their count."""
    ungraded = [i for i, item in enumerate(items) if not item.answer.strip()]
    if not ungraded:
        return 0
    if judge is None:
        bundled = not (spec.judge or spec.model or spec.adapter)
        judge = generator if bundled else load_generator(spec.judge or None, settings)
    asked = [(items[i].question, answers[i].answer, answers[i].context) for i in ungraded]
    found, replies = judge_grounding(judge, asked, GroundingSpec(model=spec.judge), spec.batch_size)
    for i, value, reply in zip(ungraded, found, replies, strict=True):
        rows[i]["groundedness"] = None if value is None else 100 * value
        rows[i]["judge_reply"] = reply
    return len(ungraded)


def run_evaluation(
    spec: EvalSpec,
    generator,
    embedder=None,
    store=None,
    settings: Settings | None = None,
    tracker: Tracker | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
    judge=None,
) -> EvalResult:
    """Evaluate ``generator`` on the spec's questions; logs to MLflow when a tracker is given. Questions
    without a gold answer are judged for groundedness (by ``judge``, see :func:`judge_ungraded`)."""
    settings = settings or load_settings()
    items, identity = eval_items(spec, settings)
    start = time.perf_counter()
    retriever = None
    if spec.mode in OWN_SOURCES:
        # Cached: the base model and its adapter are evaluated on the same passages.
        retriever = distractor_retriever(items, settings, embedder, spec.follow_links)
    elif spec.mode == "kb":
        retriever = KnowledgeBaseRetriever(store, spec.kb)
        store.collection(spec.kb)  # a missing knowledge base fails before any work
    answers = answer_items(
        items,
        templates(spec, items, settings),
        lambda prompt: RagPipeline(retriever, generator, prompt, sampling_for(prompt, spec.max_new_tokens)),
        spec.k,
        spec.batch_size,
        spec.batch_size * 4,
        on_progress,
        check_cancelled,
    )
    seconds = time.perf_counter() - start
    rows = score(items, answers, with_retrieval=spec.mode != "closed-book")
    if check_cancelled:
        check_cancelled()
    ungraded = judge_ungraded(spec, items, answers, rows, generator, judge, settings)
    metrics = aggregate(rows) | {
        "seconds": seconds,
        "questions_per_s": len(items) / seconds,
        "questions": len(items),
        "questions_without_gold": ungraded,
    }
    result = EvalResult(spec=spec, metrics=metrics, rows=rows, seconds=seconds)
    if tracker is not None:
        result.run_id = log_evaluation(tracker, result, generator.name, identity)
    return result


def log_evaluation(tracker: Tracker, result: EvalResult, model: str, identity: dict) -> str:
    """One MLflow run: params (with the questions' identity), aggregate metrics and the per-question table."""
    spec = result.spec
    params = asdict(spec) | {"model": model} | identity
    if spec.mode != "kb":
        params.pop("kb")
    if spec.dataset:
        params.pop("data")
    run_id = tracker.start(EVALUATION, f"{spec.mode} n={len(result.rows)}", params, {"mode": spec.mode})
    tracker.log_metrics(run_id, result.metrics)
    tracker.log_config(run_id, spec)
    tracker.log_table(run_id, pd.DataFrame(result.rows), "per_question.json")
    tracker.end(run_id)
    return run_id


def format_table(result: EvalResult) -> str:
    """The metrics as a small text table for the command line."""
    m = result.metrics
    names = [
        k
        for k in (
            "em",
            "f1",
            "groundedness",
            "recall@2",
            "recall@5",
            "mrr",
            "ndcg@5",
            "answer_in_context",
            "context_utilization",
        )
        if k in m
    ]
    head = f"{'mode':<12} {'n':>5} " + " ".join(f"{n:>12}" for n in names) + f" {'seconds':>8}"
    row = f"{result.spec.mode:<12} {len(result.rows):>5} " + " ".join(
        f"{m[n]:>12.1f}" if n in (*PERCENT, "groundedness") else f"{m[n]:>12.3f}" for n in names
    )
    note = ungraded_note(m)
    return f"{head}\n{row} {result.seconds:>8.1f}" + (f"\n{note}" if note else "")


def ungraded_note(metrics: dict) -> str:
    """What an evaluation's groundedness means, when some of its questions had no gold answer (else "")."""
    ungraded = int(metrics.get("questions_without_gold") or 0)
    if not ungraded:
        return ""
    return (
        f"{ungraded} of {int(metrics['questions'])} questions have no gold answer: they are not in EM or F1; "
        "groundedness is the share of their answers the local judge found supported by the sources."
    )


def prepare_evaluation(spec: EvalSpec, settings: Settings):
    """The generator, embedder and store the spec needs; bad input fails before the model loads."""
    eval_items(spec, settings)  # a missing file, dataset, version or split fails before the model loads
    if spec.adapter:  # a missing adapter fails before the model loads
        AdapterRegistry(settings).get(spec.adapter)
    if spec.judge:
        spec_for(spec.judge)  # a judge model path that does not exist fails before the model loads
    model = replace(spec_for(spec.model), adapter=spec.adapter, dtype=spec.dtype, quantization=spec.quantization)
    embedder = Embedder.shared() if spec.mode != "closed-book" else None
    store = KnowledgeBaseStore(settings, embedder) if spec.mode == "kb" else None
    if store is not None:
        store.collection(spec.kb)
    generator = load_generator(model, settings=settings)
    generator.warm_up_if_enabled(background=False)  # answer as the app does once a model is loaded (an A/B too)
    return generator, embedder, store


def eval_job(args: dict, ctx) -> dict:
    """The background-job form of :func:`run_evaluation` (kind ``eval``)."""
    settings = load_settings()
    spec = EvalSpec(**args)
    ctx.progress(0.0, "loading the model")
    generator, embedder, store = prepare_evaluation(spec, settings)
    ctx.progress(0.02, "answering")
    result = run_evaluation(
        spec,
        generator,
        embedder,
        store,
        settings,
        Tracker(settings),
        on_progress=lambda done, total: ctx.progress(0.02 + 0.97 * done / total, f"{done}/{total} questions"),
        check_cancelled=ctx.check_cancelled,
    )
    ctx.set_run_id(result.run_id)
    ctx.log(format_table(result))
    return {"metrics": result.metrics, "run_id": result.run_id}


register_job_kind("eval", eval_job, EvalSpec)
