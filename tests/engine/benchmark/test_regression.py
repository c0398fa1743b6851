"""Regression detection on synthetic benchmark runs: direction, thresholds, overrides, parsing."""

import math

import pytest

from engine.benchmark.regression import METRICS, Regression, compare_runs, parse_thresholds, regressions
from engine.errors import InputError

BASELINE = {
    "float32": {"decode_tok_s": 40.0, "f1": 36.0, "em": 25.0, "peak_rss_gb": 2.0, "ttft_s": 0.5},
    "int4-weight": {"decode_tok_s": 41.2, "f1": 36.1, "peak_rss_gb": 1.0},
}


def _row(rows: list[Regression], config: str, metric: str) -> Regression:
    [row] = [r for r in rows if r.config == config and r.metric == metric]
    return row


def _run(**changes: float) -> dict[str, dict[str, float]]:
    """The baseline with some float32 metrics replaced."""
    run = {config: dict(metrics) for config, metrics in BASELINE.items()}
    run["float32"].update(changes)
    return run


def test_registry_is_complete_and_consistent():
    assert set(METRICS) == {"load_s", "compile_s", "ttft_s", "e2e_s", "short_s", "decode_tok_s", "batch4_tok_s",
                            "batch16_tok_s", "peak_rss_gb", "em", "f1", "perplexity", "embed_per_s",
                            "retrieval_ms"}  # fmt: skip
    assert all(rule.name == key for key, rule in METRICS.items())
    assert not METRICS["f1"].relative and METRICS["f1"].threshold == 1.0
    assert METRICS["decode_tok_s"].higher_is_better and not METRICS["peak_rss_gb"].higher_is_better


def test_identical_runs_have_no_regressions():
    rows = compare_runs(BASELINE, BASELINE)
    assert len(rows) == 8  # every (config, metric) pair in both runs
    assert regressions(rows) == []
    assert all(row.change == 0 for row in rows)


def test_large_speed_drop_is_flagged_small_one_is_not():
    big = _row(compare_runs(_run(decode_tok_s=28.0), BASELINE), "float32", "decode_tok_s")
    assert big.worse and big.change == pytest.approx(-0.30)
    small = _row(compare_runs(_run(decode_tok_s=38.0), BASELINE), "float32", "decode_tok_s")
    assert not small.worse and small.change == pytest.approx(-0.05)


def test_f1_uses_absolute_points():
    drop = _row(compare_runs(_run(f1=34.5), BASELINE), "float32", "f1")
    assert drop.worse and drop.change == pytest.approx(-1.5)
    assert not _row(compare_runs(_run(f1=35.5), BASELINE), "float32", "f1").worse


def test_threshold_is_strict():
    # exactly at the threshold is not yet a regression (2.0 points of EM)
    assert not _row(compare_runs(_run(em=23.0), BASELINE), "float32", "em").worse
    assert _row(compare_runs(_run(em=22.9), BASELINE), "float32", "em").worse


def test_lower_is_better_metrics_flag_rises():
    rows = compare_runs(_run(peak_rss_gb=2.5, ttft_s=0.55), BASELINE)
    assert _row(rows, "float32", "peak_rss_gb").worse  # +25% against 10%
    assert not _row(rows, "float32", "ttft_s").worse  # +10% against 15%


def test_improvements_are_never_flagged():
    better = _run(decode_tok_s=400.0, f1=90.0, em=80.0, peak_rss_gb=0.1, ttft_s=0.01)
    rows = compare_runs(better, BASELINE)
    assert regressions(rows) == []
    assert _row(rows, "float32", "decode_tok_s").change == pytest.approx(9.0)


def test_threshold_overrides_change_the_verdict():
    current = _run(decode_tok_s=38.0, f1=34.5)
    assert {r.metric for r in regressions(compare_runs(current, BASELINE))} == {"f1"}
    overridden = compare_runs(current, BASELINE, thresholds={"decode_tok_s": 0.01, "f1": 2.0})
    assert {r.metric for r in regressions(overridden)} == {"decode_tok_s"}
    assert _row(overridden, "float32", "f1").threshold == 2.0


def test_bad_threshold_overrides_are_rejected():
    with pytest.raises(InputError, match="bogus"):
        compare_runs(BASELINE, BASELINE, thresholds={"bogus": 0.1})
    with pytest.raises(InputError, match="f1"):
        compare_runs(BASELINE, BASELINE, thresholds={"f1": -1.0})


def test_configs_and_metrics_in_one_run_only_are_ignored():
    current = _run(unknown_metric=1.0)
    current["int8"] = {"decode_tok_s": 1.0}
    del current["int4-weight"]
    baseline = {**BASELINE, "bf16": {"decode_tok_s": 100.0}}
    rows = compare_runs(current, baseline)
    assert {r.config for r in rows} == {"float32"}
    assert {r.metric for r in rows} == {"decode_tok_s", "f1", "em", "peak_rss_gb", "ttft_s"}


def test_missing_values_and_zero_baselines_are_skipped():
    current = _run(decode_tok_s=math.nan, f1=None)
    baseline = {"float32": {**BASELINE["float32"], "ttft_s": 0.0}}
    assert {r.metric for r in compare_runs(current, baseline)} == {"em", "peak_rss_gb"}


def test_describe():
    current = {"int4-weight": {"decode_tok_s": 30.1, "f1": 33.9}}
    rows = compare_runs(current, BASELINE)
    assert _row(rows, "int4-weight", "decode_tok_s").describe() == (
        "int4-weight decode_tok_s: 41.2 -> 30.1 (-27%, threshold 15%)"
    )
    assert _row(rows, "int4-weight", "f1").describe() == "int4-weight f1: 36.1 -> 33.9 (-2.2 points, threshold 1.0)"


def test_parse_thresholds():
    assert parse_thresholds("f1=0.5,decode_tok_s=0.1") == {"f1": 0.5, "decode_tok_s": 0.1}
    assert parse_thresholds(" f1 = 0 , ") == {"f1": 0.0}
    assert parse_thresholds("") == {}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("speed=0.1", "speed"),
        ("f1=abc", "abc"),
        ("f1=-0.5", "f1=-0.5"),
        ("f1=nan", "f1=nan"),
        ("f1", "f1"),
        ("f1=0.5,=0.2", "=0.2"),
    ],
)
def test_parse_thresholds_errors_name_the_bad_part(text, named):
    with pytest.raises(InputError, match=named):
        parse_thresholds(text)
