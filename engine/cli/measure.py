"""The measuring subcommands of ``python -m engine``: ``bench`` (the benchmark matrix, exit 1 on a regression)
``ab`` (an A/B experiment with paired tests) and ``judge`` (the local judge on two variants of one)."""

from __future__ import annotations

import sys
from dataclasses import replace

from engine.ab import judging
from engine.ab.judging import format_judge, judge_file
from engine.ab.runner import format_result, run_experiment
from engine.ab.spec import ExperimentSpec, parse_variant
from engine.benchmark.matrix import BenchSpec
from engine.benchmark.runs import bench_matrix, matrix_results, selection_from
from engine.configs import add_config_argument
from engine.evaluation.judge import JudgeSpec
from engine.knobs import add_knob_arguments, knob_values, knobs_of
from engine.models.spec import MODEL_HELP
from engine.settings import load_settings
from engine.tracking import Tracker
from engine.write_policy import check_export_target, publish_file

# The matrix knobs the `bench` command reads as they are (the precisions are a comma-separated list).
BENCH_KNOBS = ("model", "adapter", "reference", "questions", "split", "llama_cpp", "baseline", "thresholds")
# The experiment knobs the `ab` command reads as they are (the name and the variants are its own flags).
AB_KNOBS = ("data", "dataset", "version", "limit", "mode", "kb", "parallel", "batch_size")


def add_bench_arguments(sub) -> None:
    """The ``bench`` subcommand's arguments."""
    be = sub.add_parser("bench", help="benchmark matrix: speed, memory, quality per precision (exit 1 on regression)")
    add_knob_arguments(be, BenchSpec, BENCH_KNOBS)
    be.add_argument(
        "--precisions",
        default="",
        help="comma-separated (default: float32, bfloat16, int8-dynamic, "
        "int4-weight, 4bit; also float16, 8bit, 4bit-fp4)",
    )
    be.add_argument("--tolerance", type=float, default=1.0, help="F1 points below the reference the pick may lose")
    be.add_argument("--objective", default="fastest", choices=["fastest", "smallest"])
    be.add_argument("--out", default="", help="also write the table to this new Markdown file")
    be.add_argument("--overwrite", action="store_true", help="--out may replace an earlier table the Studio wrote")
    add_config_argument(be, BenchSpec, bench_defaults)


def bench_defaults(spec: BenchSpec) -> dict:
    """The ``bench`` arguments' defaults with ``--config``: the file's settings."""
    return knob_values(BenchSpec, spec, BENCH_KNOBS) | {"precisions": ",".join(spec.precisions)}


def ab_defaults(spec: ExperimentSpec) -> dict:
    """The ``ab`` arguments' defaults with ``--config`` (not the variants: argparse would add the flags given to
    a default list, where they replace the file's variants; see :func:`ab_spec`)."""
    return {"name": spec.name, "split": spec.split} | knob_values(ExperimentSpec, spec, AB_KNOBS)


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
    add_knob_arguments(ab, ExperimentSpec, AB_KNOBS)
    knob = knobs_of(ExperimentSpec)["split"]
    ab.add_argument("--split", default=knob.default, choices=[*knob.choices, "all"], help=knob.help)
    add_config_argument(ab, ExperimentSpec, ab_defaults)
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


def bench_spec(a) -> BenchSpec:
    """The BenchSpec of parsed ``bench`` arguments (the ``--config`` file's, for the settings without a flag)."""
    precisions = tuple(p.strip() for p in a.precisions.split(",") if p.strip()) or BenchSpec.precisions
    base = getattr(a, "config_spec", None) or BenchSpec()
    return replace(base, precisions=precisions, **knob_values(BenchSpec, a, BENCH_KNOBS))


def ab_spec(a) -> ExperimentSpec:
    """The ExperimentSpec of parsed ``ab`` arguments: the ``--variant`` flags, else the ``--config`` file's."""
    variants = tuple(parse_variant(v) for v in a.variant) or getattr(getattr(a, "config_spec", None), "variants", ())
    split = "" if a.split == "all" else a.split
    return ExperimentSpec(name=a.name, variants=variants, split=split, **knob_values(ExperimentSpec, a, AB_KNOBS))


def run_bench(a) -> int:
    if a.out:
        check_export_target(a.out, a.overwrite)  # before the matrix runs, not after
    spec = bench_spec(a)
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
    spec = ab_spec(a)
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
