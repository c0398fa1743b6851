"""Regression detection: a benchmark run compared metric by metric against a baseline run.

Each metric has an explicit rule (which direction is better, how large a change counts): speed and
memory metrics use a relative threshold, answer quality (EM/F1, in points 0-100) an absolute one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from engine.errors import InputError


@dataclass(frozen=True)
class MetricRule:
    """How one metric is compared: its better direction and the change that counts as a regression."""

    name: str
    higher_is_better: bool
    threshold: float  # a fraction of the baseline when relative, else in the metric's own units
    relative: bool
    label: str


# Each name is written once, so a registry key and its rule's name cannot disagree.
def _rule(name: str, higher_is_better: bool, threshold: float, relative: bool, label: str) -> tuple[str, MetricRule]:
    return name, MetricRule(
        name=name, higher_is_better=higher_is_better, threshold=threshold, relative=relative, label=label
    )


METRICS: dict[str, MetricRule] = dict(
    [
        _rule("load_s", False, 0.25, True, "model load time (s)"),
        _rule("compile_s", False, 0.25, True, "decoder compile time (s)"),
        _rule("ttft_s", False, 0.15, True, "time to first token (s)"),
        _rule("e2e_s", False, 0.15, True, "end-to-end answer time (s)"),
        _rule("short_s", False, 0.15, True, "short answer time (s)"),
        _rule("decode_tok_s", True, 0.15, True, "decode speed (tokens/s)"),
        _rule("batch4_tok_s", True, 0.15, True, "batch-4 throughput (tokens/s)"),
        _rule("batch16_tok_s", True, 0.15, True, "batch-16 throughput (tokens/s)"),
        _rule("peak_rss_gb", False, 0.10, True, "peak memory (GB)"),
        _rule("em", True, 2.0, False, "exact match (points)"),
        _rule("f1", True, 1.0, False, "F1 (points)"),
        _rule("perplexity", False, 0.02, True, "perplexity"),
        _rule("embed_per_s", True, 0.15, True, "embeddings per second"),
        _rule("retrieval_ms", False, 0.20, True, "retrieval latency (ms)"),
    ]
)


@dataclass(frozen=True)
class Regression:
    """One compared (config, metric): ``change`` is current - baseline, as a fraction of the baseline
    for relative rules and as a plain difference for absolute ones; ``worse`` flags a regression."""

    config: str
    metric: str
    baseline: float
    current: float
    change: float
    threshold: float
    worse: bool

    def describe(self) -> str:
        """A one-line message, e.g. ``int4-weight decode_tok_s: 41.2 -> 30.1 (-27%, threshold 15%)``."""
        values = f"{self.config} {self.metric}: {_number(self.baseline)} -> {_number(self.current)}"
        if METRICS[self.metric].relative:
            change = f"{self.change:+.0%}" if abs(self.change) >= 0.1 else f"{self.change:+.1%}"
            return f"{values} ({change}, threshold {self.threshold * 100:g}%)"
        return f"{values} ({self.change:+.1f} points, threshold {self.threshold:.1f})"


def _number(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _check_thresholds(thresholds: dict[str, float]) -> None:
    for metric, value in thresholds.items():
        if metric not in METRICS:
            raise InputError(f"Unknown metric {metric!r} for a threshold; known: {', '.join(METRICS)}.")
        if not (math.isfinite(value) and value >= 0):
            raise InputError(f"The threshold for {metric!r} must be a number >= 0, not {value}.")


def compare_runs(
    current: dict[str, dict[str, float]],
    baseline: dict[str, dict[str, float]],
    thresholds: dict[str, float] | None = None,
) -> list[Regression]:
    """One row per (config, metric) found in both runs and in ``METRICS``; ``worse`` where the change
    goes the bad way by strictly more than the threshold (``thresholds`` overrides a metric's default).
    Configs or metrics in only one run, unknown metrics and missing (None/NaN) values are skipped."""
    overrides = thresholds or {}
    _check_thresholds(overrides)
    rows: list[Regression] = []
    for config, now in current.items():
        before = baseline.get(config)
        if before is None:
            continue
        for metric, value in now.items():
            rule = METRICS.get(metric)
            old = before.get(metric)
            if rule is None or _missing(value) or _missing(old):
                continue
            if rule.relative:
                if old == 0:  # a relative change from zero is undefined
                    continue
                change = (value - old) / abs(old)
            else:
                change = value - old
            threshold = overrides.get(metric, rule.threshold)
            bad = -change if rule.higher_is_better else change
            rows.append(
                Regression(
                    config=config,
                    metric=metric,
                    baseline=float(old),
                    current=float(value),
                    change=change,
                    threshold=threshold,
                    worse=bad > threshold,
                )
            )
    return rows


def regressions(rows: Iterable[Regression]) -> list[Regression]:
    """Only the rows that are regressions."""
    return [row for row in rows if row.worse]


def parse_thresholds(text: str) -> dict[str, float]:
    """Per-metric threshold overrides from ``"f1=0.5,decode_tok_s=0.1"`` (an empty text gives none)."""
    found: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        metric, sep, value = (piece.strip() for piece in part.partition("="))
        if not sep or not metric:
            raise InputError(f"Threshold {part!r} is not of the form metric=value (e.g. f1=0.5).")
        if metric not in METRICS:
            raise InputError(f"Unknown metric {metric!r} in threshold {part!r}; known: {', '.join(METRICS)}.")
        try:
            number = float(value)
        except ValueError:
            raise InputError(f"Threshold {part!r}: {value!r} is not a number.") from None
        if not (math.isfinite(number) and number >= 0):
            raise InputError(f"Threshold {part!r}: the value must be a finite number >= 0.")
        found[metric] = number
    return found
