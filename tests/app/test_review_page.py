"""The review queue on the Datasets page under AppTest: accept, reject, edit, a bad edit, reload, save a version."""

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from engine.data.review import load_decisions
from engine.qa.records import read_records
from engine.qa.versions import DatasetStore
from engine.settings import ROOT

PAGE = str(ROOT / "pages" / "4_Datasets.py")


@pytest.fixture
def page_env(settings):
    """A fresh data dir for the page (no model: the review queue loads none), with the pages' shared
    resources cleared so that ``r.settings()`` is this test's."""
    st.cache_resource.clear()
    yield settings
    st.cache_resource.clear()


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def pair_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Pair "))


def test_accept_reject_edit_then_save_a_reviewed_version(page_env, shared_data) -> None:
    store = DatasetStore(page_env)
    records = read_records(shared_data / "hotpotqa-dev.jsonl").records[:4]
    parent = store.save("hp-review", records, note="imported").id
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    assert [t.label for t in at.tabs][:4] == ["Import", "Generate", "Browse", "Review"]
    assert not any(b.label == "Accept" for b in at.button)  # a key pressed in another tab decides nothing
    at.session_state["datasets-tab"] = "Review"  # what a click on the tab does
    at.run()
    assert pair_caption(at).startswith("Pair 1 of 4 (undecided)") and records[0].id in pair_caption(at)
    assert {b.label: b.proto.shortcut for b in at.button if b.label in ("Accept", "Reject")} == {
        "Accept": "a", "Reject": "x"}  # fmt: skip

    button(at, "Accept").click().run()
    assert records[1].id in pair_caption(at) and pair_caption(at).startswith("Pair 1 of 3")
    button(at, "Reject").click().run()
    assert records[2].id in pair_caption(at)
    at.text_area(key=f"review-q-{records[2].id}").set_value("Which film came out first?")
    button(at, "Save edit").click().run()
    assert not at.exception, at.exception
    assert records[3].id in pair_caption(at)
    at.text_input(key=f"review-a-{records[3].id}").set_value("  ")
    button(at, "Save edit").click().run()
    assert any("cannot leave the answer empty" in e.value for e in at.error), [e.value for e in at.error]
    assert set(load_decisions(page_env, "hp-review", parent)) == {r.id for r in records[:3]}

    again = AppTest.from_file(PAGE, default_timeout=120)  # a reload: the decisions were kept
    again.session_state["datasets-tab"] = "Review"
    again.run()
    assert pair_caption(again).startswith("Pair 1 of 1 (undecided)") and records[3].id in pair_caption(again)
    again.radio(key="review-mode").set_value("In a table").run()
    assert not again.exception, again.exception
    assert any(b.label == "Save table decisions" for b in again.button)
    button(again, "Save reviewed version").click().run()
    assert not again.exception, again.exception
    (child,) = [m for m in store.versions("hp-review") if m.id != parent]
    assert any(child.id in s.value and "1 accepted, 1 edited, 1 rejected" in s.value for s in again.success), [
        s.value for s in again.success]  # fmt: skip
    assert child.parent == parent and child.counts["records"] == 3
    saved = store.load("hp-review", child.id)
    assert [r.metadata.get("review") for r in saved] == ["accepted", "edited", None]
    assert saved[0].id == records[0].id and saved[2].id == records[3].id
    assert saved[1].question == "Which film came out first?" and saved[1].answer == records[2].answer
    assert saved[1].id != records[2].id and saved[1].metadata["origin"] == records[2].id
