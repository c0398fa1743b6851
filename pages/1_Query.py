"""Ask a question over a knowledge base: streamed answer, sources with scores, timings."""

import streamlit as st

from engine.rag.ask import AskSpec, ask_pipeline
from engine.rag.history import log_query
from engine.rag.styles import ASK_STYLES, STYLE_HELP
from ui import resources as r
from ui.ingest import ingest_panel
from ui.query import mlflow_status, show_answer
from ui.widgets import coalesce, kb_picker, page_header, user_errors

page_header("Query", "💬")
D = AskSpec()  # the defaults `engine ask` answers with too


with user_errors():
    r.warm_up()  # load the model and the embedder in the background while the page is drawn
    with st.spinner("Opening the knowledge bases…"):
        r.docs_kb()
        store = r.store()
    left, right = st.columns([3, 1])
    with right:
        kb = kb_picker(store.names(), key="query-kb", incomplete=store.incomplete())
        k = st.slider("Sources (k)", 1, 10, D.k, key="query-k")
        style = st.selectbox("Answer style", ASK_STYLES, key="query-style", help=STYLE_HELP + "; an adapter "
                             "answers in the style it was trained for unless another is chosen here.")  # fmt: skip
        follow = st.number_input(
            "Follow links from the first", 0, 5, D.follow_links, key="query-follow",
            help="A second hop for questions that need two documents: chunks whose title the first N retrieved "
            "chunks mention move up. Helps where titles are names (e.g. Wikipedia articles); 0: off.",
        )  # fmt: skip
        model = st.text_input(
            "Model", key="query-model", placeholder="the active model (Models page)",
            help="Empty: the model made active on the Models page (at first the bundled SmolLM2-135M-Instruct). "
            "Or a Hugging Face id (online), a local model folder, a .gguf file.",
        )  # fmt: skip
        adapters = ["", *r.adapter_names()]
        adapter = st.selectbox(
            "Adapter", adapters, r.active_adapter_index(adapters), key="query-adapter",
            format_func=lambda a: a or "none",
            help="A LoRA adapter trained on the Fine-tune page, merged into the model; at first the active one "
            "(the guided loop makes a measurably better adapter active).",
        )  # fmt: skip
    with left, st.form("ask"):
        question = st.text_input("Question", placeholder="What is the Studio for?", key="query-question")
        asked = st.form_submit_button("Ask", type="primary")

    if asked and kb:
        spec = r.model_spec(model, adapter)
        with st.spinner("Loading the model…"):
            r.manager().get(spec)
        # Borrowed for the answer: a model swapped or unloaded meanwhile finishes this answer first.
        with r.manager().use(spec) as generator:
            how = AskSpec(kb, k, style, int(follow), adapter)
            pipeline = ask_pipeline(question, how, store, generator, r.settings())
            stream = pipeline.stream(question, k)
            with left:
                slot = st.empty()
                with slot.container():
                    st.write_stream(coalesce(stream))
        answer = stream.result
        with slot.container():  # the finished answer replaces the streamed text, without a rerun
            show_answer(answer)
            # Logged in the background once the answer is drawn: importing MLflow would hold it up.
            logged = r.background().submit(lambda: log_query(r.tracker(), answer, kb, pipeline.generator.name, k))
            mlflow_status(logged)
        st.session_state["last-answer"] = (answer, logged)
    elif "last-answer" in st.session_state:
        answer, logged = st.session_state["last-answer"]
        with left:
            show_answer(answer)
            mlflow_status(logged)

    st.divider()
    ingest_panel(store)
