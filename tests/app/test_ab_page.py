"""The A/B Test page under AppTest: the report of a saved experiment, and the form starting a job."""

from __future__ import annotations

import random

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from engine import jobs
from engine.ab.results import ExperimentResult, VariantResult, save_result
from engine.settings import ROOT


def variant(name: str, good: float, latency: float, memory: float, rng: random.Random) -> VariantResult:
    rows = []
    for i in range(40):
        right = rng.random() < good
        rows.append({"item_id": f"q{i}", "question": f"question {i}", "gold": "yes", "prediction": "yes" if right
                     else "no", "em": 100.0 * right, "f1": 100.0 * right, "latency_s": latency * rng.uniform(0.8, 1.2),
                     "prompt_tokens": 300, "new_tokens": 4})  # fmt: skip
    return VariantResult(name, {"name": name}, rows, 2.0, memory, 0.3, "cpu", 10.0)


@pytest.fixture
def experiment(settings):
    st.cache_resource.clear()
    rng = random.Random(0)
    variants = {"base": variant("base", 0.3, 1.0, 2.0, rng), "tuned": variant("tuned", 0.8, 1.1, 2.1, rng),
                "small": variant("small", 0.3, 0.4, 1.0, rng)}  # fmt: skip
    result = ExperimentResult("20261127-000000-demo", {"name": "demo"}, variants, "2026-11-27T00:00:00")
    save_result(result, settings)
    yield result
    st.cache_resource.clear()


def page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages/6_AB_Test.py"), default_timeout=120).run()


def test_the_report_recommends_from_the_numbers(experiment):
    at = page()
    assert not at.exception, at.exception
    recommendations = [m.value for m in at.markdown if m.value.startswith("- **")]
    assert any(r.startswith("- **quality: tuned**") for r in recommendations), recommendations
    # small is the fastest but significantly worse in F1, so speed goes to tuned, which says why not small
    speed = [r for r in recommendations if r.startswith("- **speed: ")]
    assert len(speed) == 1 and speed[0].startswith("- **speed: tuned**"), speed
    assert "small (p50" in speed[0] and "significantly worse" in speed[0], speed
    report = next(m.value for m in at.markdown if "## Paired tests" in m.value)
    assert "tuned" in report and "Holm" in report
    assert len(at.get("plotly_chart")) == 3


def test_the_form_checks_the_variants_and_starts_a_job(experiment, settings):
    at = page()
    at.text_input(key="ab-name").set_value("  ")  # in a form: set and submitted in one run
    next(b for b in at.button if b.label == "Run experiment").click().run()
    assert not at.exception, at.exception
    assert at.error and "name" in at.error[0].value
    at.text_input(key="ab-name").set_value("page-test")
    next(b for b in at.button if b.label == "Run experiment").click().run()
    assert not at.exception, at.exception
    job_id = at.session_state["ab-job"]
    state = jobs.get_job(job_id, settings)
    assert state.kind == "ab" and state.args["name"] == "page-test"
    assert state.args["variants"][1]["quantization"] == "int4-weight"
    jobs.cancel_job(job_id, settings)


def test_the_judge_form_checks_the_pair_starts_a_job_and_saved_verdicts_show(experiment, settings):
    from engine.ab.judging import save_judge
    from engine.evaluation.judge import DEFAULT_JUDGE, judge_from_texts

    ids = [f"q{i}" for i in range(40)]
    # answer 1 in the first order and answer 2 in the second: base both times
    judge = judge_from_texts(["1"] * 40, ["2"] * 40, a="base", b="tuned", item_ids=ids, model="test-judge")
    save_judge(experiment.id, judge, DEFAULT_JUDGE, True, settings)
    at = page()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "position-flip rate" in d.value.columns)
    row = table.to_dict("records")[0]
    assert row["pair"] == "base vs tuned" and row["verdicts"] == "base 40 · tuned 0 · tie 0"
    assert (row["judged"], row["position-flip rate"], row["position 1 picked"]) == (40, "0%", "50%")
    report = next(m.value for m in at.markdown if "## Paired tests" in m.value)
    assert "| base preferred | 40 |" in report

    at.selectbox(key="ab-judge-b").set_value("base")
    next(b for b in at.button if b.label == "Run the judge").click().run()
    assert not at.exception, at.exception
    assert any("two different variants" in e.value for e in at.error)
    assert "ab-judge-job" not in at.session_state
    at.selectbox(key="ab-judge-b").set_value("small")
    at.text_input(key="ab-judge-model").set_value(" my/judge ")
    next(b for b in at.button if b.label == "Run the judge").click().run()
    assert not at.exception, at.exception
    state = jobs.get_job(at.session_state["ab-judge-job"], settings)
    assert state.kind == "judge"
    assert state.args == {"experiment": experiment.id, "a": "base", "b": "small", "model": "my/judge",
                          "with_reference": True}  # fmt: skip
    jobs.cancel_job(state.id, settings)


def test_the_sample_size_calculator_answers_and_explains_bad_input(experiment):
    from engine.stats import mcnemar_sample_size, minimum_sample_size

    at = page()
    at.number_input(key="ab-power-gain").set_value(6.0)
    at.number_input(key="ab-power-sd").set_value(30.0).run()
    assert not at.exception, at.exception
    shown = [m.value for m in at.markdown if m.value.startswith("**")]
    assert any(v.startswith(f"**{minimum_sample_size(0.2)} items** for a paired t-test") for v in shown), shown
    assert any(v.startswith(f"**{mcnemar_sample_size(0.10, 0.05)} items** for McNemar") for v in shown), shown
    at.number_input(key="ab-power-p10").set_value(10.0).run()  # as many fixes as breaks: nothing to detect
    assert not at.exception, at.exception
    assert any("nothing to detect" in e.value for e in at.error)
