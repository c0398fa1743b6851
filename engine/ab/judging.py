"""The local judge on a saved A/B experiment: two variants' answers judged in both orders, the verdicts kept
beside the experiment (``judge-<a>-<b>.json``), logged to the experiment's MLflow run, and in its report.

A judge of a pair answers for both orders of the pair: judging ``b`` against ``a`` after ``a`` against ``b``
replaces the earlier file, so an experiment holds at most one judgement per pair of variants.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from engine.ab.report import build_report, log_report, save_report
from engine.ab.results import check_paired, experiments_dir, load_result
from engine.errors import InputError
from engine.evaluation.judge import DEFAULT_JUDGE, JudgeResult, JudgeSpec, judge_pairs, load_judge
from engine.job_kinds import register_job_kind
from engine.names import check_safe_name
from engine.settings import Settings, load_settings
from engine.tracking import AB, Tracker, plain_json
from engine.write_policy import write_atomic

PREFIX = "judge-"


def judge_file(experiment_id: str, a: str, b: str, settings: Settings) -> Path:
    """Where the judgement of the pair ``a``, ``b`` (either order) of an experiment is kept."""
    first, second = sorted((check_safe_name(a, "variant"), check_safe_name(b, "variant")))
    return experiments_dir(settings) / check_safe_name(experiment_id, "experiment") / f"{PREFIX}{first}-{second}.json"


def save_judge(
    experiment_id: str, judge: JudgeResult, spec: JudgeSpec, with_reference: bool, settings: Settings
) -> Path:
    """Keep ``judge`` (with how it was judged) beside its experiment; returns the file."""
    path = judge_file(experiment_id, judge.a, judge.b, settings)
    data = {
        "experiment": experiment_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "spec": asdict(spec),
        "with_reference": with_reference,
        "result": plain_json(asdict(judge)),
    }
    write_atomic(path, json.dumps(data, indent=1, ensure_ascii=False))
    return path


def load_judges(experiment_id: str, settings: Settings) -> list[JudgeResult]:
    """The saved judgements of an experiment (none: an empty list), in file-name order."""
    folder = experiments_dir(settings) / check_safe_name(experiment_id, "experiment")
    names = {f.name for f in fields(JudgeResult)}
    found = []
    for path in sorted(folder.glob(f"{PREFIX}*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))["result"]
        found.append(JudgeResult(**{k: v for k, v in data.items() if k in names}))
    return found


def verdicts_for(judges: list[JudgeResult], a: str, b: str) -> dict[str, str] | None:
    """Item id -> the judge's verdict (``a``, ``b`` or ``'tie'``) for the pair ``a``, ``b`` in either order;
    None when that pair was not judged."""
    for judge in judges:
        if {judge.a, judge.b} == {a, b}:
            names = {"A": judge.a, "B": judge.b, "tie": "tie"}
            ids = judge.item_ids or [str(i) for i in range(judge.n)]
            return {i: names[v] for i, v in zip(ids, judge.verdicts, strict=True)}
    return None


def judge_metrics(judge: JudgeResult) -> dict[str, float]:
    """``judge/<b> vs <a>/<figure>``: the counts and rates of a judgement (undefined rates left out)."""
    label = f"judge/{judge.b} vs {judge.a}"
    figures = {k: v for k, v in judge.summary().items() if k not in ("a", "b", "model")}
    return {f"{label}/{k}": float(v) for k, v in figures.items() if math.isfinite(float(v))}


def log_judge(tracker: Tracker, result, judge: JudgeResult, settings: Settings) -> str:
    """Log ``judge`` (saved already) to the experiment's MLflow run (a new ``studio-ab`` run when it has none):
    its figures, its per-item verdicts and the report rebuilt with every saved judgement; returns the run id."""
    run_id = result.run_id
    if not run_id:
        run_id = tracker.start(
            AB,
            f"judge {judge.a} vs {judge.b} on {result.id}",
            {"experiment_id": result.id},
            {"experiment_id": result.id},
        )
    tracker.log_metrics(run_id, judge_metrics(judge))
    tracker.log_dict(
        run_id, {"summary": plain_json(judge.summary()), "rows": judge.rows()}, f"{PREFIX}{judge.a}-{judge.b}.json"
    )
    # The judgement is saved already: the report, saved again and logged, takes every saved one.
    report = build_report(result, judge=load_judges(result.id, settings))
    save_report(report, settings)
    if result.run_id:
        log_report(tracker, run_id, report)
    else:
        tracker.end(run_id)
    return run_id


def check_pair(result, a: str, b: str) -> None:
    """InputError unless ``a`` and ``b`` are two different variants of the experiment ``result``."""
    for name in (a, b):
        if name not in result.variants:
            raise InputError(f"No variant {name!r} in experiment {result.id!r}: {', '.join(result.variants)}.")
    if a == b:
        raise InputError("The judge compares two different variants: pick two.")


def run_judge(
    experiment_id: str,
    a: str,
    b: str,
    spec: JudgeSpec = DEFAULT_JUDGE,
    with_reference: bool = True,
    batch_size: int = 8,
    settings: Settings | None = None,
    tracker: Tracker | None = None,
    on_progress: Callable[[float, str], None] | None = None,
    generator=None,
) -> JudgeResult:
    """Judge variant ``a`` against ``b`` of a saved experiment with the judge model of ``spec`` (or the
    ``generator`` given), save the verdicts beside it and log them when a ``tracker`` is given."""
    settings = settings or load_settings()
    result = load_result(experiment_id, settings)
    check_pair(result, a, b)
    if on_progress:
        on_progress(0.0, f"loading the judge ({spec.model or 'the bundled model'})")
    generator = generator or load_judge(spec, settings)

    def report(done: int, total: int) -> None:
        if on_progress:
            on_progress(min(0.99, done / max(1, total)), f"{done}/{total} judgements")

    judge = judge_experiment(generator, result, a, b, batch_size, spec, with_reference, report)
    save_judge(experiment_id, judge, spec, with_reference, settings)  # kept even if logging fails
    if tracker is not None:
        log_judge(tracker, result, judge, settings)
    if on_progress:
        on_progress(1.0, f"{judge.a} {judge.wins_a}, {judge.b} {judge.wins_b}, ties {judge.ties}")
    return judge


def format_judge(judge: JudgeResult) -> str:
    """A judgement's outcome in one line."""
    return (
        f"judge {judge.model or ''}: {judge.a} preferred {judge.wins_a}, {judge.b} preferred {judge.wins_b}, "
        f"ties {judge.ties} of {judge.n}; position-flip rate {100 * judge.flip_rate:.0f}%, "
        f"position 1 picked {100 * judge.position_1_rate:.0f}% of decisive judgements"
    )


def judge_job(args: dict, ctx) -> dict:
    """The background-job form of :func:`run_judge` (kind ``judge``): ``experiment``, ``a``, ``b``, and
    optionally ``model``, ``with_reference``, ``batch_size``."""
    settings = load_settings()
    spec = JudgeSpec(model=str(args.get("model", "")).strip())

    def progress(fraction: float, message: str) -> None:
        ctx.check_cancelled()
        ctx.progress(fraction, message)

    judge = run_judge(
        args["experiment"],
        args["a"],
        args["b"],
        spec,
        bool(args.get("with_reference", True)),
        int(args.get("batch_size", 8)),
        settings,
        Tracker(settings),
        progress,
    )
    ctx.log(format_judge(judge))
    return {"experiment": args["experiment"], "summary": plain_json(judge.summary())}


def judge_experiment(
    generator,
    result,
    a: str,
    b: str,
    batch_size: int = 8,
    spec: JudgeSpec = DEFAULT_JUDGE,
    with_reference: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> JudgeResult:
    """Judge variant ``a`` against ``b`` of an ExperimentResult, item by item (the rows are paired by
    position, which :func:`engine.ab.results.check_paired` guarantees); the gold answer is the reference
    when ``with_reference``."""
    check_pair(result, a, b)
    check_paired(result)
    rows_a, rows_b = result.variants[a].rows, result.variants[b].rows
    items = [
        (ra["question"], str(ra["prediction"]), str(rb["prediction"]), str(ra["gold"]) if with_reference else "")
        for ra, rb in zip(rows_a, rows_b, strict=True)
    ]
    ids = [str(r["item_id"]) for r in rows_a]
    return judge_pairs(generator, items, batch_size, spec, a, b, ids, on_progress)


@dataclass(frozen=True)
class JudgeRun:
    """A judge job: variant ``a`` against ``b`` of an experiment, by ``model`` (empty: the bundled one)."""

    experiment: str
    a: str
    b: str
    model: str = ""
    with_reference: bool = True  # the judge sees the correct answer


register_job_kind("judge", judge_job, JudgeRun)
