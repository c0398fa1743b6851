"""QA generation on documents, measured against the targets of issue 18: kept pairs per 100 passages,
the share of date/year questions, seconds per kept pair, and which kinds of questions are kept.

    .venv/bin/python bench/qa_generation.py --passages 100 --out docs/datasets.md

Two collections, each ingested into a knowledge base in a scratch data dir and generated from its
chunks exactly as ``python -m engine data generate --kb NAME`` does, with the Studio's default model
(the bundled model at the catalog's balanced preset):

- ``wiki``: ``--passages`` shared Wikipedia paragraphs (one document each, chosen with the seed);
- ``studio-docs``: the Studio's own documentation (README.md and docs/), as the app indexes it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit  # noqa: E402

DATE_KINDS = ("date", "year")


def wiki_documents(shared: Path, n: int, seed: int):
    from engine.rag.documents import Document

    rows = [json.loads(line) for line in (shared / "wiki-passages.jsonl").open(encoding="utf-8")]
    random.Random(seed).shuffle(rows)
    return [Document(r["id"], r["title"], r["text"], "wiki-passages.jsonl") for r in rows[:n]]


def measure(name: str, documents, settings, generator, embedder, answers: int) -> dict:
    from engine.data.generation import GenerationSpec, generate_qa
    from engine.qa.versions import DatasetStore
    from engine.rag.ingest import ingest_documents
    from engine.rag.store import KnowledgeBaseStore

    store = KnowledgeBaseStore(settings, embedder)
    chunks = ingest_documents(store, name, documents).chunks
    began = time.perf_counter()
    report = generate_qa(GenerationSpec(kb=name, dataset=f"{name}-qa", passages=0, answers_per_passage=answers),
                         generator, embedder, settings)  # fmt: skip
    seconds = time.perf_counter() - began
    records = DatasetStore(settings).load(f"{name}-qa", report.version)
    kinds = Counter(r.metadata.get("answer_kind", "?") for r in records)
    stems = Counter(" ".join(r.question.split()[:2]).lower() for r in records)
    return {
        "collection": name, "passages": chunks, "candidates": report.candidates, "kept": report.kept,
        "kept_per_100": 100 * report.kept / chunks,
        "date_share": sum(kinds[k] for k in DATE_KINDS) / max(report.kept, 1),
        "s_per_kept": seconds / max(report.kept, 1), "minutes": seconds / 60, "kinds": dict(kinds),
        "stems": dict(stems.most_common(8)), "examples": [(r.question, r.answer) for r in records[:6]],
    }  # fmt: skip


def main() -> int:
    from engine.models.catalog import default_spec
    from engine.models.generation import load_generator
    from engine.rag.embedder import Embedder
    from engine.rag.ingest import studio_documents
    from engine.settings import Settings, load_settings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--passages", type=int, default=100)
    p.add_argument("--answers-per-passage", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=["", "wiki", "studio-docs"], default="")
    p.add_argument("--out")
    a = p.parse_args()
    shared = load_settings().shared_data_dir
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), shared_data_dir=shared)
        generator, embedder = load_generator(default_spec(), settings), Embedder.shared()
        generator.warm_up(background=False)
        collections = {"wiki": lambda: wiki_documents(shared, a.passages, a.seed), "studio-docs": studio_documents}
        for name, documents in collections.items():
            if a.only in ("", name):
                rows.append(measure(name, documents(), settings, generator, embedder, a.answers_per_passage))
                print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    lines = [
        f"QA generation ({time.strftime('%Y-%m-%d')}, 2 CPU cores, the default model: {default_spec().name} "
        f"{default_spec().quantization}; {a.answers_per_passage} answer candidates per passage).", "",
        "| collection | passages | candidates | kept | kept per 100 passages | date/year share | s per kept pair "
        "| minutes | kept by answer kind |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]  # fmt: skip
    for r in rows:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(r["kinds"].items(), key=lambda kv: -kv[1]))
        lines.append(f"| {r['collection']} | {r['passages']} | {r['candidates']} | {r['kept']} | "
                     f"{r['kept_per_100']:.1f} | {100 * r['date_share']:.0f}% | {r['s_per_kept']:.2f} | "
                     f"{r['minutes']:.1f} | {kinds} |")  # fmt: skip
    emit("\n".join(lines) + "\n", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
