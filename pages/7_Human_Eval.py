"""Human Eval: blind side-by-side rating of two variants' answers, the leaderboard and agreement."""

import streamlit as st

from engine.ratings import default_store
from ui import human_eval as ui
from ui import resources as r
from ui.widgets import page_header, user_errors

page_header(
    "Human Eval",
    "🧑‍⚖️",
    "Rate two variants' answers side by side without knowing which is which (sides drawn at random per item); "
    "the names appear once your rating is in. Win rates, Bradley-Terry and Elo with intervals, and agreement.",
)

with user_errors():
    store = default_store(r.settings())
    if notice := st.session_state.pop("he-notice", None):
        st.success(notice)
    rater = st.sidebar.text_input("Your name (rater)", key="he-rater", help="Ratings are stored per rater.")
    with st.expander("New rating session", expanded=not store.sessions()):
        ui.new_session(store)
    sessions = {s.id: s for s in store.sessions()}
    if not sessions:
        st.info("No rating session yet: create one above from an A/B experiment or two evaluation runs.")
        st.stop()
    chosen = st.session_state.get("he-session")
    ids = list(sessions)
    session_id = st.selectbox(
        "Session",
        ids,
        index=ids.index(chosen) if chosen in sessions else 0,
        key="he-session-pick",
        format_func=lambda i: f"{sessions[i].name} · {len(store.items(i))} items",
    )
    st.session_state["he-session"] = session_id
    rate_tab, board_tab = st.tabs(["Rate", "Leaderboard and agreement"])
    with rate_tab:
        if not rater.strip():
            st.info("Enter your name in the sidebar to start rating.")
        else:
            ui.rate(store, session_id, rater.strip())
    with board_tab:
        ui.results(store, session_id)
