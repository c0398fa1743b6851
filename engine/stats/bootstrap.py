"""Statistics for comparing two systems on the same questions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PairedDifference:
    """Mean of ``b - a`` over paired items, with a bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float

    @property
    def above_zero(self) -> bool:
        return self.low > 0


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> PairedDifference:
    """The mean difference ``b - a`` of paired scores and its bootstrap CI (BCa, scipy):
    questions are resampled with replacement, keeping each question's two scores together."""
    import numpy as np
    from scipy.stats import bootstrap

    from engine.errors import InputError

    if len(a) != len(b):
        raise InputError(f"Paired scores need the same items: {len(a)} against {len(b)}.")
    if len(a) < 2:
        raise InputError("A confidence interval needs at least two paired items.")
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if np.all(diff == diff[0]):  # no spread: every resample gives the same mean
        return PairedDifference(float(diff[0]), float(diff[0]), float(diff[0]), len(diff), confidence)
    found = bootstrap((diff,), np.mean, confidence_level=confidence, n_resamples=resamples,
                      random_state=np.random.default_rng(seed), method="BCa")  # fmt: skip
    low, high = found.confidence_interval
    return PairedDifference(float(diff.mean()), float(low), float(high), len(diff), confidence)
