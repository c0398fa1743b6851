"""Ask a question over a knowledge base: streamed answer, sources with scores, timings."""

import streamlit as st

from engine.rag.ask import ask_pipeline
from engine.rag.history import log_query
from ui import resources as r
from ui.ingest import ingest_panel
from ui.query import ask_controls, correction_form, mlflow_status, show_answer
from ui.widgets import coalesce, page_header, user_errors

page_header("Query", "💬")

with user_errors():
    r.warm_up()  # load the model and the embedder in the background while the page is drawn
    with st.spinner("Opening the knowledge bases…"):
        r.docs_kb()
        store = r.store()
    left, right = st.columns([3, 1])
    with right:
        kb, how, model = ask_controls(store)
    with left, st.form("ask"):
        question = st.text_input("Question", placeholder="What is the Studio for?", key="query-question")
        asked = st.form_submit_button("Ask", type="primary")

    if asked and kb:
        spec = r.model_spec(model, how.adapter)
        with st.spinner("Loading the model…"):
            r.manager().get(spec)
        # Borrowed for the answer: a model swapped or unloaded meanwhile finishes this answer first.
        with r.manager().use(spec) as generator:
            pipeline = ask_pipeline(question, how, store, generator, r.settings())
            stream = pipeline.stream(question, how.k)
            with left:
                slot = st.empty()
                with slot.container():
                    st.write_stream(coalesce(stream))
        answer = stream.result
        with slot.container():  # the finished answer replaces the streamed text, without a rerun
            show_answer(answer)
            # Logged in the background once the answer is drawn: importing MLflow would hold it up.
            logged = r.background().submit(lambda: log_query(r.tracker(), answer, kb, pipeline.generator.name, how.k))
            mlflow_status(logged)
            correction_form(answer, pipeline.generator.name)
        st.session_state["last-answer"] = (answer, logged, pipeline.generator.name)
    elif "last-answer" in st.session_state:
        answer, logged, model_name = st.session_state["last-answer"]
        with left:
            show_answer(answer)
            mlflow_status(logged)
            correction_form(answer, model_name)

    st.divider()
    ingest_panel(store)
