"""One model's quality at its deployments, paired by question: evaluations (MLflow run ids of ``engine eval``)
and A/B variants (``EXPERIMENT:VARIANT``), each against the first, the reference.

    STUDIO_DATA_DIR=... .venv/bin/python bench/deployment_quality.py \\
        "float32=20261207-074805-r7-int4:float32" \\
        "int4-weight, merged=20261207-074805-r7-int4:int4-weight" \\
        "int4-weight, merged, quantization-aware=717768412b284557b84fa41ea169aa11" --out table.md

A row: F1 and EM, their paired difference from the reference with a BCa bootstrap 95% interval, and how many
answers are the reference's word for word. Every source must hold the same questions (the same split and
limit); docs/performance.md's adapter tables were made with it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit  # noqa: E402


def answers(source: str, settings, tracker) -> dict[str, tuple[float, float, str]]:
    """Per question id: (F1, EM, both 0..100, prediction) of an evaluation run or an A/B variant."""
    from engine.ab.results import load_result
    from engine.errors import InputError
    from engine.evaluation.history import per_question

    if ":" in source:
        experiment, variant = source.rsplit(":", 1)
        variants = load_result(experiment, settings).variants
        if variant not in variants:
            raise InputError(f"experiment {experiment!r} has no variant {variant!r} (it has {', '.join(variants)})")
        rows = [(r["item_id"], r) for r in variants[variant].rows]
    else:
        rows = [(r["id"], r) for r in per_question(tracker, source).to_dict("records")]
    return {key: (float(r["f1"]), float(r["em"]), str(r["prediction"])) for key, r in rows}


def table(sources: list[tuple[str, str]]) -> str:
    from engine.errors import InputError
    from engine.settings import load_settings
    from engine.stats import paired_bootstrap
    from engine.tracking import Tracker

    settings = load_settings()
    tracker = Tracker(settings)
    found = {label: answers(source, settings, tracker) for label, source in sources}
    (reference, ref), *others = found.items()
    keys = list(ref)
    lines = [
        f"| deployment | F1 | F1 - {reference} [95% CI] | EM | EM - {reference} [95% CI] | answers identical |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| {reference} | {mean(ref, keys, 0):.1f} | reference | {mean(ref, keys, 1):.1f} | reference | {len(keys)} |",
    ]
    for label, rows in others:
        if sorted(rows) != sorted(keys):
            raise InputError(f"{label!r} answered other questions than {reference!r}: pair the same split and limit")
        cells = [label]
        for i in (0, 1):  # F1, then EM: the mean and its paired difference
            d = paired_bootstrap([ref[k][i] for k in keys], [rows[k][i] for k in keys])
            cells += [f"{mean(rows, keys, i):.1f}", f"{d.mean:+.1f} [{d.low:+.1f}, {d.high:+.1f}]"]
        cells.append(str(sum(rows[k][2] == ref[k][2] for k in keys)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([f"{len(keys)} questions, paired by question.", "", *lines, ""])


def mean(rows: dict, keys: list[str], i: int) -> float:
    return sum(rows[k][i] for k in keys) / len(keys)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sources", nargs="+", help="LABEL=RUN_ID or LABEL=EXPERIMENT:VARIANT; the first is the reference")
    p.add_argument("--out", help="append the table to this file")
    a = p.parse_args()
    sources = [tuple(s.split("=", 1)) for s in a.sources]
    if len(sources) < 2 or any(len(s) != 2 or not all(s) for s in sources):
        p.error("give two or more LABEL=SOURCE")
    from mlflow.exceptions import MlflowException

    from engine.errors import InputError

    try:
        emit(table(sources), a.out)
    except (InputError, MlflowException) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
