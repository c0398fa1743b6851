"""Power and sample size for paired comparisons: how many items an A/B test needs to detect a given gain."""

from __future__ import annotations

import math
import warnings
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
    ``d_z`` (mean difference over the sd of the differences) with probability ``power`` (statsmodels
    TTestPower, rounded up)."""
    from statsmodels.stats.power import TTestPower

    size = _check_effect(effect_dz)
    _check_levels(alpha, power)
    if power_of(size, 2, alpha) >= power:  # the solver finds no root below 2 items (it returns NaN there)
        return 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a failed convergence is handled below
        n = float(TTestPower().solve_power(effect_size=size, alpha=alpha, power=power, alternative="two-sided"))
    if math.isfinite(n):
        return max(2, math.ceil(n))
    low, high = 2, 4  # the power grows with n: double, then bisect, for the fewest items with enough power
    while power_of(size, high, alpha) < power:
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if power_of(size, mid, alpha) >= power else (mid, high)
    return high


def power_of(effect_dz: float, n: int, alpha: float = 0.05) -> float:
    """The probability that a two-sided paired t-test at level ``alpha`` on ``n`` items detects an effect of
    Cohen's ``d_z`` (statsmodels TTestPower)."""
    from statsmodels.stats.power import TTestPower

    size = _check_effect(effect_dz)
    _check_n(n)
    _check_levels(alpha)
    found = float(TTestPower().power(effect_size=size, nobs=n, alpha=alpha, alternative="two-sided"))
    return found if math.isfinite(found) else _power_by_integral(size, n, alpha)


def _power_by_integral(effect_dz: float, n: int, alpha: float) -> float:
    """The same power as an integral over the chi-square of the variance estimate: statsmodels and scipy's
    noncentral t return NaN for very large noncentralities (a huge d_z on few items), the integral does not.
    The noncentral t is ``(Z + nc) / sqrt(V / df)``; given ``V = v`` it rejects when ``Z`` falls outside
    ``±t_crit * sqrt(v / df) - nc``."""
    from scipy import integrate, stats

    df, nc = n - 1, effect_dz * math.sqrt(n)
    crit = float(stats.t.ppf(1 - alpha / 2, df))

    def rejecting(v: float) -> float:
        edge = crit * math.sqrt(v / df)
        return float(stats.chi2.pdf(v, df) * (stats.norm.sf(edge - nc) + stats.norm.cdf(-edge - nc)))

    return float(integrate.quad(rejecting, 0, math.inf)[0])


def detectable_effect(n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest Cohen's d_z that a two-sided paired t-test at level ``alpha`` on ``n`` items detects with
    probability ``power`` (statsmodels TTestPower solved for the effect size)."""
    from statsmodels.stats.power import TTestPower

    _check_n(n)
    _check_levels(alpha, power)
    found = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power, alternative="two-sided")
    return float(found)


def mcnemar_sample_size(p01: float, p10: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """The fewest paired items for a two-sided McNemar test to detect a difference between two variants' 0/1
    exact-match rates, by Connor (1987, Biometrics 43:207-211), rounded up.

    ``p01`` is the expected share of items A gets wrong and B right, ``p10`` the share A gets right and B wrong
    (the same discordant cells as ``mcnemar_exact``). With ``psi = p01 + p10`` (the discordant share) and
    ``delta = p01 - p10`` (B's gain in accuracy)::

        n = ( z[1 - alpha/2] * sqrt(psi) + z[power] * sqrt(psi - delta**2) )**2 / delta**2

    where ``z[q]`` is the standard normal quantile."""
    from scipy.stats import norm

    for name, p in (("p01", p01), ("p10", p10)):
        if not 0 <= p <= 1:  # written this way so NaN is rejected too
            raise InputError(f"{name} is a share of the items and must be from 0 to 1, not {p}.")
    if p01 + p10 > 1:
        raise InputError(f"The discordant shares p01 + p10 cannot exceed 1; got {p01 + p10:g}.")
    if p01 == p10:
        raise InputError("With p01 equal to p10 the two variants are equally accurate: there is nothing to detect.")
    _check_levels(alpha, power)
    psi, delta = p01 + p10, p01 - p10
    n = (norm.ppf(1 - alpha / 2) * math.sqrt(psi) + norm.ppf(power) * math.sqrt(psi - delta**2)) ** 2 / delta**2
    return max(2, math.ceil(n))


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
        return Sensitivity(n, effect_dz, observed_power, None, detectable)
    return Sensitivity(n, effect_dz, power_of(effect_dz, n, alpha), minimum_sample_size(effect_dz, alpha, power),
                       detectable)  # fmt: skip
