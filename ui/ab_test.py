"""Widgets of the A/B Test page: the experiment form (variants in an editable table), the job's
progress, and the report of a finished experiment."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import jobs
from engine.ab.charts import latency_figure, pareto_figure, quality_figure
from engine.ab.judging import JudgeRun, check_pair, load_judges
from engine.ab.report import experiment_report
from engine.ab.results import load_result
from engine.ab.spec import ExperimentSpec, VariantSpec
from engine.evaluation.qa_sets import HOTPOTQA, qa_set_names
from engine.models.spec import DTYPES, MODEL_HELP, QUANTIZATIONS
from engine.stats import mcnemar_sample_size, minimum_sample_size
from ui import resources as r
from ui.configs import check_option, config_bar, config_footer, form_spec
from ui.job_panel import job_panel
from ui.knobs import knob_input
from ui.widgets import user_errors

DEFAULT_VARIANTS = pd.DataFrame(
    [
        {
            "name": "base",
            "model": "",
            "quantization": "none",
            "dtype": "float32",
            "adapter": "",
            "prompt": "",
            "k": 5,
            "temperature": 0.0,
            "seed": 0,
        },
        {
            "name": "int4",
            "model": "",
            "quantization": "int4-weight",
            "dtype": "auto",
            "adapter": "",
            "prompt": "",
            "k": 5,
            "temperature": 0.0,
            "seed": 0,
        },
    ]
)


def variants_from(frame: pd.DataFrame) -> tuple[VariantSpec, ...]:
    """The edited table's rows as variants (empty rows dropped; bad values raise InputError)."""
    rows = frame.replace({float("nan"): None}).to_dict("records")
    variants = []
    for row in rows:
        if not str(row.get("name") or "").strip():
            continue
        clean = {k: v for k, v in row.items() if v is not None and v != ""}
        for key, kind in (("k", int), ("seed", int), ("temperature", float)):
            if key in clean:
                clean[key] = kind(clean[key])
        variants.append(VariantSpec(**clean))
    return tuple(variants)


def ab_widgets(spec: ExperimentSpec) -> dict:
    """The experiment form's widgets for loaded settings (the variants table starts from the loaded variants)."""
    check_option(spec.dataset or HOTPOTQA, qa_set_names(r.settings()), "the QA set")
    check_option(spec.kb, ["", *r.store().names()], "the knowledge base")
    for v in spec.variants:
        check_option(v.adapter, ["", *r.adapter_names()], f"variant {v.name}'s adapter")
    found = {"ab-name": spec.name, "ab-qa-set": spec.dataset or HOTPOTQA, "ab-split": spec.split, "ab-mode": spec.mode}
    found |= {"ab-kb": spec.kb, "ab-parallel": spec.parallel}
    return found | ({"ab-limit": spec.limit} if spec.limit is not None else {})


def experiment_form() -> None:
    """The experiment: variants (two or more, the first the reference) and the evaluation set; starts a job."""
    st.caption("Every variant answers the same items; the first row is the reference of the paired tests.")
    loaded = config_bar("ab", ExperimentSpec, "ab", ab_widgets)
    adapters = ["", *r.adapter_names()]
    variants = pd.DataFrame([v.to_dict() for v in loaded.variants]) if loaded else DEFAULT_VARIANTS
    frame = st.data_editor(
        variants,
        num_rows="dynamic",
        hide_index=True,
        key="ab-variants",
        column_config={
            "name": st.column_config.TextColumn("name", required=True),
            "model": st.column_config.TextColumn("model", help="empty: the bundled model; " + MODEL_HELP),
            "quantization": st.column_config.SelectboxColumn("quantization", options=list(QUANTIZATIONS)),
            "dtype": st.column_config.SelectboxColumn("dtype", options=list(DTYPES)),
            "adapter": st.column_config.SelectboxColumn("adapter", options=adapters),
            "prompt": st.column_config.SelectboxColumn("prompt", options=["", "few-shot", "zero-shot"]),
            "k": st.column_config.NumberColumn("k", min_value=1, max_value=10, step=1),
            "temperature": st.column_config.NumberColumn("temperature", min_value=0.0, max_value=2.0),
            "seed": st.column_config.NumberColumn("seed", min_value=0, step=1),
        },
    )

    with st.form("ab"):
        cols = st.columns(4)
        name = cols[0].text_input("Experiment name", "base-vs-int4", key="ab-name")
        qa_set = cols[1].selectbox(
            "Questions",
            qa_set_names(r.settings()),
            key="ab-qa-set",
            help="a QA set of yours (Datasets page) or hotpotqa, the built-in benchmark",
        )
        split = knob_input(cols[2], ExperimentSpec, "split", format_func=lambda s: s or "all records", key="ab-split")
        limit = knob_input(cols[3], ExperimentSpec, "limit", key="ab-limit")
        more = st.columns(3)
        mode = knob_input(more[0], ExperimentSpec, "mode", key="ab-mode")
        kb = more[1].selectbox("Knowledge base (mode kb)", ["", *r.store().names()], key="ab-kb")
        parallel = knob_input(more[2], ExperimentSpec, "parallel", key="ab-parallel")
        submitted = st.form_submit_button("Run experiment", type="primary")
    dataset = "" if qa_set == HOTPOTQA else qa_set
    # loaded settings keep what the form has no widget for (a version only with its dataset)
    kept = {"data": loaded.data, "batch_size": loaded.batch_size} if loaded else {}
    kept |= {"version": loaded.version} if loaded and loaded.dataset == dataset else {}
    spec = None
    with user_errors():
        spec = form_spec(
            submitted,
            lambda: ExperimentSpec(
                name=name.strip(),
                variants=variants_from(frame),
                split=split,
                limit=int(limit),
                mode=mode,
                kb=kb,
                parallel=parallel,
                dataset=dataset,
                **kept,
            ),
        )
        if submitted:
            st.session_state["ab-job"] = jobs.start(spec).id
            st.session_state.pop("ab-job-shown", None)
    config_footer("ab", spec, "ab")


def progress() -> None:
    """The experiment's job; once it succeeded, its report is the one shown below."""
    job_panel(
        "ab",
        "ab-job",
        lambda res: st.session_state.setdefault("ab-experiment", res.get("id")),
        next_step="Read the report below; rate its answers blind on the Human Eval page.",
        rerun_when_done=True,
    )


def report_section(experiments: list[str]) -> None:
    """A finished experiment's report: recommendations, tables, charts, downloads."""
    chosen = st.session_state.get("ab-experiment")
    experiment = st.selectbox(
        "Experiment", experiments, key="ab-pick", index=experiments.index(chosen) if chosen in experiments else 0
    )
    result = load_result(experiment, r.settings())
    judges = load_judges(experiment, r.settings())
    report = experiment_report(result, r.settings(), judges)  # computed once, by the job; read here
    st.subheader("Recommendations")
    for rec in report.recommendations:
        st.markdown(f"- **{rec.goal}: {rec.prefer or rec.variant}**: {rec.reason}")
    left, right = st.columns(2)
    left.plotly_chart(quality_figure(report.quality, report.reference), key="ab-quality")
    right.plotly_chart(pareto_figure(report.summaries, report.pareto), key="ab-pareto")
    st.plotly_chart(latency_figure(result.variants), key="ab-latency")
    judge_section(result, judges)
    with st.expander("The full report (tables, paired tests, rules)", expanded=False):
        st.markdown(report.markdown)
    cols = st.columns(3)
    cols[0].download_button("Report (Markdown)", report.markdown, f"{experiment}.md", key="ab-md")
    cols[1].download_button("Report (HTML, offline)", report.html, f"{experiment}.html", "text/html", key="ab-html")
    if result.run_id:
        cols[2].caption(f"MLflow run {result.run_id} (experiment studio-ab)")
    st.caption("To rate these answers blind: the Human Eval page, *New rating session*, *From an A/B experiment*.")


def judge_section(result, judges: list) -> None:
    """The local judge's verdicts on pairs of this experiment's variants, and a form to run it on a pair."""
    st.subheader("Local judge")
    if judges:
        rows = [
            {
                "pair": f"{j.a} vs {j.b}",
                "judge model": j.model,
                "items": j.n,
                "judged": sum(j.judged),
                "verdicts": f"{j.a} {j.wins_a} · {j.b} {j.wins_b} · tie {j.ties}",
                "position-flip rate": f"{j.flip_rate:.0%}",
                "position 1 picked": f"{j.position_1_rate:.0%}",
                "unreadable replies": j.unparsed,
            }
            for j in judges
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="ab-judges")
        if any(j.follows_positions for j in judges):
            st.warning(
                "A judge changed its verdict with the answers' order on most items: its verdicts say little. "
                "A larger judge model reads answers rather than positions."
            )
    else:
        st.caption("No judge has been run on this experiment yet.")
    names = list(result.variants)
    with st.form("ab-judge"):
        st.caption(
            "A local model compares two variants' answers item by item, in both orders; a verdict that changes "
            "with the order is a tie, and the share of those (the position-flip rate) is reported."
        )
        cols = st.columns(4)
        a = cols[0].selectbox("Variant", names, key="ab-judge-a")
        b = cols[1].selectbox("against", names, index=min(1, len(names) - 1), key="ab-judge-b")
        model = cols[2].text_input(
            "Judge model", "", key="ab-judge-model", help="empty: the bundled model; " + MODEL_HELP
        )
        reference = cols[3].checkbox("Show it the correct answer", True, key="ab-judge-reference")
        if st.form_submit_button("Run the judge"):
            with user_errors():
                check_pair(result, a, b)
                run = JudgeRun(experiment=result.id, a=a, b=b, model=model.strip(), with_reference=reference)
                st.session_state["ab-judge-job"] = jobs.start(run).id
                st.session_state.pop("ab-judge-job-shown", None)
    job_panel("judge", "ab-judge-job", rerun_when_done=True)


def sample_size_calculator() -> None:
    """How many items an experiment needs to detect a given F1 gain, or a given change in exact matches."""
    with st.expander("How many items do I need?"):
        st.caption("The *Sensitivity* table of a report gives the spread of per-item F1 differences seen there.")
        cols = st.columns(4)
        gain = cols[0].number_input("F1 gain worth detecting (points)", 0.1, 100.0, 5.0, key="ab-power-gain")
        sd = cols[1].number_input("SD of per-item F1 differences", 0.1, 150.0, 30.0, key="ab-power-sd")
        alpha = cols[2].number_input("Significance level", 0.001, 0.5, 0.05, format="%.3f", key="ab-power-alpha")
        power = cols[3].number_input("Power", 0.5, 0.99, 0.8, key="ab-power-power")
        with user_errors():
            n = minimum_sample_size(gain / sd, alpha, power)
            st.markdown(
                f"**{n} items** for a paired t-test to detect +{gain:g} F1 (d_z = {gain / sd:.2f}) "
                f"with {power:.0%} power at α = {alpha:g}."
            )
        cols = st.columns(2)
        fixes = cols[0].number_input("Items B gets right and A wrong (%)", 0.0, 100.0, 10.0, key="ab-power-p01")
        breaks = cols[1].number_input("Items A gets right and B wrong (%)", 0.0, 100.0, 5.0, key="ab-power-p10")
        with user_errors():
            n = mcnemar_sample_size(fixes / 100, breaks / 100, alpha, power)
            st.markdown(f"**{n} items** for McNemar's test on exact match to detect that change.")
