"""Bootstrap intervals (paired differences and means), checked against cases whose answer is known."""

import math

import numpy as np
import pytest

from engine.errors import InputError
from engine.stats import bootstrap_mean, paired_bootstrap


def test_a_clear_improvement_has_an_interval_above_zero() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 50, 300)
    b = a + 10 + rng.normal(0, 5, 300)
    found = paired_bootstrap(a, b)
    assert found.low > 0 and found.above_zero
    assert found.low < found.mean < found.high
    assert found.mean == pytest.approx(float(np.mean(b - a)))
    assert 8 < found.mean < 12


def test_no_difference_has_an_interval_around_zero() -> None:
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 100, 300)
    b = a + rng.normal(0, 10, 300)
    found = paired_bootstrap(a, b)
    assert found.low < 0 < found.high and not found.above_zero


def test_pairing_matters() -> None:
    # Large spread between questions, a small consistent gain: only the paired view sees it.
    a = np.linspace(0, 100, 200)
    b = a + 1.0 + np.tile([-0.1, 0.1], 100)
    assert paired_bootstrap(a, b).low > 0.9


def test_identical_differences_give_a_point_interval() -> None:
    found = paired_bootstrap([1, 2, 3], [2, 3, 4])
    assert (found.mean, found.low, found.high) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: paired_bootstrap([1, 2], [1]), "same items: 2 against 1"),
        (lambda: paired_bootstrap([1], [2]), "at least two items"),
        (lambda: paired_bootstrap([1, float("nan"), 3], [1, 2, 3]), r"item 1 is NaN"),
        (lambda: paired_bootstrap([1, 2, 3], [1, 2, float("-inf")]), "item 2 is infinite"),
        (lambda: paired_bootstrap([1e308, 0], [-1e308, 1]), "differences must be finite numbers; item 0 is infinite"),
        (lambda: paired_bootstrap([1, 2, 3], [2, 2, 5], confidence=1.0), "confidence level"),
        (lambda: paired_bootstrap([1, 2, 3], [2, 2, 5], resamples=0), "at least one resample"),
        (lambda: bootstrap_mean([1.0, math.inf]), "item 1 is infinite"),
        (lambda: bootstrap_mean([math.nan, math.nan, 1.0], what="F1 scores"), r"F1 scores.*item 0 is NaN.*2 bad"),
        (lambda: bootstrap_mean([1.0]), "at least two scores"),
        (lambda: bootstrap_mean(["x", 1.0]), "must be numbers"),
        (lambda: bootstrap_mean([[1.0, 2.0]]), "flat list"),
        (lambda: bootstrap_mean([1.0, 2.0], method="bca"), "Unknown bootstrap method 'bca'"),
    ],
)
def test_bad_input_is_an_input_error(call, message) -> None:
    with pytest.raises(InputError, match=message):
        call()


def test_the_mean_interval_is_scipys_bootstrap_of_the_mean() -> None:
    from scipy import stats

    x = np.random.default_rng(3).normal(50, 10, 60)
    for method in ("BCa", "percentile"):
        found = bootstrap_mean(x, 0.9, 2000, 4, method).confidence_interval
        expected = stats.bootstrap((x,), np.mean, confidence_level=0.9, n_resamples=2000, method=method,
                                   rng=np.random.default_rng(4)).confidence_interval  # fmt: skip
        assert (found.low, found.high) == (expected.low, expected.high)
        assert found.low < x.mean() < found.high


def test_the_interval_matches_scipys_paired_bootstrap_of_both_score_lists() -> None:
    """Resampling the differences equals scipy's paired resampling of (a, b) with the same generator."""
    from scipy import stats

    rng = np.random.default_rng(5)
    a = rng.uniform(0, 100, 80)
    b = a + rng.normal(3, 20, 80)
    found = paired_bootstrap(a, b, resamples=3000, seed=11)
    scipy_found = stats.bootstrap((a, b), lambda x, y, axis=-1: np.mean(y - x, axis=axis), paired=True,
                                  n_resamples=3000, random_state=np.random.default_rng(11), method="BCa")  # fmt: skip
    assert found.low == pytest.approx(scipy_found.confidence_interval.low, abs=1e-9)
    assert found.high == pytest.approx(scipy_found.confidence_interval.high, abs=1e-9)
    assert found.low < 2.0 < found.high
