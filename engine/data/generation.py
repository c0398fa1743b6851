"""QA generation from passages with the local model: answer spans, questions, round trips, filters.

For each sampled passage, answer spans are picked (:mod:`engine.data.spans`) and the model
writes a question for each. Cheap filters run first; the survivors are retrieved against all
passages of the source (is the source passage in the top k?) and answered by the model from
their source passage (does it give the span back?). Everything found is appended to files in
a work folder as it comes, so a killed or cancelled run resumes where it stopped. The kept
pairs become an immutable dataset version.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.configs import to_yaml
from engine.data.definitions import descriptive_question
from engine.data.filters import DESCRIPTION, NAMES, Candidate, FilterSpec, apply_filters
from engine.data.questions import (
    clean_question,
    load_passages,
    make_candidates,
    passage_id,
    question_messages,
    question_stem,
)
from engine.errors import InputError
from engine.evaluation.qa_sets import resolve_data
from engine.job_kinds import register_job_kind
from engine.knobs import knob
from engine.models.catalog import default_spec
from engine.models.generation import SamplingSpec, load_generator
from engine.models.spec import spec_for
from engine.names import check_safe_name
from engine.qa.schema import Context, QARecord
from engine.qa.versions import DatasetStore, file_identity
from engine.rag.embedder import Embedder
from engine.rag.embedding_cache import CachedEmbedder
from engine.rag.hits import Hit
from engine.rag.prompt import PromptTemplate, clean_answer
from engine.rag.store import KnowledgeBaseStore
from engine.settings import Settings, load_settings

# 2: persons, places and descriptive sentences besides names, dates, years, numbers; 3: without Markdown headings;
# 4: no one-word adjectives ("English") or lone months as names, other names after the other kinds; 5: one other
# name per passage, round-trip answers of 16 new tokens (24 for a date)
CANDIDATES_VERSION = 5
MAX_RANK = 20  # retrieval ranks are stored up to here, so k can be raised later without retrieving again
CHEAP = NAMES[: NAMES.index("near_duplicate") + 1]


@dataclass(frozen=True)
class GenerationSpec:
    source: str = knob(
        "wiki-passages.jsonl",
        "JSONL with id, title, text: a path or a shared data file",
        label="JSONL file (id, title, text)",
    )
    # A knowledge base's chunks (a collection's documents), instead of the source file.
    kb: str = knob(
        "",
        "a knowledge base's chunks instead of the JSONL file: QA pairs about your documents, each naming its "
        "document (the split keeps a document's pairs together)",
        label="Passages from",
    )
    dataset: str = knob("wiki-qa", "the dataset the kept pairs are saved to as a new version", label="Save to dataset")
    passages: int = knob(
        1500, "passages sampled with the seed (0: all)", min=0, max=100_000, label="Passages to sample (0: all)"
    )
    answers_per_passage: int = knob(2, "answer spans asked about per passage", min=1, max=5)
    seed: int = knob(0, "the seed of the passage sample")
    batch_size: int = knob(16, "questions written at once", min=1)
    max_new_tokens: int = knob(40, "the longest question the teacher writes, in tokens", min=1)
    model: str = knob(
        "",
        "the model that writes the questions: a Hugging Face id (online), a model folder or a .gguf file; "
        "empty: the default model. A larger teacher writes better questions, slower.",
        label="Teacher model",
    )
    filters: FilterSpec = field(default_factory=FilterSpec)

    def __post_init__(self) -> None:
        if self.passages < 0 or self.answers_per_passage < 1 or self.batch_size < 1:
            raise InputError("Passages must be 0 (all) or more; answers per passage and batch size at least 1.")
        # checked now, not when the kept pairs are saved at the end (it also names the work folder)
        object.__setattr__(self, "dataset", check_safe_name(self.dataset, "dataset"))

    def key(self) -> str:
        """The work folder's name: what decides the candidates (not the thresholds, re-applied at the end)."""
        # Not the sample size either: a larger sample starts with the smaller one's passages (see make_candidates).
        fixed = {k: v for k, v in asdict(self).items() if k not in ("filters", "batch_size", "passages")}
        if not fixed["model"].strip():
            del fixed["model"]  # the default teacher keeps the work folders made before teachers could change
        fixed["prompt"] = question_messages("{title}", "{sentence}", "{answer}", "year")  # a new prompt: new work
        fixed["candidates"] = CANDIDATES_VERSION  # new kinds of answer spans: new work
        return f"{self.dataset}-{hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()[:10]}"


class WorkFolder:
    """Append-only JSONL files of one generation run: questions and evidence, by candidate key."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def read(self, name: str) -> dict[str, dict]:
        file = self.path / f"{name}.jsonl"
        rows = {}
        if file.is_file():
            for line in file.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    rows[row["key"]] = row
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut by a kill: generated again
        return rows

    def append(self, name: str, rows: list[dict]) -> None:
        file = self.path / f"{name}.jsonl"
        glued = file.is_file() and file.stat().st_size and not file.read_bytes().endswith(b"\n")
        with file.open("a", encoding="utf-8") as f:
            f.write(("\n" if glued else "") + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


Progress = Callable[[float, str], None]


def in_batches(todo: list, size: int, work: Callable[[list], None], check: Callable[[], None]) -> None:
    for start in range(0, len(todo), size):
        check()
        work(todo[start : start + size])


@dataclass(frozen=True)
class GenerationReport:
    dataset: str
    version: str
    candidates: int
    kept: int
    funnel: list[dict]  # per filter: name, entered, passed, rate, threshold help
    seconds: dict[str, float]  # per step, this run (a resumed run skips work already done)
    sample: list[dict]  # kept pairs to read
    rejected_sample: list[dict]  # one or two rejected pairs per filter, with their scores
    resumed: bool


def generate_qa(
    spec: GenerationSpec,
    generator,
    embedder,
    settings: Settings,
    progress: Progress = lambda f, m: None,
    check: Callable[[], None] = lambda: None,
) -> GenerationReport:
    """Generate, check and filter QA pairs from the passages of ``spec.source``; save the kept ones as a version."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        seconds[step] = seconds.get(step, 0.0) + time.perf_counter() - clock
        clock = time.perf_counter()

    passages, source = source_passages(spec, settings, embedder)
    candidates = make_candidates(passages, spec.passages, spec.answers_per_passage, spec.seed)
    if not candidates:
        raise InputError(f"No answer spans found in the passages of {source['name']}.")
    work = WorkFolder(settings.data_dir / "datasets" / "_generation" / spec.key())
    (work.path / "spec.json").write_text(json.dumps(asdict(spec), indent=1))
    (work.path / "config.yaml").write_text(to_yaml(spec))  # no MLflow run here: the settings file of the last run
    questions = work.read("questions")
    resumed = bool(questions)
    lap("sample passages and answer spans")

    todo = [c for c in candidates if c.key not in questions]
    done = len(candidates) - len(todo)
    sampling = SamplingSpec(max_new_tokens=spec.max_new_tokens)

    def ask(batch: list[Candidate]) -> None:
        nonlocal done
        # A descriptive question is made by rule ("What is <title>?"); the model writes the others.
        rows = [
            {"key": c.key, "question": descriptive_question(c.title, c.answer, c.passage)}
            for c in batch
            if c.kind == DESCRIPTION
        ]
        spans = [c for c in batch if c.kind != DESCRIPTION]
        asks = [question_messages(c.title, c.passage, c.answer, c.kind) for c in spans]
        outs = generator.generate(asks, sampling, spec.batch_size) if asks else []
        rows += [
            {"key": c.key, "question": clean_question(o.text, question_stem(c.kind, c.answer))}
            for c, o in zip(spans, outs, strict=True)
        ]
        work.append("questions", rows)
        questions.update({r["key"]: r for r in rows})
        done += len(batch)
        progress(0.6 * done / len(candidates), f"questions: {done} of {len(candidates)}")

    in_batches(todo, spec.batch_size * 4, ask, check)
    for c in candidates:
        c.question = questions[c.key]["question"]
    lap("generate questions")

    cached = CachedEmbedder(embedder, settings)
    vectors = dict(zip((c.key for c in candidates), cached.embed([c.question for c in candidates]), strict=True))
    lap("embed questions")
    survivors, _ = apply_filters(candidates, spec.filters, vectors, upto=CHEAP[-1])
    evidence = work.read("evidence")
    k = spec.filters.retrieval_k
    # Only a question whose source passage is retrieved in the top k is answered: the others fail anyway. A later
    # run with a larger k answers the ones it lets through (their ranks are stored up to MAX_RANK).
    todo = [c for c in survivors if c.key not in evidence or unanswered(evidence[c.key], k)]
    if todo:
        progress(0.6, f"embedding {len(passages)} passages for the round trip (cached after the first time)")
        index = np.asarray(cached.embed([p["text"] for p in passages]), dtype=np.float32)
        position = {passage_id(p, n): n for n, p in enumerate(passages)}
        lap("embed passages")
        template = PromptTemplate(max_source_chars=2000)
        done = 0

        def round_trip(batch: list[Candidate]) -> None:
            nonlocal done
            scores = index @ np.asarray([vectors[c.key] for c in batch], dtype=np.float32).T
            rows = []
            for j, c in enumerate(batch):
                own = scores[position[c.passage_id], j]
                rank = 1 + int((scores[:, j] > own).sum())
                rows.append({"key": c.key, "retrieval_rank": rank if rank <= MAX_RANK else 0})
            found = [(row, c) for row, c in zip(rows, batch, strict=True) if unanswered(row, k)]
            for tokens in sorted({round_trip_tokens(c.kind) for _, c in found}):
                part = [(row, c) for row, c in found if round_trip_tokens(c.kind) == tokens]
                asks = [
                    template.messages(
                        c.question, [Hit(id=c.passage_id, title=c.title, text=c.passage, source="passage", score=0.0)]
                    )
                    for _, c in part
                ]
                outs = generator.generate(asks, SamplingSpec(max_new_tokens=tokens), spec.batch_size)
                for (row, _), out in zip(part, outs, strict=True):
                    row["model_answer"] = clean_answer(out.text)
            work.append("evidence", rows)
            evidence.update({r["key"]: r for r in rows})
            done += len(batch)
            progress(0.6 + 0.35 * done / len(todo), f"round trips: {done} of {len(todo)}")

        in_batches(todo, spec.batch_size * 4, round_trip, check)
        lap("round trips (retrieve and answer)")
    for c in survivors:
        c.evidence.update({k: v for k, v in evidence.get(c.key, {}).items() if k != "key"})
    kept, funnel = apply_filters(candidates, spec.filters, vectors)
    lap("apply filters")
    documents = {passage_id(p, n): str(p.get("doc_id") or passage_id(p, n)) for n, p in enumerate(passages)}
    return finish(spec, source, documents, generator, candidates, kept, funnel, seconds, resumed, work, settings)


def round_trip_tokens(kind: str) -> int:
    """New tokens of the model's round-trip answer: enough to judge it (a span comes early, and a sentence's first
    words show whether it copies the one asked for); a date needs more (16 cut "March 10, 1947" before the year)."""
    return 24 if kind == "date" else 16


def unanswered(evidence: dict, k: int) -> bool:
    """Whether a candidate's stored evidence lacks the model's answer it needs: its source passage is
    retrieved in the top ``k`` but was not answered (a run with a smaller k left it out)."""
    return "model_answer" not in evidence and 1 <= evidence.get("retrieval_rank", 0) <= k


def source_passages(spec: GenerationSpec, settings: Settings, embedder) -> tuple[list[dict], dict]:
    """The passages to generate from (id, title, text, and the document they belong to) and their identity:
    a JSONL file's records, or the chunks of a knowledge base (a chunk's document is its ``doc_id``)."""
    if not spec.kb:
        path = resolve_data(spec.source, settings)
        return load_passages(path), file_identity(path)

    got = KnowledgeBaseStore(settings, embedder).collection(spec.kb).get(include=["documents", "metadatas"])
    passages = sorted(
        (
            {"id": i, "title": (m or {}).get("title", ""), "text": d, "doc_id": (m or {}).get("doc_id", i)}
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            if (d or "").strip()
        ),
        key=lambda p: p["id"],
    )
    if not passages:
        raise InputError(f"Knowledge base {spec.kb!r} is empty: ingest documents into it first.")
    return passages, {"name": f"knowledge base {spec.kb}", "kb": spec.kb, "chunks": len(passages)}


def to_record(c: Candidate, model: str, doc_id: str = ""):
    scores = {k: v for k, v in c.evidence.get("scores", {}).items()}
    doc_id = doc_id or c.passage_id
    return QARecord(
        question=c.question,
        answer=c.answer,
        contexts=(Context(c.title, c.passage, doc_id),),
        doc_ids=(doc_id,),
        metadata={
            "source": "generated",
            "generator": model,
            "passage_id": c.passage_id,
            "answer_kind": c.kind,
            "model_answer": c.evidence.get("model_answer", ""),
            "scores": scores,
        },
    )


def finish(
    spec, source, documents, generator, candidates, kept, funnel, seconds, resumed, work, settings
) -> GenerationReport:
    """Save the kept pairs as a dataset version and write the run's report next to its work files."""
    began = time.perf_counter()
    records = [to_record(c, generator.name, documents.get(c.passage_id, "")) for c in kept]
    if not records:
        raise InputError("No generated pair passed every filter: loosen the thresholds or use more passages.")
    prompt = json.dumps(question_messages("{title}", "{sentence}", "{answer}", "year"), ensure_ascii=False)
    steps = [{"name": f.name, "entered": f.entered, "passed": f.passed, "rate": round(f.rate, 4)} for f in funnel]
    manifest = DatasetStore(settings).save(
        spec.dataset,
        records,
        sources=[source],
        generator=generator.name,
        prompt=prompt,
        thresholds=asdict(spec.filters),
        note=f"generated from {len(candidates)} candidates of {source['name']}",
        counts={"candidates": len(candidates), "funnel": {s["name"]: s["passed"] for s in steps}},
    )
    seconds["save version"] = time.perf_counter() - began
    rejected = []
    for name in NAMES:
        rejected += [
            {"question": c.question, "answer": c.answer, "rejected_by": name, "scores": c.evidence.get("scores", {})}
            for c in [c for c in candidates if c.evidence.get("rejected_by") == name][:2]
        ]
    sample = [r.to_dict() | {"passage": r.contexts[0].text[:300]} for r in records[:10]]
    for row in sample:
        row.pop("contexts")
    report = GenerationReport(
        dataset=spec.dataset,
        version=manifest.id,
        candidates=len(candidates),
        kept=len(records),
        funnel=steps,
        seconds={k: round(v, 1) for k, v in seconds.items()},
        sample=sample,
        rejected_sample=rejected,
        resumed=resumed,
    )
    (work.path / "report.json").write_text(json.dumps(asdict(report), indent=1, ensure_ascii=False))
    return report


def teacher_spec(spec: GenerationSpec):
    """The model that writes the questions: ``spec.model`` (any model ``spec_for`` loads), else the Studio's
    default model (the bundled one, as the app answers with it)."""
    return spec_for(spec.model) if spec.model.strip() else default_spec()


def generate_job(args: dict, ctx) -> dict:
    """The background-job form (kind ``generate-qa``): args are GenerationSpec fields (filters as a dict)."""
    fields_ = dict(args)
    if isinstance(fields_.get("filters"), dict):
        fields_["filters"] = FilterSpec(**fields_["filters"])
    spec = GenerationSpec(**fields_)
    ctx.progress(0.0, "loading the model")
    settings = load_settings()
    report = generate_qa(
        spec,
        load_generator(teacher_spec(spec), settings),
        Embedder.shared(),
        settings,
        ctx.progress,
        ctx.check_cancelled,
    )
    ctx.log(f"kept {report.kept} of {report.candidates} candidates: version {report.version} of {report.dataset}")
    return asdict(report)


register_job_kind("generate-qa", generate_job, GenerationSpec)
