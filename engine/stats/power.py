"""Power and sample size for paired comparisons: how many items an A/B test needs to detect a given gain."""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.errors import InputError


def _check_levels(alpha: float, power: float | None = None) -> None:
    if not 0 < alpha < 1:  # written this way so NaN is rejected too
        raise InputError(f"The significance level must be between 0 and 1, not {alpha}.")
    if power is not None and not alpha < power < 1:
        # a two-sided test already rejects with probability alpha when there is no effect
        raise InputError(f"The power must be above the significance level ({alpha}) and below 1, not {power}.")


def _check_effect(effect_dz: float) -> float:
    if not math.isfinite(effect_dz) or effect_dz == 0:
        raise InputError(f"The effect size d_z must be a finite number other than 0, not {effect_dz}.")
    return abs(effect_dz)  # two-sided: only the size matters


def _check_n(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise InputError(f"A paired test needs a whole number of at least 2 items, not {n!r}.")


def minimum_sample_size(effect_dz: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """The fewest paired items for a two-sided paired t-test at level ``alpha`` to detect an effect of Cohen's
    ``d_z`` (mean difference over the sd of the differences) with probability ``power``: the smallest ``n``
    with ``power_of(d_z, n, alpha) >= power`` (what statsmodels' TTestPower solver gives, rounded up)."""
    size = _check_effect(effect_dz)
    _check_levels(alpha, power)
    # The t-test's power grows with n at a fixed d_z (more items, a larger noncentrality and a smaller
    # critical value), so doubling then bisecting finds the fewest items; power_of itself, not a solver that
    # can stop on NaN, decides every step.
    low, high = 1, 2
    while power_of(size, high, alpha) < power:
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if power_of(size, mid, alpha) >= power else (mid, high)
    return high


def power_of(effect_dz: float, n: int, alpha: float = 0.05) -> float:
    """The probability that a two-sided paired t-test at level ``alpha`` on ``n`` items detects an effect of
    Cohen's ``d_z``: the t statistic follows the noncentral t with ``n - 1`` degrees of freedom and
    noncentrality ``d_z * sqrt(n)`` (scipy ``nct``), and the test rejects beyond ``±t[1 - alpha/2]``."""
    from scipy import stats

    size = _check_effect(effect_dz)
    _check_n(n)
    _check_levels(alpha)
    df, nc = n - 1, size * math.sqrt(n)
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    # Both tails as survival functions: P(T < -crit) under nc is P(T > crit) under -nc. scipy's cdf of the
    # far lower tail returns NaN at large noncentralities (statsmodels' power is NaN at n = 300, d_z = 0.5).
    upper, lower = (float(stats.nct.sf(crit, df, c)) for c in (nc, -nc))
    found = upper + lower
    return found if 0 <= found <= 1 else _power_by_integral(size, n, alpha)  # NaN fails the test too


# Quantiles of the chi distribution cutting the integral into pieces, each smooth and narrow enough for quad:
# one quad over (0, inf) misses the peak (a width of ~1/sqrt(2) around sqrt(df)) once n is in the hundreds.
_PIECES = (1e-15, 1e-9, 1e-4, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 1 - 1e-4, 1 - 1e-9)


def _power_by_integral(effect_dz: float, n: int, alpha: float) -> float:
    """The same power as an integral over the chi variable ``S = sqrt(V)`` of the variance estimate (``V``
    chi-square), for where scipy's noncentral t gives no finite answer. The noncentral t is
    ``(Z + nc) / sqrt(V / df)``; given ``S = s`` it rejects when ``Z`` falls outside ``±t_crit * s / sqrt(df) - nc``.
    The chi mass left outside the pieces is below 2e-15."""
    from scipy import integrate, stats

    df, nc = n - 1, effect_dz * math.sqrt(n)
    crit = float(stats.t.ppf(1 - alpha / 2, df))

    def rejecting(s: float) -> float:  # the chi density stays finite at 0, unlike the chi-square's at df = 1
        edge = crit * s / math.sqrt(df)
        return float(stats.chi.pdf(s, df) * (stats.norm.sf(edge - nc) + stats.norm.cdf(-edge - nc)))

    edges = [float(q) for q in stats.chi.ppf(_PIECES, df)] + [float(stats.chi.isf(1e-15, df))]
    total = sum(
        integrate.quad(rejecting, a, b, epsabs=1e-14, epsrel=1e-12, limit=100)[0]
        for a, b in zip(edges, edges[1:], strict=False)
    )
    return min(1.0, max(0.0, total))


def detectable_effect(n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest Cohen's d_z that a two-sided paired t-test at level ``alpha`` on ``n`` items detects with
    probability ``power``: the root of ``power_of(d_z, n, alpha) = power`` (scipy brentq; the power grows
    with d_z), taken on the side where the power is at least ``power``, so that ``minimum_sample_size`` of
    it is ``n``."""
    from scipy.optimize import brentq

    _check_n(n)
    _check_levels(alpha, power)
    high = 1.0
    while power_of(high, n, alpha) < power:
        high *= 2
    low = high / 2 if high > 1 else 1e-12
    found = float(brentq(lambda d: power_of(d, n, alpha) - power, low, high, xtol=1e-14, rtol=1e-13))
    step = found * 1e-15
    while power_of(found, n, alpha) < power:  # the root may sit a rounding error below: step up to it
        found, step = found + step, step * 2
    return found


@dataclass(frozen=True)
class Sensitivity:
    """How sensitive a paired comparison on ``n`` items was: the observed Cohen's d_z, the power a paired
    t-test at level ``alpha`` had against an effect of that size, the items it would need for the target
    power (None when the observed effect is 0 or unbounded), and the smallest d_z it detects with that power."""

    n: int
    effect_dz: float
    power: float
    items_needed: int | None
    detectable_dz: float


def sensitivity(effect_dz: float, n: int, alpha: float = 0.05, power: float = 0.8) -> Sensitivity:
    """The :class:`Sensitivity` of a comparison on ``n`` items that observed ``effect_dz``."""
    detectable = detectable_effect(n, alpha, power)
    if not math.isfinite(effect_dz) or effect_dz == 0:
        observed_power = 1.0 if math.isinf(effect_dz) else math.nan
        return Sensitivity(n=n, effect_dz=effect_dz, power=observed_power, items_needed=None, detectable_dz=detectable)
    return Sensitivity(
        n=n,
        effect_dz=effect_dz,
        power=power_of(effect_dz, n, alpha),
        items_needed=minimum_sample_size(effect_dz, alpha, power),
        detectable_dz=detectable,
    )
