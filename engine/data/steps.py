"""Dataset steps: each reads a saved version (or a source), does one thing, and saves a new version.

The Datasets page and ``python -m engine data`` call these; the slow ones also run as the
background job kind ``dataset`` (:func:`step_job`). Every new version names its parent, and
is logged to MLflow when a tracker is given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.data.augment import AugmentSpec, augment, context_pool, hard_cases
from engine.data.hub import load_hf, save_hf
from engine.data.splits import SplitSpec, check_leakage, split_records
from engine.data.topics import TopicSpec, cluster_topics, label_records
from engine.errors import InputError, check_choice
from engine.evaluation.history import per_question
from engine.job_kinds import register_job_kind
from engine.models.generation import load_generator
from engine.qa.exports import csv_text, jsonl_text
from engine.qa.records import read_records, unique_ids
from engine.qa.versions import DatasetStore, Manifest, check_dataset_name, log_version
from engine.rag.embedding_cache import cached_embedder
from engine.settings import Settings, load_settings
from engine.tracking import Tracker
from engine.write_policy import check_export_target, publish_file


def pool_retriever(records, settings: Settings):
    """``retrieve(question, k)``: the contexts of ``records`` most similar to the question (cosine of
    the cached embeddings), the distractor source of augmentation: retrieved, so hard to tell apart."""
    embed = cached_embedder(settings)
    pool = context_pool(records)
    if not pool:
        return None  # nothing to retrieve: augmentation reports that no distractor was found
    matrix = np.asarray(embed.embed([c.text for c in pool]), dtype=np.float32).reshape(len(pool), -1)
    questions = list(dict.fromkeys(r.question for r in records))
    known = dict(zip(questions, embed.embed(questions), strict=True))  # one batch, not one call a question

    def retrieve(question: str, k: int):
        vector = known.get(question) or embed.embed([question])[0]
        scores = matrix @ np.asarray(vector, dtype=np.float32)
        return [pool[i] for i in np.argsort(-scores, kind="stable")[:k]]

    return retrieve


def question_nearest(records, settings: Settings):
    """``nearest(question, candidates, n)``: the candidates whose questions are most similar to ``question``
    (cosine of the cached embeddings, one batch for all of ``records``), for held-out hard cases."""
    embed = cached_embedder(settings)
    questions = list(dict.fromkeys(r.question for r in records))
    known = dict(zip(questions, embed.embed(questions), strict=True))

    def nearest(question: str, candidates, n: int):
        if not candidates:
            return []
        matrix = np.asarray([known[c.question] for c in candidates], dtype=np.float32)
        vector = known.get(question) or embed.embed([question])[0]
        scores = matrix @ np.asarray(vector, dtype=np.float32)
        return [candidates[i] for i in np.argsort(-scores, kind="stable")[:n]]

    return nearest


def saved(store: DatasetStore, tracker, dataset: str, records, **manifest) -> Manifest:
    found = store.save(dataset, records, **manifest)
    if tracker is not None:
        log_version(tracker, found, records)
    return found


def import_source(
    settings: Settings,
    dataset: str,
    source,
    name: str = "",
    kind: str = "auto",
    on_error: str = "abort",
    tracker=None,
    dedupe: bool = False,
):
    """Import a file (path or uploaded bytes), a saved HF dataset folder or a hub name: (manifest, ImportResult).

    Records that repeat an id are refused with their line numbers; ``dedupe`` keeps the first of each instead
    and lists the others in the result's ``dropped``.
    """
    dataset = check_dataset_name(dataset)  # before the source is read, which may take long
    label = name or "The uploaded data"
    if isinstance(source, bytes):
        result = read_records(source, name=name, kind=kind, on_error=on_error)
        sources = [{"name": name, "upload": True}]
    else:
        path = Path(str(source)).expanduser()
        if not path.exists() and (settings.shared_data_dir / str(source)).is_file():
            path = settings.shared_data_dir / str(source)
        if path.is_dir() or not path.exists() and "/" in str(source) and not str(source).startswith((".", "/", "~")):
            result = load_hf(str(source) if not path.is_dir() else str(path), on_error=on_error)
            label = str(source)
        elif path.is_file():
            result = read_records(path, kind=kind, on_error=on_error)
            label = path.name
        else:
            raise InputError(f"{source} is neither a file, a saved dataset folder, nor a Hugging Face dataset name.")
        sources = [path if path.is_file() else {"description": str(source)}]
    result = unique_ids(result, label, dedupe)  # before anything is saved
    left_out = [
        f"{n} {what}"
        for n, what in ((result.skipped, "malformed lines skipped"), (len(result.dropped), "repeated ids left out"))
        if n
    ]
    note = f"imported ({result.format}); {', '.join(left_out)}" if left_out else ""
    return saved(DatasetStore(settings), tracker, dataset, result.records, sources=sources, note=note), result


def cluster_version(settings: Settings, dataset: str, version: str, spec=None, tracker=None):
    """Label a version's records with topics: (new manifest, Topics)."""
    store = DatasetStore(settings)
    spec = spec or TopicSpec()
    records = store.load(dataset, version)
    topics = cluster_topics(records, cached_embedder(settings).embed, spec)
    # The 2-D map goes with each record, so a page can draw any labelled version without clustering again.
    labelled = [
        r.with_metadata(map_x=round(x, 4), map_y=round(y, 4))
        for r, (x, y) in zip(label_records(records, topics), topics.coords, strict=True)
    ]
    found = saved(store, tracker, dataset, labelled, parent=version, note=f"topics: {spec.method}, k = {topics.k}")
    return found, topics


def split_version(settings: Settings, dataset: str, version: str, spec=None, threshold: float = 0.95, tracker=None):
    """80/10/10 by topic and document, then the leakage check: (new manifest, LeakageReport, sizes)."""
    store = DatasetStore(settings)
    spec = spec or SplitSpec()
    splits = split_records(store.load(dataset, version), spec)
    report = check_leakage(splits, cached_embedder(settings).embed, threshold)
    records = [r for part in splits.values() for r in part]
    found = saved(
        store, tracker, dataset, records, parent=version, note=f"split {asdict(spec)}; leakage {report.counts()}"
    )
    return found, report, {name: len(part) for name, part in splits.items()}


def augment_version(settings: Settings, dataset: str, version: str, spec=None, generator=None, tracker=None):
    """The version plus augmented copies of its records (each in its origin's split): (new manifest, report)."""
    store = DatasetStore(settings)
    spec = spec or AugmentSpec()
    records = store.load(dataset, version)
    retrieve = pool_retriever(records, settings) if "distractors" in spec.kinds else None
    made, report = augment(records, spec, generator, retrieve)
    if not made:
        raise InputError("No augmented record was made: choose other kinds, or records with contexts.")
    found = saved(
        store,
        tracker,
        dataset,
        records + made,
        parent=version,
        note=f"augmented: {report['made']}",
        generator=getattr(generator, "name", ""),
    )
    return found, report


def hard_case_version(
    settings: Settings,
    dataset: str,
    version: str,
    run_id: str,
    threshold: float = 50.0,
    spec=None,
    generator=None,
    tracker=None,
):
    """Variants of the records an evaluation run got wrong, as a new version: (new manifest, report).
    A test or validation miss, or a missed question that is not in the split version (people's questions),
    is never varied itself: its nearest training records are (see ``engine.data.augment.hard_cases``), so
    misses of the test evaluation become training items."""
    store = DatasetStore(settings)
    records = store.load(dataset, version)
    rows = per_question(tracker or Tracker(settings), run_id).to_dict("records")
    spec = spec or AugmentSpec()
    retrieve = pool_retriever(records, settings) if "distractors" in spec.kinds else None
    split = any(r.metadata.get("split") for r in records)
    nearest = question_nearest(records, settings) if split else None
    variants, report = hard_cases(rows, records, threshold, spec, generator, retrieve, nearest=nearest)
    if not variants:
        raise InputError(
            f"Run {run_id} has {report['wrong']} questions under F1 {threshold:g}, of which "
            f"{report['matched']} are in {dataset}@{version}: no variants to make."
        )
    found = saved(
        store,
        tracker,
        dataset,
        records + variants,
        parent=version,
        note=f"hard cases of run {run_id}",
        sources=[{"mlflow_run": run_id}],
        generator=getattr(generator, "name", ""),
    )
    return found, report


def export_version(
    settings: Settings, dataset: str, version: str, target: str | Path, fmt: str = "", overwrite: bool = False
) -> Path:
    """Export a version as JSONL, CSV (by the target's suffix, or ``fmt``) or a Hugging Face dataset folder.

    An existing target is an error; ``overwrite`` replaces only an unchanged earlier export of the Studio.
    """
    target = Path(target).expanduser()
    fmt = fmt or {".jsonl": "jsonl", ".csv": "csv"}.get(target.suffix.lower(), "hf")
    check_choice(fmt, ("jsonl", "csv", "hf"), "export format")
    check_export_target(target, overwrite)  # before the records are read
    records = DatasetStore(settings).load(dataset, version)
    if fmt == "hf":
        return save_hf(records, target, overwrite)
    return publish_file(target, (jsonl_text if fmt == "jsonl" else csv_text)(records), overwrite)


STEPS = {"topics": cluster_version, "split": split_version, "augment": augment_version, "hard-cases": hard_case_version}


def step_job(args: dict, ctx) -> dict:
    """The background-job form (kind ``dataset``): ``step`` (topics/split/augment/hard-cases), ``dataset``,
    ``version``, and the step's settings (``spec`` as a dict; ``run_id``/``threshold`` where they apply)."""
    step = args.get("step", "")
    check_choice(step, STEPS, "dataset step")
    settings = load_settings()
    kwargs = {k: v for k, v in args.items() if k in ("run_id", "threshold")}
    spec_type = {"topics": TopicSpec, "split": SplitSpec, "augment": AugmentSpec, "hard-cases": AugmentSpec}[step]
    spec = spec_type(**{k: tuple(v) if isinstance(v, list) else v for k, v in (args.get("spec") or {}).items()})
    if step in ("augment", "hard-cases") and "paraphrase" in spec.kinds:
        ctx.progress(0.05, "loading the model")
        kwargs["generator"] = load_generator(settings=settings)
    ctx.progress(0.1, f"{step} of {args['dataset']}@{args['version']}")
    result = STEPS[step](settings, args["dataset"], args["version"], spec=spec, tracker=Tracker(settings), **kwargs)
    manifest = result[0]
    ctx.log(f"{step}: saved {manifest.dataset}@{manifest.id} ({manifest.counts.get('records')} records)")
    out = {"dataset": manifest.dataset, "version": manifest.id, "counts": manifest.counts}
    extra = result[1]
    out["report"] = (
        extra.counts()
        if hasattr(extra, "counts")
        else extra
        if isinstance(extra, dict)
        else {"k": extra.k, "names": extra.names, "sizes": extra.sizes, "silhouette": extra.silhouette}
    )
    if step == "split":
        out["sizes"] = result[2]
    return out


@dataclass(frozen=True)
class DatasetStep:
    """A dataset job: ``step`` (one of STEPS) on a dataset version, with the step's settings (``spec``, a dict of its
    spec's fields) and, for hard cases, the evaluation run and its threshold."""

    step: str
    dataset: str
    version: str
    spec: dict = field(default_factory=dict)
    run_id: str = ""
    threshold: float | None = None


def step_args(step: DatasetStep) -> dict:
    """The job's arguments: what the step was given (``run_id`` and ``threshold`` only where they apply)."""
    return {k: v for k, v in asdict(step).items() if v not in ("", None)}


register_job_kind("dataset", step_job, DatasetStep, step_args)
