"""Running an A/B experiment: each variant answers the same items in its own fresh process, the answers are
paired item by item, tested (paired tests, Holm-corrected), saved and logged to MLflow (``studio-ab``).

A fresh (spawned) process per variant makes its load time and peak memory its own, as in the benchmark
matrix (:mod:`engine.benchmark.matrix`). Variants may run at once, each in its own process, where the
memory budget and the cores allow it (:func:`plan_parallel`); latencies measured side by side include the
competition for memory bandwidth, so compare latencies of variants that ran the same way.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pandas as pd

from engine.ab.report import build_report, log_report, save_report
from engine.ab.results import (
    ExperimentResult,
    VariantResult,
    check_paired,
    experiments_dir,
    save_result,
)
from engine.ab.spec import ExperimentSpec, VariantSpec, to_model_spec
from engine.ab.workers import check_variants, experiment_items, run_in_processes
from engine.errors import InputError, StudioError
from engine.machine import estimate_footprint, read_memory
from engine.models.catalog import BUNDLED, CatalogEntry
from engine.models.downgrade import budget_gb
from engine.models.preflight import model_shape, precision_of
from engine.models.spec import resolve_device
from engine.names import check_safe_name
from engine.settings import Settings, load_settings
from engine.stats import compare_variants
from engine.tracking import AB, Tracker, plain_json

CORES_PER_PROCESS = 2  # a CPU process needs at least this many cores for running side by side to pay
EMBEDDER_GB = 0.25  # the embedding model a retrieving variant loads beside its language model
TESTS = ("mcnemar", "wilcoxon", "permutation", "t")

Progress = Callable[[float, str], None]


# --- which variants run at once ----------------------------------------------------------------------------


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def variant_device(variant: VariantSpec) -> str:
    return resolve_device(to_model_spec(variant).device)


def estimate_gb(variant: VariantSpec, spec: ExperimentSpec, settings: Settings, device: str) -> float:
    """The pre-flight memory estimate of one variant's process: its model at its precision with the KV cache
    of a batch, the runtime, and the embedding model where it retrieves."""
    model = to_model_spec(variant)
    known = [e for e in BUNDLED if e.source == model.source and e.gguf_file == model.gguf_file]
    entry = known[0] if known else CatalogEntry(model.name, model.source, model.gguf_file)
    footprint = estimate_footprint(model_shape(entry, settings), precision_of(model, device), spec.batch_size)
    return footprint.total_gb + (EMBEDDER_GB if spec.mode != "closed-book" else 0.0)


def plan_parallel(spec: ExperimentSpec, settings: Settings) -> tuple[list[list[str]], str]:
    """Groups of variants to run at once (each in its own process), in the spec's order, and why.

    ``never``: one by one; ``always``: all at once. ``auto``: a variant joins the group before it while the
    pre-flight memory estimates of the group fit the memory budget of their device (the free memory less a
    margin, as for a model load: :func:`engine.models.downgrade.budget_gb`) and, for processes on the CPU,
    there are at least two cores per process: two processes on two cores only compete for them (each would
    run at half speed, and their latencies would measure the competition)."""
    names = [v.name for v in spec.variants]
    if spec.parallel == "never":
        return [[n] for n in names], "one variant at a time (parallel: never)"
    if spec.parallel == "always":
        return [names], f"all {len(names)} variants at once (parallel: always)"
    try:
        devices = {v.name: variant_device(v) for v in spec.variants}
        needs = {v.name: estimate_gb(v, spec, settings, devices[v.name]) for v in spec.variants}
    except (InputError, OSError, ValueError) as e:
        return [[n] for n in names], f"one variant at a time: the memory of a variant cannot be estimated ({e})"
    budgets = {d: budget_gb(read_memory(d)) for d in sorted(set(devices.values()))}
    cores = usable_cores()

    def why_not(group: list[str]) -> str:
        """Why ``group`` cannot run at once ('' when it can)."""
        on_cpu = sum(devices[n] == "cpu" for n in group)
        if on_cpu > 1 and cores < CORES_PER_PROCESS * on_cpu:
            return (
                f"{cores} CPU cores cannot give {on_cpu} processes {CORES_PER_PROCESS} cores each (two "
                "processes on two cores only compete for them)"
            )
        for device, budget in budgets.items():
            need = sum(needs[n] for n in group if devices[n] == device)
            if need > budget:
                return f"{', '.join(group)} need about {need:.2f} GB together, more than the {budget:.2f} GB budget"
        return ""

    groups: list[list[str]] = []
    refusal = ""
    for name in names:
        if groups and not (reason := why_not([*groups[-1], name])):
            groups[-1].append(name)
        else:
            if groups and not refusal:
                refusal = reason
            groups.append([name])
    budget = ", ".join(f"{b:.2f} GB on {d}" for d, b in budgets.items())
    if len(groups) == 1:
        total = sum(needs.values())
        return groups, (
            f"all {len(names)} variants at once: about {total:.2f} GB together within the budget "
            f"({budget}), {cores} cores"
        )
    if len(groups) == len(names):
        return groups, f"one variant at a time: {refusal}"
    listed = "; ".join(" + ".join(g) for g in groups)
    return groups, f"{len(groups)} groups ({listed}): {refusal}"


def threads_for(group: list[str], spec: ExperimentSpec) -> int | None:
    """torch threads for each process of a group run at once on the CPU: the cores shared out (None: one
    process, torch's own choice)."""
    if len(group) < 2:
        return None
    on_cpu = sum(variant_device(spec.variant(n)) == "cpu" for n in group)
    return max(1, usable_cores() // max(1, on_cpu))


# --- the experiment ----------------------------------------------------------------------------------------


def new_id(name: str, settings: Settings) -> str:
    """A timestamp and a slug of the experiment's name, unique among the saved experiments: a name that
    :func:`engine.names.check_safe_name` accepts whatever the experiment is called (it is made after the
    variants ran, so a name refused there would lose their answers)."""
    slug = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "-", name))[:40].strip("-._") or "ab"
    base = f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{slug}"
    found, n = base, 1
    while (experiments_dir(settings) / found).exists():
        n += 1
        found = f"{base}-{n}"
    return check_safe_name(found, "experiment")


def compare_result(result: ExperimentResult, resamples: int = 10_000, seed: int = 0):
    """The paired tests of every variant against the first (and of every pair, with three or more): F1 for the
    continuous tests and the bootstrap interval, exact match (0/1) for McNemar; Holm-corrected per test."""
    names = list(result.variants)
    scores = {n: result.variants[n].scores("f1") for n in names}
    em = {n: [1.0 if s >= 50 else 0.0 for s in result.variants[n].scores("em")] for n in names}  # 0/100 -> 0/1
    return compare_variants(scores, em, names[0], resamples=resamples, seed=seed)


def comparison_metrics(comparison) -> dict[str, float]:
    """``<B> vs <A>/f1_diff`` (and ``_low`` / ``_high``: the bootstrap interval, F1 points), and per test
    ``.../<test>_p``, ``_p_holm`` and ``_effect``; undefined or infinite figures are left out."""
    metrics = {}
    for label, found in comparison.comparisons.items():
        boot = found.bootstrap
        metrics |= {f"{label}/f1_diff": boot.mean, f"{label}/f1_diff_low": boot.low, f"{label}/f1_diff_high": boot.high}
        for test, outcome in found.tests.items():
            metrics[f"{label}/{test}_p"] = outcome.p_value
            metrics[f"{label}/{test}_p_holm"] = comparison.adjusted[test][label].adjusted
            metrics[f"{label}/{test}_effect"] = outcome.effect
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def log_experiment(tracker: Tracker, result: ExperimentResult, comparison, plan: str = "") -> str:
    """One MLflow run in ``studio-ab``: the spec as params, each variant's summary as ``<variant>/<metric>``,
    the paired tests (see :func:`comparison_metrics`), each variant's rows as a table artifact
    (``variants/<name>.json``) and the full comparison as ``comparisons.json``."""
    spec = ExperimentSpec.from_dict(result.spec)
    items = len(result.item_ids())
    params = spec.flat() | {"experiment_id": result.id, "items": items, "reference": spec.reference, "plan": plan}
    name = f"{spec.name}: {' vs '.join(result.variants)} n={items}"
    run_id = tracker.start(AB, name, params, {"experiment_id": result.id})
    metrics = {f"{n}/{k}": v for n, variant in result.variants.items() for k, v in variant.summary().items()}
    tracker.log_metrics(run_id, {k: v for k, v in metrics.items() if math.isfinite(v)} | comparison_metrics(comparison))
    for n, variant in result.variants.items():
        tracker.log_table(run_id, pd.DataFrame(variant.rows), f"variants/{n}.json")
    tracker.log_dict(run_id, plain_json(comparison), "comparisons.json")
    tracker.log_config(run_id, spec)
    tracker.end(run_id)
    return run_id


def run_experiment(
    spec: ExperimentSpec,
    settings: Settings | None = None,
    tracker: Tracker | None = None,
    on_progress: Progress | None = None,
    check_cancelled: Callable[[], None] | None = None,
    run_group: Callable[..., dict[str, dict]] | None = None,
) -> ExperimentResult:
    """Run every variant on the same items (in the groups of :func:`plan_parallel`), check the pairing, save the
    experiment, and log it to MLflow when a tracker is given; returns it with its ``run_id``.

    ``on_progress(fraction, message)`` follows the variants' items; ``check_cancelled()`` is called between
    variants and while they run (what it raises stops them). ``run_group(payloads, on_progress,
    check_cancelled)`` runs one group (default :func:`run_in_processes`: fresh processes)."""
    settings = settings or load_settings()
    run_group = run_group or run_in_processes
    items, spec = experiment_items(spec, settings)
    check_variants(spec, settings)
    groups, plan = plan_parallel(spec, settings)
    total = len(items) * len(spec.variants)
    done: dict[str, int] = {}

    def report(name: str, answered: int, _of: int) -> None:
        done[name] = answered
        if on_progress:
            on_progress(min(0.99, sum(done.values()) / total), f"{name}: {answered}/{len(items)} items")

    if on_progress:
        on_progress(0.0, f"plan: {plan}")
    shared = {
        "experiment": spec.to_dict(),
        "data_dir": str(settings.data_dir),
        "shared_dir": str(settings.shared_data_dir),
        "items": items,
    }
    answered: dict[str, dict] = {}
    for group in groups:
        if check_cancelled:
            check_cancelled()
        threads = threads_for(group, spec)
        if on_progress:
            on_progress(min(0.99, sum(done.values()) / total), f"loading {', '.join(group)}")
        answered |= run_group([shared | {"variant": n, "threads": threads} for n in group], report, check_cancelled)
    variants = {v.name: VariantResult(v.name, v.to_dict(), **answered[v.name]) for v in spec.variants}
    result = ExperimentResult(
        id=new_id(spec.name, settings),
        spec=spec.to_dict(),
        variants=variants,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    check_paired(result)
    if result.item_ids() != [it.id for it in items]:
        raise StudioError("The variants did not answer the experiment's items in order: results cannot be paired.")
    save_result(result, settings)  # the answers are kept even if logging fails
    # The paired tests are computed once: logged, put in the report, saved with it; the page reads the saved one.
    paired = compare_result(result)
    if tracker is not None:
        result.run_id = log_experiment(tracker, result, paired, plan)
        save_result(result, settings)
    result.report = build_report(result, paired=paired)
    save_report(result.report, settings)
    if tracker is not None:
        log_report(tracker, result.run_id, result.report)  # report.md and report.html as artifacts
    if on_progress:
        on_progress(1.0, f"experiment {result.id} done")
    return result


# --- reading it ---------------------------------------------------------------------------------------------


def format_result(result: ExperimentResult, comparison=None) -> str:
    """Each variant's EM / F1 / latency / cost, then the paired tests against the reference, as text."""
    head = (
        f"{'variant':<20} {'n':>4} {'EM':>6} {'F1':>6} {'p50 s':>7} {'p95 s':>7} {'load s':>7} {'peak GB':>8}  device"
    )
    lines = [head]
    for name, variant in result.variants.items():
        s = variant.summary()
        lines.append(
            f"{name:<20} {int(s['items']):>4} {s['em']:>6.1f} {s['f1']:>6.1f} {s['latency_p50_s']:>7.3f} "
            f"{s['latency_p95_s']:>7.3f} {s['load_s']:>7.1f} {s['peak_memory_gb']:>8.2f}  "
            f"{variant.device}"
        )
    if comparison is not None:
        lines.append(f"\nPaired tests (B - A; Holm-adjusted p in brackets, alpha {comparison.alpha}):")
        names = {"mcnemar": "McNemar EM", "wilcoxon": "Wilcoxon F1", "permutation": "permutation F1", "t": "t F1"}
        for label, found in comparison.comparisons.items():
            boot = found.bootstrap
            tests = "; ".join(
                f"{names[t]} p={found.tests[t].p_value:.3g} [{comparison.adjusted[t][label].adjusted:.3g}]"
                for t in TESTS
            )
            lines.append(f"{label}: F1 {boot.mean:+.1f} [{boot.low:+.1f}, {boot.high:+.1f}]; {tests}")
    return "\n".join(lines)


def ab_job(args: dict, ctx) -> dict:
    """The background-job form of :func:`run_experiment` (kind ``ab``): ``args`` is the ExperimentSpec as a dict."""
    settings = load_settings()
    spec = ExperimentSpec.from_dict(args)
    result = run_experiment(
        spec, settings, Tracker(settings), on_progress=ctx.progress, check_cancelled=ctx.check_cancelled
    )
    if result.run_id:
        ctx.set_run_id(result.run_id)
    ctx.log(f"experiment {result.id}\n{format_result(result, result.report.paired)}")
    return {"id": result.id, "run_id": result.run_id, "summary": {n: v.summary() for n, v in result.variants.items()}}
