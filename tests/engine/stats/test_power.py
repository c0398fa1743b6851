"""Power and sample size: statsmodels called directly, the noncentral t distribution, Connor's formula by hand."""

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.power import TTestPower

from engine.errors import InputError
from engine.stats import detectable_effect, mcnemar_sample_size, minimum_sample_size, power_of


def _t_power(d_z: float, n: int, alpha: float = 0.05) -> float:
    """Two-sided paired t-test power from first principles: t ~ noncentral t(n - 1, d_z * sqrt(n))."""
    crit = sps.t.ppf(1 - alpha / 2, n - 1)
    shifted = sps.nct(n - 1, d_z * math.sqrt(n))
    return float(shifted.sf(crit) + shifted.cdf(-crit))


def test_a_medium_effect_needs_34_items() -> None:
    n = minimum_sample_size(0.5)
    assert n == 34
    assert power_of(0.5, n) >= 0.8 > power_of(0.5, n - 1)
    assert n == math.ceil(TTestPower().solve_power(effect_size=0.5, alpha=0.05, power=0.8, alternative="two-sided"))
    assert minimum_sample_size(-0.5) == 34  # two-sided: a loss is as detectable as a gain


@pytest.mark.parametrize(("d_z", "n", "alpha"), [(0.5, 34, 0.05), (0.2, 100, 0.05), (0.8, 10, 0.01)])
def test_power_matches_statsmodels_and_the_noncentral_t(d_z, n, alpha) -> None:
    found = power_of(d_z, n, alpha)
    assert found == pytest.approx(TTestPower().power(effect_size=d_z, nobs=n, alpha=alpha), abs=1e-9)
    assert found == pytest.approx(_t_power(d_z, n, alpha), abs=1e-9)


def test_detectable_effect_is_the_effect_with_exactly_the_asked_power() -> None:
    d = detectable_effect(34)
    assert d == pytest.approx(TTestPower().solve_power(nobs=34, alpha=0.05, power=0.8), abs=1e-9)
    assert _t_power(d, 34) == pytest.approx(0.8, abs=1e-5)  # statsmodels' root finder stops within ~2e-6
    assert d < 0.5  # 34 items are a little more than d_z = 0.5 needs
    assert detectable_effect(200) < detectable_effect(50) < detectable_effect(10)
    assert minimum_sample_size(detectable_effect(50)) == 50


def test_mcnemar_sample_size_by_connors_formula_worked_by_hand() -> None:
    # p01 = 0.2 (A wrong, B right), p10 = 0.1: psi = 0.3, delta = 0.1;
    # (1.959964 * sqrt(0.3) + 0.841621 * sqrt(0.29))**2 / 0.01 = (1.073516 + 0.453226)**2 / 0.01 = 233.09 -> 234.
    assert mcnemar_sample_size(0.2, 0.1) == 234
    assert mcnemar_sample_size(0.1, 0.2) == 234  # only the size of the gap matters
    z_a, z_b = sps.norm.ppf(0.975), sps.norm.ppf(0.9)
    exact = (z_a * math.sqrt(0.25) + z_b * math.sqrt(0.25 - 0.05**2)) ** 2 / 0.05**2
    assert mcnemar_sample_size(0.15, 0.10, power=0.9) == math.ceil(exact)


def test_mcnemar_sample_size_gives_the_asked_power_in_simulation() -> None:
    # Draw many A/B tests of 234 items with the planted discordant shares; the McNemar z-test
    # (b - c) / sqrt(b + c) at the 5% level should reject in about 80% of them.
    n = mcnemar_sample_size(0.2, 0.1)
    counts = np.random.default_rng(5).multinomial(n, [0.2, 0.1, 0.7], size=20_000)
    b, c = counts[:, 0], counts[:, 1]
    z = (b - c) / np.sqrt(np.maximum(b + c, 1))
    assert np.mean(np.abs(z) > sps.norm.ppf(0.975)) == pytest.approx(0.8, abs=0.02)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: minimum_sample_size(0), "other than 0"),
        (lambda: minimum_sample_size(float("nan")), "finite"),
        (lambda: minimum_sample_size(0.5, alpha=1.5), "significance level"),
        (lambda: minimum_sample_size(0.5, power=0.04), "above the significance level"),
        (lambda: power_of(0.5, 1), "at least 2 items"),
        (lambda: power_of(0.5, 10.5), "whole number"),
        (lambda: detectable_effect(30, power=1.0), "below 1"),
        (lambda: mcnemar_sample_size(0.1, 0.1), "nothing to detect"),
        (lambda: mcnemar_sample_size(0.7, 0.6), "cannot exceed 1"),
        (lambda: mcnemar_sample_size(-0.1, 0.2), "from 0 to 1"),
        (lambda: mcnemar_sample_size(float("nan"), 0.2), "from 0 to 1"),
    ],
)
def test_bad_input_is_an_input_error(call, message) -> None:
    with pytest.raises(InputError, match=message):
        call()


@pytest.mark.parametrize("d_z", [0.3, -0.3, 0.05])
def test_sensitivity_of_an_observed_effect_matches_statsmodels(d_z) -> None:
    from engine.stats import sensitivity

    found = sensitivity(d_z, 60)
    solver = TTestPower()
    assert found.power == pytest.approx(solver.power(effect_size=abs(d_z), nobs=60, alpha=0.05), abs=1e-9)
    assert found.items_needed == math.ceil(solver.solve_power(effect_size=abs(d_z), alpha=0.05, power=0.8))
    assert found.detectable_dz == pytest.approx(solver.solve_power(nobs=60, alpha=0.05, power=0.8), abs=1e-9)


def test_sensitivity_of_no_effect_or_an_unbounded_one() -> None:
    from engine.stats import sensitivity

    none = sensitivity(0.0, 30)
    assert none.items_needed is None and math.isnan(none.power) and none.detectable_dz > 0
    sure = sensitivity(math.inf, 30)
    assert sure.items_needed is None and sure.power == 1.0


@pytest.mark.parametrize("d_z", [1.5, 4.0, 20.0])
def test_large_effects_need_the_fewest_items_with_enough_power(d_z) -> None:
    """Where statsmodels' solver finds no root (a few items suffice) the answer is still the fewest items."""
    n = minimum_sample_size(d_z)
    assert power_of(d_z, n) >= 0.8
    assert n == 2 or power_of(d_z, n - 1) < 0.8


@pytest.mark.parametrize(("d_z", "n"), [(4.0, 2), (0.5, 34), (0.2, 100)])
def test_the_fallback_integral_agrees_with_statsmodels_where_both_are_defined(d_z, n) -> None:
    from engine.stats.power import _power_by_integral

    assert _power_by_integral(d_z, n, 0.05) == pytest.approx(TTestPower().power(effect_size=d_z, nobs=n, alpha=0.05),
                                                             abs=1e-9)  # fmt: skip
    assert math.isnan(TTestPower().power(effect_size=20.0, nobs=2, alpha=0.05))  # where statsmodels gives up
    assert 0.9 < power_of(20.0, 2) < 1.0
