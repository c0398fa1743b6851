"""Preference versions: a session, a judged experiment and corrections merged into one saved version (lineage,
counts by origin, one of pairs alike), logged to MLflow; pairs dropped into a new version; the command line."""

from __future__ import annotations

import pytest

from engine.ab.judging import save_judge
from engine.cli.preferences import main
from engine.errors import InputError, NotFoundError
from engine.evaluation.judge import DEFAULT_JUDGE, judge_from_texts
from engine.preferences import build_preferences, drop_pairs, preference_datasets
from engine.qa.preference import check_pairs, origin_of
from engine.qa.schema import QARecord
from engine.qa.versions import EXPERIMENT, DatasetStore
from engine.ratings import Correction, Rating, RatingStore, default_store
from engine.ratings.corrections import item_correction
from engine.ratings.sources import session_from_experiment
from tests.support.experiments import save_experiment


@pytest.fixture
def origins(settings) -> tuple[RatingStore, str, str]:
    """A 4-item experiment judged on every item (base on q000, q001; tuned on q002; a flip on q003), a session
    of it where ann prefers base on q000 and q003 and finds q001 both bad, and two corrections."""
    experiment = save_experiment(settings, 4)
    found = judge_from_texts(["1", "1", "2", "1"], ["2", "2", "1", "1"], a="base", b="tuned",
                             item_ids=["q000", "q001", "q002", "q003"], model="jm")  # fmt: skip
    save_judge(experiment, found, DEFAULT_JUDGE, True, settings)
    store = default_store(settings)
    session_id = session_from_experiment(store, settings, experiment, "base", "tuned")
    for item_id, verdict in (("q000", "base"), ("q003", "base"), ("q001", "both_bad")):
        if verdict == "base":
            verdict = "left" if store.reveal(session_id, item_id)["left"] == "base" else "right"
        store.submit(Rating(session_id, item_id, "ann", verdict))
    item = next(i for i in store.items(session_id) if i.item_id == "q001")
    sides = store.reveal(session_id, "q001")
    store.corrections.add(item_correction(item, sides, "left", "gold 1", "ann"))
    store.corrections.add(Correction("query", "Who?", "nobody", "somebody", sources=({"title": "T", "text": "x"},)))
    return store, session_id, experiment


def test_origins_merge_into_one_version_with_lineage_counts_and_mlflow(settings, tracker, origins):
    store, session_id, experiment = origins
    built = build_preferences(settings, "prefs", [session_id], [experiment], True, "first", store, tracker)
    # human: q000, q003; judge: q000 (the same pair as the human one: kept once), q001, q002; corrections: 2
    assert built.counts == {"human": 2, "judge": 2, "correction": 2}
    assert built.skipped == {"both_bad": 1, "duplicate": 1, "tie": 1, "unrated": 1}
    assert [r.item_id for r in built.review] == ["q001"]
    manifest = built.manifest
    assert manifest.counts["records"] == 6 and manifest.counts["sources"] == built.counts
    assert manifest.counts["skipped"] == built.skipped
    assert [s.get("session") or s.get("experiment") or s.get("corrections") for s in manifest.sources] == [
        session_id, experiment, 2,
    ]  # fmt: skip
    assert manifest.note.startswith("first: 6 pairs (2 human, 2 judge, 2 correction); no pair: 1 both_bad")
    saved = DatasetStore(settings).load("prefs", manifest.id)
    assert check_pairs(saved) and {r.id for r in saved} == {r.id for r in built.records}
    kept = next(r for r in saved if r.metadata["detail"].get("item_id") == "q000")
    assert origin_of(kept) == "human"  # the first origin's pair of two alike
    (run,) = tracker.client.search_runs([tracker.experiment_id(EXPERIMENT)])
    assert run.data.params["version"] == manifest.id and run.data.params["count.sources.judge"] == "2"
    assert preference_datasets(settings) == ["prefs"]


def test_dropped_pairs_make_a_new_version_whose_parent_is_the_old_one(settings, origins):
    store, session_id, experiment = origins
    built = build_preferences(settings, "prefs", [session_id], [experiment], store=store)
    assert built.counts == {"human": 2, "judge": 2}
    doomed = [r.id for r in built.records if origin_of(r) == "judge"]
    manifest = drop_pairs(settings, "prefs", built.manifest.id, doomed)
    assert manifest.parent == built.manifest.id and manifest.counts["sources"] == {"human": 2}
    assert "2 pairs of" in manifest.note
    assert len(DatasetStore(settings).load("prefs", built.manifest.id)) == 4  # the old version is as it was
    with pytest.raises(NotFoundError, match="no pair 'nope'"):
        drop_pairs(settings, "prefs", manifest.id, ["nope"])
    with pytest.raises(InputError, match="leave nothing"):
        drop_pairs(settings, "prefs", manifest.id, [r.id for r in DatasetStore(settings).load("prefs", manifest.id)])
    with pytest.raises(InputError, match="Select the pairs"):
        drop_pairs(settings, "prefs", manifest.id, [])


def test_nothing_asked_or_no_pair_is_a_message_and_nothing_is_saved(settings, origins):
    store, session_id, _ = origins
    with pytest.raises(InputError, match="Pick where pairs come from"):
        build_preferences(settings, "prefs", store=store)
    DatasetStore(settings).save("my-qa", [QARecord("Who?", "Ann")])
    with pytest.raises(InputError, match="'my-qa' holds QA records, not preference pairs"):
        build_preferences(settings, "my-qa", [session_id], store=store)
    assert len(DatasetStore(settings).versions("my-qa")) == 1
    for correction in store.corrections.find():
        store.corrections.delete(correction.id)
    second = save_experiment(settings, 2, experiment_id="exp-two")
    unrated = session_from_experiment(store, settings, second, "base", "tuned")
    with pytest.raises(InputError, match=r"No preference pair came of it \(no pair: 2 unrated\)"):
        build_preferences(settings, "prefs", [unrated], corrections=True, store=store)
    assert DatasetStore(settings).datasets() == ["my-qa"]


def test_the_command_line_builds_lists_shows_and_drops(settings, origins, capsys):
    _, session_id, experiment = origins
    assert main(["build", "--name", "prefs", "--session", session_id, "--judge", experiment, "--no-mlflow"]) == 0
    out = capsys.readouterr().out
    assert "4 pairs (2 human, 2 judge)" in out and "q001" in out  # the review list
    version = DatasetStore(settings).versions("prefs")[0].id
    assert main(["list"]) == 0 and version in capsys.readouterr().out
    assert main(["show", "prefs", "--json"]) == 0
    ids = [line.split('"id": "')[1][:16] for line in capsys.readouterr().out.splitlines()]
    assert len(ids) == 4
    assert main(["drop", f"prefs@{version}", ids[0], "--no-mlflow"]) == 0
    assert f"(parent {version})" in capsys.readouterr().out
    assert main(["show", "prefs"]) == 0 and "3 pairs" in capsys.readouterr().out
    assert main(["build", "--name", "prefs", "--judge", "no-such-experiment", "--no-mlflow"]) == 2
    assert capsys.readouterr().err.startswith("error: No finished experiment")
