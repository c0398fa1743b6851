"""The Datasets page's Preferences tab: build preference pairs from Human Eval sessions, judged A/B experiments
and corrections; a version's pairs by origin, browsed, and some dropped (a new version); the items raters
found both bad; the stored corrections."""

from __future__ import annotations

import json

import pandas as pd
import plotly.express as px
import streamlit as st

from engine.preferences import (
    SKIP_REASONS,
    build_preferences,
    drop_pairs,
    judged_experiments,
    preference_datasets,
    review_items,
)
from engine.preferences.versions import summary
from engine.qa.preference import ORIGIN_HELP, counts_by_origin, origin_of, rejected_of
from engine.qa.versions import DatasetStore
from engine.ratings import default_store
from engine.ratings.store import RatingStore

NEXT_VERSION = "prefs-next-version"  # the version to show after a drop (set before its picker is drawn)


def preferences_tab(settings, tracker) -> None:
    """The whole tab; ``tracker()`` gives the MLflow tracker, made only when a version is saved."""
    store = default_store(settings)
    st.caption(
        "A pair is a question with its sources, a chosen answer and a rejected one, for preference training "
        "(DPO). " + " · ".join(f"**{origin}**: {text}" for origin, text in ORIGIN_HELP.items() if origin != "gold")
    )
    build_form(settings, store, tracker)
    st.subheader("Pairs")
    pairs_browser(settings, tracker)
    with st.expander("Both answers bad: items to write the right answer for"):
        review_list(store)
    with st.expander(f"Corrections ({len(store.corrections.find())})"):
        corrections_table(store)


def build_form(settings, store: RatingStore, tracker) -> None:
    """Which sessions, judged experiments and corrections to build pairs from; the saved version's counts."""
    sessions = {s.id: s for s in store.sessions()}
    judged = judged_experiments(settings)
    n_corrections = len(store.corrections.find())
    with st.form("prefs-build"):
        name = st.text_input("Preference dataset", "preferences", help="The dataset the pairs are saved to.")
        chosen = st.multiselect(
            "Human Eval sessions", list(sessions), format_func=lambda i: f"{sessions[i].name} · {i}"
        )
        experiments = st.multiselect(
            "Judged A/B experiments", judged, help="Experiments the local judge has run on (A/B Test page)."
        )
        corrections = st.checkbox(f"The corrections ({n_corrections})", value=n_corrections > 0)
        note = st.text_input("Note (optional)")
        if not st.form_submit_button("Build preference pairs (a new version)", type="primary"):
            return
    built = build_preferences(settings, name.strip(), chosen, experiments, corrections, note, store, tracker())
    st.success(f"Saved {built.manifest.dataset}@{built.manifest.id}: {summary(built.counts, built.skipped)}.")
    st.session_state[NEXT_VERSION] = (built.manifest.dataset, built.manifest.id)
    if built.skipped:
        why = [{"reason": k, "items": v, "meaning": SKIP_REASONS.get(k, "")} for k, v in built.skipped.items()]
        st.dataframe(pd.DataFrame(why), hide_index=True, key="prefs-skipped")
    if built.review:
        st.warning(f"{len(built.review)} items both answers of which the raters found bad: see the list below.")


def picked_version(settings) -> tuple[str, str] | None:
    """A preference dataset and one of its versions (newest first), or None when there is none yet."""
    names = preference_datasets(settings)
    if not names:
        st.info("No preference pairs yet: build them above.")
        return None
    if pending := st.session_state.pop(NEXT_VERSION, None):
        st.session_state["prefs-dataset"], st.session_state["prefs-version"] = pending
    cols = st.columns(2)
    dataset = cols[0].selectbox("Preference dataset", names, key="prefs-dataset")
    labels = {m.id: f"{m.id} · {m.created[:16]} · {m.note[:60]}" for m in DatasetStore(settings).versions(dataset)}
    if st.session_state.get("prefs-version") not in labels:
        st.session_state.pop("prefs-version", None)
    version = cols[1].selectbox("Version", list(labels), format_func=labels.get, key="prefs-version")
    return dataset, version


def pairs_browser(settings, tracker) -> None:
    """A version's pairs by origin (chart), as a table, and a new version without the pairs selected."""
    if not (picked := picked_version(settings)):
        return
    records = DatasetStore(settings).load(*picked)
    counts = counts_by_origin(records)
    frame = pd.DataFrame({"origin": list(counts), "pairs": list(counts.values())})
    fig = px.bar(frame, x="pairs", y="origin", orientation="h", title="Pairs by origin", height=220)
    st.plotly_chart(fig, width="stretch", key="prefs-origins")
    origins = st.multiselect("Origins shown", list(counts), key="prefs-origin-filter")
    shown = [r for r in records if not origins or origin_of(r) in origins]
    table = pd.DataFrame(
        {
            "question": [r.question for r in shown],
            "chosen": [r.answer for r in shown],
            "rejected": [rejected_of(r) for r in shown],
            "origin": [origin_of(r) for r in shown],
            "detail": [json.dumps(r.metadata.get("detail", {}), ensure_ascii=False) for r in shown],
            "id": [r.id for r in shown],
        }
    )
    st.caption(f"{len(shown)} of {len(records)} pairs")
    st.dataframe(table, hide_index=True, width="stretch", height=320, key="prefs-pairs")
    questions = {r.id: f"{origin_of(r)} · {r.question[:80]} · {r.id}" for r in shown}
    doomed = st.multiselect("Pairs to drop", list(questions), format_func=questions.get, key="prefs-drop")
    if st.button("Drop the selected pairs (a new version)", disabled=not doomed, key="prefs-drop-button"):
        manifest = drop_pairs(settings, picked[0], picked[1], doomed, tracker())
        st.session_state[NEXT_VERSION] = (manifest.dataset, manifest.id)
        st.session_state.pop("prefs-drop", None)
        st.rerun()


def review_list(store: RatingStore) -> None:
    """A session's items whose raters' majority found both answers bad, with the answers and the votes."""
    sessions = {s.id: s for s in store.sessions()}
    if not sessions:
        st.caption("No Human Eval session yet.")
        return
    session_id = st.selectbox(
        "Session", list(sessions), format_func=lambda i: f"{sessions[i].name} · {i}", key="prefs-review-session"
    )
    items = review_items(store, session_id)
    if not items:
        st.caption("No item of this session was found both bad by a majority of its raters.")
        return
    rows = [{"item": r.item_id, "question": r.question, **{f"answer of {v}": a for v, a in r.answers.items()},
             "raters": ", ".join(f"{k}: {v}" for k, v in r.votes.items())} for r in items]  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="prefs-review")
    st.caption("Write their right answers in Human Eval (beside the rating): each becomes a correction.")


def corrections_table(store: RatingStore) -> None:
    """The stored corrections, and deleting some of them."""
    found = store.corrections.find()
    if not found:
        st.caption("No correction yet: write one under an answer on the Query page, or beside a rating in Human Eval.")
        return
    rows = [{"id": c.id, "place": c.place, "question": c.question, "model's answer": c.answer,
             "correction": c.correction, "rater": c.rater, "model": c.model} for c in found]  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="prefs-corrections")
    labels = {c.id: f"{c.id} · {c.question[:80]}" for c in found}
    doomed = st.multiselect("Corrections to delete", list(labels), format_func=labels.get, key="prefs-delete")
    if st.button("Delete the selected corrections", disabled=not doomed, key="prefs-delete-button"):
        for correction_id in doomed:
            store.corrections.delete(correction_id)
        st.session_state.pop("prefs-delete", None)
        st.rerun()
