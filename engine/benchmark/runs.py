"""A benchmark matrix's results: quality degradation against the reference, embedding and retrieval
speed, the Markdown table, MLflow runs (one per matrix) and regressions against a baseline run."""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from engine.benchmark.matrix import BenchSpec, environment, run_matrix
from engine.benchmark.regression import compare_runs, parse_thresholds, regressions
from engine.benchmark.selection import Candidate, select_config
from engine.evaluation.hotpotqa import load_hotpotqa
from engine.rag.chunking import Chunk
from engine.rag.embedder import Embedder
from engine.rag.store import KnowledgeBaseStore
from engine.settings import Settings, load_settings
from engine.stats import PairedDifference, paired_bootstrap
from engine.tracking import BENCHMARKS, Tracker

COLUMNS = {  # metric -> (column title, format)
    "load_s": ("load (s)", "{:.1f}"),
    "compile_s": ("compile (s)", "{:.1f}"),
    "ttft_s": ("TTFT (s)", "{:.2f}"),
    "e2e_s": ("300+64 tokens (s)", "{:.2f}"),
    "short_s": ("300+8 tokens (s)", "{:.2f}"),
    "decode_tok_s": ("decode tok/s", "{:.1f}"),
    "batch4_tok_s": ("batch 4 tok/s", "{:.1f}"),
    "batch16_tok_s": ("batch 16 tok/s", "{:.1f}"),
    "weights_gb": ("weights (GB)", "{:.2f}"),
    "peak_rss_gb": ("peak memory (GB)", "{:.2f}"),
    "perplexity": ("perplexity", "{:.2f}"),
    "em": ("EM", "{:.1f}"),
    "f1": ("F1", "{:.1f}"),
}


def degradation(results: dict[str, dict], reference: str, metric: str = "f1") -> dict[str, PairedDifference]:
    """Each configuration's paired difference from the reference on the same questions (bootstrap 95% CI)."""
    base = results.get(reference, {}).get("scores", {}).get(metric)
    if not base:
        return {}
    return {c: paired_bootstrap(base, r["scores"][metric]) for c, r in results.items() if r["scores"].get(metric)}


def measure_retrieval(settings: Settings, passages: int = 256, queries: int = 50) -> dict[str, float]:
    """Embedding throughput (passages/s) and retrieval latency (ms per question, embedding it included)
    with the shared embedder and a Chroma store in a temporary folder."""
    with (settings.shared_data_dir / "wiki-passages.jsonl").open(encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for _, line in zip(range(passages), f, strict=False)]
    embedder = Embedder.shared()
    embedder.embed(texts[:8])  # loads the model: its load is not throughput
    start = time.perf_counter()
    vectors = embedder.embed(texts)
    embed_per_s = len(texts) / (time.perf_counter() - start)
    questions = [it.question for it in load_hotpotqa(settings.shared_data_dir / "hotpotqa-dev.jsonl", queries)]
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        store = KnowledgeBaseStore(Settings(data_dir=Path(tmp), shared_data_dir=settings.shared_data_dir), embedder)
        chunks = [
            Chunk(id=f"p{n}", doc_id=f"p{n}", title="wiki", text=t, source="wiki-passages.jsonl", index=0)
            for n, t in enumerate(texts)
        ]
        store.upsert("bench", chunks, vectors)
        store.query("bench", questions[:1])
        start = time.perf_counter()
        for question in questions:
            store.query("bench", [question], k=5)
        retrieval_ms = 1000 * (time.perf_counter() - start) / len(questions)
    return {"embed_per_s": embed_per_s, "retrieval_ms": retrieval_ms}


def format_matrix(results: dict[str, dict], deltas: dict[str, PairedDifference], reference: str) -> str:
    """The matrix as a Markdown table, one row per configuration, with F1 against the reference."""
    names = [m for m in COLUMNS if any(m in r["metrics"] for r in results.values())]
    head = ["configuration", *(COLUMNS[m][0] for m in names), f"F1 vs {reference} [95% CI]"]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for config, result in results.items():
        cells = [COLUMNS[m][1].format(result["metrics"][m]) if m in result["metrics"] else "—" for m in names]
        d = deltas.get(config)
        vs = f"{d.mean:+.1f} [{d.low:+.1f}, {d.high:+.1f}]" if d else "—"
        cells.append("reference" if config == reference else vs)
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def log_matrix(tracker: Tracker, spec: BenchSpec, results: dict, deltas: dict, extra: dict, env: dict) -> str:
    """One MLflow run: metrics as ``config/metric``, the F1 differences, the environment as tags."""
    params = {k: v for k, v in asdict(spec).items() if k != "speed"} | asdict(spec.speed)
    run_id = tracker.start(
        BENCHMARKS,
        f"matrix {spec.model or 'bundled'}{'+' + spec.adapter if spec.adapter else ''} x{len(results)}",
        params,
        {"kind": "matrix", **{f"env.{k}": v for k, v in env.items()}},
    )
    metrics = {f"{c}/{m}": v for c, r in results.items() for m, v in r["metrics"].items() if not math.isnan(v)}
    for config, d in deltas.items():
        metrics |= {f"{config}/f1_diff": d.mean, f"{config}/f1_diff_low": d.low, f"{config}/f1_diff_high": d.high}
    tracker.log_metrics(run_id, metrics | extra)
    tracker.log_dict(run_id, {c: r["scores"] for c, r in results.items()}, "scores.json")
    tracker.log_text(run_id, format_matrix(results, deltas, spec.reference), "matrix.md")
    tracker.log_config(run_id, spec)
    tracker.end(run_id)
    return run_id


def matrix_metrics(tracker: Tracker, run_id: str) -> dict[str, dict[str, float]]:
    """A logged matrix as ``{config: {metric: value}}`` (the run-level ones under ``""``)."""
    found: dict[str, dict[str, float]] = {}
    for name, value in tracker.client.get_run(run_id).data.metrics.items():
        config, _, metric = name.rpartition("/")
        found.setdefault(config, {})[metric] = value
    return found


COMPARABLE = ("model", "adapter", "questions", "split", "prompt_tokens", "new_tokens", "batch_new_tokens")


def differences(tracker: Tracker, run_id: str, baseline: str) -> list[str]:
    """The settings two matrix runs differ in that make their numbers incomparable (e.g. question count)."""
    a, b = (tracker.client.get_run(r).data.params for r in (run_id, baseline))
    changed = [k for k in COMPARABLE if (a.get(k) or "") != (b.get(k) or "")]  # a run before a setting: unset
    return [f"{k} {b.get(k) or '(none)'} -> {a.get(k) or '(none)'}" for k in changed]


def matrix_history(tracker: Tracker, limit: int = 50):
    """Every logged matrix, long form: one row per run, configuration and metric (for trend charts)."""
    rows = [
        {
            "run_id": r.run_id,
            "started": pd.to_datetime(r.start_time, unit="s"),
            "config": name.rpartition("/")[0] or "all",
            "metric": name.rpartition("/")[2],
            "value": value,
        }
        for r in tracker.recent(BENCHMARKS, limit)
        for name, value in r.metrics.items()
    ]
    return pd.DataFrame(rows, columns=["run_id", "started", "config", "metric", "value"])


def selection_from(
    results: dict[str, dict], reference: str, tolerance: float = 1.0, objective: str = "fastest", rule: str = "mean"
):
    """The optimal configuration among those with per-question F1 (llama.cpp has none): speed is the
    end-to-end tokens/s of a RAG answer, memory the peak (see engine.benchmark.selection)."""
    candidates = [
        Candidate(
            config=c,
            scores=tuple(r["scores"]["f1"]),
            speed=r["metrics"]["e2e_tok_s"],
            memory_gb=r["metrics"]["peak_rss_gb"],
        )
        for c, r in results.items()
        if r["scores"].get("f1")
    ]
    return select_config(candidates, reference, tolerance, objective, rule)


def matrix_results(tracker: Tracker, run_id: str) -> dict[str, dict]:
    """A logged matrix in :func:`run_matrix`'s form: metrics and per-question scores per configuration."""
    from mlflow.artifacts import download_artifacts

    metrics = matrix_metrics(tracker, run_id)
    with open(download_artifacts(run_id=run_id, artifact_path="scores.json", tracking_uri=tracker.uri)) as f:
        scores = json.load(f)
    return {c: {"metrics": metrics.get(c, {}), "scores": s} for c, s in scores.items()}


def bench_matrix(spec: BenchSpec, settings: Settings | None = None, tracker: Tracker | None = None, on_progress=None):
    """Run, compare, log: ``(run_id, markdown, regressions)``; regressions are against ``spec.baseline``."""
    settings = settings or load_settings()
    thresholds = parse_thresholds(spec.thresholds) if spec.thresholds else None  # bad input fails first
    tracker = tracker or Tracker(settings)
    baseline = matrix_metrics(tracker, spec.baseline) if spec.baseline else None
    results = run_matrix(spec, settings, on_progress)
    if on_progress:
        on_progress(0.97, "embedding and retrieval")
    extra = measure_retrieval(settings)
    deltas = degradation(results, spec.reference)
    run_id = log_matrix(tracker, spec, results, deltas, extra, environment())
    table = format_matrix(results, deltas, spec.reference)
    table += (
        f"\n\nEmbedding: {extra['embed_per_s']:.1f} passages/s; "
        f"retrieval: {extra['retrieval_ms']:.1f} ms per question (MiniLM, Chroma)."
    )
    found = []
    if baseline is not None and on_progress:
        for d in differences(tracker, run_id, spec.baseline):
            on_progress(1.0, f"note: the baseline differs in {d}")
    if baseline is not None:
        current = {c: r["metrics"] for c, r in results.items()} | {"": extra}
        found = regressions(compare_runs(current, baseline, thresholds))
    return run_id, table, found


def bench_job(args: dict, ctx) -> dict:
    """The background-job form of :func:`bench_matrix` (kind ``bench``)."""
    spec = BenchSpec.from_dict(args)
    run_id, table, found = bench_matrix(spec, on_progress=ctx.progress)
    ctx.set_run_id(run_id)
    ctx.log(table)
    for r in found:
        ctx.log(f"REGRESSION {r.describe()}")
    return {"run_id": run_id, "table": table, "regressions": [r.describe() for r in found]}
