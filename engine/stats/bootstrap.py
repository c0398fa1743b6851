"""Bootstrap confidence intervals of mean scores, all through one checked entry point (:func:`bootstrap_mean`).

Every bootstrap in the engine (paired differences here, per-variant means in the A/B report) calls
:func:`bootstrap_mean`, so NaN or infinite scores are an InputError naming the item, never a silent NaN interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError, check_choice
from engine.stats.checks import check_pairs, finite_scores

METHODS = ("BCa", "percentile", "basic")  # scipy.stats.bootstrap's interval methods


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


def _check_settings(confidence: float, resamples: int, method: str) -> None:
    if not 0 < confidence < 1:  # written this way so NaN is rejected too
        raise InputError(f"The confidence level must be between 0 and 1, not {confidence}.")
    if not isinstance(resamples, int) or isinstance(resamples, bool) or resamples < 1:
        raise InputError(f"A bootstrap needs a whole number of at least one resample, not {resamples!r}.")
    check_choice(method, METHODS, "bootstrap method")


def bootstrap_mean(
    values: Sequence[float],
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
    method: str = "BCa",
    what: str = "scores",
):
    """The bootstrap of the mean of ``values`` (scipy ``bootstrap``, resampling the items with replacement,
    generator ``numpy.random.default_rng(seed)``): scipy's result, its ``confidence_interval`` the interval.

    The one entry point to scipy's bootstrap: it raises InputError, naming the problem, for NaN or infinite
    values (``what`` names them in the message), fewer than two values, a confidence level outside (0, 1),
    fewer than one resample or an unknown ``method``."""
    from scipy.stats import bootstrap

    x = finite_scores(values, what)
    if x.size < 2:
        raise InputError(f"A bootstrap interval needs at least two {what}; got {x.size}.")
    _check_settings(confidence, resamples, method)
    return bootstrap(
        (x,),
        np.mean,
        confidence_level=confidence,
        n_resamples=resamples,
        method=method,
        rng=np.random.default_rng(seed),
    )


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> PairedDifference:
    """The mean difference ``b - a`` of paired scores and its bootstrap CI (BCa, scipy):
    questions are resampled with replacement, keeping each question's two scores together.
    Raises InputError for lists of different lengths, fewer than two pairs or a NaN or infinite score."""
    xa, xb = check_pairs(a, b)
    _check_settings(confidence, resamples, "BCa")
    with np.errstate(over="ignore"):  # finite scores can still overflow (1e308 - -1e308): caught just below
        diff = xb - xa
    diff = finite_scores(diff, "paired score differences")
    if (diff == diff[0]).all():  # no spread: every resample gives the same mean
        return PairedDifference(
            mean=float(diff[0]), low=float(diff[0]), high=float(diff[0]), n=len(diff), confidence=confidence
        )
    found = bootstrap_mean(diff, confidence, resamples, seed, "BCa", "paired score differences")
    low, high = found.confidence_interval
    return PairedDifference(
        mean=float(diff.mean()), low=float(low), high=float(high), n=len(diff), confidence=confidence
    )
