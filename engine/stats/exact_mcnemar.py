"""Power and sample size of the exact McNemar test the Studio runs (``mcnemar_exact``), computed exactly.

Of ``n`` paired items, each falls in the cell "A wrong, B right" with probability ``p01``, "A right, B wrong"
with ``p10``, and agrees otherwise. The number of discordant items is ``D ~ Binomial(n, p01 + p10)``; given
``D``, the items B fixes are ``Binomial(D, p01 / (p01 + p10))``, and the exact test (statsmodels, two-sided
binomial at 1/2 on the discordant items) rejects when its p-value ``2 * F(min(b, c); D, 1/2)`` is at most
``alpha``. The power is the sum over ``D`` of the chance of ``D`` times the chance of rejecting given ``D``.
"""

from __future__ import annotations

import math

import numpy as np

from engine.errors import InputError
from engine.stats.power import _check_levels

MAX_ITEMS = 1_000_000  # beyond this the change is too small for any A/B test of a QA set, and the sums slow down
_TAIL = 1e-15  # the binomial mass of D left out of each sum (at most twice this)


def _check_shares(p01: float, p10: float) -> None:
    for name, p in (("p01", p01), ("p10", p10)):
        if not 0 <= p <= 1:  # written this way so NaN is rejected too
            raise InputError(f"{name} is a share of the items and must be from 0 to 1, not {p}.")
    if p01 + p10 > 1:
        raise InputError(f"The discordant shares p01 + p10 cannot exceed 1; got {p01 + p10:g}.")
    if p01 == p10:
        raise InputError("With p01 equal to p10 the two variants are equally accurate: there is nothing to detect.")


def rejection_limits(discordant, alpha: float):
    """For each number of discordant items ``D`` (an integer array), the largest ``min(b, c)`` at which the
    exact test rejects at level ``alpha``: the largest ``k`` with ``2 * F(k; D, 1/2) <= alpha``, -1 if none."""
    from scipy.stats import binom, norm

    d = np.asarray(discordant, dtype=np.int64)
    # Start from the normal approximation and step to the exact limit; the same float expression as
    # statsmodels' p-value decides, so the limits agree with the test the Studio runs.
    k = np.clip(np.floor(d / 2 - norm.ppf(1 - alpha / 2) * np.sqrt(d) / 2), -1, None).astype(np.int64)
    while (down := (k >= 0) & (binom.cdf(k, d, 0.5) * 2 > alpha)).any():
        k[down] -= 1
    while (up := binom.cdf(k + 1, d, 0.5) * 2 <= alpha).any():
        k[up] += 1
    return k


class _ExactPower:
    """The exact test's rejection chance given each ``D`` (``given``) and its running maximum over D
    (``envelope``), extended on demand; and the power at ``n`` as a sum over D."""

    def __init__(self, p01: float, p10: float, alpha: float) -> None:
        self.psi, self.split, self.alpha = p01 + p10, p01 / (p01 + p10), alpha
        self.given = self.envelope = np.zeros(0)

    def _extend(self, top: int) -> None:
        from scipy.stats import binom

        if top < len(self.given):
            return
        d = np.arange(max(top + 1, 2 * len(self.given)))
        k = rejection_limits(d, self.alpha)
        self.given = binom.cdf(k, d, self.split) + binom.sf(d - k - 1, d, self.split)  # two disjoint tails
        self.envelope = np.maximum.accumulate(self.given)

    def power(self, n: int, bound: bool = False) -> float:
        """The exact power on ``n`` items; with ``bound`` its upper bound through the envelope instead."""
        from scipy.stats import binom

        low, high = int(binom.ppf(_TAIL, n, self.psi)), int(binom.isf(_TAIL, n, self.psi))
        self._extend(high)
        d = np.arange(low, high + 1)
        conditional = (self.envelope if bound else self.given)[low : high + 1]
        return float(min(1.0, np.dot(binom.pmf(d, n, self.psi), conditional)))


def mcnemar_power(p01: float, p10: float, n: int, alpha: float = 0.05) -> float:
    """The probability that the two-sided exact McNemar test at level ``alpha`` on ``n`` paired items rejects
    when B fixes a share ``p01`` of the items and breaks a share ``p10`` (as ``mcnemar_exact`` counts them).
    Exact up to the binomial mass below 2e-15 left out of the sum over the number of discordant items."""
    _check_shares(p01, p10)
    _check_levels(alpha)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InputError(f"The number of items must be a whole number of at least 1, not {n!r}.")
    return _ExactPower(p01, p10, alpha).power(n)


def connor_sample_size(p01: float, p10: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Connor's (1987, Biometrics 43:207-211) normal approximation of the McNemar sample size, rounded up::

        n = ( z[1 - alpha/2] * sqrt(psi) + z[power] * sqrt(psi - delta**2) )**2 / delta**2

    with ``psi = p01 + p10`` and ``delta = p01 - p10``. With the exact test it falls short of the power asked
    (about 0.76-0.78 power for 0.8 at typical shares), which is why :func:`mcnemar_sample_size` does not use it."""
    from scipy.stats import norm

    _check_shares(p01, p10)
    _check_levels(alpha, power)
    psi, delta = p01 + p10, p01 - p10
    n = (norm.ppf(1 - alpha / 2) * math.sqrt(psi) + norm.ppf(power) * math.sqrt(psi - delta**2)) ** 2 / delta**2
    return max(2, math.ceil(n))


def mcnemar_sample_size(p01: float, p10: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """The fewest paired items (at least 2) on which the two-sided exact McNemar test at level ``alpha`` has at
    least ``power`` to detect a difference between two variants' 0/1 exact-match rates, its power computed
    exactly (:func:`mcnemar_power`). ``p01`` is the expected share of items A gets wrong and B right, ``p10``
    the share A gets right and B wrong (the same discordant cells as ``mcnemar_exact``).

    The exact test's power is not monotone in n (it saw-tooths as the discrete rejection limits step), so
    bisection on it could land past the first n that has enough power. The answer is the smallest n whose own
    power reaches ``power``, found so: the running maximum of the rejection chance over D is nondecreasing and
    D grows stochastically with n, so the power through it is a nondecreasing upper bound of the true power;
    bisection on that bound gives an n below which no n can have enough power, and a scan up from there stops
    at the first n that does. (A few more items may again fall just short: the saw-tooth.) Raises InputError
    when more than ``MAX_ITEMS`` would be needed."""
    _check_shares(p01, p10)
    _check_levels(alpha, power)
    exact = _ExactPower(p01, p10, alpha)
    low, high = 1, 2  # bound(low) < power <= bound(high), bound(1) taken as below the power
    while exact.power(high, bound=True) < power:
        if high >= MAX_ITEMS:
            raise InputError(
                f"McNemar's test would need more than {MAX_ITEMS:,} items to detect a gain of "
                f"{abs(p01 - p10):.2%} in exact match (about {connor_sample_size(p01, p10, alpha, power):,} by "
                "Connor's approximation): the change is too small to detect."
            )
        low, high = high, min(2 * high, MAX_ITEMS)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if exact.power(mid, bound=True) >= power else (mid, high)
    n = high
    while exact.power(n) < power:  # power(n) <= bound(n) < power for every n below `high`
        n += 1
        if n > MAX_ITEMS:
            raise InputError(f"McNemar's test would need more than {MAX_ITEMS:,} items to detect that change.")
    return n
