"""Paired significance tests of two variants (A and B) scored on the same items, in the same order.

Every test is about the difference ``b - a``: a positive effect means B scored higher than A.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.stats.bootstrap import PairedDifference, paired_bootstrap
from engine.stats.checks import check_pairs


@dataclass(frozen=True)
class TestResult:
    """One test's outcome: its ``statistic`` and two-sided ``p_value``, an ``effect`` size (named by
    ``effect_name``; positive when B beats A), the number of paired items ``n`` and test-specific ``detail``."""

    __test__ = False  # not a pytest test class, despite its name

    name: str
    statistic: float
    p_value: float
    effect: float
    effect_name: str
    n: int
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PairedComparison:
    """Every paired test of B against A on the same items, with the bootstrap interval of the mean score gain."""

    bootstrap: PairedDifference
    mcnemar: TestResult
    wilcoxon: TestResult
    permutation: TestResult
    t: TestResult

    @property
    def tests(self) -> dict[str, TestResult]:
        """The significance tests by name (the bootstrap interval is not one)."""
        return {"mcnemar": self.mcnemar, "wilcoxon": self.wilcoxon, "permutation": self.permutation, "t": self.t}


def _d_z(diff) -> float:
    """Cohen's d_z: the mean difference over the standard deviation of the differences (ddof=1)."""
    sd = float(diff.std(ddof=1))
    mean = float(diff.mean())
    if sd == 0:  # no spread: 0 when nothing changed, otherwise an unbounded effect with the gain's sign
        return 0.0 if mean == 0 else math.copysign(math.inf, mean)
    return mean / sd


def mcnemar_exact(a_correct: Sequence[float], b_correct: Sequence[float]) -> TestResult:
    """Exact McNemar test on 0/1 exact-match scores (statsmodels, binomial on the discordant items).

    The 2x2 table in ``detail["table"]`` has rows A right / A wrong and columns B right / B wrong:
    ``[[both right, A right & B wrong], [A wrong & B right, both wrong]]``. With ``b`` = items A got wrong
    and B right and ``c`` = items A got right and B wrong, the effect is the discordant odds ratio ``b / c``
    (above 1 when B fixes more than it breaks; infinite when c = 0 < b; 1 when there are no discordant items).
    The statistic is ``min(b, c)``, as statsmodels reports it."""
    from statsmodels.stats.contingency_tables import mcnemar

    xa, xb = check_pairs(a_correct, b_correct, "exact-match scores")
    if not (np.isin(xa, (0, 1)).all() and np.isin(xb, (0, 1)).all()):
        raise InputError("McNemar's test needs exact-match scores of 0 or 1 for every item.")
    ra, rb = xa == 1, xb == 1
    both, only_a, only_b, neither = (int(np.sum(m)) for m in (ra & rb, ra & ~rb, ~ra & rb, ~ra & ~rb))
    table = [[both, only_a], [only_b, neither]]
    found = mcnemar(table, exact=True)
    b, c = only_b, only_a
    if c == 0:
        effect = 1.0 if b == 0 else math.inf
    else:
        effect = b / c
    detail = {"table": table, "b_only_right": b, "a_only_right": c, "discordant": b + c}
    return TestResult(
        name="McNemar exact",
        statistic=float(found.statistic),
        p_value=float(found.pvalue),
        effect=effect,
        effect_name="discordant odds ratio",
        n=len(xa),
        detail=detail,
    )


def _signed_ranks(diff) -> tuple[float, float]:
    """The sums of the ranks of |d| over the positive and the negative non-zero differences (ties averaged)."""
    from scipy.stats import rankdata

    nonzero = diff[diff != 0]
    ranks = rankdata(abs(nonzero))
    return float(ranks[nonzero > 0].sum()), float(ranks[nonzero < 0].sum())


def wilcoxon_signed_rank(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Wilcoxon signed-rank test on ``b - a`` (scipy; zero differences dropped, two-sided).

    The effect is the matched-pairs rank-biserial correlation ``(R+ - R-) / (R+ + R-)`` over the non-zero
    differences: +1 when B is higher on every item that differs, -1 when A is. When every difference is zero
    there is nothing to rank, so the p-value is 1 and the effect 0 (scipy would give NaN with a warning)."""
    from scipy.stats import wilcoxon

    xa, xb = check_pairs(a, b)
    diff = xb - xa
    zeros = int((diff == 0).sum())
    if zeros == len(diff):
        statistic, p_value, effect = 0.0, 1.0, 0.0
        detail = {"r_plus": 0.0, "r_minus": 0.0, "zeros": zeros, "note": "every difference is zero: no evidence"}
    else:
        found = wilcoxon(diff, zero_method="wilcox", alternative="two-sided")
        r_plus, r_minus = _signed_ranks(diff)
        statistic, p_value = float(found.statistic), float(found.pvalue)
        effect = (r_plus - r_minus) / (r_plus + r_minus)
        detail = {"r_plus": r_plus, "r_minus": r_minus, "zeros": zeros}
    return TestResult(
        name="Wilcoxon signed-rank",
        statistic=statistic,
        p_value=p_value,
        effect=effect,
        effect_name="rank-biserial correlation",
        n=len(diff),
        detail=detail,
    )


def _mean_gain(x, y, axis):
    return (y - x).mean(axis=axis)


def paired_permutation(a: Sequence[float], b: Sequence[float], resamples: int = 10_000, seed: int = 0) -> TestResult:
    """Paired permutation test of the mean of ``b - a`` (scipy, two-sided): each item's two scores are swapped
    at random. It is exact, over all ``2**n`` swaps, when ``2**n <= resamples``. The effect is Cohen's d_z
    (mean difference over the standard deviation of the differences)."""
    from scipy.stats import permutation_test

    if resamples < 1:
        raise InputError(f"A permutation test needs at least one resample, not {resamples}.")
    xa, xb = check_pairs(a, b)
    rng = np.random.default_rng(seed)
    found = permutation_test(
        (xa, xb),
        _mean_gain,
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        alternative="two-sided",
        rng=rng,
    )
    exact = 2 ** len(xa) <= resamples
    detail = {"mean_diff": float((xb - xa).mean()), "exact": exact, "resamples": 2 ** len(xa) if exact else resamples}
    return TestResult(
        name="paired permutation",
        statistic=float(found.statistic),
        p_value=float(found.pvalue),
        effect=_d_z(xb - xa),
        effect_name="Cohen's d_z",
        n=len(xa),
        detail=detail,
    )


def paired_t(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Paired t-test of ``b - a`` (scipy ttest_rel, two-sided) with Cohen's d_z as the effect, the measure the
    power calculator takes. When the differences do not vary, t is 0 (all zero, p = 1) or infinite (p = 0)."""
    from scipy.stats import ttest_rel

    xa, xb = check_pairs(a, b)
    diff = xb - xa
    n = len(diff)
    mean, sd = float(diff.mean()), float(diff.std(ddof=1))
    detail: dict[str, Any] = {"mean_diff": mean, "sd_diff": sd, "df": n - 1}
    if sd == 0:  # scipy divides by zero here and returns NaN
        statistic = 0.0 if mean == 0 else math.copysign(math.inf, mean)
        detail["note"] = "the differences do not vary"
        return TestResult(
            name="paired t",
            statistic=statistic,
            p_value=1.0 if mean == 0 else 0.0,
            effect=_d_z(diff),
            effect_name="Cohen's d_z",
            n=n,
            detail=detail,
        )
    found = ttest_rel(xb, xa, alternative="two-sided")
    low, high = found.confidence_interval(0.95)
    detail.update(ci_low=float(low), ci_high=float(high))
    return TestResult(
        name="paired t",
        statistic=float(found.statistic),
        p_value=float(found.pvalue),
        effect=_d_z(diff),
        effect_name="Cohen's d_z",
        n=n,
        detail=detail,
    )


def compare_paired(
    a_scores: Sequence[float],
    b_scores: Sequence[float],
    a_em: Sequence[float],
    b_em: Sequence[float],
    resamples: int = 10_000,
    seed: int = 0,
) -> PairedComparison:
    """Every paired test of B against A: the continuous scores (e.g. F1) go to the bootstrap interval, the
    Wilcoxon, permutation and t tests; the 0/1 exact-match scores to McNemar. All four lists follow the same items."""
    check_pairs(a_scores, b_scores)
    check_pairs(a_em, b_em, "exact-match scores")
    if len(a_em) != len(a_scores):
        raise InputError(
            f"Exact-match and continuous scores must cover the same items: {len(a_em)} against {len(a_scores)}."
        )
    return PairedComparison(
        bootstrap=paired_bootstrap(a_scores, b_scores, resamples=resamples, seed=seed),
        mcnemar=mcnemar_exact(a_em, b_em),
        wilcoxon=wilcoxon_signed_rank(a_scores, b_scores),
        permutation=paired_permutation(a_scores, b_scores, resamples=resamples, seed=seed),
        t=paired_t(a_scores, b_scores),
    )
