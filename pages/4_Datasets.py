"""QA datasets: import or generate, browse, review, topics, splits, versions, augmentation, export, KB refresh."""

import streamlit as st

from engine import jobs
from engine.qa.versions import DatasetStore
from ui import resources as r
from ui.dataset_steps import augment_tab, export_tab, kb_tab, split_tab, topics_tab, versions_tab
from ui.datasets import browser, funnel_chart, generation_form, import_tab, version_picker
from ui.job_panel import job_panel
from ui.preferences import preferences_tab
from ui.review import review_tab
from ui.widgets import page_header, user_errors

page_header(
    "Datasets",
    "🗂️",
    "Turn documents into a curated, versioned QA dataset: every step saves a new immutable version "
    "(its id is a hash of its content) that names its parent, and is logged to MLflow (experiment studio-datasets).",
)
settings = r.settings()
store = DatasetStore(settings)
STEPS = ["Import", "Generate", "Browse", "Review", "Topics", "Split", "Versions", "Augment", "Export"]
tabs = st.tabs(
    [*STEPS, "Knowledge base", "Preferences"],
    key="datasets-tab",
    on_change="rerun",  # the page knows which tab is open: the review keys (A, X, ...) exist only in its tab
)

with tabs[0], user_errors():
    import_tab(settings, r.tracker)

with tabs[1], user_errors():
    st.caption(
        "Answer spans are picked from each passage, the local model writes a question for each, and filters "
        "keep the pairs that are well formed and survive a retrieval and answering round trip."
    )
    if spec := generation_form(r.store().names()):
        st.session_state["generate-job"] = jobs.start(spec).id
    job_panel("generate-qa", "generate-job", funnel_chart)

with tabs[2], user_errors():
    if picked := version_picker(store, "browse"):
        browser(store.load(*picked))
        with st.expander("Stats and quality report"):
            st.json(store.report(*picked))

with tabs[3], user_errors():
    if tabs[3].open:
        review_tab(settings, r.tracker)

with tabs[4], user_errors():
    topics_tab(store)

with tabs[5], user_errors():
    split_tab(store)

with tabs[6], user_errors():
    versions_tab(store)

with tabs[7], user_errors():
    augment_tab(store, r.tracker)

with tabs[8], user_errors():
    export_tab(settings, store)

with tabs[9], user_errors():
    kb_tab(store)

with tabs[10], user_errors():
    preferences_tab(settings, r.tracker)
