"""Holm's correction against a worked example and statsmodels; comparisons of several variants."""

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from engine.errors import InputError
from engine.stats import compare_paired, compare_variants, holm

RNG = np.random.default_rng(11)
N = 80
REF = RNG.uniform(0, 100, N)
SCORES = {
    "base": REF,
    "better": REF + RNG.normal(6, 10, N),
    "same": REF + RNG.normal(0, 10, N),
}
REF_EM = (RNG.uniform(size=N) < 0.4).astype(int)
EM = {
    "base": REF_EM,
    "better": np.where(RNG.uniform(size=N) < 0.25, 1, REF_EM),
    "same": np.where(RNG.uniform(size=N) < 0.1, 1 - REF_EM, REF_EM),
}


def test_holm_on_a_worked_example() -> None:
    # Sorted: d 0.005, a 0.01, c 0.03, b 0.04, multiplied by 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04; then each
    # adjusted value is raised to the largest before it (step-down): 0.02, 0.03, 0.06, 0.06.
    found = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005})
    assert {k: v.adjusted for k, v in found.items()} == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06, "d": 0.02})
    assert {k: v.reject for k, v in found.items()} == {"a": True, "b": False, "c": False, "d": True}
    assert found["b"].p_value == 0.04
    assert list(found) == ["a", "b", "c", "d"]  # the caller's order is kept


def test_holm_matches_statsmodels_and_caps_at_one() -> None:
    p = RNG.uniform(0, 0.2, 12)
    found = holm({f"h{i}": v for i, v in enumerate(p)}, alpha=0.1)
    reject, adjusted, _, _ = multipletests(p, alpha=0.1, method="holm")
    assert [found[f"h{i}"].adjusted for i in range(12)] == pytest.approx(adjusted, abs=1e-9)
    assert [found[f"h{i}"].reject for i in range(12)] == list(reject)
    assert holm({"x": 0.6, "y": 0.7})["x"].adjusted == 1.0
    assert holm({"only": 0.03})["only"].adjusted == 0.03  # a family of one is not corrected


def test_two_variants_give_one_comparison_against_the_reference() -> None:
    two = ("base", "better")
    found = compare_variants({k: SCORES[k] for k in two}, {k: EM[k] for k in two}, "base", resamples=1000)
    assert list(found.comparisons) == ["better vs base"]
    direct = compare_paired(REF, SCORES["better"], REF_EM, EM["better"], resamples=1000)
    assert found.comparisons["better vs base"] == direct
    assert found.adjusted["t"]["better vs base"].adjusted == direct.t.p_value  # one test: nothing to correct


def test_three_variants_compare_every_pair_and_correct_each_test_family() -> None:
    found = compare_variants(SCORES, EM, "base", resamples=1000)
    assert list(found.comparisons) == ["better vs base", "same vs base", "same vs better"]
    assert found.reference == "base" and found.alpha == 0.05
    for test in ("mcnemar", "wilcoxon", "permutation", "t"):
        raw = [c.tests[test].p_value for c in found.comparisons.values()]
        reject, adjusted, _, _ = multipletests(raw, alpha=0.05, method="holm")
        family = found.adjusted[test]
        assert [family[k].adjusted for k in found.comparisons] == pytest.approx(adjusted, abs=1e-9)
        assert [family[k].reject for k in found.comparisons] == list(reject)
    # The planted gain is found after correction; the null variant is not.
    assert found.adjusted["t"]["better vs base"].reject
    assert not found.adjusted["t"]["same vs base"].reject
    assert found.comparisons["same vs better"].t.effect < 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: holm({}), "at least one"),
        (lambda: holm({"a": 1.5}), "'a' must be a number from 0 to 1"),
        (lambda: holm({"a": float("nan")}), "from 0 to 1"),
        (lambda: holm({"a": "x"}), "from 0 to 1"),
        (lambda: holm({"a": 0.1}, alpha=0), "significance level"),
        (lambda: compare_variants({"base": REF}, EM, "base"), "at least two"),
        (lambda: compare_variants(SCORES, EM, "missing"), "'missing' is not among"),
        (lambda: compare_variants(SCORES, {"base": REF_EM}, "base"), "better, same"),
        (lambda: compare_variants({"base": REF, "x": REF}, EM, "base"), "better, same, x"),
        (lambda: compare_variants({**SCORES, "short": REF[:10]}, {**EM, "short": REF_EM[:10]}, "base"), "same items"),
    ],
)
def test_bad_input_is_an_input_error(call, message) -> None:
    with pytest.raises(InputError, match=message):
        call()
