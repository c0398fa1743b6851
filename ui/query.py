"""The Query page's answer: the answer in its style, its timings and numbered sources, its MLflow logging, and a
correction of it."""

from __future__ import annotations

import streamlit as st

from engine.rag.ask import AskSpec
from engine.ratings import default_store
from engine.ratings.corrections import answer_correction
from ui import resources as r
from ui.knobs import knob_input
from ui.widgets import kb_picker, user_errors

STYLE_WORDS = {"short": "a short answer", "sentences": "one to three sentences", "evidence": "evidence, then answer"}


@st.fragment(run_every=1.0)
def mlflow_status(logged) -> None:
    if not logged.done():
        st.caption("Logging to MLflow…")
    elif logged.exception() is not None:
        st.warning(f"Could not log to MLflow: {logged.exception()}")
    else:
        st.caption(f"Logged to MLflow run `{logged.result()}` (experiment studio-query).")


def show_answer(answer) -> None:
    st.markdown(f"**Q:** {answer.question}")
    st.success(answer.answer or "(the model gave no answer)")
    st.caption(f"Answer style: {STYLE_WORDS.get(answer.style, answer.style)}")
    cols = st.columns(4)
    cols[0].metric("Retrieval", f"{answer.retrieve_s * 1000:.0f} ms")
    cols[1].metric("Generation", f"{answer.generate_s:.2f} s")
    cols[2].metric("Tokens/s", f"{answer.tokens_per_s:.1f}")
    cols[3].metric("Prompt tokens", answer.prompt_tokens)
    st.subheader("Sources")
    for n, hit in enumerate(answer.hits, start=1):
        cited = " · cited" if n in answer.citations else ""
        with st.expander(f"[{n}] {hit.title} — score {hit.score:.3f}{cited}"):
            st.write(hit.text)
            st.caption(f"source: {hit.source} · id: {hit.id}")


def correction_form(answer, model: str) -> None:
    """Under an answer: the right answer, written by the user, saved as a correction (with the question, the
    sources, the model's answer and the prompt it answered) for preference pairs."""
    with st.expander("Correct this answer"), st.form("query-correct", clear_on_submit=True):
        written = st.text_area("The right answer", key="query-correction")
        if st.form_submit_button("Save the correction"):
            with user_errors():
                default_store(r.settings()).corrections.add(answer_correction(answer, written, model=model))
                st.success("Saved the correction: build preference pairs from it on the Datasets page (Preferences).")


def ask_controls(store) -> tuple[str | None, AskSpec, str]:
    """The knowledge base, how to ask (sources, answer style, links, adapter) and the model (empty: the active
    one), from the Query page's side panel; the defaults are those `engine ask` answers with."""
    D = AskSpec()
    kb = kb_picker(store.names(), key="query-kb", incomplete=store.incomplete())
    k = st.slider("Sources (k)", 1, 10, D.k, key="query-k")
    style = knob_input(st, AskSpec, "style", key="query-style")
    follow = knob_input(st, AskSpec, "follow_links", key="query-follow")
    model = st.text_input(
        "Model",
        key="query-model",
        placeholder="the active model (Models page)",
        help="Empty: the model made active on the Models page (at first the bundled SmolLM2-135M-Instruct). "
        "Or a Hugging Face id (online), a local model folder, a .gguf file.",
    )
    adapters = ["", *r.adapter_names()]
    adapter = st.selectbox(
        "Adapter",
        adapters,
        r.active_adapter_index(adapters),
        key="query-adapter",
        format_func=lambda a: a or "none",
        help="A LoRA adapter trained on the Fine-tune page, merged into the model; at first the active one "
        "(the guided loop makes a measurably better adapter active).",
    )
    return kb, AskSpec(kb=kb or "", k=k, style=style, follow_links=int(follow), adapter=adapter), model
