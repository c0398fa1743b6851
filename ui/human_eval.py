"""Widgets of the Human Eval page: new sessions, the blind rating form, the leaderboard."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.ab.results import list_results, load_result
from engine.evaluation.history import evaluation_runs
from engine.ratings import Rating, RatingStore
from engine.ratings.aggregate import leaderboard
from engine.ratings.agreement import agreement, judge_agreement
from engine.ratings.corrections import check_correction, item_correction
from engine.ratings.sources import judge_verdicts, session_from_experiment, session_from_runs
from engine.ratings.tracking import log_session
from ui import resources as r
from ui.widgets import user_errors

PREFERENCES = {"A is better": "left", "B is better": "right", "Tie": "tie", "Both bad": "both_bad"}
SIDE_LABELS = {"left": "A", "right": "B"}
CORRECTS = {"The answer not preferred (A on a tie or both bad)": "", "Answer A": "left", "Answer B": "right"}
SCORES = ("correctness", "groundedness", "fluency")


def new_session(store: RatingStore) -> None:
    """Build a session from two variants of an A/B experiment, or from two evaluation runs."""
    from_experiment, from_runs = st.tabs(["From an A/B experiment", "From two evaluation runs"])
    with from_experiment:
        experiments = list_results(r.settings())
        if not experiments:
            st.caption("No finished A/B experiment yet: run one on the A/B Test page, or use two evaluation runs.")
        else:
            experiment = st.selectbox("Experiment", experiments, key="he-experiment")
            variants = list(load_result(experiment, r.settings()).variants)
            cols = st.columns(3)
            a = cols[0].selectbox("First variant", variants, key="he-a")
            b = cols[1].selectbox("Second variant", [v for v in variants if v != a], key="he-b")
            limit = cols[2].number_input("Items (0: all)", 0, 10_000, 30, key="he-limit")
            if st.button("Create the session", key="he-create-experiment"):
                with user_errors():
                    sid = session_from_experiment(store, r.settings(), experiment, a, b, int(limit))
                    st.session_state.update({"he-session": sid, "he-notice": "Session created."})
                    st.rerun()
    with from_runs:
        runs = evaluation_runs(r.tracker())
        if len(runs) < 2:
            st.caption("Two evaluation runs are needed (the Benchmarks page runs them).")
            return
        label = {
            row.run_id: f"{row.started:%Y-%m-%d %H:%M} · {row.mode} · {row.model} · n={row.limit}"
            for row in runs.itertuples()
        }
        cols = st.columns(2)
        run_a = cols[0].selectbox("Run A", list(label), format_func=label.get, key="he-run-a")
        run_b = cols[1].selectbox("Run B", [x for x in label if x != run_a], format_func=label.get, key="he-run-b")
        cols = st.columns(3)
        name_a = cols[0].text_input("Name of run A", "run-a", key="he-name-a")
        name_b = cols[1].text_input("Name of run B", "run-b", key="he-name-b")
        limit = cols[2].number_input("Items (0: all)", 0, 10_000, 30, key="he-runs-limit")
        if st.button("Create the session", key="he-create-runs"):
            with user_errors():
                sid = session_from_runs(store, r.tracker(), run_a, run_b, (name_a.strip(), name_b.strip()), int(limit))
                st.session_state.update({"he-session": sid, "he-notice": "Session created."})
                st.rerun()


def rate(store: RatingStore, session_id: str, rater: str) -> None:
    """The next item this rater has not rated: two anonymous answers side by side and the form."""
    progress = store.progress(session_id, rater)
    done = progress.rated + progress.skipped
    st.progress(done / progress.total, f"{progress.rated} rated, {progress.skipped} skipped of {progress.total}")
    if revealed := st.session_state.pop("he-revealed", None):
        st.info(revealed)
    item = store.next_item(session_id, rater)
    buttons = st.columns([1, 1, 4])
    if buttons[1].button("Undo last", disabled=done == 0, key="he-undo"):
        undone = store.undo_last(session_id, rater)
        st.session_state["he-revealed"] = f"Took back your last answer (item {undone})."
        st.rerun()
    if item is None:
        st.success("You have rated every item of this session. Skipped items come back after an undo.")
        return
    if buttons[0].button("Skip", key="he-skip"):
        store.skip(session_id, item.item_id, rater)
        st.rerun()
    st.markdown(f"**Question {item.position + 1}.** {item.question}")
    if item.context:
        with st.expander("Sources shown to the models"):
            st.text(item.context)
    if item.reference:
        with st.expander("Reference answer"):
            st.write(item.reference)
    with st.form(f"he-form-{session_id}-{item.item_id}"):
        left, right = st.columns(2)
        scores = {}
        for side, column, label in (("left", left, "A"), ("right", right, "B")):
            column.markdown(f"**Answer {label}**")
            column.info((item.left_answer if side == "left" else item.right_answer) or "(empty answer)")
            for score in SCORES:
                scores[f"{score}_{side}"] = column.slider(f"{score.capitalize()} of {label}", 1, 5, 3)
        preference = st.radio("Which answer is better?", list(PREFERENCES), horizontal=True, index=None)
        comment = st.text_input("Comment (optional)")
        with st.expander("Write the right answer (optional)"):
            written = st.text_area(
                "The right answer",
                help="Saved as a correction: your answer preferred over the model's, for preference training.",
            )
            corrects = st.radio("It corrects", list(CORRECTS), horizontal=True)
        if st.form_submit_button("Submit rating", type="primary"):
            if preference is None:
                st.error("Choose a preference: A, B, tie or both bad.")
                return
            with user_errors():
                sides = store.reveal(session_id, item.item_id)
                correction = None
                if written.strip():  # checked before the rating is stored: a bad one stops both
                    side = CORRECTS[corrects] or ("right" if PREFERENCES[preference] == "left" else "left")
                    correction = check_correction(item_correction(item, sides, side, written, rater))
                new = store.submit(
                    Rating(
                        session_id=session_id,
                        item_id=item.item_id,
                        rater=rater,
                        preference=PREFERENCES[preference],
                        **scores,
                        comment=comment,
                    )
                )
                if correction is not None:
                    store.corrections.add(correction)
                note = "" if new else " (you had rated it already: the first rating counts)"
                fixed = f" Your answer is saved as a correction of answer {SIDE_LABELS[side]}." if correction else ""
                st.session_state["he-revealed"] = (
                    f"Answer A was **{sides['left']}**, answer B was **{sides['right']}**; you chose "
                    f"*{preference}*{note}.{fixed}"
                )
                st.rerun()


def results(store: RatingStore, session_id: str) -> None:
    """Leaderboard (win rate, Bradley-Terry, Elo with intervals), agreement, CSV export, MLflow."""
    ratings = store.ratings(session_id)
    if ratings.empty:
        st.caption("No ratings yet: the leaderboard appears with the first one.")
        return
    board = leaderboard(ratings, resamples=500)
    tops = st.columns(len(board))
    for column, row in zip(tops, board.itertuples(), strict=True):
        column.metric(
            f"{row.variant}: win rate",
            f"{row.win_rate:.0%}",
            f"{row.wins} wins, {row.losses} losses",
            delta_color="off",
        )
    columns = [
        "rank",
        "variant",
        "wins",
        "ties",
        "losses",
        "both_bad",
        "win_rate",
        "win_rate_low",
        "win_rate_high",
        "bt",
        "bt_low",
        "bt_high",
        "elo",
        "elo_low",
        "elo_high",
    ]
    st.dataframe(board[[c for c in columns if c in board.columns]].round(3), hide_index=True, key="he-leaderboard")
    agree = agreement(ratings)
    cols = st.columns(4)
    cols[0].metric("Ratings", len(ratings))
    cols[1].metric("Raters", ratings["rater"].nunique())
    cols[2].metric("Items rated by 2+", agree.items_shared)
    cols[3].metric("Agreement", "—" if pd.isna(agree.percent) else f"{agree.percent:.0f}%")
    kappas = {
        "Cohen's kappa": agree.cohen_kappa,
        "Fleiss' kappa": agree.fleiss_kappa,
        "Krippendorff's alpha": agree.krippendorff_alpha,
    }
    st.caption(
        " · ".join(f"{k} {'—' if pd.isna(v) else f'{v:.2f}'}" for k, v in kappas.items())
        + " (— : needs items rated by two raters or more)"
    )
    session = store.session(session_id)
    judge = judge_verdicts(session, r.settings())
    if judge is not None:
        found = judge_agreement(ratings, judge)
        cols = st.columns(3)
        cols[0].metric("Items the judge and raters share", found.items)
        cols[1].metric("Agreement with the local judge", "—" if pd.isna(found.percent) else f"{found.percent:.0f}%")
        cols[2].metric("Judge–raters Cohen's kappa", "—" if pd.isna(found.cohen_kappa) else f"{found.cohen_kappa:.2f}")
        st.caption("The raters' verdict per item is their majority (both bad and split votes count as ties).")
    elif session.source.get("experiment"):
        st.caption("Run the local judge on these two variants (A/B Test page) to see how it agrees with the raters.")
    cols = st.columns(2)
    cols[0].download_button(
        "Export ratings (CSV)", ratings.to_csv(index=False), f"ratings-{session_id}.csv", "text/csv", key="he-export"
    )
    if cols[1].button("Log to MLflow", key="he-log"):
        with user_errors():
            run_id = log_session(r.tracker(), store, session_id, judge=judge, resamples=500)
            st.success(f"Logged: MLflow run {run_id} (experiment studio-human-eval).")
