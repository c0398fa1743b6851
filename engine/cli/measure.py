"""The measuring subcommands of ``python -m engine``: ``bench`` (the benchmark matrix, exit 1 on a regression)
``ab`` (an A/B experiment with paired tests) and ``judge`` (the local judge on two variants of one)."""

from __future__ import annotations

import sys

from engine.ab import judging
from engine.ab.judging import format_judge, judge_file
from engine.ab.runner import format_result, run_experiment
from engine.ab.spec import ExperimentSpec, parse_variant
from engine.benchmark.matrix import BenchSpec
from engine.benchmark.runs import bench_matrix, matrix_results, selection_from
from engine.evaluation.judge import JudgeSpec
from engine.models.spec import MODEL_HELP
from engine.settings import load_settings
from engine.tracking import Tracker
from engine.write_policy import check_export_target, publish_file


def add_bench_arguments(sub) -> None:
    """The ``bench`` subcommand's arguments."""
    be = sub.add_parser("bench", help="benchmark matrix: speed, memory, quality per precision (exit 1 on regression)")
    be.add_argument("--model", default="", help=MODEL_HELP)
    be.add_argument(
        "--precisions",
        default="",
        help="comma-separated (default: float32, bfloat16, int8-dynamic, "
        "int4-weight, 4bit; also float16, 8bit, 4bit-fp4)",
    )
    be.add_argument("--reference", default="float32", help="the precision quality differences are against")
    be.add_argument("--questions", type=int, default=100, help="HotpotQA questions for EM/F1 (0: skip quality)")
    be.add_argument("--split", default="test", choices=["", "train", "validation", "test"])
    be.add_argument("--no-llama-cpp", action="store_true", help="leave llama.cpp out of the matrix")
    be.add_argument("--baseline", default="", help="an earlier matrix's MLflow run id: regressions exit with 1")
    be.add_argument("--thresholds", default="", help="regression thresholds, e.g. f1=0.5,decode_tok_s=0.1")
    be.add_argument("--tolerance", type=float, default=1.0, help="F1 points below the reference the pick may lose")
    be.add_argument("--objective", default="fastest", choices=["fastest", "smallest"])
    be.add_argument("--out", default="", help="also write the table to this new Markdown file")
    be.add_argument("--overwrite", action="store_true", help="--out may replace an earlier table the Studio wrote")


def add_ab_arguments(sub) -> None:
    """The ``ab`` subcommand's arguments."""
    ab = sub.add_parser("ab", help="A/B experiment: variants answer the same items; paired tests (see docs)")
    ab.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="KEY=VALUE,...",
        help="a variant, e.g. name=int4,quantization=int4-weight (keys: name, model, quantization, dtype, "
        "adapter, prompt, k, temperature, seed); two or more, the first is the reference",
    )
    ab.add_argument("--name", default="ab", help="the experiment's name")
    ab.add_argument("--data", default="hotpotqa-dev.jsonl", help="path, or a file in the shared data folder")
    ab.add_argument(
        "--split",
        default="test",
        choices=["", "all", "train", "validation", "test"],
        help="the fixed HotpotQA split (or the dataset's split); '' or all: no split",
    )
    ab.add_argument("--dataset", default="", help="a saved dataset version's records instead of HotpotQA")
    ab.add_argument("--version", default="", help="the dataset's version (default: its newest)")
    ab.add_argument("--limit", type=int, default=100, help="at most N items")
    ab.add_argument(
        "--mode",
        default="distractor",
        choices=["closed-book", "distractor", "kb"],
        help="kb: every variant retrieves from --kb, as the Query page does",
    )
    ab.add_argument("--kb", default="", help="the knowledge base of --mode kb")
    ab.add_argument(
        "--parallel",
        default="auto",
        choices=["auto", "always", "never"],
        help="auto: variants run at once where memory and cores allow",
    )
    ab.add_argument("--batch-size", type=int, default=1, help="1: each item's latency is its own")
    ab.add_argument("--no-mlflow", action="store_true", help="do not log the experiment to MLflow")
    ju = sub.add_parser("judge", help="a local model judges two variants of a saved A/B experiment, both orders")
    ju.add_argument("experiment", help="the experiment's id (as printed by `ab`)")
    ju.add_argument("a", help="the first variant")
    ju.add_argument("b", help="the second variant")
    ju.add_argument("--model", default="", help="the judge's model: " + MODEL_HELP)
    ju.add_argument("--no-reference", action="store_true", help="do not show the judge the correct answer")
    ju.add_argument("--batch-size", type=int, default=8)
    ju.add_argument("--no-mlflow", action="store_true", help="do not log the verdicts to MLflow")


def _progress(fraction: float, message: str) -> None:
    print(f"[{100 * fraction:3.0f}%] {message}", file=sys.stderr, flush=True)


def run_bench(a) -> int:
    precisions = tuple(p.strip() for p in a.precisions.split(",") if p.strip()) or BenchSpec.precisions
    if a.out:
        check_export_target(a.out, a.overwrite)  # before the matrix runs, not after
    spec = BenchSpec(
        model=a.model,
        precisions=precisions,
        reference=a.reference,
        questions=a.questions,
        split=a.split,
        llama_cpp=not a.no_llama_cpp,
        baseline=a.baseline,
        thresholds=a.thresholds,
    )
    run_id, table, found = bench_matrix(spec, on_progress=lambda f, m: print(f"[{100 * f:3.0f}%] {m}", flush=True))
    print(table)
    if spec.questions:
        chosen = selection_from(
            matrix_results(Tracker(load_settings()), run_id), spec.reference, a.tolerance, a.objective
        )
        print(f"\nPick: {chosen.explanation}")
    if a.out:
        publish_file(a.out, table + "\n", a.overwrite)
    print(f"MLflow run {run_id}")
    for r in found:
        print(f"REGRESSION {r.describe()}")
    return 1 if found else 0


def run_ab(a) -> int:
    spec = ExperimentSpec(
        name=a.name,
        variants=tuple(parse_variant(v) for v in a.variant),
        data=a.data,
        split="" if a.split == "all" else a.split,
        dataset=a.dataset,
        version=a.version,
        limit=a.limit,
        mode=a.mode,
        kb=a.kb,
        parallel=a.parallel,
        batch_size=a.batch_size,
    )
    settings = load_settings()
    tracker = None if a.no_mlflow else Tracker(settings)

    result = run_experiment(spec, settings, tracker, on_progress=_progress)
    print(format_result(result, result.report.paired))
    print(f"\nexperiment {result.id}" + (f", MLflow run {result.run_id}" if result.run_id else ""))
    return 0


def run_judge(a) -> int:
    settings = load_settings()
    spec = JudgeSpec(model=a.model.strip())
    tracker = None if a.no_mlflow else Tracker(settings)
    judge = judging.run_judge(
        a.experiment, a.a, a.b, spec, not a.no_reference, a.batch_size, settings, tracker, _progress
    )
    print(format_judge(judge))
    print(f"verdicts: {judge_file(a.experiment, a.a, a.b, settings)}")
    return 0
