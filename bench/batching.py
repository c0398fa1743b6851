"""Batched evaluation against a one-question-at-a-time loop, end to end, on HotpotQA.

    .venv/bin/python bench/batching.py --limit 200 --modes closed-book distractor --out docs/benchmarks.md

Both paths answer the same questions with the same model, prompt and decoding. The loop is
what a page does per question: retrieve for one question (embedding its own paragraphs in
the distractor setting), build its prompt, generate, one after another. The batched path is
the evaluation runner: embeddings in batches, prompts sorted by length, generation in
batches with the shared prompt prefix computed once.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit  # noqa: E402
from engine.evaluation.hotpotqa import load_hotpotqa  # noqa: E402
from engine.evaluation.metrics import f1  # noqa: E402
from engine.evaluation.qa_sets import resolve_data  # noqa: E402
from engine.evaluation.runner import EvalSpec, run_evaluation  # noqa: E402
from engine.models.generation import load_generator  # noqa: E402
from engine.rag.embedder import Embedder  # noqa: E402
from engine.rag.pipeline import RagPipeline  # noqa: E402
from engine.rag.retriever import KnowledgeBaseRetriever, PoolRetriever  # noqa: E402
from engine.rag.store import KnowledgeBaseStore  # noqa: E402
from engine.settings import load_settings  # noqa: E402


def one_at_a_time(items, mode, generator, embedder, store, k, kb) -> tuple[float, list[str]]:
    start = time.perf_counter()
    answers = []
    for item in items:
        if mode == "closed-book":
            retriever = None
        elif mode == "distractor":
            retriever = PoolRetriever(embedder, {item.question: item.paragraphs})
        else:
            retriever = KnowledgeBaseRetriever(store, kb)
        answers.append(RagPipeline(retriever, generator).answer(item.question, k).answer)
    return time.perf_counter() - start, answers


def measure(modes, limit: int = 200, batch_size: int = 32, k: int = 5, kb: str = "hotpotqa-wiki") -> str:
    """Run both paths for each mode; the Markdown table."""
    settings = load_settings()
    generator = load_generator(settings=settings)
    embedder = Embedder.shared()
    store = KnowledgeBaseStore(settings, embedder) if "kb" in modes else None
    items = load_hotpotqa(resolve_data("hotpotqa-dev.jsonl", settings), limit)
    rows = []
    for mode in modes:
        spec = EvalSpec(mode=mode, limit=limit, k=k, kb=kb, batch_size=batch_size)
        batched = run_evaluation(spec, generator, embedder, store, settings)
        loop_s, loop_answers = one_at_a_time(items, mode, generator, embedder, store, k, kb)
        loop_f1 = 100 * sum(f1(ans, it.answer) for ans, it in zip(loop_answers, items, strict=True)) / len(items)
        same = sum(r["prediction"] == ans for r, ans in zip(batched.rows, loop_answers, strict=True))
        rows.append((mode, len(items), loop_s, batched.seconds, loop_s / batched.seconds, loop_f1,
                     batched.metrics["f1"], same))  # fmt: skip
        print(f"{mode}: loop {loop_s:.1f} s, batched {batched.seconds:.1f} s, {loop_s / batched.seconds:.2f}x",
              flush=True)  # fmt: skip

    head = (
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch threads {__import__('torch').get_num_threads()}; model {generator.name} ({generator.loaded.device}, "
        f"{generator.model.dtype}); batch size {batch_size}; k {k}; date {time.strftime('%Y-%m-%d')}.\n\n"
        "| mode | questions | one at a time (s) | batched (s) | speed-up | F1 loop | F1 batched | same answers |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    )
    return head + "".join(
        f"| {m} | {n} | {ls:.1f} | {bs:.1f} | {sp:.2f}x | {lf:.1f} | {bf:.1f} | {same}/{n} |\n"
        for m, n, ls, bs, sp, lf, bf, same in rows
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--modes", nargs="+", default=["closed-book", "distractor"])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--kb", default="hotpotqa-wiki")
    p.add_argument("--out", help="append the Markdown table to this file")
    a = p.parse_args()
    emit(measure(a.modes, a.limit, a.batch_size, a.k, a.kb), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
