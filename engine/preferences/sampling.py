"""Preference pairs without a person: sample several answers per question, score them against the gold answer
(F1), and keep the best against a clearly worse one.

Each question is asked as the evaluation asks it (its own paragraphs ranked by the distractor retriever, or
a knowledge base's hits, in the adapter's prompt), so the pairs train on the prompts a test shows. The greedy
answer, the one the model gives when deployed, is always one of the candidates: a pair then either pushes it
away (a sample scored better) or holds it (it scored best).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from engine.errors import InputError
from engine.evaluation.hotpotqa import QAItem, distractor_retriever
from engine.evaluation.metrics import f1
from engine.evaluation.qa_sets import HOTPOTQA, HOTPOTQA_FILE
from engine.evaluation.runner import EvalSpec, eval_items, prepare_evaluation, templates
from engine.job_kinds import register_job_kind
from engine.knobs import check_knobs, knob
from engine.models.adapters import AdapterRegistry
from engine.names import check_safe_name
from engine.preferences.versions import check_kind
from engine.qa.preference import make_pair
from engine.qa.schema import Context
from engine.qa.versions import DatasetStore, Manifest, log_version
from engine.rag.pipeline import RagPipeline, sampling_for
from engine.rag.prompt import prompt_for
from engine.rag.retriever import KnowledgeBaseRetriever
from engine.settings import Settings, load_settings
from engine.tracking import Tracker


@dataclass(frozen=True)
class GoldPairSpec:
    """Which questions, which model samples, how many answers, and what makes a pair."""

    name: str = knob("gold-pairs", "the preference dataset the pairs are saved to (a new version)", label="Name")
    dataset: str = knob(
        "hotpotqa", "a QA set with gold answers: NAME or NAME@VERSION (its training split)", label="QA set"
    )
    split: str = knob("train", "the split the questions come from; never the test split", ("train", "validation"))
    adapter: str = knob("", "the adapter that answers (the SFT adapter DPO will start from)", label="Adapter")
    model: str = knob("", "the base model (empty: the bundled model)", label="Base model")
    limit: int = knob(600, "at most N questions", min=1, label="Questions")
    samples: int = knob(4, "sampled answers per question, besides the greedy one", min=1, max=16, label="Samples")
    temperature: float = knob(1.0, "sampling temperature: higher, more varied answers", min=0.05, max=2.0)
    top_p: float = knob(0.95, "nucleus sampling", min=0.1, max=1.0)
    margin: float = knob(
        50.0, "F1 points the chosen answer must beat the rejected one by", min=1.0, max=100.0, label="Margin (F1)"
    )
    min_chosen_f1: float = knob(50.0, "the chosen answer's F1 at least", min=0.0, max=100.0, label="Chosen F1 at least")
    mode: str = knob(
        "distractor", "distractor: each question's own paragraphs; kb: a knowledge base", ("distractor", "kb")
    )
    kb: str = knob("", "the knowledge base of mode kb", label="Knowledge base")
    k: int = knob(5, "sources shown per question", min=1, max=20)
    max_source_chars: int = knob(
        0, "each source cut to N characters (0: as the adapter was trained, else 600)", min=0, label="Source length"
    )
    follow_links: int = 2
    dtype: str = knob("float32", "", ("auto", "float32", "bfloat16", "float16"))
    seed: int = knob(0, "the samples drawn (the same seed, the same answers)")

    def __post_init__(self) -> None:
        if self.split == "test":
            raise InputError("Pairs are never made from the test split: it measures what they teach.")
        if self.mode == "kb" and not self.kb.strip():
            raise InputError("Mode kb asks a knowledge base: name one (--kb).")
        check_knobs(self)
        check_safe_name(self.name, "dataset")

    def eval_spec(self, settings: Settings) -> EvalSpec:
        """The evaluation that asks the same questions the same way (for its items and prompts)."""
        chars = self.max_source_chars or prompt_for(settings, self.adapter).max_source_chars  # the adapter's
        name, _, version = self.dataset.partition("@")
        on_hotpotqa = name.strip() == HOTPOTQA  # the shared file, NAME@FILE for another copy of it
        return EvalSpec(
            data=(version.strip() or HOTPOTQA_FILE) if on_hotpotqa else HOTPOTQA_FILE,
            dataset="" if on_hotpotqa else self.dataset,
            mode=self.mode,
            kb=self.kb or "hotpotqa-wiki",
            split=self.split,
            limit=self.limit,
            k=self.k,
            adapter=self.adapter,
            model=self.model,
            dtype=self.dtype,
            max_source_chars=chars,
            follow_links=self.follow_links,
        )


@dataclass(frozen=True)
class Candidate:
    text: str  # what the model wrote (the pair trains on it)
    answer: str  # the answer read from it (scored)
    f1: float  # against the best-matching gold answer, 0-100
    greedy: bool


def score(item: QAItem, raw: str, answer: str, greedy: bool) -> Candidate:
    golds = item.answers or (item.answer,)
    return Candidate(raw.strip(), answer, 100 * max(f1(answer, g) for g in golds), greedy)


def pick(candidates: list[Candidate], margin: float, min_chosen: float) -> tuple[Candidate, Candidate] | None:
    """(chosen, rejected): the best-scored answer (the greedy one among equals) and the worst one at least
    ``margin`` below it; None when no answer reaches ``min_chosen`` or none is clearly worse."""
    distinct = {}
    for c in candidates:
        if c.text and (c.text not in distinct or c.greedy):
            distinct[c.text] = c
    ranked = sorted(distinct.values(), key=lambda c: (-c.f1, not c.greedy, len(c.text)))
    if not ranked or ranked[0].f1 < min_chosen:
        return None
    worse = [c for c in ranked if c.f1 <= ranked[0].f1 - margin]
    # the greedy answer among the worse ones: the pair then moves what the model answers when deployed
    rejected = next((c for c in worse if c.greedy), None) or (worse[-1] if worse else None)
    return (ranked[0], rejected) if rejected else None


def draw(generator, row: list[int], sampling, spec: GoldPairSpec, item_id: str) -> list[str]:
    """``spec.samples`` sampled answers to one prompt (token ids), reading the prompt once."""
    seed = int(hashlib.sha256(f"{spec.seed}:{item_id}".encode()).hexdigest()[:8], 16)
    sampled = replace(sampling, temperature=spec.temperature, top_p=spec.top_p, seed=seed)
    if generator.fast(len(row), sampled):
        # one answer after another, the prompt kept in the decoder's cache; a seed each, or they are the same
        return [generator.generate_rows([row], replace(sampled, seed=seed + j))[0].text for j in range(spec.samples)]
    # one batch: the prompt read once for all rows (the shared prefix), each row drawn apart from one seed
    return [c.text for c in generator.generate_rows([row] * spec.samples, sampled, batch_size=spec.samples)]


def samples_file(spec: GoldPairSpec, evaluation: EvalSpec, settings: Settings) -> Path:
    """Where the answers of a sampling are kept as they come (one JSON line a question), so that a stopped or
    longer sampling goes on from them, and another margin needs no new answers. Named by what the answers
    depend on, the adapter's save time included (a retrained adapter answers anew)."""
    adapter = AdapterRegistry(settings).get(spec.adapter).created if spec.adapter else ""
    what = asdict(spec) | {"chars": evaluation.max_source_chars, "adapter_created": adapter}
    for unused in ("name", "limit", "margin", "min_chosen_f1"):
        what.pop(unused)
    key = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]
    return settings.data_dir / "preferences" / "samples" / f"{key}.jsonl"


def read_samples(path: Path) -> dict[str, dict]:
    """The kept answers by question id (a line cut short by a kill is left out: that question is asked again)."""
    found = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                row = json.loads(line)
                found[row["id"]] = row
    return found


def answer(item: QAItem, prompt, retriever, generator, spec: GoldPairSpec) -> dict:
    """One question asked as the evaluation asks it, answered greedily and ``spec.samples`` times sampled."""
    pipeline = RagPipeline(retriever, generator, prompt, sampling_for(prompt))
    hits, _ = pipeline.retrieve([item.question], spec.k)
    shown = pipeline.shown(item.question, hits[0] if hits else None)
    messages = pipeline.build(item.question, shown)
    row = generator.encode(messages)
    # Two rows of one prompt: its prefix is read once and kept for the samples (Generator.prefix_cache); the
    # fast decoder keeps the prompt in its own cache.
    rows = [row] if generator.fast(len(row), pipeline.sampling) else [row, row]
    greedy = generator.generate_rows(rows, pipeline.sampling)[0].text
    raws = [greedy, *draw(generator, row, pipeline.sampling, spec, item.id)]
    return {
        "id": item.id,
        "messages": messages,
        "contexts": [[h.title, h.text] for h in shown or ()],
        "candidates": [asdict(score(item, raw, prompt.answer_from(raw), greedy=not j)) for j, raw in enumerate(raws)],
    }


def pair_of(item: QAItem, sampled: dict, spec: GoldPairSpec):
    """The pair a question's answers make (see :func:`pick`), or why none: ``no_good_answer`` / ``no_worse_answer``."""
    candidates = [Candidate(**c) for c in sampled["candidates"]]
    found = pick(candidates, spec.margin, spec.min_chosen_f1)
    if found is None:
        return "no_good_answer" if max(c.f1 for c in candidates) < spec.min_chosen_f1 else "no_worse_answer"
    chosen, rejected = found
    return make_pair(
        item.question,
        chosen.text,
        rejected.text,
        "gold",
        contexts=[Context(title, text) for title, text in sampled["contexts"]],
        messages=sampled["messages"],
        detail={
            "gold": item.answer,
            "chosen_f1": round(chosen.f1, 1),
            "rejected_f1": round(rejected.f1, 1),
            "rejected_is_greedy": rejected.greedy,
            "candidates": sampled["candidates"],
            "question_id": item.id,
        },
        split="train",
    )


def sample_pairs(
    spec: GoldPairSpec,
    generator,
    embedder,
    settings: Settings,
    store=None,
    on_progress: Callable[[int, int], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
):
    """(pairs, tally): the questions answered greedily and ``samples`` times sampled (or their answers kept from
    an earlier sampling, :func:`samples_file`), and the pairs that make it."""
    evaluation = spec.eval_spec(settings)
    items, _ = eval_items(evaluation, settings)
    items = [it for it in items if it.answer.strip()]
    if not items:
        raise InputError(f"The {spec.split} split of {spec.dataset} has no questions with a gold answer.")
    path = samples_file(spec, evaluation, settings)
    kept = read_samples(path)
    retriever = None
    prompts = templates(evaluation, items, settings)
    tally = {"questions": len(items), "answered_before": 0, "pairs": 0, "no_good_answer": 0, "no_worse_answer": 0}
    tally["greedy_rejected"] = 0
    pairs, began = [], time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    for n, (item, prompt) in enumerate(zip(items, prompts, strict=True)):
        if check_cancelled:
            check_cancelled()
        sampled = kept.get(item.id)
        tally["answered_before"] += sampled is not None
        if sampled is None:
            if retriever is None:  # only when some question is answered anew (it embeds their paragraphs)
                retriever = (
                    KnowledgeBaseRetriever(store, spec.kb)
                    if spec.mode == "kb"
                    else distractor_retriever(items, settings, embedder, spec.follow_links)
                )
            sampled = answer(item, prompt, retriever, generator, spec)
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(sampled, ensure_ascii=False) + "\n")
        found = pair_of(item, sampled, spec)
        if isinstance(found, str):
            tally[found] += 1
        else:
            tally["pairs"] += 1
            tally["greedy_rejected"] += found.metadata["detail"]["rejected_is_greedy"]
            pairs.append(found)
        if on_progress:
            on_progress(n + 1, len(items))
    tally["seconds"] = round(time.perf_counter() - began, 1)
    return pairs, tally


def save_gold_pairs(spec: GoldPairSpec, pairs, tally: dict, generator_name: str, settings: Settings) -> Manifest:
    """A new version of ``spec.name`` with the pairs, the sampling settings and the funnel in its manifest."""
    if not pairs:
        raise InputError(
            f"No pair was made from {tally['questions']} questions: {tally['no_good_answer']} had no answer with F1 "
            f">= {spec.min_chosen_f1:g}, {tally['no_worse_answer']} none {spec.margin:g} points worse. "
            "Sample more answers, raise the temperature or lower the margin."
        )
    check_kind(settings, spec.name)
    return DatasetStore(settings).save(
        spec.name,
        pairs,
        sources=[{"description": f"{spec.dataset} ({spec.split} split), answered by {generator_name}"}],
        generator=generator_name,
        prompt=f"{spec.mode} sources, k={spec.k}, {spec.eval_spec(settings).max_source_chars} chars",
        thresholds={"margin": spec.margin, "min_chosen_f1": spec.min_chosen_f1},
        counts={"funnel": tally},
        note=f"gold-scored pairs: {spec.samples} samples at temperature {spec.temperature:g} plus the greedy answer",
    )


def make_gold_pairs(spec: GoldPairSpec, settings: Settings, say, tracker=None, check_cancelled=None):
    """Load the model, sample, save the version (and log it with ``tracker``): ``(manifest, tally, run_id)``.
    ``say(fraction, message)`` hears the progress, with the time left."""
    check_kind(settings, spec.name)  # before the model loads
    say(0.0, "loading the model")
    generator, embedder, store = prepare_evaluation(spec.eval_spec(settings), settings)
    began = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:  # a few seconds a question: every tenth is news enough
            left = (time.perf_counter() - began) / done * (total - done) / 60
            say(0.02 + 0.97 * done / total, f"{done}/{total} questions, about {left:.0f} min left")

    pairs, tally = sample_pairs(spec, generator, embedder, settings, store, progress, check_cancelled)
    manifest = save_gold_pairs(spec, pairs, tally, generator.name, settings)
    run_id = log_version(tracker, manifest, pairs) if tracker is not None else None
    return manifest, tally, run_id


def gold_pairs_job(args: dict, ctx) -> dict:
    """The background-job form (kind ``gold-pairs``): load the model, sample, save and log the version."""
    spec = GoldPairSpec(**args)
    settings = load_settings()
    manifest, tally, run_id = make_gold_pairs(spec, settings, ctx.progress, Tracker(settings), ctx.check_cancelled)
    ctx.set_run_id(run_id)
    ctx.log(f"{tally['pairs']} pairs from {tally['questions']} questions: {spec.name}@{manifest.id}")
    return {"dataset": spec.name, "version": manifest.id, "tally": tally, "run_id": run_id}


register_job_kind("gold-pairs", gold_pairs_job, GoldPairSpec)
