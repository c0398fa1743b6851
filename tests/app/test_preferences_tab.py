"""The Datasets page's Preferences tab under AppTest: pairs built from a rated session, a judged experiment and a
correction; counts by origin; pairs dropped into a new version; the both-bad review list; corrections deleted."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from engine.ab.judging import save_judge
from engine.evaluation.judge import DEFAULT_JUDGE, judge_from_texts
from engine.qa.versions import DatasetStore
from engine.ratings import Correction, Rating, default_store
from engine.ratings.sources import session_from_experiment
from engine.settings import ROOT
from tests.support.experiments import save_experiment

PAGE = str(ROOT / "pages" / "4_Datasets.py")


@pytest.fixture
def signals(settings) -> tuple[str, str]:
    """A 3-item experiment the judge preferred base on (q000, q001; a flip on q002), a session of it where ann
    prefers tuned on q000 and found q002 both bad, and one correction from the Query page."""
    st.cache_resource.clear()
    experiment = save_experiment(settings, 3)
    found = judge_from_texts(["1", "1", "1"], ["2", "2", "1"], a="base", b="tuned",
                             item_ids=["q000", "q001", "q002"], model="jm")  # fmt: skip
    save_judge(experiment, found, DEFAULT_JUDGE, True, settings)
    store = default_store(settings)
    sid = session_from_experiment(store, settings, experiment, "base", "tuned")
    tuned_side = "left" if store.reveal(sid, "q000")["left"] == "tuned" else "right"
    store.submit(Rating(sid, "q000", "ann", tuned_side))
    store.submit(Rating(sid, "q002", "ann", "both_bad"))
    store.corrections.add(Correction("query", "Who wrote Hamlet?", "Marlowe", "Shakespeare"))
    yield sid, experiment
    st.cache_resource.clear()


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def multiselect(at: AppTest, label: str):
    return next(m for m in at.multiselect if m.label == label)


def test_build_browse_drop_and_review_preference_pairs(settings, signals):
    sid, experiment = signals
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    assert "Preferences" in [t.label for t in at.tabs]
    assert any("No preference pairs yet" in i.value for i in at.info)
    assert next(c for c in at.checkbox if c.label == "The corrections (1)").value  # on where there are some

    multiselect(at, "Human Eval sessions").set_value([sid])
    multiselect(at, "Judged A/B experiments").set_value([experiment])
    button(at, "Build preference pairs (a new version)").click().run()
    assert not at.exception, at.exception
    saved = next(s.value for s in at.success if s.value.startswith("Saved preferences@"))
    # human: tuned over base on q000; judge: base over tuned on q000 and q001 (q002 flipped); one correction
    assert "4 pairs (1 human, 2 judge, 1 correction); no pair: 1 both_bad, 1 tie, 1 unrated" in saved
    assert any("both answers of which the raters found bad" in w.value for w in at.warning)
    (version,) = DatasetStore(settings).versions("preferences")
    assert version.id in saved and version.counts["sources"] == {"human": 1, "judge": 2, "correction": 1}

    pairs = next(d.value for d in at.dataframe if "rejected" in d.value.columns)
    assert len(pairs) == 4 and set(pairs["origin"]) == {"human", "judge", "correction"}
    assert set(pairs.loc[pairs["origin"] == "correction", "chosen"]) == {"Shakespeare"}
    assert any(c.value == "4 of 4 pairs" for c in at.caption)

    judged = list(pairs.loc[pairs["origin"] == "judge", "id"])
    multiselect(at, "Pairs to drop").set_value(judged).run()  # the button is enabled once pairs are selected
    button(at, "Drop the selected pairs (a new version)").click().run()
    assert not at.exception, at.exception
    newest = DatasetStore(settings).versions("preferences")[0]
    assert newest.parent == version.id and newest.counts["sources"] == {"human": 1, "correction": 1}
    assert at.selectbox(key="prefs-version").value == newest.id  # the new version is shown
    assert any(c.value == "2 of 2 pairs" for c in at.caption)

    review = next(d.value for d in at.dataframe if "raters" in d.value.columns)
    assert list(review["item"]) == ["q002"] and list(review["raters"]) == ["ann: both_bad"]

    multiselect(at, "Corrections to delete").set_value([default_store(settings).corrections.find()[0].id]).run()
    button(at, "Delete the selected corrections").click().run()
    assert not at.exception, at.exception
    assert default_store(settings).corrections.find() == []


def test_building_from_nothing_is_a_message(settings):
    st.cache_resource.clear()
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    button(at, "Build preference pairs (a new version)").click().run()
    assert not at.exception, at.exception
    assert any("Pick where pairs come from" in e.value for e in at.error), [e.value for e in at.error]
    st.cache_resource.clear()
