"""Paired t-test power and sample size: against statsmodels, the noncentral t and the chi-square integral."""

import math

import pytest
from scipy import stats as sps
from statsmodels.stats.power import TTestPower

from engine.errors import InputError
from engine.stats import detectable_effect, minimum_sample_size, power_of


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


def _t_power_both_tails(d_z: float, n: int, alpha: float = 0.05) -> float:
    """The same power with both tails as survival functions, which stay finite where the lower cdf is NaN."""
    crit = sps.t.ppf(1 - alpha / 2, n - 1)
    nc = d_z * math.sqrt(n)
    return float(sps.nct.sf(crit, n - 1, nc) + sps.nct.sf(crit, n - 1, -nc))


@pytest.mark.parametrize("n", [2, 5, 20, 100, 200, 300, 500, 1000, 2000, 10_000, 100_000])
@pytest.mark.parametrize("d_z", [0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 3.0])
def test_power_is_the_noncentral_t_and_the_integral_at_every_n(d_z, n) -> None:
    from engine.stats.power import _power_by_integral

    found = power_of(d_z, n)
    assert found == pytest.approx(_t_power_both_tails(d_z, n), abs=1e-12)
    assert found == pytest.approx(_power_by_integral(d_z, n, 0.05), abs=1e-8)
    assert 0.05 < found <= 1


def test_the_power_of_a_medium_effect_on_300_items_is_about_1() -> None:
    """The case of the bug: statsmodels gives NaN here and the old fallback integral about 0."""
    assert math.isnan(TTestPower().power(effect_size=0.5, nobs=300, alpha=0.05))
    assert power_of(0.5, 300) > 1 - 1e-10
    assert power_of(0.5, 300) >= power_of(0.5, minimum_sample_size(0.5))


@pytest.mark.parametrize("alpha", [0.01, 0.05])
@pytest.mark.parametrize("power", [0.8, 0.9])
@pytest.mark.parametrize("d_z", [0.05, 0.1, 0.2, 0.35, 0.8, 1.2])
def test_the_sample_size_is_the_fewest_items_with_enough_power(d_z, alpha, power) -> None:
    n = minimum_sample_size(d_z, alpha, power)
    assert power_of(d_z, n, alpha) >= power > power_of(d_z, n - 1, alpha)
    solved = TTestPower().solve_power(effect_size=d_z, alpha=alpha, power=power, alternative="two-sided")
    assert n == math.ceil(solved)


def test_detectable_effect_is_the_effect_with_exactly_the_asked_power() -> None:
    d = detectable_effect(34)
    assert d == pytest.approx(TTestPower().solve_power(nobs=34, alpha=0.05, power=0.8), abs=1e-5)
    assert _t_power(d, 34) == pytest.approx(0.8, abs=1e-10)  # statsmodels' root finder stops within ~2e-6
    assert d < 0.5  # 34 items are a little more than d_z = 0.5 needs
    assert detectable_effect(200) < detectable_effect(50) < detectable_effect(10)
    assert minimum_sample_size(detectable_effect(50)) == 50


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
        (lambda: power_of(0.5, 300, alpha=float("nan")), "significance level"),
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
    assert found.detectable_dz == pytest.approx(solver.solve_power(nobs=60, alpha=0.05, power=0.8), abs=1e-5)
    assert power_of(found.detectable_dz, 60) == pytest.approx(0.8, abs=1e-10)


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


@pytest.mark.parametrize(("d_z", "n"), [(4.0, 2), (0.5, 34), (0.2, 100), (0.1, 2000), (0.05, 5000)])
def test_the_fallback_integral_agrees_with_statsmodels_where_both_are_defined(d_z, n) -> None:
    from engine.stats.power import _power_by_integral

    assert _power_by_integral(d_z, n, 0.05) == pytest.approx(TTestPower().power(effect_size=d_z, nobs=n, alpha=0.05),
                                                             abs=1e-9)  # fmt: skip
    assert math.isnan(TTestPower().power(effect_size=20.0, nobs=2, alpha=0.05))  # where statsmodels gives up
    assert 0.9 < power_of(20.0, 2) < 1.0
    assert detectable_effect(2, power=0.99) > 20.0  # statsmodels' solver, on its NaN power, says 20.4
    assert power_of(detectable_effect(2, power=0.99), 2) == pytest.approx(0.99, abs=1e-10)
