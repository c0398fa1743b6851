"""The exact McNemar test's power and sample size: against statsmodels' test table by table, full enumeration,
a simulation of the test, and Connor's formula worked by hand."""

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar

from engine.errors import InputError
from engine.stats import connor_sample_size, mcnemar_power, mcnemar_sample_size
from engine.stats.exact_mcnemar import MAX_ITEMS, rejection_limits


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_the_rejection_limits_are_where_statsmodels_exact_test_rejects(alpha) -> None:
    limits = rejection_limits(np.arange(61), alpha)
    for d, k in enumerate(limits):
        rejecting = [b for b in range(d + 1) if mcnemar([[0, b], [d - b, 0]], exact=True).pvalue <= alpha]
        assert rejecting == [b for b in range(d + 1) if min(b, d - b) <= k], (d, k)
    big = np.array([100, 1000, 12_345])  # large D: the binomial test on the discordant items, at 1/2
    for d, k in zip(big, rejection_limits(big, alpha), strict=True):
        assert sps.binomtest(int(k), int(d)).pvalue <= alpha < sps.binomtest(int(k) + 1, int(d)).pvalue


def test_the_power_is_the_sum_over_every_table() -> None:
    """On 30 items: every (b, c) table, its multinomial chance and statsmodels' verdict on it."""
    n, p01, p10 = 30, 0.3, 0.1
    total = 0.0
    for b in range(n + 1):
        for c in range(n + 1 - b):
            if mcnemar([[0, c], [b, 0]], exact=True).pvalue <= 0.05:
                total += sps.multinomial.pmf([b, c, n - b - c], n, [p01, p10, 1 - p01 - p10])
    assert mcnemar_power(p01, p10, n) == pytest.approx(total, abs=1e-12)
    assert mcnemar_power(p10, p01, n) == pytest.approx(total, abs=1e-12)  # a loss is as detectable as a gain


def test_the_power_matches_a_simulation_of_the_test() -> None:
    n, p01, p10, sims = 249, 0.2, 0.1, 40_000
    counts = np.random.default_rng(5).multinomial(n, [p01, p10, 1 - p01 - p10], size=sims)
    b, c = counts[:, 0], counts[:, 1]
    p = np.minimum(1, 2 * sps.binom.cdf(np.minimum(b, c), b + c, 0.5))  # statsmodels' exact p-value
    expected = mcnemar_power(p01, p10, n)
    se = math.sqrt(expected * (1 - expected) / sims)
    assert np.mean(p <= 0.05) == pytest.approx(expected, abs=4.5 * se)


@pytest.mark.parametrize(
    ("p01", "p10", "alpha", "power"),
    [(0.3, 0.1, 0.05, 0.8), (0.4, 0.1, 0.05, 0.8), (0.3, 0.1, 0.01, 0.9), (0.5, 0.05, 0.05, 0.8),
     (1.0, 0.0, 0.05, 0.8), (0.6, 0.2, 0.1, 0.5), (0.05, 0.25, 0.05, 0.95)],
)  # fmt: skip
def test_the_sample_size_is_the_first_n_with_enough_exact_power(p01, p10, alpha, power) -> None:
    n = mcnemar_sample_size(p01, p10, alpha, power)
    assert n == next(m for m in range(2, 2000) if mcnemar_power(p01, p10, m, alpha) >= power)
    assert n >= connor_sample_size(p01, p10, alpha, power)  # the approximation asks for too few


def test_the_sample_size_handles_the_saw_tooth() -> None:
    """When every item is discordant the power falls from 17 to 19 items: 17 is still the first with 35%."""
    powers = [mcnemar_power(0.7, 0.3, m) for m in (16, 17, 18, 19)]
    assert powers[0] < 0.35 <= powers[1] and powers[2] < powers[1] and powers[3] < 0.35
    assert mcnemar_sample_size(0.7, 0.3, power=0.35) == 17


def test_connors_formula_worked_by_hand_falls_short_with_the_exact_test() -> None:
    # p01 = 0.2 (A wrong, B right), p10 = 0.1: psi = 0.3, delta = 0.1;
    # (1.959964 * sqrt(0.3) + 0.841621 * sqrt(0.29))**2 / 0.01 = (1.073516 + 0.453226)**2 / 0.01 = 233.09 -> 234.
    assert connor_sample_size(0.2, 0.1) == 234
    assert connor_sample_size(0.1, 0.2) == 234  # only the size of the gap matters
    z_a, z_b = sps.norm.ppf(0.975), sps.norm.ppf(0.9)
    exact = (z_a * math.sqrt(0.25) + z_b * math.sqrt(0.25 - 0.05**2)) ** 2 / 0.05**2
    assert connor_sample_size(0.15, 0.10, power=0.9) == math.ceil(exact)
    assert 0.76 < mcnemar_power(0.2, 0.1, 234) < 0.78  # the shortfall the issue measured
    n = mcnemar_sample_size(0.2, 0.1)
    assert mcnemar_power(0.2, 0.1, n) >= 0.8 > mcnemar_power(0.2, 0.1, n - 1)
    assert n == 249


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mcnemar_sample_size(0.1, 0.1), "nothing to detect"),
        (lambda: mcnemar_sample_size(0.7, 0.6), "cannot exceed 1"),
        (lambda: mcnemar_sample_size(-0.1, 0.2), "from 0 to 1"),
        (lambda: mcnemar_sample_size(float("nan"), 0.2), "from 0 to 1"),
        (lambda: mcnemar_sample_size(0.2, 0.1, power=0.01), "above the significance level"),
        (lambda: connor_sample_size(0.2, 0.1, alpha=0), "significance level"),
        (lambda: mcnemar_power(0.2, 0.1, 0), "at least 1"),
        (lambda: mcnemar_power(0.2, 0.1, 10.0), "whole number"),
        (lambda: mcnemar_sample_size(0.0011, 0.001), f"more than {MAX_ITEMS:,} items"),
    ],
)
def test_bad_input_is_an_input_error(call, message) -> None:
    with pytest.raises(InputError, match=message):
        call()
