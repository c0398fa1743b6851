"""A/B Test: variants answer the same items; paired statistics, cost, recommendations and the report."""

import streamlit as st

from engine.ab.results import list_results
from ui import ab_test as ui
from ui import resources as r
from ui.widgets import page_header, user_errors

page_header(
    "A/B Test",
    "⚖️",
    "Two or more variants (model, quantization, adapter, prompt, k, temperature) answer the same questions; "
    "paired tests (McNemar, bootstrap, Wilcoxon, permutation; Holm for three or more), latency and memory, "
    "and which variant to deploy for quality, speed or memory.",
)

with user_errors():
    st.subheader("New experiment")
    ui.experiment_form()
    ui.sample_size_calculator()
    ui.progress()
    st.subheader("Report")
    experiments = list_results(r.settings())
    if not experiments:
        st.info("No finished experiment yet: run one above (it runs in the background; you can leave the page).")
    else:
        ui.report_section(experiments)
