"""The Query page's answer: the answer in its style, its timings and numbered sources, and its MLflow logging."""

from __future__ import annotations

import streamlit as st

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
