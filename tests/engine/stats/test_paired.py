"""Paired tests: each agrees with scipy/statsmodels called directly, and with ground truth worked out here."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar

from engine.errors import InputError
from engine.stats import (
    PairedDifference,
    compare_paired,
    mcnemar_exact,
    paired_bootstrap,
    paired_permutation,
    paired_t,
    wilcoxon_signed_rank,
)

RNG = np.random.default_rng(7)
N = 60
A = RNG.uniform(0, 100, N)
B = A + RNG.normal(3, 8, N)
A_EM = (RNG.uniform(size=N) < 0.4).astype(int)
B_EM = np.where(RNG.uniform(size=N) < 0.2, 1, A_EM)


def _from_table(both: int, only_a: int, only_b: int, neither: int) -> tuple[list[int], list[int]]:
    """0/1 scores of A and B that make the given 2x2 table."""
    a = [1] * both + [1] * only_a + [0] * only_b + [0] * neither
    b = [1] * both + [0] * only_a + [1] * only_b + [0] * neither
    return a, b


# --- McNemar ---------------------------------------------------------------------------------


def test_mcnemar_on_a_textbook_table_matches_the_binomial_and_statsmodels() -> None:
    # Agresti's approval ratings: 794 approve twice, 150 approve then disapprove, 86 the reverse, 570 never.
    a, b = _from_table(794, 150, 86, 570)
    found = mcnemar_exact(a, b)
    assert found.detail["table"] == [[794, 150], [86, 570]]
    assert (found.detail["b_only_right"], found.detail["a_only_right"]) == (86, 150)
    assert found.p_value == pytest.approx(min(1.0, 2 * sps.binom.cdf(86, 236, 0.5)), abs=1e-12)
    assert found.p_value < 1e-4
    direct = mcnemar([[794, 150], [86, 570]], exact=True)
    assert found.p_value == pytest.approx(direct.pvalue, abs=1e-9)
    assert found.statistic == pytest.approx(direct.statistic, abs=1e-9) == 86
    assert found.effect == pytest.approx(86 / 150)
    assert found.n == 1600


def test_mcnemar_p_is_capped_at_one_and_the_odds_ratio_follows_b() -> None:
    a, b = _from_table(4, 3, 3, 2)
    found = mcnemar_exact(a, b)
    assert 2 * sps.binom.cdf(3, 6, 0.5) > 1
    assert found.p_value == 1.0 and found.effect == 1.0
    a, b = _from_table(5, 1, 9, 5)  # B fixes 9 items and breaks 1
    found = mcnemar_exact(a, b)
    assert found.effect == 9.0
    assert found.p_value == pytest.approx(2 * sps.binom.cdf(1, 10, 0.5), abs=1e-12)


def test_mcnemar_without_discordant_items_or_with_only_gains() -> None:
    same = mcnemar_exact([1, 0, 1, 0], [1, 0, 1, 0])
    assert (same.p_value, same.effect) == (1.0, 1.0)
    gains = mcnemar_exact([0, 0, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1, 1])
    assert gains.effect == math.inf
    assert gains.p_value == pytest.approx(2 * 0.5**6)


def test_mcnemar_on_synthetic_scores_matches_statsmodels() -> None:
    found = mcnemar_exact(A_EM, B_EM)
    direct = mcnemar(found.detail["table"], exact=True)
    assert found.p_value == pytest.approx(direct.pvalue, abs=1e-9)
    assert sum(map(sum, found.detail["table"])) == N
    assert found.detail["table"][0][0] == int(np.sum((A_EM == 1) & (B_EM == 1)))


# --- Wilcoxon --------------------------------------------------------------------------------

# Darwin's paired plant heights (Fisher, The Design of Experiments): crossed minus self-fertilised, in 1/8 inch.
DARWIN = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]


def test_wilcoxon_on_darwins_plants_matches_the_exact_null_distribution() -> None:
    found = wilcoxon_signed_rank([0] * 15, DARWIN)
    # The negative differences -48 and -67 have ranks 10 and 14: W = 24, R+ = 120 - 24 = 96.
    assert found.statistic == 24
    assert (found.detail["r_plus"], found.detail["r_minus"]) == (96, 24)
    assert found.effect == pytest.approx((96 - 24) / 120)
    # Exact two-sided p: the share of the 2**15 sign patterns of ranks 1..15 whose smaller rank sum is <= 24.
    ranks = np.arange(1, 16)
    signs = (np.arange(2**15)[:, None] >> np.arange(15)) & 1
    r_minus = (signs * ranks).sum(axis=1)
    extreme = np.minimum(r_minus, 120 - r_minus) <= 24
    assert found.p_value == pytest.approx(extreme.mean(), abs=1e-12)
    assert found.p_value == pytest.approx(0.041259765625, abs=1e-12)
    direct = sps.wilcoxon(DARWIN, zero_method="wilcox", alternative="two-sided")
    assert (found.statistic, found.p_value) == pytest.approx((direct.statistic, direct.pvalue), abs=1e-9)


def test_wilcoxon_on_synthetic_scores_matches_scipy_and_drops_zeros() -> None:
    a = A.round()
    b = np.where(RNG.uniform(size=N) < 0.2, a, B.round())  # some items unchanged: zero differences
    found = wilcoxon_signed_rank(a, b)
    direct = sps.wilcoxon(b - a, zero_method="wilcox", alternative="two-sided")
    assert (found.statistic, found.p_value) == pytest.approx((direct.statistic, direct.pvalue), abs=1e-9)
    assert found.detail["zeros"] == int(np.sum(a == b)) > 0
    assert found.effect > 0  # B was shifted up
    m = N - found.detail["zeros"]  # the ranks 1..m of the non-zero differences are split between R+ and R-
    assert found.detail["r_plus"] + found.detail["r_minus"] == pytest.approx(m * (m + 1) / 2)


def test_wilcoxon_rank_biserial_is_one_when_b_always_wins_and_symmetric() -> None:
    assert wilcoxon_signed_rank([1, 2, 3, 4], [2, 4, 6, 8]).effect == 1.0
    forward, backward = wilcoxon_signed_rank(A, B), wilcoxon_signed_rank(B, A)
    assert backward.effect == pytest.approx(-forward.effect)
    assert backward.p_value == pytest.approx(forward.p_value)


def test_wilcoxon_with_every_difference_zero_says_no_evidence() -> None:
    found = wilcoxon_signed_rank([1, 2, 3], [1, 2, 3])
    assert (found.p_value, found.effect, found.statistic) == (1.0, 0.0, 0.0)
    assert "zero" in found.detail["note"]


# --- Permutation -----------------------------------------------------------------------------


def test_permutation_on_six_items_equals_the_enumerated_exact_p() -> None:
    a = [10, 12, 9, 15, 11, 14]
    b = [13, 14, 8, 19, 15, 15]
    diff = np.subtract(b, a)  # 3, 2, -1, 4, 4, 1: integer sums keep the enumeration exact
    observed = abs(diff.sum())
    signs = itertools.product((1, -1), repeat=6)
    flipped = [abs(sum(s * d for s, d in zip(flips, diff, strict=True))) for flips in signs]
    exact = sum(f >= observed for f in flipped) / 64
    found = paired_permutation(a, b)
    assert found.detail["exact"] and found.detail["resamples"] == 64
    assert found.p_value == pytest.approx(exact, abs=1e-12)
    # By hand: |d| sums to 15; flipping a set of size s gives 15 - 2s, at least 13 in size when s <= 1 (flip
    # nothing or one of the two 1s) or s >= 14 (the mirror images): 6 of 64.
    assert exact == pytest.approx(6 / 64)
    assert found.statistic == pytest.approx(diff.mean())
    assert found.effect == pytest.approx(diff.mean() / diff.std(ddof=1))


def test_permutation_on_synthetic_scores_matches_scipy_with_the_same_seed() -> None:
    found = paired_permutation(A, B, resamples=2000, seed=3)
    direct = sps.permutation_test(
        (A, B), lambda x, y, axis: np.mean(y - x, axis=axis), permutation_type="samples", vectorized=True,
        n_resamples=2000, alternative="two-sided", rng=np.random.default_rng(3),
    )  # fmt: skip
    assert (found.statistic, found.p_value) == pytest.approx((direct.statistic, direct.pvalue), abs=1e-9)
    assert not found.detail["exact"]
    assert paired_permutation(A, B, resamples=2000, seed=3) == found  # the seed makes it repeatable


def test_permutation_effect_is_zero_without_change_and_unbounded_for_a_constant_gain() -> None:
    assert paired_permutation([1, 2, 3], [1, 2, 3]).effect == 0.0
    assert paired_permutation([1, 2, 3], [1, 2, 3]).p_value == 1.0
    assert paired_permutation([1, 2, 3], [2, 3, 4]).effect == math.inf


# --- t-test ----------------------------------------------------------------------------------


def test_paired_t_matches_scipy_and_the_formula() -> None:
    found = paired_t(A, B)
    direct = sps.ttest_rel(B, A)
    assert (found.statistic, found.p_value) == pytest.approx((direct.statistic, direct.pvalue), abs=1e-9)
    diff = B - A
    d_z = diff.mean() / diff.std(ddof=1)
    assert found.effect == pytest.approx(d_z, abs=1e-12)
    assert found.statistic == pytest.approx(d_z * math.sqrt(N), abs=1e-9)  # t = d_z * sqrt(n)
    p = 2 * sps.t.sf(abs(found.statistic), N - 1)
    assert found.p_value == pytest.approx(p, abs=1e-12)
    assert found.detail["ci_low"] < diff.mean() < found.detail["ci_high"]


def test_paired_t_without_spread_in_the_differences() -> None:
    none = paired_t([1, 2, 3], [1, 2, 3])
    assert (none.statistic, none.p_value, none.effect) == (0.0, 1.0, 0.0)
    drop = paired_t([2, 3, 4], [1, 2, 3])
    assert (drop.statistic, drop.p_value, drop.effect) == (-math.inf, 0.0, -math.inf)


# --- All together and bad input -------------------------------------------------------------


def test_compare_paired_runs_every_test_on_the_right_scores() -> None:
    found = compare_paired(A, B, A_EM, B_EM, resamples=2000)
    assert isinstance(found.bootstrap, PairedDifference)
    assert found.bootstrap == paired_bootstrap(A, B, resamples=2000)
    assert found.mcnemar == mcnemar_exact(A_EM, B_EM)
    assert found.wilcoxon == wilcoxon_signed_rank(A, B)
    assert found.permutation == paired_permutation(A, B, resamples=2000)
    assert found.t == paired_t(A, B)
    assert set(found.tests) == {"mcnemar", "wilcoxon", "permutation", "t"}
    assert found.t.p_value < 0.05 and found.bootstrap.above_zero  # B = A + 3 on average


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: paired_t([1, 2, 3], [1, 2]), "same items: 3 against 2"),
        (lambda: wilcoxon_signed_rank([1], [2]), "at least two items"),
        (lambda: paired_permutation([1, float("nan")], [1, 2]), "item 1 is NaN"),
        (lambda: paired_t([1, 2], [1, float("inf")]), "finite"),
        (lambda: paired_t(["a", "b"], [1, 2]), "must be numbers"),
        (lambda: mcnemar_exact([1, 0, 2], [1, 0, 1]), "0 or 1"),
        (lambda: mcnemar_exact([1, 0], [1, 0, 1]), "same items"),
        (lambda: paired_permutation([1, 2], [2, 3], resamples=0), "at least one resample"),
        (lambda: compare_paired([1, 2, 3], [2, 3, 4], [1, 0], [1, 1]), "same items"),
    ],
)
def test_bad_input_is_an_input_error(call, message) -> None:
    with pytest.raises(InputError, match=message):
        call()
