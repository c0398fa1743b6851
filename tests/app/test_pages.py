"""The pages under Streamlit's AppTest: real model, real Chroma and MLflow in a temp dir."""

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import jobs
from engine.settings import ROOT

TIMEOUT = 300


def page(path: str) -> AppTest:
    return AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT)


def test_home_shows_machine_model_and_knowledge_bases(app_env):
    at = page("Home.py").run()
    assert not at.exception, at.exception
    labels = {m.label for m in at.metric}
    assert {"Device", "RAM available", "RAM used / total"} <= labels
    assert any("smollm2-135m-instruct" in m.value for m in at.markdown)
    kbs = at.dataframe[0].value
    assert "studio-docs" in set(kbs["name"])  # the docs were indexed on first start
    assert int(kbs.loc[kbs["name"] == "studio-docs", "chunks"].iloc[0]) > 5


def test_query_answers_with_sources_and_logs_to_mlflow(app_env, tracker):
    from engine.rag.ask import AskSpec

    at = page("pages/1_Query.py").run()
    assert not at.exception, at.exception
    d = AskSpec()  # the page starts at `engine ask`'s defaults
    assert at.slider(key="query-k").value == d.k and at.selectbox(key="query-style").value == d.style == "auto"
    assert at.number_input(key="query-follow").value == d.follow_links
    at.text_input(key="query-question").input("What is the Studio for?")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.success and len(at.success[0].value.split()) >= 8  # a descriptive question: sentences
    assert any("one to three sentences" in c.value for c in at.caption)
    sources = [e.label for e in at.expander if e.label.startswith("[")]
    assert len(sources) == d.k and all("score" in s for s in sources)
    assert any(m.label == "Retrieval" for m in at.metric)
    # The run is logged in the background; the page shows its id once it is there.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and [r.status for r in tracker.recent("studio-query")] != ["FINISHED"]:
        time.sleep(0.5)
    runs = tracker.recent("studio-query")
    assert runs and runs[0].params["question"] == "What is the Studio for?"
    at.run()
    assert any(runs[0].run_id in c.value for c in at.caption)


def test_a_query_answer_is_corrected_with_its_sources_and_prompt(app_env):
    from engine.rag.ask import AskSpec
    from engine.ratings import default_store

    at = page("pages/1_Query.py").run()
    at.text_input(key="query-question").input("What is the Studio for?")
    at.button[0].click().run()
    assert not at.exception, at.exception
    shown = at.success[0].value
    at.text_area(key="query-correction").input(shown)  # the answer as it is: nothing to correct
    next(b for b in at.button if b.label == "Save the correction").click().run()
    assert any("as it is" in e.value for e in at.error), [e.value for e in at.error]
    assert default_store(app_env).corrections.find() == []

    at.text_area(key="query-correction").input("Making a small LLM better at answering over your documents.")
    next(b for b in at.button if b.label == "Save the correction").click().run()
    assert not at.exception, at.exception
    assert any(s.value.startswith("Saved the correction") for s in at.success)
    (saved,) = default_store(app_env).corrections.find(place="query")
    assert (saved.question, saved.answer) == ("What is the Studio for?", shown)
    assert saved.correction == "Making a small LLM better at answering over your documents."
    assert saved.messages[-1]["role"] == "user" and "What is the Studio for?" in saved.messages[-1]["content"]
    assert len(saved.sources) == AskSpec().k and saved.model  # the sources retrieved and the model that answered


def test_query_empty_question_is_a_message(app_env):
    at = page("pages/1_Query.py").run()
    at.text_input(key="query-question").input("   ")
    at.button[0].click().run()
    assert not at.exception
    assert any("type a question" in e.value for e in at.error)


def test_query_bad_upload_path_is_a_message(app_env):
    at = page("pages/1_Query.py").run()
    at.radio(key="ingest-source").set_value("Local path")
    at.text_input(key="ingest-path").input("/no/such/place")
    at.button[1].click().run()
    assert not at.exception
    assert any("does not exist" in e.value for e in at.error)


def test_benchmarks_runs_an_evaluation_job(app_env):
    at = page("pages/5_Benchmarks.py").run()
    assert not at.exception, at.exception
    assert next(x for x in at.selectbox if x.label == "Questions").options[0] == "hotpotqa"  # then the user's QA sets
    next(x for x in at.selectbox if x.label == "Mode").set_value("closed-book")
    next(x for x in at.number_input if x.label == "Questions (at most)").set_value(2)
    at.button[0].click().run()
    assert not at.exception, at.exception
    job_id = at.session_state["eval-job"]
    state = jobs.wait_job(job_id, timeout=TIMEOUT)
    assert state.status == "succeeded", jobs.tail_log(job_id, 30)
    at.run()
    assert not at.exception, at.exception
    assert any(m.label == "f1" for m in at.metric)
    table = at.dataframe[0].value
    assert len(table) == 2 and {"question", "gold", "prediction", "f1"} <= set(table.columns)
    assert any("Question:" in m.value for m in at.markdown)  # the drill-down


def test_query_model_path_that_does_not_exist_is_a_message(app_env):
    at = page("pages/1_Query.py").run()
    at.text_input(key="query-model").input("/no/such/model-folder")
    at.text_input(key="query-question").input("What is the Studio for?")
    at.button[0].click().run()
    assert not at.exception
    assert any("does not exist" in e.value for e in at.error)


PAGE_FILES = ["Home.py", *sorted(f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py"))]


@pytest.mark.parametrize("path", PAGE_FILES, ids=lambda p: Path(p).stem)
def test_every_page_draws_on_a_fresh_data_dir_without_an_unexpected_error(app_env, path):
    at = page(path).run()
    assert not at.exception, at.exception
    # user_errors turns a bug into an "Unexpected error" message: a page that shows one is broken
    assert not [e.value for e in at.error if "Unexpected error" in e.value]
