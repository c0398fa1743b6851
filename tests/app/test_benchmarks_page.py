"""The Benchmarks page's matrix section under AppTest: runs read from real MLflow, the Pareto chart,
regression badges, the optimal pick, trends, and a matrix started as a background job."""

from __future__ import annotations

import numpy as np
from streamlit.testing.v1 import AppTest

from engine import jobs
from engine.benchmark.matrix import BenchSpec
from engine.benchmark.runs import degradation, log_matrix
from engine.settings import ROOT

TIMEOUT = 300


def log_synthetic(tracker, speed: float, questions: int = 100) -> str:
    rng = np.random.default_rng(0)
    ref = rng.uniform(0, 100, 40)
    results = {}
    for name, f1, tok_s, rss in (("float32", ref, 10.0, 1.2), ("int4-weight", ref - 0.2, 30.0, 0.9),
                                 ("8bit", np.clip(ref - 8, 0, 100), 12.0, 0.8)):  # fmt: skip
        metrics = {"e2e_tok_s": tok_s * speed, "decode_tok_s": tok_s * speed, "peak_rss_gb": rss,
                   "f1": float(f1.mean()), "em": float(f1.mean()) / 2}  # fmt: skip
        results[name] = {"metrics": metrics, "scores": {"f1": f1.tolist(), "em": (f1 > 50).astype(float).tolist()}}
    spec = BenchSpec(precisions=tuple(results), llama_cpp=False, questions=questions)
    extra = {"embed_per_s": 30.0, "retrieval_ms": 12.0}
    return log_matrix(tracker, spec, results, degradation(results, "float32"), extra, {"cpu": "test"})


def test_matrix_runs_show_pareto_pick_badges_and_trends(app_env, tracker):
    older = log_synthetic(tracker, speed=1.0, questions=300)
    log_synthetic(tracker, speed=0.5)  # the newest: everything at half the speed
    at = AppTest.from_file(str(ROOT / "pages/5_Benchmarks.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert set(table["configuration"]) == {"float32", "int4-weight", "8bit"}
    pick = next(s.value for s in at.success if "int4-weight" in s.value)
    assert pick.startswith("**int4-weight**")  # fastest within 1 F1 point; 8bit loses 8
    assert any("Pareto front" in c.value and "int4-weight" in c.value for c in at.caption)
    at.number_input(key="bench-tol").set_value(10.0).run()
    at.radio(key="bench-obj").set_value("smallest").run()
    assert any(s.value.startswith("**8bit**") for s in at.success)  # within 10 points, the least memory
    at.selectbox(key="bench-compare").set_value(older).run()  # the older, faster run as the baseline
    assert not at.exception, at.exception
    badges = [m.value for m in at.markdown if "badge[" in m.value]
    assert len(badges) == 3 and all(":red-badge[" in b and "decode_tok_s: " in b for b in badges), badges
    assert any("differ in questions 300 -> 100" in w.value for w in at.warning)
    at.selectbox(key="bench-trend").set_value("decode_tok_s").run()
    assert not at.exception, at.exception


def test_a_matrix_starts_as_a_background_job(app_env):
    at = AppTest.from_file(str(ROOT / "pages/5_Benchmarks.py"), default_timeout=TIMEOUT).run()
    at.multiselect(key="bench-prec").set_value(["float32"])
    at.number_input(key="bench-n").set_value(0)
    next(b for b in at.button if b.label == "Run matrix").click().run()
    assert not at.exception, at.exception
    job_id = at.session_state["bench-job"]
    assert jobs.get_job(job_id).kind == "bench"
    jobs.cancel_job(job_id)
