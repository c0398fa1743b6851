"""The Studio: home page with the machine, the model, the knowledge bases and recent runs."""

import pandas as pd
import streamlit as st

from engine.machine import describe_device, snapshot
from engine.qa.versions import DatasetStore
from engine.tracking import EVALUATION, QUERY, TRAINING
from ui import resources as r
from ui.loop import loop_panel
from ui.widgets import page_header, seconds_since, user_errors

page_header(
    "Studio",
    "🧪",
    "Make a small open LLM better at answering questions over your own documents — "
    "measured, honest, offline, on a laptop.",
)

with user_errors():
    r.warm_up()
    with st.spinner("Loading the model and the knowledge bases (the first start converts the model)…"):
        generator = r.generator()
        r.docs_kb()
    snap = snapshot(describe_device())
    cols = st.columns(4)
    cols[0].metric("Device", snap.device.split(" (")[0], help=snap.device)
    cols[1].metric("RAM used / total", f"{snap.ram_used_gb:.1f} / {snap.ram_total_gb:.1f} GB")
    cols[2].metric("RAM available", f"{snap.ram_available_gb:.1f} GB")
    cols[3].metric("Studio process", f"{snap.process_rss_mb:,.0f} MB")
    loaded = generator.loaded
    st.write(
        f"**Active model:** `{loaded.spec.name}` on `{loaded.device}` "
        f"({loaded.model.dtype}, loaded in {loaded.load_seconds:.1f} s{' from cache' if loaded.from_cache else ''})"
    )
    st.page_link("pages/2_Models.py", label="Models: load, swap, memory →", icon="🧠")
    loop_panel()

    left, right = st.columns(2)
    with left:
        st.subheader("Knowledge bases")
        kbs = r.store().list()
        st.dataframe(
            pd.DataFrame(
                [
                    {"name": k.name, "documents": k.documents, "chunks": k.chunks, "state": k.incomplete or "complete"}
                    for k in kbs
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        st.page_link("pages/1_Query.py", label="Ask a question →", icon="💬")
        adapters = r.adapter_names()
        st.write(f"**Adapters:** {', '.join(f'`{a}`' for a in adapters) if adapters else 'none yet'}")
        st.page_link("pages/3_Fine-tune.py", label="Fine-tune →", icon="🛠️")
        datasets = DatasetStore(r.settings()).datasets()
        st.write(f"**Datasets:** {', '.join(f'`{d}`' for d in datasets) if datasets else 'none yet'}")
        st.page_link("pages/4_Datasets.py", label="Datasets →", icon="🗂️")
        st.page_link("pages/6_AB_Test.py", label="A/B Test: compare variants →", icon="⚖️")
        st.page_link("pages/7_Human_Eval.py", label="Human Eval: rate answers blind →", icon="🧑‍⚖️")
    with right:
        st.subheader("Recent runs")
        tracker = r.tracker()
        runs = tracker.recent(QUERY, 5) + tracker.recent(EVALUATION, 5) + tracker.recent(TRAINING, 5)
        rows = [
            {
                "when": seconds_since(x.start_time),
                "activity": x.experiment.removeprefix("studio-"),
                "run": x.name,
                "F1": x.metrics.get("f1"),
                "total s": x.metrics.get("total_s", x.metrics.get("seconds")),
            }
            for x in sorted(runs, key=lambda x: -x.start_time)
        ]
        st.dataframe(pd.DataFrame(rows).round(1), hide_index=True, width="stretch")
        st.link_button("Open MLflow", "http://127.0.0.1:5000")
        st.caption(f"Start it with `mlflow ui --backend-store-uri {tracker.uri} --port 5000`")
