"""Multiple comparisons: Holm's correction, and the paired tests of several variants scored on the same items."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError
from engine.stats.paired import PairedComparison, compare_paired


@dataclass(frozen=True)
class Adjustment:
    """One hypothesis after Holm's correction: its raw and adjusted p-value and whether it is rejected."""

    p_value: float
    adjusted: float
    reject: bool


@dataclass(frozen=True)
class VariantComparison:
    """Paired comparisons of several variants. ``comparisons`` maps a label ``"B vs A"`` (differences are
    B - A; A is the reference whenever the reference is in the pair) to its tests; ``adjusted`` maps each test
    name (``mcnemar``, ``wilcoxon``, ``permutation``, ``t``) to its Holm-corrected family, by the same labels."""

    reference: str
    alpha: float
    comparisons: dict[str, PairedComparison]
    adjusted: dict[str, dict[str, Adjustment]]


def holm(p_values: Mapping[str, float], alpha: float = 0.05) -> dict[str, Adjustment]:
    """Holm's step-down correction of a family of p-values (statsmodels ``multipletests``), by name:
    controls the chance of any false rejection in the family at ``alpha``."""
    from statsmodels.stats.multitest import multipletests

    if not 0 < alpha < 1:
        raise InputError(f"The significance level must be between 0 and 1, not {alpha}.")
    if not p_values:
        raise InputError("Holm's correction needs at least one p-value.")
    names = list(p_values)
    values = []
    for name in names:
        try:
            p = float(p_values[name])
        except (TypeError, ValueError):
            p = math.nan
        if not 0 <= p <= 1:  # written this way so NaN is rejected too
            raise InputError(f"The p-value of {name!r} must be a number from 0 to 1, not {p_values[name]!r}.")
        values.append(p)
    reject, adjusted, _, _ = multipletests(np.asarray(values), alpha=alpha, method="holm")
    return {n: Adjustment(p, float(q), bool(r)) for n, p, q, r in zip(names, values, adjusted, reject, strict=True)}


def _pairs(names: Sequence[str], reference: str) -> list[tuple[str, str]]:
    """The (A, B) pairs to compare: each variant against the reference, then, with three or more variants,
    every other pair in the given order."""
    others = [n for n in names if n != reference]
    pairs = [(reference, n) for n in others]
    if len(names) >= 3:
        pairs += [(x, y) for i, x in enumerate(others) for y in others[i + 1 :]]
    return pairs


def compare_variants(
    scores: Mapping[str, Sequence[float]],
    em: Mapping[str, Sequence[float]],
    reference: str,
    alpha: float = 0.05,
    resamples: int = 10_000,
    seed: int = 0,
) -> VariantComparison:
    """Paired tests of every variant against ``reference`` and, with three or more variants, of every pair;
    each test's p-values across the comparisons form one family and are Holm-corrected. ``scores`` holds
    each variant's continuous per-item scores (e.g. F1) and ``em`` its 0/1 exact-match scores, all on the same
    items in the same order."""
    if len(scores) < 2:
        raise InputError(f"Comparing variants needs at least two; got {len(scores)}.")
    if reference not in scores:
        raise InputError(f"The reference {reference!r} is not among the variants: {', '.join(scores)}.")
    if set(em) != set(scores):
        raise InputError(
            f"Every variant needs both scores and exact-match scores: {', '.join(sorted(set(em) ^ set(scores)))}."
        )
    n = len(scores[reference])
    for name in scores:
        if len(scores[name]) != n or len(em[name]) != n:
            raise InputError(
                f"{name!r} has {len(scores[name])} scores and {len(em[name])} exact-match scores but the "
                f"reference {reference!r} has {n}: every variant must be scored on the same items."
            )
    comparisons = {
        f"{b} vs {a}": compare_paired(scores[a], scores[b], em[a], em[b], resamples=resamples, seed=seed)
        for a, b in _pairs(list(scores), reference)
    }
    adjusted = {
        test: holm({label: c.tests[test].p_value for label, c in comparisons.items()}, alpha)
        for test in ("mcnemar", "wilcoxon", "permutation", "t")
    }
    return VariantComparison(reference=reference, alpha=alpha, comparisons=comparisons, adjusted=adjusted)
