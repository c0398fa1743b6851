"""The Datasets page's review queue: accept, edit or reject a version's pairs, one at a time with keyboard
shortcuts or many at once in a table; decisions are kept as they are made and saved as a new version."""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from engine.data.review import (
    ACCEPT,
    EDIT,
    PAST,
    REJECT,
    Decision,
    decide,
    discard_decisions,
    load_decisions,
    record_decisions,
    review_counts,
    save_review,
    table_changes,
)
from engine.errors import InputError
from engine.qa.schema import QARecord
from engine.qa.versions import DatasetStore
from ui.datasets import version_picker

SHOW = ("Undecided", "All", "Accepted", "Edited", "Rejected")
UNDECIDED = "undecided"
KEYS = (
    "Keys: **A** accept · **E** save edit · **X** reject · **S** skip · **B** back · **U** undecide. "
    "Enter in the answer box (Ctrl+Enter in the question box) accepts, with your changes as an edit."
)
MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>$~:])")


def escaped(text: str) -> str:
    """``text`` shown literally by Markdown (a passage may hold ``*``, ``$`` or ``#``)."""
    return MARKDOWN.sub(r"\\\1", text)


def highlighted(text: str, span: str) -> str:
    """The passage as Markdown with the first occurrence of the answer in bold."""
    at = text.lower().find(span.lower()) if span else -1
    if at < 0:
        return escaped(text)
    end = at + len(span)
    return f"{escaped(text[:at])}**{escaped(text[at:end])}**{escaped(text[end:])}"


def shown(show: str, decision: Decision | None) -> bool:
    if show == "All":
        return True
    state = PAST[decision.action] if decision else UNDECIDED
    return state == show.lower()


def empty_queue(show: str) -> str:
    return "Every pair is decided (Show: All, to change one)." if show == "Undecided" else f"No pair is {show.lower()}."


def progress(records: list[QARecord], decisions: dict[str, Decision]) -> None:
    counts = review_counts(records, decisions)
    done = len(records) - counts["left"]
    st.progress(
        done / len(records),
        text=f"{done} of {len(records)} decided · {counts['accepted']} accepted · "
        f"{counts['edited']} edited · {counts['rejected']} rejected",
    )


def source_passages(record: QARecord) -> list:
    """The contexts the pair came from (its documents', or those holding the answer); else the first context."""
    found = [c for c in record.contexts if c.doc_id in record.doc_ids or record.answer.lower() in c.text.lower()]
    return found or list(record.contexts[:1])


def passages(record: QARecord) -> None:
    """The passages the pair came from, the answer in bold; any others shown with the question are folded away."""
    first = source_passages(record)
    for context in first:
        with st.container(border=True):
            title = f"**{escaped(context.title)}**\n\n" if context.title else ""
            st.markdown(title + highlighted(context.text, record.answer))
    if rest := [c for c in record.contexts if c not in first]:
        with st.expander(f"{len(rest)} more passages shown with the question"):
            st.markdown("\n\n".join(f"**{escaped(c.title)}** {escaped(c.text)}" for c in rest))


def facts(record: QARecord) -> None:
    """What generation and filtering said of the pair: its kind, filter scores, and the model's own answer."""
    meta = record.metadata
    found = [
        f"{k.replace('_', ' ')}: {meta[k]}" for k in ("source", "answer_kind", "split", "topic_label") if meta.get(k)
    ]
    if meta.get("review"):
        found.append(f"reviewed before: {meta['review']}")
    found += [
        f"{k.replace('_', ' ')} {v:.2f}" if isinstance(v, float) else f"{k.replace('_', ' ')} {v}"
        for k, v in (meta.get("scores") or {}).items()
    ]
    if meta.get("model_answer"):
        found.append(f"the model's answer from the passage: {meta['model_answer']}")
    if found:
        st.caption(" · ".join(found))


def one_at_a_time(picked: tuple[str, str], records: list[QARecord], decisions: dict, show: str, settings) -> None:
    """One pair of the queue with its passage, editable texts and the decision buttons (each with a key)."""
    queue = [r for r in records if shown(show, decisions.get(r.id))]
    if not queue:
        st.success(empty_queue(show))
        return
    where = f"review-at-{picked[0]}@{picked[1]}-{show}"
    at = st.session_state.get(where, 0) % len(queue)
    record, decision = queue[at], decisions.get(queue[at].id)
    state = f"**{PAST[decision.action]}**" if decision else "undecided"
    st.caption(f"Pair {at + 1} of {len(queue)} ({show.lower()}) · {state} · id {record.id}")
    with st.form(f"review-{record.id}", border=False):
        edit = decision if decision and decision.action == EDIT else Decision(ACCEPT)
        question = st.text_area("Question", edit.question or record.question, height=80, key=f"review-q-{record.id}")
        answer = st.text_input("Answer", edit.answer or record.answer, key=f"review-a-{record.id}")
        cols = st.columns(6)
        pressed = {
            ACCEPT: cols[0].form_submit_button("Accept", type="primary", shortcut="A"),
            EDIT: cols[1].form_submit_button("Save edit", shortcut="E"),
            REJECT: cols[2].form_submit_button("Reject", shortcut="X"),
            "skip": cols[3].form_submit_button("Skip", shortcut="S"),
            "back": cols[4].form_submit_button("Back", shortcut="B"),
        }
        pressed[UNDECIDED] = bool(decision) and cols[5].form_submit_button("Undecide", shortcut="U")
    st.caption(KEYS)
    facts(record)
    passages(record)
    action = next((k for k, v in pressed.items() if v), None)
    if action is None:
        return
    step = {"skip": 1, "back": -1}.get(action, 0)
    if action in (ACCEPT, EDIT, REJECT, UNDECIDED):
        try:
            new = None if action == UNDECIDED else decide(record, action, question, answer)
        except InputError as exc:  # shown here, so the rest of the tab (progress, saving) stays on screen
            st.error(str(exc))
            return
        if action == EDIT and new.action == ACCEPT:
            st.warning("Nothing was changed: edit the question or the answer first, or Accept.")
            return
        record_decisions(settings, *picked, {record.id: new})
        step = 1 if shown(show, new) else 0  # a pair that leaves the queue makes room for the next one
    st.session_state[where] = at + step
    st.rerun()


def table_rows(records: list[QARecord], decisions: dict) -> pd.DataFrame:
    rows = []
    for r in records:
        d = decisions.get(r.id)
        scores = {f"scores.{k}": v for k, v in (r.metadata.get("scores") or {}).items()}
        passage = " / ".join(c.text[:300] for c in source_passages(r))
        rows.append(
            {
                "decision": d.action if d else UNDECIDED,
                "question": (d and d.question) or r.question,
                "answer": (d and d.answer) or r.answer,
                "passage": passage,
                **scores,
                "id": r.id,
            }
        )
    return pd.DataFrame(rows)


def in_bulk(picked: tuple[str, str], records: list[QARecord], decisions: dict, show: str, settings) -> None:
    """The queue as a table: pick each pair's decision, or change its texts (an edit); saved with one button."""
    queue = [r for r in records if shown(show, decisions.get(r.id))]
    if not queue:
        st.info(empty_queue(show))
        return
    nonce = st.session_state.setdefault("review-table-nonce", 0)  # a new key shows the saved decisions afresh
    frame = table_rows(queue, decisions)
    with st.form(f"review-table-{picked[1]}"):
        edited = st.data_editor(
            frame,
            hide_index=True,
            key=f"review-table-{picked[1]}-{nonce}",
            disabled=[c for c in frame.columns if c not in ("decision", "question", "answer")],
            column_config={"decision": st.column_config.SelectboxColumn(options=[UNDECIDED, *PAST], required=True)},
        )
        submitted = st.form_submit_button("Save table decisions", type="primary")
    st.caption("Changing a question or an answer makes the pair an edit (unless it is rejected).")
    if not submitted:
        return
    changes = table_changes(queue, decisions, edited.to_dict("records"))
    record_decisions(settings, *picked, changes)
    st.session_state["review-table-nonce"] = nonce + 1
    st.rerun()


def review_tab(settings, tracker) -> None:
    """The review queue of a dataset version; ``tracker()`` gives the MLflow tracker the saved version is logged to."""
    store = DatasetStore(settings)
    if not (picked := version_picker(store, "review")):
        return
    records = store.load(*picked)
    decisions = load_decisions(settings, *picked)
    progress(records, decisions)
    cols = st.columns(2)
    how = cols[0].radio("Review", ("One pair at a time", "In a table"), horizontal=True, key="review-mode")
    show = cols[1].selectbox("Show", SHOW, key="review-show")
    (one_at_a_time if how == "One pair at a time" else in_bulk)(picked, records, decisions, show, settings)
    st.divider()
    cols = st.columns([2, 2, 1])
    only = cols[0].checkbox("Keep only the reviewed pairs", help="Otherwise undecided pairs are kept as they are.")
    if cols[1].button("Save reviewed version", type="primary", disabled=not decisions):
        manifest, _ = save_review(settings, *picked, keep_undecided=not only, tracker=tracker())
        st.success(
            f"Saved version {manifest.id} ({manifest.counts['records']} records, from {picked[1]}): "
            f"{manifest.note}. Your decisions stay here until you discard them."
        )
    if decisions:
        with cols[2].popover("Discard decisions"):
            if st.button(f"Forget all {len(decisions)} decisions on {picked[1]}", key="review-discard"):
                discard_decisions(settings, *picked)
                st.rerun()
