"""What an A/B experiment produced: each variant's per-item answers, scores and latency, saved on disk.

An experiment lives in ``<data_dir>/experiments/<id>/``: ``experiment.json`` (the spec, each
variant's summary, the MLflow run) and ``<variant>.jsonl`` (one row per evaluation item, in the
evaluation set's order, so that row ``i`` of every variant is the same item: the pairing that
the paired statistics need).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import InputError, NotFoundError
from engine.names import check_safe_name
from engine.settings import Settings
from engine.write_policy import write_atomic

ROW_FIELDS = ("item_id", "question", "gold", "prediction", "em", "f1", "latency_s", "prompt_tokens", "new_tokens")


@dataclass(frozen=True)
class VariantResult:
    """One variant's answers to every item (``rows``: dicts with ROW_FIELDS, and ``raw`` / ``context`` /
    ``messages`` where known) and what running it cost."""

    name: str
    spec: dict  # the VariantSpec as a dict
    rows: list[dict] = field(repr=False)
    load_s: float = 0.0
    peak_memory_gb: float = 0.0
    weights_gb: float = 0.0
    device: str = "cpu"
    seconds: float = 0.0  # wall time answering all items

    def scores(self, metric: str) -> list[float]:
        """The per-item ``metric`` (``em``, ``f1``, ``latency_s``...) in item order."""
        return [float(r[metric]) for r in self.rows]

    def summary(self) -> dict[str, float]:
        """Means of the scores, latency percentiles and the cost figures."""
        latency = np.asarray(self.scores("latency_s")) if self.rows else np.zeros(1)
        n = max(1, len(self.rows))
        return {
            "em": sum(self.scores("em")) / n,
            "f1": sum(self.scores("f1")) / n,
            "latency_p50_s": float(np.percentile(latency, 50)),
            "latency_p95_s": float(np.percentile(latency, 95)),
            "new_tokens": sum(self.scores("new_tokens")) / n,
            "load_s": self.load_s,
            "peak_memory_gb": self.peak_memory_gb,
            "weights_gb": self.weights_gb,
            "items": float(len(self.rows)),
        }


@dataclass
class ExperimentResult:
    """All variants of one experiment, keyed by variant name, in the spec's order."""

    id: str
    spec: dict  # the ExperimentSpec as a dict
    variants: dict[str, VariantResult]
    created: str = ""
    run_id: str | None = None
    report: object = field(default=None, repr=False, compare=False)  # the Report, once made (saved on its own)

    def item_ids(self) -> list[str]:
        first = next(iter(self.variants.values()), None)
        return [r["item_id"] for r in first.rows] if first else []


def experiments_dir(settings: Settings) -> Path:
    return settings.data_dir / "experiments"


def save_result(result: ExperimentResult, settings: Settings) -> Path:
    """Write ``result`` under its id (the variants' rows first, the summary last: a folder without
    ``experiment.json`` is an unfinished experiment)."""
    folder = experiments_dir(settings) / check_safe_name(result.id, "experiment")
    folder.mkdir(parents=True, exist_ok=True)
    summary = {"id": result.id, "spec": result.spec, "created": result.created, "run_id": result.run_id, "variants": {}}
    for name, variant in result.variants.items():
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in variant.rows)
        write_atomic(folder / f"{check_safe_name(name, 'variant')}.jsonl", lines)
        summary["variants"][name] = {
            "spec": variant.spec,
            "load_s": variant.load_s,
            "peak_memory_gb": variant.peak_memory_gb,
            "weights_gb": variant.weights_gb,
            "device": variant.device,
            "seconds": variant.seconds,
        }
    write_atomic(folder / "experiment.json", json.dumps(summary, indent=2))
    return folder


def load_result(experiment_id: str, settings: Settings) -> ExperimentResult:
    """The saved experiment ``experiment_id``; NotFoundError if there is none."""
    folder = experiments_dir(settings) / check_safe_name(experiment_id, "experiment")
    if not (folder / "experiment.json").is_file():
        raise NotFoundError(f"No finished experiment {experiment_id!r}.")
    summary = json.loads((folder / "experiment.json").read_text(encoding="utf-8"))
    variants = {}
    for name, info in summary["variants"].items():
        path = folder / f"{name}.jsonl"
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        variants[name] = VariantResult(
            name=name,
            spec=info["spec"],
            rows=rows,
            load_s=info["load_s"],
            peak_memory_gb=info["peak_memory_gb"],
            weights_gb=info["weights_gb"],
            device=info["device"],
            seconds=info["seconds"],
        )
    result = ExperimentResult(
        id=summary["id"], spec=summary["spec"], variants=variants, created=summary["created"], run_id=summary["run_id"]
    )
    check_paired(result)
    return result


def check_paired(result: ExperimentResult) -> None:
    """Every variant answered the same items in the same order (InputError otherwise)."""
    ids = result.item_ids()
    for name, variant in result.variants.items():
        if [r["item_id"] for r in variant.rows] != ids:
            raise InputError(f"Variant {name!r} did not answer the same items as the others: results cannot be paired.")


def list_results(settings: Settings) -> list[str]:
    """Ids of the finished experiments, newest first."""
    root = experiments_dir(settings)
    found = [p for p in root.glob("*/experiment.json")] if root.is_dir() else []
    return [p.parent.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]
