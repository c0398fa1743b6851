"""Ask the Studio a question in headless Chromium against a real `streamlit run`."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

# The first question loads the models and indexes the docs; later steps are quick.
ANSWER_TIMEOUT_MS = 120_000
QUESTION = "What is the Studio for?"


@pytest.mark.e2e
def test_ask_a_question_shows_answer_and_sources(browser, studio_server, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    try:
        page.goto(f"{studio_server.url}/Query", wait_until="domcontentloaded")
        expect(page.get_by_role("heading", name="Query")).to_be_visible(timeout=30_000)

        question = page.get_by_label("Question")
        expect(question).to_be_editable(timeout=ANSWER_TIMEOUT_MS)
        question.fill(QUESTION)
        page.get_by_role("button", name="Ask").click()

        answer = page.get_by_test_id("stAlertContentSuccess")
        expect(answer).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
        expect(page.get_by_text(f"Q: {QUESTION}")).to_be_visible()
        expect(page.get_by_role("heading", name="Sources")).to_be_visible()
        sources = page.get_by_test_id("stExpander").filter(has_text=re.compile(r"score \d"))
        expect(sources.first).to_be_visible()
        # The page is fully rendered once the last element is there and the script stopped running.
        expect(page.get_by_test_id("stMetricValue")).to_have_count(4)
        # Logged in the background: the run id shows once MLflow (first use: creating its store) is done.
        expect(page.get_by_text("Logged to MLflow run")).to_be_visible(timeout=60_000)
        expect(page.get_by_test_id("stStatusWidgetRunningIcon")).to_have_count(0, timeout=30_000)

        assert answer.inner_text().strip(), "the answer box is empty"
        assert sources.count() >= 1
        expect(page.get_by_test_id("stException")).to_have_count(0)
        assert not page_errors, f"JavaScript errors on the page: {page_errors}"
    finally:
        page.screenshot(path=str(tmp_path / "query.png"), full_page=True)
        page.close()
