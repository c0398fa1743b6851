"""The Benchmarks page's matrix section: start a matrix job, read a matrix run with its Pareto chart,
regression badges and optimal pick, and follow any metric across runs."""

from __future__ import annotations

from dataclasses import asdict, replace

import pandas as pd
import plotly.express as px
import streamlit as st

from engine import jobs
from engine.benchmark.matrix import PRECISIONS, BenchSpec, llama_cpp_available
from engine.benchmark.regression import METRICS, compare_runs
from engine.benchmark.runs import COLUMNS, differences, matrix_history, matrix_results, selection_from
from engine.benchmark.selection import OBJECTIVES, RULES, pareto_front
from engine.evaluation.qa_sets import HOTPOTQA, qa_set_names
from engine.evaluation.runner import EvalSpec, eval_items, ungraded_note
from engine.models.spec import MODEL_HELP, spec_for
from ui import resources as r
from ui.configs import check_option, config_bar, config_footer, form_spec, knob_widgets
from ui.job_panel import job_panel
from ui.knobs import knob_input

BENCH_KEYS = {"model": "bench-model", "reference": "bench-ref", "questions": "bench-n", "baseline": "bench-baseline"}
BENCH_KEYS |= {
    "thresholds": "bench-thr",
    "llama_cpp": "bench-llama",
    "adapter": "bench-adapter",
}  # the matrix form's widgets, by field


def bench_widgets(spec: BenchSpec, runs: pd.DataFrame) -> dict:
    """The matrix form's widgets for loaded settings."""
    check_option(spec.baseline, ["", *run_labels(runs)], "the baseline run")
    check_option(spec.adapter, ["", *r.adapter_names()], "the adapter")
    return {key: getattr(spec, name) for name, key in BENCH_KEYS.items()} | {"bench-prec": list(spec.precisions)}


def matrix_form(runs: pd.DataFrame) -> None:
    """The form that starts a benchmark matrix as a background job."""
    base = config_bar("bench", BenchSpec, "bench", lambda spec: bench_widgets(spec, runs)) or BenchSpec()
    with st.form("bench"):
        cols = st.columns([2, 4, 1, 1])
        model = cols[0].text_input("Model", placeholder="bundled SmolLM2-135M", help=MODEL_HELP, key="bench-model")
        precisions = cols[1].multiselect("Precisions", list(PRECISIONS), list(BenchSpec.precisions), key="bench-prec")
        reference = knob_input(cols[2], BenchSpec, "reference", key="bench-ref")
        questions = knob_input(cols[3], BenchSpec, "questions", key="bench-n")
        more = st.columns([2, 2, 2, 2])
        ids = run_labels(runs)
        baseline = more[0].selectbox(
            "Baseline run",
            ["", *ids],
            format_func=lambda i: ids.get(i, "none"),
            key="bench-baseline",
            help="regressions are flagged against this run",
        )
        thresholds = more[1].text_input(
            "Thresholds",
            placeholder="f1=1.0,decode_tok_s=0.15",
            key="bench-thr",
            help="overrides of the default regression thresholds",
        )
        adapter = knob_input(
            more[2],
            BenchSpec,
            "adapter",
            ["", *r.adapter_names()],
            format_func=lambda a: a or "none",
            key="bench-adapter",
        )
        missing = llama_cpp_available(BenchSpec(model=model.strip(), adapter=adapter))
        llama = more[3].checkbox(
            "llama.cpp beside it",
            not missing,
            disabled=bool(missing),
            key="bench-llama",
            help=missing or "the same GGUF file through llama-cpp-python",
        )
        submitted = st.form_submit_button("Run matrix", type="primary")
    spec = form_spec(
        submitted,
        lambda: replace(
            base,
            model=model.strip(),
            adapter=adapter,
            precisions=tuple(precisions),
            reference=reference,
            questions=int(questions),
            llama_cpp=llama,
            baseline=baseline,
            thresholds=thresholds,
        ),
    )
    if submitted:
        spec_for(spec.model)  # a bad path is reported now, not in the job
        st.session_state["bench-job"] = jobs.start(spec).id
    config_footer("bench", spec, "bench")


def regressions(result: dict) -> None:
    if result.get("regressions"):
        st.error("Regressions against the baseline:\n\n" + "\n".join(f"- {x}" for x in result["regressions"]))


def run_labels(runs: pd.DataFrame) -> dict[str, str]:
    first = runs.drop_duplicates("run_id").sort_values("started", ascending=False)
    return {row.run_id: f"{row.started:%Y-%m-%d %H:%M} · {row.run_id[:8]}" for row in first.itertuples()}


def matrix_frame(results: dict[str, dict]) -> pd.DataFrame:
    rows = [
        {
            "configuration": c,
            **{COLUMNS[m][0]: v for m, v in res["metrics"].items() if m in COLUMNS},
            "F1 vs reference": res["metrics"].get("f1_diff"),
            "CI low": res["metrics"].get("f1_diff_low"),
            "CI high": res["metrics"].get("f1_diff_high"),
        }
        for c, res in results.items()
    ]
    return pd.DataFrame(rows).round(3)


def badges(results: dict[str, dict], baseline: dict[str, dict]) -> None:
    """One badge per configuration: green when no metric regressed against the baseline, red with the metrics."""
    current = {c: res["metrics"] for c, res in results.items()}
    rows = compare_runs(current, {c: res["metrics"] for c, res in baseline.items()})
    for config in current:
        worse = [x for x in rows if x.config == config and x.worse]
        compared = [x for x in rows if x.config == config]
        if not compared:
            st.markdown(f":gray-badge[{config}: not in the baseline]")
        elif worse:
            st.markdown(f":red-badge[{config}: regressed] " + "; ".join(x.describe() for x in worse))
        else:
            st.markdown(f":green-badge[{config}: no regression in {len(compared)} metrics]")


def pareto_chart(results: dict[str, dict]) -> None:
    points = {
        c: (res["metrics"].get("f1", float("nan")), res["metrics"]["e2e_tok_s"], res["metrics"]["peak_rss_gb"])
        for c, res in results.items()
        if "e2e_tok_s" in res["metrics"]
    }
    quality = {c: p for c, p in points.items() if p[0] == p[0]}  # llama.cpp has no F1 here
    front = set(pareto_front(quality))
    rows = [
        {
            "configuration": c,
            "F1": p[0],
            "tokens/s (RAG answer, end to end)": p[1],
            "peak memory (GB)": p[2],
            "Pareto front": c in front,
        }
        for c, p in quality.items()
    ]
    frame = pd.DataFrame(rows)
    if frame.empty:
        st.caption("No configuration has both speed and F1 yet.")
        return
    fig = px.scatter(
        frame,
        x="tokens/s (RAG answer, end to end)",
        y="F1",
        size="peak memory (GB)",
        color="configuration",
        symbol="Pareto front",
        text="configuration",
        size_max=40,
        title="Quality vs speed (marker size: peak memory)",
    )
    st.plotly_chart(fig, width="stretch", key="pareto")
    st.caption(
        f"On the Pareto front (no other configuration is better on F1, speed and memory at once): "
        f"{', '.join(sorted(front))}."
    )


def pick(results: dict[str, dict], reference: str) -> None:
    cols = st.columns(3)
    tolerance = cols[0].number_input("Quality tolerance (F1 points)", 0.0, 50.0, 1.0, 0.5, key="bench-tol")
    objective = cols[1].radio("Pick the", OBJECTIVES, horizontal=True, key="bench-obj")
    rule = cols[2].radio(
        "Judged on",
        RULES,
        horizontal=True,
        key="bench-rule",
        help="mean: the mean paired difference; ci: the 95% interval's lower bound (strict)",
    )
    chosen = selection_from(results, reference, tolerance, objective, rule)
    st.success(f"**{chosen.chosen}** — {chosen.explanation}")
    st.dataframe(pd.DataFrame([asdict(v) for v in chosen.verdicts]).round(2), hide_index=True, width="stretch")


def matrix_view(runs: pd.DataFrame) -> None:
    """A logged matrix run: the table, badges against a baseline, the Pareto chart and the pick."""
    ids = run_labels(runs)
    run_id = st.selectbox("Matrix run", list(ids), format_func=ids.get, key="bench-run")
    results = matrix_results(r.tracker(), run_id)
    st.dataframe(matrix_frame(results), hide_index=True, width="stretch")
    others = [i for i in ids if i != run_id]
    baseline = st.selectbox(
        "Compare with", ["", *others], format_func=lambda i: ids.get(i, "no baseline"), key="bench-compare"
    )
    if baseline:
        if changed := differences(r.tracker(), run_id, baseline):
            st.warning("The runs differ in " + "; ".join(changed) + ": their numbers are not strictly comparable.")
        badges(results, matrix_results(r.tracker(), baseline))
    pareto_chart(results)
    with_scores = [c for c, res in results.items() if res["scores"].get("f1")]
    if with_scores:
        reference = "float32" if "float32" in with_scores else with_scores[0]
        pick(results, reference)


def trends(runs: pd.DataFrame) -> None:
    """Any metric across matrix runs, one line per configuration."""
    names = sorted(set(runs["metric"]), key=lambda m: (m not in METRICS, m))
    metric = st.selectbox("Metric", names, key="bench-trend")
    frame = runs[runs["metric"] == metric].sort_values("started")
    fig = px.line(
        frame,
        x="started",
        y="value",
        color="config",
        markers=True,
        title=f"{metric} by matrix run",
        hover_data=["run_id"],
    )
    st.plotly_chart(fig, width="stretch", key="trend")


def matrix_section() -> None:
    runs = matrix_history(r.tracker())
    matrix_form(runs)
    job_panel("bench", "bench-job", regressions, rerun_when_done=True)
    if runs.empty:
        st.info("No benchmark matrix has run yet.")
        return
    matrix_view(runs)
    st.markdown("**Trends**")
    trends(runs)


def eval_widgets(spec: EvalSpec) -> dict:
    """The evaluation form's widgets for loaded settings."""
    check_option(spec.dataset or HOTPOTQA, qa_set_names(r.settings()), "the QA set")
    check_option(spec.kb, [EvalSpec.kb, *r.store().names()], "the knowledge base")
    check_option(spec.adapter, ["", *r.adapter_names()], "the adapter")
    return knob_widgets("eval", spec) | {"eval-dataset": spec.dataset or HOTPOTQA}


def eval_form():
    """The evaluation form: an EvalSpec when it was submitted (bad input is raised here, before a job starts).
    Labels, help, choices and defaults are the spec's knobs, as ``engine eval`` shows them."""
    base = config_bar("eval", EvalSpec, "eval", eval_widgets) or EvalSpec()
    with st.form("eval"):
        cols = st.columns(5)
        qa_set = cols[0].selectbox(
            "Questions",
            qa_set_names(r.settings()),
            key="eval-dataset",
            help="A QA set of yours (Datasets page), or hotpotqa, the built-in benchmark.",
        )
        first_n, splits = "all (HotpotQA: the first N)", ["test", "", "validation", "train"]
        split = knob_input(cols[1], EvalSpec, "split", splits, "test", lambda s: s or first_n, prefix="eval")
        mode = knob_input(cols[2], EvalSpec, "mode", prefix="eval")
        kb = knob_input(cols[3], EvalSpec, "kb", [EvalSpec.kb, *r.store().names()], prefix="eval")
        limit = knob_input(cols[4], EvalSpec, "limit", prefix="eval")
        more = st.columns(6)
        model = knob_input(more[0], EvalSpec, "model", prefix="eval")
        adapters = ["", *r.adapter_names()]
        adapter = knob_input(more[1], EvalSpec, "adapter", adapters, format_func=lambda a: a or "none", prefix="eval")
        prompt = knob_input(more[2], EvalSpec, "prompt", prefix="eval")
        k = knob_input(more[3], EvalSpec, "k", prefix="eval")
        batch = knob_input(more[4], EvalSpec, "batch_size", prefix="eval")
        follow = knob_input(more[5], EvalSpec, "follow_links", prefix="eval")
        submitted = st.form_submit_button("Start evaluation", type="primary")
    spec = form_spec(
        submitted,
        lambda: replace(
            base,  # loaded settings keep what the form has no widget for
            dataset="" if qa_set == HOTPOTQA else qa_set,
            mode=mode,
            kb=kb,
            limit=int(limit),
            k=int(k),
            batch_size=int(batch),
            model=model.strip(),
            adapter=adapter,
            split=split,
            prompt=prompt,
            follow_links=int(follow),
        ),
    )
    config_footer("eval", spec, "eval")
    if not submitted:
        return None
    spec_for(spec.model)  # bad paths are reported here, before a job starts
    eval_items(spec, r.settings())  # and a QA set that is not split, or has no such split
    return spec


def result_metrics(metrics: dict) -> None:
    """An evaluation's headline metrics; groundedness beside F1 when some questions had no gold answer."""
    names = [n for n in ("em", "f1", "groundedness", "recall@5", "mrr", "questions_per_s") if n in metrics]
    for col, name in zip(st.columns(len(names)), names, strict=True):
        col.metric(name, f"{metrics[name]:.1f}" if name in ("em", "f1", "groundedness") else f"{metrics[name]:.3f}")
    if note := ungraded_note(metrics):
        st.caption(note)


def row_scores(row) -> str:
    """One question's gold answer, prediction and scores (or the judge's groundedness without a gold answer)."""
    if not str(row.get("gold") or "").strip():
        g = row.get("groundedness")
        verdict = "unreadable" if g is None or g != g else "supported" if g else "not supported"
        return f"**No gold answer** · **Prediction:** {row['prediction']} · the judge: {verdict} by the sources"
    return f"**Gold:** {row['gold']} · **Prediction:** {row['prediction']} · EM {row['em']:.0f} · F1 {row['f1']:.1f}"
