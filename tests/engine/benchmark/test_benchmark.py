"""The benchmark matrix: one configuration measured for real, the matrix logged to real MLflow,
quality differences with intervals, and regressions against a baseline run (CLI exit code)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from engine.benchmark import runs as bench_runs
from engine.benchmark.matrix import BenchSpec, measure_precision, run_matrix
from engine.benchmark.runs import (
    bench_matrix,
    degradation,
    format_matrix,
    matrix_metrics,
    matrix_results,
    selection_from,
)
from engine.benchmark.speed import SpeedSpec
from engine.cli import main
from engine.errors import InputError

TINY = SpeedSpec(prompt_tokens=120, new_tokens=8, batch_sizes=(2,), batch_new_tokens=4, repeats=1, ppl_tokens=256)


def synthetic(speed: float = 1.0, f1_shift: float = 0.0, seed: int = 0) -> dict[str, dict]:
    """Matrix results as run_matrix returns them: 50 questions' F1, speeds scaled by ``speed``."""
    rng = np.random.default_rng(seed)
    ref = rng.uniform(0, 100, 50)
    configs = {"float32": (ref, 10.0, 1.2), "int4-weight": (ref + rng.normal(-0.3, 2, 50), 30.0, 0.9),
               "8bit": (ref - 6 + rng.normal(0, 2, 50), 12.0, 0.8)}  # fmt: skip
    results = {}
    for name, (f1, tok_s, rss) in configs.items():
        f1 = np.clip(f1 + (f1_shift if name != "float32" else 0), 0, 100)
        metrics = {"e2e_tok_s": tok_s * speed, "decode_tok_s": 1.2 * tok_s * speed, "e2e_s": 64 / (tok_s * speed),
                   "peak_rss_gb": rss, "f1": float(f1.mean()), "em": float(f1.mean()) / 2}  # fmt: skip
        results[name] = {"metrics": metrics, "scores": {"f1": f1.tolist(), "em": (f1 > 50).astype(float).tolist()}}
    return results


def test_an_adapter_is_loaded_at_each_precision_and_keeps_llama_cpp_out(settings, monkeypatch):
    from engine.benchmark import matrix
    from engine.models.spec import DEFAULT_MODEL, resolve_source

    asked = []

    def load(model, _settings):
        asked.append(model)
        raise InputError("stop here")

    monkeypatch.setattr(matrix, "load_generator", load)
    spec = BenchSpec(adapter="mine", precisions=("float32", "int4-weight"), llama_cpp=True)
    payload = {"spec": asdict(spec), "data_dir": str(settings.data_dir), "shared_dir": str(settings.shared_data_dir)}
    for precision in spec.precisions:
        with pytest.raises(InputError, match="stop here"):
            measure_precision(payload | {"precision": precision})
    assert [(m.adapter, m.dtype, m.quantization) for m in asked] == [
        ("mine", "float32", "none"),
        ("mine", DEFAULT_MODEL.dtype, "int4-weight"),
    ]
    gguf = str(Path(resolve_source(DEFAULT_MODEL.source)) / DEFAULT_MODEL.gguf_file)
    assert "without the adapter" in matrix.llama_cpp_available(BenchSpec(model=gguf, adapter="mine"))
    assert matrix.configurations(BenchSpec(model=gguf, adapter="mine")) == list(BenchSpec.precisions)


def test_one_configuration_is_measured_for_real(settings):
    spec = BenchSpec(precisions=("float32",), questions=10, speed=TINY, llama_cpp=False)
    payload = {"spec": asdict(spec), "data_dir": str(settings.data_dir), "shared_dir": str(settings.shared_data_dir),
               "precision": "float32", "threads": 2}  # fmt: skip
    found = measure_precision(payload)
    m = found["metrics"]
    assert m["prompt_tokens"] >= 120 and 0 < m["ttft_s"] < m["e2e_s"]
    assert m["decode_tok_s"] > 1 and m["batch2_tok_s"] > 1 and m["load_s"] > 0
    assert m["weights_gb"] == pytest.approx(0.5, abs=0.05)  # 135M float32 parameters
    assert m["peak_rss_gb"] > m["weights_gb"]
    assert 2 < m["perplexity"] < 200  # Wikipedia text is not noise to the model
    assert len(found["scores"]["f1"]) == 10 and 0 <= m["f1"] <= 100


def test_a_precision_runs_in_a_fresh_process(settings):
    spec = BenchSpec(precisions=("int4-weight",), reference="int4-weight", questions=0, speed=TINY, llama_cpp=False)
    results = run_matrix(spec, settings)
    assert list(results) == ["int4-weight"]
    m = results["int4-weight"]["metrics"]
    assert m["e2e_s"] > 0 and "f1" not in m and results["int4-weight"]["scores"] == {}
    assert m["weights_gb"] < m["peak_rss_gb"] < 3.0  # its own process (imports, one model, batch 16 generation)


def test_degradation_is_a_paired_difference_with_an_interval():
    results = synthetic()
    deltas = degradation(results, "float32")
    assert deltas["float32"].mean == 0
    assert deltas["8bit"].high < 0 < deltas["int4-weight"].high and deltas["int4-weight"].low < 0
    table = format_matrix(results, deltas, "float32")
    assert "| float32 |" in table and "reference" in table and f"{deltas['8bit'].mean:+.1f} [" in table
    pick = selection_from(results, "float32", tolerance=1.0)
    assert pick.chosen == "int4-weight"  # the fastest within a point; 8bit loses about 6


def test_a_slower_run_is_a_regression_and_the_cli_exits_with_1(settings, tracker, monkeypatch, capsys):
    # the third run differs from the baseline only by noise; embedding and retrieval are measured
    # for real each time, hence their loose thresholds in the last call
    runs = iter([synthetic(), synthetic(speed=0.6, f1_shift=-3), synthetic(seed=1)])
    monkeypatch.setattr(bench_runs, "run_matrix", lambda spec, settings, on_progress=None: next(runs))
    spec = BenchSpec(precisions=("float32", "int4-weight", "8bit"), llama_cpp=False)
    baseline, table, found = bench_matrix(spec, settings, tracker)
    assert found == [] and "Embedding:" in table
    logged = matrix_results(tracker, baseline)
    assert logged["int4-weight"]["scores"]["f1"] == pytest.approx(synthetic()["int4-weight"]["scores"]["f1"])
    assert logged["int4-weight"]["metrics"]["e2e_tok_s"] == 30.0 and "f1_diff_low" in logged["8bit"]["metrics"]
    overall = matrix_metrics(tracker, baseline)[""]  # measured once per matrix
    assert overall["embed_per_s"] > 0 and overall["retrieval_ms"] > 0
    assert main(["bench", "--precisions", "float32,int4-weight,8bit", "--no-llama-cpp", "--baseline", baseline]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION int4-weight decode_tok_s" in out and "REGRESSION 8bit f1" in out
    assert "REGRESSION float32 f1" not in out  # the reference's own scores did not move
    assert main(["bench", "--precisions", "float32,int4-weight,8bit", "--no-llama-cpp", "--baseline", baseline,
                 "--thresholds", "decode_tok_s=0.5,e2e_s=1,f1=5,em=5,embed_per_s=1,retrieval_ms=100"]) == 0  # fmt: skip


def test_bad_matrix_input_is_refused():
    with pytest.raises(InputError, match="Unknown precision int9"):
        BenchSpec(precisions=("float32", "int9"))
    with pytest.raises(InputError, match="reference precision"):
        BenchSpec(precisions=("bfloat16",))
    with pytest.raises(InputError, match="at least 10 questions"):
        BenchSpec(questions=3)
    assert main(["bench", "--thresholds", "speed=1"]) == 2
    spec = BenchSpec(precisions=("float32", "4bit"), speed=TINY)
    assert BenchSpec.from_dict(asdict(spec)) == spec  # as a job's arguments travel
