"""The dataset pipeline on the shared passages, timed: generate -> topics -> split (+ leakage check) ->
augment -> knowledge-base build and refresh. Writes the Markdown tables of docs/datasets.md.

    .venv/bin/python bench/dataset_pipeline.py --passages 1500 --out docs/datasets.md

Every step saves a dataset version (``python -m engine data versions wiki-qa`` lists them) and
logs it to MLflow. Generation resumes if stopped: run the same command again.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit  # noqa: E402


def main() -> int:
    from engine.cli.data import funnel_table, table
    from engine.data import steps
    from engine.data.augment import AugmentSpec
    from engine.data.generation import GenerationSpec, generate_qa
    from engine.data.knowledge import documents_from_records
    from engine.data.splits import SplitSpec
    from engine.data.topics import TopicSpec
    from engine.models.generation import load_generator
    from engine.qa.versions import DatasetStore
    from engine.rag.embedder import Embedder
    from engine.rag.refresh import refresh_kb
    from engine.rag.store import KnowledgeBaseStore
    from engine.settings import load_settings
    from engine.tracking import Tracker

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="wiki-qa")
    p.add_argument("--passages", type=int, default=1500)
    p.add_argument("--answers-per-passage", type=int, default=2)
    p.add_argument("--kb", default="wiki-qa-kb")
    p.add_argument("--out")
    a = p.parse_args()
    settings = load_settings()
    tracker, times = Tracker(settings), {}
    store = DatasetStore(settings)

    def timed(name, fn, *args, **kwargs):
        began = time.perf_counter()
        out = fn(*args, **kwargs)
        times[name] = time.perf_counter() - began
        print(f"{name}: {times[name]:.1f} s", file=sys.stderr, flush=True)
        return out

    def progress(fraction: float, message: str) -> None:
        print(f"\r[{100 * fraction:5.1f}%] {message}   ", end="", file=sys.stderr, flush=True)

    generator = timed("load the model", load_generator, settings=settings)
    spec = GenerationSpec(dataset=a.dataset, passages=a.passages, answers_per_passage=a.answers_per_passage)
    report = timed("generate (all sub-steps)", generate_qa, spec, generator, Embedder.shared(), settings, progress)
    manifest, topics = timed("topics", steps.cluster_version, settings, a.dataset, report.version, TopicSpec(),
                             tracker)  # fmt: skip
    split, leaks, sizes = timed("split + leakage check", steps.split_version, settings, a.dataset, manifest.id,
                                SplitSpec(), 0.95, tracker)  # fmt: skip
    augmented, aug = timed("augment (distractors, shuffle, typos)", steps.augment_version, settings, a.dataset,
                           split.id, AugmentSpec(kinds=("distractors", "shuffle", "typos")), None, tracker)  # fmt: skip
    kb_store = KnowledgeBaseStore(settings, Embedder.shared())
    docs = documents_from_records(store.load(a.dataset, split.id))
    first = timed("knowledge base: build", refresh_kb, kb_store, a.kb, docs)
    again = timed("knowledge base: refresh, nothing changed", refresh_kb, kb_store, a.kb, docs)

    topic_rows = [{"topic": t, "label": topics.names[t], "records": topics.sizes[t]} for t in sorted(topics.names)]
    silhouette = ", ".join(f"{k}: {s:.3f}" for k, s in sorted(topics.silhouette.items()))
    kb_rows = [{"run": "build"} | first.as_dict(), {"run": "refresh"} | again.as_dict()]
    for row in kb_rows:
        row.pop("kb"), row.pop("seconds")
    text = "\n".join([
        f"Dataset pipeline run ({time.strftime('%Y-%m-%d')}, 2 CPU cores, bundled SmolLM2-135M and MiniLM): "
        f"{a.passages} passages sampled from wiki-passages.jsonl, {a.answers_per_passage} answer spans each.",
        "", f"**Generation funnel** (version `{report.version}`): {report.kept} pairs kept of {report.candidates}.",
        "", funnel_table(report), "",
        "Generation time by sub-step (seconds): " + ", ".join(f"{k} {v:.0f}" for k, v in report.seconds.items()) + ".",
        "", f"**Topics** (version `{manifest.id}`, KMeans, k by cosine silhouette: {silhouette}):", "",
        table(topic_rows), "", f"**Splits** (version `{split.id}`):", "", table([sizes]), "",
        "**Leakage report** across the splits (shared source documents, near-duplicate questions at cosine "
        ">= 0.95, identical answer and context):", "", table([leaks.counts()]), "",
        f"**Augmentation** (version `{augmented.id}`): {aug['made']}.", "",
        f"**Knowledge base `{a.kb}`** from the split version's passages:", "", table(kb_rows), "",
        "**Time per step** (seconds):", "", table([{"step": k, "seconds": f"{v:.1f}"} for k, v in times.items()]), "",
        "**Kept pairs, to read** (the first ten):", "",
        table([{"question": s["question"], "answer": s["answer"]} for s in report.sample]), "",
    ])  # fmt: skip
    emit(text, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
