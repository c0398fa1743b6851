"""The guided loop on Home under AppTest: started from the form, run as a background job, followed step by step."""

import pytest
from streamlit.testing.v1 import AppTest

from engine import jobs
from engine.loop import read_loop
from engine.settings import ROOT

TIMEOUT = 300

pytestmark = pytest.mark.slow


def home() -> AppTest:
    return AppTest.from_file(str(ROOT / "Home.py"), default_timeout=TIMEOUT).run()


def by_label(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def start(at: AppTest, name: str, folder: str, until: str = "") -> AppTest:
    by_label(at.text_input, "Collection name").input(name)
    by_label(at.text_input, "Folder of documents").input(folder)
    by_label(at.selectbox, "Stop after").set_value(until)
    return by_label(at.button, "Start the loop").click().run()


def test_a_loop_starts_on_home_runs_as_a_job_and_shows_its_steps(app_env, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "tower.md").write_text("# Eiffel Tower\n\nThe Eiffel Tower is a wrought-iron lattice tower in Paris. "
                                     "It was completed in 1889.\n", encoding="utf-8")  # fmt: skip
    (folder / "bridge.txt").write_text("The Golden Gate Bridge opened in 1937 in San Francisco.\n", encoding="utf-8")
    at = home()
    assert not at.exception, at.exception
    at = start(at, "notes", str(folder), until="ingest")
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    state = jobs.wait_job(at.session_state["loop-job"], timeout=TIMEOUT)
    assert state.status == "succeeded", jobs.tail_log(state.id, 30)
    record = read_loop(app_env, "notes")
    assert list(record["steps"]) == ["ingest"]  # it stopped where it was asked to
    assert record["spec"]["start_from"] == "auto"  # training will continue a fitting HotpotQA adapter, if saved

    at.run()
    assert not at.exception, at.exception
    steps = next(d.value for d in at.dataframe if "step" in d.value.columns).set_index("step")
    assert steps.loc["ingest", "state"] == "done" and steps.loc["ingest", "result"].startswith("2 documents")
    assert (steps.loc["generate":, "state"] == "to do").all()
    labels = {b.label for b in at.button}
    assert {"Run from generate", "Run generate only"} <= labels  # it goes on from the page


def test_a_bad_loop_is_a_message_and_starts_nothing(app_env, tmp_path):
    at = start(home(), "../notes", str(tmp_path))
    assert not at.exception, at.exception
    assert any("Invalid collection name" in e.value for e in at.error)
    assert "loop-job" not in at.session_state
    at = start(home(), "notes", " ")
    assert any("folder" in e.value for e in at.error) and "loop-job" not in at.session_state
