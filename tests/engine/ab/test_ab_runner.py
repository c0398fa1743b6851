"""Running A/B experiments: which variants run at once, the items (HotpotQA split or a dataset version), saving,
MLflow logging and the CLI with a stand-in for the variants' processes, and one real experiment as a job (two
variants of the bundled model, each loaded in a fresh process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.ab import runner
from engine.ab.results import ROW_FIELDS, list_results, load_result
from engine.ab.runner import experiment_items, plan_parallel, run_experiment
from engine.ab.spec import ExperimentSpec, VariantSpec
from engine.cli import main
from engine.errors import InputError, StudioError
from engine.machine import MemoryReading
from engine.tracking import AB


def spec_of(*variants: VariantSpec, **kwargs) -> ExperimentSpec:
    variants = variants or (VariantSpec("base", dtype="float32"), VariantSpec("int4", quantization="int4-weight"))
    return ExperimentSpec("small test", variants, **kwargs)


def machine(monkeypatch, free_gb: float, cores: int, total_gb: float = 64.0) -> None:
    monkeypatch.setattr(runner, "read_memory", lambda device="cpu": MemoryReading(total_gb, free_gb, 0.1, device))
    monkeypatch.setattr(runner, "usable_cores", lambda: cores)
    monkeypatch.setattr(runner, "variant_device", lambda variant: "cpu")


def test_small_variants_run_together_when_memory_and_cores_allow(settings, monkeypatch):
    spec = spec_of(limit=6)
    machine(monkeypatch, free_gb=32, cores=8)
    groups, reason = plan_parallel(spec, settings)
    assert groups == [["base", "int4"]]
    assert reason.startswith("all 2 variants at once") and "8 cores" in reason
    machine(monkeypatch, free_gb=32, cores=2)  # two processes on two cores only compete
    groups, reason = plan_parallel(spec, settings)
    assert groups == [["base"], ["int4"]] and "2 CPU cores cannot give 2 processes 2 cores each" in reason
    machine(monkeypatch, free_gb=1.0, cores=8, total_gb=2.0)  # 50% free: 0.8 GB budget, the pair needs more
    groups, reason = plan_parallel(spec, settings)
    assert groups == [["base"], ["int4"]] and "more than the 0.80 GB budget" in reason


def test_groups_fill_up_to_the_budget_and_never_always_are_obeyed(settings, monkeypatch):
    variants = tuple(VariantSpec(n) for n in ("aaa", "bbb", "ccc"))
    machine(monkeypatch, free_gb=25, cores=16, total_gb=50)  # budget 20 GB
    monkeypatch.setattr(runner, "estimate_gb", lambda v, spec, settings, device: 8.0)
    groups, reason = plan_parallel(spec_of(*variants), settings)
    assert groups == [["aaa", "bbb"], ["ccc"]] and "24.00 GB" in reason
    assert reason.startswith("2 groups (aaa + bbb; ccc)")
    assert plan_parallel(spec_of(*variants, parallel="never"), settings)[0] == [["aaa"], ["bbb"], ["ccc"]]
    assert plan_parallel(spec_of(*variants, parallel="always"), settings)[0] == [["aaa", "bbb", "ccc"]]
    monkeypatch.setattr(runner, "estimate_gb", lambda *a: (_ for _ in ()).throw(InputError("no config")))
    groups, reason = plan_parallel(spec_of(*variants), settings)
    assert groups == [["aaa"], ["bbb"], ["ccc"]] and "cannot be estimated (no config)" in reason


def fake_group(payloads, on_progress, check_cancelled):
    """What run_in_processes returns, without models: 'base' answers every third item wrong, the others
    every fourth; latencies grow with the item."""
    out = {}
    for p in payloads:
        wrong = 3 if p["variant"] == "base" else 4
        rows = []
        for i, item in enumerate(p["items"]):
            right = i % wrong != 0
            rows.append({"item_id": item.id, "question": item.question, "gold": item.answer,
                         "prediction": item.answer if right else "no idea", "em": 100.0 * right,
                         "f1": 100.0 if right else 20.0, "latency_s": 0.1 + i / 100, "prompt_tokens": 50 + i,
                         "new_tokens": 3})  # fmt: skip
        on_progress(p["variant"], len(rows), len(rows))
        out[p["variant"]] = {"rows": rows, "load_s": 1.5, "peak_memory_gb": 1.2, "weights_gb": 0.5, "device": "cpu",
                             "seconds": 2.0}  # fmt: skip
    return out


def test_an_experiment_is_saved_paired_and_logged(settings, tracker):
    spec = spec_of(limit=12, parallel="never")
    seen = []
    result = run_experiment(spec, settings, tracker, on_progress=lambda f, m: seen.append((f, m)), run_group=fake_group)
    assert list(result.variants) == ["base", "int4"] and len(result.item_ids()) == 12
    assert result.variants["base"].rows[0]["item_id"] == result.variants["int4"].rows[0]["item_id"]
    assert load_result(result.id, settings) == result and list_results(settings) == [result.id]
    assert result.id.endswith("-small-test") and result.run_id
    assert seen[0][1].startswith("plan: one variant at a time") and seen[-1][0] == 1.0
    assert any(m == "int4: 12/12 items" for _, m in seen)
    run = tracker.client.get_run(result.run_id)
    assert run.info.experiment_id == tracker.experiment_id(AB)
    assert run.data.params["variant/int4/quantization"] == "int4-weight" and run.data.params["limit"] == "12"
    metrics = run.data.metrics
    assert metrics["base/f1"] == pytest.approx(result.variants["base"].summary()["f1"])
    assert metrics["int4/items"] == 12 and "int4/latency_p95_s" in metrics
    for test in ("mcnemar", "wilcoxon", "permutation", "t"):
        assert 0 < metrics[f"int4 vs base/{test}_p"] <= metrics[f"int4 vs base/{test}_p_holm"] <= 1
    assert metrics["int4 vs base/f1_diff"] > 0  # int4 misses fewer items here
    table = tracker.load_table(result.run_id, "variants/int4.json")
    assert list(table["item_id"]) == result.item_ids()
    reports = {a.path for a in tracker.client.list_artifacts(result.run_id)}
    assert {"report.md", "report.html"} <= reports  # the report, logged with the run


def test_a_variant_that_answers_other_items_cannot_be_paired(settings):
    def shuffled(payloads, on_progress, check_cancelled):
        out = fake_group(payloads, on_progress, check_cancelled)
        if "int4" in out:
            out["int4"]["rows"].reverse()
        return out

    with pytest.raises(InputError, match="did not answer the same items"):
        run_experiment(spec_of(limit=4, parallel="never"), settings, run_group=shuffled)
    assert list_results(settings) == []


def test_cancelling_between_variants_keeps_nothing(settings):
    calls = []

    def check():
        calls.append(1)
        if len(calls) > 1:  # after the first variant
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec_of(limit=4, parallel="never"), settings, check_cancelled=check, run_group=fake_group)
    assert list_results(settings) == []


def test_dataset_version_items(settings):
    from engine.qa.schema import Context, QARecord
    from engine.qa.versions import DatasetStore

    records = [QARecord(f"Question {i}?", f"answer {i}", (Context("T", f"Passage {i}."),),
                        metadata={"split": "test" if i % 2 else "train"}) for i in range(6)]  # fmt: skip
    version = DatasetStore(settings).save("mine", records).id
    items, resolved = experiment_items(spec_of(dataset="mine"), settings)
    assert resolved.version == version  # empty: the newest version, recorded in the spec
    assert [it.question for it in items] == ["Question 1?", "Question 3?", "Question 5?"]
    assert items[0].id == records[1].id and items[0].paragraphs == (("T", "Passage 1."),)
    unsplit = DatasetStore(settings).save("plain", [QARecord(f"Q{i}?", "a") for i in range(3)]).id
    with pytest.raises(InputError, match="is not split"):
        experiment_items(spec_of(dataset="plain", version=unsplit), settings)
    with pytest.raises(InputError, match="no contexts to answer from: use mode closed-book"):
        experiment_items(spec_of(dataset="plain", split=""), settings)
    assert len(experiment_items(spec_of(dataset="plain", split="", mode="closed-book"), settings)[0]) == 3
    with pytest.raises(StudioError, match="no dataset 'other'"):
        experiment_items(spec_of(dataset="other"), settings)


def test_cli_prints_variants_and_paired_tests(settings, monkeypatch, capsys):
    monkeypatch.setattr(runner, "run_in_processes", fake_group)
    code = main(["ab", "--variant", "name=base", "--variant", "name=int4,quantization=int4-weight", "--limit", "8",
                 "--parallel", "never", "--no-mlflow"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "base" in out and "int4" in out and "int4 vs base: F1 +" in out and "McNemar EM p=" in out
    assert "experiment " in out and "MLflow" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variant", "name=base"], "at least 2 variants; got 1"),
        (["--variant", "name=one,quantization=int3", "--variant", "name=two"], "unknown quantization 'int3'"),
        (["--variant", "name=one,k=x", "--variant", "name=two"], "k must be a number"),
        (["--variant", "name=one", "--variant", "name=one"], "must be unique"),
        (["--variant", "name=one", "--variant", "name=two", "--limit", "1"], "at least 2 items"),
        (["--variant", "name=a..b", "--variant", "name=two"], "Invalid variant name 'a..b'"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(settings, capsys, args, message):
    assert main(["ab", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


# --- one real experiment: a background job, two variants of the bundled model in fresh processes -------------


@pytest.fixture(scope="module")
def real_job(tmp_path_factory, session_settings):
    """Runs once for the module: the 'ab' job on 6 HotpotQA test questions, float32 against int4-weight."""
    from engine import jobs
    from engine.settings import Settings

    data_dir = tmp_path_factory.mktemp("ab-real")
    session_settings.models_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "models").symlink_to(session_settings.models_dir, target_is_directory=True)
    settings = Settings(data_dir=data_dir, shared_data_dir=session_settings.shared_data_dir)
    # zero-shot with 2 sources: short prompts keep the two loads and 12 answers within a minute or so
    quick = {"prompt": "zero-shot", "k": 2}
    base, int4 = VariantSpec("base", dtype="float32", **quick), VariantSpec("int4", quantization="int4-weight", **quick)
    spec = spec_of(base, int4, limit=6)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_DATA_DIR", str(data_dir))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("STUDIO_CHROMA_URL", raising=False)
        started = jobs.start_job("ab", spec.to_dict(), settings)
        state = jobs.wait_job(started.id, timeout=600, settings=settings, poll=0.5)
        log = "\n".join(jobs.tail_log(started.id, 60, settings))
    assert state.status == "succeeded", f"{state.error}\n{log}"
    return settings, state, log


def test_a_real_experiment_pairs_both_variants_on_the_same_items(real_job):
    from engine.evaluation.splits import split_items

    settings, state, log = real_job
    result = load_result(state.result["id"], settings)
    expected = [it.id for it in split_items(settings.shared_data_dir / "hotpotqa-dev.jsonl", settings, "test")[:6]]
    assert list(result.variants) == ["base", "int4"]
    for variant in result.variants.values():
        assert [r["item_id"] for r in variant.rows] == expected
        assert all(set(ROW_FIELDS) <= set(r) and r["latency_s"] > 0 for r in variant.rows)
        assert all(r["messages"][-1]["content"].endswith(f"Question: {r['question']}") for r in variant.rows)
        assert all(0 <= r["f1"] <= 100 and r["em"] in (0.0, 100.0) for r in variant.rows)
        assert variant.load_s > 0 and variant.peak_memory_gb > variant.weights_gb > 0 and variant.seconds > 0
        assert state.result["summary"][variant.name] == pytest.approx(variant.summary())
    assert result.variants["int4"].weights_gb < result.variants["base"].weights_gb  # int4 against float32
    # both variants were asked each item in the same prompt: a preference pair of their answers trains on it
    assert [r["messages"] for r in result.variants["int4"].rows] == [
        r["messages"] for r in result.variants["base"].rows
    ]
    assert result.variants["base"].spec["dtype"] == "float32"
    assert "int4 vs base: F1" in log


def test_the_real_experiment_is_logged_to_mlflow(real_job):
    from engine.tracking import Tracker

    settings, state, _ = real_job
    tracker = Tracker(settings)
    assert state.mlflow_run_id == state.result["run_id"]
    run = tracker.client.get_run(state.result["run_id"])
    assert (
        run.info.experiment_id == tracker.experiment_id(AB) and run.data.params["experiment_id"] == state.result["id"]
    )
    metrics = run.data.metrics
    for name in ("base", "int4"):
        assert {f"{name}/em", f"{name}/f1", f"{name}/latency_p50_s", f"{name}/peak_memory_gb"} <= set(metrics)
    for test in ("mcnemar", "wilcoxon", "permutation", "t"):
        assert 0 <= metrics[f"int4 vs base/{test}_p"] <= 1 and f"int4 vs base/{test}_p_holm" in metrics
    artifacts = {a.path for a in tracker.client.list_artifacts(run.info.run_id, "variants")}
    assert artifacts == {"variants/base.json", "variants/int4.json"}


def test_a_variant_process_reports_its_error_and_a_cancel_stops_the_processes(settings):
    import multiprocessing

    from engine.ab.runner import run_in_processes

    payload = {"experiment": spec_of(limit=4).to_dict(), "variant": "missing", "data_dir": str(settings.data_dir),
               "shared_dir": str(settings.shared_data_dir)}  # fmt: skip
    with pytest.raises(StudioError, match="Variant 'missing': Experiment 'small test' has no variant 'missing'"):
        run_in_processes([payload])

    def cancel():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_in_processes([payload | {"variant": "base"}, payload | {"variant": "int4"}], check_cancelled=cancel)
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("ab-")]


@pytest.mark.slow
def test_a_variant_answers_a_qa_set_retrieving_from_its_knowledge_base(collection, settings):
    from engine.ab.workers import answer_variant

    quick = {"prompt": "zero-shot", "k": 2}
    spec = spec_of(VariantSpec("base", **quick), VariantSpec("one-source", **quick | {"k": 1}), dataset="notes-qa",
                   split="test", mode="kb", kb="notes", limit=3)  # fmt: skip
    items, resolved = experiment_items(spec, settings)
    assert resolved.version == collection and all(i.supporting_docs for i in items)
    payload = {"experiment": resolved.to_dict(), "variant": "base", "data_dir": str(settings.data_dir),
               "shared_dir": str(settings.shared_data_dir)}  # fmt: skip
    rows = answer_variant(payload)["rows"]
    assert [r["item_id"] for r in rows] == [i.id for i in items]
    with pytest.raises(InputError, match="Mode kb needs a knowledge base"):
        spec_of(mode="kb")


def test_the_report_is_computed_once_saved_and_read_back(settings, tracker, monkeypatch, tmp_path):
    from engine.ab import report as report_module

    result = run_experiment(spec_of(limit=12, parallel="never"), settings, tracker, run_group=fake_group)
    logged = tracker.client.download_artifacts(result.run_id, "report.md", str(tmp_path))
    saved = report_module.experiment_report(result, settings)
    assert saved == result.report and saved.markdown == Path(logged).read_text(encoding="utf-8")
    assert saved.comparisons and saved.comparisons[0].b == "int4" and saved.paired is None  # the tables, not the tests

    def recompute(*args, **kwargs):
        raise AssertionError("the page must read the saved report")

    monkeypatch.setattr(report_module, "build_report", recompute)
    again = report_module.experiment_report(load_result(result.id, settings), settings)
    assert again.comparisons == result.report.comparisons and again.html == result.report.html
