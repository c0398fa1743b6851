"""The experiment report on a synthetic experiment, and the recommendation rules on hand-made numbers."""

import numpy as np
import pytest

from engine.ab.report import Comparison, build_report, comparisons_from, log_report, mean_interval, recommend
from engine.ab.results import ExperimentResult, VariantResult
from engine.errors import InputError
from engine.evaluation.judge import judge_from_texts

N = 40


def _experiment() -> ExperimentResult:
    """base (the reference: F1 about 35, 1 s, 2 GB), better (F1 about 35 points higher, 1.2 s, 2.5 GB) and fast
    (better's answers except on five items, a quarter-point lower on average: not significantly different from
    better, but 4x faster and the smallest)."""
    rng = np.random.default_rng(7)
    base = rng.uniform(0, 70, N).round(1)
    better = np.clip(base + rng.normal(35, 8, N), 0, 100).round(1)
    fast = better.copy()
    fast[:3] = np.clip(fast[:3] - 10, 0, 100)
    fast[3:5] = np.clip(fast[3:5] + 10, 0, 100)

    def variant(name, f1, latency, memory):
        lat = latency * rng.uniform(0.8, 1.2, N)
        rows = [{"item_id": f"q{i}", "question": f"Question {i}?", "gold": "gold", "prediction": "pred",
                 "em": float(f1[i] >= 80), "f1": float(f1[i]), "latency_s": float(lat[i]), "prompt_tokens": 120,
                 "new_tokens": 6} for i in range(N)]  # fmt: skip
        return VariantResult(name, {"name": name}, rows, load_s=2.0, peak_memory_gb=memory, weights_gb=memory / 2)

    variants = {"base": variant("base", base, 1.0, 2.0), "better": variant("better", better, 1.2, 2.5),
                "fast": variant("fast", fast, 0.3, 1.0)}  # fmt: skip
    return ExperimentResult("exp-report", {}, variants, created="2026-11-27T18:00:00Z", run_id="abc123")


@pytest.fixture(scope="module")
def report():
    result = _experiment()
    judge = judge_from_texts(["1", "2", "1", "1"], ["2", "1", "1", "2"], a="base", b="better", model="judge-model")
    return build_report(result, judge=judge)


def test_markdown_has_the_tables_and_the_holm_columns(report):
    md = report.markdown
    for heading in ("## Recommendations", "## Quality", "## Paired tests", "## Latency and memory", "## Judge"):
        assert heading in md
    assert "| variant | items | EM % [95% CI] | F1 [95% CI] | ΔF1 vs base [95% CI]" in md
    header = next(line for line in md.splitlines() if line.startswith("| comparison |"))
    assert header.count("Holm p") == 3  # McNemar, Wilcoxon and permutation, each corrected
    for label in ("better vs base", "fast vs base", "fast vs better"):
        assert f"| {label} |" in md
    assert "| p50 latency (s) | p95 latency (s) |" in md
    assert report.reference == "base"


def test_quality_and_intervals(report):
    q = report.quality
    assert q["better"].f1[0] > q["base"].f1[0] + 25
    for name in ("base", "better", "fast"):
        mean, low, high = q[name].f1
        assert low < mean < high
        assert 0 <= q[name].em[1] <= q[name].em[0] <= q[name].em[2] <= 100
    comps = {(c.a, c.b): c for c in report.comparisons}
    assert comps[("base", "better")].significant and comps[("base", "better")].diff > 25
    assert not comps[("better", "fast")].significant


def test_recommendations_name_the_better_for_quality_and_the_faster_for_speed(report):
    recs = {r.goal: r for r in report.recommendations}
    assert recs["quality"].variant == "better"
    assert recs["quality"].significant is False and recs["quality"].prefer == "fast"
    assert "no significant difference, prefer the cheaper fast" in recs["quality"].reason
    assert recs["speed"].variant == "fast" and recs["memory"].variant == "fast"
    assert "of the 2 variants whose F1 is not significantly below the best's (better" in recs["speed"].reason
    md = report.markdown
    assert "- **quality**: better (prefer fast)." in md
    assert "- **speed**: fast." in md
    assert "- **memory**: fast." in md
    assert "lowest p50 latency among the variants whose F1 is not significantly below" in md  # the rule is stated


def test_pareto_front_and_judge_section(report):
    assert report.pareto == ["better", "fast"]  # base: slower, bigger and worse than fast
    md = report.markdown
    assert "Pareto-optimal" in md
    # ("1", "2") -> base, ("2", "1") -> better, ("1", "1") -> a flip, a tie; ("1", "2") -> base
    assert "| base preferred | 2 |" in md and "| better preferred | 1 |" in md and "| tie | 1 |" in md
    assert "Position-flip rate 25%" in md and "judge-model" in md


def test_html_is_offline_and_has_the_charts(report):
    html = report.html
    assert html.startswith("<!DOCTYPE html>")
    assert html.count('class="plotly-graph-div"') == 3
    assert html.count("window.PlotlyConfig") == 1  # plotly.js embedded once
    assert "cdn.plot.ly" not in html
    assert '<script src="http' not in html and "<script src='http" not in html
    assert "<th>Holm p</th>" in html and "<strong>quality</strong>" in html


def test_two_variants_have_no_holm_column():
    result = _experiment()
    result.variants.pop("fast")
    found = build_report(result, reference="better", resamples=2000)
    header = next(line for line in found.markdown.splitlines() if line.startswith("| comparison |"))
    assert "Holm" not in header
    assert "no correction for multiple comparisons is needed" in found.markdown
    assert "| base vs better |" in found.markdown
    assert "No judge was run" in found.markdown
    recs = {r.goal: r for r in found.recommendations}
    assert recs["quality"].variant == "better" and recs["quality"].significant is True
    with pytest.raises(InputError, match="reference"):
        build_report(result, reference="nope")


def test_log_report_writes_both_artifacts(report):
    logged = []

    class FakeTracker:
        def log_text(self, run_id, text, path):
            logged.append((run_id, path, text))

    log_report(FakeTracker(), "run-1", report)
    assert [(r, p) for r, p, _ in logged] == [("run-1", "report.md"), ("run-1", "report.html")]
    assert logged[0][2] == report.markdown and logged[1][2] == report.html


def test_mean_interval():
    assert mean_interval([3.0, 3.0, 3.0]) == (3.0, 3.0, 3.0)
    mean, low, high = mean_interval(list(range(20)))
    assert mean == pytest.approx(9.5) and low < 9.5 < high


# ---- recommend() on hand-made numbers ----


def _s(f1: float, p50: float, mem: float) -> dict:
    return {"f1": f1, "latency_p50_s": p50, "latency_p95_s": 2 * p50, "peak_memory_gb": mem}


def _c(a: str, b: str, diff: float, p: float) -> Comparison:
    return Comparison(a, b, diff, diff - 2, diff + 2, p, p < 0.05)


def test_a_significant_lead_is_deployed_for_everything_when_the_others_are_significantly_worse():
    summaries = {"a": _s(50, 1.0, 2.0), "b": _s(60, 2.0, 3.0), "c": _s(40, 0.5, 1.0)}
    comps = [_c("a", "b", 10, 0.001), _c("a", "c", -10, 0.002), _c("b", "c", -20, 0.001)]
    quality, speed, memory = recommend(summaries, comps)
    assert (quality.goal, quality.variant, quality.significant, quality.prefer) == ("quality", "b", True, None)
    assert "significant after Holm" in quality.reason and "60.0" in quality.reason
    assert speed.variant == "b" and memory.variant == "b"
    assert "c (p50 0.5 s" in speed.reason and "significantly worse" in speed.reason


def test_no_significant_difference_prefers_the_cheaper():
    summaries = {"a": _s(50, 1.0, 2.0), "b": _s(51, 2.0, 3.0), "c": _s(30, 0.2, 0.5)}
    comps = [_c("a", "b", 1, 0.6), _c("a", "c", -20, 0.001), _c("b", "c", -21, 0.001)]
    quality, speed, memory = recommend(summaries, comps)
    assert quality.variant == "b" and quality.significant is False and quality.prefer == "a"
    assert "no significant difference, prefer the cheaper a" in quality.reason
    assert "p50 1 s against 2 s" in quality.reason
    # c is fastest and smallest but significantly worse than b: a is picked, and the rule is said
    assert speed.variant == "a" and memory.variant == "a"
    assert "not significantly below" in speed.rule and "lowest p50 latency" in speed.rule
    assert "c (p50 0.2 s" in speed.reason and "c (0.50 GB)" in memory.reason


def test_the_best_can_also_be_the_cheapest():
    summaries = {"a": _s(50, 1.0, 2.0), "b": _s(51, 0.5, 1.0)}
    quality, speed, memory = recommend(summaries, [_c("a", "b", 1, 0.4)])
    assert quality.variant == "b" and quality.significant is False and quality.prefer is None
    assert "which b is itself" in quality.reason
    assert speed.variant == "b" and memory.variant == "b"


def test_speed_and_memory_can_differ():
    summaries = {"a": _s(50, 1.0, 0.8), "b": _s(51, 0.5, 1.5), "c": _s(50.5, 0.7, 1.0)}
    comps = [_c("a", "b", 1, 0.5), _c("a", "c", 0.5, 0.7), _c("b", "c", -0.5, 0.8)]
    quality, speed, memory = recommend(summaries, comps)
    assert quality.variant == "b" and quality.prefer is None
    assert speed.variant == "b" and memory.variant == "a"
    assert "0.80 GB" in memory.reason


def test_missing_comparisons_and_memory_readings():
    summaries = {"a": _s(50, 1.0, 0.0), "b": _s(60, 2.0, 0.0)}
    quality, speed, memory = recommend(summaries, [])  # no comparison: not significant
    assert quality.variant == "b" and quality.prefer == "a" and "no paired test" in quality.reason
    assert speed.variant == "a"
    assert memory.variant is None and "No peak-memory readings" in memory.reason
    only = recommend({"solo": _s(40, 1.0, 1.0)}, [])
    assert [r.variant for r in only] == ["solo"] * 3
    with pytest.raises(InputError):
        recommend({}, [])


def test_comparisons_from_stats():
    from engine.stats import compare_variants

    rng = np.random.default_rng(1)
    ref = rng.uniform(0, 100, 30)
    scores = {"x": ref, "y": np.clip(ref + 30, 0, 100)}
    em = {"x": (ref > 70).astype(float), "y": (ref > 40).astype(float)}
    found = comparisons_from(compare_variants(scores, em, "x", resamples=1000))
    assert len(found) == 1
    c = found[0]
    assert (c.a, c.b) == ("x", "y") and c.diff > 0 and c.significant and c.gain("x") == -c.diff


def test_sensitivity_table_follows_the_observed_effects(report):
    from statsmodels.stats.power import TTestPower

    md = report.markdown
    assert "### Sensitivity" in md
    section = md.split("### Sensitivity")[1].split("## Latency")[0]
    rows = {line.strip("| ").split(" | ")[0]: line for line in section.splitlines() if line.startswith("| ")}
    assert set(rows) >= {"better vs base", "fast vs base", "fast vs better"}, section
    # fast vs better: a tiny effect, far from significant; the table says how many items it would need
    fast = _experiment().variants["fast"].scores("f1")
    better = _experiment().variants["better"].scores("f1")
    diff = np.asarray(fast) - np.asarray(better)
    d_z = diff.mean() / diff.std(ddof=1)
    needed = int(np.ceil(TTestPower().solve_power(effect_size=abs(d_z), alpha=0.05, power=0.8)))
    cells = rows["fast vs better"].strip("| ").split(" | ")
    assert cells[1] == f"{d_z:.2f}" and cells[3] == str(needed) and needed > N


def test_two_judged_pairs_each_get_their_section():
    judges = [judge_from_texts(["1"], ["2"], a="base", b="better", item_ids=["q0"]),
              judge_from_texts(["2"], ["1"], a="base", b="fast", item_ids=["q0"])]  # fmt: skip
    md = build_report(_experiment(), judge=judges, resamples=200).markdown
    assert "### better vs base" in md and "### fast vs base" in md
    assert "| base preferred | 1 |" in md and "| fast preferred | 1 |" in md
