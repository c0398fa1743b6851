"""The statistics faults of the issue, one test each: the t-test power at large n, the McNemar sample size
against the exact test's own power, and NaN or infinite scores reaching a bootstrap."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from engine.errors import InputError
from engine.stats import connor_sample_size, mcnemar_sample_size, minimum_sample_size, power_of


def _simulated_t_power(d_z: float, n: int, sims: int, rng: np.random.Generator) -> float:
    """The share of simulated paired t-tests (two-sided, 5%) that reject: ``sims`` experiments of ``n`` item
    differences drawn from N(d_z, 1), each tested from its own mean and standard deviation."""
    crit = sps.t.ppf(0.975, n - 1)
    rejections = 0
    for start in range(0, sims, 1000):  # blocks keep the (experiments x items) array small at n = 2000
        diff = rng.normal(d_z, 1.0, (min(1000, sims - start), n))
        t = diff.mean(axis=1) / (diff.std(axis=1, ddof=1) / math.sqrt(n))
        rejections += int(np.sum(np.abs(t) > crit))
    return rejections / sims


@pytest.mark.parametrize("n", [20, 50, 100, 200, 300, 500, 1000, 2000])
def test_power_of_at_large_n_agrees_with_the_noncentral_t_and_a_simulation(n) -> None:
    """Before the fix power_of(0.5, 300) was about 0 (the integral missed the chi-square peak) next to
    34 items needed; now it is the noncentral t's power at every n, and simulated tests reject as often."""
    rng = np.random.default_rng(n)
    sims = 4000
    crit = sps.t.ppf(0.975, n - 1)
    for d_z in (2.5 / math.sqrt(n), 0.5):  # power about 0.7 (where a simulation can tell), and the issue's d_z
        nc = d_z * math.sqrt(n)
        expected = float(sps.nct.sf(crit, n - 1, nc) + sps.nct.sf(crit, n - 1, -nc))
        found = power_of(d_z, n)
        assert found == pytest.approx(expected, abs=1e-12)
        se = math.sqrt(found * (1 - found) / sims)
        assert _simulated_t_power(d_z, n, sims, rng) == pytest.approx(found, abs=4.5 * se + 1e-9)
    assert (power_of(0.5, n) >= 0.8) == (n >= minimum_sample_size(0.5))  # no more "power 0%" beside 34 needed


def _exact_mcnemar_powers(p01: float, p10: float, top: int, alpha: float) -> np.ndarray:
    """The exact McNemar test's power on every n from 0 to ``top``, by enumeration: for each number of
    discordant items D, every split b + c = D and its binomial chance, rejected where statsmodels' exact
    p-value min(1, 2 F(min(b, c); D, 1/2)) is at most alpha; then summed over D ~ Binomial(n, p01 + p10)."""
    psi = p01 + p10
    d = np.arange(top + 1)[:, None]
    b = np.arange(top + 1)[None, :]
    valid = b <= d
    p_value = np.minimum(1, 2 * sps.binom.cdf(np.minimum(b, d - b), d, 0.5))
    given = np.where(valid & (p_value <= alpha), sps.binom.pmf(b, d, p01 / psi), 0).sum(axis=1)
    n = np.arange(top + 1)[:, None]
    return sps.binom.pmf(d.T, n, psi) @ given


@pytest.mark.parametrize(
    ("p01", "p10", "alpha", "power"),
    [(0.2, 0.1, 0.05, 0.8), (0.1, 0.05, 0.05, 0.8), (0.05, 0.01, 0.05, 0.8), (0.3, 0.1, 0.01, 0.9),
     (0.02, 0.0, 0.05, 0.8), (0.25, 0.05, 0.05, 0.95)],
)  # fmt: skip
def test_the_mcnemar_sample_size_reaches_the_power_of_the_exact_test(p01, p10, alpha, power) -> None:
    """Connor's formula reached only 0.76-0.78 power with the exact test; the sample size is now the first n
    whose exact power (computed here by enumeration, independently) reaches the target."""
    n = mcnemar_sample_size(p01, p10, alpha, power)
    powers = _exact_mcnemar_powers(p01, p10, n + 10, alpha)
    assert powers[n] >= power
    assert (powers[2:n] < power).all()  # no fewer items would do, though the power is not monotone in n
    connor = connor_sample_size(p01, p10, alpha, power)
    assert connor < n and powers[connor] < power  # the old answer falls short


def _callers():
    from engine.ab.recommend import mean_interval
    from engine.benchmark.runs import degradation
    from engine.benchmark.selection import Candidate, select_config
    from engine.stats import bootstrap_mean, compare_paired, paired_bootstrap

    def select(scores):
        ref = Candidate("ref", (50.0, 60.0, 70.0, 80.0), 10.0, 2.0)
        return select_config([ref, Candidate("int4", tuple(scores), 20.0, 1.0)], "ref")

    def report(scores):
        return degradation({"ref": {"scores": {"f1": [50.0, 60.0, 70.0, 80.0]}}, "x": {"scores": {"f1": scores}}},
                           "ref")  # fmt: skip

    return {
        "bootstrap_mean": bootstrap_mean,
        "paired_bootstrap": lambda s: paired_bootstrap([50.0, 60.0, 70.0, 80.0], s),
        "compare_paired": lambda s: compare_paired([50.0, 60.0, 70.0, 80.0], s, [1, 0, 1, 0], [1, 1, 0, 0]),
        "A/B report mean_interval": mean_interval,
        "benchmark degradation": report,
        "configuration selection": select,
    }


@pytest.mark.parametrize(
    "caller",
    [
        "bootstrap_mean",
        "paired_bootstrap",
        "compare_paired",
        "A/B report mean_interval",
        "benchmark degradation",
        "configuration selection",
    ],
)
def test_every_bootstrap_caller_rejects_nan_and_inf_through_the_checked_entry_point(caller) -> None:
    call = _callers()[caller]
    for bad, what in ((math.nan, "item 2 is NaN"), (math.inf, "item 2 is infinite"), (-math.inf, "item 2 is infinite")):
        with pytest.raises(InputError, match=f"finite numbers; {what}"):
            call([52.0, 61.0, bad, 83.0])
    call([52.0, 61.0, 69.0, 83.0])  # finite scores still give an interval
